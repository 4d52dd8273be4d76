//! The wasm side of workload `sockman`: a `Sock::wait_many` loop (idle-many, echo) and the
//! host's `poll` alone, beside `SockMan` driven by `run_once` in the same thread.

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
pub(super) fn open_pairs<C>(
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
pub(super) mod host {
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
        let (Some(active_raw), Some(active_server)) = (raws.get(n - 1), servers.get(n - 1)) else {
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
