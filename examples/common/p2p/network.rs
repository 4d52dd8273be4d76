//! The Bitcoin networks the examples know: rust-bitcoin's [`bitcoin::Network`] (magic, genesis
//! block, proof-of-work limit in its consensus `Params`), with the names `--network` accepts
//! and the default P2P port, which rust-bitcoin 0.32 does not carry (Core's `chainparams.cpp`).

use bitcoin::p2p::Magic;
use bitcoin::Target;

use super::framing::BlockHash;

/// One network's parameters.
#[derive(Debug)]
pub struct Network {
    /// Name as given to `--network`.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// rust-bitcoin's network.
    pub network: bitcoin::Network,
    /// Port nodes listen on by default.
    pub default_port: u16,
}

impl Network {
    /// Message start bytes.
    pub fn magic(&self) -> Magic {
        self.network.magic()
    }

    /// The genesis block's hash.
    pub fn genesis(&self) -> BlockHash {
        bitcoin::constants::genesis_block(self.network).block_hash()
    }

    /// The easiest target a block may have (Core's `powLimit`, as rust-bitcoin's consensus
    /// parameters hold it: rounded to what nBits can say, which refuses the same headers).
    pub fn pow_limit(&self) -> Target {
        // rust-bitcoin 0.32 renamed its `pow_limit` field `max_attainable_target` (the old
        // name is deprecated); this keeps Core's name.
        let params = self.network.params();
        params.max_attainable_target
    }
}

/// Every known network; the first is the default.
pub const NETWORKS: [Network; 5] = [
    Network {
        name: "mainnet",
        aliases: &["main", "bitcoin"],
        network: bitcoin::Network::Bitcoin,
        default_port: 8333,
    },
    Network {
        name: "testnet",
        aliases: &["testnet3", "test"],
        network: bitcoin::Network::Testnet,
        default_port: 18333,
    },
    Network {
        name: "testnet4",
        aliases: &[],
        network: bitcoin::Network::Testnet4,
        default_port: 48333,
    },
    Network {
        name: "signet",
        aliases: &[],
        network: bitcoin::Network::Signet,
        default_port: 38333,
    },
    Network {
        name: "regtest",
        aliases: &[],
        network: bitcoin::Network::Regtest,
        default_port: 18444,
    },
];

/// The network called `name` (or one of its aliases), ignoring case.
pub fn by_name(name: &str) -> Option<&'static Network> {
    NETWORKS.iter().find(|network| {
        network.name.eq_ignore_ascii_case(name)
            || network
                .aliases
                .iter()
                .any(|alias| alias.eq_ignore_ascii_case(name))
    })
}

/// The network whose messages start with `magic`.
pub fn by_magic(magic: Magic) -> Option<&'static Network> {
    NETWORKS.iter().find(|network| network.magic() == magic)
}

/// `target` as a destination the crate's [`bitcoin_sock::split_host_port`] and
/// `connect_by_name` take (`HOST:PORT`, `[v6]:PORT`): `default_port` added when it has none
/// (`node.example`, `127.0.0.1`, a bare IPv6 address, `[v6]`), as Core's `-connect` does.
/// Anything else is given back unchanged, for the crate to accept or refuse with its reason.
pub fn with_default_port(target: &str, default_port: u16) -> String {
    if target.parse::<std::net::Ipv6Addr>().is_ok() {
        return format!("[{target}]:{default_port}");
    }
    let bracketed = target.starts_with('[') && target.ends_with(']');
    if bracketed || !target.contains(':') {
        return format!("{target}:{default_port}");
    }
    target.to_owned()
}

/// The first address `target` (`HOST[:PORT]`, `[v6]:PORT`) resolves to, `PORT` defaulting to
/// `default_port`: [`with_default_port`], then the crate's `split_host_port` and `resolve`.
///
/// # Errors
/// A malformed target, a failed lookup, or a name with no address.
pub fn resolve_target(target: &str, default_port: u16) -> Result<std::net::SocketAddr, String> {
    let dest = with_default_port(target, default_port);
    let (host, port) = bitcoin_sock::split_host_port(&dest).map_err(|err| err.to_string())?;
    let addresses = bitcoin_sock::resolve(host, port).map_err(|err| err.to_string())?;
    addresses
        .first()
        .copied()
        .ok_or(format!("{host} resolved to no address"))
}
