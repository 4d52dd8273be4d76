//! The backend for targets without sockets (`wasm32-unknown-unknown`, `wasm32-wasip1`, ...):
//! everything compiles, every socket operation fails with `ErrorKind::Unsupported`.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use super::PollTarget;
use crate::error::unsupported;
use crate::opt::SetSockOpt;
use crate::{SockEvent, SockOpt, SockOptValue};

/// No socket can exist on this target, so no value of this type can either.
#[derive(Debug)]
pub enum Socket {}

fn fail<T>() -> io::Result<T> {
    Err(unsupported("sockets"))
}

pub(crate) fn adopt(socket: &Socket) -> io::Result<()> {
    match *socket {}
}

pub(crate) fn connect_start(_addr: &SocketAddr) -> io::Result<Socket> {
    fail()
}

pub(crate) fn connect_finish(socket: &Socket) -> io::Result<()> {
    match *socket {}
}

pub(crate) fn bind(_addr: &SocketAddr) -> io::Result<Socket> {
    fail()
}

pub(crate) fn listen(socket: &Socket, _backlog: i32) -> io::Result<()> {
    match *socket {}
}

pub(crate) fn accept(socket: &Socket) -> io::Result<(Socket, SocketAddr)> {
    match *socket {}
}

pub(crate) fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    match *socket {}
}

pub(crate) fn peer_addr(socket: &Socket) -> io::Result<SocketAddr> {
    match *socket {}
}

pub(crate) fn set_non_blocking(socket: &Socket) -> io::Result<()> {
    match *socket {}
}

pub(crate) fn is_selectable(socket: &Socket) -> bool {
    match *socket {}
}

pub(crate) fn shutdown(socket: &Socket, _how: Shutdown) -> io::Result<()> {
    match *socket {}
}

pub(crate) fn reset_on_close(socket: &Socket) -> io::Result<()> {
    match *socket {}
}

pub(crate) fn start_flush(socket: &Socket) -> io::Result<()> {
    match *socket {}
}

pub(crate) fn is_flushed(socket: &Socket) -> bool {
    match *socket {}
}

pub(crate) fn send(socket: &Socket, _data: &[u8]) -> io::Result<usize> {
    match *socket {}
}

pub(crate) fn send_vectored(socket: &Socket, _bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    match *socket {}
}

pub(crate) fn try_clone(socket: &Socket) -> io::Result<Socket> {
    match *socket {}
}

pub(crate) fn recv(socket: &Socket, _buf: &mut [u8]) -> io::Result<usize> {
    match *socket {}
}

pub(crate) fn peek(socket: &Socket, _buf: &mut [u8]) -> io::Result<usize> {
    match *socket {}
}

/// Nothing is refused where nothing is possible.
pub(crate) const NETWORK_REFUSED_HINT: Option<&str> = None;
/// As [`NETWORK_REFUSED_HINT`].
pub(crate) const LOOKUP_REFUSED_HINT: Option<&str> = None;

pub(crate) fn resolve(_host: &str, _port: u16) -> io::Result<Vec<SocketAddr>> {
    fail()
}

pub(crate) fn poll<T: PollTarget>(_targets: &mut [T], _timeout: Duration) -> io::Result<()> {
    fail()
}

pub(crate) fn get_sock_opt(socket: &Socket, _opt: SockOpt) -> io::Result<SockOptValue> {
    match *socket {}
}

pub(crate) fn set_sock_opt(socket: &Socket, _opt: SetSockOpt) -> io::Result<()> {
    match *socket {}
}

/// No socket can be registered where there are none.
pub(crate) enum Registry {}

/// Nothing is ever ready.
pub(crate) struct Readiness;

impl Registry {
    pub(crate) fn new() -> io::Result<Registry> {
        fail()
    }

    /// # Safety
    /// None needed: no value of `Registry` exists.
    pub(crate) unsafe fn register(
        &self,
        _socket: &Socket,
        _key: usize,
        _requested: SockEvent,
    ) -> io::Result<()> {
        match *self {}
    }

    pub(crate) fn reregister(
        &self,
        _socket: &Socket,
        _key: usize,
        _requested: SockEvent,
    ) -> io::Result<()> {
        match *self {}
    }

    pub(crate) fn deregister(&self, _socket: &Socket, _key: usize) -> io::Result<()> {
        match *self {}
    }

    pub(crate) fn wait(&self, _ready: &mut Readiness, _timeout: Duration) -> io::Result<()> {
        match *self {}
    }

    pub(crate) fn notify(&self) -> io::Result<()> {
        match *self {}
    }
}

impl Readiness {
    pub(crate) fn new() -> Readiness {
        Readiness
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, SockEvent)> + '_ {
        std::iter::empty()
    }
}
