//! Bitcoin Core's `Sock` socket class as one Rust API, native and on WASI preview 2.
//!
//! A Bitcoin node or light client written once against [`Sock`] runs on a server (backend:
//! `socket2` and `poll(2)`), in wasmtime on `wasm32-wasip2` (backend: `wasi:sockets` and
//! `wasi:io/poll`), or at the edge. Names and semantics follow Core's `src/util/sock.h`:
//!
//! | Core | here |
//! |---|---|
//! | `Sock::RECV`, `SEND`, `ERR` | [`SockEvent::RECV`], [`SEND`](SockEvent::SEND), [`ERR`](SockEvent::ERR) |
//! | `Sock::Events`, `EventsPerSock` | [`Events`], `&mut [(&Sock, Events)]` |
//! | `Send`, `Recv`, `Recv(MSG_PEEK)` | [`Sock::send`], [`Sock::recv`], [`Sock::peek`] |
//! | `Wait`, `WaitMany` | [`Sock::wait`], [`Sock::wait_many`] |
//! | `SendComplete`, `RecvUntilTerminator`, `IsConnected` | [`SockIo::send_complete`], [`SockIo::recv_until_terminator`], [`SockIo::is_connected`] ([`Disconnected`]) |
//! | `ConnectSocketDirectly` | [`Sock::connect`] |
//! | `ConnectNode` (a `"host:port"` destination: `SplitHostPort`, `Lookup`, `ConnectDirectly` per address) | [`Sock::connect_by_name`], [`split_host_port`], [`resolve`], [`Sock::connect_any`] |
//! | `CreateSock(AF_UNIX, ...)` + `ConnectToSocket`, `Proxy::Connect` for `unix:` | [`Sock::connect_unix`], [`Sock::connect_to`] ([`SockAddress`], [`UnixAddress`]) |
//! | `-proxy=unix:<path>`, `-onion=unix:<path>` | [`Sock::connect_via_socks5_unix`] |
//! | `Bind`, `Listen`, `Accept`, `GetSockName` | [`Sock::bind`], [`Sock::listen`], [`Sock::accept`], [`Sock::local_addr`]; any family: [`Sock::bind_unix`], [`Sock::accept_address`], [`Sock::local_address`] |
//! | `SetNonBlocking`, `IsSelectable`, `ShutdownSend` | [`Sock::set_non_blocking`], [`Sock::is_selectable`], [`Sock::shutdown_send`] |
//! | `GetSockOpt`, `SetSockOpt` | [`Sock::get_sock_opt`], [`Sock::set_sock_opt`] ([`SockOpt`]) |
//! | `Get`, `Release`, `Reset`, destructor | [`Sock::get`], [`Sock::release`], [`Sock::reset`], `Drop` |
//! | `CThreadInterrupt` | [`ThreadInterrupt`] |
//! | `Socks5`, `ConnectThroughProxy`, `InterruptibleRecv` | [`socks5::connect`], [`Sock::connect_via_socks5`], [`socks5::interruptible_recv`] |
//! | `NetworkErrorString`, `IOErrorIsPermanent` | [`network_error_string`], [`io_error_is_permanent`] |
//! | `SendComplete` / `InterruptibleRecv` as `std::io` | [`SockIo::with_deadline`] ([`DeadlineIo`]: `Read` + `Write`; inside its errors [`IntrRecvError`] for reads, [`SockError`] for writes) |
//! | (a `Sock` with a read-ahead buffer; Rust's `BufReader`) | [`BufSock`]: `SockIo`, `Read`, `BufRead`, `Write`; [`shutdown_send`](BufSock::shutdown_send) (`ShutdownSend`), [`shutdown`](BufSock::shutdown) |
//! | `SockMan` (PR #30988, `src/common/sockman.h`) | [`sockman::SockMan`] (its own table in [`sockman`]) |
//!
//! Where Core is fragile this crate is stricter (empty sends succeed, closed descriptors are
//! reported, `EINTR` is retried, deadlines saturate, failed receives keep their bytes); the
//! items' docs say where.
//!
//! ```
//! # bitcoin_sock::wasip3_main!(); // WASI 0.3: `main` entered where sockets may wait
//! use bitcoin_sock::{Sock, SockEvent, SockIo, ThreadInterrupt};
//! use std::time::Duration;
//!
//! let timeout = Duration::from_secs(5);
//! let interrupt = ThreadInterrupt::new();
//!
//! // A listener on a free loopback port, and a client connected to it.
//! let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 8)?;
//! let client = Sock::connect(listener.local_addr()?, timeout)?;
//! listener.wait(timeout, SockEvent::RECV)?;
//! let (server, _peer) = listener.accept()?;
//!
//! client.send_complete(b"version\nverack\n", timeout, &interrupt)?;
//! assert_eq!(server.recv_until_terminator(b'\n', timeout, &interrupt, 1000)?, b"version");
//! assert_eq!(server.recv_until_terminator(b'\n', timeout, &interrupt, 1000)?, b"verack");
//! assert!(server.is_connected().is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! On targets without sockets (`wasm32-unknown-unknown`, `wasm32-wasip1`) everything compiles
//! and every socket operation fails with [`std::io::ErrorKind::Unsupported`].
//!
//! # Types from dependencies
//! The API names std's types where it can (natively `From<OwnedFd>`, `TryFrom<Sock> for
//! OwnedFd`, `Sock::borrow_fd`, the raw-descriptor traits; the `OwnedSocket` family on
//! Windows). What follows a dependency's version: natively [`OsSocket`] (`socket2::Socket`
//! 0.6) and [`Sock::get`], [`Sock::release`], [`Sock::adopt`], `From<socket2::Socket>`, under
//! the cargo feature `socket2` (on by default); on `wasm32-wasip2` the conversions from and to
//! the `wasi` crate's (0.14) socket types, and with the `wasip3` feature from the `wasip3`
//! crate's (0.10) socket type and wit-bindgen's stream of accepted sockets.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod addr;
mod buf;
mod connect;
mod deadline;
mod disconnected;
mod error;
mod error_text;
mod event;
mod interrupt;
mod io;
mod op_error;
mod opt;
mod parse;
mod recv_error;
mod resolve;
mod sock;
pub mod sockman;
pub mod socks5;
mod sys;

pub use addr::{SockAddress, UnixAddress};
pub use buf::{BufSock, DEFAULT_BUF_CAPACITY};
pub use deadline::DeadlineIo;
pub use disconnected::Disconnected;
pub use error::{io_error_is_permanent, network_error_string, SockError};
pub use event::{Events, SockEvent};
pub use interrupt::ThreadInterrupt;
pub use io::{SockIo, MAX_WAIT_FOR_IO};
pub use op_error::{os_error_code, OpError};
pub use opt::{SockOpt, SockOptValue};
pub use parse::split_host_port;
pub use recv_error::IntrRecvError;
pub use resolve::resolve;
#[cfg(any(feature = "socket2", target_family = "wasm"))]
pub use sock::OsSocket;
pub use sock::Sock;
pub use socks5::Socks5Error;

/// What [`wasip3_main!`] expands to names (WASI 0.3 only).
#[cfg(wasi_p3)]
#[doc(hidden)]
pub use sys::entry as __wasip3_entry;

/// Enters the program through WASI 0.3's async `wasi:cli/run@0.3` export, with its ordinary
/// `main` unchanged: the one line a program adds (at its crate root, or in a module of its
/// tests) for this crate's WASI 0.3 backend (the `wasip3` feature on `wasm32-wasip2`).
///
/// WASI 0.3 lets a program block only inside an `async` export; a plain `fn main` is exported
/// as the synchronous `wasi:cli/run@0.2`, where every socket call that would wait fails with
/// [`std::io::ErrorKind::Unsupported`] naming this macro (the host would trap). The macro
/// exports `wasi:cli/run@0.3` beside it, which wasmtime (46 and later) prefers, and runs
/// `main` (or the test harness's) from there. On every other target and backend it expands
/// to nothing, so the line can stay.
///
/// ```
/// bitcoin_sock::wasip3_main!();
///
/// fn main() {
///     // Sock, SockMan, ... as on every host.
/// }
/// ```
#[macro_export]
macro_rules! wasip3_main {
    () => {
        $crate::__wasip3_main!();
    };
}
