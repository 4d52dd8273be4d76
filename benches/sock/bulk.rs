//! Workload 1, bulk throughput: `send_complete` and `recv` against `std::net`.

use std::time::Duration;

use crate::harness::{new_sock_pair, rate, std_pair, Config, Report, Result, Row, MIB};
#[cfg(not(target_os = "wasi"))]
use native::{bulk_ours, bulk_std};
#[cfg(target_os = "wasi")]
use wasm::{bulk_ours, bulk_std};

/// The bytes every bulk sender sends, one chunk at a time.
const BULK_CHUNK: usize = MIB;
/// The receive buffer, reused.
const RECV_BUF: usize = 64 * 1024;

/// Each pass moves `bulk_bytes` per side in this many slices, ours and the baseline
/// alternating slice by slice: a neighbour's burst of work, which lasts longer than a slice,
/// then slows both alike instead of one whole measurement.
const BULK_SLICES: usize = 16;

pub(crate) fn run(config: &Config, report: &mut Report) -> Result<()> {
    let total = config.bulk_bytes;
    let slice = total / BULK_SLICES;
    println!(
        "
1. bulk throughput: {} MiB per side, {} passes, each in {BULK_SLICES} alternating \
         slices of {} MiB",
        total / MIB,
        config.bulk_rounds,
        slice / MIB
    );
    let chunk = vec![0x5a_u8; BULK_CHUNK];
    let (sock_writer, sock_reader) = new_sock_pair()?;
    let (std_writer, std_reader) = std_pair()?;
    let (mut ours, mut baseline) = (Duration::MAX, Duration::MAX);
    for _ in 0..config.bulk_rounds {
        let (mut ours_pass, mut baseline_pass) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..BULK_SLICES {
            ours_pass += bulk_ours(&sock_writer, &sock_reader, &chunk, slice)?;
            baseline_pass += bulk_std(&std_writer, &std_reader, &chunk, slice)?;
        }
        ours = ours.min(ours_pass);
        baseline = baseline.min(baseline_pass);
    }
    let moved = slice * BULK_SLICES;
    let (target, what) = if cfg!(target_os = "wasi") {
        (1.0, "std::net non-blocking + wasi-libc poll() in wasm")
    } else {
        (
            0.95,
            "std::net write_all/read, a thread per side (pinned to 2 cores)",
        )
    };
    println!("  baseline: {what}; best pass of each");
    report.add(Row::ratio(
        &format!("bulk {} MiB", moved / MIB),
        rate(moved, ours),
        rate(moved, baseline),
        baseline.as_secs_f64() / ours.as_secs_f64(),
        Some(target),
    ));
    Ok(())
}

/// Natively: a thread per side, pinned to two cores, for ours and the baseline alike.
#[cfg(not(target_os = "wasi"))]
mod native {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use bitcoin_sock::{Sock, SockIo, ThreadInterrupt};

    use super::RECV_BUF;
    use crate::harness::{recv_some, two_cores, two_threads, Result, TIMEOUT};

    /// Ours, natively: `send_complete` in a writer thread, `recv` + `wait` in this one; the two
    /// threads pinned to two cores, as for the baseline.
    pub(super) fn bulk_ours(
        writer: &Sock,
        reader: &Sock,
        chunk: &[u8],
        total: usize,
    ) -> Result<Duration> {
        two_threads(
            two_cores(),
            || {
                let mut buf = vec![0u8; RECV_BUF];
                let mut received = 0;
                while received < total {
                    received += recv_some(reader, &mut buf)?;
                }
                Ok(())
            },
            || {
                let interrupt = ThreadInterrupt::new();
                let mut sent = 0;
                while sent < total {
                    let len = chunk.len().min(total - sent);
                    writer.send_complete(&chunk[..len], TIMEOUT, &interrupt)?;
                    sent += len;
                }
                Ok(())
            },
        )
    }

    /// The baseline, natively: blocking `write_all` in a writer thread, `read` in this one.
    pub(super) fn bulk_std(
        mut writer: &TcpStream,
        mut reader: &TcpStream,
        chunk: &[u8],
        total: usize,
    ) -> Result<Duration> {
        two_threads(
            two_cores(),
            || {
                let mut buf = vec![0u8; RECV_BUF];
                let mut received = 0;
                while received < total {
                    match reader.read(&mut buf)? {
                        0 => return Err("connection closed by peer".into()),
                        n => received += n,
                    }
                }
                Ok(())
            },
            move || {
                let mut sent = 0;
                while sent < total {
                    let len = chunk.len().min(total - sent);
                    writer.write_all(&chunk[..len])?;
                    sent += len;
                }
                Ok(())
            },
        )
    }
}

/// In wasmtime: one thread drives both ends of the connection in turn.
#[cfg(target_os = "wasi")]
mod wasm {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use bitcoin_sock::{Events, Sock, SockEvent};

    use super::RECV_BUF;
    use crate::harness::{is_would_block, poll_fds, pollfd, Result, TIMEOUT};

    /// Ours in wasm: one thread sends and receives in turn (`Sock::send`, `Sock::recv`) and, when
    /// neither side moved, waits for both with one `Sock::wait_many`.
    pub(super) fn bulk_ours(
        writer: &Sock,
        reader: &Sock,
        chunk: &[u8],
        total: usize,
    ) -> Result<Duration> {
        let start = Instant::now();
        let mut buf = vec![0u8; RECV_BUF];
        let (mut sent, mut received) = (0, 0);
        while received < total {
            let mut progressed = false;
            if sent < total {
                let len = chunk.len().min(total - sent);
                match writer.send(&chunk[..len]) {
                    Ok(n) => {
                        sent += n;
                        progressed = true;
                    }
                    Err(e) if is_would_block(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            match reader.recv(&mut buf) {
                Ok(0) => return Err("connection closed by peer".into()),
                Ok(n) => {
                    received += n;
                    progressed = true;
                }
                Err(e) if is_would_block(&e) => {}
                Err(e) => return Err(e.into()),
            }
            if !progressed {
                let mut socks = [
                    (reader, Events::new(SockEvent::RECV)),
                    (writer, Events::new(SockEvent::SEND)),
                ];
                let count = if sent < total { 2 } else { 1 };
                Sock::wait_many(TIMEOUT, &mut socks[..count])?;
            }
        }
        Ok(start.elapsed())
    }

    /// The baseline in wasm: the same loop over `std::net` streams in non-blocking mode, waiting
    /// with wasi-libc's `poll()`.
    pub(super) fn bulk_std(
        writer: &TcpStream,
        reader: &TcpStream,
        chunk: &[u8],
        total: usize,
    ) -> Result<Duration> {
        writer.set_nonblocking(true)?;
        reader.set_nonblocking(true)?;
        let (mut writer_ref, mut reader_ref) = (writer, reader);
        let start = Instant::now();
        let mut buf = vec![0u8; RECV_BUF];
        let (mut sent, mut received) = (0, 0);
        while received < total {
            let mut progressed = false;
            if sent < total {
                let len = chunk.len().min(total - sent);
                match writer_ref.write(&chunk[..len]) {
                    Ok(n) => {
                        sent += n;
                        progressed = true;
                    }
                    Err(e) if is_would_block(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            match reader_ref.read(&mut buf) {
                Ok(0) => return Err("connection closed by peer".into()),
                Ok(n) => {
                    received += n;
                    progressed = true;
                }
                Err(e) if is_would_block(&e) => {}
                Err(e) => return Err(e.into()),
            }
            if !progressed {
                let mut fds = [pollfd(reader, libc::POLLIN), pollfd(writer, libc::POLLOUT)];
                let count = if sent < total { 2 } else { 1 };
                poll_fds(&mut fds[..count], 60_000)?;
            }
        }
        Ok(start.elapsed())
    }
}
