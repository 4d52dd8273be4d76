//! For backends whose sockets are IP only (native Windows, WASI preview 2, targets without
//! sockets): the Unix-domain calls fail with `ErrorKind::Unsupported`, and the general address
//! calls give the IP addresses of the backend's own `local_addr`, `peer_addr` and `accept`.
//!
//! (Windows has `AF_UNIX` since 10 1803; this crate does not use it there yet. WASI 0.2 has
//! no Unix-domain sockets.)

use std::io;
use std::time::Duration;

use super::Socket;
use crate::error::unsupported;
use crate::{SockAddress, UnixAddress};

const UNIX_DOMAIN: &str = "Unix-domain sockets";

pub(crate) fn connect_unix(_addr: &UnixAddress, _timeout: Duration) -> io::Result<Socket> {
    Err(unsupported(UNIX_DOMAIN))
}

pub(crate) fn bind_unix(_addr: &UnixAddress) -> io::Result<Socket> {
    Err(unsupported(UNIX_DOMAIN))
}

pub(crate) fn local_address(socket: &Socket) -> io::Result<SockAddress> {
    super::local_addr(socket).map(SockAddress::Ip)
}

pub(crate) fn peer_address(socket: &Socket) -> io::Result<SockAddress> {
    super::peer_addr(socket).map(SockAddress::Ip)
}

pub(crate) fn accept_address(socket: &Socket) -> io::Result<(Socket, SockAddress)> {
    let (peer, addr) = super::accept(socket)?;
    Ok((peer, SockAddress::Ip(addr)))
}
