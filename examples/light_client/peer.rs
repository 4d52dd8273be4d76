//! The embedded peer: a loopback listener that speaks just enough of the protocol to serve
//! the light client (`version` + `verack`, a `ping` whose `pong` it checks, and `getheaders`
//! from a made-up regtest chain of 4,500 headers with real proof of work, so three rounds),
//! or misbehaves in one chosen way.
//!
//! It runs in the client's thread: [`PumpingSock`] is the client's [`Sock`] whose
//! [`SockIo::wait`] waits, with one [`Sock::wait_many`], on the client's sock and the peer's,
//! lets the peer act on what is ready, and returns once the client's events occur. The peer
//! never blocks; it only reacts to what the client sends, so what both print is the same on
//! every run and every host.

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::message_blockdata::{GetHeadersMessage, Inventory};
use bitcoin::p2p::message_compact_blocks::SendCmpct;
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::ServiceFlags;
use bitcoin_sock::{Events, Sock, SockEvent, SockIo};

use crate::p2p::chain::{check_proof_of_work, grind, mine_chain, HeaderChain};
use crate::p2p::framing::{
    command_of, encode_message, parse_message, version_message, BlockHash, BlockHeader,
    MessageHeader, VersionFields, HEADER_LEN, MAX_PAYLOAD, PROTOCOL_VERSION,
};
use crate::p2p::network::{Network, NETWORKS};

const USER_AGENT: &str = "/embedded-peer:0.1.0/";

/// Headers in the made-up chain: two full `headers` answers and part of a third.
const CHAIN_LENGTH: u32 = 4_500;

/// The header a faulty peer spoils in its first `headers` answer.
const SPOILED_HEADER: usize = 5;

/// Most bytes taken off the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// How a misbehaving peer answers the client's `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never answers.
    Silent,
    /// Answers with another network's magic.
    WrongNetwork,
    /// Answers with a payload that does not match its checksum.
    CorruptPayload,
    /// Announces a payload over the 32 MiB limit.
    Oversized,
    /// Sends half of its `version`, then closes the connection.
    HangUpMidMessage,
    /// Serves a header whose hash misses its target.
    NoProofOfWork,
    /// Serves a header that does not build on the one before it.
    BrokenLink,
}

impl Fault {
    /// Every fault, in the order the example shows them.
    pub const ALL: [Fault; 7] = [
        Fault::Silent,
        Fault::WrongNetwork,
        Fault::CorruptPayload,
        Fault::Oversized,
        Fault::HangUpMidMessage,
        Fault::NoProofOfWork,
        Fault::BrokenLink,
    ];

    /// What the peer does, for the example's output.
    pub fn describe(self) -> &'static str {
        match self {
            Fault::Silent => "a peer that never answers",
            Fault::WrongNetwork => "a peer on another network",
            Fault::CorruptPayload => "a corrupted message",
            Fault::Oversized => "an oversized message",
            Fault::HangUpMidMessage => "a peer that hangs up mid-message",
            Fault::NoProofOfWork => "a header without proof of work",
            Fault::BrokenLink => "a header that does not build on its parent",
        }
    }
}

/// What the peer saw the client do.
#[derive(Debug)]
pub struct PeerReport {
    client_version: Option<VersionMessage>,
    verack: bool,
    /// Whether the client's `pong` carried the nonce of the peer's `ping`.
    pong_matched: Option<bool>,
    /// Each `getheaders` request, the height its locator's first known hash is at, and how
    /// many headers answered it.
    getheaders: Vec<(GetHeadersMessage, Option<u32>, usize)>,
    genesis: BlockHash,
    problems: Vec<String>,
}

impl PeerReport {
    /// One line per thing seen, for printing.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        lines.push(match &self.client_version {
            Some(version) => format!("version ({})", crate::describe_version(version)),
            None => "no version".to_owned(),
        });
        lines.push(if self.verack { "verack" } else { "no verack" }.to_owned());
        lines.push(
            match self.pong_matched {
                Some(true) => "pong with its ping's nonce",
                Some(false) => "pong with a wrong nonce",
                None => "no pong",
            }
            .to_owned(),
        );
        if self.getheaders.is_empty() {
            lines.push("no getheaders".to_owned());
        }
        for (request, fork_height, answered) in &self.getheaders {
            lines.push(format!(
                "getheaders (locator: {}, stop: {}), answered with {answered} headers",
                match (request.locator_hashes.as_slice(), fork_height) {
                    ([only], _) if *only == self.genesis => "genesis".to_owned(),
                    (locator, Some(height)) => {
                        format!("{} hashes from height {height}", locator.len())
                    }
                    (locator, None) => format!("{} hashes, none known", locator.len()),
                },
                if request.stop_hash == BlockHash::all_zeros() {
                    "zero"
                } else {
                    "not zero"
                },
            ));
        }
        lines.extend(
            self.problems
                .iter()
                .map(|problem| format!("problem: {problem}")),
        );
        lines
    }

    /// Fails unless the client did everything a light client must.
    pub fn check(&self) -> Result<(), String> {
        let version_ok = self
            .client_version
            .as_ref()
            .is_some_and(|version| version.version == PROTOCOL_VERSION && !version.relay);
        // The first request starts at genesis; each later one at the tip the one before
        // reached, and the last one gets fewer than a full answer.
        let getheaders_ok = self.getheaders.first().is_some_and(|(request, _, _)| {
            request.locator_hashes == [self.genesis] && request.stop_hash == BlockHash::all_zeros()
        }) && self
            .getheaders
            .last()
            .is_some_and(|(_, _, answered)| *answered < crate::p2p::framing::MAX_HEADERS);
        if version_ok
            && self.verack
            && self.pong_matched == Some(true)
            && getheaders_ok
            && self.problems.is_empty()
        {
            Ok(())
        } else {
            Err("the embedded peer did not see a correct session (see above)".to_owned())
        }
    }
}

/// The peer: a listener, then the one connection it accepted.
pub struct EmbeddedPeer {
    network: &'static Network,
    fault: Option<Fault>,
    listener: Sock,
    connection: Option<Sock>,
    /// Bytes received and not yet parsed.
    inbound: Vec<u8>,
    /// Bytes queued and not yet sent.
    outbound: Vec<u8>,
    /// Close the sending half once `outbound` is sent.
    hang_up_when_sent: bool,
    /// No more I/O: the client closed, or the peer hung up.
    finished: bool,
    ping_nonce: u64,
    chain: HeaderChain,
    report: PeerReport,
}

impl EmbeddedPeer {
    /// Listens on a free loopback port; `fault` says how to misbehave, if at all.
    ///
    /// # Errors
    /// The socket error of binding or listening.
    pub fn start(network: &'static Network, fault: Option<Fault>) -> io::Result<EmbeddedPeer> {
        let listener = Sock::bind_listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), 1)?;
        let genesis = network.genesis();
        Ok(EmbeddedPeer {
            network,
            fault,
            listener,
            connection: None,
            inbound: Vec::new(),
            outbound: Vec::new(),
            hang_up_when_sent: false,
            finished: false,
            ping_nonce: crate::random_u64(),
            chain: mine_chain(network, CHAIN_LENGTH).map_err(io::Error::other)?,
            report: PeerReport {
                client_version: None,
                verack: false,
                pong_matched: None,
                getheaders: Vec::new(),
                genesis,
                problems: Vec::new(),
            },
        })
    }

    /// The address to connect to.
    ///
    /// # Errors
    /// As [`Sock::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What the peer saw.
    pub fn into_report(self) -> PeerReport {
        self.report
    }

    /// The sock to wait on and the events wanted: the listener until a connection comes, then
    /// the connection (writable only while something is queued); nothing once finished.
    fn interest(&self) -> Option<(&Sock, SockEvent)> {
        match &self.connection {
            None => Some((&self.listener, SockEvent::RECV)),
            Some(_) if self.finished => None,
            Some(connection) if self.outbound.is_empty() => Some((connection, SockEvent::RECV)),
            Some(connection) => Some((connection, SockEvent::RECV | SockEvent::SEND)),
        }
    }

    /// Acts on `occurred` (from [`interest`](Self::interest)'s sock): accepts, reads and
    /// answers, sends what is queued.
    fn on_ready(&mut self, occurred: SockEvent) -> io::Result<()> {
        if self.connection.is_none() {
            match self.listener.accept() {
                Ok((connection, _)) => self.connection = Some(connection),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
            return Ok(());
        }
        if occurred.contains(SockEvent::RECV) || occurred.contains(SockEvent::ERR) {
            self.receive();
        }
        self.flush()
    }

    /// Reads what has arrived and handles every complete message.
    fn receive(&mut self) {
        let Some(connection) = &self.connection else {
            return;
        };
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            match connection.recv(&mut chunk) {
                Ok(0) => {
                    self.finished = true;
                    break;
                }
                Ok(read) => self.inbound.extend_from_slice(&chunk[..read]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.report
                        .problems
                        .push(format!("receiving from the client: {err}"));
                    self.finished = true;
                    break;
                }
            }
        }
        loop {
            match parse_message(&self.inbound, self.network.magic()) {
                Ok(Some((message, used))) => {
                    self.inbound.drain(..used);
                    self.handle(message);
                }
                Ok(None) => break,
                Err(err) => {
                    self.hang_up(format!("bad message from the client: {err}"));
                    break;
                }
            }
        }
    }

    /// Sends as much of the queue as the socket takes now.
    fn flush(&mut self) -> io::Result<()> {
        let Some(connection) = &self.connection else {
            return Ok(());
        };
        while !self.outbound.is_empty() && !self.finished {
            match connection.send(&self.outbound) {
                Ok(sent) => {
                    self.outbound.drain(..sent);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.report
                        .problems
                        .push(format!("sending to the client: {err}"));
                    self.finished = true;
                }
            }
        }
        if self.outbound.is_empty() && self.hang_up_when_sent && !self.finished {
            self.finished = true;
            connection.shutdown_send()?;
        }
        Ok(())
    }

    fn queue(&mut self, message: NetworkMessage) {
        self.outbound
            .extend_from_slice(&encode_message(self.network.magic(), message));
    }

    /// Notes a problem and closes the connection once what is queued is sent.
    fn hang_up(&mut self, problem: String) {
        self.report.problems.push(problem);
        self.hang_up_when_sent = true;
    }

    fn handle(&mut self, message: NetworkMessage) {
        match message {
            NetworkMessage::Version(version) => {
                self.report.client_version = Some(version);
                self.answer_version();
            }
            NetworkMessage::Verack => {
                self.report.verack = true;
                // What a node sends once the handshake is done (BIP 130, BIP 152, BIP 133):
                // all to be ignored by a light client, but the ping.
                self.queue(NetworkMessage::SendHeaders);
                self.queue(NetworkMessage::SendCmpct(SendCmpct {
                    send_compact: false,
                    version: 2,
                }));
                self.queue(NetworkMessage::Ping(self.ping_nonce));
                self.queue(NetworkMessage::FeeFilter(1000));
                // Announce the tip.
                self.queue(NetworkMessage::Inv(vec![Inventory::Block(
                    self.chain.tip(),
                )]));
            }
            NetworkMessage::Pong(nonce) => {
                self.report.pong_matched = Some(nonce == self.ping_nonce);
            }
            NetworkMessage::GetHeaders(request) => {
                let mut headers = self
                    .chain
                    .headers_after(&request.locator_hashes, &request.stop_hash)
                    .to_vec();
                if self.report.getheaders.is_empty() {
                    self.spoil(&mut headers);
                }
                let fork_height = request
                    .locator_hashes
                    .iter()
                    .find_map(|hash| self.chain.height_of(hash));
                self.report
                    .getheaders
                    .push((request, fork_height, headers.len()));
                self.queue(NetworkMessage::Headers(headers));
            }
            other => self.report.problems.push(format!(
                "unexpected {:?} from the client",
                command_of(&other)
            )),
        }
    }

    /// Spoils the first `headers` answer in the way of `self.fault`, if it is a header fault:
    /// header [`SPOILED_HEADER`] loses its proof of work or its link, and the answer ends there.
    fn spoil(&self, headers: &mut Vec<BlockHeader>) {
        if headers.len() <= SPOILED_HEADER {
            return;
        }
        let pow_limit = self.network.pow_limit();
        let mut header = headers[SPOILED_HEADER];
        match self.fault {
            Some(Fault::NoProofOfWork) => {
                // The first nonce from here whose hash misses the target (every other one
                // does on regtest).
                while check_proof_of_work(&header, pow_limit).is_ok() {
                    header.nonce = header.nonce.wrapping_add(1);
                }
            }
            Some(Fault::BrokenLink) => {
                // Builds on a block nobody has (its parent's hash with one bit flipped), with
                // the proof of work for that, so only the link is wrong.
                let mut prev = header.prev_blockhash.to_byte_array();
                prev[0] ^= 1;
                header.prev_blockhash = BlockHash::from_byte_array(prev);
                header = grind(header, pow_limit).unwrap_or(header);
            }
            _ => return,
        }
        headers[SPOILED_HEADER] = header;
        headers.truncate(SPOILED_HEADER + 1);
    }

    /// Answers the client's `version`: well, or in the way of `self.fault`.
    fn answer_version(&mut self) {
        // Fixed time and nonce, so faulty answers (and their checksums) are the same each run.
        let version = NetworkMessage::Version(version_message(VersionFields {
            // What a full node offers.
            services: ServiceFlags::NETWORK | ServiceFlags::WITNESS,
            timestamp: 1_700_000_000,
            receiver: None,
            nonce: 0x0e4b_edde_d9ee_70ff,
            user_agent: USER_AGENT.to_owned(),
            start_height: self.chain.height(),
            relay: true,
        }));
        let magic = self.network.magic();
        match self.fault {
            None | Some(Fault::NoProofOfWork | Fault::BrokenLink) => {
                self.queue(version);
                // BIP 339 and BIP 155: sent between version and verack.
                self.queue(NetworkMessage::WtxidRelay);
                self.queue(NetworkMessage::SendAddrV2);
                self.queue(NetworkMessage::Verack);
            }
            Some(Fault::Silent) => {}
            Some(Fault::WrongNetwork) => {
                let other = NETWORKS
                    .iter()
                    .map(Network::magic)
                    .find(|other| *other != magic)
                    .unwrap_or(magic);
                self.outbound
                    .extend_from_slice(&encode_message(other, version));
            }
            Some(Fault::CorruptPayload) => {
                let mut bytes = encode_message(magic, version);
                // As if a bit flipped on the way: the checksum no longer matches.
                bytes[HEADER_LEN] ^= 0x01;
                self.outbound.extend_from_slice(&bytes);
            }
            Some(Fault::Oversized) => {
                if let Some(mut header) = MessageHeader::of(&encode_message(magic, version)) {
                    header.length = MAX_PAYLOAD + 1;
                    self.outbound.extend_from_slice(&header.encode());
                }
            }
            Some(Fault::HangUpMidMessage) => {
                let bytes = encode_message(magic, version);
                let half = HEADER_LEN + (bytes.len() - HEADER_LEN) / 2;
                self.outbound.extend_from_slice(&bytes[..half]);
                self.hang_up_when_sent = true;
            }
        }
    }
}

/// The client's sock, with the embedded peer run whenever the client waits.
pub struct PumpingSock {
    sock: Sock,
    peer: RefCell<EmbeddedPeer>,
}

impl PumpingSock {
    /// `sock` (connected to `peer`) and `peer`.
    pub fn new(sock: Sock, peer: EmbeddedPeer) -> PumpingSock {
        PumpingSock {
            sock,
            peer: RefCell::new(peer),
        }
    }

    /// Closes the client's sending half and runs the peer until it has read everything the
    /// client sent (the client may finish before the peer has read its last messages, e.g. a
    /// `pong` sent just before the `headers` it was waiting for arrived), or `timeout` passes.
    /// Then the peer, to read its report.
    ///
    /// # Errors
    /// The error of shutting down or of waiting.
    pub fn finish(self, timeout: Duration) -> io::Result<EmbeddedPeer> {
        self.sock.shutdown_send()?;
        let deadline = Instant::now().checked_add(timeout);
        let mut peer = self.peer.into_inner();
        loop {
            let left = deadline.map_or(Duration::MAX, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            let occurred = match peer.interest() {
                Some(_) if left.is_zero() => return Ok(peer),
                Some((sock, wanted)) => sock.wait(left, wanted)?,
                None => return Ok(peer),
            };
            if !occurred.is_empty() {
                peer.on_ready(occurred)?;
            }
        }
    }
}

impl SockIo for PumpingSock {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.sock.send(data)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf)
    }

    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.peek(buf)
    }

    /// Waits for the client's `requested` events up to `timeout`, running the peer on
    /// whatever of its socks is ready in the meantime.
    fn wait(&self, timeout: Duration, requested: SockEvent) -> io::Result<SockEvent> {
        let deadline = Instant::now().checked_add(timeout);
        // The only borrow: the client's calls never reenter the peer.
        let mut peer = self.peer.borrow_mut();
        loop {
            let left = deadline.map_or(Duration::MAX, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            let (client_occurred, peer_occurred) = {
                let mut socks = vec![(&self.sock, Events::new(requested))];
                if let Some((sock, wanted)) = peer.interest() {
                    socks.push((sock, Events::new(wanted)));
                }
                Sock::wait_many(left, &mut socks)?;
                (
                    socks[0].1.occurred,
                    socks.get(1).map(|entry| entry.1.occurred),
                )
            };
            if let Some(occurred) = peer_occurred.filter(|occurred| !occurred.is_empty()) {
                peer.on_ready(occurred)?;
            }
            if !client_occurred.is_empty() || left.is_zero() {
                return Ok(client_occurred);
            }
        }
    }
}
