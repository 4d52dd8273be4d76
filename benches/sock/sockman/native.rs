//! The native side of workload `sockman`: `polling` driven directly (idle-many) and a `mio`
//! echo server (echo), beside `SockMan` on its own thread.

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
    let per = |time: Duration| format!("{:.2} µs/wait", time.as_secs_f64() * 1e6 / WAITS as f64);
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
                                                    Ok(w) => pending.extend_from_slice(&data[w..]),
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
