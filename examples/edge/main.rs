//! A Bitcoin light client at the edge: a `wasi:http/incoming-handler` component that answers
//! HTTP questions from the Bitcoin network, over P2P, per request: "what is the tip?" and "has
//! this address been paid, and how deep?", asked of the operator's own node, no third-party
//! API in between.
//!
//! ```sh
//! cargo build --example edge --target wasm32-wasip2
//! wasmtime serve -S cli=y -S inherit-network=y --addr 127.0.0.1:8080 \
//!     --env EDGE_PEER=127.0.0.1:18444 --env EDGE_NETWORK=regtest \
//!     target/wasm32-wasip2/debug/examples/edge.wasm
//! curl http://127.0.0.1:8080/tip
//! curl "http://127.0.0.1:8080/payments/bcrt1q...?from=100"
//! EDGE_PEER=127.0.0.1:18444 EDGE_NETWORK=regtest cargo run --example edge -- /tip  # natively
//! scripts/edge-tests.sh    # bcoin in regtest, the component in wasmtime serve, curl
//! ```
//!
//! Each request connects to `EDGE_PEER` with this crate's `Sock`, does the handshake, syncs
//! the headers from genesis (or `EDGE_CHECKPOINT=HEIGHT:HASH`) with every header's link and
//! proof of work checked, then answers JSON:
//! * `GET /tip`: `{"network","height","hash","p2p_ms"}`;
//! * `GET /payments/<address>?from=<height>`: every output paying the address in the blocks
//!   from `from` to the tip, each with `txid`, `vout`, `amount` (satoshis), `height` and
//!   `confirmations`, proven by a BIP 37 `merkleblock` whose partial merkle tree hashes to
//!   the header's merkle root (the peer must serve BIP 37: Core's `-peerbloomfilters`, bcoin's
//!   `--bip37`);
//! * 400 for a bad address or one of another network, 404 for another path, 405 for another
//!   method, 502 for a peer that cannot be reached or misbehaves (with Core's error text), 504
//!   for a peer too slow for the request's deadline (`EDGE_DEADLINE_MS`, 20 s by default).
//!   Nothing the peer sends can make it panic or trap.
//!
//! The same handler runs natively as a command, `edge [GET] PATH`, which prints the status
//! and the JSON body the component would answer, so the two can be compared. (The component
//! is a command too, in a host that gives it `wasi:http/types`: `wasmtime run -S http
//! -S inherit-network=y -S inherit-env=y edge.wasm /tip`.)

// Shared with the light client and the node; the edge does not use all of it.
#[allow(dead_code)]
#[path = "../common/p2p/mod.rs"]
mod p2p;

mod answer;
mod bloom;
#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod http;
mod json;
mod peer;
mod proof;

use std::io::Write;
use std::process::ExitCode;

use answer::{answer, Config, Response};

const USAGE: &str = "\
usage: edge [GET] PATH      answer one request as the wasi:http component would

  PATH    /tip or /payments/<address>?from=<height>
  configuration from the environment: EDGE_PEER=HOST:PORT (required), EDGE_NETWORK (mainnet,
  testnet, testnet4, signet, regtest; default mainnet), EDGE_CHECKPOINT=HEIGHT:HASH,
  EDGE_DEADLINE_MS (default 20000)
prints the HTTP status on the first line and the JSON body on the second";

/// The configuration from the process's environment (`wasmtime serve --env NAME=VALUE` for
/// the component).
fn config() -> Result<Config, String> {
    Config::from_vars(|name| std::env::var(name).ok())
}

/// One request, as the component answers it.
fn handle(method: &str, target: &str) -> Response {
    let config = config();
    answer(config.as_ref().map_err(String::as_str), method, target)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (method, target) = match args.as_slice() {
        [target] if target.starts_with('/') => ("GET", target.as_str()),
        [method, target] if target.starts_with('/') => (method.as_str(), target.as_str()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let response = handle(method, target);
    // Not println!, which panics when stdout is closed early (`edge /tip | head -n1`).
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}\n{}", response.status, response.body);
    if response.status == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
