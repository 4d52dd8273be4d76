//! Workload 8, `sockman`: `SockMan` beside the loop a user would write instead.
//!
//! idle-many (one active connection among 10 to 10,000, cost per loop iteration), echo (100
//! and 1,000 connections each sending 100-byte messages and reading the echo), memory
//! (allocations per loop iteration, bytes per idle connection), and in wasm the host's `poll`
//! alone beside `Sock::wait_many` (one ready among N: where a wait's time goes). Natively the
//! baselines are `polling` driven directly on the same sockets (idle-many, the rounds
//! alternating) and an echo server on `mio` (echo); in wasmtime both are a `Sock::wait_many`
//! loop.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{Handler, Id, SockMan};
use bitcoin_sock::{Sock, SockEvent};

use crate::harness::{
    allocations, best_of, is_would_block, live_bytes, loopback, send_all, Config, Report, Result,
    Row, Verdict, TIMEOUT,
};
#[cfg(not(target_os = "wasi"))]
use native::{echo_baseline, echo_ours, idle_rounds, wait_overhead, Idle};
#[cfg(target_os = "wasi")]
use wasm::{echo_baseline, echo_ours, host_poll, idle_rounds, Idle};

const MESSAGE: usize = 100;

pub(crate) fn run(config: &Config, report: &mut Report) -> Result<()> {
    idle_many(config, report)?;
    echo(config, report)?;
    memory(report)?;
    #[cfg(target_os = "wasi")]
    host_poll(config, report)?;
    Ok(())
}

fn micros(time: Duration, per: usize) -> String {
    format!("{:.2} µs/iteration", time.as_secs_f64() * 1e6 / per as f64)
}

/// A row with no baseline and no target.
fn info(name: String, ours: String) -> Row {
    Row {
        name,
        ours,
        baseline: "-".to_owned(),
        ratio: None,
        target: "-".to_owned(),
        verdict: Verdict::Info,
    }
}

/// Natively, the descriptor limit's soft value raised to the hard one.
fn raise_fd_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            limit.rlim_cur = limit.rlim_max;
            // SAFETY: `limit` is a valid rlimit; a refusal leaves the limits as they were.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers.

/// Counts what arrives; reads everything.
#[derive(Default)]
struct Count {
    bytes: usize,
}

impl Handler for Count {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        _: Id,
        _: SocketAddr,
        _: SocketAddr,
    ) -> bool {
        true
    }
    fn got_data(&mut self, _: &SockMan, _: Id, data: &[u8]) {
        self.bytes += data.len();
    }
    fn got_eof(&mut self, man: &SockMan, id: Id) {
        man.close(id);
    }
    fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, _: &io::Error) {
        man.close(id);
    }
}

/// Echoes every byte.
struct Echo;

impl Handler for Echo {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        _: Id,
        _: SocketAddr,
        _: SocketAddr,
    ) -> bool {
        true
    }
    fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]) {
        if man.send(id, data, false).is_err() {
            man.close(id);
        }
    }
    fn got_eof(&mut self, man: &SockMan, id: Id) {
        man.close(id);
    }
    fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, _: &io::Error) {
        man.close(id);
    }
}

// ---------------------------------------------------------------------------------------------
// 1. idle-many: one active connection among N.

fn idle_many(config: &Config, report: &mut Report) -> Result<()> {
    raise_fd_limit();
    println!(
        "\n8. SockMan idle-many: per loop iteration, one connection active (1 byte sent and received), best of {} rounds",
        config.idle_rounds
    );
    let listener = Sock::bind_listen(loopback(), 4096)?;
    let mut previous: Option<(usize, f64)> = None;
    for &count in &config.idle_counts {
        let mut idle = Idle::open(&listener, count - 1)?;
        let active_client = Sock::connect(listener.local_addr()?, TIMEOUT)?;
        listener.wait(TIMEOUT, SockEvent::RECV)?;
        let (active_server, _) = listener.accept()?;
        let n = idle.servers.len() + 1;
        let servers = std::mem::take(&mut idle.servers);
        let (ours, baseline) = idle_rounds(config, servers, &idle, active_server, &active_client)?;
        drop(idle);
        let iterations = config.idle_iterations(n);

        let target = if cfg!(target_os = "wasi") { 1.0 } else { 0.8 };
        let label = if n == count {
            format!("idle-many {count}")
        } else {
            format!("idle-many {n} (of {count})")
        };
        let baseline_name = if cfg!(target_os = "wasi") {
            "Sock::wait_many loop"
        } else {
            "polling directly"
        };
        report.add(Row::ratio(
            &format!("{label} vs {baseline_name}"),
            micros(ours, iterations),
            micros(baseline, iterations),
            baseline.as_secs_f64() / ours.as_secs_f64(),
            Some(target),
        ));
        let per_iteration = ours.as_secs_f64() / iterations as f64;
        if let Some((smaller, before)) = previous {
            println!(
                "  ours {smaller} -> {n} connections (x{:.1}): time per iteration x{:.2}",
                n as f64 / smaller as f64,
                per_iteration / before
            );
        }
        previous = Some((n, per_iteration));
    }
    Ok(())
}

/// One idle-many round of ours, written once for both hosts: the active peer sends a byte,
/// the manager's loop runs until the handler has it.
fn idle_round_ours(
    man: &SockMan,
    handler: &mut Count,
    active_client: &Sock,
    iterations: usize,
) -> Result<Duration> {
    let start = Instant::now();
    for _ in 0..iterations {
        send_all(active_client, b"!")?;
        let before = handler.bytes;
        while handler.bytes == before {
            man.run_once(handler, TIMEOUT)?;
        }
    }
    Ok(start.elapsed())
}

// ---------------------------------------------------------------------------------------------
// 2. echo.

fn echo(config: &Config, report: &mut Report) -> Result<()> {
    raise_fd_limit();
    println!(
        "\n8. SockMan echo: every connection sends a {MESSAGE}-byte message and reads its echo, {} messages each, best of {} rounds",
        config.echo_messages, config.sockman_rounds
    );
    for &count in &config.echo_counts {
        let messages = count * config.echo_messages;
        let (ours, baseline) = best_of(
            config.sockman_rounds,
            || echo_ours(count, config.echo_messages),
            || echo_baseline(count, config.echo_messages),
        )?;
        let rate = |time: Duration| format!("{:.0} msg/s", messages as f64 / time.as_secs_f64());
        let (name, target) = if cfg!(target_os = "wasi") {
            ("Sock::wait_many echo loop", 1.0)
        } else {
            ("mio echo server", 0.9)
        };
        report.add(Row::ratio(
            &format!("echo {count} connections vs {name}"),
            rate(ours),
            rate(baseline),
            baseline.as_secs_f64() / ours.as_secs_f64(),
            Some(target),
        ));
    }
    #[cfg(not(target_os = "wasi"))]
    wait_overhead(report)?;
    Ok(())
}

/// The clients' side of an echo round, written once: every client sends a message, then
/// reads its echo; `step` runs the server when both live in one thread (wasm).
struct Clients {
    socks: Vec<Sock>,
    message: [u8; MESSAGE],
}

impl Clients {
    fn connect(
        addr: SocketAddr,
        count: usize,
        mut step: impl FnMut() -> Result<()>,
    ) -> Result<Clients> {
        let mut socks = Vec::with_capacity(count);
        for _ in 0..count {
            socks.push(Sock::connect(addr, TIMEOUT)?);
            step()?;
        }
        Ok(Clients {
            socks,
            message: [b'm'; MESSAGE],
        })
    }

    /// `rounds` times: every client sends one message; every echo is read back in full.
    fn exchange(&self, rounds: usize, mut step: impl FnMut() -> Result<()>) -> Result<()> {
        let mut buf = [0u8; MESSAGE];
        let mut missing = vec![0usize; self.socks.len()];
        #[cfg(not(target_os = "wasi"))]
        let poller = polling::Poller::new()?;
        #[cfg(not(target_os = "wasi"))]
        for (key, sock) in self.socks.iter().enumerate() {
            // SAFETY: deleted below, before the socks can drop.
            unsafe {
                poller.add_with_mode(
                    sock.get().ok_or("invalid")?,
                    polling::Event::readable(key),
                    polling::PollMode::Level,
                )?;
            }
        }
        #[cfg(not(target_os = "wasi"))]
        let mut events = polling::Events::new();
        for _ in 0..rounds {
            for (sock, missing) in self.socks.iter().zip(missing.iter_mut()) {
                send_all(sock, &self.message)?;
                *missing = MESSAGE;
            }
            let mut outstanding = self.socks.len();
            let deadline = Instant::now() + TIMEOUT;
            while outstanding > 0 {
                if Instant::now() > deadline {
                    return Err("echoes stopped arriving".into());
                }
                step()?;
                #[cfg(not(target_os = "wasi"))]
                {
                    events.clear();
                    poller.wait(&mut events, Some(TIMEOUT))?;
                    for event in events.iter() {
                        outstanding -=
                            read_echo(&self.socks[event.key], &mut missing[event.key], &mut buf)?;
                    }
                }
                #[cfg(target_os = "wasi")]
                for (sock, missing) in self.socks.iter().zip(missing.iter_mut()) {
                    if *missing > 0 {
                        outstanding -= read_echo(sock, missing, &mut buf)?;
                    }
                }
            }
        }
        #[cfg(not(target_os = "wasi"))]
        for sock in &self.socks {
            poller.delete(sock.get().ok_or("invalid")?)?;
        }
        Ok(())
    }
}

/// Reads what has arrived of one echo; 1 when it completed.
fn read_echo(sock: &Sock, missing: &mut usize, buf: &mut [u8]) -> Result<usize> {
    if *missing == 0 {
        return Ok(0);
    }
    match sock.recv(&mut buf[..*missing]) {
        Ok(0) => Err("the server closed".into()),
        Ok(n) => {
            *missing -= n;
            Ok(usize::from(*missing == 0))
        }
        Err(e) if is_would_block(&e) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// 3. memory.

fn memory(report: &mut Report) -> Result<()> {
    raise_fd_limit();
    println!("\n8. SockMan memory");
    let listener = Sock::bind_listen(loopback(), 4096)?;
    let addr = listener.local_addr()?;

    // Allocations per loop iteration at steady state: one connection echoing.
    let man = SockMan::new()?;
    let client = Sock::connect(addr, TIMEOUT)?;
    listener.wait(TIMEOUT, SockEvent::RECV)?;
    let (server, _) = listener.accept()?;
    man.add_connection(server)?;
    let mut buf = [0u8; MESSAGE];
    let mut trip = |man: &SockMan| -> Result<()> {
        send_all(&client, &[b'x'; MESSAGE])?;
        let mut missing = MESSAGE;
        while missing > 0 {
            man.run_once(&mut Echo, TIMEOUT)?;
            loop {
                match client.recv(&mut buf[..missing]) {
                    Ok(0) => return Err("closed".into()),
                    Ok(n) => missing -= n,
                    Err(e) if is_would_block(&e) => break,
                    Err(e) => return Err(e.into()),
                }
                if missing == 0 {
                    break;
                }
            }
        }
        Ok(())
    };
    for _ in 0..100 {
        trip(&man)?;
    }
    let trips = 10_000;
    let before = allocations();
    for _ in 0..trips {
        trip(&man)?;
    }
    let per_trip = (allocations() - before) as f64 / trips as f64;
    report.add(info(
        "memory: allocations per echo trip (run_once, recv, send, echo) at steady state".into(),
        format!("{per_trip:.2} allocs/trip"),
    ));

    // Bytes held per idle connection: the heap growth of adding them to a manager.
    let count = if cfg!(target_os = "wasi") {
        1_000
    } else {
        5_000
    };
    let mut idle = Idle::open(&listener, count)?;
    let servers = std::mem::take(&mut idle.servers);
    let n = servers.len();
    let man = SockMan::new()?;
    man.run_once(&mut Count::default(), Duration::ZERO)?;
    let heap = live_bytes();
    for sock in servers {
        man.add_connection(sock)?;
    }
    man.run_once(&mut Count::default(), Duration::ZERO)?;
    let per_connection = (live_bytes() - heap) as f64 / n as f64;
    drop(man);
    drop(idle);
    report.add(info(
        format!("memory: heap per idle connection ({n} in one manager)"),
        format!("{per_connection:.0} bytes"),
    ));
    Ok(())
}

#[cfg(not(target_os = "wasi"))]
mod native {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use bitcoin_sock::sockman::SockMan;
    use bitcoin_sock::Sock;

    use super::{idle_round_ours, Clients, Count, Echo};
    use crate::harness::{
        best_of, is_would_block, loopback, send_all, Config, Report, Result, Row, TIMEOUT,
    };
    pub(super) use crate::wait_many::IdleSocks as Idle;

    /// A socket of the manager's, lent to the baseline as a `Sock` that never closes it.
    struct Lent(std::mem::ManuallyDrop<Sock>);

    #[cfg(unix)]
    type RawSocket = std::os::fd::RawFd;
    #[cfg(windows)]
    type RawSocket = std::os::windows::io::RawSocket;

    #[cfg(unix)]
    fn raw_socket(sock: &Sock) -> RawSocket {
        std::os::fd::AsRawFd::as_raw_fd(sock)
    }
    #[cfg(windows)]
    fn raw_socket(sock: &Sock) -> RawSocket {
        std::os::windows::io::AsRawSocket::as_raw_socket(sock)
    }

    impl Lent {
        /// # Safety
        /// `raw` must stay open while the `Lent` lives; it is never closed through it.
        unsafe fn new(raw: RawSocket) -> Lent {
            #[cfg(unix)]
            // SAFETY: the caller keeps `raw` open; ManuallyDrop never closes it.
            let sock = unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) };
            #[cfg(windows)]
            // SAFETY: as above.
            let sock = unsafe { std::os::windows::io::FromRawSocket::from_raw_socket(raw) };
            Lent(std::mem::ManuallyDrop::new(sock))
        }
    }

    /// Natively the manager owns the sockets and the baseline polls the very same ones, registered
    /// in a poller of its own, so the rounds alternate (`_idle`, the other ends, only stays
    /// open).
    pub(super) fn idle_rounds(
        config: &Config,
        servers: Vec<Sock>,
        _idle: &Idle,
        active_server: Sock,
        active_client: &Sock,
    ) -> Result<(Duration, Duration)> {
        let iterations = config.idle_iterations(servers.len() + 1);
        let man = SockMan::new()?;
        let mut raws = Vec::with_capacity(servers.len() + 1);
        for sock in servers.into_iter().chain(std::iter::once(active_server)) {
            raws.push(raw_socket(&sock));
            man.add_connection(sock)?;
        }
        let mut handler = Count::default();
        man.run_once(&mut handler, Duration::ZERO)?;

        // SAFETY: the manager keeps every socket open until it drops, after the lent ones.
        let lent: Vec<Lent> = raws.iter().map(|raw| unsafe { Lent::new(*raw) }).collect();
        let poller = polling::Poller::new()?;
        for (key, raw) in raws.iter().enumerate() {
            // SAFETY: every socket is deleted below, before the manager closes it.
            unsafe {
                poller.add_with_mode(
                    *raw,
                    polling::Event::readable(key),
                    polling::PollMode::Level,
                )?;
            }
        }
        let mut events = polling::Events::new();
        let mut buf = vec![0u8; 64 * 1024];
        let result = best_of(
            config.idle_rounds,
            || idle_round_ours(&man, &mut handler, active_client, iterations),
            || {
                // What a user writes on polling: wait, receive from each ready socket.
                let start = Instant::now();
                for _ in 0..iterations {
                    send_all(active_client, b"!")?;
                    let mut got = 0;
                    while got == 0 {
                        events.clear();
                        poller.wait(&mut events, Some(TIMEOUT))?;
                        for event in events.iter() {
                            match lent[event.key].0.recv(&mut buf) {
                                Ok(n) => got += n,
                                Err(e) if is_would_block(&e) => {}
                                Err(e) => return Err(e.into()),
                            }
                        }
                    }
                }
                Ok(start.elapsed())
            },
        );
        for sock in &lent {
            poller.delete(sock.0.get().ok_or("invalid sock")?)?;
        }
        drop(lent);
        drop(man);
        result
    }

    /// What one wait costs the two crates with nothing ready, on one registered socket: the part
    /// of the echo gap that is `polling`'s own (on Linux it re-arms a timerfd and its notifier
    /// around every `epoll_wait`, five system calls where mio makes one).
    pub(super) fn wait_overhead(report: &mut Report) -> Result<()> {
        const WAITS: usize = 100_000;
        let listener = Sock::bind_listen(loopback(), 16)?;
        let socket = listener.get().ok_or("invalid")?;
        let poller = polling::Poller::new()?;
        // SAFETY: deleted below, before `listener` drops.
        unsafe {
            poller.add_with_mode(
                socket,
                polling::Event::readable(0),
                polling::PollMode::Level,
            )?;
        }
        let mut events = polling::Events::new();
        let mut mio_poll = mio::Poll::new()?;
        let mut mio_listener = mio::net::TcpListener::bind(loopback())?;
        mio_poll
            .registry()
            .register(&mut mio_listener, mio::Token(0), mio::Interest::READABLE)?;
        let mut mio_events = mio::Events::with_capacity(1024);
        let (polling_time, mio_time) = best_of(
            3,
            || {
                let start = Instant::now();
                for _ in 0..WAITS {
                    events.clear();
                    poller.wait(&mut events, Some(Duration::ZERO))?;
                }
                Ok(start.elapsed())
            },
            || {
                let start = Instant::now();
                for _ in 0..WAITS {
                    mio_poll.poll(&mut mio_events, Some(Duration::ZERO))?;
                }
                Ok(start.elapsed())
            },
        )?;
        poller.delete(socket)?;
        let per =
            |time: Duration| format!("{:.2} µs/wait", time.as_secs_f64() * 1e6 / WAITS as f64);
        report.add(Row::ratio(
            "one empty wait: polling (SockMan's registry) vs mio",
            per(polling_time),
            per(mio_time),
            mio_time.as_secs_f64() / polling_time.as_secs_f64(),
            None,
        ));
        Ok(())
    }

    pub(super) fn echo_ours(count: usize, rounds: usize) -> Result<Duration> {
        use bitcoin_sock::ThreadInterrupt;
        let man = SockMan::new()?;
        let addr = man.bind_and_listen(loopback())?;
        let interrupt = ThreadInterrupt::new();
        std::thread::scope(|s| {
            let server = s.spawn(|| man.run(&mut Echo, &interrupt));
            let result = (|| {
                let clients = Clients::connect(addr, count, || Ok(()))?;
                while man.connection_count() < count {
                    std::thread::yield_now();
                }
                let start = Instant::now();
                clients.exchange(rounds, || Ok(()))?;
                Ok(start.elapsed())
            })();
            interrupt.interrupt();
            man.wake()?;
            server.join().map_err(|_| "the server panicked")??;
            result
        })
    }

    pub(super) fn echo_baseline(count: usize, rounds: usize) -> Result<Duration> {
        use mio::net::TcpListener;
        use mio::{Interest, Poll, Token};
        use std::io::{Read, Write};
        use std::sync::atomic::AtomicBool;

        const LISTENER: Token = Token(usize::MAX - 1);
        const WAKER: Token = Token(usize::MAX - 2);
        let mut poll = Poll::new()?;
        let mut listener = TcpListener::bind(loopback())?;
        let addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let stop = AtomicBool::new(false);
        let accepted = AtomicU64::new(0);

        std::thread::scope(|s| {
            // What a mio user writes: edge-triggered, read until WouldBlock, write back at once,
            // keep what the socket does not take and write it when it becomes writable.
            let server = s.spawn(|| -> Result<()> {
                let mut events = mio::Events::with_capacity(1024);
                let mut conns: Vec<Option<(mio::net::TcpStream, Vec<u8>)>> = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    poll.poll(&mut events, Some(TIMEOUT))?;
                    for event in events.iter() {
                        match event.token() {
                            LISTENER => loop {
                                match listener.accept() {
                                    Ok((mut stream, _)) => {
                                        stream.set_nodelay(true)?;
                                        let token = Token(conns.len());
                                        poll.registry().register(
                                            &mut stream,
                                            token,
                                            Interest::READABLE | Interest::WRITABLE,
                                        )?;
                                        conns.push(Some((stream, Vec::new())));
                                        accepted.fetch_add(1, Ordering::Relaxed);
                                    }
                                    Err(e) if is_would_block(&e) => break,
                                    Err(e) => return Err(e.into()),
                                }
                            },
                            WAKER => {}
                            Token(index) => {
                                let Some(Some((stream, pending))) = conns.get_mut(index) else {
                                    continue;
                                };
                                let mut closed = false;
                                if event.is_writable() && !pending.is_empty() {
                                    match stream.write(pending) {
                                        Ok(n) => {
                                            pending.drain(..n);
                                        }
                                        Err(e) if is_would_block(&e) => {}
                                        Err(_) => closed = true,
                                    }
                                }
                                if event.is_readable() {
                                    loop {
                                        match stream.read(&mut buf) {
                                            Ok(0) => {
                                                closed = true;
                                                break;
                                            }
                                            Ok(n) => {
                                                let data = &buf[..n];
                                                if pending.is_empty() {
                                                    match stream.write(data) {
                                                        Ok(w) => {
                                                            pending.extend_from_slice(&data[w..])
                                                        }
                                                        Err(e) if is_would_block(&e) => {
                                                            pending.extend_from_slice(data)
                                                        }
                                                        Err(_) => {
                                                            closed = true;
                                                            break;
                                                        }
                                                    }
                                                } else {
                                                    pending.extend_from_slice(data);
                                                }
                                            }
                                            Err(e) if is_would_block(&e) => break,
                                            Err(_) => {
                                                closed = true;
                                                break;
                                            }
                                        }
                                    }
                                }
                                if closed {
                                    conns[index] = None;
                                }
                            }
                        }
                    }
                }
                Ok(())
            });
            let result = (|| {
                let clients = Clients::connect(addr, count, || Ok(()))?;
                while (accepted.load(Ordering::Relaxed) as usize) < count {
                    std::thread::yield_now();
                }
                let start = Instant::now();
                clients.exchange(rounds, || Ok(()))?;
                Ok(start.elapsed())
            })();
            stop.store(true, Ordering::Relaxed);
            waker.wake()?;
            server.join().map_err(|_| "the server panicked")??;
            result
        })
    }
}

#[cfg(target_os = "wasi")]
mod wasm {
    use std::time::{Duration, Instant};

    use bitcoin_sock::sockman::SockMan;
    use bitcoin_sock::{Events, Sock, SockEvent};

    use super::{idle_round_ours, Clients, Count, Echo};
    use crate::harness::{
        best_of, is_would_block, loopback, send_all, Config, Report, Result, Row, TIMEOUT,
    };

    /// Up to `count` connections to `listener`, each opened by `connect` and accepted: the
    /// connecting ends and the accepted ends, as many pairs as the host lets this instance
    /// open (the first refusal ends it, reported; the pair it broke is dropped).
    fn open_pairs<C>(
        listener: &Sock,
        count: usize,
        mut connect: impl FnMut() -> Result<C>,
    ) -> Result<(Vec<C>, Vec<Sock>)> {
        let mut clients = Vec::with_capacity(count);
        let mut servers = Vec::with_capacity(count);
        while servers.len() < count {
            let client = match connect() {
                Ok(client) => client,
                Err(e) => {
                    println!("  connection {} failed: {e}", servers.len() + 1);
                    break;
                }
            };
            listener.wait(TIMEOUT, SockEvent::RECV)?;
            match listener.accept() {
                Ok((server, _)) => servers.push(server),
                Err(e) => {
                    println!("  accept {} failed: {e}", servers.len() + 1);
                    break;
                }
            }
            clients.push(client);
        }
        Ok((clients, servers))
    }

    /// The idle connections, both ends in this instance (nothing can be spawned in wasm).
    pub(super) struct Idle {
        pub(super) servers: Vec<Sock>,
        pub(super) clients: Vec<Sock>,
    }

    impl Idle {
        /// As many pairs as the host lets this instance open, up to `count`.
        pub(super) fn open(listener: &Sock, count: usize) -> Result<Idle> {
            let addr = listener.local_addr()?;
            let (mut clients, mut servers) =
                open_pairs(listener, count, || Ok(Sock::connect(addr, TIMEOUT)?))?;
            if servers.len() < count {
                // The host's descriptors ran out: give one pair back, for the active connection,
                // and take the connection that could not be accepted off the backlog, so the
                // next accept is the active one's.
                servers.pop();
                clients.pop();
                while let Ok((stale, _)) = listener.accept() {
                    drop(stale);
                }
            }
            Ok(Idle { servers, clients })
        }
    }

    /// The rounds alternate, so a drift of the host (its tables grow, the machine gets busy)
    /// weighs on both sides alike. Each side has its own end of every connection: the
    /// manager holds the accepted ends, the baseline's `wait_many` borrows the connecting
    /// ends, and the active connection's byte travels towards the side being timed.
    pub(super) fn idle_rounds(
        config: &Config,
        servers: Vec<Sock>,
        idle: &Idle,
        active_server: Sock,
        active_client: &Sock,
    ) -> Result<(Duration, Duration)> {
        let iterations = config.idle_iterations(servers.len() + 1);
        let man = SockMan::new()?;
        let mut handler = Count::default();
        let active_id = man.add_connection(active_server)?;
        for sock in servers {
            man.add_connection(sock)?;
        }
        man.run_once(&mut handler, Duration::ZERO)?;
        // The loop a user writes without SockMan: wait_many over every connection, the list
        // built once, then receive from the ready ones.
        let mut socks: Vec<(&Sock, Events)> = idle
            .clients
            .iter()
            .chain(std::iter::once(active_client))
            .map(|sock| (sock, Events::new(SockEvent::RECV)))
            .collect();
        let mut buf = vec![0u8; 64 * 1024];
        best_of(
            config.idle_rounds,
            || idle_round_ours(&man, &mut handler, active_client, iterations),
            || {
                let start = Instant::now();
                for _ in 0..iterations {
                    man.send(active_id, b"!", false)?;
                    let mut got = 0;
                    while got == 0 {
                        Sock::wait_many(TIMEOUT, &mut socks)?;
                        for (sock, events) in &socks {
                            if !events.occurred.is_empty() {
                                match sock.recv(&mut buf) {
                                    Ok(n) => got += n,
                                    Err(e) if is_would_block(&e) => {}
                                    Err(e) => return Err(e.into()),
                                }
                            }
                        }
                    }
                }
                Ok(start.elapsed())
            },
        )
    }

    pub(super) fn echo_ours(count: usize, rounds: usize) -> Result<Duration> {
        let man = SockMan::new()?;
        let addr = man.bind_and_listen(loopback())?;
        let mut step = || -> Result<()> {
            man.run_once(&mut Echo, Duration::ZERO)?;
            Ok(())
        };
        let clients = Clients::connect(addr, count, &mut step)?;
        while man.connection_count() < count {
            step()?;
        }
        let start = Instant::now();
        clients.exchange(rounds, step)?;
        Ok(start.elapsed())
    }

    pub(super) fn echo_baseline(count: usize, rounds: usize) -> Result<Duration> {
        // The loop a user writes without SockMan: wait_many over the listener and every
        // connection, accept, receive and echo back.
        let listener = Sock::bind_listen(loopback(), 4096)?;
        let addr = listener.local_addr()?;
        let servers = std::cell::RefCell::new(Vec::<Sock>::new());
        let mut buf = vec![0u8; 64 * 1024];
        let mut step = || -> Result<()> {
            let servers_now = servers.borrow();
            let mut socks: Vec<(&Sock, Events)> = std::iter::once(&listener)
                .chain(servers_now.iter())
                .map(|sock| (sock, Events::new(SockEvent::RECV)))
                .collect();
            Sock::wait_many(Duration::ZERO, &mut socks)?;
            let accept = !socks[0].1.occurred.is_empty();
            for (sock, events) in &socks[1..] {
                if events.occurred.is_empty() {
                    continue;
                }
                match sock.recv(&mut buf) {
                    Ok(0) => {}
                    Ok(n) => send_all(sock, &buf[..n])?,
                    Err(e) if is_would_block(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            drop(socks);
            drop(servers_now);
            if accept {
                while let Ok((sock, _)) = listener.accept() {
                    servers.borrow_mut().push(sock);
                }
            }
            Ok(())
        };
        let clients = Clients::connect(addr, count, &mut step)?;
        while servers.borrow().len() < count {
            step()?;
        }
        let start = Instant::now();
        clients.exchange(rounds, step)?;
        Ok(start.elapsed())
    }

    // ---------------------------------------------------------------------------------------------
    // 4. (wasm) where a wait's time goes: the host's poll alone, and Sock::wait_many.

    /// Raw `wasi:sockets` client connections, for timing the host's `poll` without this crate.
    mod host {
        use super::Result;
        use wasi::io::poll::Pollable;
        use wasi::io::streams::{InputStream, OutputStream};
        use wasi::sockets::network::{
            ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Network,
        };
        use wasi::sockets::tcp::TcpSocket;
        use wasi::sockets::tcp_create_socket::create_tcp_socket;

        /// A connection's client end; field order is drop order (children before parents, or
        /// wasmtime traps).
        pub struct Raw {
            pub readable: Pollable,
            _input: InputStream,
            pub output: OutputStream,
            _socket: TcpSocket,
        }

        pub fn connect(network: &Network, port: u16) -> Result<Raw> {
            let socket = create_tcp_socket(IpAddressFamily::Ipv4).map_err(|e| format!("{e:?}"))?;
            let addr = IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port,
                address: (127, 0, 0, 1),
            });
            socket
                .start_connect(network, addr)
                .map_err(|e| format!("{e:?}"))?;
            let (input, output) = loop {
                match socket.finish_connect() {
                    Ok(streams) => break streams,
                    Err(ErrorCode::WouldBlock) => socket.subscribe().block(),
                    Err(e) => return Err(format!("{e:?}").into()),
                }
            };
            Ok(Raw {
                readable: input.subscribe(),
                _input: input,
                output,
                _socket: socket,
            })
        }
    }

    pub(super) fn host_poll(config: &Config, report: &mut Report) -> Result<()> {
        use wasi::io::poll::{poll, Pollable};
        println!(
            "\n8. SockMan (wasm), one ready among N idle: the host's poll alone vs Sock::wait_many, per call, best of {} rounds",
            config.sockman_rounds
        );
        let network = wasi::sockets::instance_network::instance_network();
        let listener = Sock::bind_listen(loopback(), 4096)?;
        let port = listener.local_addr()?.port();
        let mut previous: Option<(usize, Duration, Duration)> = None;
        for &count in &config.idle_counts {
            let (raws, servers) = open_pairs(&listener, count, || host::connect(&network, port))?;
            let n = raws.len();
            let (Some(active_raw), Some(active_server)) = (raws.get(n - 1), servers.get(n - 1))
            else {
                return Err("no connection".into());
            };
            // One ready each way: a byte waits in the last connection, in both directions.
            send_all(active_server, b"!")?;
            active_raw.readable.block();
            active_raw
                .output
                .blocking_write_and_flush(b"!")
                .map_err(|e| format!("{e:?}"))?;
            active_server.wait(TIMEOUT, SockEvent::RECV)?;

            let list: Vec<&Pollable> = raws[..n].iter().map(|raw| &raw.readable).collect();
            let mut socks: Vec<(&Sock, Events)> = servers[..n]
                .iter()
                .map(|sock| (sock, Events::new(SockEvent::RECV)))
                .collect();
            let calls = (2_000_000 / n).clamp(20, 20_000);
            let (host, ours) = best_of(
                config.sockman_rounds,
                || {
                    let start = Instant::now();
                    for _ in 0..calls {
                        if poll(&list).len() != 1 {
                            return Err("the host's poll found the wrong number ready".into());
                        }
                    }
                    Ok(start.elapsed())
                },
                || {
                    let start = Instant::now();
                    for _ in 0..calls {
                        if Sock::wait_many(TIMEOUT, &mut socks)? != 1 {
                            return Err("wait_many found the wrong number ready".into());
                        }
                    }
                    Ok(start.elapsed())
                },
            )?;
            let per =
                |time: Duration| format!("{:.2} µs/call", time.as_secs_f64() * 1e6 / calls as f64);
            report.add(Row::ratio(
                &format!("{n} socks: host poll alone (ours) vs wait_many (baseline)"),
                per(host),
                per(ours),
                ours.as_secs_f64() / host.as_secs_f64(),
                None,
            ));
            if let Some((smaller, host_before, ours_before)) = previous {
                let scale = |now: Duration, before: Duration| {
                    (now.as_secs_f64() / calls as f64) / before.as_secs_f64()
                };
                println!(
                    "  {smaller} -> {n} socks (x{:.1}): host poll x{:.1}, wait_many x{:.1}",
                    n as f64 / smaller as f64,
                    scale(host, host_before),
                    scale(ours, ours_before)
                );
            }
            previous = Some((n, host / calls as u32, ours / calls as u32));
            drop(socks);
            drop(list);
        }
        Ok(())
    }
}
