//! Workload 7, `BufSock` and `DeadlineIo` against `std::io::BufReader` over a `TcpStream`.
//!
//! Lines of 256 B and of 64 KiB: `BufSock::recv_until_terminator` against
//! `BufReader::read_until` (the same capacity, a reused line buffer), and against the
//! unbuffered `Sock::recv_until_terminator` (today's figure: in wasm its backend reads ahead
//! already, so `BufSock` must not be slower there). A P2P-like stream (24-byte headers whose
//! length field gives a payload of 50 B to 4 KiB, pseudo-random but the same every run):
//! `read_exact` of header and payload through `DeadlineIo` over a `BufSock`, and through a
//! `BufReader` over `DeadlineIo` over a `Sock`, against `BufReader<TcpStream>::read_exact`.
//!
//! Each ratio is the median of paired rounds (ours and the baseline back to back), not the
//! ratio of best times as elsewhere: see [`paired_rounds`]. Natively a thread writes the stream
//! with a blocking `TcpStream` for every reader, so only the readers differ, reader and writer
//! pinned to two CPUs; in wasm the reader's waits write it ([`Pumped`](crate::harness::Pumped),
//! [`PumpedStd`](crate::harness::PumpedStd)).

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use bitcoin_sock::{BufSock, DeadlineIo, SockIo, ThreadInterrupt, DEFAULT_BUF_CAPACITY};

use crate::harness::{rate, Config, Report, Result, Row, MIB, TIMEOUT};
#[cfg(not(target_os = "wasi"))]
use native::{time_ours, time_std};
#[cfg(target_os = "wasi")]
use wasm::{time_ours, time_std};

const TERMINATOR: u8 = b'\n';
/// The capacity of every buffer here, ours and the baseline's: `BufSock`'s default.
const CAPACITY: usize = DEFAULT_BUF_CAPACITY;
const HEADER_LEN: usize = 24;

/// xorshift64*: fast and deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A stream and how many items (lines or messages) a reader must find in it.
pub(super) struct Stream {
    pub(super) bytes: Vec<u8>,
    items: usize,
}

/// `len` bytes (rounded down to whole lines) of lines of `line_len` bytes, each ending in the
/// terminator and holding no other.
fn line_stream(len: usize, line_len: usize) -> Stream {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let lines = len / line_len;
    let mut bytes = Vec::with_capacity(lines * line_len);
    for _ in 0..lines {
        bytes.extend((1..line_len).map(|_| match rng.next() as u8 {
            TERMINATOR => TERMINATOR ^ 1,
            byte => byte,
        }));
        bytes.push(TERMINATOR);
    }
    Stream {
        bytes,
        items: lines,
    }
}

/// About `len` bytes of messages: magic, command, little-endian payload length (offset 16),
/// checksum; then 50 to 4,096 payload bytes.
fn p2p_stream(len: usize) -> Stream {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut bytes = Vec::with_capacity(len + HEADER_LEN + 4096);
    let mut items = 0;
    while bytes.len() < len {
        let payload = 50 + (rng.next() % (4096 - 50 + 1)) as usize;
        bytes.extend_from_slice(&[0xf9, 0xbe, 0xb4, 0xd9]);
        bytes.extend_from_slice(b"headers\0\0\0\0\0");
        bytes.extend_from_slice(&(payload as u32).to_le_bytes());
        bytes.extend_from_slice(&(rng.next() as u32).to_le_bytes());
        bytes.extend((0..payload).map(|_| rng.next() as u8));
        items += 1;
    }
    Stream { bytes, items }
}

fn check(stream: &Stream, items: usize, bytes: usize) -> Result<()> {
    if items != stream.items || bytes != stream.bytes.len() {
        return Err(format!(
            "read {items} items, {bytes} bytes; expected {}, {}",
            stream.items,
            stream.bytes.len()
        )
        .into());
    }
    Ok(())
}

/// Ours: lines with `recv_until_terminator` (through a `BufSock`, or the bare sock).
pub(super) fn lines_ours(sock: &impl SockIo, stream: &Stream) -> Result<()> {
    let interrupt = ThreadInterrupt::new();
    let (mut items, mut bytes) = (0, 0);
    while bytes < stream.bytes.len() {
        let line = sock.recv_until_terminator(TERMINATOR, TIMEOUT, &interrupt, 1 << 20)?;
        bytes += line.len() + 1;
        items += 1;
    }
    check(stream, items, bytes)
}

/// The baseline: `read_until` into one reused line buffer.
pub(super) fn lines_std(reader: &mut impl BufRead, stream: &Stream) -> Result<()> {
    let (mut items, mut bytes) = (0, 0);
    let mut line = Vec::new();
    while bytes < stream.bytes.len() {
        line.clear();
        match reader.read_until(TERMINATOR, &mut line)? {
            0 => return Err("end of stream".into()),
            read => bytes += read,
        }
        items += 1;
    }
    check(stream, items, bytes)
}

/// One message with `read_exact`: the header, then the payload it announces, into `payload`.
fn read_message(reader: &mut impl Read, payload: &mut Vec<u8>) -> std::io::Result<()> {
    let mut header = [0u8; HEADER_LEN];
    reader.read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    payload.resize(len as usize, 0);
    reader.read_exact(payload)
}

/// Every message of `stream`, each by `read(payload)` into one reused payload buffer.
pub(super) fn messages(
    mut read: impl FnMut(&mut Vec<u8>) -> std::io::Result<()>,
    stream: &Stream,
) -> Result<()> {
    let (mut items, mut bytes) = (0, 0);
    let mut payload = Vec::new();
    while bytes < stream.bytes.len() {
        read(&mut payload)?;
        bytes += HEADER_LEN + payload.len();
        items += 1;
    }
    check(stream, items, bytes)
}

/// How ours reads: with the reading sock given as any `SockIo`.
#[derive(Clone, Copy)]
pub(super) enum Ours {
    /// `BufSock::recv_until_terminator`.
    BufSockLines,
    /// `Sock::recv_until_terminator`, no buffer.
    SockLines,
    /// `read_exact` through a `DeadlineIo` (one per message) over a `BufSock`.
    DeadlineBufSock,
    /// `read_exact` through a `BufReader` over one `DeadlineIo` over the sock.
    BufReaderDeadline,
}

impl Ours {
    pub(super) fn read(self, sock: &impl SockIo, stream: &Stream) -> Result<()> {
        let interrupt = ThreadInterrupt::new();
        match self {
            Ours::BufSockLines => lines_ours(&BufSock::with_capacity(CAPACITY, sock), stream),
            Ours::SockLines => lines_ours(sock, stream),
            Ours::DeadlineBufSock => {
                let buffered = BufSock::with_capacity(CAPACITY, sock);
                messages(
                    |payload| {
                        // One adapter per message: its deadline covers the message.
                        read_message(
                            &mut DeadlineIo::new(&buffered, TIMEOUT, &interrupt),
                            payload,
                        )
                    },
                    stream,
                )
            }
            Ours::BufReaderDeadline => {
                let mut buffered =
                    BufReader::with_capacity(CAPACITY, DeadlineIo::new(sock, TIMEOUT, &interrupt));
                messages(|payload| read_message(&mut buffered, payload), stream)
            }
        }
    }
}

/// How the baseline reads: `BufReader` over the std stream.
#[derive(Clone, Copy)]
pub(super) enum Baseline {
    Lines,
    Messages,
}

impl Baseline {
    pub(super) fn read(self, reader: impl Read, stream: &Stream) -> Result<()> {
        let mut buffered = BufReader::with_capacity(CAPACITY, reader);
        match self {
            Baseline::Lines => lines_std(&mut buffered, stream),
            Baseline::Messages => messages(|payload| read_message(&mut buffered, payload), stream),
        }
    }
}

/// The medians of paired rounds.
struct Paired {
    ours: Duration,
    baseline: Duration,
    /// The median of the rounds' ratios (baseline / ours time): higher is better.
    ratio: f64,
}

/// Runs ours and the baseline back to back `rounds` times (which goes first alternates) and
/// keeps each round's ratio. These reads take milliseconds, shorter than a neighbour's burst on
/// a busy machine, so the two of one round mostly see the same load; the median ratio is then
/// steadier than the ratio of two best times, each of which is whichever round found the
/// machine idle.
fn paired_rounds(
    rounds: usize,
    mut ours: impl FnMut() -> Result<Duration>,
    mut baseline: impl FnMut() -> Result<Duration>,
) -> Result<Paired> {
    let (mut ours_times, mut baseline_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (o, b) = if round % 2 == 0 {
            let o = ours()?;
            (o, baseline()?)
        } else {
            let b = baseline()?;
            (ours()?, b)
        };
        ours_times.push(o);
        baseline_times.push(b);
        ratios.push(b.as_secs_f64() / o.as_secs_f64());
    }
    fn median<T: Copy + PartialOrd>(values: &mut [T]) -> T {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        values[values.len() / 2]
    }
    Ok(Paired {
        ours: median(&mut ours_times),
        baseline: median(&mut baseline_times),
        ratio: median(&mut ratios),
    })
}

pub(crate) fn run(config: &Config, report: &mut Report) -> Result<()> {
    // Short streams and many rounds, each ours and the baseline back to back.
    let len = config.stream_bytes / 8;
    let rounds = config.stream_rounds * 3;
    let wasi = cfg!(target_os = "wasi");
    println!(
        "\n7. BufSock and DeadlineIo against BufReader<TcpStream> ({} KiB buffers each), \
         {} MiB streams, {rounds} paired rounds (medians)",
        CAPACITY / 1024,
        len / MIB
    );
    type Time<'a> = &'a dyn Fn(&Stream) -> Result<Duration>;
    let mut row = |name: &str, stream: &Stream, ours: Ours, baseline: Time, target| -> Result<()> {
        // One unmeasured round first: page faults and connection warm-up count for neither.
        time_ours(stream, ours)?;
        baseline(stream)?;
        let paired = paired_rounds(rounds, || time_ours(stream, ours), || baseline(stream))?;
        report.add(Row::ratio(
            name,
            rate(stream.bytes.len(), paired.ours),
            rate(stream.bytes.len(), paired.baseline),
            paired.ratio,
            target,
        ));
        Ok(())
    };
    let std_target = if wasi { None } else { Some(0.9) };
    for (line_len, label) in [(256, "256 B"), (64 * 1024, "64 KiB")] {
        let stream = line_stream(len, line_len);
        row(
            &format!("BufSock lines {label} vs BufReader::read_until"),
            &stream,
            Ours::BufSockLines,
            &|stream: &Stream| time_std(stream, Baseline::Lines),
            std_target,
        )?;
        row(
            &format!("BufSock lines {label} vs Sock::recv_until_terminator"),
            &stream,
            Ours::BufSockLines,
            &|stream: &Stream| time_ours(stream, Ours::SockLines),
            if wasi { Some(1.0) } else { None },
        )?;
    }
    let stream = p2p_stream(len);
    row(
        "messages BufReader<DeadlineIo<Sock>> vs BufReader<TcpStream>",
        &stream,
        Ours::BufReaderDeadline,
        &|stream: &Stream| time_std(stream, Baseline::Messages),
        std_target,
    )?;
    row(
        "messages DeadlineIo<BufSock> vs BufReader<TcpStream>",
        &stream,
        Ours::DeadlineBufSock,
        &|stream: &Stream| time_std(stream, Baseline::Messages),
        std_target,
    )?;
    Ok(())
}

/// Natively a second thread writes the stream into a blocking `TcpStream`; the reading end is
/// a `Sock` for ours, the `TcpStream` itself for the baseline.
#[cfg(not(target_os = "wasi"))]
mod native {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::Duration;

    use bitcoin_sock::Sock;

    use super::{Baseline, Ours, Stream};
    use crate::harness::{std_pair, two_cores, two_threads, Result};

    /// The time `read` takes for `stream` from a fresh connection; the reader and the writer
    /// pinned to two CPUs, as in the other workloads.
    fn timed(stream: &Stream, read: impl FnOnce(TcpStream) -> Result<()>) -> Result<Duration> {
        let (mut writer, reader) = std_pair()?;
        two_threads(
            two_cores(),
            || read(reader),
            move || -> Result<()> {
                writer.write_all(&stream.bytes)?;
                Ok(())
            },
        )
    }

    pub(super) fn time_ours(stream: &Stream, ours: Ours) -> Result<Duration> {
        timed(stream, |reader| ours.read(&Sock::from(reader), stream))
    }

    pub(super) fn time_std(stream: &Stream, baseline: Baseline) -> Result<Duration> {
        timed(stream, |reader| baseline.read(reader, stream))
    }
}

/// In wasmtime the reader's waits write the stream: `Pumped` for ours, `PumpedStd` for std.
#[cfg(target_os = "wasi")]
mod wasm {
    use std::time::{Duration, Instant};

    use super::{Baseline, Ours, Stream};
    use crate::harness::{new_sock_pair, std_pair, Pumped, PumpedStd, Result};

    pub(super) fn time_ours(stream: &Stream, ours: Ours) -> Result<Duration> {
        let (writer, reader) = new_sock_pair()?;
        let pumped = Pumped::new(&reader, &writer, &stream.bytes);
        let start = Instant::now();
        ours.read(&pumped, stream)?;
        Ok(start.elapsed())
    }

    pub(super) fn time_std(stream: &Stream, baseline: Baseline) -> Result<Duration> {
        let (writer, reader) = std_pair()?;
        let pumped = PumpedStd::new(&reader, &writer, &stream.bytes)?;
        let start = Instant::now();
        baseline.read(pumped, stream)?;
        Ok(start.elapsed())
    }
}
