//! Workload 9, close: what dropping a sock whose send buffer is full (its peer stopped
//! reading) costs the caller, beside dropping an idle one (the baseline: what any close costs).
//!
//! Natively the kernel takes over a closed socket's unsent bytes and `close(2)` returns at
//! once. In wasmtime the host holds a write in flight and blocks a stream's drop until it is
//! done, so the WASI backend decides whether to close now or let the socket wait for its
//! write (src/sys/wasi/graveyard.rs); this is what that decision costs the guest per close.
//! Only the drops are timed; making and filling the pairs is not.

use std::time::{Duration, Instant};

use bitcoin_sock::{Sock, SockEvent};

use crate::harness::{
    best_of, is_would_block, loopback, sock_pair, Config, Report, Result, Row, TIMEOUT,
};

/// Pairs closed per round.
const PAIRS: usize = 16;

/// Sends until `sock` takes no more: a would-block counts once a wait for room finds none (in
/// wasmtime a stream is not writable while the host still writes, nor yet when it is new).
fn fill(sock: &Sock) -> Result<()> {
    let chunk = [b'f'; 64 * 1024];
    loop {
        match sock.send(&chunk) {
            Ok(_) => {}
            Err(e) if is_would_block(&e) => {
                let room = sock.wait(Duration::from_millis(100), SockEvent::SEND)?;
                if !room.contains(SockEvent::SEND) {
                    return Ok(());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The mean time to drop one of [`PAIRS`] socks, filled first when `full`.
fn time_drops(listener: &Sock, full: bool) -> Result<Duration> {
    let mut pairs = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        let (client, server) = sock_pair(listener)?;
        if full {
            fill(&server)?;
        } else {
            // The same traffic as a full one's start: a write the peer has not read.
            server.wait(TIMEOUT, SockEvent::SEND)?;
            server.send(b"x")?;
        }
        pairs.push((client, Some(server)));
    }
    let mut total = Duration::ZERO;
    for (_, server) in &mut pairs {
        let started = Instant::now();
        drop(server.take());
        total += started.elapsed();
    }
    // The peers go (unread bytes: a reset, which ends what the closed side still had in
    // flight), and one wait lets the backend finish closing them, outside the timing.
    drop(pairs);
    let _ = listener.wait(Duration::ZERO, SockEvent::RECV)?;
    Ok(total / PAIRS as u32)
}

pub(crate) fn run(config: &Config, report: &mut Report) -> Result<()> {
    println!(
        "\n9. close: dropping a sock whose send buffer is full (its peer stopped reading), \
         beside dropping one that is not; {PAIRS} drops a round"
    );
    let listener = Sock::bind_listen(loopback(), 128)?;
    let (full, idle) = best_of(
        config.rounds,
        || time_drops(&listener, true),
        || time_drops(&listener, false),
    )?;
    let micros = |time: Duration| format!("{:.1} µs", time.as_secs_f64() * 1e6);
    report.add(Row::ratio(
        "close: full send buffer",
        micros(full),
        format!("{} (not full)", micros(idle)),
        idle.as_secs_f64() / full.as_secs_f64().max(1e-9),
        None,
    ));
    Ok(())
}
