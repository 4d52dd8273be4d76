//! Addresses as text: Core's `SplitHostPort` ([`split_host_port`]), and `FromStr` for
//! [`SockAddress`] and [`UnixAddress`], the inverse of their `Display`.
//!
//! Malformed text is an `InvalidInput` error that quotes it and says what is wrong (no port,
//! unmatched brackets, a port out of range, ...), on every target alike.

use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::{SockAddress, UnixAddress};

/// The prefix of Core's Unix-domain form, `-proxy=unix:/run/tor/socks`.
const UNIX_PREFIX: &str = "unix:";

/// What [`UnixAddress::Unnamed`] prints after the prefix.
const UNNAMED: &str = "(unnamed)";

/// The error of malformed address text.
fn invalid(text: &str, reason: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid address {text:?}: {reason}"),
    )
}

/// Splits `"host:port"` or `"[ipv6]:port"` into the host and the port (Core's
/// `SplitHostPort`, stricter: the port is required, and only an IPv6 address goes in
/// brackets). The host is not looked up: it is a name or an IP address as written, without
/// the brackets.
///
/// ```
/// use bitcoin_sock::split_host_port;
///
/// assert_eq!(split_host_port("seed.bitcoin.sipa.be:8333")?, ("seed.bitcoin.sipa.be", 8333));
/// assert_eq!(split_host_port("[::1]:18444")?, ("::1", 18444));
/// let err = split_host_port("::1:8333").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// assert_eq!(err.to_string(), r#"invalid address "::1:8333": an IPv6 address goes in brackets, "[::1]:8333""#);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// `InvalidInput`, quoting `dest`: empty; no port (`"127.0.0.1"`, `"[::1]"`); an empty host
/// (`":8333"`); an unmatched bracket or text between `]` and `:`; brackets around anything
/// but an IPv6 address; an IPv6 address without brackets; a port that is not a number or is
/// above 65535.
pub fn split_host_port(dest: &str) -> io::Result<(&str, u16)> {
    if dest.is_empty() {
        return Err(invalid(dest, "empty"));
    }
    let (host, port) = if let Some(rest) = dest.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(invalid(dest, "'[' without ']'"));
        };
        if host.parse::<Ipv6Addr>().is_err() && !is_scoped_ipv6(host) {
            return Err(invalid(dest, "only an IPv6 address goes in brackets"));
        }
        let Some(port) = after.strip_prefix(':') else {
            let reason = if after.is_empty() {
                "no port (host:port, [IPv6]:port)"
            } else {
                "':' and the port must follow ']'"
            };
            return Err(invalid(dest, reason));
        };
        (host, port)
    } else {
        let Some((host, port)) = dest.rsplit_once(':') else {
            return Err(invalid(dest, "no port (host:port, [IPv6]:port)"));
        };
        if host.contains(['[', ']']) {
            return Err(invalid(dest, "']' without '['"));
        }
        if host.contains(':') {
            let hint = format!("an IPv6 address goes in brackets, \"[{host}]:{port}\"");
            return Err(invalid(dest, &hint));
        }
        if host.is_empty() {
            return Err(invalid(dest, "no host before the port"));
        }
        (host, port)
    };
    Ok((host, parse_port(dest, port)?))
}

/// An IPv6 address with a zone (`fe80::1%2`), as `SocketAddrV6` writes it.
fn is_scoped_ipv6(host: &str) -> bool {
    host.split_once('%')
        .is_some_and(|(ip, zone)| ip.parse::<Ipv6Addr>().is_ok() && zone.parse::<u32>().is_ok())
}

fn parse_port(dest: &str, port: &str) -> io::Result<u16> {
    if port.is_empty() {
        return Err(invalid(dest, "no port after ':'"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(dest, &format!("port {port:?} is not a number")));
    }
    port.parse()
        .map_err(|_| invalid(dest, &format!("port {port} is out of range (0 to 65535)")))
}

/// Parses what `Display` prints: `127.0.0.1:8333`, `[::1]:8333` (with a numeric zone,
/// `[fe80::1%2]:8333`), or Core's Unix-domain form `unix:<path>` (also `unix:@<name>` and
/// `unix:(unnamed)`, see [`UnixAddress`]'s `FromStr`). A host name is refused: it names no
/// address until it is looked up ([`resolve`](crate::resolve),
/// [`Sock::connect_by_name`](crate::Sock::connect_by_name)).
///
/// ```
/// use bitcoin_sock::{SockAddress, UnixAddress};
///
/// for text in ["127.0.0.1:8333", "[::1]:18444", "unix:/run/tor/socks"] {
///     assert_eq!(text.parse::<SockAddress>()?.to_string(), text);
/// }
/// assert_eq!(
///     "unix:/run/tor/socks".parse::<SockAddress>()?,
///     SockAddress::Unix(UnixAddress::path("/run/tor/socks"))
/// );
/// assert!("localhost:8333".parse::<SockAddress>().is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
impl FromStr for SockAddress {
    type Err = io::Error;

    /// # Errors
    /// `InvalidInput` for malformed text (as [`split_host_port`] and
    /// [`UnixAddress`]'s `FromStr` say) and for a host name.
    fn from_str(text: &str) -> io::Result<SockAddress> {
        if text.starts_with(UNIX_PREFIX) {
            return text.parse().map(SockAddress::Unix);
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(SockAddress::Ip(addr));
        }
        // Not an IP address: say why.
        let (host, _) = split_host_port(text)?;
        Err(invalid(
            text,
            &format!("{host:?} is no IP address (a name is looked up: connect_by_name, resolve)"),
        ))
    }
}

/// Parses what `Display` prints: `unix:<path>` (Core's form), `unix:@<name>` for a name in
/// Linux's abstract namespace (`\xNN`, `\n`, `\t`, `\r`, `\\`, `\'` and `\"` escapes, as
/// `Display` writes its bytes), and `unix:(unnamed)`. A path that starts with `@` or is
/// `(unnamed)` is written with a leading `./`.
///
/// ```
/// use bitcoin_sock::UnixAddress;
///
/// assert_eq!("unix:/run/tor/socks".parse::<UnixAddress>()?, UnixAddress::path("/run/tor/socks"));
/// assert_eq!(r"unix:@bitcoind\x00".parse::<UnixAddress>()?, UnixAddress::abstract_name(*b"bitcoind\0"));
/// assert_eq!("unix:(unnamed)".parse::<UnixAddress>()?, UnixAddress::Unnamed);
/// # Ok::<(), std::io::Error>(())
/// ```
impl FromStr for UnixAddress {
    type Err = io::Error;

    /// # Errors
    /// `InvalidInput`: no `unix:` prefix, nothing after it, or a malformed escape in an
    /// abstract name.
    fn from_str(text: &str) -> io::Result<UnixAddress> {
        let Some(rest) = text.strip_prefix(UNIX_PREFIX) else {
            return Err(invalid(text, "a Unix-domain address starts with \"unix:\""));
        };
        if rest.is_empty() {
            return Err(invalid(text, "no path after \"unix:\""));
        }
        if rest == UNNAMED {
            return Ok(UnixAddress::Unnamed);
        }
        match rest.strip_prefix('@') {
            Some(name) => unescape(name)
                .map(UnixAddress::Abstract)
                .ok_or_else(|| invalid(text, "a malformed escape in the abstract name")),
            None => Ok(UnixAddress::path(rest)),
        }
    }
}

/// The bytes that `<[u8]>::escape_ascii` wrote as `text`; `None` for a malformed escape.
fn unescape(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.bytes();
    while let Some(byte) = rest.next() {
        if byte != b'\\' {
            bytes.push(byte);
            continue;
        }
        bytes.push(match rest.next()? {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'0' => b'\0',
            quoted @ (b'\\' | b'\'' | b'"') => quoted,
            b'x' => {
                let high = (rest.next()? as char).to_digit(16)?;
                let low = (rest.next()? as char).to_digit(16)?;
                // Two hex digits: at most 0xff.
                (high * 16 + low) as u8
            }
            _ => return None,
        });
    }
    Some(bytes)
}
