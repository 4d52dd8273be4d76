//! The WASI registry of `SockMan`, until it moves beside the rest of the WASI backend: for now
//! every call answers `Unsupported`.

use std::io;
use std::time::Duration;

use super::Socket;
use crate::error::unsupported;
use crate::SockEvent;

/// Not yet implemented on WASI: no value exists.
pub(crate) enum Registry {}

/// Nothing is ever ready.
pub(crate) struct Readiness;

impl Registry {
    pub(crate) fn new() -> io::Result<Registry> {
        Err(unsupported("SockMan"))
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
