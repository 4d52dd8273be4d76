//! Addresses: `std::net` ⇄ `wasi:sockets/network`, the socket's own and its peer's, and
//! name resolution.

use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;

use wasi::sockets::instance_network::instance_network;
use wasi::sockets::ip_name_lookup::{resolve_addresses, IpAddress};
use wasi::sockets::network::{
    ErrorCode, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, Network,
};

use super::super::addr::{address_conversions, literal, lookup_failed, LookupCode};
use super::errno::{connection_error_code_to_io, error_code_to_io};
use super::Socket;

pub(super) fn network() -> &'static Network {
    static NETWORK: OnceLock<Network> = OnceLock::new();
    NETWORK.get_or_init(instance_network)
}

address_conversions!();

/// `local-address`.
pub(crate) fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket
        .tcp()
        .local_address()
        .map(from_wasi_addr)
        .map_err(error_code_to_io)
}

/// `remote-address`; `ENOTCONN` when not connected, as natively.
pub(crate) fn peer_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket
        .tcp()
        .remote_address()
        .map(from_wasi_addr)
        .map_err(connection_error_code_to_io)
}

/// Literal addresses resolve to themselves; names go through `wasi:sockets/ip-name-lookup`.
pub(crate) fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Some(addrs) = literal(host, port) {
        return Ok(addrs);
    }
    let stream = resolve_addresses(network(), host).map_err(lookup_error)?;
    let mut addrs = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(ip)) => addrs.push(SocketAddr::new(from_wasi_ip(ip), port)),
            Ok(None) => return Ok(addrs),
            Err(ErrorCode::WouldBlock) => stream.subscribe().block(),
            Err(code) => return Err(lookup_error(code)),
        }
    }
}

/// A failed lookup, sorted for the words every host shares.
fn lookup_error(code: ErrorCode) -> io::Error {
    lookup_failed(match code {
        ErrorCode::AccessDenied | ErrorCode::PermanentResolverFailure => LookupCode::Refused,
        ErrorCode::NameUnresolvable => LookupCode::NameUnresolvable,
        ErrorCode::TemporaryResolverFailure => LookupCode::Temporary,
        ErrorCode::InvalidArgument => LookupCode::InvalidArgument,
        _ => LookupCode::Other,
    })
}
