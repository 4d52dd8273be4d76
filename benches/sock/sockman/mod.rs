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
mod native;
#[cfg(wasi_p3)]
mod wasip3;
#[cfg(target_os = "wasi")]
mod wasm;

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
    #[cfg(wasi_p3)]
    wasip3::idle_limits(config, report)?;
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
