//! The benchmarks of issue 10: `BufSock` and the deadline adapter beside what a Rust user
//! would pick, `std::io::BufReader` over a `TcpStream`, measured in the same run and printed as
//! a ratio.
//!
//! ```sh
//! cargo bench --bench bufsock                           # native: a writer thread
//! cargo bench --bench bufsock --target wasm32-wasip2    # in wasmtime: one thread, both ends
//! cargo bench --bench bufsock -- --quick lines          # smaller sizes; only the named workloads
//! ```
//!
//! Workloads: `lines` (256-byte and 64 KiB lines: `BufSock::recv_until_terminator` against
//! `BufReader::read_until` with the same capacity, and against the unbuffered
//! `Sock::recv_until_terminator`) and `p2p` (a stream of P2P-like messages, a 24-byte header
//! whose length field gives a payload of 50 B to 4 KiB, read with `read_exact` through
//! `DeadlineIo` over a `BufSock`, against `BufReader::read_exact`). Rounds alternate ours and
//! the baseline; the best of each is kept (noise only ever adds time).
//!
//! Natively the writer is a thread with a blocking `TcpStream` for every reader, so only the
//! readers differ. In wasmtime there are no threads: the reader's waits first write what the
//! writing end takes (a `SockIo` wrapper for ours, an `io::Read` wrapper for `std::net`), as in
//! `benches/sock.rs`.
// This file predates the harness-plus-modules split of `benches/sock.rs`; it keeps its own
// small report until it moves in as a module there.

use std::error::Error;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bitcoin_sock::{BufSock, DeadlineIo, Sock, SockIo, ThreadInterrupt};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const TIMEOUT: Duration = Duration::from_secs(60);
const TERMINATOR: u8 = b'\n';
const MIB: usize = 1024 * 1024;
/// The capacity of every buffer here, ours and the baseline's: `BufSock`'s default.
const CAPACITY: usize = bitcoin_sock::DEFAULT_BUF_CAPACITY;
const HEADER_LEN: usize = 24;

struct Config {
    quick: bool,
    rounds: usize,
    stream_bytes: usize,
    only: Vec<String>,
}

impl Config {
    fn from_args() -> Config {
        let mut quick = false;
        let mut only = Vec::new();
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--quick" => quick = true,
                "--bench" => {}
                name => only.push(name.to_owned()),
            }
        }
        Config {
            quick,
            rounds: if quick { 3 } else { 7 },
            stream_bytes: if quick { 8 * MIB } else { 32 * MIB },
            only,
        }
    }

    fn runs(&self, workload: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|name| name == workload)
    }
}

/// One line of the report: ours against a baseline, higher ratio is better.
struct Row {
    name: String,
    ours: f64,
    baseline: f64,
    target: Option<f64>,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.ours / self.baseline
    }

    fn verdict(&self) -> &'static str {
        match self.target {
            Some(target) if self.ratio() >= target => "PASS",
            Some(_) => "MISS",
            None => "info",
        }
    }

    fn cells(&self) -> [String; 6] {
        [
            self.name.clone(),
            format!("{:.0} MB/s", self.ours),
            format!("{:.0} MB/s", self.baseline),
            format!("{:.3}x", self.ratio()),
            self.target
                .map_or("-".to_owned(), |target| format!(">= {target:.2}x")),
            self.verdict().to_owned(),
        ]
    }
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Adds a row of rates from the best times of `len` bytes.
    fn add(
        &mut self,
        name: &str,
        len: usize,
        (ours, baseline): (Duration, Duration),
        target: Option<f64>,
    ) {
        let row = Row {
            name: name.to_owned(),
            ours: mb_per_s(len, ours),
            baseline: mb_per_s(len, baseline),
            target,
        };
        let [name, ours, baseline, ratio, target, verdict] = row.cells();
        println!(
            "  {name}: ours {ours}, baseline {baseline}, ratio {ratio} (target {target}) {verdict}"
        );
        self.rows.push(row);
    }

    fn print_summary(&self, platform: &str) {
        let header = ["workload", "ours", "baseline", "ratio", "target", "verdict"];
        let cells: Vec<[String; 6]> = self.rows.iter().map(Row::cells).collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let line = |row: &[&str]| {
            let padded: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        println!("\nSummary ({platform}):\n");
        println!("{}", line(&header));
        let rule: Vec<String> = widths.iter().map(|&width| "-".repeat(width)).collect();
        println!("|-{}-|", rule.join("-|-"));
        for row in &cells {
            println!("{}", line(&row.each_ref().map(String::as_str)));
        }
        let count = |verdict| {
            self.rows
                .iter()
                .filter(|row| row.verdict() == verdict)
                .count()
        };
        println!("\n{} PASS, {} MISS", count("PASS"), count("MISS"));
    }
}

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e6
}

/// Runs `ours` and `baseline` alternately `rounds` times; the best time of each.
fn best_of(
    rounds: usize,
    mut ours: impl FnMut() -> Result<Duration>,
    mut baseline: impl FnMut() -> Result<Duration>,
) -> Result<(Duration, Duration)> {
    let (mut best_ours, mut best_baseline) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        best_ours = best_ours.min(ours()?);
        best_baseline = best_baseline.min(baseline()?);
    }
    Ok((best_ours, best_baseline))
}

// ---------------------------------------------------------------------------------------------
// The streams.

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

/// What a reader must see in a stream: how many items (lines or messages) of how many bytes.
struct Stream {
    bytes: Vec<u8>,
    items: usize,
}

/// `len` bytes (rounded down to whole lines) of lines of `line_len` bytes, the last of each
/// the terminator.
fn line_stream(len: usize, line_len: usize) -> Stream {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let lines = len / line_len;
    let mut bytes = Vec::with_capacity(lines * line_len);
    for _ in 0..lines {
        for _ in 0..line_len - 1 {
            let byte = rng.next() as u8;
            bytes.push(if byte == TERMINATOR { byte ^ 1 } else { byte });
        }
        bytes.push(TERMINATOR);
    }
    Stream {
        bytes,
        items: lines,
    }
}

/// About `len` bytes of messages: a 24-byte header (magic, command, little-endian payload
/// length at offset 16, checksum) and a payload of 50 to 4,096 pseudo-random bytes.
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

fn payload_len(header: &[u8; HEADER_LEN]) -> usize {
    u32::from_le_bytes([header[16], header[17], header[18], header[19]]) as usize
}

fn check(what: &str, stream: &Stream, items: usize, bytes: usize) -> Result<()> {
    if items != stream.items || bytes != stream.bytes.len() {
        return Err(format!(
            "{what}: read {items} items, {bytes} bytes; expected {}, {}",
            stream.items,
            stream.bytes.len()
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The readers, the same natively and in wasm: each reads the whole stream and checks it.

fn lines_bufsock<S: SockIo>(sock: &BufSock<S>, stream: &Stream) -> Result<()> {
    lines_sockio(sock, stream)
}

fn lines_sockio<S: SockIo>(sock: &S, stream: &Stream) -> Result<()> {
    let interrupt = ThreadInterrupt::new();
    let (mut items, mut bytes) = (0, 0);
    while bytes < stream.bytes.len() {
        let line = sock.recv_until_terminator(TERMINATOR, TIMEOUT, &interrupt, 1 << 20)?;
        bytes += line.len() + 1;
        items += 1;
    }
    check("lines", stream, items, bytes)
}

fn lines_std(reader: &mut impl BufRead, stream: &Stream) -> Result<()> {
    let (mut items, mut bytes) = (0, 0);
    let mut line = Vec::new();
    while bytes < stream.bytes.len() {
        line.clear();
        let read = reader.read_until(TERMINATOR, &mut line)?;
        if read == 0 {
            return Err("end of stream".into());
        }
        bytes += read;
        items += 1;
    }
    check("lines (std)", stream, items, bytes)
}

/// Reads messages with `read_exact`: the header, then the payload it announces, into one
/// reused buffer.
fn messages(reader: &mut impl Read, stream: &Stream) -> Result<()> {
    let (mut items, mut bytes) = (0, 0);
    let mut payload = Vec::new();
    while bytes < stream.bytes.len() {
        let mut header = [0u8; HEADER_LEN];
        reader.read_exact(&mut header)?;
        payload.resize(payload_len(&header), 0);
        reader.read_exact(&mut payload)?;
        bytes += HEADER_LEN + payload.len();
        items += 1;
    }
    check("messages", stream, items, bytes)
}

fn messages_deadline<S: SockIo>(sock: &BufSock<S>, stream: &Stream) -> Result<()> {
    let interrupt = ThreadInterrupt::new();
    let (mut items, mut bytes) = (0, 0);
    let mut payload = Vec::new();
    while bytes < stream.bytes.len() {
        // One adapter per message: its deadline covers the message.
        let mut reader = DeadlineIo::new(sock, TIMEOUT, &interrupt);
        let mut header = [0u8; HEADER_LEN];
        reader.read_exact(&mut header)?;
        payload.resize(payload_len(&header), 0);
        reader.read_exact(&mut payload)?;
        bytes += HEADER_LEN + payload.len();
        items += 1;
    }
    check("messages (DeadlineIo)", stream, items, bytes)
}

// ---------------------------------------------------------------------------------------------
// Native: a thread writes the stream into a blocking TcpStream; the reader gets the other end.

#[cfg(not(target_os = "wasi"))]
mod host {
    use super::*;

    fn std_pair() -> Result<(TcpStream, TcpStream)> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let writer = TcpStream::connect(listener.local_addr()?)?;
        let (reader, _) = listener.accept()?;
        writer.set_nodelay(true)?;
        reader.set_nodelay(true)?;
        Ok((writer, reader))
    }

    /// The time `read` takes to read `stream` from the reading end of a fresh connection.
    fn timed(stream: &Stream, read: impl FnOnce(TcpStream) -> Result<()>) -> Result<Duration> {
        let (mut writer, reader) = std_pair()?;
        std::thread::scope(|scope| {
            let sender = scope.spawn(move || -> Result<()> {
                io::Write::write_all(&mut writer, &stream.bytes)?;
                Ok(())
            });
            let start = Instant::now();
            read(reader)?;
            let elapsed = start.elapsed();
            sender.join().map_err(|_| "writer thread panicked")??;
            Ok(elapsed)
        })
    }

    pub(super) fn bufsock_lines(stream: &Stream) -> Result<Duration> {
        timed(stream, |reader| {
            lines_bufsock(&BufSock::new(Sock::from(reader)), stream)
        })
    }

    pub(super) fn sock_lines(stream: &Stream) -> Result<Duration> {
        timed(stream, |reader| lines_sockio(&Sock::from(reader), stream))
    }

    pub(super) fn std_lines(stream: &Stream) -> Result<Duration> {
        timed(stream, |reader| {
            lines_std(&mut BufReader::with_capacity(CAPACITY, reader), stream)
        })
    }

    pub(super) fn deadline_messages(stream: &Stream) -> Result<Duration> {
        timed(stream, |reader| {
            messages_deadline(&BufSock::new(Sock::from(reader)), stream)
        })
    }

    pub(super) fn bufreader_deadline_messages(stream: &Stream) -> Result<Duration> {
        timed(stream, |reader| {
            let sock = Sock::from(reader);
            let interrupt = ThreadInterrupt::new();
            let mut buffered =
                BufReader::with_capacity(CAPACITY, sock.with_deadline(TIMEOUT, &interrupt));
            messages(&mut buffered, stream)
        })
    }

    pub(super) fn std_messages(stream: &Stream) -> Result<Duration> {
        timed(stream, |reader| {
            let mut buffered = BufReader::with_capacity(CAPACITY, reader);
            messages(&mut buffered, stream)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// wasm: no threads. The reader's waits write what the writing end takes, then wait for both.

#[cfg(target_os = "wasi")]
mod host {
    use std::cell::Cell;
    use std::io::Write;

    use bitcoin_sock::{Events, SockEvent};

    use super::*;

    /// The reading sock; its `wait` first sends what the writing sock takes of the stream.
    struct Pumped<'a> {
        reader: Sock,
        writer: Sock,
        stream: &'a [u8],
        sent: Cell<usize>,
    }

    impl Pumped<'_> {
        fn pump(&self) -> io::Result<()> {
            let mut sent = self.sent.get();
            while sent < self.stream.len() {
                match self.writer.send(&self.stream[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            self.sent.set(sent);
            Ok(())
        }
    }

    impl SockIo for Pumped<'_> {
        fn send(&self, data: &[u8]) -> io::Result<usize> {
            self.reader.send(data)
        }

        fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
            self.reader.recv(buf)
        }

        fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
            self.reader.peek(buf)
        }

        fn wait(&self, timeout: Duration, requested: SockEvent) -> io::Result<SockEvent> {
            self.pump()?;
            let mut socks = [
                (&self.reader, Events::new(requested)),
                (&self.writer, Events::new(SockEvent::SEND)),
            ];
            let count = if self.sent.get() < self.stream.len() {
                2
            } else {
                1
            };
            Sock::wait_many(timeout, &mut socks[..count])?;
            Ok(socks[0].1.occurred)
        }
    }

    fn pumped(stream: &Stream) -> Result<Pumped<'_>> {
        let listener = Sock::bind_listen(SocketAddr::from(([127, 0, 0, 1], 0)), 4)?;
        let writer = Sock::connect(listener.local_addr()?, TIMEOUT)?;
        if listener.wait(TIMEOUT, SockEvent::RECV)?.is_empty() {
            return Err("no connection to accept".into());
        }
        let (reader, _) = listener.accept()?;
        Ok(Pumped {
            reader,
            writer,
            stream: &stream.bytes,
            sent: Cell::new(0),
        })
    }

    /// The `std::net` reading end, non-blocking; its reads first write what the writing end
    /// takes, and wait with wasi-libc's `poll()`.
    struct PumpedStd<'a> {
        reader: TcpStream,
        writer: TcpStream,
        stream: &'a [u8],
        sent: usize,
    }

    impl Read for PumpedStd<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            loop {
                while self.sent < self.stream.len() {
                    match self.writer.write(&self.stream[self.sent..]) {
                        Ok(n) => self.sent += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                match self.reader.read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => return other,
                }
                use std::os::fd::AsRawFd;
                let mut fds = [
                    libc::pollfd {
                        fd: self.reader.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: self.writer.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    },
                ];
                let count = if self.sent < self.stream.len() { 2 } else { 1 };
                // SAFETY: `fds` is a valid, exclusively borrowed array of `count` pollfds.
                if unsafe { libc::poll(fds.as_mut_ptr(), count as libc::nfds_t, 60_000) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
    }

    fn pumped_std(stream: &Stream) -> Result<PumpedStd<'_>> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let writer = TcpStream::connect(listener.local_addr()?)?;
        let (reader, _) = listener.accept()?;
        writer.set_nonblocking(true)?;
        reader.set_nonblocking(true)?;
        Ok(PumpedStd {
            reader,
            writer,
            stream: &stream.bytes,
            sent: 0,
        })
    }

    fn timed(read: impl FnOnce() -> Result<()>) -> Result<Duration> {
        let start = Instant::now();
        read()?;
        Ok(start.elapsed())
    }

    pub(super) fn bufsock_lines(stream: &Stream) -> Result<Duration> {
        let sock = BufSock::new(pumped(stream)?);
        timed(|| lines_bufsock(&sock, stream))
    }

    pub(super) fn sock_lines(stream: &Stream) -> Result<Duration> {
        let sock = pumped(stream)?;
        timed(|| lines_sockio(&sock, stream))
    }

    pub(super) fn std_lines(stream: &Stream) -> Result<Duration> {
        let mut reader = BufReader::with_capacity(CAPACITY, pumped_std(stream)?);
        timed(|| lines_std(&mut reader, stream))
    }

    pub(super) fn deadline_messages(stream: &Stream) -> Result<Duration> {
        let sock = BufSock::new(pumped(stream)?);
        timed(|| messages_deadline(&sock, stream))
    }

    pub(super) fn bufreader_deadline_messages(stream: &Stream) -> Result<Duration> {
        let sock = pumped(stream)?;
        let interrupt = ThreadInterrupt::new();
        let mut buffered =
            BufReader::with_capacity(CAPACITY, sock.with_deadline(TIMEOUT, &interrupt));
        timed(|| messages(&mut buffered, stream))
    }

    pub(super) fn std_messages(stream: &Stream) -> Result<Duration> {
        let mut buffered = BufReader::with_capacity(CAPACITY, pumped_std(stream)?);
        timed(|| messages(&mut buffered, stream))
    }
}

fn lines(config: &Config, report: &mut Report) -> Result<()> {
    let wasi = cfg!(target_os = "wasi");
    for (line_len, label) in [(256, "256 B"), (64 * 1024, "64 KiB")] {
        let stream = line_stream(config.stream_bytes, line_len);
        let len = stream.bytes.len();
        println!(
            "\nlines of {label}: {} MiB, best of {} rounds",
            len / MIB,
            config.rounds
        );
        let std_target = if wasi { None } else { Some(0.9) };
        report.add(
            &format!("lines {label}: BufSock::recv_until_terminator vs BufReader::read_until"),
            len,
            best_of(
                config.rounds,
                || host::bufsock_lines(&stream),
                || host::std_lines(&stream),
            )?,
            std_target,
        );
        // Today's figure: the unbuffered sock, which peeks and reads every line. In wasm its
        // backend reads ahead already; BufSock must not be slower there.
        report.add(
            &format!("lines {label}: BufSock vs Sock::recv_until_terminator"),
            len,
            best_of(
                config.rounds,
                || host::bufsock_lines(&stream),
                || host::sock_lines(&stream),
            )?,
            Some(if wasi { 1.0 } else { 0.9 }),
        );
    }
    Ok(())
}

fn p2p(config: &Config, report: &mut Report) -> Result<()> {
    let stream = p2p_stream(config.stream_bytes);
    let len = stream.bytes.len();
    println!(
        "\nP2P-like messages: {} messages, {} MiB, best of {} rounds",
        stream.items,
        len / MIB,
        config.rounds
    );
    let target = if cfg!(target_os = "wasi") {
        None
    } else {
        Some(0.9)
    };
    report.add(
        "messages: DeadlineIo<BufSock>::read_exact vs BufReader<TcpStream>",
        len,
        best_of(
            config.rounds,
            || host::deadline_messages(&stream),
            || host::std_messages(&stream),
        )?,
        target,
    );
    report.add(
        "messages: BufReader<DeadlineIo<Sock>>::read_exact vs BufReader<TcpStream>",
        len,
        best_of(
            config.rounds,
            || host::bufreader_deadline_messages(&stream),
            || host::std_messages(&stream),
        )?,
        target,
    );
    Ok(())
}

fn main() -> Result<()> {
    let config = Config::from_args();
    let platform = if cfg!(target_os = "wasi") {
        "wasm32-wasip2 in wasmtime"
    } else {
        "native"
    };
    println!(
        "bitcoin-sock BufSock benchmarks, {platform}{}, buffers of {} KiB",
        if config.quick { ", --quick sizes" } else { "" },
        CAPACITY / 1024
    );
    let started = Instant::now();
    let mut report = Report::default();
    if config.runs("lines") {
        lines(&config, &mut report)?;
    }
    if config.runs("p2p") {
        p2p(&config, &mut report)?;
    }
    report.print_summary(platform);
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
