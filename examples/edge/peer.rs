//! One request's conversation with the configured peer, on this crate's blocking pieces: a
//! [`Sock`] from `Sock::connect`, read through a [`BufSock`] (one `recv` takes what has
//! arrived; a message header and its payload are then served from the buffer) and its
//! [`DeadlineIo`](bitcoin_sock::DeadlineIo) adapter (`read_exact` with Core's deadline, every
//! wait at most `MAX_WAIT_FOR_IO`), written with `send_complete`. Every step shares the
//! request's one deadline, so a slow peer ends in a timeout error before the request's time
//! is up, never in a hang.
//!
//! The steps: connect, `version`/`verack`, `getheaders` rounds (each header's link and proof
//! of work checked, `examples/common/p2p/chain.rs`), and for payments `filterload` (BIP 37)
//! then `getdata` for filtered blocks in windows, each window closed by a `ping` whose `pong`
//! says every answer to it came (a peer answers in order).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::Hash;
use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::message_blockdata::Inventory;
use bitcoin::p2p::message_bloom::BloomFlags;
use bitcoin::p2p::ServiceFlags;
use bitcoin::script::Instruction;
use bitcoin::ScriptBuf;
use bitcoin_sock::{BufSock, Sock, SockError, SockIo, ThreadInterrupt};

use crate::bloom::BloomFilter;
use crate::p2p::chain::HeaderChain;
use crate::p2p::framing::{
    command_of, decode_message, encode_message, get_headers, version_message, MessageHeader,
    VersionFields, HEADER_LEN, MAX_HEADERS,
};
use crate::p2p::network::{resolve_target, Network};
use crate::proof::{Collector, Payment};

/// What this client calls itself in its `version` message (BIP 14).
const USER_AGENT: &str = concat!("/bitcoin-sock-edge:", env!("CARGO_PKG_VERSION"), "/");

/// Filtered blocks asked for per `getdata`, each window closed by a `ping`.
const WINDOW: usize = 500;

/// The inventory type of a filtered block (BIP 37's `MSG_FILTERED_BLOCK`; rust-bitcoin 0.32's
/// `Inventory` has no variant for it).
const MSG_FILTERED_BLOCK: u32 = 3;

/// The bloom filter's false-positive rate: few unrelated transactions sent, little said about
/// which script is ours.
const FALSE_POSITIVE_RATE: f64 = 0.000_1;

/// Why a request's P2P part failed, and so its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// Unreachable, refused, closed, misbehaving or lying peer: 502.
    Bad(String),
    /// The peer (or the connect) was too slow for the request's deadline: 504.
    Slow(String),
}

/// The conversation with the peer.
pub struct Session {
    sock: BufSock<Sock>,
    network: &'static Network,
    addr: SocketAddr,
    deadline: Option<Instant>,
    interrupt: ThreadInterrupt,
}

impl Session {
    /// Resolves `target`, connects and does the handshake, all by `deadline`.
    ///
    /// # Errors
    /// [`PeerError::Bad`] for a refused or failed connect, a bad name, a misbehaving peer;
    /// [`PeerError::Slow`] when the deadline passed.
    pub fn open(
        network: &'static Network,
        target: &str,
        deadline: Option<Instant>,
    ) -> Result<Session, PeerError> {
        let addr = resolve_target(target, network.default_port)
            .map_err(|err| PeerError::Bad(format!("peer {target}: {err}")))?;
        let left = time_left(deadline);
        let sock = match Sock::connect(addr, left) {
            Ok(sock) => sock,
            Err(err @ SockError::ConnectTimeout { .. }) => {
                return Err(PeerError::Slow(err.to_string()))
            }
            Err(err) => return Err(PeerError::Bad(err.to_string())),
        };
        let session = Session {
            sock: BufSock::new(sock),
            network,
            addr,
            deadline,
            interrupt: ThreadInterrupt::new(),
        };
        session.handshake()?;
        Ok(session)
    }

    fn handshake(&self) -> Result<(), PeerError> {
        let version = version_message(VersionFields {
            services: ServiceFlags::NONE,
            timestamp: unix_time(),
            receiver: Some(self.addr),
            nonce: random_u32().into(),
            user_agent: USER_AGENT.to_owned(),
            start_height: 0,
            relay: false,
        });
        let nonce = version.nonce;
        self.send(NetworkMessage::Version(version))?;
        let (mut version, mut verack) = (false, false);
        while !version || !verack {
            match self.next("the version handshake")? {
                NetworkMessage::Version(theirs) if !version => {
                    if theirs.nonce == nonce {
                        return Err(self.bad("connected to ourselves".to_owned()));
                    }
                    version = true;
                    self.send(NetworkMessage::Verack)?;
                }
                NetworkMessage::Verack if version => verack = true,
                message @ (NetworkMessage::Version(_) | NetworkMessage::Verack) => {
                    return Err(self.bad(format!(
                        "unexpected {} during the handshake",
                        command_of(&message)
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `getheaders` rounds until an answer is short; every header checked before it is added.
    ///
    /// # Errors
    /// As [`Session::open`]; an invalid header is [`PeerError::Bad`].
    pub fn sync(&self, chain: &mut HeaderChain) -> Result<(), PeerError> {
        loop {
            self.send(get_headers(chain.locator()))?;
            let headers = loop {
                if let NetworkMessage::Headers(headers) = self.next("headers")? {
                    break headers;
                }
            };
            let added = chain
                .connect(&headers)
                .map_err(|err| self.bad(err.to_string()))?;
            if headers.len() < MAX_HEADERS {
                return Ok(());
            }
            if added == 0 {
                return Err(self.bad(format!(
                    "a full headers answer with nothing new after height {}",
                    chain.height()
                )));
            }
        }
    }

    /// Every output paying `script` in the blocks `from..=chain.height()`, each proven by a
    /// `merkleblock` against the chain's headers.
    ///
    /// # Errors
    /// As [`Session::open`]; a wrong or missing proof is [`PeerError::Bad`].
    pub fn payments(
        &self,
        chain: &HeaderChain,
        from: u32,
        script: &ScriptBuf,
    ) -> Result<Vec<Payment>, PeerError> {
        let mut filter = BloomFilter::new(1, FALSE_POSITIVE_RATE, random_u32(), BloomFlags::None);
        // Core and bcoin match an output when one of its script's data pushes is in the
        // filter: for every standard address type, the key hash, script hash or program.
        for instruction in script.instructions().flatten() {
            if let Instruction::PushBytes(bytes) = instruction {
                if !bytes.is_empty() {
                    filter.insert(bytes.as_bytes());
                }
            }
        }
        self.send(NetworkMessage::FilterLoad(filter.to_filter_load()))?;
        let blocks: Vec<(u32, bitcoin::BlockHash)> = (from..=chain.height())
            .filter_map(|height| chain.hash_at(height).map(|hash| (height, hash)))
            .collect();
        let mut collector = Collector::new(blocks.iter().copied(), script.clone());
        for window in blocks.chunks(WINDOW) {
            let inventory = window
                .iter()
                .map(|(_, hash)| Inventory::Unknown {
                    inv_type: MSG_FILTERED_BLOCK,
                    hash: hash.to_byte_array(),
                })
                .collect();
            self.send(NetworkMessage::GetData(inventory))?;
            let nonce = u64::from(random_u32());
            self.send(NetworkMessage::Ping(nonce))?;
            loop {
                match self.next("merkleblocks")? {
                    NetworkMessage::MerkleBlock(block) => collector
                        .merkle_block(&block)
                        .map_err(|err| self.bad(err.to_string()))?,
                    NetworkMessage::Tx(tx) => collector
                        .transaction(tx)
                        .map_err(|err| self.bad(err.to_string()))?,
                    NetworkMessage::NotFound(items) => {
                        return Err(self.bad(format!(
                            "the peer has not got {} of the blocks asked for (notfound)",
                            items.len()
                        )))
                    }
                    NetworkMessage::Pong(answer) if answer == nonce => break,
                    _ => {}
                }
            }
        }
        collector.finish().map_err(|err| self.bad(err.to_string()))
    }

    fn bad(&self, problem: String) -> PeerError {
        PeerError::Bad(format!("peer {}: {problem}", self.addr))
    }

    fn send(&self, message: NetworkMessage) -> Result<(), PeerError> {
        let command = command_of(&message);
        let bytes = encode_message(self.network.magic(), message);
        self.sock
            .send_complete(&bytes, time_left(self.deadline), &self.interrupt)
            .map_err(|err| {
                let problem = format!("sending {command}: {err}");
                match err {
                    SockError::SendTimeout { .. } => PeerError::Slow(problem),
                    _ => self.bad(problem),
                }
            })
    }

    /// The next message other than a `ping` (answered here).
    fn next(&self, waiting_for: &str) -> Result<NetworkMessage, PeerError> {
        loop {
            match self.receive(waiting_for)? {
                NetworkMessage::Ping(nonce) => self.send(NetworkMessage::Pong(nonce))?,
                message => return Ok(message),
            }
        }
    }

    /// The next message: its 24-byte header checked (magic, size) before the payload is read
    /// or allocated, then the payload, decoded by rust-bitcoin once its checksum matched.
    fn receive(&self, waiting_for: &str) -> Result<NetworkMessage, PeerError> {
        let mut header = [0u8; HEADER_LEN];
        self.read_exact(&mut header, waiting_for)?;
        let header = MessageHeader::decode(&header, self.network.magic())
            .map_err(|err| self.bad(err.to_string()))?;
        // At most MAX_PAYLOAD bytes: MessageHeader::decode checked the length.
        let mut bytes = vec![0u8; HEADER_LEN + header.length as usize];
        bytes[..HEADER_LEN].copy_from_slice(&header.encode());
        self.read_exact(&mut bytes[HEADER_LEN..], waiting_for)?;
        decode_message(&header, &bytes).map_err(|err| self.bad(err.to_string()))
    }

    fn read_exact(&self, buf: &mut [u8], waiting_for: &str) -> Result<(), PeerError> {
        let mut reader = self
            .sock
            .with_deadline(time_left(self.deadline), &self.interrupt);
        reader.read_exact(buf).map_err(|err| {
            // The adapter's error is Core's text ("Receive timeout (received 0 of 24 bytes
            // before that)", "Connection unexpectedly closed by peer (...)").
            let problem = format!("waiting for {waiting_for}: {err}");
            if err.kind() == std::io::ErrorKind::TimedOut {
                PeerError::Slow(format!("peer {}: {problem}", self.addr))
            } else {
                self.bad(problem)
            }
        })
    }
}

/// The time until `deadline` (none: no end).
fn time_left(deadline: Option<Instant>) -> Duration {
    deadline.map_or(Duration::MAX, |deadline| {
        deadline.saturating_duration_since(Instant::now())
    })
}

/// Seconds since 1970 for the `version` timestamp (deadlines use [`Instant`]).
fn unix_time() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// A random `u32` from std's per-process hash keys (OS randomness natively, `wasi:random` in
/// wasmtime): for nonces and the filter's tweak, which only have to differ between requests.
fn random_u32() -> u32 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish() as u32
}
