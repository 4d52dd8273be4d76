//! The one place that picks the backend, and the contract every backend keeps.
//!
//! A backend is one module (a file, or a folder split by concern like `wasi/`) that defines
//! the items below and nothing else the front end (`src/sock.rs`) calls. The `const` block
//! after the `cfg_if!` names each item with its signature, so the compiler rejects a backend
//! that lacks one or types it differently; `unsupported.rs` is the shortest complete backend.
//!
//! * `Socket` — the owned socket (`Debug + Send + Sync`), closed when dropped;
//! * `adopt` — makes a socket made elsewhere behave like one the backend made (non-blocking,
//!   no `SIGPIPE`);
//! * `connect_start` (a new socket with its connect started), `connect_finish` (its result,
//!   once the socket is writable), `bind`, `listen`, `accept`, `local_addr`, `peer_addr`,
//!   `set_non_blocking`, `is_selectable`, `shutdown`, `reset_on_close` (the close that
//!   follows resets the connection where the host can: `SO_LINGER` 0; an ordinary close
//!   where it cannot), `start_flush` and `is_flushed` (every byte sent has reached the
//!   host's socket: at once natively; on WASI 0.2 once the output stream flushed, which ends
//!   a wait for SEND; on WASI 0.3 at once, since its `shutdown` ends the send stream only
//!   after the last byte);
//! * `send_vectored` (every buffer in one call where the host can; elsewhere the first
//!   non-empty one, [`first_non_empty`]), `try_clone` (a second handle to the same socket;
//!   `Unsupported` where the host has none);
//! * `send`, `recv`, `peek`, `resolve` (a checked DNS name, its failures sorted into
//!   `error_text::LookupFailure`, whose words are the same on every host);
//! * `NETWORK_REFUSED_HINT`, `LOOKUP_REFUSED_HINT`: what to add to a refused permission
//!   (`PermissionDenied`) of a socket call or a name lookup, where the host's policy did it
//!   and the host has a switch that grants it (WASI's runtimes); `None` elsewhere;
//! * `poll` — one system wait over many sockets that fills each one's occurred events (it may
//!   fail with `ErrorKind::Interrupted`: the front end retries with the time left, and counts
//!   the ready ones). As `poll(2)` answers, on every host: an empty set sleeps out the
//!   timeout, a socket listed twice gets each entry answered for its own requested events,
//!   and a hang-up makes RECV ready when RECV was asked for (a `recv` returns at once);
//! * `get_sock_opt`, `set_sock_opt` (the value already checked: [`SetSockOpt`]);
//! * the calls beyond IP: `connect_unix` (one attempt that waits at most its timeout, failing
//!   with `WouldBlock` when that passed and `Interrupted` on a signal), `bind_unix`,
//!   `local_address`, `peer_address`, `accept_address`. Native Unix has them in
//!   `native/unix_domain.rs`; the other backends (Windows here, WASI, no sockets) share
//!   `ip_only.rs`, where the Unix-domain calls answer `Unsupported` and the others give the
//!   backend's IP addresses;
//! * `Registry` (`Send + Sync`: `new`, `register`, `reregister`, `deregister`, `wait`,
//!   `notify`) and `Readiness` (`new`, `iter`): the registration that
//!   [`SockMan`](crate::sockman::SockMan) keeps between waits (natively with the OS, through
//!   `polling`; on WASI its pollables), so that natively a wait costs what is ready. A
//!   registered socket stays in place, and alive, until it is deregistered.
//!
//! Errors carry the host's OS codes (errno, Winsock, wasi-libc's errno on WASI), so
//! `io_error_is_permanent` and `network_error_string` mean the same on every backend. What
//! the host cannot do is `ErrorKind::Unsupported`. Conversions from the host's own socket
//! types into `Sock` live in the backend that has them.

// `cfg(sockets)` and `cfg(wasi_p3)` come from build.rs: native targets and WASI 0.2 have
// sockets, and so does WASI 0.3 (the `wasip3` feature on wasm32-wasip2, or wasm32-wasip3).
cfg_if::cfg_if! {
    if #[cfg(not(sockets))] {
        mod unsupported;
        pub(crate) use unsupported::*;
        mod ip_only;
        pub(crate) use ip_only::*;
    } else if #[cfg(not(target_family = "wasm"))] {
        mod native;
        pub(crate) use native::*;
        // Windows has AF_UNIX, but this crate does not use it there (yet).
        #[cfg(windows)]
        mod ip_only;
        #[cfg(windows)]
        pub(crate) use ip_only::*;
    } else if #[cfg(wasi_p3)] {
        mod wasi;
        pub(crate) use self::wasi::p3::*;
        /// The entry of WASI 0.3 programs ([`wasip3_main!`](crate::wasip3_main)).
        pub use self::wasi::p3::entry;
        mod ip_only;
        pub(crate) use ip_only::*;
    } else {
        mod wasi;
        pub(crate) use self::wasi::p2::*;
        mod ip_only;
        pub(crate) use ip_only::*;
    }
}

/// [`wasip3_main!`](crate::wasip3_main) expands to nothing but on WASI 0.3 (`wasi/p3/entry.rs`
/// defines it there), so a program keeps the line on every target.
#[cfg(not(wasi_p3))]
#[doc(hidden)]
#[macro_export]
macro_rules! __wasip3_main {
    () => {};
}

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use crate::opt::SetSockOpt;
use crate::{Events, Sock, SockAddress, SockEvent, SockOpt, SockOptValue, UnixAddress};

// The contract, checked: each item of the backend coerced to the signature the front end
// relies on.
const _: () = {
    fn socket_type<S: fmt::Debug + Send + Sync>() {}
    let _: fn() = socket_type::<Socket>;
    let _: fn(&Socket) -> io::Result<()> = adopt;
    let _: fn(&SocketAddr) -> io::Result<Socket> = connect_start;
    let _: fn(&Socket) -> io::Result<()> = connect_finish;
    let _: fn(&SocketAddr) -> io::Result<Socket> = bind;
    let _: fn(&Socket, i32) -> io::Result<()> = listen;
    let _: fn(&Socket) -> io::Result<(Socket, SocketAddr)> = accept;
    let _: fn(&Socket) -> io::Result<SocketAddr> = local_addr;
    let _: fn(&Socket) -> io::Result<SocketAddr> = peer_addr;
    let _: fn(&Socket) -> io::Result<()> = set_non_blocking;
    let _: fn(&Socket) -> bool = is_selectable;
    let _: fn(&Socket, Shutdown) -> io::Result<()> = shutdown;
    let _: fn(&Socket) -> io::Result<()> = reset_on_close;
    let _: fn(&Socket) -> io::Result<()> = start_flush;
    let _: fn(&Socket) -> bool = is_flushed;
    let _: fn(&Socket, &[u8]) -> io::Result<usize> = send;
    let _: fn(&Socket, &[io::IoSlice<'_>]) -> io::Result<usize> = send_vectored;
    let _: fn(&Socket) -> io::Result<Socket> = try_clone;
    let _: fn(&Socket, &mut [u8]) -> io::Result<usize> = recv;
    let _: fn(&Socket, &mut [u8]) -> io::Result<usize> = peek;
    let _: fn(&str, u16) -> io::Result<Vec<SocketAddr>> = resolve;
    let _: Option<&str> = NETWORK_REFUSED_HINT;
    let _: Option<&str> = LOOKUP_REFUSED_HINT;
    // Generic over any PollTarget; checked with the one the front end passes.
    type WaitEntry = (&'static Sock, Events);
    let _: fn(&mut [WaitEntry], Duration) -> io::Result<()> = poll;
    let _: fn(&Socket, SockOpt) -> io::Result<SockOptValue> = get_sock_opt;
    let _: fn(&Socket, SetSockOpt) -> io::Result<()> = set_sock_opt;
    let _: fn(&UnixAddress, Duration) -> io::Result<Socket> = connect_unix;
    let _: fn(&UnixAddress) -> io::Result<Socket> = bind_unix;
    let _: fn(&Socket) -> io::Result<SockAddress> = local_address;
    let _: fn(&Socket) -> io::Result<SockAddress> = peer_address;
    let _: fn(&Socket) -> io::Result<(Socket, SockAddress)> = accept_address;
    // SockMan's registration (src/sockman/).
    fn registry_type<R: Send + Sync, E: Send>() {}
    let _: fn() = registry_type::<Registry, Readiness>;
    let _: fn() -> io::Result<Registry> = Registry::new;
    let _: unsafe fn(&Registry, &Socket, usize, SockEvent) -> io::Result<()> = Registry::register;
    let _: fn(&Registry, &Socket, usize, SockEvent) -> io::Result<()> = Registry::reregister;
    let _: fn(&Registry, &Socket, usize) -> io::Result<()> = Registry::deregister;
    let _: fn(&Registry, &mut Readiness, Duration) -> io::Result<()> = Registry::wait;
    let _: fn(&Registry) -> io::Result<()> = Registry::notify;
    let _: fn() -> Readiness = Readiness::new;
};

/// The buffer a host without vectored writes sends from `bufs`: the first non-empty one, as
/// std's default `Write::write_vectored`; empty when all are.
#[cfg_attr(not(all(sockets, target_family = "wasm")), allow(dead_code))] // only WASI lacks them
pub(crate) fn first_non_empty<'a>(bufs: &'a [io::IoSlice<'_>]) -> &'a [u8] {
    bufs.iter()
        .find(|buf| !buf.is_empty())
        .map_or(&[], |buf| buf)
}

/// One socket of a [`poll`] call, as the front end holds it: the backend reads the socket and
/// the requested events, and writes the occurred ones (for every target, empty when nothing
/// occurred). Counting the ready ones and refusing the invalid sock are the front end's.
#[cfg_attr(not(sockets), allow(dead_code))] // the unsupported backend never uses it
pub(crate) trait PollTarget {
    /// The socket to wait on; `None` (the invalid sock, which the front end never passes) is
    /// waited on for nothing.
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
