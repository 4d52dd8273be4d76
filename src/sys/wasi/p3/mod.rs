//! The WASI 0.3 backend: `wasi:sockets/types@0.3` TCP sockets, their `stream<u8>`s, and one
//! component-model `waitable-set` for every wait.
//!
//! A socket's receive side is a `stream<u8>` the host writes, its send side one the guest
//! writes; there are no pollables. Each socket keeps at most one read and one write in flight,
//! joined once to the one waitable-set of `reactor`, so they stay in flight from one wait to
//! the next and a wait costs what is ready. A read-ahead buffer (`../state.rs`) gives `peek`;
//! bytes accepted by `send` wait in a bounded buffer of the socket's while the host takes them,
//! as a kernel's send buffer does. One file per concern, as in `../p2/`:
//!
//! * this file: the [`Socket`] type, its state and its teardown;
//! * `errno`: WASI 0.3 error codes as wasi-libc's errno values;
//! * `addr`: `local_addr`/`peer_addr` and name resolution;
//! * `tcp`: creating, connecting, binding, listening, accepting and shutting down;
//! * `adopt`: sockets made elsewhere, as `Sock`;
//! * `io`: `send`, `recv` and `peek`, over `receiver` (the read in flight, into the
//!   read-ahead) and `sender` (the bytes `send` took, and the write in flight);
//! * `poll`: what a socket's state says is ready, and what to start so that a wait can tell;
//! * `opt`: socket options;
//! * `registry`: `SockMan`'s registered sockets, looked at only when something happened;
//! * `graveyard`: sockets closed while their last bytes are still being written;
//!
//! and what only 0.3 has: `canon` (the component-model built-ins), `reactor` (the one
//! waitable-set and its timer) and `entry` (entering the program through the async
//! `wasi:cli/run@0.3`, where the host allows blocking).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use wasip3::sockets::types::TcpSocket;

use super::state::{Common, Phase};

mod addr;
mod adopt;
mod canon;
pub mod entry;
mod errno;
mod graveyard;
mod io;
mod opt;
mod poll;
mod reactor;
mod receiver;
mod registry;
mod sender;
mod tcp;

pub(crate) use super::errno::{LOOKUP_REFUSED_HINT, NETWORK_REFUSED_HINT};
pub(crate) use super::try_clone;
pub(crate) use addr::{local_addr, peer_addr, resolve};
pub(crate) use adopt::adopt;
pub(crate) use io::{is_flushed, peek, recv, send, send_vectored, start_flush};
pub(crate) use opt::{get_sock_opt, set_sock_opt};
pub(crate) use poll::poll;
pub(crate) use registry::{Readiness, Registry};
pub(crate) use tcp::{
    accept, bind, connect_finish, connect_start, is_selectable, listen, reset_on_close,
    set_non_blocking, shutdown,
};

/// A `wasi:sockets/types@0.3` TCP socket with its streams and the operations in flight.
///
/// The state is shared (`Arc`) with the reactor, which hands it the events of its operations,
/// and with the graveyard, which keeps a closed socket until its last bytes are written.
pub struct Socket {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    state: Mutex<State>,
}

/// The shared state (`Common`), and the socket with its operations in flight.
struct State {
    common: Common,
    /// `None` once closed.
    tcp: Option<TcpSocket>,
    /// A connect in flight (`tcp`).
    connect: Option<tcp::Connecting>,
    /// The accepting side of a listener (`tcp`).
    accepts: Option<tcp::Accepts>,
    /// The receiving side of a connected socket (`receiver`).
    rx: Option<receiver::Receiver>,
    /// The sending side of a connected socket (`sender`).
    tx: Option<sender::Sender>,
    /// The registry watching this socket, and its key there (`registry`).
    watcher: Option<registry::Watcher>,
    /// Sockets accepted and not yet taken (`tcp`).
    accepted: VecDeque<TcpSocket>,
    /// Closed by its owner: only the writes left are carried on (`graveyard`).
    closed: bool,
    /// The close discards the bytes not yet written (`reset_on_close`).
    discard_on_close: bool,
}

impl std::ops::Deref for State {
    type Target = Common;
    fn deref(&self) -> &Common {
        &self.common
    }
}

impl std::ops::DerefMut for State {
    fn deref_mut(&mut self) -> &mut Common {
        &mut self.common
    }
}

impl Socket {
    fn new(socket: TcpSocket, phase: Phase) -> Socket {
        Socket {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    common: Common::new(phase),
                    tcp: Some(socket),
                    connect: None,
                    accepts: None,
                    rx: None,
                    tx: None,
                    watcher: None,
                    accepted: VecDeque::new(),
                    closed: false,
                    discard_on_close: false,
                }),
            }),
        }
    }

    /// A connected socket, with its streams opened.
    fn connected(socket: TcpSocket) -> Socket {
        let sock = Socket::new(socket, Phase::Connected);
        sock.shared.lock().open_streams(&sock.shared);
        sock
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl State {
    fn tcp(&self) -> &TcpSocket {
        // Only teardown takes it, and nothing runs on a socket after its teardown.
        self.tcp
            .as_ref()
            .expect("a socket has its wasi:sockets socket until closed")
    }

    /// Hands an event of one of this socket's operations to the operation.
    fn on_event(&mut self, shared: &Arc<Shared>, code: u32, waitable: u32, payload: u32) {
        if self.connect.as_ref().is_some_and(|c| c.subtask == waitable) {
            self.on_connect_event(shared, payload);
        } else if self.accepts.as_ref().is_some_and(|a| a.stream == waitable) {
            self.on_accept_event(code, payload);
        } else if self.rx.as_ref().is_some_and(|rx| rx.owns(waitable)) {
            self.on_receive_event(shared, code, payload);
        } else if self.tx.as_ref().is_some_and(|tx| tx.owns(waitable)) {
            self.on_send_event(shared, code, payload);
        }
        if self.closed {
            graveyard::settle(self, shared);
        } else {
            registry::touched(self);
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let mut state = self.lock();
        state.closed = true;
        // Natively the close resets the connection then, dropping what the kernel holds to
        // send: so here the unsent bytes go, and the host's close (with the bytes unread in
        // its kernel) resets.
        if state.sending() && state.unread() {
            state.discard_on_close = true;
        }
        state.stop_reading();
        state.stop_connecting();
        state.stop_accepting();
        graveyard::close(&mut state, &self.shared);
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Socket")
            .field("socket", &state.tcp.as_ref().map(TcpSocket::handle))
            .field("phase", &state.phase)
            .finish()
    }
}
