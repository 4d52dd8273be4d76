//! Workload 2, ping-pong latency: 32-byte round trips against `std::net`.

use std::time::Duration;

#[cfg(not(target_os = "wasi"))]
pub(crate) use native::run;
// The Unix-domain workload measures its socks and std's with the same loops.
#[cfg(unix)]
pub(crate) use native::{pingpong_ours, pingpong_std, pingpong_std_nonblocking};
#[cfg(target_os = "wasi")]
pub(crate) use wasm::run;

pub(crate) const PING: [u8; 32] = [0x70; 32];

pub(crate) fn per_trip(trips: usize, time: Duration) -> String {
    format!(
        "{:.0} trips/s ({:.1} us)",
        trips as f64 / time.as_secs_f64(),
        time.as_secs_f64() * 1e6 / trips as f64
    )
}

#[cfg(not(target_os = "wasi"))]
mod native {
    use std::io::{Read, Write};
    use std::time::Duration;

    use bitcoin_sock::Sock;

    use super::{per_trip, PING};
    use crate::harness::{
        allowed_cpus, best_of, new_sock_pair, recv_exact, send_all, std_pair, two_cores,
        two_threads, Config, Report, Result, Row,
    };
    #[cfg(unix)]
    use crate::harness::{std_recv_exact, std_send_all};

    /// Natively the two threads are pinned (Linux), the same way for ours and the baselines: once
    /// on two cores (each wake-up crosses cores) and once both on one core (a wake-up is a direct
    /// switch, so the cost of each system call shows most). Unpinned, where the scheduler puts
    /// them changes the time per trip four-fold from one run to the next.
    pub(crate) fn run(config: &Config, report: &mut Report) -> Result<()> {
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
                || pingpong_std_nonblocking(&nb_client, &nb_server, trips, Some((first, first))),
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

    /// `trips` round trips of 32 bytes, a thread per side: the client sends [`PING`] and
    /// reads the pong, the server echoes what it reads; `send` and `recv` are the loop's
    /// primitives (the same loop for ours and every std baseline).
    pub(crate) fn pingpong_with<T: Sync + ?Sized>(
        client: &T,
        server: &T,
        trips: usize,
        cpus: Option<(usize, usize)>,
        send: fn(&T, &[u8]) -> Result<()>,
        recv: fn(&T, &mut [u8]) -> Result<()>,
    ) -> Result<Duration> {
        two_threads(
            cpus,
            || {
                let mut pong = [0u8; 32];
                for _ in 0..trips {
                    send(client, &PING)?;
                    recv(client, &mut pong)?;
                }
                Ok(())
            },
            || {
                let mut message = [0u8; 32];
                for _ in 0..trips {
                    recv(server, &mut message)?;
                    send(server, &message)?;
                }
                Ok(())
            },
        )
    }

    pub(crate) fn pingpong_ours(
        client: &Sock,
        server: &Sock,
        trips: usize,
        cpus: Option<(usize, usize)>,
    ) -> Result<Duration> {
        pingpong_with(client, server, trips, cpus, send_all, recv_exact)
    }

    /// Blocking std streams (TCP or Unix-domain): `write_all` and `read_exact`.
    pub(crate) fn pingpong_std<S: Sync>(
        client: &S,
        server: &S,
        trips: usize,
        cpus: Option<(usize, usize)>,
    ) -> Result<Duration>
    where
        for<'a> &'a S: Read + Write,
    {
        fn write_all<S>(mut stream: &S, data: &[u8]) -> Result<()>
        where
            for<'a> &'a S: Write,
        {
            Ok(stream.write_all(data)?)
        }
        fn read_exact<S>(mut stream: &S, buf: &mut [u8]) -> Result<()>
        where
            for<'a> &'a S: Read,
        {
            Ok(stream.read_exact(buf)?)
        }
        pingpong_with(client, server, trips, cpus, write_all, read_exact)
    }

    /// Non-blocking std streams (TCP or Unix-domain): a try first, `poll(2)` on would-block.
    #[cfg(unix)]
    pub(crate) fn pingpong_std_nonblocking<S: Sync + std::os::fd::AsRawFd>(
        client: &S,
        server: &S,
        trips: usize,
        cpus: Option<(usize, usize)>,
    ) -> Result<Duration>
    where
        for<'a> &'a S: Read + Write,
    {
        pingpong_with(client, server, trips, cpus, std_send_all, std_recv_exact)
    }
}

#[cfg(target_os = "wasi")]
mod wasm {
    use std::time::Instant;

    use super::{per_trip, PING};
    use crate::harness::{
        best_of, new_sock_pair, recv_exact, send_all, std_pair, std_recv_exact, std_send_all,
        Config, Report, Result, Row,
    };

    /// In wasm one thread plays both ends in turn: the client pings, the server echoes, the client
    /// reads the pong. The baseline does the same over std::net in non-blocking mode, waiting with
    /// wasi-libc's poll().
    pub(crate) fn run(config: &Config, report: &mut Report) -> Result<()> {
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
}
