//! Addresses: `std::net` ⇄ `wasi:sockets`, whose address types are the same records in 0.2 and
//! 0.3 (only their module differs), and the error of a failed name lookup.

use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::error_text::LookupFailure;

/// Defines `to_wasi_addr`, `from_wasi_addr` and `from_wasi_ip` for the `wasi:sockets` address
/// types in scope at the call (`IpSocketAddress`, `Ipv4SocketAddress`, `Ipv6SocketAddress`,
/// `IpAddress`), which 0.2 and 0.3 define alike in different modules.
macro_rules! address_conversions {
    () => {
        pub(super) fn to_wasi_addr(addr: &std::net::SocketAddr) -> IpSocketAddress {
            match addr {
                std::net::SocketAddr::V4(v4) => {
                    let [a, b, c, d] = v4.ip().octets();
                    IpSocketAddress::Ipv4(Ipv4SocketAddress {
                        port: v4.port(),
                        address: (a, b, c, d),
                    })
                }
                std::net::SocketAddr::V6(v6) => {
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

        pub(super) fn from_wasi_addr(addr: IpSocketAddress) -> std::net::SocketAddr {
            use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
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

        /// A resolved address.
        fn from_wasi_ip(ip: IpAddress) -> std::net::IpAddr {
            use std::net::{Ipv4Addr, Ipv6Addr};
            match ip {
                IpAddress::Ipv4((a, b, c, d)) => Ipv4Addr::new(a, b, c, d).into(),
                IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
                    Ipv6Addr::new(a, b, c, d, e, f, g, h).into()
                }
            }
        }
    };
}
pub(super) use address_conversions;

/// A literal address resolves to itself, without a lookup (which wasmtime refuses even for
/// literals without `-S allow-ip-name-lookup`).
pub(super) fn literal(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    host.parse::<IpAddr>()
        .ok()
        .map(|ip| vec![SocketAddr::new(ip, port)])
}

/// What a failed `ip-name-lookup` answered: 0.2 and 0.3 name the same codes in their own types.
pub(super) enum LookupCode {
    /// `access-denied`, or `permanent-resolver-failure`, which wasmtime answers exactly when
    /// the host allows no name lookup (no `-S allow-ip-name-lookup`, or
    /// `allow_ip_name_lookup(false)` embedded), as jco does when its network is denied: a
    /// refusal, not a broken resolver.
    Refused,
    /// `name-unresolvable`.
    NameUnresolvable,
    /// `temporary-resolver-failure`.
    Temporary,
    /// `invalid-argument`: the front end let only DNS names through; the host's check is
    /// stricter.
    InvalidArgument,
    /// Anything else.
    Other,
}

/// A failed `ip-name-lookup`, in the front end's words ([`LookupFailure`]).
pub(super) fn lookup_failed(code: LookupCode) -> io::Error {
    match code {
        LookupCode::Refused => LookupFailure::Refused.into_io(),
        LookupCode::NameUnresolvable => LookupFailure::NoSuchName.into_io(),
        LookupCode::Temporary => LookupFailure::Temporary.into_io(),
        LookupCode::InvalidArgument => {
            io::Error::new(io::ErrorKind::InvalidInput, "invalid host name")
        }
        LookupCode::Other => LookupFailure::Permanent.into_io(),
    }
}
