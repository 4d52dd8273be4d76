//! The node: a [`Handler`] of `bitcoin_sock::sockman::SockMan` that keeps one
//! [`Peer`] (the sans-IO protocol state, `examples/common/p2p/protocol.rs`) per connection,
//! all on one [`HeaderChain`]. Outbound peers are synced from; inbound peers are answered and
//! served. Every way a peer can fail (a malformed message, an invalid header, silence past its
//! deadline, a socket error) ends in one line saying why, and the connection closed.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin::p2p::ServiceFlags;
use bitcoin_sock::sockman::{Handler, Id, SockMan};

use crate::p2p::chain::HeaderChain;
use crate::p2p::network::Network;
use crate::p2p::protocol::{Identity, Peer, PeerError, PeerEvent, Timeouts};

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

/// One connection.
#[derive(Debug)]
struct Connection {
    label: String,
    peer: Peer,
    opened: Instant,
}

/// The headers-only node.
#[derive(Debug)]
pub struct Node {
    config: Config,
    chain: HeaderChain,
    connections: BTreeMap<Id, Connection>,
    inbound_seen: usize,
    /// One line per finished sync, per refused or dropped peer, for the caller to inspect.
    pub outcomes: Vec<Outcome>,
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
            outcomes: Vec::new(),
            served: (0, 0),
        }
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
        self.connections
            .values()
            .filter_map(|connection| connection.peer.next_deadline())
            .min()
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
        self.connections.insert(
            id,
            Connection {
                label,
                peer,
                opened: now,
            },
        );
        self.flush(man, id);
    }

    /// Hands what the peer's protocol queued to the socket; a send that fails drops the peer.
    fn flush(&mut self, man: &SockMan, id: Id) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        let bytes = connection.peer.take_outbox();
        if bytes.is_empty() {
            return;
        }
        if let Err(err) = man.send(id, &bytes, false) {
            self.drop_peer(man, id, format!("sending: {err}"));
        }
    }

    /// Closes `id` and says why.
    fn drop_peer(&mut self, man: &SockMan, id: Id, reason: String) {
        man.close(id);
        if let Some(connection) = self.connections.remove(&id) {
            self.say(format_args!("disconnected {}: {reason}", connection.label));
            self.outcomes.push(Outcome::Gone {
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
                    self.outcomes.push(Outcome::Synced {
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

impl Handler for Node {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
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
        if self.connections.len() >= self.config.max_connections {
            let reason = format!("-maxconnections={} reached", self.config.max_connections);
            self.say(format_args!("refused {label}: {reason}"));
            self.outcomes.push(Outcome::Gone { label, reason });
            return false;
        }
        let peer = Peer::inbound(
            self.config.network,
            self.identity(),
            self.config.timeouts,
            Instant::now(),
        );
        if self.config.verbose {
            self.say(format_args!("accepted {label}"));
        }
        self.connections.insert(
            id,
            Connection {
                label,
                peer,
                opened: Instant::now(),
            },
        );
        true
    }

    fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]) {
        let Some(connection) = self.connections.get_mut(&id) else {
            man.close(id);
            return;
        };
        let mut events = Vec::new();
        let old_height = self.chain.height();
        let result = connection
            .peer
            .receive(data, &mut self.chain, Instant::now(), &mut events);
        self.on_events(id, events);
        self.flush(man, id);
        if self.chain.height() > old_height {
            self.announce(man, id, old_height);
        }
        if let Err(err) = result {
            let reason = match &err {
                PeerError::InvalidHeader(_) => format!("refused: {err}"),
                _ => err.to_string(),
            };
            self.drop_peer(man, id, reason);
        }
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

    fn io_loop_completed_for_all(&mut self, man: &SockMan) {
        let now = Instant::now();
        let ids: Vec<Id> = self.connections.keys().copied().collect();
        for id in ids {
            let Some(connection) = self.connections.get_mut(&id) else {
                continue;
            };
            match connection.peer.check_deadline(now) {
                Ok(()) => self.flush(man, id),
                Err(err) => self.drop_peer(man, id, err.to_string()),
            }
        }
    }
}
