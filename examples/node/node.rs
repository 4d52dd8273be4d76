//! The node: a [`Handler`] of `bitcoin_sock::sockman::SockMan` that keeps one
//! [`Peer`] (the sans-IO protocol state, `examples/common/p2p/protocol.rs`) per connection,
//! all on one [`HeaderChain`]. Outbound peers are synced from; inbound peers are answered and
//! served. Every way a peer can fail (a malformed message, an invalid header, silence past its
//! deadline, a socket error) ends in one line saying why, and the connection closed.
//!
//! Against hostile peers: a newcomer finding every slot taken evicts a peer that proved least
//! (`eviction.rs`); each peer gets at most one message handled per turn of the loop and is not
//! read while it has more waiting (Core's one message per peer per turn), the peers that asked
//! least lately first, within a time budget per turn (`fair.rs`), so spam does not delay an
//! honest client; what each peer makes the node hold is declared to `SockMan`'s memory budget;
//! lines are rate-limited (`log.rs`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin::p2p::ServiceFlags;
use bitcoin_sock::sockman::{Handler, Id, SockMan};

use crate::eviction::{self, GroupKey, Standing};
use crate::fair::{Load, TURN_BUDGET};
use crate::log::LogLimit;
use crate::p2p::chain::HeaderChain;
use crate::p2p::network::Network;
use crate::p2p::protocol::{Direction, Identity, Peer, PeerError, PeerEvent, Timeouts};

/// How the node runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The network.
    pub network: &'static Network,
    /// Peer deadlines.
    pub timeouts: Timeouts,
    /// The most connections, inbound and outbound (Core's `-maxconnections`).
    pub max_connections: usize,
    /// What we say in `version`.
    pub user_agent: String,
    /// Our nonce, to spot connections to ourselves.
    pub nonce: u64,
    /// The `version` timestamp.
    pub timestamp: i64,
    /// Name peers by address (`127.0.0.1:18444`); else by number (`inbound peer 1`), which is
    /// the same on every run (the embedded default's output must not depend on ports).
    pub show_addresses: bool,
    /// Print each handshake, sync round and served request, not only results and failures.
    pub verbose: bool,
    /// Prefix of every line this node prints.
    pub name: String,
}

/// How many of the latest [`Outcome`]s a node keeps at least (and at most twice that).
pub const OUTCOMES_KEPT: usize = 256;

/// One connection.
#[derive(Debug)]
struct Connection {
    label: String,
    peer: Peer,
    opened: Instant,
    /// What it proved, for eviction.
    standing: Standing,
    /// Bytes received and not yet handled, one message a turn.
    backlog: Vec<u8>,
    /// What its messages made us do lately: the lightest are served first.
    load: Load,
}

/// The headers-only node.
#[derive(Debug)]
pub struct Node {
    config: Config,
    chain: HeaderChain,
    connections: BTreeMap<Id, Connection>,
    inbound_seen: usize,
    /// Connections with a backlog: one message of each is handled per turn.
    backlogged: BTreeSet<Id>,
    /// A backlog was worked on in the last turn: the loop must not sleep.
    busy: bool,
    group_key: GroupKey,
    log: RefCell<LogLimit>,
    /// The latest outcomes (a line per finished sync, per refused or dropped peer), for the
    /// caller to inspect: at most [`OUTCOMES_KEPT`] twice over, the oldest dropped first, so a
    /// node that sees millions of peers keeps nothing per peer once it is gone.
    pub outcomes: Vec<Outcome>,
    /// Outcomes ever recorded (the kept ones are the last of them).
    pub outcomes_seen: u64,
    /// Syncs ever finished.
    pub synced_count: u64,
    /// `getheaders` answered, and the headers in those answers.
    pub served: (usize, usize),
}

/// What became of a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Header sync from it finished.
    Synced {
        /// The peer.
        label: String,
        /// Our height and tip then.
        height: u32,
        /// Our tip.
        tip: String,
        /// `getheaders` rounds.
        rounds: u32,
        /// From connecting to the last answer.
        took: Duration,
    },
    /// We disconnected it, or it went away.
    Gone {
        /// The peer.
        label: String,
        /// Why.
        reason: String,
    },
}

impl Node {
    /// A node with only the genesis block.
    pub fn new(config: Config) -> Node {
        let chain = HeaderChain::new(config.network);
        Node::with_chain(config, chain)
    }

    /// A node that starts with `chain` (the embedded default's seed peer).
    pub fn with_chain(config: Config, chain: HeaderChain) -> Node {
        Node {
            chain,
            config,
            connections: BTreeMap::new(),
            inbound_seen: 0,
            backlogged: BTreeSet::new(),
            busy: false,
            group_key: GroupKey::default(),
            log: RefCell::new(LogLimit::new(0)),
            outcomes: Vec::new(),
            outcomes_seen: 0,
            synced_count: 0,
            served: (0, 0),
        }
    }

    /// Print at most `rate` lines a second (0: no limit, the default).
    pub fn set_log_rate(&mut self, rate: u32) {
        self.log = RefCell::new(LogLimit::new(rate));
    }

    /// The most connections from now on.
    pub fn set_max_connections(&mut self, max: usize) {
        self.config.max_connections = max;
    }

    /// Deadlines for connections made from now on.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.config.timeouts = timeouts;
    }

    /// Closes every connection (no line printed: the caller says why).
    pub fn close_all(&mut self, man: &SockMan) {
        for id in std::mem::take(&mut self.connections).into_keys() {
            man.close(id);
        }
    }

    /// The chain synced so far.
    pub fn chain(&self) -> &HeaderChain {
        &self.chain
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Whether connection `id` is one of ours.
    pub fn owns(&self, id: Id) -> bool {
        self.connections.contains_key(&id)
    }

    /// Where connection `id` is: `None` when it is not (or no longer) ours, else whether its
    /// handshake is done and whether its first sync ended.
    pub fn peer_state(&self, id: Id) -> Option<(bool, bool)> {
        self.connections
            .get(&id)
            .map(|connection| (connection.peer.handshake_done(), connection.peer.synced()))
    }

    /// The earliest peer deadline: how long the caller's `run_once` may wait at most.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.busy {
            // Backlogs wait for the next turn: now.
            return Some(Instant::now());
        }
        self.connections
            .values()
            .filter_map(|connection| connection.peer.next_deadline())
            .min()
    }

    /// Keeps `outcome`, forgetting the oldest once [`OUTCOMES_KEPT`] twice over are kept
    /// (trimmed in one go, so recording stays O(1) amortized).
    fn record(&mut self, outcome: Outcome) {
        self.outcomes_seen += 1;
        if matches!(outcome, Outcome::Synced { .. }) {
            self.synced_count += 1;
        }
        if self.outcomes.len() >= 2 * OUTCOMES_KEPT {
            self.outcomes
                .drain(..self.outcomes.len() - OUTCOMES_KEPT + 1);
        }
        self.outcomes.push(outcome);
    }

    fn identity(&self) -> Identity {
        Identity {
            user_agent: self.config.user_agent.clone(),
            // NODE_NETWORK_LIMITED would be more honest for a headers-only node; NODE_NETWORK
            // (1) is what light clients look for.
            services: ServiceFlags::NETWORK,
            nonce: self.config.nonce,
            timestamp: self.config.timestamp,
        }
    }

    fn say(&self, line: std::fmt::Arguments<'_>) {
        let Some(held_back) = self.log.borrow_mut().admit(Instant::now()) else {
            return;
        };
        if held_back > 0 {
            println!(
                "{}: ({held_back} lines not printed: more than the log rate)",
                self.config.name
            );
        }
        println!("{}: {line}", self.config.name);
    }

    /// Connects to `addr` and starts the handshake; `label` names it in what is printed
    /// (`None`: its address, or `outbound peer N`).
    ///
    /// # Errors
    /// Why there is no connection (the connect's error: refused, unreachable, timed out; or
    /// `-maxconnections`), also printed.
    pub fn connect(
        &mut self,
        man: &SockMan,
        addr: SocketAddr,
        label: Option<String>,
        timeout: Duration,
    ) -> Result<Id, String> {
        let label = label.unwrap_or_else(|| format!("outbound peer {addr}"));
        if self.connections.len() >= self.config.max_connections {
            let problem = format!(
                "not connecting to {label}: -maxconnections={} reached",
                self.config.max_connections
            );
            self.say(format_args!("{problem}"));
            return Err(problem);
        }
        let id = match man.connect(addr, timeout) {
            Ok(id) => id,
            Err(err) => {
                let problem = format!("connecting to {label}: {err}");
                self.say(format_args!("{problem}"));
                return Err(problem);
            }
        };
        self.add_outbound(man, id, addr, label);
        Ok(id)
    }

    /// Connects to `dest` (`HOST:PORT`, `[v6]:PORT`; looked up each time, as Core does for
    /// `-connect`) with [`SockMan::connect_by_name`] and starts the handshake; `dest` names
    /// the peer in what is printed.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), with the lookup's error for a name that does not
    /// resolve.
    pub fn connect_by_name(
        &mut self,
        man: &SockMan,
        dest: &str,
        timeout: Duration,
    ) -> Result<Id, String> {
        if self.connections.len() >= self.config.max_connections {
            let problem = format!(
                "not connecting to {dest}: -maxconnections={} reached",
                self.config.max_connections
            );
            self.say(format_args!("{problem}"));
            return Err(problem);
        }
        let id = match man.connect_by_name(dest, timeout) {
            Ok(id) => id,
            Err(err) => {
                let problem = format!("connecting to {dest}: {err}");
                self.say(format_args!("{problem}"));
                return Err(problem);
            }
        };
        let addr = match man.peer_addr(id) {
            Ok(addr) => addr,
            Err(err) => {
                man.close(id);
                let problem = format!("connecting to {dest}: {err}");
                self.say(format_args!("{problem}"));
                return Err(problem);
            }
        };
        self.add_outbound(man, id, addr, dest.to_owned());
        Ok(id)
    }

    /// Starts the handshake on the new outbound connection `id` to `addr`.
    fn add_outbound(&mut self, man: &SockMan, id: Id, addr: SocketAddr, label: String) {
        let now = Instant::now();
        let peer = Peer::outbound(
            self.config.network,
            self.identity(),
            self.config.timeouts,
            addr,
            &self.chain,
            true,
            now,
        );
        if self.config.verbose {
            self.say(format_args!("connected to {label}"));
        }
        let standing = Standing::new(addr, &self.group_key, now);
        self.connections.insert(
            id,
            Connection {
                label,
                peer,
                opened: now,
                standing,
                backlog: Vec::new(),
                load: Load::new(now),
            },
        );
        self.flush(man, id);
    }

    /// Hands what the peer's protocol queued to the socket (how many bytes); a send that
    /// fails drops the peer.
    fn flush(&mut self, man: &SockMan, id: Id) -> usize {
        let Some(connection) = self.connections.get_mut(&id) else {
            return 0;
        };
        let bytes = connection.peer.take_outbox();
        if bytes.is_empty() {
            return 0;
        }
        if let Err(err) = man.send(id, &bytes, false) {
            self.drop_peer(man, id, format!("sending: {err}"));
        }
        bytes.len()
    }

    /// Closes `id` and says why.
    fn drop_peer(&mut self, man: &SockMan, id: Id, reason: String) {
        man.close(id);
        self.backlogged.remove(&id);
        if let Some(connection) = self.connections.remove(&id) {
            self.say(format_args!("disconnected {}: {reason}", connection.label));
            self.record(Outcome::Gone {
                label: connection.label,
                reason,
            });
        }
    }

    /// The tip moved past `old_height` (headers from `from`): tells every other peer that was
    /// at the old tip (BIP 130), so light clients that stay connected follow without asking.
    fn announce(&mut self, man: &SockMan, from: Id, old_height: u32) {
        let ids: Vec<Id> = self.connections.keys().copied().collect();
        for id in ids {
            if id == from {
                continue;
            }
            let Some(connection) = self.connections.get_mut(&id) else {
                continue;
            };
            let mut events = Vec::new();
            if connection
                .peer
                .announce(&self.chain, old_height, &mut events)
            {
                self.on_events(id, events);
                self.flush(man, id);
            }
        }
    }

    fn on_events(&mut self, id: Id, events: Vec<PeerEvent>) {
        let Some(connection) = self.connections.get(&id) else {
            return;
        };
        let label = connection.label.clone();
        let opened = connection.opened;
        // Headers added after the first sync ended (not in the batch that ended it): the
        // tip followed.
        let following = connection.peer.synced()
            && !events
                .iter()
                .any(|event| matches!(event, PeerEvent::Synced { .. }));
        for event in events {
            match event {
                PeerEvent::HandshakeDone {
                    user_agent,
                    start_height,
                } => {
                    if self.config.verbose {
                        self.say(format_args!(
                            "handshake with {label} done (user agent {user_agent:?}, height \
                             {start_height})"
                        ));
                    }
                }
                PeerEvent::HeadersAdded {
                    received,
                    added,
                    height,
                } => {
                    if added > 0 {
                        if let Some(connection) = self.connections.get_mut(&id) {
                            connection.standing.last_block = Some(Instant::now());
                        }
                    }
                    if following && added > 0 {
                        // The tip moved after the sync: one line per new tip.
                        self.say(format_args!(
                            "new tip from {label}: height {height}, tip {}",
                            self.chain.tip()
                        ));
                    } else if self.config.verbose {
                        self.say(format_args!(
                            "{received} headers from {label}, {added} new, checked: height \
                             {height}"
                        ));
                    }
                }
                PeerEvent::Synced {
                    height,
                    tip,
                    rounds,
                } => {
                    let took = opened.elapsed();
                    self.say(format_args!(
                        "synced from {label}: height {height}, tip {tip} ({rounds} getheaders \
                         rounds)"
                    ));
                    self.record(Outcome::Synced {
                        label: label.clone(),
                        height,
                        tip: tip.to_string(),
                        rounds,
                        took,
                    });
                }
                PeerEvent::Announced { height } => {
                    if self.config.verbose {
                        self.say(format_args!("announced height {height} to {label}"));
                    }
                }
                PeerEvent::ServedHeaders {
                    count,
                    after_height,
                } => {
                    self.served.0 += 1;
                    self.served.1 += count;
                    if self.config.verbose {
                        self.say(format_args!(
                            "served {count} headers after height {after_height} to {label}"
                        ));
                    }
                }
            }
        }
    }
}

impl Node {
    /// Handles one message of `data` (or takes all of it when it completes none): how many
    /// bytes it took, or `None` when the peer was dropped.
    fn handle_one(&mut self, man: &SockMan, id: Id, data: &[u8]) -> Option<usize> {
        let connection = self.connections.get_mut(&id)?;
        let mut events = Vec::new();
        let old_height = self.chain.height();
        let result =
            connection
                .peer
                .receive_one(data, &mut self.chain, Instant::now(), &mut events);
        self.on_events(id, events);
        let answered = self.flush(man, id);
        if self.chain.height() > old_height {
            self.announce(man, id, old_height);
        }
        match result {
            Ok(used) => {
                if let Some(connection) = self.connections.get_mut(&id) {
                    connection.load.add(used + answered, Instant::now());
                }
                Some(used)
            }
            Err(err) => {
                let reason = match &err {
                    PeerError::InvalidHeader(_) => format!("refused: {err}"),
                    _ => err.to_string(),
                };
                self.drop_peer(man, id, reason);
                None
            }
        }
    }

    /// After a peer's turn: notes whether it has a backlog, and declares what it makes us
    /// hold to the manager's memory budget.
    fn after_turn(&mut self, man: &SockMan, id: Id) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        if connection.backlog.is_empty() {
            connection.backlog = Vec::new();
            self.backlogged.remove(&id);
        } else {
            self.backlogged.insert(id);
        }
        let held = connection.peer.buffered_capacity() + connection.backlog.capacity();
        // Unknown only once closed, and then nothing is held.
        let _ = man.set_held(id, held);
    }

    /// Makes room for a newcomer when every slot is taken: evicts the inbound peer that proved
    /// least (Core's `AttemptToEvictConnection`); whether one was.
    fn evict_for_newcomer(&mut self, man: &SockMan, newcomer: &str) -> bool {
        let inbound = self.connections.iter().filter_map(|(&id, connection)| {
            (connection.peer.direction() == Direction::Inbound).then_some((
                id,
                connection.peer.handshake_done(),
                connection.peer.min_ping(),
                &connection.standing,
            ))
        });
        let Some(victim) = eviction::choose(inbound) else {
            return false;
        };
        let proven = self
            .connections
            .get(&victim)
            .is_some_and(|connection| connection.peer.handshake_done());
        let reason = if proven {
            format!("evicted for {newcomer}: every slot taken, and it proved least")
        } else {
            format!("evicted for {newcomer}: every slot taken, and it never finished the version handshake")
        };
        self.drop_peer(man, victim, reason);
        true
    }
}

impl Handler for Node {
    fn new_connection_accepted(
        &mut self,
        man: &SockMan,
        id: Id,
        _: SocketAddr,
        them: SocketAddr,
    ) -> bool {
        self.inbound_seen += 1;
        let label = if self.config.show_addresses {
            format!("inbound peer {them}")
        } else {
            format!("inbound peer {}", self.inbound_seen)
        };
        if self.connections.len() >= self.config.max_connections
            && !self.evict_for_newcomer(man, &label)
        {
            let reason = format!(
                "-maxconnections={} reached, every peer protected",
                self.config.max_connections
            );
            self.say(format_args!("refused {label}: {reason}"));
            self.record(Outcome::Gone { label, reason });
            return false;
        }
        let now = Instant::now();
        let peer = Peer::inbound(
            self.config.network,
            self.identity(),
            self.config.timeouts,
            now,
        );
        if self.config.verbose {
            self.say(format_args!("accepted {label}"));
        }
        let standing = Standing::new(them, &self.group_key, now);
        self.connections.insert(
            id,
            Connection {
                label,
                peer,
                opened: now,
                standing,
                backlog: Vec::new(),
                load: Load::new(now),
            },
        );
        true
    }

    fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]) {
        let Some(connection) = self.connections.get_mut(&id) else {
            man.close(id);
            return;
        };
        // Handled at the end of the loop's turn, with every other peer's, lightest first.
        connection.backlog.extend_from_slice(data);
        self.after_turn(man, id);
    }

    fn should_try_to_recv(&self, id: Id) -> bool {
        // Not read while messages wait to be handled (Core's fPauseRecv, here at one receive).
        self.connections
            .get(&id)
            .is_none_or(|connection| connection.backlog.is_empty())
    }

    fn got_eof(&mut self, man: &SockMan, id: Id) {
        self.drop_peer(man, id, "the peer closed the connection".to_owned());
    }

    fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, err: &io::Error) {
        self.drop_peer(man, id, format!("receiving: {err}"));
    }

    fn got_permanent_send_error(&mut self, man: &SockMan, id: Id, err: &io::Error) {
        self.drop_peer(man, id, format!("sending: {err}"));
    }

    fn memory_budget_exceeded(&mut self, man: &SockMan, id: Id, held: usize, used: usize) {
        self.drop_peer(
            man,
            id,
            format!(
                "holding {held} bytes, the most of any peer, when all peers held {used}, past \
                 the memory budget of {}",
                man.options().memory_budget
            ),
        );
    }

    fn io_loop_completed_for_all(&mut self, man: &SockMan) {
        // One message of each backlog (Core: one message per peer per turn), the peers that
        // asked least lately first, until the turn's budget is spent; a peer whose replies
        // pile up unread waits until they drain (Core's fPauseSend).
        self.busy = false;
        let pause = man.options().pause_recv_above;
        let now = Instant::now();
        let mut turn: Vec<(f64, Id)> = self
            .backlogged
            .iter()
            .filter(|&&id| !man.send_queue_len(id).is_ok_and(|queued| queued > pause))
            .filter_map(|id| Some((self.connections.get(id)?.load.at(now), *id)))
            .collect();
        turn.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (served, (_, id)) in turn.into_iter().enumerate() {
            if served > 0 && now.elapsed() >= TURN_BUDGET {
                // The rest in the next turn, which comes at once.
                self.busy = true;
                break;
            }
            let Some(connection) = self.connections.get_mut(&id) else {
                self.backlogged.remove(&id);
                continue;
            };
            let mut backlog = std::mem::take(&mut connection.backlog);
            let Some(used) = self.handle_one(man, id, &backlog) else {
                continue;
            };
            backlog.drain(..used.min(backlog.len()));
            if let Some(connection) = self.connections.get_mut(&id) {
                connection.backlog = backlog;
            }
            self.after_turn(man, id);
            if !self.backlogged.contains(&id) {
                // Drained: read again.
                let _ = man.recheck(id);
            } else {
                self.busy = true;
            }
        }
        let now = Instant::now();
        let ids: Vec<Id> = self.connections.keys().copied().collect();
        for id in ids {
            let Some(connection) = self.connections.get_mut(&id) else {
                continue;
            };
            match connection.peer.check_deadline(now) {
                Ok(()) => {
                    self.flush(man, id);
                }
                Err(err) => self.drop_peer(man, id, err.to_string()),
            }
        }
    }
}
