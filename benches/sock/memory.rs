//! Workload 5, memory: heap allocations per call of each primitive, and the size of a `Sock`.

use std::io;
use std::time::Duration;

use bitcoin_sock::{Events, Sock, SockEvent};

use crate::harness::{
    allocations, is_would_block, loopback, new_sock_pair, send_all, sock_pair, Config, Report,
    Result, Row, Verdict, TIMEOUT,
};

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

pub(crate) fn run(_config: &Config, report: &mut Report) -> Result<()> {
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
