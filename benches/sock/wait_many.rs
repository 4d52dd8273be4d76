//! Workload 4, `wait_many` over 10 to 10,000 socks with one ready: against `poll(2)`.

use std::time::{Duration, Instant};

use bitcoin_sock::{Events, Sock, SockEvent};

#[cfg(not(unix))]
use crate::harness::Verdict;
use crate::harness::{loopback, send_all, sock_pair, Config, Report, Result, Row, TIMEOUT};
#[cfg(unix)]
use crate::harness::{poll_fds, pollfd};
#[cfg(not(target_os = "wasi"))]
use native::IdleSocks;
#[cfg(not(target_os = "wasi"))]
pub(crate) use native::{hold_connections, HOLD_ARG};
#[cfg(target_os = "wasi")]
use wasm::IdleSocks;

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

pub(crate) fn run(config: &Config, report: &mut Report) -> Result<()> {
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

#[cfg(not(target_os = "wasi"))]
mod native {
    use std::io::{self, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::{Duration, Instant};

    use bitcoin_sock::{Sock, SockEvent};

    #[cfg(unix)]
    use super::{raise_fd_limit, SPARE_FDS};
    use crate::harness::{is_would_block, Result, TIMEOUT};

    /// The argument that makes this binary the holder of the idle connections' client ends.
    pub(crate) const HOLD_ARG: &str = "--hold-connections";

    /// The connected socks that never become ready: the server ends here, the client ends in
    /// a child process (10,000 connections in one process would need 20,000 descriptors, past
    /// the usual hard limit of 20,000 with stdio).
    pub(super) struct IdleSocks {
        pub(super) servers: Vec<Sock>,
        holder: Option<std::process::Child>,
    }

    impl IdleSocks {
        pub(super) fn open(listener: &Sock, count: usize) -> Result<IdleSocks> {
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
    pub(crate) fn hold_connections(addr: &str, count: &str) -> Result<()> {
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
}

#[cfg(target_os = "wasi")]
mod wasm {
    use bitcoin_sock::Sock;

    use crate::harness::{sock_pair, Result};

    /// The connected socks that never become ready, both ends in this instance (nothing can
    /// be spawned in wasm).
    pub(super) struct IdleSocks {
        pub(super) servers: Vec<Sock>,
        clients: Vec<Sock>,
    }

    impl IdleSocks {
        /// As many pairs as the host lets this instance open, up to `count`.
        pub(super) fn open(listener: &Sock, count: usize) -> Result<IdleSocks> {
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
}
