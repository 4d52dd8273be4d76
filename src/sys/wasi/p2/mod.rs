//! The WASI 0.2 backend: `wasi:sockets/tcp`, `wasi:io/streams` and `wasi:io/poll`.
//!
//! `wasi:sockets/tcp` for the socket, `wasi:io/streams` for the data, one `wasi:io/poll.poll`
//! per wait, and a read-ahead buffer for `peek`, which WASI lacks (the state and rules shared
//! with WASI 0.3 are in `../state.rs`). One file per concern:
//!
//! * this file: the [`Socket`] type, its state and its drop order;
//! * `errno`: WASI error codes and stream errors as wasi-libc's errno values;
//! * `addr`: address conversion, `local_addr`/`peer_addr` and name resolution;
//! * `tcp`: creating, connecting, binding, listening, accepting and shutting down;
//! * `adopt`: sockets made elsewhere, as `Sock`;
//! * `io`: `send`, `recv` and `peek`, over the front end's read-ahead buffer (`crate::buf`);
//! * `poll`: the poll plan (`watch` before the one `poll`, `settle` after);
//! * `opt`: socket options;
//! * `registry`: `SockMan`'s registered sockets, their pollables kept across waits;
//! * `graveyard`: sockets whose close would block the guest, closed later.
//!
//! The pollables (on [`Socket`], private here, so every file of this folder reaches them) and
//! the plan's steps (`pub(super)`) are shared with any file of this folder that keeps pollables
//! between waits, so such a file repeats no rule of the plan.

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use wasi::io::poll::Pollable;
use wasi::io::streams::{InputStream, OutputStream};
use wasi::sockets::tcp::TcpSocket;

use super::state::{Common, Phase};

mod addr;
mod adopt;
mod errno;
mod graveyard;
mod io;
mod opt;
mod poll;
mod registry;
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

/// A `wasi:sockets/tcp` socket with its streams and the state WASI leaves to the guest.
///
/// Drop order matters: wasmtime traps when a resource is dropped before its children (the
/// pollables are children of the streams and of the socket, the streams children of the
/// socket), so the pollables come first and [`Conn`] keeps the rest in order.
pub struct Socket {
    input_ready: OnceLock<Pollable>,
    output_ready: OnceLock<Pollable>,
    socket_ready: OnceLock<Pollable>,
    state: Mutex<State>,
    /// Always `Some` but inside `drop`, which may hand it to the [`graveyard`].
    conn: Option<Conn>,
}

/// A socket and its streams; field order is drop order.
struct Conn {
    streams: OnceLock<(InputStream, OutputStream)>,
    tcp: TcpSocket,
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Children first.
        drop(self.input_ready.take());
        drop(self.output_ready.take());
        drop(self.socket_ready.take());
        let wrote = self
            .state
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .wrote;
        if let Some(conn) = self.conn.take() {
            if wrote {
                graveyard::close(conn);
            } else {
                graveyard::sweep();
            }
        }
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("socket", &self.conn().tcp)
            .field("phase", &self.lock().phase)
            .finish()
    }
}

/// The shared state (`Common`: phase, read-ahead, input end, pending error; a shut sending
/// half fails sends by itself: wasmtime closes the output stream, which reads as `EPIPE`),
/// and what only WASI 0.2 needs.
#[derive(Debug)]
struct State {
    common: Common,
    /// Whether anything was written; a socket that never wrote closes at once.
    wrote: bool,
    /// What the last `check-write` allowed, not yet used by a write (0: ask again). A wait
    /// that found the socket writable keeps its answer here, so the send that follows does
    /// not ask again: under wasmtime every ask spends the guest's tokio budget (see
    /// `io::check_write`).
    write_budget: usize,
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
            input_ready: OnceLock::new(),
            output_ready: OnceLock::new(),
            socket_ready: OnceLock::new(),
            state: Mutex::new(State {
                common: Common::new(phase),
                wrote: false,
                write_budget: 0,
            }),
            conn: Some(Conn {
                streams: OnceLock::new(),
                tcp: socket,
            }),
        }
    }

    fn connected(socket: TcpSocket, input: InputStream, output: OutputStream) -> Socket {
        let sock = Socket::new(socket, Phase::Connected);
        // A fresh OnceLock is empty, so this always stores the streams.
        let _ = sock.conn().streams.set((input, output));
        sock
    }

    fn conn(&self) -> &Conn {
        // Only `drop` takes it.
        self.conn
            .as_ref()
            .expect("a socket has its connection until dropped")
    }

    fn tcp(&self) -> &TcpSocket {
        &self.conn().tcp
    }

    fn streams(&self) -> Option<&(InputStream, OutputStream)> {
        self.conn().streams.get()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn socket_ready(&self) -> &Pollable {
        self.socket_ready.get_or_init(|| self.tcp().subscribe())
    }

    fn input_ready(&self, input: &InputStream) -> &Pollable {
        self.input_ready.get_or_init(|| input.subscribe())
    }

    fn output_ready(&self, output: &OutputStream) -> &Pollable {
        self.output_ready.get_or_init(|| output.subscribe())
    }
}

impl Socket {
    /// The `wasi:sockets/tcp` socket, lent for what this crate does not wrap (e.g. the
    /// `keep-alive-*` options, `address-family`).
    ///
    /// # Safety
    /// Not memory safety: the whole component's life. wasmtime traps (stops the component,
    /// every task in it) when a socket is dropped while a resource made from it lives, and
    /// this backend keeps the socket's state (its streams, its phase) itself. So the caller
    /// must drop every resource it makes from the socket (`subscribe`'s pollable, ...) before
    /// the [`Sock`](crate::Sock) is dropped, reset or released, and must not change the
    /// socket's state behind the backend (`start-*`/`finish-*`, `accept`, `shutdown`).
    /// Reading and setting options is fine.
    ///
    /// ```compile_fail,E0133
    /// # fn f(sock: &bitcoin_sock::Sock) {
    /// // Not callable without `unsafe`: a pollable kept past the sock would trap wasmtime.
    /// let _pollable = sock.get().unwrap().tcp_socket().subscribe();
    /// # }
    /// ```
    pub unsafe fn tcp_socket(&self) -> &TcpSocket {
        self.tcp()
    }
}
