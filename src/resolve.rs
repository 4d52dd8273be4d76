//! Names to addresses: [`resolve`], with the checks and the failure texts that are the same on
//! every host.

use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::sys;
use crate::OpError;

/// The longest DNS name in its text form (RFC 1035: 255 bytes on the wire).
const MAX_HOST_NAME: usize = 253;

/// Resolves `host` to socket addresses with `port` (Core's `LookupHost`): `getaddrinfo(3)`
/// natively, `wasi:sockets/ip-name-lookup` on WASI. A literal IP address resolves to itself,
/// without a lookup.
///
/// `host` is an IP address or a host name of ASCII letters, digits, `-`, `_` and `.`, at most
/// 253 bytes (an internationalised name in its `xn--` form); anything else is refused before
/// any lookup, on every host alike (the hosts' resolvers disagree on such names: wasmtime
/// refuses them, `getaddrinfo` looks them up).
///
/// # Errors
/// An [`OpError`] that names the operation and `host` (`resolve() of "example.com" failed:
/// ...`) around the failure, whose kind it gives, with the same text on every host (README,
/// "Error texts"):
/// * `InvalidInput`, `invalid host name`, for a `host` that is neither of the above;
/// * `Other` for a name that does not resolve: `Name or service not known`,
///   `Temporary failure in name resolution` or `Non-recoverable failure in name resolution`;
/// * `PermissionDenied` where the host allows no name lookup: on WASI the text says so, and
///   what grants it in wasmtime (`-S allow-ip-name-lookup=y`).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, OpError> {
    let addrs = match host.parse::<IpAddr>() {
        Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
        Err(_) => check_host_name(host).and_then(|()| sys::resolve(host, port)),
    };
    addrs.map_err(|err| OpError::new("resolve", "of", format!("{host:?}"), err))
}

/// Refuses what is neither an IP address nor a DNS name, before a resolver sees it.
fn check_host_name(host: &str) -> io::Result<()> {
    let valid = !host.is_empty()
        && host.len() <= MAX_HOST_NAME
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "invalid host name",
        ))
    }
}
