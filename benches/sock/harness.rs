//! The harness every workload shares: sizes, the report, pairs, allocations, pinned threads.
//!
//! Sizes ([`Config`]), the report and its ratios ([`Report`], [`Row`], [`best_of`]), connected
//! pairs of socks and of `std::net` streams, allocation counting (a counting global
//! allocator) and, natively, threads pinned to CPUs.
//!
//! # Adding a workload
//!
//! 1. A file `benches/sock/<name>.rs` that opens with one `//!` line naming what is measured
//!    and against which baseline, and has `pub(crate) fn run(config: &Config, report: &mut
//!    Report) -> Result<()>`: it prints a heading (`"\n<n>. <what>: ..."`), measures ours and
//!    the baseline a user would pick in the same run (alternating them with [`best_of`], so
//!    a neighbour's noise slows both alike) and adds one [`Row`] per figure, usually
//!    [`Row::ratio`] with the ratio "higher is better".
//! 2. Where the host changes how the workload runs (natively a thread per side; in wasmtime
//!    one thread drives both ends), the two versions sit side by side in that file, in
//!    `mod native` (`#[cfg(not(target_os = "wasi"))]`) and `mod wasm`
//!    (`#[cfg(target_os = "wasi")]`), each with the same functions; the rest is shared.
//! 3. `mod <name>;` and one line in `WORKLOADS` of `main.rs`: `<name>` becomes the word that
//!    selects it on the command line (`cargo bench --bench sock -- <name>`).
//! 4. New sizes are fields of [`Config`], with a full and a `--quick` value; BENCHMARKS.md
//!    gets the figures, and `scripts/bench.sh` joins the summary rows by name.

use std::alloc::{GlobalAlloc, Layout, System};
use std::error::Error;
use std::io;
#[cfg(any(unix, target_os = "wasi"))]
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
#[cfg(not(target_os = "wasi"))]
use std::time::Instant;

use bitcoin_sock::{Sock, SockEvent};

pub(crate) type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// Far longer than any single operation here needs on loopback; reached only if one hangs.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// A counting global allocator (the memory and sockman workloads): allocations, and bytes live.

pub(crate) struct CountingAllocator;

pub(crate) static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
pub(crate) static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only an atomic.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
pub(crate) static GLOBAL: CountingAllocator = CountingAllocator;

pub(crate) fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Heap bytes allocated and not yet freed.
pub(crate) fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// Configuration, results and the report.

/// Sizes of one run: the defaults are those BENCHMARKS.md reports, `--quick` scales them down.
pub(crate) struct Config {
    pub(crate) quick: bool,
    /// Rounds of the ping-pong and wait_many measurements.
    pub(crate) rounds: usize,
    /// Passes of the bulk measurement (each in [`BULK_SLICES`] alternating slices).
    pub(crate) bulk_rounds: usize,
    /// Rounds of the terminator measurements, short enough that more rounds are cheap.
    pub(crate) stream_rounds: usize,
    pub(crate) bulk_bytes: usize,
    pub(crate) round_trips: usize,
    pub(crate) stream_bytes: usize,
    /// The byte-at-a-time baseline is slow: it reads a shorter stream, normalised to MB/s.
    pub(crate) byte_stream_bytes: usize,
    pub(crate) wait_counts: Vec<usize>,
    /// Roughly how many sock-visits one timed `wait_many` measurement makes (calls × socks).
    pub(crate) wait_work: usize,
    /// Rounds of the SockMan echo and host-poll measurements.
    pub(crate) sockman_rounds: usize,
    /// Rounds of SockMan idle-many: short ones, many, so the best falls in a quiet moment.
    pub(crate) idle_rounds: usize,
    pub(crate) idle_counts: Vec<usize>,
    /// Loop iterations per idle-many round (see [`Config::idle_iterations`]).
    pub(crate) idle_iterations: usize,
    pub(crate) echo_counts: Vec<usize>,
    /// Messages per connection per SockMan echo round.
    pub(crate) echo_messages: usize,
    pub(crate) only: Vec<String>,
}

impl Config {
    pub(crate) fn from_args() -> Config {
        let mut quick = false;
        let mut only = Vec::new();
        // `cargo bench` passes `--bench`; any other word names a workload to run.
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--quick" => quick = true,
                "--bench" => {}
                name => only.push(name.to_owned()),
            }
        }
        if quick {
            Config {
                quick,
                rounds: 3,
                bulk_rounds: 2,
                stream_rounds: 3,
                bulk_bytes: 256 * MIB,
                round_trips: 20_000,
                stream_bytes: 16 * MIB,
                byte_stream_bytes: MIB / 4,
                wait_counts: vec![1, 10, 125, 1_000, 10_000],
                wait_work: 500_000,
                sockman_rounds: 3,
                idle_rounds: 5,
                idle_counts: vec![10, 125, 1_000, 10_000],
                idle_iterations: 500,
                echo_counts: vec![100, 1_000],
                echo_messages: 20,
                only,
            }
        } else {
            Config {
                quick,
                rounds: 3,
                bulk_rounds: 3,
                stream_rounds: 5,
                bulk_bytes: 1024 * MIB,
                round_trips: 100_000,
                stream_bytes: 64 * MIB,
                byte_stream_bytes: MIB,
                wait_counts: vec![1, 10, 125, 1_000, 10_000],
                wait_work: 2_000_000,
                sockman_rounds: 5,
                idle_rounds: 15,
                idle_counts: vec![10, 125, 1_000, 10_000],
                idle_iterations: 1_500,
                echo_counts: vec![100, 1_000],
                echo_messages: 100,
                only,
            }
        }
    }

    /// Iterations of one idle-many round over `connections`: in wasm, where an iteration
    /// costs O(connections), fewer for many, so a round stays short.
    pub(crate) fn idle_iterations(&self, connections: usize) -> usize {
        if cfg!(target_os = "wasi") {
            (2_000_000 / connections.max(1)).clamp(50, self.idle_iterations)
        } else {
            self.idle_iterations
        }
    }

    pub(crate) fn runs(&self, workload: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|name| name == workload)
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    Pass,
    Miss,
    /// Reported, with no target to meet.
    Info,
}

/// One line of the report.
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) ours: String,
    pub(crate) baseline: String,
    /// ours / baseline, higher is better.
    pub(crate) ratio: Option<f64>,
    pub(crate) target: String,
    pub(crate) verdict: Verdict,
}

impl Row {
    /// A ratio row: `ratio` must reach `target` (when there is one).
    pub(crate) fn ratio(
        name: &str,
        ours: String,
        baseline: String,
        ratio: f64,
        target: Option<f64>,
    ) -> Row {
        let verdict = match target {
            Some(target) if ratio >= target => Verdict::Pass,
            Some(_) => Verdict::Miss,
            None => Verdict::Info,
        };
        Row {
            name: name.to_owned(),
            ours,
            baseline,
            ratio: Some(ratio),
            target: target.map_or("-".to_owned(), |target| format!(">= {target:.2}x")),
            verdict,
        }
    }

    pub(crate) fn cells(&self) -> [String; 6] {
        [
            self.name.clone(),
            self.ours.clone(),
            self.baseline.clone(),
            // Three decimals near 1, so a ratio just under its target does not print as it.
            self.ratio.map_or("-".to_owned(), |ratio| {
                if ratio < 10.0 {
                    format!("{ratio:.3}x")
                } else {
                    format!("{ratio:.1}x")
                }
            }),
            self.target.clone(),
            match self.verdict {
                Verdict::Pass => "PASS",
                Verdict::Miss => "MISS",
                Verdict::Info => "info",
            }
            .to_owned(),
        ]
    }
}

pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
}

impl Report {
    pub(crate) fn add(&mut self, row: Row) {
        let [name, ours, baseline, ratio, target, verdict] = row.cells();
        println!(
            "  {name}: ours {ours}, baseline {baseline}, ratio {ratio} (target {target}) {verdict}"
        );
        self.rows.push(row);
    }

    pub(crate) fn print_summary(&self, platform: &str) {
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
        let misses = self
            .rows
            .iter()
            .filter(|row| row.verdict == Verdict::Miss)
            .count();
        let passes = self
            .rows
            .iter()
            .filter(|row| row.verdict == Verdict::Pass)
            .count();
        println!("\n{passes} PASS, {misses} MISS");
    }
}

pub(crate) fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e6
}

pub(crate) fn rate(bytes: usize, time: Duration) -> String {
    format!("{:.0} MB/s", mb_per_s(bytes, time))
}

/// Runs `ours` and `baseline` alternately `rounds` times; the best time of each.
pub(crate) fn best_of(
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
// Connections.

pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A connected pair of socks: (made by `Sock::connect`, made by `accept`).
pub(crate) fn sock_pair(listener: &Sock) -> Result<(Sock, Sock)> {
    let client = Sock::connect(listener.local_addr()?, TIMEOUT)?;
    if listener.wait(TIMEOUT, SockEvent::RECV)?.is_empty() {
        return Err("no connection to accept".into());
    }
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

pub(crate) fn new_sock_pair() -> Result<(Sock, Sock)> {
    sock_pair(&Sock::bind_listen(loopback(), 16)?)
}

/// A connected pair of std streams with `TCP_NODELAY` (as the crate sets on its socks).
pub(crate) fn std_pair() -> Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind(loopback())?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

pub(crate) fn is_would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

/// Sends all of `data`: tries first, waits for SEND only on would-block.
pub(crate) fn send_all(sock: &Sock, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match sock.send(data) {
            Ok(n) => data = &data[n..],
            // No deadline, like the blocking baseline (and no kernel timer).
            Err(e) if is_would_block(&e) => {
                sock.wait(Duration::MAX, SockEvent::SEND)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Receives what has arrived into `buf`: tries first, waits for RECV only on would-block.
pub(crate) fn recv_some(sock: &Sock, buf: &mut [u8]) -> Result<usize> {
    loop {
        match sock.recv(buf) {
            Ok(0) => return Err("connection closed by peer".into()),
            Ok(n) => return Ok(n),
            Err(e) if is_would_block(&e) => {
                sock.wait(Duration::MAX, SockEvent::RECV)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub(crate) fn recv_exact(sock: &Sock, mut buf: &mut [u8]) -> Result<()> {
    while !buf.is_empty() {
        let n = recv_some(sock, buf)?;
        buf = &mut buf[n..];
    }
    Ok(())
}

/// wasi-libc's and the native `poll(2)` on one descriptor: the wait of the std baselines that
/// run non-blocking.
#[cfg(any(unix, target_os = "wasi"))]
pub(crate) fn poll_fds(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structs.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if ready < 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(ready as usize)
}

#[cfg(any(unix, target_os = "wasi"))]
pub(crate) fn pollfd(stream: &impl std::os::fd::AsRawFd, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd: stream.as_raw_fd(),
        events,
        revents: 0,
    }
}

/// Sends all of `data` on a non-blocking std stream (TCP or Unix-domain), waiting with
/// poll() on would-block.
#[cfg(any(unix, target_os = "wasi"))]
pub(crate) fn std_send_all<S: std::os::fd::AsRawFd>(stream: &S, mut data: &[u8]) -> Result<()>
where
    for<'a> &'a S: Write,
{
    let mut writer = stream;
    while !data.is_empty() {
        match writer.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if is_would_block(&e) => {
                poll_fds(&mut [pollfd(stream, libc::POLLOUT)], 60_000)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Fills `buf` from a non-blocking std stream (TCP or Unix-domain), waiting with poll() on
/// would-block.
#[cfg(any(unix, target_os = "wasi"))]
pub(crate) fn std_recv_exact<S: std::os::fd::AsRawFd>(stream: &S, mut buf: &mut [u8]) -> Result<()>
where
    for<'a> &'a S: Read,
{
    let mut reader = stream;
    while !buf.is_empty() {
        match reader.read(buf) {
            Ok(0) => return Err("connection closed by peer".into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if is_would_block(&e) => {
                poll_fds(&mut [pollfd(stream, libc::POLLIN)], 60_000)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// wasm: one thread drives both ends of a stream.

/// The reading sock in wasm, where no thread sends: its `wait` first sends as much of the
/// stream as the writing sock takes, then waits for the reader's events or the writer's room.
#[cfg(target_os = "wasi")]
pub(crate) struct Pumped<'a> {
    reader: &'a Sock,
    writer: &'a Sock,
    stream: &'a [u8],
    sent: std::cell::Cell<usize>,
}

#[cfg(target_os = "wasi")]
impl<'a> Pumped<'a> {
    pub(crate) fn new(reader: &'a Sock, writer: &'a Sock, stream: &'a [u8]) -> Pumped<'a> {
        Pumped {
            reader,
            writer,
            stream,
            sent: std::cell::Cell::new(0),
        }
    }

    fn pump(&self) -> io::Result<()> {
        let mut sent = self.sent.get();
        while sent < self.stream.len() {
            match self.writer.send(&self.stream[sent..]) {
                Ok(n) => sent += n,
                Err(e) if is_would_block(&e) => break,
                Err(e) => return Err(e),
            }
        }
        self.sent.set(sent);
        Ok(())
    }
}

#[cfg(target_os = "wasi")]
impl bitcoin_sock::SockIo for Pumped<'_> {
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
            (self.reader, bitcoin_sock::Events::new(requested)),
            (self.writer, bitcoin_sock::Events::new(SockEvent::SEND)),
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

/// [`Pumped`] for `std::net`: the reading stream (non-blocking) as an [`io::Read`] whose
/// reads first write what the writing stream takes of the stream, and on would-block wait
/// for both with wasi-libc's `poll()`.
#[cfg(target_os = "wasi")]
pub(crate) struct PumpedStd<'a> {
    reader: &'a TcpStream,
    writer: &'a TcpStream,
    stream: &'a [u8],
    sent: usize,
}

#[cfg(target_os = "wasi")]
impl<'a> PumpedStd<'a> {
    pub(crate) fn new(
        reader: &'a TcpStream,
        writer: &'a TcpStream,
        stream: &'a [u8],
    ) -> Result<PumpedStd<'a>> {
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(PumpedStd {
            reader,
            writer,
            stream,
            sent: 0,
        })
    }
}

#[cfg(target_os = "wasi")]
impl Read for PumpedStd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            while self.sent < self.stream.len() {
                match (&mut &*self.writer).write(&self.stream[self.sent..]) {
                    Ok(n) => self.sent += n,
                    Err(e) if is_would_block(&e) => break,
                    Err(e) => return Err(e),
                }
            }
            match (&mut &*self.reader).read(buf) {
                Err(e) if is_would_block(&e) => {}
                other => return other,
            }
            let mut fds = [
                pollfd(self.reader, libc::POLLIN),
                pollfd(self.writer, libc::POLLOUT),
            ];
            let count = if self.sent < self.stream.len() { 2 } else { 1 };
            poll_fds(&mut fds[..count], 60_000).map_err(io::Error::other)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Threads pinned to CPUs (native).

/// The CPUs this process may run on (Linux); empty where that cannot be known or pinned.
#[cfg(target_os = "linux")]
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `allowed` is a valid cpu_set_t of the size given.
    let read =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) };
    if read != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &allowed) })
        .collect()
}

#[cfg(all(not(target_os = "linux"), not(target_os = "wasi")))]
pub(crate) fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Pins the calling thread to `cpu` (Linux) until dropped, which restores its old mask.
#[cfg(target_os = "linux")]
pub(crate) struct Pinned(Option<libc::cpu_set_t>);

#[cfg(target_os = "linux")]
impl Pinned {
    pub(crate) fn to(cpu: Option<usize>) -> Pinned {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let (mut old, mut one): (libc::cpu_set_t, libc::cpu_set_t) =
            unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        let Some(cpu) = cpu else {
            return Pinned(None);
        };
        // SAFETY: `old` is a valid cpu_set_t of `size` bytes.
        if unsafe { libc::sched_getaffinity(0, size, &mut old) } != 0 {
            return Pinned(None);
        }
        // SAFETY: `cpu` came from `allowed_cpus`, so it is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        // SAFETY: `one` is a valid cpu_set_t of `size` bytes; a refusal changes nothing.
        if unsafe { libc::sched_setaffinity(0, size, &one) } != 0 {
            return Pinned(None);
        }
        Pinned(Some(old))
    }
}

#[cfg(target_os = "linux")]
impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            // SAFETY: `old` is the valid mask read in `to`.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), old) };
        }
    }
}

#[cfg(all(not(target_os = "linux"), not(target_os = "wasi")))]
pub(crate) struct Pinned;

#[cfg(all(not(target_os = "linux"), not(target_os = "wasi")))]
impl Pinned {
    pub(crate) fn to(_cpu: Option<usize>) -> Pinned {
        Pinned
    }
}

/// Runs `timed` here and `other` in a second thread, each pinned to its CPU of `cpus`; the
/// time of `timed`.
#[cfg(not(target_os = "wasi"))]
pub(crate) fn two_threads(
    cpus: Option<(usize, usize)>,
    timed: impl FnOnce() -> Result<()>,
    other: impl FnOnce() -> Result<()> + Send,
) -> Result<Duration> {
    let _pinned = Pinned::to(cpus.map(|(here, _)| here));
    std::thread::scope(|scope| {
        let other = scope.spawn(move || {
            let _pinned = Pinned::to(cpus.map(|(_, there)| there));
            other()
        });
        let start = Instant::now();
        timed()?;
        let elapsed = start.elapsed();
        other.join().map_err(|_| "second thread panicked")??;
        Ok(elapsed)
    })
}

/// Two different CPUs this process may run on, if it can pin threads and has two.
#[cfg(not(target_os = "wasi"))]
pub(crate) fn two_cores() -> Option<(usize, usize)> {
    match allowed_cpus()[..] {
        [first, second, ..] => Some((first, second)),
        _ => None,
    }
}
