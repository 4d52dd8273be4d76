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

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin_sock::sockman::SockMan;

use limits::Limits;
use node::{Config, Node};
use p2p::network::{self, resolve_target, Network};
use p2p::protocol::Timeouts;

/// What the node calls itself in its `version` message (BIP 14).
pub const USER_AGENT: &str = concat!("/bitcoin-sock-node:", env!("CARGO_PKG_VERSION"), "/");

/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The usage text, with the bounds' flags from `limits.rs`.
fn usage() -> String {
    format!(
        "\
usage: node [--network NAME] [--connect HOST[:PORT]]... [--listen ADDR:PORT]
            [--maxconnections N] [--verbose] [--message-timeout S] [--max-memory BYTES]
            [--log-rate N]

  --network NAME        mainnet (default), testnet (testnet3), testnet4, signet or regtest
  --connect HOST[:PORT] sync headers from this peer (repeatable); PORT defaults to the
                        network's
  --listen ADDR:PORT    accept peers here and serve them the headers synced
  --maxconnections N    most connections, inbound and outbound (default 125, as Core)
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
            _ if parsed.limits.parse_flag(&name, value)? => {}
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if parsed.connect.is_empty() && parsed.listen.is_none() {
        return Err("nothing to do: give --connect, --listen or both".to_owned());
    }
    Ok(Some(parsed))
}

/// The node against real peers: runs until every outbound peer is synced or gone and, with
/// `--listen`, on (until killed) serving inbound peers.
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
            ..Timeouts::CORE
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
    let mut outbound = 0;
    for target in &args.connect {
        let addr = match resolve_target(target, network.default_port) {
            Ok(addr) => addr,
            Err(problem) => {
                println!("node: {problem}");
                continue;
            }
        };
        if node
            .connect(&man, addr, Some(addr.to_string()), CONNECT_TIMEOUT)
            .is_ok()
        {
            outbound += 1;
        }
    }
    let mut reported = outbound == 0;
    loop {
        let now = Instant::now();
        let wait = node
            .next_deadline()
            .map_or(Duration::from_secs(1), |deadline| {
                deadline.saturating_duration_since(now)
            })
            .min(Duration::from_secs(1));
        man.run_once(&mut node, wait)?;
        if !reported && node.outbound_done() {
            reported = true;
            let synced = node.synced_count;
            let chain = node.chain();
            println!(
                "synced: height {}, tip {}, from {synced} of {outbound} outbound peers, in {:.2} s",
                chain.height(),
                chain.tip(),
                started.elapsed().as_secs_f64()
            );
            if args.listen.is_some() {
                println!("serving the headers to inbound peers until stopped");
            }
        }
        if args.listen.is_none() && node.outbound_done() {
            return Ok(());
        }
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
