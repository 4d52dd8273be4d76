//! Bitcoin P2P framing on rust-bitcoin's types: messages are `bitcoin::p2p::message`'s
//! [`NetworkMessage`] inside a [`RawNetworkMessage`], encoded and decoded with
//! `bitcoin::consensus::encode`.
//!
//! Hand-written here, and why:
//! * the 24-byte message header's checks ([`MessageHeader::decode`]). rust-bitcoin's
//!   `RawNetworkMessage` decoder reads magic, command, length and then the whole payload in one
//!   call: it never compares the magic with the network's, allows 5,000,000 bytes where Core
//!   allows 4,000,000, and wants the payload in its reader before it returns. Decoding the
//!   header's four fields here (each with rust-bitcoin's own decoder) lets a peer be refused
//!   from those 24 bytes, before a byte of payload is read or a buffer is allocated for it, in
//!   Core's order (`V1Transport::readHeader`: magic, then size).
//! * the command check: rust-bitcoin accepts any ASCII (NULs inside included); Core's
//!   `IsMessageTypeValid` wants printable ASCII, then only NUL padding.
//! * Core's per-message limits that rust-bitcoin's decoders do not know ([`check_limits`]):
//!   2,000 headers, 101 locator hashes, 50,000 inventory entries, 256 bytes of user agent.
//!
//! The error texts are Core's (`net.cpp`'s "Header error: ..." lines), so a user who knows
//! Core's debug log recognises them. Nothing here touches a socket.

use std::fmt;
use std::net::SocketAddr;

use bitcoin::consensus::encode::{self, Decodable};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::p2p::address::Address;
use bitcoin::p2p::message::{NetworkMessage, RawNetworkMessage};
use bitcoin::p2p::message_blockdata::GetHeadersMessage;
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::{Magic, ServiceFlags};

pub use bitcoin::block::Header as BlockHeader;
pub use bitcoin::BlockHash;

/// Message header length: magic (4), command (12), payload length (4), checksum (4).
pub const HEADER_LEN: usize = 24;

/// Length of the NUL-padded command name in a message header.
pub const COMMAND_LEN: usize = 12;

/// The largest payload accepted: Core's `MAX_PROTOCOL_MESSAGE_LENGTH` (4,000,000 bytes; the
/// largest message a headers-only peer needs, `headers`, is 162,003). Longer ones are refused
/// from the header alone, so a peer's receive buffer never holds more than one header and this.
pub const MAX_PAYLOAD: u32 = 4_000_000;

/// The protocol version spoken (70016: `wtxidrelay`, BIP 339).
pub const PROTOCOL_VERSION: u32 = 70016;

/// Most headers in one `headers` message (Core's `MAX_HEADERS_RESULTS`).
pub const MAX_HEADERS: usize = 2000;

/// Most hashes in a block locator (Core's `MAX_LOCATOR_SZ`).
pub const MAX_LOCATOR: usize = 101;

/// Most entries of an `inv`, `getdata` or `notfound` (Core's `MAX_INV_SZ`).
pub const MAX_INV: usize = 50_000;

/// Longest user agent accepted (Core's `MAX_SUBVERSION_LENGTH`).
pub const MAX_USER_AGENT: usize = 256;

/// Lower-case hex of `bytes` in the order given (checksums).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A payload's checksum: the first four bytes of its double SHA-256.
pub fn checksum(payload: &[u8]) -> [u8; 4] {
    let hash = sha256d::Hash::hash(payload).to_byte_array();
    [hash[0], hash[1], hash[2], hash[3]]
}

/// Why bytes from the peer are not a well-formed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The header starts with another network's (or no network's) magic.
    BadMagic {
        /// This network's magic.
        expected: Magic,
        /// The bytes found.
        found: Magic,
    },
    /// The header announces a payload longer than [`MAX_PAYLOAD`].
    Oversized {
        /// The message's command, sanitized.
        command: String,
        /// The announced length.
        length: u32,
    },
    /// The payload does not hash to the header's checksum.
    BadChecksum {
        /// The message's command, sanitized.
        command: String,
        /// The payload's length.
        length: u32,
        /// The checksum of the payload that arrived.
        computed: [u8; 4],
        /// The checksum in the header.
        found: [u8; 4],
    },
    /// The command is not printable ASCII followed only by NUL padding.
    BadCommand {
        /// The command, sanitized.
        command: String,
        /// The payload's length.
        length: u32,
    },
    /// rust-bitcoin's decoder refused the payload.
    Malformed {
        /// The message's command.
        command: String,
        /// The decoder's error.
        error: String,
    },
    /// A count or length is over Core's limit for it.
    TooMany {
        /// The message's command.
        command: &'static str,
        /// What was counted.
        what: &'static str,
        /// The count found.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadMagic { found, .. } => {
                write!(f, "Header error: Wrong MessageStart {found} received")
            }
            FrameError::Oversized { command, length } => {
                write!(
                    f,
                    "Header error: Size too large ({command}, {length} bytes)"
                )
            }
            FrameError::BadChecksum {
                command,
                length,
                computed,
                found,
            } => write!(
                f,
                "Header error: Wrong checksum ({command}, {length} bytes), expected {} was {}",
                to_hex(computed),
                to_hex(found)
            ),
            FrameError::BadCommand { command, length } => {
                write!(
                    f,
                    "Header error: Invalid message type ({command}, {length} bytes)"
                )
            }
            FrameError::Malformed { command, error } => {
                write!(f, "malformed {command} message: {error}")
            }
            FrameError::TooMany {
                command,
                what,
                count,
                max,
            } => write!(f, "{command} message with {count} {what}, more than {max}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// A message header, as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// The network's magic.
    pub magic: Magic,
    /// The command, NUL-padded.
    pub command: [u8; COMMAND_LEN],
    /// The payload's length.
    pub length: u32,
    /// The payload's [`checksum`].
    pub checksum: [u8; 4],
}

impl MessageHeader {
    /// The header of an encoded message (its first 24 bytes, as they are), for tests and
    /// misbehaving peers that change a field; `None` if `message` is shorter than a header.
    pub fn of(message: &[u8]) -> Option<MessageHeader> {
        let bytes = message.first_chunk::<HEADER_LEN>()?;
        Some(MessageHeader::read(bytes))
    }

    /// The 24 wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(&self.magic.to_bytes());
        bytes[4..16].copy_from_slice(&self.command);
        bytes[16..20].copy_from_slice(&self.length.to_le_bytes());
        bytes[20..24].copy_from_slice(&self.checksum);
        bytes
    }

    /// The four fields, with rust-bitcoin's decoders. Every 24 bytes are a header (each field
    /// is a fixed-size array or integer), so nothing can fail: the checks come after.
    fn read(bytes: &[u8; HEADER_LEN]) -> MessageHeader {
        let mut reader = &bytes[..];
        let magic = Magic::consensus_decode(&mut reader);
        let command = <[u8; COMMAND_LEN]>::consensus_decode(&mut reader);
        let length = u32::consensus_decode(&mut reader);
        let checksum = <[u8; 4]>::consensus_decode(&mut reader);
        match (magic, command, length, checksum) {
            (Ok(magic), Ok(command), Ok(length), Ok(checksum)) => MessageHeader {
                magic,
                command,
                length,
                checksum,
            },
            // Unreachable: 24 bytes hold the four fields exactly. Were a decoder to fail, a
            // zero magic would refuse the message, not accept it.
            _ => MessageHeader {
                magic: Magic::from_bytes([0; 4]),
                command: [0; COMMAND_LEN],
                length: u32::MAX,
                checksum: [0; 4],
            },
        }
    }

    /// Reads 24 wire bytes and checks them as Core's `V1Transport::readHeader` does: the magic
    /// must be `magic`, then the announced length at most [`MAX_PAYLOAD`], so a caller that
    /// allocates the payload only after this succeeded never allocates more than that.
    ///
    /// # Errors
    /// [`FrameError::BadMagic`], [`FrameError::Oversized`].
    pub fn decode(bytes: &[u8; HEADER_LEN], magic: Magic) -> Result<MessageHeader, FrameError> {
        let header = MessageHeader::read(bytes);
        if header.magic != magic {
            return Err(FrameError::BadMagic {
                expected: magic,
                found: header.magic,
            });
        }
        if header.length > MAX_PAYLOAD {
            return Err(FrameError::Oversized {
                command: header.command_lossy(),
                length: header.length,
            });
        }
        Ok(header)
    }

    /// The command for messages: printable characters kept, the rest dropped (Core's
    /// `SanitizeString`).
    pub fn command_lossy(&self) -> String {
        self.command
            .iter()
            .filter(|byte| (b' '..=b'~').contains(*byte))
            .map(|&byte| char::from(byte))
            .collect()
    }

    /// Whether the command is printable ASCII followed only by NULs (Core's
    /// `IsMessageTypeValid`).
    pub fn command_is_valid(&self) -> bool {
        let end = self
            .command
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(COMMAND_LEN);
        let (name, padding) = self.command.split_at(end);
        padding.iter().all(|&byte| byte == 0)
            && name.iter().all(|byte| (b' '..=b'~').contains(byte))
    }
}

/// A whole message, `message` in a [`RawNetworkMessage`] of `magic`, as
/// `bitcoin::consensus::encode` serializes it.
pub fn encode_message(magic: Magic, message: NetworkMessage) -> Vec<u8> {
    encode::serialize(&RawNetworkMessage::new(magic, message))
}

/// Decodes a whole message whose header [`MessageHeader::decode`] accepted: `bytes` is the 24
/// header bytes and the payload. Core's order: the checksum, then the command; then
/// rust-bitcoin decodes the payload (trailing bytes refused), then [`check_limits`].
///
/// # Errors
/// [`FrameError::BadChecksum`], [`FrameError::BadCommand`], [`FrameError::Malformed`],
/// [`FrameError::TooMany`].
pub fn decode_message(header: &MessageHeader, bytes: &[u8]) -> Result<NetworkMessage, FrameError> {
    let payload = bytes.get(HEADER_LEN..).unwrap_or_default();
    let computed = checksum(payload);
    if computed != header.checksum {
        return Err(FrameError::BadChecksum {
            command: header.command_lossy(),
            length: header.length,
            computed,
            found: header.checksum,
        });
    }
    if !header.command_is_valid() {
        return Err(FrameError::BadCommand {
            command: header.command_lossy(),
            length: header.length,
        });
    }
    let raw =
        encode::deserialize::<RawNetworkMessage>(bytes).map_err(|err| FrameError::Malformed {
            command: header.command_lossy(),
            error: err.to_string(),
        })?;
    let message = raw.into_payload();
    check_limits(&message)?;
    Ok(message)
}

/// Core's limits that rust-bitcoin's decoders do not apply (each one a disconnect in Core's
/// `net_processing.cpp`).
///
/// # Errors
/// [`FrameError::TooMany`] naming the message and the limit.
pub fn check_limits(message: &NetworkMessage) -> Result<(), FrameError> {
    let (command, what, count, max) = match message {
        NetworkMessage::Headers(headers) => ("headers", "headers", headers.len(), MAX_HEADERS),
        NetworkMessage::GetHeaders(request) => (
            "getheaders",
            "locator hashes",
            request.locator_hashes.len(),
            MAX_LOCATOR,
        ),
        NetworkMessage::Inv(inv) => ("inv", "entries", inv.len(), MAX_INV),
        NetworkMessage::GetData(inv) => ("getdata", "entries", inv.len(), MAX_INV),
        NetworkMessage::NotFound(inv) => ("notfound", "entries", inv.len(), MAX_INV),
        NetworkMessage::Version(version) => (
            "version",
            "bytes of user agent",
            version.user_agent.len(),
            MAX_USER_AGENT,
        ),
        _ => return Ok(()),
    };
    if count > max {
        return Err(FrameError::TooMany {
            command,
            what,
            count,
            max,
        });
    }
    Ok(())
}

/// Takes the first message off `buffer` (a stream's bytes so far): `Ok(None)` while it is
/// incomplete, else the message and how many bytes it used. The header is checked as soon as
/// its 24 bytes are there, so a bad magic or an oversized length fails without waiting for
/// (or buffering) the payload it announces.
///
/// # Errors
/// As [`MessageHeader::decode`] and [`decode_message`].
pub fn parse_message(
    buffer: &[u8],
    magic: Magic,
) -> Result<Option<(NetworkMessage, usize)>, FrameError> {
    let Some(header_bytes) = buffer.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = MessageHeader::decode(header_bytes, magic)?;
    // At most MAX_PAYLOAD, checked by decode: fits usize on every target (32-bit included).
    let total = HEADER_LEN + header.length as usize;
    let Some(bytes) = buffer.get(..total) else {
        return Ok(None);
    };
    Ok(Some((decode_message(&header, bytes)?, total)))
}

/// The command of `message` as it goes on the wire (`NetworkMessage::cmd` says "unknown" for
/// the ones rust-bitcoin does not know; this gives their own).
pub fn command_of(message: &NetworkMessage) -> String {
    message.command().to_string()
}

/// What a peer says about itself in `version`, and to whom.
#[derive(Debug, Clone)]
pub struct VersionFields {
    /// Service bits (`NODE_NETWORK` for a node that serves the chain, none for a client).
    pub services: ServiceFlags,
    /// Seconds since 1970.
    pub timestamp: i64,
    /// The address of the peer it goes to, when known (an inbound peer's is not said).
    pub receiver: Option<SocketAddr>,
    /// Random; detects connections to oneself.
    pub nonce: u64,
    /// BIP 14 user agent.
    pub user_agent: String,
    /// The sender's best height.
    pub start_height: u32,
    /// Whether to announce transactions (BIP 37).
    pub relay: bool,
}

/// "No address" (`::`, port 0), what a peer that does not listen says about itself.
pub fn unspecified_address() -> Address {
    Address {
        services: ServiceFlags::NONE,
        address: [0; 8],
        port: 0,
    }
}

/// rust-bitcoin's `version` message with our [`PROTOCOL_VERSION`].
pub fn version_message(fields: VersionFields) -> VersionMessage {
    VersionMessage {
        version: PROTOCOL_VERSION,
        services: fields.services,
        timestamp: fields.timestamp,
        receiver: fields.receiver.map_or_else(unspecified_address, |addr| {
            Address::new(&addr, ServiceFlags::NONE)
        }),
        sender: unspecified_address(),
        nonce: fields.nonce,
        user_agent: fields.user_agent,
        start_height: i32::try_from(fields.start_height).unwrap_or(i32::MAX),
        relay: fields.relay,
    }
}

/// `getheaders` for the headers after the first of `locator` the peer knows, as many as it
/// sends (a zero stop hash).
pub fn get_headers(locator: Vec<BlockHash>) -> NetworkMessage {
    NetworkMessage::GetHeaders(GetHeadersMessage {
        version: PROTOCOL_VERSION,
        locator_hashes: locator,
        stop_hash: BlockHash::all_zeros(),
    })
}
