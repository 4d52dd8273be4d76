//! The benchmarks of issue 4: every figure of `bitcoin-sock` beside its baseline, measured in
//! the same run and printed as a ratio, so the noise of a busy 2-core machine cancels out.
//!
//! ```sh
//! cargo bench --bench sock                           # native: a thread per side
//! cargo bench --bench sock --target wasm32-wasip2    # in wasmtime: one thread drives both sides
//! cargo bench --bench sock -- --quick bulk memory    # smaller sizes; only the named workloads
//! ```
//!
//! Workloads (names for the command line): `bulk`, `pingpong`, `terminator`, `wait_many`,
//! `memory`, `unix` (native Unix only: Unix-domain sockets, `benches/sock/unix_domain.rs`). Each measurement runs several rounds (3 to 7), ours and the baseline alternating,
//! and the best round of each is kept (noise only ever adds time). Natively the two threads of
//! a measurement are pinned to CPUs (Linux), the same way for ours and the baseline. BENCHMARKS.md has the
//! latest figures.
//!
//! In wasmtime there are no threads: both ends of a connection live in this one instance and
//! the loops drive them in turn. The `std::net` baseline there is `std::net` in non-blocking
//! mode with wasi-libc's `poll()` as its wait: spinning on `WouldBlock` alone stalls for good,
//! because wasmtime moves a stream's buffered output to the host socket only while the guest
//! is inside `wasi:io/poll`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::error::Error;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bitcoin_sock::{Events, Sock, SockEvent, SockIo, ThreadInterrupt};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// Far longer than any single operation here needs on loopback; reached only if one hangs.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The byte `recv_until_terminator` looks for: `\n`, as for the lines of Core's Tor control
/// protocol and HTTP headers.
const TERMINATOR: u8 = b'\n';
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// A counting global allocator (workload 5).

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only an atomic.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// Configuration, results and the report.

/// Sizes of one run; the defaults are the issue's, `--quick` scales them down.
struct Config {
    quick: bool,
    /// Rounds of the ping-pong and wait_many measurements.
    rounds: usize,
    /// Passes of the bulk measurement (each in [`BULK_SLICES`] alternating slices).
    bulk_rounds: usize,
    /// Rounds of the terminator measurements, short enough that more rounds are cheap.
    stream_rounds: usize,
    bulk_bytes: usize,
    round_trips: usize,
    stream_bytes: usize,
    /// The byte-at-a-time baseline is slow: it reads a shorter stream, normalised to MB/s.
    byte_stream_bytes: usize,
    wait_counts: Vec<usize>,
    /// Roughly how many sock-visits one timed `wait_many` measurement makes (calls × socks).
    wait_work: usize,
    only: Vec<String>,
}

impl Config {
    fn from_args() -> Config {
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
                wait_counts: vec![10, 125, 1_000, 10_000],
                wait_work: 500_000,
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
                wait_counts: vec![10, 125, 1_000, 10_000],
                wait_work: 2_000_000,
                only,
            }
        }
    }

    fn runs(&self, workload: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|name| name == workload)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Verdict {
    Pass,
    Miss,
    /// Reported, with no target to meet.
    Info,
}

/// One line of the report.
struct Row {
    name: String,
    ours: String,
    baseline: String,
    /// ours / baseline, higher is better.
    ratio: Option<f64>,
    target: String,
    verdict: Verdict,
}

impl Row {
    /// A ratio row: `ratio` must reach `target` (when there is one).
    fn ratio(name: &str, ours: String, baseline: String, ratio: f64, target: Option<f64>) -> Row {
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

    fn cells(&self) -> [String; 6] {
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

struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn add(&mut self, row: Row) {
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

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e6
}

fn rate(bytes: usize, time: Duration) -> String {
    format!("{:.0} MB/s", mb_per_s(bytes, time))
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
// Connections.

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A connected pair of socks: (made by `Sock::connect`, made by `accept`).
fn sock_pair(listener: &Sock) -> Result<(Sock, Sock)> {
    let client = Sock::connect(listener.local_addr()?, TIMEOUT)?;
    if listener.wait(TIMEOUT, SockEvent::RECV)?.is_empty() {
        return Err("no connection to accept".into());
    }
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

fn new_sock_pair() -> Result<(Sock, Sock)> {
    sock_pair(&Sock::bind_listen(loopback(), 16)?)
}

/// A connected pair of std streams with `TCP_NODELAY` (as the crate sets on its socks).
fn std_pair() -> Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind(loopback())?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    Ok((client, server))
}

fn is_would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

/// Sends all of `data`: tries first, waits for SEND only on would-block.
fn send_all(sock: &Sock, mut data: &[u8]) -> Result<()> {
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
fn recv_some(sock: &Sock, buf: &mut [u8]) -> Result<usize> {
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

fn recv_exact(sock: &Sock, mut buf: &mut [u8]) -> Result<()> {
    while !buf.is_empty() {
        let n = recv_some(sock, buf)?;
        buf = &mut buf[n..];
    }
    Ok(())
}

/// wasi-libc's and the native `poll(2)` on one descriptor: the wait of the std baselines that
/// run non-blocking.
#[cfg(any(unix, target_os = "wasi"))]
fn poll_fds(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structs.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if ready < 0 {
        return Err(io::Error::last_os_error().into());
    }
    Ok(ready as usize)
}

#[cfg(any(unix, target_os = "wasi"))]
fn pollfd(stream: &impl std::os::fd::AsRawFd, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd: stream.as_raw_fd(),
        events,
        revents: 0,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Bulk throughput.

/// The bytes every bulk sender sends, one chunk at a time.
const BULK_CHUNK: usize = MIB;
/// The receive buffer, reused.
const RECV_BUF: usize = 64 * 1024;

/// Each pass moves `bulk_bytes` per side in this many slices, ours and the baseline
/// alternating slice by slice: a neighbour's burst of work, which lasts longer than a slice,
/// then slows both alike instead of one whole measurement.
const BULK_SLICES: usize = 16;

fn bulk(config: &Config, report: &mut Report) -> Result<()> {
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

/// Ours, natively: `send_complete` in a writer thread, `recv` + `wait` in this one; the two
/// threads pinned to two cores, as for the baseline.
#[cfg(not(target_os = "wasi"))]
fn bulk_ours(writer: &Sock, reader: &Sock, chunk: &[u8], total: usize) -> Result<Duration> {
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
#[cfg(not(target_os = "wasi"))]
fn bulk_std(
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

/// Ours in wasm: one thread sends and receives in turn (`Sock::send`, `Sock::recv`) and, when
/// neither side moved, waits for both with one `Sock::wait_many`.
#[cfg(target_os = "wasi")]
fn bulk_ours(writer: &Sock, reader: &Sock, chunk: &[u8], total: usize) -> Result<Duration> {
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
#[cfg(target_os = "wasi")]
fn bulk_std(
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

// ---------------------------------------------------------------------------------------------
// 2. Ping-pong latency.

const PING: [u8; 32] = [0x70; 32];

fn per_trip(trips: usize, time: Duration) -> String {
    format!(
        "{:.0} trips/s ({:.1} us)",
        trips as f64 / time.as_secs_f64(),
        time.as_secs_f64() * 1e6 / trips as f64
    )
}

/// Natively the two threads are pinned (Linux), the same way for ours and the baselines: once
/// on two cores (each wake-up crosses cores) and once both on one core (a wake-up is a direct
/// switch, so the cost of each system call shows most). Unpinned, where the scheduler puts
/// them changes the time per trip four-fold from one run to the next.
#[cfg(not(target_os = "wasi"))]
fn pingpong(config: &Config, report: &mut Report) -> Result<()> {
    let trips = config.round_trips;
    println!(
        "\n2. ping-pong: {trips} round trips of 32 bytes, best of {} rounds",
        config.rounds
    );
    println!("  ours: non-blocking socks, try send/recv first, wait only on would-block");
    println!("  baseline: blocking std::net with TCP_NODELAY, a thread per side");
    let (sock_client, sock_server) = new_sock_pair()?;
    let (std_client, std_server) = std_pair()?;
    let cpus = allowed_cpus();
    let mut placements = Vec::new();
    if let Some(two) = two_cores() {
        placements.push(("2 cores", Some(two)));
    }
    if let Some(&first) = cpus.first() {
        placements.push(("1 core", Some((first, first))));
    } else {
        placements.push(("unpinned", None));
    }
    for (placement, cpus) in placements {
        let (ours, baseline) = best_of(
            config.rounds,
            || pingpong_ours(&sock_client, &sock_server, trips, cpus),
            || pingpong_std(&std_client, &std_server, trips, cpus),
        )?;
        report.add(Row::ratio(
            &format!("ping-pong 32 B, {placement}"),
            per_trip(trips, ours),
            per_trip(trips, baseline),
            baseline.as_secs_f64() / ours.as_secs_f64(),
            Some(0.9),
        ));
    }
    // The same non-blocking pattern without this crate: std::net in non-blocking mode and
    // poll(2), on one core. Shows what the pattern itself costs against blocking reads.
    #[cfg(unix)]
    if let Some(&first) = cpus.first() {
        let (nb_client, nb_server) = std_pair()?;
        nb_client.set_nonblocking(true)?;
        nb_server.set_nonblocking(true)?;
        let (ours, nonblocking) = best_of(
            config.rounds,
            || pingpong_ours(&sock_client, &sock_server, trips, Some((first, first))),
            || pingpong_std_nonblocking(&nb_client, &nb_server, trips, (first, first)),
        )?;
        report.add(Row::ratio(
            "ping-pong 32 B, 1 core, vs std non-blocking + poll(2)",
            per_trip(trips, ours),
            per_trip(trips, nonblocking),
            nonblocking.as_secs_f64() / ours.as_secs_f64(),
            None,
        ));
    }
    Ok(())
}

/// The CPUs this process may run on (Linux); empty where that cannot be known or pinned.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<usize> {
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
fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Pins the calling thread to `cpu` (Linux) until dropped, which restores its old mask.
#[cfg(target_os = "linux")]
struct Pinned(Option<libc::cpu_set_t>);

#[cfg(target_os = "linux")]
impl Pinned {
    fn to(cpu: Option<usize>) -> Pinned {
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
struct Pinned;

#[cfg(all(not(target_os = "linux"), not(target_os = "wasi")))]
impl Pinned {
    fn to(_cpu: Option<usize>) -> Pinned {
        Pinned
    }
}

/// Runs `timed` here and `other` in a second thread, each pinned to its CPU of `cpus`; the
/// time of `timed`.
#[cfg(not(target_os = "wasi"))]
fn two_threads(
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
fn two_cores() -> Option<(usize, usize)> {
    match allowed_cpus()[..] {
        [first, second, ..] => Some((first, second)),
        _ => None,
    }
}

#[cfg(not(target_os = "wasi"))]
fn pingpong_ours(
    client: &Sock,
    server: &Sock,
    trips: usize,
    cpus: Option<(usize, usize)>,
) -> Result<Duration> {
    two_threads(
        cpus,
        || {
            let mut pong = [0u8; 32];
            for _ in 0..trips {
                send_all(client, &PING)?;
                recv_exact(client, &mut pong)?;
            }
            Ok(())
        },
        || {
            let mut message = [0u8; 32];
            for _ in 0..trips {
                recv_exact(server, &mut message)?;
                send_all(server, &message)?;
            }
            Ok(())
        },
    )
}

#[cfg(not(target_os = "wasi"))]
fn pingpong_std(
    mut client: &TcpStream,
    mut server: &TcpStream,
    trips: usize,
    cpus: Option<(usize, usize)>,
) -> Result<Duration> {
    two_threads(
        cpus,
        || {
            let mut pong = [0u8; 32];
            for _ in 0..trips {
                client.write_all(&PING)?;
                client.read_exact(&mut pong)?;
            }
            Ok(())
        },
        move || {
            let mut message = [0u8; 32];
            for _ in 0..trips {
                server.read_exact(&mut message)?;
                server.write_all(&message)?;
            }
            Ok(())
        },
    )
}

#[cfg(unix)]
fn pingpong_std_nonblocking(
    client: &TcpStream,
    server: &TcpStream,
    trips: usize,
    cpus: (usize, usize),
) -> Result<Duration> {
    two_threads(
        Some(cpus),
        || {
            let mut pong = [0u8; 32];
            for _ in 0..trips {
                std_send_all(client, &PING)?;
                std_recv_exact(client, &mut pong)?;
            }
            Ok(())
        },
        || {
            let mut message = [0u8; 32];
            for _ in 0..trips {
                std_recv_exact(server, &mut message)?;
                std_send_all(server, &message)?;
            }
            Ok(())
        },
    )
}

/// In wasm one thread plays both ends in turn: the client pings, the server echoes, the client
/// reads the pong. The baseline does the same over std::net in non-blocking mode, waiting with
/// wasi-libc's poll().
#[cfg(target_os = "wasi")]
fn pingpong(config: &Config, report: &mut Report) -> Result<()> {
    let trips = config.round_trips;
    println!(
        "\n2. ping-pong: {trips} round trips of 32 bytes, one thread, best of {} rounds",
        config.rounds
    );
    println!("  ours: try send/recv first, wait only on would-block");
    println!("  baseline: std::net non-blocking + wasi-libc poll(), the same loop");
    let (sock_client, sock_server) = new_sock_pair()?;
    let (std_client, std_server) = std_pair()?;
    std_client.set_nonblocking(true)?;
    std_server.set_nonblocking(true)?;
    let (ours, baseline) = best_of(
        config.rounds,
        || {
            let start = Instant::now();
            let (mut message, mut pong) = ([0u8; 32], [0u8; 32]);
            for _ in 0..trips {
                send_all(&sock_client, &PING)?;
                recv_exact(&sock_server, &mut message)?;
                send_all(&sock_server, &message)?;
                recv_exact(&sock_client, &mut pong)?;
            }
            Ok(start.elapsed())
        },
        || {
            let start = Instant::now();
            let (mut message, mut pong) = ([0u8; 32], [0u8; 32]);
            for _ in 0..trips {
                std_send_all(&std_client, &PING)?;
                std_recv_exact(&std_server, &mut message)?;
                std_send_all(&std_server, &message)?;
                std_recv_exact(&std_client, &mut pong)?;
            }
            Ok(start.elapsed())
        },
    )?;
    report.add(Row::ratio(
        "ping-pong 32 B, 1 thread",
        per_trip(trips, ours),
        per_trip(trips, baseline),
        baseline.as_secs_f64() / ours.as_secs_f64(),
        None,
    ));
    Ok(())
}

/// Sends all of `data` on a non-blocking std stream, waiting with poll() on would-block.
#[cfg(any(unix, target_os = "wasi"))]
fn std_send_all(mut stream: &TcpStream, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match stream.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if is_would_block(&e) => {
                poll_fds(&mut [pollfd(stream, libc::POLLOUT)], 60_000)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Fills `buf` from a non-blocking std stream, waiting with poll() on would-block.
#[cfg(any(unix, target_os = "wasi"))]
fn std_recv_exact(mut stream: &TcpStream, mut buf: &mut [u8]) -> Result<()> {
    while !buf.is_empty() {
        match stream.read(buf) {
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
// 3. recv_until_terminator.

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
    fn read_line<S: SockIo>(self, sock: &S, max_data: usize) -> Result<Vec<u8>> {
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

/// One timed read of `stream` by `reader`; natively a thread sends it with `send_complete`.
#[cfg(not(target_os = "wasi"))]
fn time_stream(
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

/// The reading sock in wasm, where no thread sends: its `wait` first sends as much of the stream
/// as the writing sock takes, then waits for the reader's events or the writer's room.
#[cfg(target_os = "wasi")]
struct Pumped<'a> {
    reader: &'a Sock,
    writer: &'a Sock,
    stream: &'a [u8],
    sent: std::cell::Cell<usize>,
}

#[cfg(target_os = "wasi")]
impl Pumped<'_> {
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
            (self.reader, Events::new(requested)),
            (self.writer, Events::new(SockEvent::SEND)),
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

#[cfg(target_os = "wasi")]
fn time_stream(
    (writer, reader_sock): (&Sock, &Sock),
    reader: LineReader,
    stream: &LineStream,
) -> Result<Duration> {
    let pumped = Pumped {
        reader: reader_sock,
        writer,
        stream: &stream.bytes,
        sent: std::cell::Cell::new(0),
    };
    let start = Instant::now();
    read_stream(&pumped, reader, stream)?;
    Ok(start.elapsed())
}

fn terminator(config: &Config, report: &mut Report) -> Result<()> {
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

// ---------------------------------------------------------------------------------------------
// 4. wait_many over many socks.

/// Raises the descriptor limit to `wanted` (the hard limit too, which root may), or else the
/// soft limit to the hard one; returns the limit in force.
#[cfg(unix)]
fn raise_fd_limit(wanted: usize) -> usize {
    let wanted = wanted as libc::rlim_t;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    let raised = libc::rlimit {
        rlim_cur: wanted.max(limit.rlim_cur),
        rlim_max: wanted.max(limit.rlim_max),
    };
    let soft_to_hard = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    for attempt in [raised, soft_to_hard] {
        // SAFETY: `attempt` is a valid rlimit; a refusal leaves the limits as they were.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &attempt) } == 0 {
            return attempt.rlim_cur as usize;
        }
    }
    limit.rlim_cur as usize
}

/// Descriptors this process keeps besides the idle connections: stdio, listeners, the pairs of
/// the other workloads.
#[cfg(unix)]
const SPARE_FDS: usize = 64;

/// The argument that makes this binary the holder of the idle connections' client ends.
#[cfg(not(target_os = "wasi"))]
const HOLD_ARG: &str = "--hold-connections";

/// The connected socks of the wait_many workload that never become ready: the server ends
/// here, the client ends in a child process (natively: 10,000 connections in one process
/// would need 20,000 descriptors, past the usual hard limit of 20,000 with stdio) or in this
/// instance (in wasm, where nothing can be spawned).
struct IdleSocks {
    servers: Vec<Sock>,
    #[cfg(not(target_os = "wasi"))]
    holder: Option<std::process::Child>,
    #[cfg(target_os = "wasi")]
    clients: Vec<Sock>,
}

#[cfg(not(target_os = "wasi"))]
impl IdleSocks {
    fn open(listener: &Sock, count: usize) -> Result<IdleSocks> {
        use std::io::BufRead;
        use std::process::{Command, Stdio};

        let addr = listener.local_addr()?;
        let mut idle = IdleSocks {
            servers: Vec::with_capacity(count),
            holder: Some(
                Command::new(std::env::current_exe()?)
                    .args([HOLD_ARG, &addr.to_string(), &count.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()?,
            ),
        };
        let deadline = Instant::now() + TIMEOUT;
        while idle.servers.len() < count {
            match listener.accept() {
                Ok((server, _)) => idle.servers.push(server),
                Err(e) if is_would_block(&e) => {
                    if Instant::now() > deadline {
                        return Err("the holder process stopped connecting".into());
                    }
                    if let Some(holder) = idle.holder.as_mut() {
                        if let Some(status) = holder.try_wait()? {
                            return Err(format!("the holder process exited: {status}").into());
                        }
                    }
                    listener.wait(Duration::from_millis(100), SockEvent::RECV)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(stdout) = idle.holder.as_mut().and_then(|holder| holder.stdout.take()) {
            let mut line = String::new();
            io::BufReader::new(stdout).read_line(&mut line)?;
            if line.trim() != "connected" {
                return Err(format!("the holder process said {line:?}").into());
            }
        }
        Ok(idle)
    }
}

#[cfg(not(target_os = "wasi"))]
impl Drop for IdleSocks {
    fn drop(&mut self) {
        if let Some(mut holder) = self.holder.take() {
            // End of its stdin tells the holder to close its connections and exit.
            drop(holder.stdin.take());
            let _ = holder.wait();
        }
    }
}

/// The child's side: connects `count` times to `addr`, says "connected", and keeps the
/// connections open until its stdin ends.
#[cfg(not(target_os = "wasi"))]
fn hold_connections(addr: &str, count: &str) -> Result<()> {
    let addr: SocketAddr = addr.parse()?;
    let count: usize = count.parse()?;
    #[cfg(unix)]
    raise_fd_limit(count + SPARE_FDS);
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(TcpStream::connect_timeout(&addr, TIMEOUT)?);
    }
    println!("connected");
    io::stdout().flush()?;
    io::copy(&mut io::stdin(), &mut io::sink())?;
    drop(clients);
    Ok(())
}

#[cfg(target_os = "wasi")]
impl IdleSocks {
    /// As many pairs as the host lets this instance open, up to `count`.
    fn open(listener: &Sock, count: usize) -> Result<IdleSocks> {
        let mut idle = IdleSocks {
            servers: Vec::with_capacity(count),
            clients: Vec::with_capacity(count),
        };
        while idle.servers.len() < count {
            match sock_pair(listener) {
                Ok((client, server)) => {
                    idle.clients.push(client);
                    idle.servers.push(server);
                }
                Err(e) => {
                    println!("  connection {} failed: {e}", idle.servers.len() + 1);
                    break;
                }
            }
        }
        Ok(idle)
    }
}

fn wait_many(config: &Config, report: &mut Report) -> Result<()> {
    let most = config.wait_counts.iter().copied().max().unwrap_or(1).max(1);
    #[cfg(unix)]
    raise_fd_limit(most + SPARE_FDS);
    println!(
        "\n4. wait_many with exactly one sock ready, per call, best of {} rounds",
        config.rounds
    );
    let listener = Sock::bind_listen(loopback(), 1024)?;
    // The one ready sock: a byte waits in it, never read, so it stays ready.
    let (ready_client, ready_server) = sock_pair(&listener)?;
    send_all(&ready_client, b"!")?;
    if ready_server.wait(TIMEOUT, SockEvent::RECV)?.is_empty() {
        return Err("the ready sock never became readable".into());
    }
    let setup = Instant::now();
    let idle = IdleSocks::open(&listener, most - 1)?;
    let available = idle.servers.len() + 1;
    println!(
        "  {available} connections made in {:.2} s",
        setup.elapsed().as_secs_f64()
    );
    #[cfg(not(unix))]
    let mut first_per_call: Option<Duration> = None;
    for &wanted in &config.wait_counts {
        let count = wanted.min(available);
        // The ready sock sits in the middle of the idle ones.
        let mut socks: Vec<(&Sock, Events)> = idle.servers[..count - 1]
            .iter()
            .map(|sock| (sock, Events::new(SockEvent::RECV)))
            .collect();
        socks.insert(count / 2, (&ready_server, Events::new(SockEvent::RECV)));
        let name = if count == wanted {
            format!("wait_many {count} socks")
        } else {
            format!("wait_many {count} socks (of {wanted})")
        };
        let calls = (config.wait_work / count).clamp(20, 200_000);
        let per_call = |time: Duration| time / calls as u32;
        let ours_measure = |socks: &mut [(&Sock, Events)]| -> Result<Duration> {
            let start = Instant::now();
            for _ in 0..calls {
                if Sock::wait_many(Duration::from_secs(1), socks)? != 1 {
                    return Err("wait_many did not report exactly one ready sock".into());
                }
            }
            Ok(start.elapsed())
        };
        #[cfg(unix)]
        {
            let mut fds: Vec<libc::pollfd> = socks
                .iter()
                .map(|&(sock, _)| pollfd(sock, libc::POLLIN))
                .collect();
            let baseline_measure = |fds: &mut [libc::pollfd]| -> Result<Duration> {
                let start = Instant::now();
                for _ in 0..calls {
                    if poll_fds(fds, 1000)? != 1 {
                        return Err("poll did not report exactly one ready fd".into());
                    }
                }
                Ok(start.elapsed())
            };
            let (mut ours, mut baseline) = (Duration::MAX, Duration::MAX);
            for _ in 0..config.rounds {
                ours = ours.min(ours_measure(&mut socks)?);
                baseline = baseline.min(baseline_measure(&mut fds)?);
            }
            report.add(Row::ratio(
                &name,
                format!("{:.2?}/call", per_call(ours)),
                format!("{:.2?}/call (poll)", per_call(baseline)),
                baseline.as_secs_f64() / ours.as_secs_f64(),
                Some(0.9),
            ));
        }
        #[cfg(not(unix))]
        {
            let mut ours = Duration::MAX;
            for _ in 0..config.rounds {
                ours = ours.min(ours_measure(&mut socks)?);
            }
            let ours = per_call(ours);
            let first = *first_per_call.get_or_insert(ours);
            let first_count = config.wait_counts.first().copied().unwrap_or(1);
            report.add(Row {
                name,
                ours: format!("{ours:.2?}/call"),
                baseline: format!(
                    "growth {:.1}x for {:.1}x the socks of {first_count}",
                    ours.as_secs_f64() / first.as_secs_f64(),
                    count as f64 / first_count as f64
                ),
                ratio: None,
                target: "-".to_owned(),
                verdict: Verdict::Info,
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. Memory.

const MEMORY_CALLS: u64 = 10_000;

/// Allocations per call of `call`, over [`MEMORY_CALLS`] calls after a few warm-up calls.
fn allocations_per_call(mut call: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..10 {
        call()?;
    }
    let before = allocations();
    for _ in 0..MEMORY_CALLS {
        call()?;
    }
    Ok((allocations() - before) as f64 / MEMORY_CALLS as f64)
}

fn memory(report: &mut Report) -> Result<()> {
    println!("\n5. memory: heap allocations per call (counting global allocator)");
    let (client, server) = new_sock_pair()?;
    let wasi = cfg!(target_os = "wasi");
    // Natively the goal is none; in wasm the stream read returns a Vec, so some are expected.
    let row = |name: &str, per_call: f64| {
        let verdict = match (wasi, per_call == 0.0) {
            (true, _) => Verdict::Info,
            (false, true) => Verdict::Pass,
            (false, false) => Verdict::Miss,
        };
        Row {
            name: name.to_owned(),
            ours: format!("{per_call:.3} allocs/call"),
            baseline: "-".to_owned(),
            ratio: None,
            target: if wasi { "-" } else { "0" }.to_owned(),
            verdict,
        }
    };
    // Each primitive is called directly; would-block is a valid outcome of a call (in wasm the
    // output stream's budget runs out now and then), any other error is not.
    let tolerate = |result: io::Result<usize>| match result {
        Err(e) if !is_would_block(&e) => Err(e),
        _ => Ok(()),
    };
    let sends = allocations_per_call(|| Ok(tolerate(client.send(b"x"))?))?;
    report.add(row("memory: send", sends));
    // Enough bytes for every recv below, sent outside the count.
    send_all(&client, &[b'x'; MEMORY_CALLS as usize + 100])?;
    if server.wait(TIMEOUT, SockEvent::RECV)?.is_empty() {
        return Err("the sent bytes never arrived".into());
    }
    let mut byte = [0u8; 1];
    let peeks = allocations_per_call(|| Ok(tolerate(server.peek(&mut byte))?))?;
    report.add(row("memory: peek", peeks));
    let waits = allocations_per_call(|| {
        server.wait(Duration::ZERO, SockEvent::RECV)?;
        Ok(())
    })?;
    report.add(row("memory: wait", waits));
    let recvs = allocations_per_call(|| Ok(tolerate(server.recv(&mut byte))?))?;
    report.add(row("memory: recv", recvs));
    let would_block = allocations_per_call(|| match client.recv(&mut byte) {
        Err(e) if is_would_block(&e) => Ok(()),
        other => Err(format!("expected would-block, got {other:?}").into()),
    })?;
    report.add(row("memory: recv (would block)", would_block));

    // wait_many over 125 socks: the first call of a thread may allocate its buffer, later ones
    // must not. A fresh thread natively, so "first" really is the first.
    let listener = Sock::bind_listen(loopback(), 256)?;
    let mut pairs = Vec::new();
    for _ in 0..125 {
        pairs.push(sock_pair(&listener)?);
    }
    send_all(&pairs[62].0, b"!")?;
    pairs[62].1.wait(TIMEOUT, SockEvent::RECV)?;
    let measure = || -> Result<(u64, f64)> {
        let mut socks: Vec<(&Sock, Events)> = pairs
            .iter()
            .map(|(_, server)| (server, Events::new(SockEvent::RECV)))
            .collect();
        let before = allocations();
        Sock::wait_many(TIMEOUT, &mut socks)?;
        let first = allocations() - before;
        let later = allocations_per_call(|| {
            Sock::wait_many(TIMEOUT, &mut socks)?;
            Ok(())
        })?;
        Ok((first, later))
    };
    #[cfg(not(target_os = "wasi"))]
    let (first, later) = std::thread::scope(|scope| {
        scope
            .spawn(measure)
            .join()
            .map_err(|_| "wait_many thread panicked")
    })??;
    #[cfg(target_os = "wasi")]
    let (first, later) = measure()?;
    println!("  wait_many over 125 socks: {first} allocations on a thread's first call");
    report.add(row("memory: wait_many 125 socks (after 1st)", later));
    let size = std::mem::size_of::<Sock>();
    report.add(Row {
        name: "memory: size_of::<Sock>()".to_owned(),
        ours: format!("{size} bytes"),
        baseline: "-".to_owned(),
        ratio: None,
        target: "-".to_owned(),
        verdict: Verdict::Info,
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. Unix-domain sockets.

#[cfg(unix)]
#[path = "sock/unix_domain.rs"]
mod unix_domain;

// ---------------------------------------------------------------------------------------------

fn main() -> Result<()> {
    #[cfg(not(target_os = "wasi"))]
    if let [_, flag, addr, count] = std::env::args().collect::<Vec<_>>().as_slice() {
        if flag == HOLD_ARG {
            return hold_connections(addr, count);
        }
    }
    let config = Config::from_args();
    let platform = if cfg!(target_os = "wasi") {
        "wasm32-wasip2 in wasmtime"
    } else {
        "native"
    };
    println!(
        "bitcoin-sock benchmarks, {platform}{}",
        if config.quick { ", --quick sizes" } else { "" }
    );
    let started = Instant::now();
    let mut report = Report { rows: Vec::new() };
    if config.runs("bulk") {
        bulk(&config, &mut report)?;
    }
    if config.runs("pingpong") {
        pingpong(&config, &mut report)?;
    }
    if config.runs("terminator") {
        terminator(&config, &mut report)?;
    }
    if config.runs("wait_many") {
        wait_many(&config, &mut report)?;
    }
    if config.runs("memory") {
        memory(&mut report)?;
    }
    #[cfg(unix)]
    if config.runs("unix") {
        unix_domain::unix_domain(&config, &mut report)?;
    }
    report.print_summary(platform);
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
