//! The handler's logic, the same for the `wasi:http` component and the native command: a
//! method and a path in, a status and a JSON body out. Bad questions are answered before the
//! peer is called (400, 404, 405); the P2P part runs under the request's deadline.

use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::address::NetworkUnchecked;
use bitcoin::{Address, BlockHash};

use crate::json::Value;
use crate::p2p::chain::HeaderChain;
use crate::p2p::network::{self, Network};
use crate::peer::{PeerError, Session};

/// How long a request may take when `EDGE_DEADLINE_MS` does not say.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);

/// The component's configuration, from the environment (`wasmtime serve --env`, or the
/// command's own environment).
#[derive(Debug)]
pub struct Config {
    /// `EDGE_PEER`: the node to ask, `HOST:PORT` (the port defaults to the network's).
    pub peer: String,
    /// `EDGE_NETWORK`: `mainnet` (default), `testnet`, `testnet4`, `signet`, `regtest`.
    pub network: &'static Network,
    /// `EDGE_CHECKPOINT`: `HEIGHT:HASH` of a block to sync from instead of genesis.
    pub checkpoint: Option<(u32, BlockHash)>,
    /// `EDGE_DEADLINE_MS`: how long one request's P2P part may take.
    pub deadline: Duration,
}

impl Config {
    /// Reads the configuration through `var` (`std::env::var`, or a test's table).
    ///
    /// # Errors
    /// What is missing or malformed, naming the variable.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let peer = var("EDGE_PEER").ok_or("EDGE_PEER (the peer's HOST:PORT) is not set")?;
        let name = var("EDGE_NETWORK").unwrap_or_else(|| "mainnet".to_owned());
        let network =
            network::by_name(&name).ok_or(format!("EDGE_NETWORK: unknown network {name:?}"))?;
        let checkpoint = match var("EDGE_CHECKPOINT") {
            None => None,
            Some(value) => {
                let parsed = value.split_once(':').and_then(|(height, hash)| {
                    Some((height.parse().ok()?, BlockHash::from_str(hash).ok()?))
                });
                Some(parsed.ok_or(format!("EDGE_CHECKPOINT wants HEIGHT:HASH, not {value:?}"))?)
            }
        };
        let deadline = match var("EDGE_DEADLINE_MS") {
            None => DEFAULT_DEADLINE,
            Some(ms) => Duration::from_millis(
                ms.parse()
                    .map_err(|_| format!("EDGE_DEADLINE_MS wants milliseconds, not {ms:?}"))?,
            ),
        };
        Ok(Config {
            peer,
            network,
            checkpoint,
            deadline,
        })
    }

    /// The chain a request starts from: the checkpoint, or genesis.
    fn chain(&self) -> HeaderChain {
        match self.checkpoint {
            Some((height, hash)) => HeaderChain::from_checkpoint(self.network, height, hash),
            None => HeaderChain::new(self.network),
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

impl Response {
    fn ok(body: Value) -> Response {
        Response {
            status: 200,
            body: body.to_json(),
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Response {
        let body = Value::Object(vec![
            ("status", Value::Num(status.into())),
            ("error", Value::Str(message.into())),
        ]);
        Response {
            status,
            body: body.to_json(),
        }
    }
}

impl From<PeerError> for Response {
    fn from(err: PeerError) -> Response {
        match err {
            PeerError::Bad(message) => Response::error(502, message),
            PeerError::Slow(message) => Response::error(504, message),
        }
    }
}

/// What was asked.
enum Question {
    Tip,
    Payments {
        address: Address,
        text: String,
        /// The first block to look in: at least the chain's base (genesis or the checkpoint,
        /// whose hash proves its header and so its merkle root).
        from: u32,
    },
}

/// Answers `method` `target` (path and query) with `config` (or the error that reading it
/// gave, a 500 once the question is known to be a good one).
pub fn answer(config: Result<&Config, &str>, method: &str, target: &str) -> Response {
    if method != "GET" {
        return Response::error(405, format!("method {method} not allowed: only GET"));
    }
    let config = match config {
        Ok(config) => config,
        Err(problem) => return Response::error(500, format!("configuration: {problem}")),
    };
    let mut chain = config.chain();
    let question = match parse(config.network, chain.base(), target) {
        Ok(question) => question,
        Err(response) => return response,
    };
    let started = Instant::now();
    let deadline = started.checked_add(config.deadline);
    let result = Session::open(config.network, &config.peer, deadline).and_then(|session| {
        session.sync(&mut chain)?;
        match &question {
            Question::Tip => Ok(Vec::new()),
            Question::Payments { address, from, .. } => {
                session.payments(&chain, *from, &address.script_pubkey())
            }
        }
    });
    let payments = match result {
        Ok(payments) => payments,
        Err(err) => return err.into(),
    };
    let p2p_ms = Value::Num(started.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
    let tip = [
        ("height", Value::Num(chain.height().into())),
        ("hash", Value::Str(chain.tip().to_string())),
    ];
    let network = ("network", Value::Str(config.network.name.to_owned()));
    match question {
        Question::Tip => {
            let mut fields = vec![network];
            fields.extend(tip);
            fields.push(("p2p_ms", p2p_ms));
            Response::ok(Value::Object(fields))
        }
        Question::Payments { text, from, .. } => {
            let tip_height = chain.height();
            let payments = payments
                .into_iter()
                .map(|payment| {
                    Value::Object(vec![
                        ("txid", Value::Str(payment.txid.to_string())),
                        ("vout", Value::Num(payment.vout.into())),
                        ("amount", Value::Num(payment.amount.to_sat())),
                        ("height", Value::Num(payment.height.into())),
                        (
                            "confirmations",
                            Value::Num((tip_height - payment.height + 1).into()),
                        ),
                    ])
                })
                .collect();
            Response::ok(Value::Object(vec![
                network,
                ("address", Value::Str(text)),
                ("from", Value::Num(from.into())),
                ("tip", Value::Object(tip.into())),
                ("payments", Value::Array(payments)),
                ("p2p_ms", p2p_ms),
            ]))
        }
    }
}

/// The question in `target`, or the 400/404 answer to a bad one. `base` is the height the
/// chain starts at: blocks below it are unknown, so a `from` below it is refused.
fn parse(network: &'static Network, base: u32, target: &str) -> Result<Question, Response> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == "/tip" {
        return Ok(Question::Tip);
    }
    let Some(text) = path.strip_prefix("/payments/") else {
        return Err(Response::error(
            404,
            format!("no such path {path:?}: ask /tip or /payments/<address>?from=<height>"),
        ));
    };
    let unchecked: Address<NetworkUnchecked> = text
        .parse()
        .map_err(|err| Response::error(400, format!("bad address {text:?}: {err}")))?;
    let address = unchecked.require_network(network.network).map_err(|_| {
        Response::error(
            400,
            format!("address {text} is not a {} address", network.name),
        )
    })?;
    let mut from = base;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("from", height)) => {
                let height = height.parse::<u32>().map_err(|_| {
                    Response::error(400, format!("from wants a block height, not {height:?}"))
                })?;
                if height < base {
                    return Err(Response::error(
                        400,
                        format!(
                            "from={height} is below the checkpoint at height {base}: those \
                             blocks are not known here"
                        ),
                    ));
                }
                from = height;
            }
            _ => {
                return Err(Response::error(
                    400,
                    format!("unknown query parameter {pair:?}: only from=<height>"),
                ))
            }
        }
    }
    Ok(Question::Payments {
        address,
        text: text.to_owned(),
        from,
    })
}
