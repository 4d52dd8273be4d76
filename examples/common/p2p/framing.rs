//! Bitcoin P2P wire format: the 24-byte message header, its checksum, compact sizes, and the
//! few payloads a headers-only peer speaks (`version`, `ping`/`pong`, `getheaders`, `headers`).
//!
//! Nothing here touches a socket: the light client, the node and their embedded peers read and
//! write bytes through `bitcoin-sock` and use this module to make sense of them. Every decoder
//! works on a slice that is already in memory and fails with a [`FrameError`] instead of
//! panicking, and nothing is allocated from a length the peer sent until that length has been
//! checked.
//!
//! The block header and its hash are rust-bitcoin's (`bitcoin-primitives`, encoded with
//! `bitcoin-consensus-encoding`); the messages around them are written out here, because
//! rust-bitcoin's P2P message types only come with the `bitcoin` crate, whose secp256k1 C code
//! does not build for `wasm32-wasip2`.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};

pub use bitcoin_primitives::{BlockHash, BlockHeader};

/// Message header length: magic (4), command (12), payload length (4), checksum (4).
pub const HEADER_LEN: usize = 24;

/// Length of the NUL-padded command name in a message header.
pub const COMMAND_LEN: usize = 12;

/// The largest payload accepted: Core's `MAX_PROTOCOL_MESSAGE_LENGTH` (4,000,000 bytes; the
/// largest message a headers-only peer needs, `headers`, is 162,003). Longer ones are rejected
/// from the header alone, before a byte of payload is read or a buffer is allocated for it, so
/// a peer's receive buffer never holds more than one header and this.
pub const MAX_PAYLOAD: u32 = 4_000_000;

/// The protocol version this client speaks (70016: `wtxidrelay`, BIP 339).
pub const PROTOCOL_VERSION: i32 = 70016;

/// Most headers in one `headers` message (Core's `MAX_HEADERS_RESULTS`).
pub const MAX_HEADERS: usize = 2000;

/// Most hashes in a block locator (Core's `MAX_LOCATOR_SZ`).
pub const MAX_LOCATOR: usize = 101;

/// Longest user agent accepted (Core's `MAX_SUBVERSION_LENGTH`).
pub const MAX_USER_AGENT: usize = 256;

/// Length of a serialized block header.
pub const BLOCK_HEADER_LEN: usize = 80;

/// A network's message start bytes, in wire order.
pub type Magic = [u8; 4];

/// Double SHA-256, the hash of message checksums.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    bitcoin_hashes::sha256d::hash(data).to_byte_array()
}

/// A payload's checksum: the first four bytes of its double SHA-256.
pub fn checksum(payload: &[u8]) -> [u8; 4] {
    let hash = sha256d(payload);
    [hash[0], hash[1], hash[2], hash[3]]
}

/// Lower-case hex of `bytes` in the order given (magic bytes, checksums).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
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
    /// The command is not printable ASCII followed only by NUL padding.
    BadCommand {
        /// The 12 bytes found.
        command: [u8; COMMAND_LEN],
    },
    /// The header announces a payload longer than [`MAX_PAYLOAD`].
    Oversized {
        /// The message's command.
        command: String,
        /// The announced length.
        length: u32,
    },
    /// The payload does not hash to the header's checksum.
    BadChecksum {
        /// The message's command.
        command: String,
        /// The checksum in the header.
        expected: [u8; 4],
        /// The checksum of the payload that arrived.
        computed: [u8; 4],
    },
    /// A payload ended before a field it must contain.
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A count or length is over its protocol limit.
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The count found.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A compact size was not in its shortest encoding (Core rejects those).
    NonCanonicalCompactSize {
        /// The value.
        value: u64,
    },
    /// A payload had bytes after its last field.
    TrailingBytes {
        /// The payload.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// A header in a `headers` message claims transactions (it must say 0).
    HeaderWithTransactions {
        /// The header's position in the message.
        index: usize,
        /// The transaction count it claims.
        count: u64,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadMagic { expected, found } => write!(
                f,
                "bad magic {} where {} was expected",
                to_hex(found),
                to_hex(expected)
            ),
            FrameError::BadCommand { command } => {
                write!(
                    f,
                    "malformed command {:?}",
                    String::from_utf8_lossy(command)
                )
            }
            FrameError::Oversized { command, length } => write!(
                f,
                "{command:?} payload of {length} bytes is over the limit of {MAX_PAYLOAD} bytes"
            ),
            FrameError::BadChecksum {
                command,
                expected,
                computed,
            } => write!(
                f,
                "bad checksum of {command:?}: the header says {}, the payload hashes to {}",
                to_hex(expected),
                to_hex(computed)
            ),
            FrameError::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "truncated payload: {what} needs {needed} bytes, only {available} left"
            ),
            FrameError::TooMany { what, count, max } => {
                write!(f, "{count} {what} where at most {max} are allowed")
            }
            FrameError::NonCanonicalCompactSize { value } => {
                write!(f, "non-canonical compact size for {value}")
            }
            FrameError::TrailingBytes { what, count } => {
                write!(f, "{count} unexpected bytes after the {what}")
            }
            FrameError::HeaderWithTransactions { index, count } => write!(
                f,
                "header {index} of a headers message claims {count} transactions (must be 0)"
            ),
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
    /// The header of a message carrying `payload`. `command` is at most 12 ASCII bytes (every
    /// command of this module is); a longer one is cut.
    pub fn new(magic: Magic, command: &str, payload: &[u8]) -> MessageHeader {
        let mut padded = [0u8; COMMAND_LEN];
        let name = command.as_bytes();
        let len = name.len().min(COMMAND_LEN);
        padded[..len].copy_from_slice(&name[..len]);
        MessageHeader {
            magic,
            command: padded,
            // Payloads built here are far below 4 GiB; saturate rather than wrap regardless.
            length: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            checksum: checksum(payload),
        }
    }

    /// The 24 wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(&self.magic);
        bytes[4..16].copy_from_slice(&self.command);
        bytes[16..20].copy_from_slice(&self.length.to_le_bytes());
        bytes[20..24].copy_from_slice(&self.checksum);
        bytes
    }

    /// Reads 24 wire bytes and checks them against `magic`, in Core's order: the magic, the
    /// command, then the announced length, which must be at most [`MAX_PAYLOAD`] — so a caller
    /// that allocates the payload only after this succeeded never allocates more than that.
    pub fn decode(bytes: &[u8; HEADER_LEN], magic: Magic) -> Result<MessageHeader, FrameError> {
        let mut reader = Reader::new(bytes);
        let header = MessageHeader {
            magic: reader.array("magic")?,
            command: reader.array("command")?,
            length: reader.u32("payload length")?,
            checksum: reader.array("checksum")?,
        };
        if header.magic != magic {
            return Err(FrameError::BadMagic {
                expected: magic,
                found: header.magic,
            });
        }
        let command = header.command()?.to_owned();
        if header.length > MAX_PAYLOAD {
            return Err(FrameError::Oversized {
                command,
                length: header.length,
            });
        }
        Ok(header)
    }

    /// The command without its padding. Like Core's `IsMessageTypeValid`: printable ASCII
    /// (space to `~`), then only NULs.
    pub fn command(&self) -> Result<&str, FrameError> {
        let bad = || FrameError::BadCommand {
            command: self.command,
        };
        let end = self
            .command
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(COMMAND_LEN);
        let (name, padding) = self.command.split_at(end);
        if padding.iter().any(|&byte| byte != 0)
            || !name.iter().all(|byte| (b' '..=b'~').contains(byte))
        {
            return Err(bad());
        }
        std::str::from_utf8(name).map_err(|_| bad())
    }

    /// Checks that `payload` hashes to this header's checksum.
    pub fn verify(&self, payload: &[u8]) -> Result<(), FrameError> {
        let computed = checksum(payload);
        if computed != self.checksum {
            return Err(FrameError::BadChecksum {
                command: self.command().unwrap_or("?").to_owned(),
                expected: self.checksum,
                computed,
            });
        }
        Ok(())
    }
}

/// A whole message: header and payload bytes.
pub fn encode_message(magic: Magic, command: &str, payload: &[u8]) -> Vec<u8> {
    let header = MessageHeader::new(magic, command, payload);
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(&header.encode());
    bytes.extend_from_slice(payload);
    bytes
}

/// A message taken off the wire, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The command, e.g. `"version"`.
    pub command: String,
    /// The payload, whose checksum matched.
    pub payload: Vec<u8>,
}

/// Takes the first message off `buffer` (a stream's bytes so far): `Ok(None)` while it is
/// incomplete, else the message and how many bytes it used. The header is checked as soon as
/// its 24 bytes are there, so a bad magic or an oversized length fails without waiting for
/// (or buffering) the payload it announces.
pub fn parse_message(buffer: &[u8], magic: Magic) -> Result<Option<(Message, usize)>, FrameError> {
    let Some(header_bytes) = buffer.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = MessageHeader::decode(header_bytes, magic)?;
    // At most MAX_PAYLOAD, checked by decode: fits usize on every target (32-bit included).
    let total = HEADER_LEN + header.length as usize;
    let Some(payload) = buffer.get(HEADER_LEN..total) else {
        return Ok(None);
    };
    header.verify(payload)?;
    let message = Message {
        command: header.command()?.to_owned(),
        payload: payload.to_vec(),
    };
    Ok(Some((message, total)))
}

/// Appends `value` as a compact size: 1 byte below 0xfd, else a marker (0xfd, 0xfe, 0xff) and
/// 2, 4 or 8 little-endian bytes.
pub fn write_compact_size(out: &mut Vec<u8>, value: u64) {
    match value {
        0..=0xfc => out.push(value as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(value as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(value as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// Reads fields off a payload in order; every read fails with [`FrameError::Truncated`]
/// instead of running past the end.
pub struct Reader<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, position: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.position
    }

    /// The next `len` bytes.
    pub fn bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        let available = self.remaining();
        if len > available {
            return Err(FrameError::Truncated {
                what,
                needed: len,
                available,
            });
        }
        let bytes = &self.data[self.position..self.position + len];
        self.position += len;
        Ok(bytes)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FrameError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.bytes(N, what)?);
        Ok(array)
    }

    /// A byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, FrameError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, FrameError> {
        self.array(what).map(u32::from_le_bytes)
    }

    /// A little-endian `i32`.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, FrameError> {
        self.array(what).map(i32::from_le_bytes)
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, FrameError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A little-endian `i64`.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, FrameError> {
        self.array(what).map(i64::from_le_bytes)
    }

    /// A compact size, which must be in its shortest form.
    pub fn compact_size(&mut self, what: &'static str) -> Result<u64, FrameError> {
        let (value, min) = match self.u8(what)? {
            0xfd => (u64::from(u16::from_le_bytes(self.array(what)?)), 0xfd),
            0xfe => (u64::from(u32::from_le_bytes(self.array(what)?)), 0x1_0000),
            0xff => (u64::from_le_bytes(self.array(what)?), 0x1_0000_0000),
            small => return Ok(u64::from(small)),
        };
        if value < min {
            return Err(FrameError::NonCanonicalCompactSize { value });
        }
        Ok(value)
    }

    /// A compact-size count of items at most `max`; fails before anything is allocated for
    /// a count above it.
    pub fn count(&mut self, what: &'static str, max: usize) -> Result<usize, FrameError> {
        let count = self.compact_size(what)?;
        match usize::try_from(count) {
            Ok(count) if count <= max => Ok(count),
            _ => Err(FrameError::TooMany {
                what,
                count,
                max: max as u64,
            }),
        }
    }

    /// Fails if anything is left: `what` is the payload's name.
    pub fn finish(self, what: &'static str) -> Result<(), FrameError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(FrameError::TrailingBytes { what, count }),
        }
    }
}

/// A network address as in a `version` message: services, IPv6 (IPv4-mapped for IPv4) and a
/// big-endian port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetAddress {
    /// The services the address is said to offer.
    pub services: u64,
    /// The IP address; IPv4 addresses are IPv4-mapped.
    pub ip: Ipv6Addr,
    /// The port.
    pub port: u16,
}

impl NetAddress {
    /// Length on the wire.
    pub const LEN: usize = 26;

    /// "No address" (`::`, port 0), what a client that does not listen says about itself.
    pub const UNSPECIFIED: NetAddress = NetAddress {
        services: 0,
        ip: Ipv6Addr::UNSPECIFIED,
        port: 0,
    };

    /// `addr` with no services claimed.
    pub fn from_socket_addr(addr: SocketAddr) -> NetAddress {
        let ip = match addr {
            SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
            SocketAddr::V6(v6) => *v6.ip(),
        };
        NetAddress {
            services: 0,
            ip,
            port: addr.port(),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.services.to_le_bytes());
        out.extend_from_slice(&self.ip.octets());
        out.extend_from_slice(&self.port.to_be_bytes());
    }

    fn decode(reader: &mut Reader<'_>) -> Result<NetAddress, FrameError> {
        Ok(NetAddress {
            services: reader.u64("address services")?,
            ip: Ipv6Addr::from(reader.array::<16>("address IP")?),
            port: u16::from_be_bytes(reader.array("address port")?),
        })
    }
}

/// The `version` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMessage {
    /// Protocol version.
    pub version: i32,
    /// Services the sender offers (0: none, a light client).
    pub services: u64,
    /// The sender's clock, seconds since 1970.
    pub timestamp: i64,
    /// The receiver's address as the sender sees it.
    pub receiver: NetAddress,
    /// The sender's own address.
    pub sender: NetAddress,
    /// Random; detects connections to oneself.
    pub nonce: u64,
    /// E.g. `/Satoshi:27.0.0/` (BIP 14).
    pub user_agent: String,
    /// The sender's best height.
    pub start_height: i32,
    /// Whether to announce transactions (BIP 37); true when absent, as Core reads it.
    pub relay: bool,
}

impl VersionMessage {
    /// Payload length of the fixed fields (85 bytes); a user agent of `n` < 253 bytes adds
    /// `1 + n` (its compact-size length and its bytes).
    pub const FIXED_LEN: usize = 4 + 8 + 8 + 2 * NetAddress::LEN + 8 + 4 + 1;

    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::FIXED_LEN + 1 + self.user_agent.len());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.services.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        self.receiver.encode(&mut out);
        self.sender.encode(&mut out);
        out.extend_from_slice(&self.nonce.to_le_bytes());
        write_compact_size(&mut out, self.user_agent.len() as u64);
        out.extend_from_slice(self.user_agent.as_bytes());
        out.extend_from_slice(&self.start_height.to_le_bytes());
        out.push(u8::from(self.relay));
        out
    }

    /// Reads a `version` payload. Fields after the relay flag (none are defined) are ignored,
    /// as Core does, so newer peers are not rejected.
    pub fn decode(payload: &[u8]) -> Result<VersionMessage, FrameError> {
        let mut reader = Reader::new(payload);
        let version = reader.i32("version")?;
        let services = reader.u64("services")?;
        let timestamp = reader.i64("timestamp")?;
        let receiver = NetAddress::decode(&mut reader)?;
        let sender = NetAddress::decode(&mut reader)?;
        let nonce = reader.u64("nonce")?;
        let user_agent_len = reader.count("user agent bytes", MAX_USER_AGENT)?;
        let user_agent = String::from_utf8_lossy(reader.bytes(user_agent_len, "user agent")?);
        let start_height = reader.i32("start height")?;
        let relay = match reader.remaining() {
            0 => true,
            _ => reader.u8("relay")? != 0,
        };
        Ok(VersionMessage {
            version,
            services,
            timestamp,
            receiver,
            sender,
            nonce,
            user_agent: user_agent.into_owned(),
            start_height,
            relay,
        })
    }
}

/// The payload of `ping` and `pong`: a nonce.
pub fn encode_nonce(nonce: u64) -> [u8; 8] {
    nonce.to_le_bytes()
}

/// Reads a `ping`/`pong` payload; `None` for the empty payload of pre-BIP 31 pings.
pub fn decode_nonce(payload: &[u8]) -> Result<Option<u64>, FrameError> {
    if payload.is_empty() {
        return Ok(None);
    }
    let mut reader = Reader::new(payload);
    let nonce = reader.u64("nonce")?;
    reader.finish("nonce")?;
    Ok(Some(nonce))
}

/// The `getheaders` message: "send me the headers after the first of these I know".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetHeaders {
    /// Protocol version.
    pub version: u32,
    /// Block locator: hashes from the tip back to genesis.
    pub locator: Vec<BlockHash>,
    /// Last header wanted; all zero for "as many as you send" (2,000).
    pub stop: BlockHash,
}

impl GetHeaders {
    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 9 + 32 * (self.locator.len() + 1));
        out.extend_from_slice(&self.version.to_le_bytes());
        write_compact_size(&mut out, self.locator.len() as u64);
        for hash in &self.locator {
            out.extend_from_slice(hash.as_byte_array());
        }
        out.extend_from_slice(self.stop.as_byte_array());
        out
    }

    /// Reads a `getheaders` payload.
    pub fn decode(payload: &[u8]) -> Result<GetHeaders, FrameError> {
        let mut reader = Reader::new(payload);
        let version = reader.u32("version")?;
        let count = reader.count("locator hashes", MAX_LOCATOR)?;
        let locator = (0..count)
            .map(|_| reader.array("locator hash").map(BlockHash::from_byte_array))
            .collect::<Result<Vec<BlockHash>, _>>()?;
        let stop = BlockHash::from_byte_array(reader.array("stop hash")?);
        reader.finish("getheaders payload")?;
        Ok(GetHeaders {
            version,
            locator,
            stop,
        })
    }
}

/// The 80 wire bytes of `header`.
pub fn encode_header(header: &BlockHeader) -> Vec<u8> {
    bitcoin_consensus_encoding::encode_to_vec(header)
}

/// Reads one 80-byte block header.
fn decode_header(reader: &mut Reader<'_>) -> Result<BlockHeader, FrameError> {
    let bytes = reader.bytes(BLOCK_HEADER_LEN, "block header")?;
    // Any 80 bytes are a header (every field is a fixed-size integer or hash), so the decoder
    // cannot fail on them; were it to, the header would still be refused, not accepted.
    bitcoin_consensus_encoding::decode_from_slice::<BlockHeader>(bytes).map_err(|_| {
        FrameError::Truncated {
            what: "block header",
            needed: BLOCK_HEADER_LEN,
            available: bytes.len(),
        }
    })
}

/// The payload of a `headers` message: a count, then each header followed by a transaction
/// count of 0.
pub fn encode_headers(headers: &[BlockHeader]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + headers.len() * (BLOCK_HEADER_LEN + 1));
    write_compact_size(&mut out, headers.len() as u64);
    for header in headers {
        out.extend_from_slice(&encode_header(header));
        write_compact_size(&mut out, 0);
    }
    out
}

/// Reads a `headers` payload: at most [`MAX_HEADERS`] headers, each with a transaction count
/// of 0, nothing after the last.
pub fn decode_headers(payload: &[u8]) -> Result<Vec<BlockHeader>, FrameError> {
    let mut reader = Reader::new(payload);
    let count = reader.count("headers", MAX_HEADERS)?;
    let mut headers = Vec::with_capacity(count);
    for index in 0..count {
        headers.push(decode_header(&mut reader)?);
        let transactions = reader.compact_size("transaction count")?;
        if transactions != 0 {
            return Err(FrameError::HeaderWithTransactions {
                index,
                count: transactions,
            });
        }
    }
    reader.finish("headers payload")?;
    Ok(headers)
}
