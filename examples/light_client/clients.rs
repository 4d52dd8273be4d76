//! `--clients N`: N light clients at once against one node, each on its own connection and its
//! own header chain, all on one [`SockMan`] in this one thread (so it runs in wasmtime too).
//! Each does what the single client does (handshake, `getheaders` rounds with every header's
//! link and proof of work checked) through the shared sans-IO protocol state
//! (`examples/common/p2p/protocol.rs`), and closes its connection once synced.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin::p2p::ServiceFlags;
use bitcoin_sock::sockman::{Handler, Id, SockMan};

use crate::p2p::chain::HeaderChain;
use crate::p2p::network::Network;
use crate::p2p::protocol::{Identity, Peer, PeerEvent, Timeouts};

/// How one client ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Synced to this height and tip.
    Synced(u32, String),
    /// Failed, for this reason.
    Failed(String),
}

struct Client {
    peer: Peer,
    chain: HeaderChain,
    outcome: Option<Outcome>,
}

struct Clients {
    clients: BTreeMap<Id, Client>,
}

impl Clients {
    fn finish(&mut self, man: &SockMan, id: Id, outcome: Outcome) {
        man.close(id);
        if let Some(client) = self.clients.get_mut(&id) {
            client.outcome.get_or_insert(outcome);
        }
    }

    fn flush(&mut self, man: &SockMan, id: Id) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let bytes = client.peer.take_outbox();
        if bytes.is_empty() || client.outcome.is_some() {
            return;
        }
        if let Err(err) = man.send(id, &bytes, false) {
            self.finish(man, id, Outcome::Failed(format!("sending: {err}")));
        }
    }

    fn running(&self) -> usize {
        self.clients
            .values()
            .filter(|client| client.outcome.is_none())
            .count()
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter(|client| client.outcome.is_none())
            .filter_map(|client| client.peer.next_deadline())
            .min()
    }
}

impl Handler for Clients {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        _: Id,
        _: SocketAddr,
        _: SocketAddr,
    ) -> bool {
        // Clients do not listen.
        false
    }

    fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]) {
        let Some(client) = self.clients.get_mut(&id) else {
            man.close(id);
            return;
        };
        let mut events = Vec::new();
        let result = client
            .peer
            .receive(data, &mut client.chain, Instant::now(), &mut events);
        let synced = events.iter().find_map(|event| match event {
            PeerEvent::Synced { height, tip, .. } => {
                Some(Outcome::Synced(*height, tip.to_string()))
            }
            _ => None,
        });
        self.flush(man, id);
        match (result, synced) {
            (Err(err), _) => self.finish(man, id, Outcome::Failed(err.to_string())),
            (Ok(()), Some(synced)) => self.finish(man, id, synced),
            (Ok(()), None) => {}
        }
    }

    fn got_eof(&mut self, man: &SockMan, id: Id) {
        let reason = "the node closed the connection before the sync ended".to_owned();
        self.finish(man, id, Outcome::Failed(reason));
    }

    fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, err: &io::Error) {
        self.finish(man, id, Outcome::Failed(format!("receiving: {err}")));
    }

    fn got_permanent_send_error(&mut self, man: &SockMan, id: Id, err: &io::Error) {
        self.finish(man, id, Outcome::Failed(format!("sending: {err}")));
    }

    fn io_loop_completed_for_all(&mut self, man: &SockMan) {
        let now = Instant::now();
        let ids: Vec<Id> = self.clients.keys().copied().collect();
        for id in ids {
            let Some(client) = self.clients.get_mut(&id) else {
                continue;
            };
            if client.outcome.is_some() {
                continue;
            }
            match client.peer.check_deadline(now) {
                Ok(()) => self.flush(man, id),
                Err(err) => self.finish(man, id, Outcome::Failed(err.to_string())),
            }
        }
    }
}

/// Opens `count` connections to `addr` (all open before the first sync ends: the node serves
/// them at once), syncs each, and reports; fails unless every client synced within `timeout`
/// to one chain (the same tip, or, when a block arrived meanwhile, tips on one chain).
///
/// # Errors
/// A socket error, a client that failed, clients that disagree, or the timeout.
pub fn run(
    network: &'static Network,
    addr: SocketAddr,
    count: usize,
    user_agent: &str,
    timeout: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let man = SockMan::new()?;
    let started = Instant::now();
    let deadline = started + timeout;
    let mut clients = Clients {
        clients: BTreeMap::new(),
    };
    let timeouts = Timeouts {
        handshake: timeout,
        headers: timeout,
        ..Timeouts::CORE
    };
    for index in 0..count {
        let id = man
            .connect(addr, timeout)
            .map_err(|err| format!("client {}: {err}", index + 1))?;
        let chain = HeaderChain::new(network);
        let identity = Identity {
            user_agent: user_agent.to_owned(),
            services: ServiceFlags::NONE,
            nonce: crate::random_u64(),
            timestamp: crate::unix_time(),
        };
        let peer = Peer::outbound(
            network,
            identity,
            timeouts,
            addr,
            &chain,
            true,
            Instant::now(),
        );
        clients.clients.insert(
            id,
            Client {
                peer,
                chain,
                outcome: None,
            },
        );
        clients.flush(&man, id);
    }
    println!("{count} light clients connected to {addr} at once, each syncing on its own");
    while clients.running() > 0 {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = clients
            .next_deadline()
            .unwrap_or(deadline)
            .min(deadline)
            .saturating_duration_since(now)
            .min(Duration::from_secs(1));
        man.run_once(&mut clients, wait)?;
    }
    let took = started.elapsed();
    let mut synced: BTreeMap<(u32, String), usize> = BTreeMap::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for client in clients.clients.values() {
        match &client.outcome {
            Some(Outcome::Synced(height, tip)) => {
                *synced.entry((*height, tip.clone())).or_default() += 1;
            }
            Some(Outcome::Failed(reason)) => *failures.entry(reason.clone()).or_default() += 1,
            None => {
                *failures
                    .entry(format!("not synced after {timeout:?}"))
                    .or_default() += 1;
            }
        }
    }
    for ((height, tip), clients) in &synced {
        println!(
            "{clients} of {count} clients synced: height {height}, tip {tip}, from 1 peer \
             ({addr}), in {:.2} s",
            took.as_secs_f64()
        );
    }
    for (reason, clients) in &failures {
        println!("{clients} of {count} clients failed: {reason}");
    }
    match (synced.len(), failures.is_empty()) {
        (1, true) => Ok(()),
        (0 | 1, false) => Err("not every client synced".into()),
        (_, true) if one_chain(&clients) => {
            // A block came while they synced: the earlier ones stopped below it.
            println!("(a new block arrived while they synced: every tip is on one chain)");
            Ok(())
        }
        _ => Err("the clients synced to different tips".into()),
    }
}

/// Whether every client's tip is on the longest client's chain (clients that synced before
/// a new block arrived end below those that synced after; on one chain they agree).
fn one_chain(clients: &Clients) -> bool {
    let Some(longest) = clients
        .clients
        .values()
        .map(|client| &client.chain)
        .max_by_key(|chain| chain.height())
    else {
        return false;
    };
    clients
        .clients
        .values()
        .all(|client| longest.hash_at(client.chain.height()) == Some(client.chain.tip()))
}
