//! The Bitcoin networks the examples know: message magic, default port, genesis hash, proof of
//! work limit (Core's `chainparams.cpp`).

use std::str::FromStr;

use bitcoin_primitives::Target;

use super::framing::{BlockHash, Magic};

/// One network's parameters.
#[derive(Debug)]
pub struct Network {
    /// Name as given to `--network`.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// Message start bytes, wire order.
    pub magic: Magic,
    /// Port nodes listen on by default.
    pub default_port: u16,
    /// Hash of the genesis block, as Core displays it.
    pub genesis_hash: &'static str,
    /// The easiest target a block may have (Core's `powLimit`), as Core displays it.
    pub pow_limit: &'static str,
}

impl Network {
    /// The genesis block's hash.
    pub fn genesis(&self) -> BlockHash {
        // Every table entry is 64 hex digits (tests/light_client_framing.rs checks each against
        // its genesis header), so this never falls back.
        BlockHash::from_str(self.genesis_hash).unwrap_or(BlockHash::GENESIS_PREVIOUS_BLOCK_HASH)
    }

    /// The proof-of-work limit as a 256-bit number.
    pub fn pow_limit(&self) -> Target {
        // 64 hex digits in every entry (tests/light_client_framing.rs checks them), so this
        // never falls back; if it did, the zero limit would refuse every header, not accept one.
        Target::from_unprefixed_hex(self.pow_limit).unwrap_or(Target::ZERO)
    }
}

/// Every known network; the first is the default.
pub const NETWORKS: [Network; 5] = [
    Network {
        name: "mainnet",
        aliases: &["main", "bitcoin"],
        magic: [0xf9, 0xbe, 0xb4, 0xd9],
        default_port: 8333,
        genesis_hash: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        pow_limit: "00000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    },
    Network {
        name: "testnet",
        aliases: &["testnet3", "test"],
        magic: [0x0b, 0x11, 0x09, 0x07],
        default_port: 18333,
        genesis_hash: "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
        pow_limit: "00000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    },
    Network {
        name: "testnet4",
        aliases: &[],
        magic: [0x1c, 0x16, 0x3f, 0x28],
        default_port: 48333,
        genesis_hash: "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
        pow_limit: "00000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    },
    Network {
        name: "signet",
        aliases: &[],
        magic: [0x0a, 0x03, 0xcf, 0x40],
        default_port: 38333,
        genesis_hash: "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
        pow_limit: "00000377ae000000000000000000000000000000000000000000000000000000",
    },
    Network {
        name: "regtest",
        aliases: &[],
        magic: [0xfa, 0xbf, 0xb5, 0xda],
        default_port: 18444,
        genesis_hash: "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
        pow_limit: "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
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
    NETWORKS.iter().find(|network| network.magic == magic)
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
