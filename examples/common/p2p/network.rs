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

/// The first address `target` (`HOST[:PORT]`, `[v6]:PORT`) resolves to, `PORT` defaulting to
/// `default_port`. The one place the examples turn a peer's name into an address.
///
/// # Errors
/// A malformed target, a failed lookup, or a name with no address.
pub fn resolve_target(target: &str, default_port: u16) -> Result<std::net::SocketAddr, String> {
    let (host, port) = split_host_port(target, default_port)?;
    let addresses = bitcoin_sock::resolve(host, port).map_err(|err| err.to_string())?;
    addresses
        .first()
        .copied()
        .ok_or(format!("{host} resolved to no address"))
}

/// Splits `HOST[:PORT]` (`[v6]:PORT` for IPv6 with a port; a bare IPv6 address also works).
pub fn split_host_port(target: &str, default_port: u16) -> Result<(&str, u16), String> {
    let parse_port = |port: &str| {
        port.parse::<u16>()
            .map_err(|_| format!("bad port {port:?} in {target:?}"))
    };
    if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or(format!("missing ']' in {target:?}"))?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, parse_port(port)?)),
            None if after.is_empty() => Ok((host, default_port)),
            None => Err(format!("unexpected {after:?} after ']' in {target:?}")),
        };
    }
    match target.split_once(':') {
        // More than one colon and no brackets: an IPv6 address without a port.
        Some((_, rest)) if rest.contains(':') => Ok((target, default_port)),
        Some((host, port)) => Ok((host, parse_port(port)?)),
        None => Ok((target, default_port)),
    }
}
