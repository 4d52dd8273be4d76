//! Name resolution natively: `getaddrinfo(3)`, its failures sorted into the front end's
//! [`LookupFailure`] so they read the same as on every other host.

use std::io;
use std::net::SocketAddr;

use crate::error_text::LookupFailure;

/// `getaddrinfo(3)` for TCP addresses of `host` (the front end checked it is a DNS name),
/// called directly: the standard library's lookup keeps only `gai_strerror`'s text, which
/// differs by libc, and drops the `EAI_*` code that says which failure it was.
#[cfg(unix)]
pub(crate) fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    use std::ffi::CString;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    use std::ptr;

    // The front end let through only ASCII letters, digits, '-', '_' and '.'.
    let name = CString::new(host).map_err(|_| LookupFailure::NoSuchName.into_io())?;
    // SAFETY: `addrinfo` is plain data; all zeroes is a valid value (null pointers, no flags,
    // AF_UNSPEC).
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = ptr::null_mut();
    // SAFETY: `name` is a NUL-terminated string, `hints` a valid addrinfo, `list` a valid
    // place for the result; the service is null (the port is set below).
    let code = unsafe { libc::getaddrinfo(name.as_ptr(), ptr::null(), &hints, &mut list) };
    if code != 0 {
        return Err(lookup_failed(code));
    }
    let mut addrs = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getaddrinfo returned, not yet freed.
        let info = unsafe { &*entry };
        if !info.ai_addr.is_null() {
            match info.ai_family {
                libc::AF_INET => {
                    // SAFETY: an AF_INET entry's address is a sockaddr_in.
                    let v4 =
                        unsafe { ptr::read_unaligned(info.ai_addr as *const libc::sockaddr_in) };
                    let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
                    addrs.push(SocketAddr::V4(SocketAddrV4::new(ip, port)));
                }
                libc::AF_INET6 => {
                    // SAFETY: an AF_INET6 entry's address is a sockaddr_in6.
                    let v6 =
                        unsafe { ptr::read_unaligned(info.ai_addr as *const libc::sockaddr_in6) };
                    let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
                    addrs.push(SocketAddr::V6(SocketAddrV6::new(
                        ip,
                        port,
                        v6.sin6_flowinfo,
                        v6.sin6_scope_id,
                    )));
                }
                _ => {}
            }
        }
        entry = info.ai_next;
    }
    // SAFETY: `list` came from a successful getaddrinfo and is freed once; `info` borrows
    // ended with the loop.
    unsafe { libc::freeaddrinfo(list) };
    if addrs.is_empty() {
        return Err(LookupFailure::NoSuchName.into_io());
    }
    Ok(addrs)
}

/// A failed `getaddrinfo`, by its `EAI_*` code.
#[cfg(unix)]
fn lookup_failed(code: i32) -> io::Error {
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    let no_data = [libc::EAI_NODATA];
    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    let no_data: [i32; 0] = [];
    match code {
        libc::EAI_SYSTEM => io::Error::last_os_error(),
        libc::EAI_MEMORY => io::Error::from_raw_os_error(libc::ENOMEM),
        libc::EAI_NONAME => LookupFailure::NoSuchName.into_io(),
        libc::EAI_AGAIN => LookupFailure::Temporary.into_io(),
        code if no_data.contains(&code) => LookupFailure::NoSuchName.into_io(),
        _ => LookupFailure::Permanent.into_io(),
    }
}

/// `getaddrinfo` through the standard library, whose errors on Windows are Winsock's codes:
/// those of a failed lookup are sorted into the front end's words.
#[cfg(windows)]
pub(crate) fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    use windows_sys::Win32::Networking::WinSock as ws;

    let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(err) => {
            return Err(match err.raw_os_error() {
                Some(ws::WSAHOST_NOT_FOUND | ws::WSANO_DATA) => LookupFailure::NoSuchName.into_io(),
                Some(ws::WSATRY_AGAIN) => LookupFailure::Temporary.into_io(),
                Some(ws::WSANO_RECOVERY) => LookupFailure::Permanent.into_io(),
                _ => err,
            })
        }
    };
    if addrs.is_empty() {
        return Err(LookupFailure::NoSuchName.into_io());
    }
    Ok(addrs)
}
