//! The embedded default: everything on 127.0.0.1 in this one process and thread (WASI has no
//! threads), on one [`SockMan`]: a seed node serving a mined regtest chain, our node syncing
//! from it, a light client syncing from our node, then peers that misbehave in each way the
//! node must survive, outbound and inbound. Steps run one after the other, so what is printed
//! is the same on every run, natively and in wasmtime.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{Handler, Id, SockMan};
use bitcoin_sock::{Sock, SockError};

use crate::node::{Config, Node, Outcome};
use bitcoin::hashes::Hash;
use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::ServiceFlags;

use crate::p2p::chain::{check_proof_of_work, grind, mine_chain, HeaderChain};
use crate::p2p::framing::{
    command_of, encode_message, parse_message, version_message, BlockHash, MessageHeader,
    VersionFields, HEADER_LEN, MAX_PAYLOAD,
};
use crate::p2p::network::{self, Network};
use crate::p2p::protocol::Timeouts;

/// Headers the seed serves: two full `getheaders` answers and part of a third.
const CHAIN_LENGTH: u32 = 4_500;

/// The longest any step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// Deadlines while the misbehaving peers run: short, so silence is noticed quickly.
const SHORT: Timeouts = Timeouts {
    handshake: Duration::from_millis(500),
    headers: Duration::from_millis(500),
    ping_interval: Duration::from_secs(120),
    pong: Duration::from_secs(20),
    message: Duration::from_millis(500),
};

/// How a misbehaving peer our node connects to answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Answers `version` with another network's magic.
    WrongMagic,
    /// Answers with a `version` whose payload does not match its checksum.
    BadChecksum,
    /// Announces a payload past the limit.
    Oversized,
    /// Never answers.
    Silent,
    /// Shakes hands, then never answers `getheaders`.
    SilentAfterHandshake,
    /// Serves a header whose hash misses its target.
    NoProofOfWork,
    /// Serves a header that does not build on the one before.
    BrokenLink,
}

impl Fault {
    const ALL: [Fault; 7] = [
        Fault::WrongMagic,
        Fault::BadChecksum,
        Fault::Oversized,
        Fault::Silent,
        Fault::SilentAfterHandshake,
        Fault::NoProofOfWork,
        Fault::BrokenLink,
    ];

    fn describe(self) -> &'static str {
        match self {
            Fault::WrongMagic => "a peer on another network",
            Fault::BadChecksum => "a peer sending a corrupted message",
            Fault::Oversized => "a peer announcing an oversized message",
            Fault::Silent => "a peer that never answers",
            Fault::SilentAfterHandshake => "a peer that never answers getheaders",
            Fault::NoProofOfWork => "a peer serving a header without proof of work",
            Fault::BrokenLink => "a peer serving a header that does not build on its parent",
        }
    }
}

/// A peer that answers our node's `version` and `getheaders` in the way of its [`Fault`].
struct FaultyPeer {
    network: &'static Network,
    fault: Fault,
    /// Six headers of the seed's chain, the last one spoiled for the header faults.
    headers: Vec<crate::p2p::framing::BlockHeader>,
    connections: HashMap<Id, Vec<u8>>,
}

impl FaultyPeer {
    fn new(network: &'static Network, fault: Fault, seed: &HeaderChain) -> FaultyPeer {
        let pow_limit = network.pow_limit();
        let mut headers: Vec<_> = (1..=6)
            .filter_map(|height| seed.header(height).copied())
            .collect();
        if let Some(last) = headers.last_mut() {
            match fault {
                Fault::NoProofOfWork => {
                    while check_proof_of_work(last, pow_limit).is_ok() {
                        last.nonce = last.nonce.wrapping_add(1);
                    }
                }
                Fault::BrokenLink => {
                    // Its parent's hash with one bit flipped: a block nobody has, and the
                    // proof of work for that, so only the link is wrong.
                    let mut prev = last.prev_blockhash.to_byte_array();
                    prev[0] ^= 1;
                    last.prev_blockhash = BlockHash::from_byte_array(prev);
                    *last = grind(*last, pow_limit).unwrap_or(*last);
                }
                _ => {}
            }
        }
        FaultyPeer {
            network,
            fault,
            headers,
            connections: HashMap::new(),
        }
    }

    fn version(&self) -> NetworkMessage {
        NetworkMessage::Version(version_message(VersionFields {
            services: ServiceFlags::NETWORK,
            timestamp: 1_700_000_000,
            receiver: None,
            nonce: 0x0bad_0bad_0bad_0bad,
            user_agent: "/misbehaving:0.1.0/".to_owned(),
            start_height: 6,
            relay: false,
        }))
    }

    /// The answer to `command` from our node.
    fn answer(&self, command: &str) -> Vec<u8> {
        let magic = self.network.magic();
        match (command, self.fault) {
            (_, Fault::Silent) => Vec::new(),
            ("version", Fault::WrongMagic) => {
                let other = network::NETWORKS
                    .iter()
                    .map(|other| other.magic())
                    .find(|other| *other != magic)
                    .unwrap_or(magic);
                encode_message(other, self.version())
            }
            ("version", Fault::BadChecksum) => {
                let mut bytes = encode_message(magic, self.version());
                // As if a bit flipped on the way.
                bytes[HEADER_LEN] ^= 0x01;
                bytes
            }
            ("version", Fault::Oversized) => {
                let bytes = encode_message(magic, self.version());
                MessageHeader::of(&bytes).map_or_else(Vec::new, |mut header| {
                    header.length = MAX_PAYLOAD + 1;
                    header.encode().to_vec()
                })
            }
            ("version", _) => {
                let mut bytes = encode_message(magic, self.version());
                bytes.extend_from_slice(&encode_message(magic, NetworkMessage::Verack));
                bytes
            }
            ("getheaders", Fault::NoProofOfWork | Fault::BrokenLink) => {
                encode_message(magic, NetworkMessage::Headers(self.headers.clone()))
            }
            _ => Vec::new(),
        }
    }
}

impl Handler for FaultyPeer {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        id: Id,
        _: SocketAddr,
        _: SocketAddr,
    ) -> bool {
        self.connections.insert(id, Vec::new());
        true
    }

    fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]) {
        let mut commands = Vec::new();
        if let Some(buffer) = self.connections.get_mut(&id) {
            buffer.extend_from_slice(data);
            while let Ok(Some((message, used))) = parse_message(buffer, self.network.magic()) {
                buffer.drain(..used);
                commands.push(command_of(&message));
            }
        }
        for command in commands {
            let answer = self.answer(&command);
            if !answer.is_empty() && man.send(id, &answer, false).is_err() {
                man.close(id);
            }
        }
    }

    fn got_eof(&mut self, man: &SockMan, id: Id) {
        self.connections.remove(&id);
        man.close(id);
    }

    fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, _: &io::Error) {
        self.connections.remove(&id);
        man.close(id);
    }
}

/// Which participant a connection or listener belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Seed,
    Ours,
    Client,
    Faulty(usize),
}

/// Every participant, and the one handler the `SockMan` calls: it routes each event to the
/// participant that owns the connection (listeners are told apart by their address).
struct World {
    seed: Node,
    ours: Node,
    client: Node,
    faulty: Vec<FaultyPeer>,
    listeners: HashMap<SocketAddr, Who>,
}

impl World {
    fn who(&self, id: Id) -> Option<Who> {
        if self.ours.owns(id) {
            Some(Who::Ours)
        } else if self.seed.owns(id) {
            Some(Who::Seed)
        } else if self.client.owns(id) {
            Some(Who::Client)
        } else {
            self.faulty
                .iter()
                .position(|peer| peer.connections.contains_key(&id))
                .map(Who::Faulty)
        }
    }

    fn part(&mut self, who: Who) -> Option<&mut dyn Handler> {
        match who {
            Who::Seed => Some(&mut self.seed),
            Who::Ours => Some(&mut self.ours),
            Who::Client => Some(&mut self.client),
            Who::Faulty(index) => self
                .faulty
                .get_mut(index)
                .map(|peer| peer as &mut dyn Handler),
        }
    }

    fn with_owner(&mut self, man: &SockMan, id: Id, event: impl FnOnce(&mut dyn Handler)) {
        match self.who(id).and_then(|who| self.part(who)) {
            Some(part) => event(part),
            None => {
                man.close(id);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.seed.next_deadline(),
            self.ours.next_deadline(),
            self.client.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Handler for World {
    fn new_connection_accepted(
        &mut self,
        man: &SockMan,
        id: Id,
        me: SocketAddr,
        them: SocketAddr,
    ) -> bool {
        let Some(&who) = self.listeners.get(&me) else {
            return false;
        };
        self.part(who)
            .is_some_and(|part| part.new_connection_accepted(man, id, me, them))
    }

    fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]) {
        self.with_owner(man, id, |part| part.got_data(man, id, data));
    }

    fn got_eof(&mut self, man: &SockMan, id: Id) {
        self.with_owner(man, id, |part| part.got_eof(man, id));
    }

    fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, err: &io::Error) {
        self.with_owner(man, id, |part| part.got_permanent_read_error(man, id, err));
    }

    fn got_permanent_send_error(&mut self, man: &SockMan, id: Id, err: &io::Error) {
        self.with_owner(man, id, |part| part.got_permanent_send_error(man, id, err));
    }

    fn memory_budget_exceeded(&mut self, man: &SockMan, id: Id, held: usize, used: usize) {
        self.with_owner(man, id, |part| {
            part.memory_budget_exceeded(man, id, held, used)
        });
    }

    fn should_try_to_recv(&self, id: Id) -> bool {
        [&self.seed, &self.ours, &self.client]
            .iter()
            .all(|node| node.should_try_to_recv(id))
    }

    fn io_loop_completed_for_all(&mut self, man: &SockMan) {
        self.seed.io_loop_completed_for_all(man);
        self.ours.io_loop_completed_for_all(man);
        self.client.io_loop_completed_for_all(man);
    }
}

/// Runs the loop until `done` holds, or fails after [`STEP_TIMEOUT`].
fn drive(
    man: &SockMan,
    world: &mut World,
    step: &str,
    done: impl Fn(&World) -> bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !done(world) {
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("{step}: not done after {STEP_TIMEOUT:?}").into());
        }
        let wait = world
            .next_deadline()
            .unwrap_or(deadline)
            .min(deadline)
            .saturating_duration_since(now)
            .min(Duration::from_secs(1));
        man.run_once(world, wait)?;
    }
    Ok(())
}

fn config(network: &'static Network, name: &str, user_agent: &str, nonce: u64) -> Config {
    Config {
        network,
        timeouts: Timeouts::CORE,
        max_connections: 125,
        user_agent: user_agent.to_owned(),
        nonce,
        // Fixed, so every run sends the same bytes.
        timestamp: 1_700_000_000,
        show_addresses: false,
        verbose: false,
        name: name.to_owned(),
    }
}

/// The embedded default; what became of each of our node's peers, in order.
///
/// # Errors
/// A socket error, or a step that did not finish in time or ended wrong.
pub fn run() -> Result<Vec<Outcome>, Box<dyn std::error::Error>> {
    let network = network::by_name("regtest").ok_or("no regtest")?;
    println!("embedded default: regtest, every peer on 127.0.0.1 in this process, one SockMan");
    let seed_chain = mine_chain(network, CHAIN_LENGTH)?;
    println!(
        "seed: serves {} mined headers, tip {}",
        seed_chain.height(),
        seed_chain.tip()
    );
    let man = SockMan::new()?;
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let seed_addr = man.bind_and_listen(loopback)?;
    let our_addr = man.bind_and_listen(loopback)?;
    let faulty: Vec<FaultyPeer> = Fault::ALL
        .iter()
        .map(|&fault| FaultyPeer::new(network, fault, &seed_chain))
        .collect();
    let mut world = World {
        seed: Node::with_chain(
            config(network, "seed", "/embedded-seed:0.1.0/", 1),
            seed_chain,
        ),
        ours: Node::new(config(network, "our node", crate::USER_AGENT, 2)),
        client: Node::new(config(
            network,
            "light client",
            "/embedded-light-client:0.1.0/",
            3,
        )),
        faulty: Vec::new(),
        listeners: HashMap::from([(seed_addr, Who::Seed), (our_addr, Who::Ours)]),
    };
    let mut faulty_addrs = Vec::new();
    for (index, peer) in faulty.into_iter().enumerate() {
        let addr = man.bind_and_listen(loopback)?;
        world.listeners.insert(addr, Who::Faulty(index));
        faulty_addrs.push(addr);
        world.faulty.push(peer);
    }

    // Our node syncs from the seed.
    println!("our node: listening; connecting to the seed");
    world
        .ours
        .connect(&man, seed_addr, Some("the seed".to_owned()), STEP_TIMEOUT)?;
    drive(&man, &mut world, "syncing from the seed", |world| {
        !world.ours.outcomes.is_empty()
    })?;
    expect_synced(&world.ours.outcomes, world.seed.chain())?;

    // A light client syncs from our node.
    world
        .client
        .connect(&man, our_addr, Some("our node".to_owned()), STEP_TIMEOUT)?;
    drive(&man, &mut world, "the light client's sync", |world| {
        !world.client.outcomes.is_empty()
    })?;
    expect_synced(&world.client.outcomes, world.seed.chain())?;
    println!(
        "our node: served {} getheaders ({} headers) to the light client",
        world.ours.served.0, world.ours.served.1
    );
    // The light client leaves; our node sees it go.
    world.client.close_all(&man);
    drive(&man, &mut world, "the light client's leaving", |world| {
        world.ours.connection_count() == 1
    })?;

    println!();
    println!("peers that misbehave, each refused and disconnected by our node:");
    world.ours.set_timeouts(SHORT);
    for (fault, addr) in Fault::ALL.iter().zip(&faulty_addrs) {
        let before = world.ours.outcomes.len();
        world
            .ours
            .connect(&man, *addr, Some(fault.describe().to_owned()), STEP_TIMEOUT)?;
        drive(&man, &mut world, fault.describe(), |world| {
            world.ours.outcomes.len() > before
        })?;
    }
    for (what, bytes) in inbound_faults(network) {
        let before = world.ours.outcomes.len();
        let sock = Sock::connect(our_addr, STEP_TIMEOUT)?;
        send_all(&sock, &bytes)?;
        drive(&man, &mut world, what, |world| {
            world.ours.outcomes.len() > before
        })?;
        drop(sock);
    }

    // One connection more than -maxconnections allows: the one before it, which never said
    // version, is evicted to make room (an honest newcomer is never locked out).
    world.ours.set_max_connections(2);
    let first = Sock::connect(our_addr, STEP_TIMEOUT)?;
    drive(&man, &mut world, "a connection up to the limit", |world| {
        world.ours.connection_count() == 2
    })?;
    let before = world.ours.outcomes.len();
    let second = Sock::connect(our_addr, STEP_TIMEOUT)?;
    drive(&man, &mut world, "a connection past the limit", |world| {
        world.ours.outcomes.len() > before
    })?;
    drop((first, second));
    drive(&man, &mut world, "the newcomer leaving", |world| {
        world.ours.connection_count() == 1
    })?;

    println!();
    let chain = world.ours.chain();
    println!(
        "our node: height {}, tip {}, {} peer connected (the seed), every misbehaving peer \
         disconnected",
        chain.height(),
        chain.tip(),
        world.ours.connection_count()
    );
    if chain.tip() != world.seed.chain().tip() || world.ours.connection_count() != 1 {
        return Err("our node did not end on the seed's tip with the seed alone connected".into());
    }
    Ok(world.ours.outcomes)
}

/// The bytes a misbehaving client sends our node, one connection each.
fn inbound_faults(network: &'static Network) -> Vec<(&'static str, Vec<u8>)> {
    let magic = network.magic();
    let mainnet = network::NETWORKS[0].magic();
    let mut corrupted = encode_message(magic, NetworkMessage::Ping(7));
    corrupted[HEADER_LEN] ^= 0x01;
    let oversized = MessageHeader {
        magic,
        command: *b"version\0\0\0\0\0",
        length: u32::MAX,
        checksum: [0; 4],
    }
    .encode()
    .to_vec();
    vec![
        (
            "an inbound peer on another network",
            encode_message(mainnet, NetworkMessage::Verack),
        ),
        ("an inbound peer sending a corrupted message", corrupted),
        ("an inbound peer announcing a 4 GiB message", oversized),
        ("an inbound peer that never says version", Vec::new()),
    ]
}

/// Sends `bytes` within [`STEP_TIMEOUT`].
fn send_all(sock: &Sock, bytes: &[u8]) -> Result<(), SockError> {
    use bitcoin_sock::{SockIo, ThreadInterrupt};
    sock.send_complete(bytes, STEP_TIMEOUT, &ThreadInterrupt::new())
}

/// Fails unless `outcomes` is one sync to `expected`'s tip.
fn expect_synced(outcomes: &[Outcome], expected: &HeaderChain) -> Result<(), String> {
    match outcomes {
        [Outcome::Synced { height, tip, .. }]
            if *height == expected.height() && *tip == expected.tip().to_string() =>
        {
            Ok(())
        }
        other => Err(format!(
            "expected one sync to {}, got {other:?}",
            expected.tip()
        )),
    }
}
