//! Addresses: `std::net` ⇄ `wasi:sockets/types`, the socket's own and its peer's, and name
//! resolution.

use std::io;
use std::net::SocketAddr;

use wasip3::sockets::ip_name_lookup::{self, resolve_addresses};
use wasip3::sockets::types::{IpAddress, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress};

use super::super::addr::{address_conversions, literal, lookup_failed, LookupCode};
use super::entry::may_block;
use super::errno::{connection_error_code_to_io, error_code_to_io};
use super::Socket;

address_conversions!();

/// `get-local-address`.
pub(crate) fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket
        .lock()
        .tcp()
        .get_local_address()
        .map(from_wasi_addr)
        .map_err(error_code_to_io)
}

/// `get-remote-address`; `ENOTCONN` when not connected, as natively.
pub(crate) fn peer_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket
        .lock()
        .tcp()
        .get_remote_address()
        .map(from_wasi_addr)
        .map_err(connection_error_code_to_io)
}

/// Literal addresses resolve to themselves; names go through `wasi:sockets/ip-name-lookup`
/// (one async call, waited for here).
pub(crate) fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Some(addrs) = literal(host, port) {
        return Ok(addrs);
    }
    may_block()?;
    let found = wasip3::wit_bindgen::block_on(resolve_addresses(host.to_owned()));
    let ips = found.map_err(lookup_error)?;
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(from_wasi_ip(ip), port))
        .collect())
}

/// A failed lookup, sorted for the words every host shares.
fn lookup_error(code: ip_name_lookup::ErrorCode) -> io::Error {
    use ip_name_lookup::ErrorCode as Code;
    lookup_failed(match code {
        Code::AccessDenied | Code::PermanentResolverFailure => LookupCode::Refused,
        Code::NameUnresolvable => LookupCode::NameUnresolvable,
        Code::TemporaryResolverFailure => LookupCode::Temporary,
        Code::InvalidArgument => LookupCode::InvalidArgument,
        Code::Other(_) => LookupCode::Other,
    })
}
