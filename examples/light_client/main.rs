//! A Bitcoin light client on `bitcoin-sock`'s public API: connect with a timeout, do the
//! `version`/`verack` handshake, answer `ping` with `pong`, and sync the block headers in as
//! many `getheaders` rounds as the chain needs (2,000 headers a round), checking that each
//! header builds on the one before and carries the proof of work its `nBits` claim. A peer that
//! sends an invalid header is refused and disconnected. Runs natively and in wasmtime with the
//! same output.
//!
//! ```sh
//! cargo run --example light_client                                   # embedded peer
//! cargo run --example light_client --target wasm32-wasip2            # the same, in wasmtime
//! cargo run --example light_client -- --network regtest 127.0.0.1    # a real node
//! scripts/regtest-node.sh check     # starts one (bcoin, regtest, loopback) and runs both
//! ```
//!
//! Given `HOST[:PORT]` it talks to that node (`PORT` defaults to the network's). Without one it
//! starts an embedded regtest peer on loopback that serves a chain of headers with real
//! (regtest-easy) proof of work, then shows each error a misbehaving peer produces. The peer runs in the same thread (`wasm32-wasip2`
//! has none): the client's sock is wrapped in a [`SockIo`] whose `wait` also waits on the
//! peer's socks and lets the peer act on what is ready (`peer.rs`), so the client's code is the
//! same for both.

// Shared with the node example; the light client does not use all of it.
#[allow(dead_code)]
#[path = "../common/p2p/mod.rs"]
mod p2p;

mod clients;
mod peer;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::ServiceFlags;
use bitcoin_sock::socks5::IntrRecvError;
use bitcoin_sock::{Sock, SockError, SockIo, ThreadInterrupt};

use p2p::chain::{HeaderChain, HeaderError};
use p2p::framing::{
    command_of, decode_message, encode_message, get_headers, version_message, BlockHeader,
    FrameError, MessageHeader, VersionFields, HEADER_LEN, MAX_HEADERS,
};
use p2p::network::{self, resolve_target, Network};
use peer::{EmbeddedPeer, Fault, PumpingSock};

/// What this client calls itself in its `version` message (BIP 14).
const USER_AGENT: &str = concat!("/bitcoin-sock:", env!("CARGO_PKG_VERSION"), "/");

const USAGE: &str = "\
usage: light_client [--network NAME] [--clients N] [HOST[:PORT]]

  --network NAME  mainnet (default with HOST), testnet (testnet3), testnet4, signet or regtest
                  (the embedded peer's, and the default without HOST)
  --clients N     N clients at once against HOST, each syncing on its own connection
                  (one SockMan, one thread); prints how many synced to which tip
  HOST[:PORT]     a node to talk to; PORT defaults to the network's. Without it, the client
                  talks to an embedded regtest peer it starts on loopback, then shows the
                  error each kind of misbehaving peer gives.";

/// How long each phase may take.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    connect: Duration,
    handshake: Duration,
    headers: Duration,
    send: Duration,
}

const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(10),
    handshake: Duration::from_secs(20),
    headers: Duration::from_secs(30),
    send: Duration::from_secs(10),
};

/// The command line.
struct Args {
    network: &'static Network,
    target: Option<String>,
    clients: Option<usize>,
}

// WASI 0.3 (feature `wasip3`): `main` entered where sockets may wait; elsewhere nothing.
bitcoin_sock::wasip3_main!();

fn main() -> ExitCode {
    let Args {
        network,
        target,
        clients,
    } = match parse_args(std::env::args().skip(1)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("error: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!(
        "network: {} (magic {}, default port {})",
        network.name,
        network.magic(),
        network.default_port
    );
    let result = match (target, clients) {
        (Some(target), Some(count)) => many(network, &target, count),
        (Some(target), None) => remote(network, &target),
        (None, _) => embedded(network),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `--network NAME` (or `--network=NAME`) and an optional `HOST[:PORT]`; `None` for `--help`.
/// The network defaults to mainnet for a node given by address and to regtest for the
/// embedded peer, the one network whose proof of work it can make up on the spot.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut network = None;
    let mut target = None;
    let mut clients = None;
    while let Some(arg) = args.next() {
        let count = match arg.as_str() {
            "--clients" => Some(args.next().ok_or("--clients needs a number")?),
            _ => arg.strip_prefix("--clients=").map(str::to_owned),
        };
        if let Some(count) = count {
            match count.parse::<usize>() {
                Ok(count) if count > 0 => clients = Some(count),
                _ => return Err(format!("--clients wants a number above 0, not {count:?}")),
            }
            continue;
        }
        let name = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--network" => Some(args.next().ok_or("--network needs a name")?),
            _ => arg.strip_prefix("--network=").map(str::to_owned),
        };
        if let Some(name) = name {
            network = Some(network::by_name(&name).ok_or(format!("unknown network {name:?}"))?);
        } else if arg.starts_with('-') {
            return Err(format!("unknown option {arg:?}"));
        } else if target.replace(arg).is_some() {
            return Err("more than one address given".to_owned());
        }
    }
    if clients.is_some() && target.is_none() {
        return Err("--clients needs a HOST to connect to".to_owned());
    }
    let regtest = network::by_name("regtest").ok_or("no regtest in the network table")?;
    let network = match (network, &target) {
        (Some(network), Some(_)) => network,
        (None, Some(_)) => &network::NETWORKS[0],
        (None, None) => regtest,
        (Some(network), None) if std::ptr::eq(network, regtest) => network,
        (Some(network), None) => {
            return Err(format!(
                "the embedded peer serves regtest only, not {}: give a HOST to talk to a {} node",
                network.name, network.name
            ))
        }
    };
    Ok(Some(Args {
        network,
        target,
        clients,
    }))
}

/// Talks to a real node.
fn remote(network: &'static Network, target: &str) -> Result<(), Box<dyn std::error::Error>> {
    let addr = resolve_target(target, network.default_port)?;
    let started = Instant::now();
    let sock = Sock::connect(addr, TIMEOUTS.connect).map_err(ClientError::Connect)?;
    println!("connected to {addr}");
    let session = Session::new(&sock, network, TIMEOUTS, true);
    let chain = session.run(addr)?;
    println!(
        "synced from 1 peer ({addr}): height {}, tip {}, in {:.2} s",
        chain.height(),
        chain.tip(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `count` clients at once against a real node.
fn many(
    network: &'static Network,
    target: &str,
    count: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let addr = resolve_target(target, network.default_port)?;
    clients::run(
        network,
        addr,
        count,
        USER_AGENT,
        TIMEOUTS.headers.saturating_mul(4),
    )
}

/// Talks to an embedded peer on loopback, then to one misbehaving peer per kind of error.
fn embedded(network: &'static Network) -> Result<(), Box<dyn std::error::Error>> {
    let peer = EmbeddedPeer::start(network, None)?;
    let addr = peer.local_addr()?;
    println!("embedded peer listening on 127.0.0.1 (port chosen by the OS)");
    let sock = Sock::connect(addr, TIMEOUTS.connect).map_err(ClientError::Connect)?;
    println!("connected to the embedded peer");
    let link = PumpingSock::new(sock, peer);
    Session::new(&link, network, TIMEOUTS, true).run(addr)?;
    let report = link.finish(TIMEOUTS.handshake)?.into_report();
    println!("the embedded peer saw:");
    for line in report.lines() {
        println!("  {line}");
    }
    report.check()?;

    println!();
    println!("errors from peers that misbehave:");
    println!("  nobody listening: {}", refused_connect()?);
    for fault in Fault::ALL {
        println!(
            "  {}: {}",
            fault.describe(),
            misbehaving_peer(network, fault)?
        );
    }
    Ok(())
}

/// Connects to a loopback port that was just closed, and tells how that failed.
fn refused_connect() -> Result<String, Box<dyn std::error::Error>> {
    let addr = Sock::bind_listen("127.0.0.1:0".parse()?, 1)?.local_addr()?;
    // The listener is closed here: nothing listens on `addr` any more.
    match Sock::connect(addr, TIMEOUTS.connect) {
        // The full text names the port and the platform's errno (111 natively, wasi-libc's 14
        // in wasmtime), so print the kind of failure, the same on every host.
        Err(SockError::Connect { source, .. }) => {
            Ok(format!("connect() failed: {}", source.kind()))
        }
        Err(err) => Ok(format!("connect() failed: {err}")),
        Ok(_) => Err("connect() to a closed port succeeded".into()),
    }
}

/// Runs a session against a peer with `fault`; the error the client reports.
fn misbehaving_peer(
    network: &'static Network,
    fault: Fault,
) -> Result<String, Box<dyn std::error::Error>> {
    let peer = EmbeddedPeer::start(network, Some(fault))?;
    let addr = peer.local_addr()?;
    let sock = Sock::connect(addr, TIMEOUTS.connect).map_err(ClientError::Connect)?;
    let link = PumpingSock::new(sock, peer);
    // A short handshake timeout, for the peer that never answers.
    let timeouts = Timeouts {
        handshake: Duration::from_millis(300),
        ..TIMEOUTS
    };
    match Session::new(&link, network, timeouts, false).run(addr) {
        Err(err) => Ok(format!("error: {err}")),
        Ok(_) => Err(format!("{} went undetected", fault.describe()).into()),
    }
}

/// Why a session with a node failed.
#[derive(Debug)]
enum ClientError {
    /// The connection could not be made (refused, unreachable, timed out).
    Connect(SockError),
    /// Sending a message failed (timeout, or the connection broke).
    Send {
        command: &'static str,
        source: SockError,
    },
    /// Nothing (or not enough) arrived in time.
    Timeout { phase: Phase, timeout: Duration },
    /// The peer closed the connection in the middle of something.
    Closed {
        reading: String,
        received: usize,
        expected: usize,
    },
    /// A socket error while receiving.
    Recv(io::Error),
    /// A malformed message.
    Frame(FrameError),
    /// A header that does not link to its parent or lacks its proof of work: the peer is
    /// refused (the session ends and its socket is closed).
    InvalidHeader(HeaderError),
    /// A well-formed message that makes no sense.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(err) => write!(f, "{err}"),
            ClientError::Send { command, source } => write!(f, "sending {command}: {source}"),
            ClientError::Timeout { phase, timeout } => write!(
                f,
                "timed out after {timeout:?} waiting for {}",
                phase.waiting_for()
            ),
            ClientError::Closed {
                reading,
                received,
                expected,
            } => write!(
                f,
                "unexpected end of stream: the peer closed the connection after {received} of \
                 {expected} bytes of {reading}"
            ),
            ClientError::Recv(err) => write!(f, "receiving: {err}"),
            ClientError::Frame(err @ FrameError::BadMagic { found, .. }) => {
                write!(f, "{err}")?;
                match network::by_magic(*found) {
                    Some(other) => write!(f, " (the peer is on {})", other.name),
                    None => write!(f, " (not a Bitcoin peer?)"),
                }
            }
            ClientError::Frame(err) => write!(f, "{err}"),
            ClientError::InvalidHeader(err) => write!(f, "{err}; disconnecting the peer"),
            ClientError::Protocol(problem) => write!(f, "{problem}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<FrameError> for ClientError {
    fn from(err: FrameError) -> ClientError {
        ClientError::Frame(err)
    }
}

/// One conversation with a node over `io`: a [`Sock`], or the client's sock with the embedded
/// peer behind it.
struct Session<'a, S: SockIo> {
    io: &'a S,
    network: &'static Network,
    timeouts: Timeouts,
    /// Whether to print each message; the misbehaving-peer runs only print the error.
    verbose: bool,
    interrupt: ThreadInterrupt,
}

impl<'a, S: SockIo> Session<'a, S> {
    fn new(io: &'a S, network: &'static Network, timeouts: Timeouts, verbose: bool) -> Self {
        Session {
            io,
            network,
            timeouts,
            verbose,
            interrupt: ThreadInterrupt::new(),
        }
    }

    fn say(&self, line: fmt::Arguments<'_>) {
        if self.verbose {
            println!("{line}");
        }
    }

    /// Handshake, then header sync; the chain that came back.
    fn run(&self, peer_addr: SocketAddr) -> Result<HeaderChain, ClientError> {
        self.handshake(peer_addr)?;
        self.say(format_args!("handshake complete"));
        self.sync_headers()
    }

    fn handshake(&self, peer_addr: SocketAddr) -> Result<(), ClientError> {
        let deadline = deadline_after(self.io.now(), self.timeouts.handshake);
        let version = version_message(VersionFields {
            services: ServiceFlags::NONE,
            timestamp: unix_time(),
            receiver: Some(peer_addr),
            nonce: random_u64(),
            user_agent: USER_AGENT.to_owned(),
            start_height: 0,
            relay: false,
        });
        let nonce = version.nonce;
        self.say(format_args!("-> version ({})", describe_version(&version)));
        self.send(NetworkMessage::Version(version))?;

        let mut peer_version = false;
        let mut verack = false;
        while !peer_version || !verack {
            match self.receive(deadline, Phase::Handshake)? {
                NetworkMessage::Version(theirs) if !peer_version => {
                    self.say(format_args!("<- version ({})", describe_version(&theirs)));
                    if theirs.nonce == nonce {
                        return Err(ClientError::Protocol("connected to ourselves".to_owned()));
                    }
                    self.send(NetworkMessage::Verack)?;
                    self.say(format_args!("-> verack"));
                    peer_version = true;
                }
                NetworkMessage::Verack if peer_version => {
                    self.say(format_args!("<- verack"));
                    verack = true;
                }
                message @ (NetworkMessage::Version(_) | NetworkMessage::Verack) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected {:?} during the handshake",
                        command_of(&message)
                    )));
                }
                other => self.handle_other(&other)?,
            }
        }
        Ok(())
    }

    /// `getheaders` rounds until the peer sends fewer than [`MAX_HEADERS`]: each asks for the
    /// headers after our tip (the locator starts there), each answer is checked header by
    /// header (link to the parent, proof of work) before it is added.
    fn sync_headers(&self) -> Result<HeaderChain, ClientError> {
        let mut chain = HeaderChain::new(self.network);
        for round in 1.. {
            let locator = chain.locator();
            let hashes = locator.len();
            self.send(get_headers(locator))?;
            if chain.height() == 0 {
                self.say(format_args!(
                    "-> getheaders (locator: genesis {}, stop: zero)",
                    chain.tip()
                ));
            } else {
                self.say(format_args!(
                    "-> getheaders (locator: {hashes} hashes from the tip at height {}, stop: \
                     zero)",
                    chain.height()
                ));
            }
            let headers = self.receive_headers()?;
            let from = chain.height();
            let added = chain
                .connect(&headers)
                .map_err(ClientError::InvalidHeader)?;
            if headers.is_empty() {
                self.say(format_args!(
                    "<- headers: none after height {from}, the peer has no more"
                ));
            } else {
                self.say(format_args!(
                    "<- headers: {} (round {round}), links and proof of work checked, height {} \
                     now",
                    headers.len(),
                    chain.height()
                ));
            }
            if headers.len() < MAX_HEADERS {
                break;
            }
            if added == 0 {
                // A full answer of headers we have: asking again would get the same.
                return Err(ClientError::Protocol(format!(
                    "the peer sent {} headers we already have, none after height {from}",
                    headers.len()
                )));
            }
        }
        self.say(format_args!(
            "synced: height {}, tip {}",
            chain.height(),
            chain.tip()
        ));
        Ok(chain)
    }

    /// Reads messages (answering pings) until a `headers` one comes, by the headers deadline.
    fn receive_headers(&self) -> Result<Vec<BlockHeader>, ClientError> {
        let deadline = deadline_after(self.io.now(), self.timeouts.headers);
        loop {
            match self.receive(deadline, Phase::Headers)? {
                NetworkMessage::Headers(headers) => return Ok(headers),
                other => self.handle_other(&other)?,
            }
        }
    }

    /// Answers `ping`; ignores the rest (`sendheaders`, `sendcmpct`, `feefilter`, `inv`, ...).
    fn handle_other(&self, message: &NetworkMessage) -> Result<(), ClientError> {
        if let NetworkMessage::Ping(nonce) = message {
            self.say(format_args!("<- ping"));
            self.send(NetworkMessage::Pong(*nonce))?;
            self.say(format_args!("-> pong"));
        } else {
            self.say(format_args!("<- {} (ignored)", command_of(message)));
        }
        Ok(())
    }

    fn send(&self, message: NetworkMessage) -> Result<(), ClientError> {
        let command = message.cmd();
        let bytes = encode_message(self.network.magic(), message);
        self.io
            .send_complete(&bytes, self.timeouts.send, &self.interrupt)
            .map_err(|source| ClientError::Send { command, source })
    }

    /// The next message: its 24-byte header, checked (magic, length cap) before the payload
    /// is allocated, then the payload; rust-bitcoin decodes the whole message once the checksum
    /// matched.
    fn receive(
        &self,
        deadline: Option<Instant>,
        phase: Phase,
    ) -> Result<NetworkMessage, ClientError> {
        let mut header = [0u8; HEADER_LEN];
        self.recv_exact(&mut header, deadline, phase, || {
            "a message header".to_owned()
        })?;
        let header = MessageHeader::decode(&header, self.network.magic())?;
        // At most MAX_PAYLOAD (4 MB): MessageHeader::decode checked it.
        let mut bytes = vec![0u8; HEADER_LEN + header.length as usize];
        bytes[..HEADER_LEN].copy_from_slice(&header.encode());
        self.recv_exact(&mut bytes[HEADER_LEN..], deadline, phase, || {
            format!("the {:?} payload", header.command_lossy())
        })?;
        Ok(decode_message(&header, &bytes)?)
    }

    /// Fills `buf` from the socket by `deadline`: `read_exact` through the crate's deadline
    /// adapter ([`SockIo::with_deadline`]), which waits for data at most
    /// [`MAX_WAIT_FOR_IO`](bitcoin_sock::MAX_WAIT_FOR_IO) at a time and stops at the deadline
    /// (the crate's `recv_until_terminator` is for delimited text; Bitcoin messages are
    /// length-prefixed).
    fn recv_exact(
        &self,
        buf: &mut [u8],
        deadline: Option<Instant>,
        phase: Phase,
        reading: impl Fn() -> String,
    ) -> Result<(), ClientError> {
        let left = deadline.map_or(Duration::MAX, |deadline| {
            deadline.saturating_duration_since(self.io.now())
        });
        let Err(err) = self.io.with_deadline(left, &self.interrupt).read_exact(buf) else {
            return Ok(());
        };
        // The adapter's error carries Core's `InterruptibleRecv` outcome, with the counts.
        let kind = err.kind();
        let source = match err
            .into_inner()
            .map(|inner| inner.downcast::<IntrRecvError>())
        {
            Some(Ok(source)) => *source,
            Some(Err(other)) => return Err(ClientError::Recv(io::Error::new(kind, other))),
            None => return Err(ClientError::Recv(kind.into())),
        };
        Err(match source {
            IntrRecvError::Disconnected { received, expected } => ClientError::Closed {
                reading: reading(),
                received,
                expected,
            },
            IntrRecvError::Timeout { .. } => ClientError::Timeout {
                phase,
                timeout: match phase {
                    Phase::Handshake => self.timeouts.handshake,
                    Phase::Headers => self.timeouts.headers,
                },
            },
            IntrRecvError::NetworkError { source, .. } => ClientError::Recv(source),
            other => ClientError::Recv(io::Error::other(other)),
        })
    }
}

/// What the client is waiting for, each with its own deadline.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Handshake,
    Headers,
}

impl Phase {
    fn waiting_for(self) -> &'static str {
        match self {
            Phase::Handshake => "the version handshake",
            // Core ignores getheaders while in initial block download (on regtest: until a
            // block is mined); bcoin sends nothing when it has no block after genesis.
            Phase::Headers => {
                "headers (a node in initial block download, or with no block after genesis, \
                 may not answer)"
            }
        }
    }
}

fn describe_version(version: &VersionMessage) -> String {
    format!(
        "protocol {}, services {}, user agent {:?}, start height {}, relay {}",
        version.version,
        version.services.to_u64(),
        version.user_agent,
        version.start_height,
        version.relay
    )
}

/// `now + timeout`; `None` when that is past what [`Instant`] holds, i.e. never.
fn deadline_after(now: Instant, timeout: Duration) -> Option<Instant> {
    now.checked_add(timeout)
}

/// Seconds since 1970 for the `version` message's timestamp (the one use of wall-clock time;
/// deadlines use [`Instant`]).
fn unix_time() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// A random `u64` from std's per-process hash keys (OS randomness natively, `wasi:random` in
/// wasmtime): enough for nonces, which only have to differ between connections.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}
