//! Workload 6, Unix-domain sockets (native Unix only; WASI has none): ping-pong over a
//! Unix-domain `Sock` beside `std::os::unix::net::UnixStream` (blocking, a thread per side),
//! the baseline a user of Unix-domain sockets picks, and beside a TCP loopback `Sock`; and what
//! the check that keeps `accept()` from taking a Unix-domain connection costs a TCP accept.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bitcoin_sock::{Sock, SockEvent, UnixAddress};

use crate::harness::{
    allowed_cpus, best_of, loopback, new_sock_pair, recv_exact, send_all, two_cores, Config,
    Report, Result, Row, TIMEOUT,
};
use crate::pingpong::{per_trip, pingpong_ours, pingpong_std, pingpong_std_nonblocking};

/// A temporary directory for the socket file, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!("bitcoin-sock-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unix_sock_pair(addr: &UnixAddress) -> Result<(Sock, Sock)> {
    let listener = Sock::bind_listen_unix(addr, 4)?;
    let client = Sock::connect_unix(addr, TIMEOUT)?;
    if listener.wait(TIMEOUT, SockEvent::RECV)?.is_empty() {
        return Err("no connection to accept".into());
    }
    let (server, _) = listener.accept_address()?;
    Ok((client, server))
}

/// The time of `count` accepts each, only the accept calls timed: ours `accept()`, ours
/// `accept_address()`, std's `TcpListener::accept`. Each iteration connects to all three
/// listeners and accepts from each in turn, so drift (other load, sockets piling up in
/// TIME_WAIT) touches all three alike.
fn time_accepts(
    checked: &Sock,
    unchecked: &Sock,
    std_listener: &std::net::TcpListener,
    count: usize,
) -> Result<[Duration; 3]> {
    let mut times = [Duration::ZERO; 3];
    for _ in 0..count {
        let clients = (
            Sock::connect(checked.local_addr()?, TIMEOUT)?,
            Sock::connect(unchecked.local_addr()?, TIMEOUT)?,
            std::net::TcpStream::connect(std_listener.local_addr()?)?,
        );
        for listener in [checked, unchecked] {
            if listener.wait(TIMEOUT, SockEvent::RECV)?.is_empty() {
                return Err("no connection to accept".into());
            }
        }
        let start = Instant::now();
        let first = checked.accept()?;
        times[0] += start.elapsed();
        let start = Instant::now();
        let second = unchecked.accept_address()?;
        times[1] += start.elapsed();
        let start = Instant::now();
        let third = std_listener.accept()?;
        times[2] += start.elapsed();
        drop((clients, first, second, third));
    }
    Ok(times)
}

fn per_accept(count: usize, time: Duration) -> String {
    format!("{:.2} us/accept", time.as_secs_f64() * 1e6 / count as f64)
}

pub(crate) fn run(config: &Config, report: &mut Report) -> Result<()> {
    let trips = config.round_trips;
    println!(
        "\n6. Unix-domain sockets: {trips} round trips of 32 bytes, best of {} rounds",
        config.rounds
    );
    println!("  ours: non-blocking Unix-domain socks, try send/recv first, wait on would-block");
    println!("  baselines: blocking std::os::unix::net::UnixStream, a thread per side; a TCP sock");
    let dir = TempDir::new()?;
    let addr = UnixAddress::Path(dir.0.join("bench.sock"));
    let (client, server) = unix_sock_pair(&addr)?;
    let (std_client, std_server) = UnixStream::pair()?;
    let (nb_client, nb_server) = UnixStream::pair()?;
    nb_client.set_nonblocking(true)?;
    nb_server.set_nonblocking(true)?;
    let (tcp_client, tcp_server) = new_sock_pair()?;
    let mut placements = Vec::new();
    if let Some(two) = two_cores() {
        placements.push(("2 cores", Some(two)));
    }
    match allowed_cpus().first() {
        Some(&first) => placements.push(("1 core", Some((first, first)))),
        None => placements.push(("unpinned", None)),
    }
    for (placement, cpus) in placements {
        let (ours, baseline) = best_of(
            config.rounds,
            || pingpong_ours(&client, &server, trips, cpus),
            || pingpong_std(&std_client, &std_server, trips, cpus),
        )?;
        report.add(Row::ratio(
            &format!("unix ping-pong 32 B, {placement}"),
            per_trip(trips, ours),
            per_trip(trips, baseline),
            baseline.as_secs_f64() / ours.as_secs_f64(),
            Some(0.9),
        ));
        let (ours, nonblocking) = best_of(
            config.rounds,
            || pingpong_ours(&client, &server, trips, cpus),
            || pingpong_std_nonblocking(&nb_client, &nb_server, trips, cpus),
        )?;
        report.add(Row::ratio(
            &format!("unix ping-pong 32 B, {placement}, vs std non-blocking + poll(2)"),
            per_trip(trips, ours),
            per_trip(trips, nonblocking),
            nonblocking.as_secs_f64() / ours.as_secs_f64(),
            None,
        ));
        let (ours, tcp) = best_of(
            config.rounds,
            || pingpong_ours(&client, &server, trips, cpus),
            || pingpong_ours(&tcp_client, &tcp_server, trips, cpus),
        )?;
        report.add(Row::ratio(
            &format!("unix ping-pong 32 B, {placement}, vs a TCP loopback sock"),
            per_trip(trips, ours),
            per_trip(trips, tcp),
            tcp.as_secs_f64() / ours.as_secs_f64(),
            None,
        ));
    }
    // The pair made by connect_unix works like the std one for bulk too: one check that the
    // data arrives whole, so the round trips above measured a working connection.
    send_all(&client, &[7; 4096])?;
    let mut check = [0u8; 4096];
    recv_exact(&server, &mut check)?;
    if check != [7; 4096] {
        return Err("the Unix-domain pair corrupted data".into());
    }

    let count = if config.quick { 500 } else { 2_000 };
    println!(
        "\n  accept on TCP loopback: {count} connections, only the accept calls timed, best of {}",
        config.rounds
    );
    println!("  ours: accept() (getsockname first, so a Unix-domain listener is refused unharmed)");
    println!("  baselines: std TcpListener::accept (blocking); our accept_address(), no check");
    let checked = Sock::bind_listen(loopback(), 128)?;
    let unchecked = Sock::bind_listen(loopback(), 128)?;
    let std_listener = std::net::TcpListener::bind(loopback())?;
    let mut best = [Duration::MAX; 3];
    for _ in 0..config.rounds {
        let times = time_accepts(&checked, &unchecked, &std_listener, count)?;
        for (best, time) in best.iter_mut().zip(times) {
            *best = (*best).min(time);
        }
    }
    let [ours, unchecked, baseline] = best;
    report.add(Row::ratio(
        "accept, TCP, vs std",
        per_accept(count, ours),
        per_accept(count, baseline),
        baseline.as_secs_f64() / ours.as_secs_f64(),
        None,
    ));
    report.add(Row::ratio(
        "accept, TCP, vs accept_address (the Unix-listener check)",
        per_accept(count, ours),
        per_accept(count, unchecked),
        unchecked.as_secs_f64() / ours.as_secs_f64(),
        None,
    ));
    Ok(())
}
