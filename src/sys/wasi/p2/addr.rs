//! Addresses: `std::net` ⇄ `wasi:sockets/network`, the socket's own and its peer's, and
//! name resolution.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::OnceLock;

use wasi::sockets::instance_network::instance_network;
use wasi::sockets::ip_name_lookup::{resolve_addresses, IpAddress};
use wasi::sockets::network::{
    ErrorCode, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, Network,
};

use super::errno::{connection_error_code_to_io, error_code_to_io};
use super::Socket;

pub(super) fn network() -> &'static Network {
    static NETWORK: OnceLock<Network> = OnceLock::new();
    NETWORK.get_or_init(instance_network)
}

pub(super) fn to_wasi_addr(addr: &SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: v6.port(),
                flow_info: v6.flowinfo(),
                address: (a, b, c, d, e, f, g, h),
                scope_id: v6.scope_id(),
            })
        }
    }
}

pub(super) fn from_wasi_addr(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(v4) => {
            let (a, b, c, d) = v4.address;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), v4.port))
        }
        IpSocketAddress::Ipv6(v6) => {
            let (a, b, c, d, e, f, g, h) = v6.address;
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::new(a, b, c, d, e, f, g, h),
                v6.port,
                v6.flow_info,
                v6.scope_id,
            ))
        }
    }
}

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
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let stream = resolve_addresses(network(), host).map_err(lookup_failed)?;
    let mut addrs = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(IpAddress::Ipv4((a, b, c, d)))) => {
                addrs.push(SocketAddr::new(Ipv4Addr::new(a, b, c, d).into(), port));
            }
            Ok(Some(IpAddress::Ipv6((a, b, c, d, e, f, g, h)))) => {
                addrs.push(SocketAddr::new(
                    Ipv6Addr::new(a, b, c, d, e, f, g, h).into(),
                    port,
                ));
            }
            Ok(None) => return Ok(addrs),
            Err(ErrorCode::WouldBlock) => stream.subscribe().block(),
            Err(code) => return Err(lookup_failed(code)),
        }
    }
}

/// A failed `ip-name-lookup`, in std's words for a failed `getaddrinfo` (the front end names
/// the host), with the closest native kind.
fn lookup_failed(code: ErrorCode) -> io::Error {
    let kind = match code {
        // wasmtime answers permanent-resolver-failure exactly when the host allows no name
        // lookup (no `-S allow-ip-name-lookup`, or `allow_ip_name_lookup(false)` embedded), and
        // jco when its network is denied: a refusal, not a broken resolver.
        ErrorCode::AccessDenied | ErrorCode::PermanentResolverFailure => {
            io::ErrorKind::PermissionDenied
        }
        ErrorCode::InvalidArgument => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::Other,
    };
    let reason = match kind {
        io::ErrorKind::PermissionDenied => "the host allows no name lookup",
        _ => code.message(),
    };
    io::Error::new(
        kind,
        format!(
            "failed to look up address information: {reason} ({})",
            code.name()
        ),
    )
}
