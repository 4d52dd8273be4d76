//! The one place that picks the backend.
//!
//! Every backend file exposes the same items, used by the front end in `src/sock.rs`:
//!
//! * `Socket` — the owned OS socket; `TRY_AGAIN_CODES`; `error_description(code)`;
//! * `connect_start`, `connect_finish`, `bind`, `listen`, `accept`, `local_addr`, `peer_addr`,
//!   `set_non_blocking`, `is_selectable`, `shutdown`, `resolve`;
//! * `send`, `recv`, `peek`, `poll` (one system wait over many sockets, which may fail with
//!   `ErrorKind::Interrupted`: the front end retries with the time left);
//! * `get_sock_opt`, `set_sock_opt`;
//! * `Registry` (`new`, `register`, `reregister`, `deregister`, `wait`, `notify`) and
//!   `Readiness` (`new`, `iter`): the OS registration that [`SockMan`](crate::sockman::SockMan)
//!   keeps between waits, so a wait costs what is ready.

// `cfg(sockets)` comes from build.rs: native targets and WASI preview 2.
cfg_if::cfg_if! {
    if #[cfg(not(sockets))] {
        mod unsupported;
        pub(crate) use unsupported::*;
    } else if #[cfg(not(target_family = "wasm"))] {
        mod native;
        pub(crate) use native::*;
    } else {
        mod wasi;
        pub(crate) use self::wasi::*;
    }
}

use crate::{Events, Sock, SockEvent};

/// One socket of a [`poll`] call, as the front end holds it: the backend reads the socket and
/// the requested events, and writes the occurred ones.
#[cfg_attr(not(sockets), allow(dead_code))] // the unsupported backend never uses it
pub(crate) trait PollTarget {
    /// The socket to wait on; `None` (the invalid sock) is reported as [`SockEvent::ERR`].
    fn socket(&self) -> Option<&Socket>;
    /// The events to wait for.
    fn requested(&self) -> SockEvent;
    /// Records what occurred.
    fn set_occurred(&mut self, occurred: SockEvent);
}

impl PollTarget for (&Sock, Events) {
    fn socket(&self) -> Option<&Socket> {
        self.0.socket()
    }
    fn requested(&self) -> SockEvent {
        self.1.requested
    }
    fn set_occurred(&mut self, occurred: SockEvent) {
        self.1.occurred = occurred;
    }
}
