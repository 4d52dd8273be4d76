//! Workload 3, `recv_until_terminator` on a long stream, against Core's peek loop, ported.
//!
//! Core's loop peeks 512 bytes at a time; in wasm the reader is also compared with one `recv`
//! per byte.

use std::io;
use std::time::{Duration, Instant};

use bitcoin_sock::{SockEvent, SockIo, ThreadInterrupt};

use crate::harness::{
    best_of, is_would_block, mb_per_s, new_sock_pair, rate, Config, Report, Result, Row, MIB,
    TIMEOUT,
};
#[cfg(not(target_os = "wasi"))]
use native::time_stream;
#[cfg(target_os = "wasi")]
use wasm::time_stream;

/// The byte `recv_until_terminator` looks for: `\n`, as for the lines of Core's Tor control
/// protocol and HTTP headers.
const TERMINATOR: u8 = b'\n';

/// The three ways of reading a line that are compared.
#[derive(Clone, Copy)]
enum LineReader {
    /// `SockIo::recv_until_terminator`.
    Ours,
    /// Core's `Sock::RecvUntilTerminator`, ported line by line.
    CorePort,
    /// One `recv` per byte.
    ByteAtATime,
}

impl LineReader {
    pub(super) fn read_line<S: SockIo>(self, sock: &S, max_data: usize) -> Result<Vec<u8>> {
        let interrupt = ThreadInterrupt::new();
        match self {
            LineReader::Ours => {
                Ok(sock.recv_until_terminator(TERMINATOR, TIMEOUT, &interrupt, max_data)?)
            }
            LineReader::CorePort => core_recv_until_terminator(sock, TERMINATOR, TIMEOUT, max_data),
            LineReader::ByteAtATime => byte_at_a_time(sock, TERMINATOR, TIMEOUT, max_data),
        }
    }
}

/// Core's `Sock::RecvUntilTerminator` (src/util/sock.cpp), faithfully: peek at most 512 bytes,
/// find the terminator with a plain search, read exactly up to it, and wait for RECV (at most
/// `MAX_WAIT_FOR_IO`) after every attempt that did not end the line.
fn core_recv_until_terminator<S: SockIo>(
    sock: &S,
    terminator: u8,
    timeout: Duration,
    max_data: usize,
) -> Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut data = Vec::new();
    loop {
        if data.len() >= max_data {
            return Err(format!(
                "Received too many bytes without a terminator ({})",
                data.len()
            )
            .into());
        }
        let mut buf = [0u8; 512];
        let want = buf.len().min(max_data - data.len());
        match sock.peek(&mut buf[..want]) {
            Ok(0) => return Err("Connection unexpectedly closed by peer".into()),
            Ok(peeked) => {
                let found = buf[..peeked].iter().position(|&byte| byte == terminator);
                let try_len = found.map_or(peeked, |pos| pos + 1);
                let read = sock.recv(&mut buf[..try_len]);
                if !matches!(read, Ok(n) if n == try_len) {
                    return Err(format!(
                        "recv() returned {read:?} on attempt to read {try_len} bytes but \
                         previous peek claimed {peeked} bytes are available"
                    )
                    .into());
                }
                let append_len = if found.is_some() {
                    try_len - 1
                } else {
                    try_len
                };
                data.extend_from_slice(&buf[..append_len]);
                if found.is_some() {
                    return Ok(data);
                }
            }
            Err(e) if !is_would_block(&e) && e.kind() != io::ErrorKind::Interrupted => {
                return Err(format!("recv(): {e}").into());
            }
            Err(_) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "Receive timeout (received {} bytes without terminator before that)",
                data.len()
            )
            .into());
        }
        let wait_time = (deadline - now).min(bitcoin_sock::MAX_WAIT_FOR_IO);
        let _ = sock.wait(wait_time, SockEvent::RECV);
    }
}

/// The simplest correct reader: one `recv` of one byte at a time, waiting on would-block.
fn byte_at_a_time<S: SockIo>(
    sock: &S,
    terminator: u8,
    timeout: Duration,
    max_data: usize,
) -> Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut data = Vec::new();
    loop {
        if data.len() >= max_data {
            return Err("too many bytes without a terminator".into());
        }
        let mut byte = [0u8; 1];
        match sock.recv(&mut byte) {
            Ok(0) => return Err("Connection unexpectedly closed by peer".into()),
            Ok(_) if byte[0] == terminator => return Ok(data),
            Ok(_) => data.push(byte[0]),
            Err(e) if is_would_block(&e) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err("Receive timeout".into());
                }
                sock.wait(left.min(bitcoin_sock::MAX_WAIT_FOR_IO), SockEvent::RECV)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A stream of lines and how many terminators it has.
struct LineStream {
    bytes: Vec<u8>,
    lines: usize,
}

/// `len` random bytes ending in the terminator: with `many`, uniform (the terminator shows up
/// with probability 1/256, as in Core's comment: ~262,000 in 64 MiB); otherwise the
/// terminator only at the end.
fn line_stream(len: usize, many: bool) -> LineStream {
    // xorshift64*: fast, deterministic, good enough to place terminators at random.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut stream = Vec::with_capacity(len + 8);
    while stream.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        stream.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    stream.truncate(len);
    if !many {
        for byte in &mut stream {
            if *byte == TERMINATOR {
                *byte = TERMINATOR ^ 1;
            }
        }
    }
    if let Some(last) = stream.last_mut() {
        *last = TERMINATOR;
    }
    let lines = stream.iter().filter(|&&byte| byte == TERMINATOR).count();
    LineStream {
        bytes: stream,
        lines,
    }
}

/// Reads lines with `reader` until the whole stream is consumed; checks the line count
/// against `expected`.
fn read_stream<S: SockIo>(sock: &S, reader: LineReader, stream: &LineStream) -> Result<()> {
    let (expected, stream) = (stream.lines, &stream.bytes[..]);
    let max_data = stream.len() + 1;
    let (mut consumed, mut lines) = (0, 0);
    while consumed < stream.len() {
        consumed += reader.read_line(sock, max_data)?.len() + 1;
        lines += 1;
    }
    if lines != expected || consumed != stream.len() {
        return Err(format!(
            "read {lines} lines, {consumed} bytes; expected {expected} lines, {} bytes",
            stream.len()
        )
        .into());
    }
    Ok(())
}

pub(crate) fn run(config: &Config, report: &mut Report) -> Result<()> {
    let len = config.stream_bytes;
    println!(
        "\n3. recv_until_terminator on a {} MiB stream, best of {} rounds",
        len / MIB,
        config.stream_rounds
    );
    let (writer, reader_sock) = new_sock_pair()?;
    let socks = (&writer, &reader_sock);
    let wasi = cfg!(target_os = "wasi");
    for many in [true, false] {
        let stream = line_stream(len, many);
        let case = if many {
            format!("{} terminators", stream.lines)
        } else {
            "1 terminator".to_owned()
        };
        let (ours, core) = best_of(
            config.stream_rounds,
            || time_stream(socks, LineReader::Ours, &stream),
            || time_stream(socks, LineReader::CorePort, &stream),
        )?;
        let target = match (wasi, many) {
            (true, _) => None,
            (false, true) => Some(1.0),
            (false, false) => Some(5.0),
        };
        report.add(Row::ratio(
            &format!("until terminator, {case} vs Core port"),
            rate(len, ours),
            rate(len, core),
            core.as_secs_f64() / ours.as_secs_f64(),
            target,
        ));
        if wasi {
            // The byte-at-a-time loop reads a shorter stream of the same kind; MB/s compares.
            let short = line_stream(config.byte_stream_bytes, many);
            let mut byte_time = Duration::MAX;
            for _ in 0..config.stream_rounds {
                byte_time = byte_time.min(time_stream(socks, LineReader::ByteAtATime, &short)?);
            }
            let ours_rate = mb_per_s(len, ours);
            let byte_rate = mb_per_s(short.bytes.len(), byte_time);
            report.add(Row::ratio(
                &format!("until terminator, {case} vs byte-at-a-time"),
                format!("{ours_rate:.0} MB/s"),
                format!("{byte_rate:.1} MB/s"),
                ours_rate / byte_rate,
                Some(5.0),
            ));
        }
    }
    Ok(())
}

/// Natively a second thread sends the stream.
#[cfg(not(target_os = "wasi"))]
mod native {
    use std::time::{Duration, Instant};

    use bitcoin_sock::{Sock, SockIo, ThreadInterrupt};

    use super::{read_stream, LineReader, LineStream};
    use crate::harness::{Result, TIMEOUT};

    /// One timed read of `stream` by `reader`; natively a thread sends it with `send_complete`.
    pub(super) fn time_stream(
        (writer, reader_sock): (&Sock, &Sock),
        reader: LineReader,
        stream: &LineStream,
    ) -> Result<Duration> {
        std::thread::scope(|scope| {
            let sender = scope.spawn(move || -> Result<()> {
                writer.send_complete(&stream.bytes, TIMEOUT, &ThreadInterrupt::new())?;
                Ok(())
            });
            let start = Instant::now();
            read_stream(reader_sock, reader, stream)?;
            let elapsed = start.elapsed();
            sender.join().map_err(|_| "sender thread panicked")??;
            Ok(elapsed)
        })
    }
}

/// In wasmtime the reading sock sends the stream itself, a little at every wait.
#[cfg(target_os = "wasi")]
mod wasm {
    use std::time::{Duration, Instant};

    use bitcoin_sock::Sock;

    use super::{read_stream, LineReader, LineStream};
    use crate::harness::{Pumped, Result};

    pub(super) fn time_stream(
        (writer, reader_sock): (&Sock, &Sock),
        reader: LineReader,
        stream: &LineStream,
    ) -> Result<Duration> {
        let pumped = Pumped::new(reader_sock, writer, &stream.bytes);
        let start = Instant::now();
        read_stream(&pumped, reader, stream)?;
        Ok(start.elapsed())
    }
}
