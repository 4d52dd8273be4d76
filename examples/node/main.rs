//! A headers-only Bitcoin P2P node on `bitcoin-sock`'s [`SockMan`]: it syncs the block
//! headers from the peers it connects to (in as many `getheaders` rounds as the chain needs,
//! each header's link and proof of work checked), accepts peers and serves them the headers it
//! has, and disconnects, with one line saying why, every peer that misbehaves. Runs natively
//! and in wasmtime with the same output.
//!
//! ```sh
//! cargo run --example node                                  # embedded default
//! cargo run --example node --target wasm32-wasip2           # the same, in wasmtime
//! cargo run --example node -- --network regtest --connect 127.0.0.1:18444 \
//!     --listen 127.0.0.1:18555 --maxconnections 125         # a real node and light clients
//! scripts/regtest-node.sh check     # bcoin -> this node -> light clients, native and wasmtime
//! ```
//!
//! Without arguments it runs the embedded default (`demo.rs`): its own peers, in-process.

// Shared with the light client; the node does not use all of it.
#[allow(dead_code)]
#[path = "../common/p2p/mod.rs"]
mod p2p;

mod demo;
mod eviction;
mod fair;
mod limits;
mod log;
mod node;
mod outbound;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin_sock::sockman::SockMan;

use limits::Limits;
use node::{Config, Node};
use outbound::{Backoff, Outbound, Status, ONE_SHOT_ATTEMPTS};
use p2p::network::{self, Network};
use p2p::protocol::Timeouts;

/// What the node calls itself in its `version` message (BIP 14).
pub const USER_AGENT: &str = concat!("/bitcoin-sock-node:", env!("CARGO_PKG_VERSION"), "/");

/// How long a connect may take (Core's `DEFAULT_CONNECT_TIMEOUT`, 5 s). The node's loop
/// waits for it, so it is kept short.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The usage text, with the bounds' flags from `limits.rs`.
fn usage() -> String {
    format!(
        "\
usage: node [--network NAME] [--connect HOST[:PORT]]... [--listen ADDR:PORT]
            [--maxconnections N] [--ping-interval S] [--timeout-interval S]
            [--headers-timeout S] [--reconnect-delay S] [--max-reconnect-delay S] [--verbose]
            [--message-timeout S] [--max-memory BYTES] [--log-rate N]

  --network NAME        mainnet (default), testnet (testnet3), testnet4, signet or regtest
  --connect HOST[:PORT] sync headers from this peer and follow its tip (repeatable); PORT
                        defaults to the network's. Reconnected when the connection goes
                        (without --listen: given up after 10 failed attempts in a row)
  --listen ADDR:PORT    accept peers here and serve them the headers synced
  --maxconnections N    most connections, inbound and outbound (default 125, as Core)
  --ping-interval S     seconds between our pings to each peer (default 120, Core's
                        PING_INTERVAL)
  --timeout-interval S  seconds a pong may take before the peer is dropped (default 1200,
                        Core's TIMEOUT_INTERVAL)
  --headers-timeout S   seconds a peer may take to answer our getheaders (default 120)
  --reconnect-delay S   first delay before reconnecting, and its step (default 0.5, Core's)
  --max-reconnect-delay S  longest delay between attempts (default 5)
  --verbose             print each handshake, headers answer and served request
{limits}

Without arguments: the embedded default, which starts its own peers in-process.",
        limits = limits::USAGE
    )
}

struct Args {
    network: &'static Network,
    connect: Vec<String>,
    listen: Option<SocketAddr>,
    max_connections: usize,
    timeouts: Timeouts,
    backoff: Backoff,
    verbose: bool,
    limits: Limits,
}

// WASI 0.3 (feature `wasip3`): `main` entered where sockets may wait; elsewhere nothing.
bitcoin_sock::wasip3_main!();

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_none() {
        return match demo::run() {
            Ok(_) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args(args) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("error: {problem}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        network: &network::NETWORKS[0],
        connect: Vec::new(),
        listen: None,
        max_connections: 125,
        timeouts: Timeouts::CORE,
        backoff: Backoff::CORE,
        verbose: false,
        limits: Limits::default(),
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--verbose" => parsed.verbose = true,
            "--network" => {
                let value = value()?;
                parsed.network =
                    network::by_name(&value).ok_or(format!("unknown network {value:?}"))?;
            }
            "--connect" => parsed.connect.push(value()?),
            "--listen" => {
                let value = value()?;
                parsed.listen = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--listen wants ADDR:PORT, not {value:?}"))?,
                );
            }
            "--maxconnections" => {
                let value = value()?;
                parsed.max_connections = value
                    .parse()
                    .map_err(|_| format!("--maxconnections wants a number, not {value:?}"))?;
            }
            "--ping-interval" => parsed.timeouts.ping_interval = seconds(&name, &value()?)?,
            "--timeout-interval" => parsed.timeouts.pong = seconds(&name, &value()?)?,
            "--headers-timeout" => parsed.timeouts.headers = seconds(&name, &value()?)?,
            "--reconnect-delay" => parsed.backoff.base = seconds(&name, &value()?)?,
            "--max-reconnect-delay" => parsed.backoff.max = seconds(&name, &value()?)?,
            _ if parsed.limits.parse_flag(&name, value)? => {}
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if parsed.connect.is_empty() && parsed.listen.is_none() {
        return Err("nothing to do: give --connect, --listen or both".to_owned());
    }
    if parsed.backoff.max < parsed.backoff.base {
        return Err("--max-reconnect-delay is below --reconnect-delay".to_owned());
    }
    Ok(Some(parsed))
}

/// A positive number of seconds (fractions allowed, e.g. `0.5`), at most a year.
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    let bad = || format!("{flag} wants a number of seconds above 0, not {value:?}");
    let secs: f64 = value.parse().map_err(|_| bad())?;
    if !(secs > 0.0 && secs <= 365.0 * 86_400.0) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The node against real peers: keeps its `--connect` peers (reconnecting with a bounded
/// backoff, following their tip) and, with `--listen`, serves inbound peers until killed;
/// without `--listen` it ends once every outbound peer synced or was given up.
fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let network = args.network;
    println!(
        "network: {} (magic {}, default port {})",
        network.name,
        network.magic(),
        network.default_port
    );
    let man = SockMan::with_options(args.limits.sockman_options())?;
    if let Some(listen) = args.listen {
        let addr = man.bind_and_listen(listen)?;
        println!(
            "listening on {addr} (maxconnections {})",
            args.max_connections
        );
    }
    let mut node = Node::new(Config {
        network,
        timeouts: Timeouts {
            message: args.limits.message_timeout,
            ..args.timeouts
        },
        max_connections: args.max_connections,
        user_agent: USER_AGENT.to_owned(),
        nonce: random_u64(),
        timestamp: unix_time(),
        show_addresses: true,
        verbose: args.verbose,
        name: "node".to_owned(),
    });
    node.set_log_rate(args.limits.log_rate);
    let started = Instant::now();
    let dests = args
        .connect
        .iter()
        .map(|target| network::with_default_port(target, network.default_port))
        .collect();
    let give_up = args.listen.is_none().then_some(ONE_SHOT_ATTEMPTS);
    let mut outbound = Outbound::new(dests, args.backoff, give_up, started);
    let mut reported = outbound.is_empty();
    loop {
        for index in outbound.due(Instant::now()) {
            let dest = outbound.dest(index).to_owned();
            match node.connect_by_name(&man, &dest, CONNECT_TIMEOUT) {
                Ok(id) => outbound.connected(index, id),
                Err(_) => {
                    let retry_in = outbound.failed(index, Instant::now());
                    say_retry(&dest, retry_in, outbound.attempts(index));
                }
            }
        }
        let now = Instant::now();
        let wait = [node.next_deadline(), outbound.next_deadline()]
            .into_iter()
            .flatten()
            .min()
            .map_or(Duration::from_secs(1), |deadline| {
                deadline.saturating_duration_since(now)
            })
            .min(Duration::from_secs(1));
        man.run_once(&mut node, wait)?;
        let lost = outbound.update(Instant::now(), |id| match node.peer_state(id) {
            None => Status::Gone,
            Some((false, _)) => Status::Connecting,
            Some((true, false)) => Status::Handshaken,
            Some((true, true)) => Status::Synced,
        });
        for gone in lost {
            say_retry(&gone.dest, gone.retry_in, gone.attempts);
        }
        if !reported && outbound.done() {
            reported = true;
            let chain = node.chain();
            println!(
                "synced: height {}, tip {}, from {} of {} outbound peers, in {:.2} s",
                chain.height(),
                chain.tip(),
                outbound.synced_count(),
                outbound.len(),
                started.elapsed().as_secs_f64()
            );
            if args.listen.is_some() {
                println!("serving the headers to inbound peers until stopped");
            } else {
                node.close_all(&man);
                return Ok(());
            }
        }
    }
}

/// One line per retry scheduled (or target given up).
fn say_retry(dest: &str, retry_in: Option<Duration>, attempts: u64) {
    match retry_in {
        Some(delay) => println!(
            "node: reconnecting to {dest} in {:.1} s",
            delay.as_secs_f64()
        ),
        None => println!(
            "node: giving up on {dest} after {attempts} attempts ({ONE_SHOT_ATTEMPTS} failed \
             in a row)"
        ),
    }
}

/// Seconds since 1970 for the `version` timestamp.
fn unix_time() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// A random `u64` from std's per-process hash keys (OS randomness natively, `wasi:random` in
/// wasmtime).
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}
