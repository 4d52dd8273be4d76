//! [`SockMan`]: Bitcoin Core's socket manager (PR #30988, `src/common/sockman.h`) — listeners,
//! connections by [`Id`], and one I/O loop over all of them that calls a [`Handler`].
//!
//! A node holds listeners, 8–125 (with `-maxconnections`, thousands of) peers and one loop
//! that waits until some of them are ready, then accepts, sends and receives for those. Core
//! calls [`Sock::wait_many`](crate::Sock::wait_many) over every socket each iteration, which costs O(connections) per
//! iteration; here the sockets stay registered with the OS between iterations (epoll, kqueue,
//! IOCP through the `polling` crate natively; pollables kept per connection and one
//! `wasi:io/poll.poll` per iteration on WASI), so an iteration natively costs what is ready.
//!
//! | Core (`SockMan`) | here |
//! |---|---|
//! | `Id` (`int64_t`) | [`Id`] |
//! | `BindAndStartListening` | [`SockMan::bind_and_listen`] |
//! | `StopListening` | [`SockMan::stop_listening`] |
//! | — (Core accepts past `-maxconnections` and drops; mio deregisters the listener) | [`SockMan::pause_listening`], [`SockMan::resume_listening`] |
//! | `ConnectAndMakeId` (direct / through a proxy) | [`SockMan::connect`] / [`SockMan::connect_via_socks5`] |
//! | `ConnectNode` with a `"host:port"` destination, then `ConnectAndMakeId` | [`SockMan::connect_by_name`] |
//! | `TestOnlyAddExistentConnection` | [`SockMan::add_connection`] |
//! | `SendBytes` | [`SockMan::send`] (plus a capped send queue owned by the manager) |
//! | `CloseConnection` | [`SockMan::close`] |
//! | (Core's HTTP server: disconnect once the reply is written) | [`SockMan::close_after_send`] (send what is queued, then close; a deadline) |
//! | `ThreadSocketHandler` (one iteration) | [`SockMan::run_once`] |
//! | `StartSocketsThreads` + `interruptNet` + `JoinSocketsThreads` | [`SockMan::run`] on a thread of yours, a [`ThreadInterrupt`](crate::ThreadInterrupt), [`SockMan::wake`] |
//! | `EventNewConnectionAccepted` | [`Handler::new_connection_accepted`] |
//! | `LogPrintf("socket error accept failed: ...")` | [`Handler::got_accept_error`] (and a pause of that listener, [`ACCEPT_BACKOFF`]) |
//! | `EventReadyToSend(id, cancel_recv)` | [`Handler::ready_to_send`] (returns `cancel_recv`) |
//! | `EventGotData` | [`Handler::got_data`] |
//! | `EventGotEOF` | [`Handler::got_eof`] |
//! | `EventGotPermanentReadError` | [`Handler::got_permanent_read_error`] |
//! | — (Core leaves send errors to `SendBytes`' caller) | [`Handler::got_permanent_send_error`] |
//! | `ShouldTryToSend`, `ShouldTryToRecv` | [`Handler::should_try_to_send`], [`Handler::should_try_to_recv`] |
//! | `SelectNodeToEvict` (`AttemptToEvictConnection`'s choice) | [`select_to_evict`] over [`EvictionCandidate`]s, [`net_group`] |
//! | `fPauseSend` (stop processing while `-maxsendbuffer` is full) | [`Options::pause_recv_above`] |
//! | — (Core bounds each peer, not their sum) | [`Options::memory_budget`], [`SockMan::set_held`], [`Handler::memory_budget_exceeded`] |
//! | `EventIOLoopCompletedForOne`, `EventIOLoopCompletedForAll` | [`Handler::io_loop_completed_for_one`], [`Handler::io_loop_completed_for_all`] |
//! | `Options::socket_handler_thread_name`, I2P | — (your thread, your name; no I2P) |
//!
//! # An iteration
//! [`run_once`](SockMan::run_once) does what one pass of Core's `ThreadSocketHandler` does:
//! 1. for each connection that changed since the last wait (new, data queued from another
//!    thread, [`recheck`](SockMan::recheck) called): ask [`should_try_to_send`] and
//!    [`should_try_to_recv`], write what is queued, and update what the OS watches;
//! 2. one OS wait, until something is ready, the timeout passes or [`wake`](SockMan::wake) /
//!    a send from another thread wakes it;
//! 3. for each ready connection, in Core's order: write queued bytes, then
//!    [`ready_to_send`](Handler::ready_to_send) once the queue is empty; one receive into the
//!    one reusable buffer ([`Options::recv_buffer_size`], Core's 64 KiB) and
//!    [`got_data`](Handler::got_data) / [`got_eof`](Handler::got_eof) /
//!    [`got_permanent_read_error`](Handler::got_permanent_read_error);
//!    [`io_loop_completed_for_one`](Handler::io_loop_completed_for_one); then ask the two
//!    questions again;
//! 4. for each ready listener, accept (up to 64 at a time) and ask
//!    [`new_connection_accepted`](Handler::new_connection_accepted); a failed accept is
//!    [`got_accept_error`](Handler::got_accept_error), and one that would repeat (out of
//!    descriptors) pauses the listener, so the loop never spins on it;
//! 5. [`io_loop_completed_for_all`](Handler::io_loop_completed_for_all).
//!
//! Core asks its two questions of every connection every iteration; that is O(connections),
//! so here they are asked of the connections the iteration touched, and of any connection
//! for which you call [`recheck`](SockMan::recheck) (e.g. when your message processing catches
//! up and reading may resume).
//!
//! # Nothing unbounded
//! A connection the handler does not want to read from is not watched for RECV, so its bytes
//! stay in the kernel and TCP's flow control slows the peer. Each connection's send queue is
//! capped ([`Options::send_queue_cap`], Core's `-maxsendbuffer` default): a
//! [`send`](SockMan::send) behind queued bytes that would pass it fails with
//! [`SockManError::SendQueueFull`] and queues nothing, while a message onto an empty queue is
//! taken whole (as Core takes every message whole), so a queue holds at most the larger of the
//! cap and the longest message. There is one receive buffer for all connections.
//!
//! A connection whose queue holds more than [`Options::pause_recv_above`] is not read from
//! until it drains (Core's `fPauseSend`): a peer that asks and never reads the answers stops
//! being heard, and costs a queue, not a core. And all connections together have one bound,
//! [`Options::memory_budget`]: their queues plus what the handler holds for them
//! ([`set_held`](SockMan::set_held): unfinished messages, messages not yet processed); past
//! it the connection holding the most is closed, after
//! [`Handler::memory_budget_exceeded`].
//!
//! # Threads
//! `SockMan` is `Send + Sync` and every method takes `&self`: natively the loop runs on one
//! thread ([`run`](SockMan::run)) while others [`send`](SockMan::send),
//! [`close`](SockMan::close) and [`connect`](SockMan::connect); a send queued from another
//! thread wakes the loop at once (`polling`'s notify) instead of waiting out a timeout (Core's
//! 50 ms `SELECT_TIMEOUT`). The handler gets `&SockMan` in every event, so it sends and closes
//! from inside events, as `CConnman` does. On WASI, which has no threads, drive it with
//! [`run_once`](SockMan::run_once).
//!
//! ```
//! # bitcoin_sock::wasip3_main!(); // WASI 0.3: `main` entered where sockets may wait
//! use bitcoin_sock::sockman::{Handler, Id, SockMan};
//! use bitcoin_sock::Sock;
//! use std::net::SocketAddr;
//! use std::time::Duration;
//!
//! /// Echoes every byte back.
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn new_connection_accepted(&mut self, _: &SockMan, _: Id, _: SocketAddr, _: SocketAddr) -> bool {
//!         true
//!     }
//!     fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]) {
//!         if man.send(id, data, false).is_err() {
//!             man.close(id);
//!         }
//!     }
//!     fn got_eof(&mut self, man: &SockMan, id: Id) {
//!         man.close(id);
//!     }
//!     fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, _: &std::io::Error) {
//!         man.close(id);
//!     }
//! }
//!
//! let man = SockMan::new()?;
//! let addr = man.bind_and_listen("127.0.0.1:0".parse()?)?;
//!
//! // A client, driven in the same thread (as on WASI).
//! let client = Sock::connect(addr, Duration::from_secs(5))?;
//! client.send(b"ping")?;
//! let mut echoed = Vec::new();
//! while echoed.len() < 4 {
//!     man.run_once(&mut Echo, Duration::from_millis(100))?;
//!     let mut buf = [0; 16];
//!     match client.recv(&mut buf) {
//!         Ok(n) => echoed.extend_from_slice(&buf[..n]),
//!         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! assert_eq!(echoed, b"ping");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Writing a node's socket loop
//! The loop on a thread of its own, the node's state in the handler, sends from another
//! thread (the README's example; natively, since WASI has no threads — there, call
//! [`run_once`](SockMan::run_once) as in the first example):
//!
//! ```
//! use bitcoin_sock::sockman::{Handler, Id, SockMan};
//! use bitcoin_sock::ThreadInterrupt;
//! use std::collections::HashMap;
//! use std::io;
//! use std::net::SocketAddr;
//! use std::sync::mpsc;
//! use std::time::Duration;
//!
//! const MAX_PEERS: usize = 125;
//! const MAX_LINE: usize = 1 << 20;
//!
//! /// What the node keeps per peer; the manager keeps the sockets.
//! struct Node {
//!     /// Each peer's unfinished line.
//!     partial: HashMap<Id, Vec<u8>>,
//!     /// Complete lines, for the rest of the node (Core's message handler thread).
//!     lines: mpsc::Sender<(Id, Vec<u8>)>,
//! }
//!
//! impl Node {
//!     fn forget(&mut self, man: &SockMan, id: Id) {
//!         self.partial.remove(&id);
//!         man.close(id);
//!     }
//! }
//!
//! impl Handler for Node {
//!     fn new_connection_accepted(&mut self, _: &SockMan, id: Id, _me: SocketAddr, _them: SocketAddr) -> bool {
//!         // Refused: the manager closes the socket.
//!         self.partial.len() < MAX_PEERS && self.partial.insert(id, Vec::new()).is_none()
//!     }
//!
//!     fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]) {
//!         let partial = self.partial.entry(id).or_default();
//!         partial.extend_from_slice(data);
//!         while let Some(end) = partial.iter().position(|&b| b == b'\n') {
//!             let line: Vec<u8> = partial.drain(..=end).take(end).collect();
//!             if line == b"ping" && man.send(id, b"pong\n", false).is_err() {
//!                 return self.forget(man, id);
//!             }
//!             let _ = self.lines.send((id, line));
//!         }
//!         if partial.len() > MAX_LINE {
//!             self.forget(man, id); // nothing a peer sends grows without bound
//!         }
//!     }
//!
//!     fn got_eof(&mut self, man: &SockMan, id: Id) {
//!         self.forget(man, id);
//!     }
//!
//!     fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, _: &io::Error) {
//!         self.forget(man, id);
//!     }
//! }
//!
//! # #[cfg(not(target_family = "wasm"))] { // threads: native only
//! let man = SockMan::new()?;
//! let addr = man.bind_and_listen("127.0.0.1:0".parse()?)?;
//! let interrupt = ThreadInterrupt::new();
//! let (lines_tx, lines) = mpsc::channel();
//! std::thread::scope(|s| -> Result<(), Box<dyn std::error::Error>> {
//!     // The socket thread (Core's ThreadSocketHandler).
//!     let io_thread = s.spawn(|| {
//!         let mut node = Node { partial: HashMap::new(), lines: lines_tx };
//!         man.run(&mut node, &interrupt)
//!     });
//!     // An outbound peer (here: ourselves), sent to from this thread while the loop runs.
//!     let peer = man.connect(addr, Duration::from_secs(5))?;
//!     man.send(peer, b"ping\n", false)?;
//!     let mut seen = vec![lines.recv_timeout(Duration::from_secs(5))?.1];
//!     seen.push(lines.recv_timeout(Duration::from_secs(5))?.1);
//!     seen.sort();
//!     assert_eq!(seen, [b"ping".to_vec(), b"pong".to_vec()]);
//!     interrupt.interrupt();
//!     man.wake()?; // return now, not within MAX_WAIT_FOR_IO
//!     io_thread.join().expect("the socket thread does not panic")?;
//!     Ok(())
//! })?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`should_try_to_send`]: Handler::should_try_to_send
//! [`should_try_to_recv`]: Handler::should_try_to_recv

mod budget;
mod closing;
mod conn;
mod connections;
mod error;
mod eviction;
mod handler;
mod io_loop;
mod listen;
mod options;
mod table;

use std::fmt;
use std::io;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use conn::Conn;
use io_loop::LoopState;
use table::{Listener, Slot, Table};

use crate::sys;

pub use error::SockManError;
pub use eviction::{net_group, select_to_evict, EvictionCandidate};
pub use handler::Handler;
pub use listen::ACCEPT_BACKOFF;
pub use options::{
    Options, DEFAULT_LISTEN_BACKLOG, DEFAULT_MEMORY_BUDGET, DEFAULT_PAUSE_RECV_ABOVE,
    DEFAULT_RECV_BUFFER_SIZE, DEFAULT_SEND_QUEUE_CAP,
};
pub use table::Id;

/// Bitcoin Core's socket manager: listeners, connections by [`Id`], and one I/O loop that
/// calls a [`Handler`]. See the [module docs](self) for the model.
///
/// `Send + Sync`; every method takes `&self`.
pub struct SockMan {
    options: Options,
    table: Mutex<Table>,
    /// Connections whose registration or queue changed since the loop last looked.
    pending: Mutex<Vec<Arc<Conn>>>,
    /// Connections closing gracefully, in the table without an id until the loop closes
    /// them.
    closing: Mutex<Vec<Arc<Conn>>>,
    /// The loop is in (or about to enter) its OS wait: a change must notify it.
    waiting: AtomicBool,
    /// Listeners not watched after a failed accept ([`listen`]).
    paused: Mutex<Vec<Arc<Listener>>>,
    /// A connection closed since the loop last looked at `paused`: a descriptor may be free.
    conn_closed: AtomicBool,
    looper: Mutex<LoopState>,
    registry: sys::Registry,
    /// What all connections hold: their send queues and what the handler declared
    /// ([`budget`]).
    used: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent before anything that could panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SockMan {
    /// A manager with the default [`Options`].
    ///
    /// # Errors
    /// The OS error of creating the registry (`epoll_create1`, `kqueue`, ...);
    /// `Unsupported` on targets without sockets.
    pub fn new() -> io::Result<SockMan> {
        SockMan::with_options(Options::default())
    }

    /// A manager sized by `options`.
    ///
    /// # Errors
    /// As [`new`](SockMan::new).
    pub fn with_options(options: Options) -> io::Result<SockMan> {
        let registry = sys::Registry::new()?;
        Ok(SockMan {
            looper: Mutex::new(LoopState {
                recv_buf: vec![0; options.recv_buffer_size.max(1)].into_boxed_slice(),
                ready: sys::Readiness::new(),
                pending: Vec::new(),
            }),
            options,
            table: Mutex::new(Table::default()),
            pending: Mutex::new(Vec::new()),
            closing: Mutex::new(Vec::new()),
            waiting: AtomicBool::new(false),
            paused: Mutex::new(Vec::new()),
            conn_closed: AtomicBool::new(false),
            registry,
            used: AtomicUsize::new(0),
        })
    }

    /// The options the manager was made with.
    pub fn options(&self) -> &Options {
        &self.options
    }
}

impl Drop for SockMan {
    fn drop(&mut self) {
        let table = mem::take(&mut *lock(&self.table));
        for (key, slot) in table.slots.into_iter().enumerate() {
            match slot {
                Slot::Listener(listener) => {
                    if let Some(socket) = listener.sock.socket() {
                        let _ = self.registry.deregister(socket, key);
                    }
                }
                Slot::Conn(conn) => self.retire(&conn),
                Slot::Free => {}
            }
        }
        lock(&self.pending).clear();
        lock(&self.paused).clear();
        lock(&self.closing).clear();
    }
}

impl fmt::Debug for SockMan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SockMan")
            .field("connections", &self.connection_count())
            .field("listen_addrs", &self.listen_addrs())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}
