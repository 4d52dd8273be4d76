//! One connection's side of the headers-only protocol, without I/O ("sans-IO"): bytes in
//! ([`Peer::receive`]), bytes out ([`Peer::take_outbox`]), a clock passed in, and what happened
//! as [`PeerEvent`]s or a [`PeerError`] that says why the peer must go.
//!
//! The node (`examples/node/`) runs one per connection on `SockMan`, all on one
//! [`HeaderChain`]; the light client's `--clients N` mode runs N, each on its own chain. What a
//! peer does:
//! * handshake: `version` (the outbound side first, as Core), `verack`; a peer whose nonce is
//!   ours is ourselves;
//! * `ping` is answered with `pong`; once the handshake is done we `ping` every
//!   [`Timeouts::ping_interval`] and drop a peer whose `pong` is [`Timeouts::pong`] late
//!   (Core's keep-alive, `keepalive.rs`);
//! * header sync (when asked for): `sendheaders` (BIP 130), `getheaders` from our tip, each
//!   `headers` answer checked and added to the chain, the next round asked until an answer is
//!   short; then the tip is followed: a block announced by `inv`, or a `headers` announcement
//!   that does not build on a block we have, is asked for with `getheaders` from our tip, and
//!   an announcement that builds on our chain is added at once;
//! * `getheaders` from the peer is answered from the chain (at most 2,000 headers);
//! * silence: whenever we wait for something (the handshake, `headers`, `pong`), a deadline
//!   runs; [`Peer::check_deadline`] fails once it passed.
//!
//! A new connection's sync starts from the chain's tip, so a node that lost its peer
//! mid-sync resumes where it stopped when it connects again.
//!
//! The receive buffer holds at most one unfinished message: every complete message is taken
//! off it at once, and [`parse_message`] refuses a message header that announces more than
//! [`MAX_PAYLOAD`] before its payload is waited for.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::message_blockdata::Inventory;
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::ServiceFlags;

use super::chain::{HeaderChain, HeaderError};
use super::framing::{
    encode_message, get_headers, parse_message, version_message, BlockHash, BlockHeader,
    FrameError, MessageHeader, VersionFields, HEADER_LEN, MAX_HEADERS, MAX_PAYLOAD,
};
use super::keepalive::{Keepalive, PingTimeout, PING_INTERVAL, TIMEOUT_INTERVAL};
use super::network::Network;
use super::partial::Partial;

/// The most bytes [`Peer::receive`] buffers: one message header and the largest payload.
pub const MAX_RECEIVE_BUFFER: usize = HEADER_LEN + MAX_PAYLOAD as usize;

/// `headers` messages in a row whose first header builds on a block we lack, each answered
/// with a `getheaders` from our tip, before the peer is dropped (Core's
/// `MAX_NUM_UNCONNECTING_HEADERS_MSGS`).
pub const MAX_UNCONNECTING: u32 = 10;

/// Most new headers announced in one `headers` message; more go as an `inv` of the tip,
/// which makes the peer ask (Core's `MAX_BLOCKS_TO_ANNOUNCE`).
pub const MAX_BLOCKS_TO_ANNOUNCE: u32 = 8;

/// How long a peer may keep us waiting.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the connection to the end of the handshake.
    pub handshake: Duration,
    /// From a `getheaders` to its `headers`.
    pub headers: Duration,
    /// Time between our `ping`s (Core's `PING_INTERVAL`).
    pub ping_interval: Duration,
    /// From a `ping` to its `pong` (Core's `TIMEOUT_INTERVAL`).
    pub pong: Duration,
    /// From a message's first byte to its last: bytes that trickle in cannot keep a
    /// connection open past this, whatever else the peer sends.
    pub message: Duration,
}

impl Timeouts {
    /// Core's: 60 s for the handshake (`-peertimeout`), 2 minutes between pings
    /// (`PING_INTERVAL`), 20 minutes for a pong (`TIMEOUT_INTERVAL`); and 2 minutes for a
    /// `headers` answer (Core's `HEADERS_DOWNLOAD_TIMEOUT_BASE` is 15 minutes for a whole
    /// sync; one answer of 162 kB needs far less); and 60 s (`-peertimeout` again) from a
    /// message's first byte to its last (Core has no such deadline: its only guard against a
    /// peer that trickles is the idle timeout, which every byte resets).
    pub const CORE: Timeouts = Timeouts {
        handshake: Duration::from_secs(60),
        headers: Duration::from_secs(120),
        ping_interval: PING_INTERVAL,
        pong: TIMEOUT_INTERVAL,
        message: Duration::from_secs(60),
    };
}

/// Who opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We did: we speak first and sync headers from the peer.
    Outbound,
    /// The peer did: we answer, and serve headers.
    Inbound,
}

/// What we say about ourselves in `version`.
#[derive(Debug, Clone)]
pub struct Identity {
    /// BIP 14 user agent, e.g. `/bitcoin-sock-node:0.1.0/`.
    pub user_agent: String,
    /// Service bits (`NODE_NETWORK` for a node that serves the chain, none for a client).
    pub services: ServiceFlags,
    /// Our nonce: a `version` carrying it is our own, come back.
    pub nonce: u64,
    /// Seconds since 1970 for the `version` timestamp.
    pub timestamp: i64,
}

/// Something that happened on the connection, for the owner to show or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// Both `version` and `verack` arrived.
    HandshakeDone {
        /// The peer's user agent.
        user_agent: String,
        /// The height the peer announced.
        start_height: i32,
    },
    /// A `headers` answer was checked and added.
    HeadersAdded {
        /// Headers in the answer.
        received: usize,
        /// Of them, new to the chain.
        added: usize,
        /// The chain's height now.
        height: u32,
    },
    /// An answer was short: the peer has nothing after our tip.
    Synced {
        /// The chain's height.
        height: u32,
        /// The chain's tip.
        tip: BlockHash,
        /// `getheaders` rounds it took.
        rounds: u32,
    },
    /// We announced our new tip to the peer (`headers` or `inv`).
    Announced {
        /// The new tip's height.
        height: u32,
    },
    /// We answered the peer's `getheaders`.
    ServedHeaders {
        /// Headers sent.
        count: usize,
        /// Height of the first locator hash we knew.
        after_height: u32,
    },
}

/// Why a peer must be disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// Bytes that are not a well-formed message: wrong magic, bad checksum, oversized, ...
    Frame(FrameError),
    /// A header that does not link or lacks its proof of work.
    InvalidHeader(HeaderError),
    /// A well-formed message that breaks the protocol.
    Protocol(String),
    /// Our `ping` went unanswered (Core's `ping timeout: %fs`).
    PingTimeout(PingTimeout),
    /// What we waited for did not come in time (the peer may have sent other things).
    Silent {
        /// What we were waiting for.
        waiting_for: &'static str,
        /// How long we waited.
        timeout: Duration,
    },
    /// A message's bytes did not all arrive within [`Timeouts::message`] of its first.
    Incomplete {
        /// The deadline.
        timeout: Duration,
        /// Bytes of it received.
        received: usize,
        /// Its whole length, header included, once its header is in.
        length: Option<usize>,
    },
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Frame(err) => write!(f, "{err}"),
            PeerError::InvalidHeader(err) => write!(f, "{err}"),
            PeerError::Protocol(problem) => f.write_str(problem),
            PeerError::PingTimeout(timeout) => write!(f, "{timeout}"),
            PeerError::Silent {
                waiting_for,
                timeout,
            } => {
                // "the version handshake" reads "no version handshake within 60 s".
                let what = waiting_for
                    .strip_prefix("the ")
                    .or_else(|| waiting_for.strip_prefix("a "))
                    .unwrap_or(waiting_for);
                write!(f, "no {what} within {}", Seconds(*timeout))
            }
            PeerError::Incomplete {
                timeout,
                received,
                length,
            } => {
                write!(
                    f,
                    "a message not completed within {} of its first byte ({received} of ",
                    Seconds(*timeout)
                )?;
                match length {
                    Some(length) => write!(f, "{length} bytes)"),
                    None => write!(f, "its {HEADER_LEN}-byte header)"),
                }
            }
        }
    }
}

impl std::error::Error for PeerError {}

/// A deadline as people write it: `60 s`, `500 ms`, `1.5 s`.
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Seconds(duration) = *self;
        if duration.subsec_nanos() == 0 {
            write!(f, "{} s", duration.as_secs())
        } else if duration < Duration::from_secs(1) {
            write!(f, "{} ms", duration.as_millis())
        } else {
            write!(f, "{} s", duration.as_secs_f64())
        }
    }
}

impl From<FrameError> for PeerError {
    fn from(err: FrameError) -> PeerError {
        PeerError::Frame(err)
    }
}

/// What we wait for, with its deadline.
#[derive(Debug, Clone, Copy)]
struct Wait {
    what: &'static str,
    timeout: Duration,
    /// `None`: past what [`Instant`] holds, i.e. never.
    deadline: Option<Instant>,
}

impl Wait {
    fn new(what: &'static str, timeout: Duration, now: Instant) -> Wait {
        Wait {
            what,
            timeout,
            deadline: now.checked_add(timeout),
        }
    }
}

/// Where header sync from this peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// Not asked for (inbound peers), or not started (before the handshake).
    Idle,
    /// A `getheaders` is out.
    Requested,
    /// An answer was short: we are at the peer's tip, and follow its announcements.
    Done,
}

/// One connection's protocol state.
#[derive(Debug)]
pub struct Peer {
    network: &'static Network,
    direction: Direction,
    identity: Identity,
    timeouts: Timeouts,
    /// Whether to sync headers from the peer once the handshake is done.
    sync_from: bool,
    /// Received bytes not yet a whole message.
    inbound: Partial,
    /// Encoded messages not yet handed to the socket.
    outbox: Vec<u8>,
    their_version: Option<VersionMessage>,
    verack: bool,
    sync: Sync,
    rounds: u32,
    /// The chain height of the last header of the latest full answer: each full answer must
    /// reach higher than the one before, or the peer is not helping.
    reached: u32,
    /// A block was announced while a `getheaders` was out, which may have been answered
    /// before the block existed: ask once more when the answer ends short.
    more_wanted: bool,
    /// The first sync ended ([`PeerEvent::Synced`] was given).
    synced_once: bool,
    /// `headers` messages in a row that did not connect.
    unconnecting: u32,
    /// The peer sent `sendheaders` (BIP 130): announce new blocks as `headers`.
    wants_headers: bool,
    /// The height of the last header we served the peer: where its chain is, as far as we
    /// know. New blocks are announced only to a peer at our previous tip.
    served_to: Option<u32>,
    /// Our pings, from the end of the handshake on.
    keepalive: Option<Keepalive>,
    /// The handshake or `headers` we wait for.
    waiting: Option<Wait>,
    /// When the first byte of the message being read came (`None`: between messages).
    message_started: Option<Instant>,
}

impl Peer {
    /// A connection we opened to `addr`: our `version` is queued at once. With `sync_from`,
    /// header sync starts when the handshake is done.
    pub fn outbound(
        network: &'static Network,
        identity: Identity,
        timeouts: Timeouts,
        addr: SocketAddr,
        chain: &HeaderChain,
        sync_from: bool,
        now: Instant,
    ) -> Peer {
        let mut peer = Peer::new(network, Direction::Outbound, identity, timeouts, now);
        peer.sync_from = sync_from;
        peer.send_version(Some(addr), chain);
        peer
    }

    /// A connection the peer opened: we answer its `version` with ours.
    pub fn inbound(
        network: &'static Network,
        identity: Identity,
        timeouts: Timeouts,
        now: Instant,
    ) -> Peer {
        Peer::new(network, Direction::Inbound, identity, timeouts, now)
    }

    fn new(
        network: &'static Network,
        direction: Direction,
        identity: Identity,
        timeouts: Timeouts,
        now: Instant,
    ) -> Peer {
        Peer {
            network,
            direction,
            identity,
            timeouts,
            sync_from: false,
            inbound: Partial::default(),
            outbox: Vec::new(),
            their_version: None,
            verack: false,
            sync: Sync::Idle,
            rounds: 0,
            reached: 0,
            more_wanted: false,
            synced_once: false,
            unconnecting: 0,
            wants_headers: false,
            served_to: None,
            keepalive: None,
            waiting: Some(Wait::new("the version handshake", timeouts.handshake, now)),
            message_started: None,
        }
    }

    /// Who opened the connection.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Whether `version` and `verack` both arrived.
    pub fn handshake_done(&self) -> bool {
        self.their_version.is_some() && self.verack
    }

    /// Whether header sync from this peer finished once (an answer was short); it stays
    /// true while the peer's announcements are followed.
    pub fn synced(&self) -> bool {
        self.synced_once
    }

    /// The shortest round trip of our answered `ping`s (Core's `m_min_ping_time`).
    pub fn min_ping(&self) -> Option<Duration> {
        self.keepalive.as_ref().and_then(Keepalive::min_ping)
    }

    /// Whether a `ping` of ours waits for its `pong`.
    pub fn ping_outstanding(&self) -> bool {
        self.keepalive.as_ref().is_some_and(Keepalive::waiting)
    }

    /// Bytes buffered from the peer, not yet a whole message (at most
    /// [`MAX_RECEIVE_BUFFER`]).
    pub fn buffered(&self) -> usize {
        self.inbound.len()
    }

    /// Memory the peer's unfinished message holds (the buffer's capacity): what a memory
    /// budget counts.
    pub fn buffered_capacity(&self) -> usize {
        self.inbound.capacity()
    }

    /// The encoded messages to send, in order; the outbox is empty afterwards.
    pub fn take_outbox(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outbox)
    }

    /// When [`check_deadline`](Self::check_deadline) will next have something to do: the
    /// deadline of what we wait for, the outstanding `ping`'s, or when the next `ping` is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let waiting = self.waiting.and_then(|wait| wait.deadline);
        let keepalive = self.keepalive.as_ref().and_then(Keepalive::next_deadline);
        [waiting, keepalive, self.message_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the message being read must be complete.
    fn message_deadline(&self) -> Option<Instant> {
        self.message_started?.checked_add(self.timeouts.message)
    }

    /// Fails when what we wait for is overdue or our `ping` went unanswered; queues a `ping`
    /// every [`Timeouts::ping_interval`] once the handshake is done.
    ///
    /// # Errors
    /// [`PeerError::Silent`], [`PeerError::PingTimeout`]; [`PeerError::Incomplete`] when the
    /// message being read is overdue.
    pub fn check_deadline(&mut self, now: Instant) -> Result<(), PeerError> {
        if self
            .message_deadline()
            .is_some_and(|deadline| now >= deadline)
        {
            return Err(PeerError::Incomplete {
                timeout: self.timeouts.message,
                received: self.inbound.len(),
                length: self
                    .inbound
                    .header()
                    .and_then(|header| MessageHeader::of(header))
                    .map(|header| HEADER_LEN.saturating_add(header.length as usize)),
            });
        }
        if let Some(Wait {
            what,
            timeout,
            deadline: Some(deadline),
        }) = self.waiting
        {
            if now >= deadline {
                return Err(PeerError::Silent {
                    waiting_for: what,
                    timeout,
                });
            }
        }
        if let Some(keepalive) = &mut self.keepalive {
            if let Some(nonce) = keepalive.poll(now).map_err(PeerError::PingTimeout)? {
                self.queue(NetworkMessage::Ping(nonce));
            }
        }
        Ok(())
    }

    /// Takes `data` from the socket: every message it completes is handled (answers go to
    /// the outbox, headers to `chain`), and what happened is appended to `events`.
    ///
    /// # Errors
    /// The [`PeerError`] for which the peer must be disconnected; nothing after the bad
    /// message is handled.
    pub fn receive(
        &mut self,
        data: &[u8],
        chain: &mut HeaderChain,
        now: Instant,
        events: &mut Vec<PeerEvent>,
    ) -> Result<(), PeerError> {
        let mut rest = data;
        while !rest.is_empty() {
            let used = self.receive_one(rest, chain, now, events)?;
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok(())
    }

    /// Takes bytes of `data` up to the end of the first message they complete, and handles
    /// that message; all of `data` when none completes. Returns how many bytes it took: the
    /// rest wait for the caller's next turn (Core handles one message per peer per turn, so
    /// one peer's burst cannot hold up the others).
    ///
    /// # Errors
    /// As [`receive`](Self::receive).
    pub fn receive_one(
        &mut self,
        data: &[u8],
        chain: &mut HeaderChain,
        now: Instant,
        events: &mut Vec<PeerEvent>,
    ) -> Result<usize, PeerError> {
        let mut rest = data;
        while !rest.is_empty() {
            // Take only what completes the message being read, so the buffer never holds more
            // than one (bounded) message, however much arrives at once.
            let want = self.bytes_wanted()?;
            let take = want.min(rest.len());
            if self.inbound.is_empty() {
                self.message_started = Some(now);
            }
            // Held as bytes come (never reserved from the announced length), so a peer
            // that announces 4,000,000 bytes and sends ten makes us hold ten.
            self.inbound.push(&rest[..take], want);
            rest = &rest[take..];
            if self.inbound.header().is_some() && self.bytes_wanted()? == 0 {
                let whole = self.inbound.take_whole();
                self.message_started = None;
                // Complete, so parsed (`None` cannot come; the next bytes start afresh).
                if let Some((message, _)) = parse_message(&whole, self.network.magic())? {
                    self.handle(message, chain, now, events)?;
                    return Ok(data.len() - rest.len());
                }
            }
        }
        Ok(data.len())
    }

    /// How many more bytes the message being read needs: the rest of its 24-byte header, or
    /// the rest of its payload once the header is in (and checked).
    /// 0 once the message is complete.
    fn bytes_wanted(&self) -> Result<usize, PeerError> {
        match self.inbound.header() {
            None => Ok(HEADER_LEN - self.inbound.len()),
            Some(header) => {
                let header = MessageHeader::decode(header, self.network.magic())?;
                // At most MAX_PAYLOAD: decode checked it.
                let total = HEADER_LEN + header.length as usize;
                Ok(total.saturating_sub(self.inbound.len()))
            }
        }
    }

    fn handle(
        &mut self,
        message: NetworkMessage,
        chain: &mut HeaderChain,
        now: Instant,
        events: &mut Vec<PeerEvent>,
    ) -> Result<(), PeerError> {
        match message {
            NetworkMessage::Version(version) => {
                if self.their_version.is_some() {
                    return Err(PeerError::Protocol("a second version message".to_owned()));
                }
                if version.nonce == self.identity.nonce {
                    return Err(PeerError::Protocol("connected to ourselves".to_owned()));
                }
                if self.direction == Direction::Inbound {
                    self.send_version(None, chain);
                }
                self.queue(NetworkMessage::Verack);
                self.their_version = Some(version);
                self.after_handshake_step(chain, now, events);
            }
            NetworkMessage::Verack => {
                if self.their_version.is_none() || self.verack {
                    return Err(PeerError::Protocol(
                        "verack before version, or a second one".to_owned(),
                    ));
                }
                self.verack = true;
                self.after_handshake_step(chain, now, events);
            }
            // Before the handshake, Core ignores everything but version, verack and the
            // feature negotiation (wtxidrelay, sendaddrv2); so does this.
            _ if !self.handshake_done() => {}
            NetworkMessage::Ping(nonce) => self.queue(NetworkMessage::Pong(nonce)),
            NetworkMessage::Pong(nonce) => {
                if let Some(keepalive) = &mut self.keepalive {
                    keepalive.pong(nonce, now);
                }
            }
            NetworkMessage::Inv(inventory) if self.sync_from => {
                let new_block = inventory.iter().any(|item| match item {
                    Inventory::Block(hash)
                    | Inventory::WitnessBlock(hash)
                    | Inventory::CompactBlock(hash) => chain.height_of(hash).is_none(),
                    _ => false,
                });
                if new_block {
                    self.want_headers(chain, now);
                }
            }
            NetworkMessage::GetHeaders(request) => {
                let headers = chain.headers_after(&request.locator_hashes, &request.stop_hash);
                let count = headers.len();
                let after_height = headers
                    .first()
                    .and_then(|first| chain.height_of(&first.prev_blockhash))
                    .unwrap_or_else(|| chain.height());
                let answer = NetworkMessage::Headers(headers.to_vec());
                self.queue(answer);
                self.served_to = after_height.checked_add(u32::try_from(count).unwrap_or(0));
                events.push(PeerEvent::ServedHeaders {
                    count,
                    after_height,
                });
            }
            NetworkMessage::Headers(headers) => self.got_headers(&headers, chain, now, events)?,
            NetworkMessage::SendHeaders => self.wants_headers = true,
            // addr, sendheaders, sendcmpct, feefilter, an inbound peer's inv, ...: nothing a
            // headers-only peer needs.
            _ => {}
        }
        Ok(())
    }

    fn after_handshake_step(
        &mut self,
        chain: &HeaderChain,
        now: Instant,
        events: &mut Vec<PeerEvent>,
    ) {
        if !self.handshake_done() {
            return;
        }
        self.waiting = None;
        self.keepalive = Some(Keepalive::new(
            self.timeouts.ping_interval,
            self.timeouts.pong,
            self.identity.nonce,
            now,
        ));
        if let Some(version) = &self.their_version {
            events.push(PeerEvent::HandshakeDone {
                user_agent: version.user_agent.clone(),
                start_height: version.start_height,
            });
        }
        if self.sync_from {
            // BIP 130: announce new blocks to us as `headers`, not `inv`.
            self.queue(NetworkMessage::SendHeaders);
            self.request_headers(chain, now);
        }
    }

    /// Announces the blocks after `old_height` (our previous tip) up to `chain`'s tip, if the
    /// peer is at that previous tip as far as we know (we served it up to there): as
    /// `headers` when it asked for them (BIP 130) and they are few, else as an `inv` of the
    /// tip. True when something was queued.
    pub fn announce(
        &mut self,
        chain: &HeaderChain,
        old_height: u32,
        events: &mut Vec<PeerEvent>,
    ) -> bool {
        let height = chain.height();
        if !self.handshake_done() || self.served_to != Some(old_height) || height <= old_height {
            return false;
        }
        let new = height - old_height;
        if self.wants_headers && new <= MAX_BLOCKS_TO_ANNOUNCE {
            let headers = (old_height + 1..=height)
                .filter_map(|height| chain.header(height).copied())
                .collect();
            self.queue(NetworkMessage::Headers(headers));
        } else {
            self.queue(NetworkMessage::Inv(vec![Inventory::Block(chain.tip())]));
        }
        self.served_to = Some(height);
        events.push(PeerEvent::Announced { height });
        true
    }

    /// A block we lack was announced: ask for headers from our tip, or, with a `getheaders`
    /// already out, once more after its answer.
    fn want_headers(&mut self, chain: &HeaderChain, now: Instant) {
        if self.sync == Sync::Requested {
            self.more_wanted = true;
        } else {
            self.request_headers(chain, now);
        }
    }

    fn request_headers(&mut self, chain: &HeaderChain, now: Instant) {
        self.queue(get_headers(chain.locator()));
        self.sync = Sync::Requested;
        self.rounds += 1;
        self.waiting = Some(Wait::new("headers", self.timeouts.headers, now));
    }

    fn got_headers(
        &mut self,
        headers: &[BlockHeader],
        chain: &mut HeaderChain,
        now: Instant,
        events: &mut Vec<PeerEvent>,
    ) -> Result<(), PeerError> {
        let requested = self.sync == Sync::Requested;
        let unconnecting = headers
            .first()
            .is_some_and(|first| chain.height_of(&first.prev_blockhash).is_none());
        if unconnecting && self.sync_from && self.unconnecting + 1 < MAX_UNCONNECTING {
            // Blocks whose parent we lack (an announcement after some we missed, or one that
            // crossed our getheaders): ask from our tip, as Core does. The tenth in a row goes
            // on to be refused below.
            self.unconnecting += 1;
            if requested {
                self.request_headers(chain, now);
            } else {
                self.want_headers(chain, now);
            }
            return Ok(());
        }
        if !unconnecting && !headers.is_empty() {
            self.unconnecting = 0;
        }
        let added = chain.connect(headers).map_err(PeerError::InvalidHeader)?;
        if requested {
            self.waiting = None;
            // Whatever comes next is an announcement until we ask again.
            self.sync = Sync::Done;
        }
        events.push(PeerEvent::HeadersAdded {
            received: headers.len(),
            added,
            height: chain.height(),
        });
        if headers.len() >= MAX_HEADERS {
            // A full answer: ask for the next part, unless this one got us nowhere (a peer
            // that ignores our locator would otherwise keep us asking forever).
            let reached = headers
                .last()
                .and_then(|last| chain.height_of(&last.block_hash()))
                .unwrap_or(0);
            if reached <= self.reached {
                if !requested {
                    // Unasked, it costs us nothing to ignore.
                    return Ok(());
                }
                return Err(PeerError::Protocol(format!(
                    "a full headers answer that ends at height {reached}, no higher than the \
                     one before ({})",
                    self.reached
                )));
            }
            self.reached = reached;
            if self.sync_from {
                self.request_headers(chain, now);
            }
            return Ok(());
        }
        if !requested {
            // An announcement that built on our chain: added above.
            return Ok(());
        }
        if std::mem::take(&mut self.more_wanted) {
            self.request_headers(chain, now);
            return Ok(());
        }
        if !self.synced_once {
            self.synced_once = true;
            events.push(PeerEvent::Synced {
                height: chain.height(),
                tip: chain.tip(),
                rounds: self.rounds,
            });
        }
        Ok(())
    }

    fn send_version(&mut self, receiver: Option<SocketAddr>, chain: &HeaderChain) {
        let version = version_message(VersionFields {
            services: self.identity.services,
            timestamp: self.identity.timestamp,
            receiver,
            nonce: self.identity.nonce,
            user_agent: self.identity.user_agent.clone(),
            start_height: chain.height(),
            relay: false,
        });
        self.queue(NetworkMessage::Version(version));
    }

    fn queue(&mut self, message: NetworkMessage) {
        self.outbox
            .extend_from_slice(&encode_message(self.network.magic(), message));
    }
}
