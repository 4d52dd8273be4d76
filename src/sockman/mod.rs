//! [`SockMan`]: Bitcoin Core's socket manager (PR #30988, `src/common/sockman.h`) — listeners,
//! connections by [`Id`], and one I/O loop over all of them that calls a [`Handler`].
//!
//! A node holds listeners, 8–125 (with `-maxconnections`, thousands of) peers and one loop
//! that waits until some of them are ready, then accepts, sends and receives for those. Core
//! calls [`Sock::wait_many`] over every socket each iteration, which costs O(connections) per
//! iteration; here the sockets stay registered with the OS between iterations (epoll, kqueue,
//! IOCP through the `polling` crate natively; pollables kept per connection and one
//! `wasi:io/poll.poll` per iteration on WASI), so an iteration natively costs what is ready.
//!
//! | Core (`SockMan`) | here |
//! |---|---|
//! | `Id` (`int64_t`) | [`Id`] |
//! | `BindAndStartListening` | [`SockMan::bind_and_listen`] |
//! | `StopListening` | [`SockMan::stop_listening`] |
//! | `ConnectAndMakeId` (direct / through a proxy) | [`SockMan::connect`] / [`SockMan::connect_via_socks5`] |
//! | `TestOnlyAddExistentConnection` | [`SockMan::add_connection`] |
//! | `SendBytes` | [`SockMan::send`] (plus a capped send queue owned by the manager) |
//! | `CloseConnection` | [`SockMan::close`] |
//! | `ThreadSocketHandler` (one iteration) | [`SockMan::run_once`] |
//! | `StartSocketsThreads` + `interruptNet` + `JoinSocketsThreads` | [`SockMan::run`] on a thread of yours, a [`ThreadInterrupt`], [`SockMan::wake`] |
//! | `EventNewConnectionAccepted` | [`Handler::new_connection_accepted`] |
//! | `EventReadyToSend(id, cancel_recv)` | [`Handler::ready_to_send`] (returns `cancel_recv`) |
//! | `EventGotData` | [`Handler::got_data`] |
//! | `EventGotEOF` | [`Handler::got_eof`] |
//! | `EventGotPermanentReadError` | [`Handler::got_permanent_read_error`] |
//! | — (Core leaves send errors to `SendBytes`' caller) | [`Handler::got_permanent_send_error`] |
//! | `ShouldTryToSend`, `ShouldTryToRecv` | [`Handler::should_try_to_send`], [`Handler::should_try_to_recv`] |
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
//!    [`new_connection_accepted`](Handler::new_connection_accepted);
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
//! [`send`](SockMan::send) past it fails with [`SockManError::SendQueueFull`] and queues
//! nothing. There is one receive buffer for all connections.
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

mod conn;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use conn::{Conn, ConnState};

use crate::error::{describe, is_permanent};
use crate::socks5::Credentials;
use crate::sys;
use crate::{Sock, SockError, SockEvent, Socks5Error, ThreadInterrupt, MAX_WAIT_FOR_IO};

/// Core's receive buffer in `SocketHandlerConnected`: `uint8_t buf[0x10000]`.
pub const DEFAULT_RECV_BUFFER_SIZE: usize = 0x10000;

/// Core's `-maxsendbuffer` default (`DEFAULT_MAXSENDBUFFER`, 5000 × 1000 bytes): more than
/// the largest message a node sends (a 4 MB block).
pub const DEFAULT_SEND_QUEUE_CAP: usize = 5_000_000;

/// Core listens with `SOMAXCONN`; the kernel caps it at its own limit.
pub const DEFAULT_LISTEN_BACKLOG: i32 = 4096;

/// Connections accepted from one ready listener in one iteration, so a flood of connects
/// cannot starve the established connections (Core accepts one).
const ACCEPT_BATCH: usize = 64;

/// A connection's identifier (Core's `SockMan::Id`). Unique for the manager's life: ids are
/// never reused, so a stale id names no connection rather than the wrong one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Id(u64);

impl Id {
    /// The number, as Core's `int64_t` would show it.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a [`SockMan`] is sized.
///
/// ```
/// use bitcoin_sock::sockman::{Options, SockMan};
///
/// let options = Options::default().with_send_queue_cap(1 << 20);
/// assert_eq!(options.recv_buffer_size, 64 * 1024);
/// let man = SockMan::with_options(options)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// The one receive buffer's size: the most one receive reads ([`DEFAULT_RECV_BUFFER_SIZE`],
    /// Core's 64 KiB). At least 1.
    pub recv_buffer_size: usize,
    /// The most bytes a connection's send queue holds ([`DEFAULT_SEND_QUEUE_CAP`]).
    pub send_queue_cap: usize,
    /// The listen backlog of [`bind_and_listen`](SockMan::bind_and_listen)
    /// ([`DEFAULT_LISTEN_BACKLOG`]).
    pub listen_backlog: i32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            recv_buffer_size: DEFAULT_RECV_BUFFER_SIZE,
            send_queue_cap: DEFAULT_SEND_QUEUE_CAP,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
        }
    }
}

impl Options {
    /// Sets [`recv_buffer_size`](Options::recv_buffer_size) (0 counts as 1).
    pub fn with_recv_buffer_size(mut self, size: usize) -> Options {
        self.recv_buffer_size = size.max(1);
        self
    }

    /// Sets [`send_queue_cap`](Options::send_queue_cap).
    pub fn with_send_queue_cap(mut self, cap: usize) -> Options {
        self.send_queue_cap = cap;
        self
    }

    /// Sets [`listen_backlog`](Options::listen_backlog).
    pub fn with_listen_backlog(mut self, backlog: i32) -> Options {
        self.listen_backlog = backlog;
        self
    }
}

/// Why a [`SockMan`] call about one connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SockManError {
    /// No connection has this id: it was closed, refused, or never existed.
    #[error("connection {0} does not exist")]
    UnknownConnection(Id),

    /// The bytes would push the connection's send queue past
    /// [`Options::send_queue_cap`]; none of them were taken. The peer is not reading fast
    /// enough (or at all): wait for [`Handler::ready_to_send`], or close it.
    #[error("send queue of connection {id} is full ({queued} bytes queued, {len} more would pass the cap of {cap})")]
    SendQueueFull {
        /// The connection.
        id: Id,
        /// Bytes in its queue now.
        queued: usize,
        /// Bytes the refused send asked to queue.
        len: usize,
        /// The cap.
        cap: usize,
    },

    /// Sending failed with a permanent error (Core's `SendBytes` returning -1; `Display` is
    /// Core's `"send(): <NetworkErrorString>"`). The connection can send nothing more; close
    /// it.
    #[error("send(): {}", describe(.source))]
    Send {
        /// The connection.
        id: Id,
        /// The error.
        #[source]
        source: io::Error,
    },

    /// The OS failed a query about the connection's socket.
    #[error(transparent)]
    Io(io::Error),
}

impl SockManError {
    /// The connection the error is about, when there is one.
    pub fn id(&self) -> Option<Id> {
        match self {
            SockManError::UnknownConnection(id)
            | SockManError::SendQueueFull { id, .. }
            | SockManError::Send { id, .. } => Some(*id),
            SockManError::Io(_) => None,
        }
    }
}

/// The events of a [`SockMan`]'s loop, and its flow-control questions: Core's `SockMan`
/// virtual methods. Every event gets the manager, so it can [`send`](SockMan::send),
/// [`close`](SockMan::close) or [`connect`](SockMan::connect) from inside.
///
/// No event is called while the manager holds a lock, so calling back into it is always safe.
pub trait Handler {
    /// A listener accepted a connection (Core's `EventNewConnectionAccepted`): `me` is our
    /// side's address, `them` the peer's. Return `false` to refuse it: the manager closes
    /// the socket and forgets `id`.
    fn new_connection_accepted(
        &mut self,
        man: &SockMan,
        id: Id,
        me: SocketAddr,
        them: SocketAddr,
    ) -> bool;

    /// The connection's send queue has drained and the socket takes more (Core's
    /// `EventReadyToSend`, which Core calls whenever the socket is writable and
    /// [`should_try_to_send`](Handler::should_try_to_send) allows; here the manager owns the
    /// queue, so this comes once the queue is empty). Send the next messages here if you
    /// produce them on demand. Return `true` (Core's `cancel_recv`) to skip this iteration's
    /// receive on the connection. The default sends nothing and returns `false`.
    fn ready_to_send(&mut self, man: &SockMan, id: Id) -> bool {
        let _ = (man, id);
        false
    }

    /// Bytes arrived (Core's `EventGotData`); `data` is valid for the call only (it is the
    /// manager's one receive buffer).
    fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]);

    /// The peer closed its sending side (Core's `EventGotEOF`). We may still send. The
    /// connection is not read again.
    fn got_eof(&mut self, man: &SockMan, id: Id);

    /// Receiving failed for good, e.g. the peer reset the connection (Core's
    /// `EventGotPermanentReadError`; Core's message is
    /// [`network_error_string`](crate::network_error_string) of `err.raw_os_error()`).
    /// Also called when the OS refuses to watch the socket. The connection is not read again.
    fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, err: &io::Error);

    /// Writing queued bytes failed for good (Core has no such event: its `SendBytes` caller
    /// sees the error; here the loop writes the queue). The queue is dropped and later sends
    /// fail with [`SockManError::Send`]. The default does nothing; closing is usual.
    fn got_permanent_send_error(&mut self, man: &SockMan, id: Id, err: &io::Error) {
        let _ = (man, id, err);
    }

    /// Whether the loop may write this connection's queued bytes and call
    /// [`ready_to_send`](Handler::ready_to_send) (Core's `ShouldTryToSend`); default `true`.
    fn should_try_to_send(&self, id: Id) -> bool {
        let _ = id;
        true
    }

    /// Whether the loop may read from this connection (Core's `ShouldTryToRecv`); default
    /// `true`. While `false`, the socket is not watched for RECV and its bytes stay in the
    /// kernel. Asked when the connection is touched; call [`SockMan::recheck`] when the answer
    /// changes for a connection that is idle.
    fn should_try_to_recv(&self, id: Id) -> bool {
        let _ = id;
        true
    }

    /// The loop finished sending and receiving for this connection in this iteration (Core's
    /// `EventIOLoopCompletedForOne`). The default does nothing.
    fn io_loop_completed_for_one(&mut self, man: &SockMan, id: Id) {
        let _ = (man, id);
    }

    /// The loop finished an iteration (Core's `EventIOLoopCompletedForAll`): the place for
    /// periodic work over all connections. The default does nothing.
    fn io_loop_completed_for_all(&mut self, man: &SockMan) {
        let _ = man;
    }
}

/// A listening socket.
struct Listener {
    sock: Sock,
    addr: SocketAddr,
}

enum Slot {
    Free,
    Listener(Arc<Listener>),
    Conn(Arc<Conn>),
}

/// Connections and listeners by registry key (their slot), and connections by id.
#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<usize>,
    by_id: HashMap<Id, usize>,
    next_id: u64,
}

impl Table {
    fn take_slot(&mut self) -> usize {
        match self.free.pop() {
            Some(key) => key,
            None => {
                self.slots.push(Slot::Free);
                self.slots.len() - 1
            }
        }
    }

    fn release_slot(&mut self, key: usize) -> Slot {
        let slot = mem::replace(&mut self.slots[key], Slot::Free);
        self.free.push(key);
        slot
    }

    fn conn(&self, id: Id) -> Option<Arc<Conn>> {
        match self.slots.get(*self.by_id.get(&id)?)? {
            Slot::Conn(conn) => Some(Arc::clone(conn)),
            _ => None,
        }
    }
}

/// What only the loop touches: locked for a whole [`SockMan::run_once`].
struct LoopState {
    recv_buf: Box<[u8]>,
    ready: sys::Readiness,
    /// The connections to look at before the wait; swapped with [`SockMan::pending`] so both
    /// keep their memory.
    pending: Vec<Arc<Conn>>,
}

/// Bitcoin Core's socket manager: listeners, connections by [`Id`], and one I/O loop that
/// calls a [`Handler`]. See the [module docs](self) for the model.
///
/// `Send + Sync`; every method takes `&self`.
pub struct SockMan {
    options: Options,
    table: Mutex<Table>,
    /// Connections whose registration or queue changed since the loop last looked.
    pending: Mutex<Vec<Arc<Conn>>>,
    /// The loop is in (or about to enter) its OS wait: a change must notify it.
    waiting: AtomicBool,
    looper: Mutex<LoopState>,
    registry: sys::Registry,
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
            waiting: AtomicBool::new(false),
            registry,
        })
    }

    /// The options the manager was made with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Binds to `addr`, listens, and accepts from the loop from now on (Core's
    /// `BindAndStartListening`). May be called any number of times, also while the loop runs.
    /// Returns the address bound (port 0 picks a free port).
    ///
    /// # Errors
    /// The OS error of binding (e.g. `AddrInUse`), listening or registering the socket.
    pub fn bind_and_listen(&self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let sock = Sock::bind_listen(addr, self.options.listen_backlog)?;
        let addr = sock.local_addr()?;
        let listener = Arc::new(Listener { sock, addr });
        let socket = listener
            .sock
            .get()
            .ok_or_else(crate::error::not_connected)?;
        let mut table = lock(&self.table);
        let key = table.take_slot();
        // SAFETY: the socket stays in place inside the `Arc`, and is deregistered before the
        // last `Arc` can go: by `stop_listening` or `SockMan`'s `Drop`, the only places a
        // listener leaves the table.
        if let Err(e) = unsafe { self.registry.register(socket, key, SockEvent::RECV) } {
            table.release_slot(key);
            return Err(e);
        }
        table.slots[key] = Slot::Listener(Arc::clone(&listener));
        Ok(addr)
    }

    /// Closes every listening socket (Core's `StopListening`); connections stay.
    pub fn stop_listening(&self) {
        let mut table = lock(&self.table);
        for key in 0..table.slots.len() {
            if let Slot::Listener(listener) = &table.slots[key] {
                if let Some(socket) = listener.sock.get() {
                    let _ = self.registry.deregister(socket, key);
                }
                table.release_slot(key);
            }
        }
    }

    /// The addresses being listened on.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        let table = lock(&self.table);
        table
            .slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Listener(listener) => Some(listener.addr),
                _ => None,
            })
            .collect()
    }

    /// Connects to `addr` within `timeout` ([`Sock::connect`]) and adds the connection
    /// (Core's `ConnectAndMakeId` without a proxy). Blocks the calling thread for the connect,
    /// as Core's does. The loop watches the connection from its next iteration.
    ///
    /// # Errors
    /// As [`Sock::connect`]: [`SockError::ConnectTimeout`], [`SockError::Connect`] (refused,
    /// unreachable, ...).
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> Result<Id, SockError> {
        let sock = Sock::connect(addr, timeout)?;
        Ok(self.insert(sock))
    }

    /// Connects to `dest:port` through the SOCKS5 proxy at `proxy`
    /// ([`Sock::connect_via_socks5`]) and adds the tunnel (Core's `ConnectAndMakeId` with a
    /// proxy).
    ///
    /// # Errors
    /// As [`Sock::connect_via_socks5`]: [`Socks5Error::ProxyConnect`] when the proxy cannot be
    /// reached (Core's `proxy_failed`), another [`Socks5Error`] when the handshake fails.
    pub fn connect_via_socks5(
        &self,
        proxy: SocketAddr,
        dest: &str,
        port: u16,
        auth: Option<&Credentials>,
        timeout: Duration,
    ) -> Result<Id, Socks5Error> {
        let sock = Sock::connect_via_socks5(proxy, dest, port, auth, timeout)?;
        Ok(self.insert(sock))
    }

    /// Adds a connected sock made elsewhere (Core's `TestOnlyAddExistentConnection`, here
    /// for any use: a sock adopted from another library, a tunnel set up by hand).
    ///
    /// # Errors
    /// `NotConnected` for the invalid sock.
    pub fn add_connection(&self, sock: Sock) -> io::Result<Id> {
        if !sock.is_valid() {
            return Err(crate::error::not_connected());
        }
        Ok(self.insert(sock))
    }

    fn insert(&self, sock: Sock) -> Id {
        let conn = {
            let mut table = lock(&self.table);
            let key = table.take_slot();
            let id = Id(table.next_id);
            table.next_id += 1;
            let conn = Arc::new(Conn::new(id, key, sock));
            table.slots[key] = Slot::Conn(Arc::clone(&conn));
            table.by_id.insert(id, key);
            conn
        };
        self.mark_pending(&conn, &mut conn.lock());
        self.wake_if_waiting();
        conn.id
    }

    fn conn(&self, id: Id) -> Result<Arc<Conn>, SockManError> {
        lock(&self.table)
            .conn(id)
            .ok_or(SockManError::UnknownConnection(id))
    }

    /// Sends `data` on connection `id` (Core's `SendBytes`), queueing what the socket does
    /// not take now; the loop writes the queue as the socket drains. Returns how many bytes
    /// went to the socket at once (Core's return value); the rest are queued. Either all of
    /// `data` is taken (sent or queued) or, on an error, none of it.
    ///
    /// With `will_send_more` (Core's `MSG_MORE` hint) nothing is written now: the bytes are
    /// queued, so the sends that follow go out together in one write, at the latest at the
    /// loop's next iteration. Empty `data` returns 0.
    ///
    /// Callable from inside [`Handler`] events and, natively, from any thread; from another
    /// thread, bytes left queued wake the loop at once.
    ///
    /// # Errors
    /// [`SockManError::UnknownConnection`]; [`SockManError::SendQueueFull`] when the queue
    /// cannot take the bytes; [`SockManError::Send`] on a permanent error (now or earlier).
    pub fn send(&self, id: Id, data: &[u8], will_send_more: bool) -> Result<usize, SockManError> {
        let conn = self.conn(id)?;
        let mut sent = 0;
        {
            let mut state = conn.lock();
            if state.closed {
                return Err(SockManError::UnknownConnection(id));
            }
            if let Some(source) = state.send_error() {
                return Err(SockManError::Send { id, source });
            }
            if data.is_empty() {
                return Ok(0);
            }
            let queued = state.queue.len();
            if queued.saturating_add(data.len()) > self.options.send_queue_cap {
                return Err(SockManError::SendQueueFull {
                    id,
                    queued,
                    len: data.len(),
                    cap: self.options.send_queue_cap,
                });
            }
            if queued == 0 && !will_send_more {
                match conn.sock.send(data) {
                    Ok(n) => sent = n.min(data.len()),
                    Err(e) if !is_permanent(&e) => {}
                    Err(source) => {
                        state.fail_send(&source);
                        return Err(SockManError::Send { id, source });
                    }
                }
            }
            if sent == data.len() {
                return Ok(sent);
            }
            state.queue.extend(&data[sent..]);
            self.mark_pending(&conn, &mut state);
        }
        self.wake_if_waiting();
        Ok(sent)
    }

    /// Closes connection `id` (Core's `CloseConnection`): the socket is closed (at once, or
    /// as soon as a running loop iteration lets go of it) and queued bytes are dropped.
    /// Returns whether the connection existed and this call closed it. No event follows
    /// (except one a loop on another thread is delivering at that moment).
    pub fn close(&self, id: Id) -> bool {
        let conn = {
            let mut table = lock(&self.table);
            let Some(key) = table.by_id.remove(&id) else {
                return false;
            };
            match table.release_slot(key) {
                Slot::Conn(conn) => conn,
                // `by_id` names only connection slots.
                _ => return false,
            }
        };
        self.retire(&conn);
        true
    }

    /// Marks a connection closed and stops watching it; its socket closes when the last
    /// `Arc` goes: at once, unless a loop iteration holds it.
    fn retire(&self, conn: &Conn) {
        let mut state = conn.lock();
        state.closed = true;
        state.queue = Default::default();
        if mem::take(&mut state.pending) {
            lock(&self.pending).retain(|pending| !std::ptr::eq(&**pending, conn));
        }
        if state.registered.take().is_some() {
            if let Some(socket) = conn.sock.get() {
                let _ = self.registry.deregister(socket, conn.key);
            }
        }
    }

    /// How many connections exist (listeners not counted).
    pub fn connection_count(&self) -> usize {
        lock(&self.table).by_id.len()
    }

    /// Whether connection `id` exists.
    pub fn contains(&self, id: Id) -> bool {
        lock(&self.table).by_id.contains_key(&id)
    }

    /// Bytes accepted by [`send`](SockMan::send) on `id` and not yet written to the socket.
    ///
    /// # Errors
    /// [`SockManError::UnknownConnection`].
    pub fn send_queue_len(&self, id: Id) -> Result<usize, SockManError> {
        Ok(self.conn(id)?.lock().queue.len())
    }

    /// Our side's address of connection `id` (Core's `me` of `ConnectAndMakeId`).
    ///
    /// # Errors
    /// [`SockManError::UnknownConnection`]; [`SockManError::Io`] from `getsockname(2)`.
    pub fn local_addr(&self, id: Id) -> Result<SocketAddr, SockManError> {
        self.conn(id)?.sock.local_addr().map_err(SockManError::Io)
    }

    /// The peer's address of connection `id`.
    ///
    /// # Errors
    /// [`SockManError::UnknownConnection`]; [`SockManError::Io`] from `getpeername(2)`.
    pub fn peer_addr(&self, id: Id) -> Result<SocketAddr, SockManError> {
        self.conn(id)?.sock.peer_addr().map_err(SockManError::Io)
    }

    /// Asks [`Handler::should_try_to_send`] and [`Handler::should_try_to_recv`] about `id`
    /// again before the loop's next wait (and wakes the loop): call it when the answers
    /// change for a connection the loop is not touching, e.g. when reading may resume.
    ///
    /// # Errors
    /// [`SockManError::UnknownConnection`].
    pub fn recheck(&self, id: Id) -> Result<(), SockManError> {
        let conn = self.conn(id)?;
        self.mark_pending(&conn, &mut conn.lock());
        self.wake_if_waiting();
        Ok(())
    }

    /// Wakes the loop from its wait now (`polling`'s notify natively): e.g. after setting the
    /// [`ThreadInterrupt`] of [`run`](SockMan::run), so it returns at once instead of within
    /// [`MAX_WAIT_FOR_IO`]. A wake with no loop waiting makes the next wait return at once.
    ///
    /// # Errors
    /// The OS error of the notification.
    pub fn wake(&self) -> io::Result<()> {
        self.registry.notify()
    }

    fn mark_pending(&self, conn: &Arc<Conn>, state: &mut ConnState) {
        if !state.pending && !state.closed {
            state.pending = true;
            lock(&self.pending).push(Arc::clone(conn));
        }
    }

    /// Puts every connection marked pending back on the list (after a handler's panic lost
    /// some of them): O(connections), once.
    fn requeue_marked(&self) {
        let conns: Vec<Arc<Conn>> = lock(&self.table)
            .slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Conn(conn) => Some(Arc::clone(conn)),
                _ => None,
            })
            .collect();
        let marked: Vec<Arc<Conn>> = conns
            .into_iter()
            .filter(|conn| conn.lock().pending)
            .collect();
        // One that is on the list already comes twice, which only recomputes its interest.
        lock(&self.pending).extend(marked);
    }

    fn wake_if_waiting(&self) {
        // The loop sets `waiting` before it looks at `pending` under that lock; a change
        // pushed to `pending` after that look sees `waiting` set (the lock orders them).
        if self.waiting.load(Ordering::SeqCst) {
            let _ = self.registry.notify();
        }
    }

    /// Runs the loop until `interrupt` is set (Core's `ThreadSocketHandler` with
    /// `interruptNet`): [`run_once`](SockMan::run_once) with waits of at most
    /// [`MAX_WAIT_FOR_IO`], so it returns within about that of the interrupt, or at once
    /// after a [`wake`](SockMan::wake). Natively, run it on a thread of its own.
    ///
    /// # Errors
    /// The first error of [`run_once`](SockMan::run_once).
    ///
    /// ```
    /// use bitcoin_sock::sockman::{Handler, Id, SockMan};
    /// use bitcoin_sock::ThreadInterrupt;
    /// use std::net::SocketAddr;
    ///
    /// struct Refuse;
    /// impl Handler for Refuse {
    ///     fn new_connection_accepted(&mut self, _: &SockMan, _: Id, _: SocketAddr, _: SocketAddr) -> bool {
    ///         false
    ///     }
    ///     fn got_data(&mut self, _: &SockMan, _: Id, _: &[u8]) {}
    ///     fn got_eof(&mut self, _: &SockMan, _: Id) {}
    ///     fn got_permanent_read_error(&mut self, _: &SockMan, _: Id, _: &std::io::Error) {}
    /// }
    ///
    /// # #[cfg(not(target_family = "wasm"))] {
    /// let man = SockMan::new()?;
    /// man.bind_and_listen("127.0.0.1:0".parse().unwrap())?;
    /// let interrupt = ThreadInterrupt::new();
    /// std::thread::scope(|s| {
    ///     let thread = s.spawn(|| man.run(&mut Refuse, &interrupt));
    ///     interrupt.interrupt();
    ///     man.wake()?;
    ///     thread.join().expect("the loop does not panic")
    /// })?;
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run<H: Handler + ?Sized>(
        &self,
        handler: &mut H,
        interrupt: &ThreadInterrupt,
    ) -> io::Result<()> {
        while !interrupt.is_interrupted() {
            self.run_once(handler, MAX_WAIT_FOR_IO)?;
        }
        Ok(())
    }

    /// One iteration of the loop (see the [module docs](self#an-iteration)): one OS wait of at
    /// most `timeout` (`Duration::MAX`: no limit; zero: just look), then accept, send and
    /// receive for what is ready, calling `handler`. Returns how many sockets were ready.
    ///
    /// The way to drive the manager on WASI, and to embed it in a loop of your own.
    ///
    /// # Errors
    /// The OS error of the wait; `WouldBlock` when another `run_once` (another thread's, or
    /// one called from inside an event) is running on this manager.
    pub fn run_once<H: Handler + ?Sized>(
        &self,
        handler: &mut H,
        timeout: Duration,
    ) -> io::Result<usize> {
        let mut looper = match self.looper.try_lock() {
            Ok(looper) => looper,
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "SockMan::run_once is already running",
                ))
            }
            // A handler panicked in an earlier iteration, perhaps while the list of changed
            // connections was being worked through: take up every one still marked.
            Err(TryLockError::Poisoned(poisoned)) => {
                self.looper.clear_poison();
                let mut looper = poisoned.into_inner();
                looper.pending.clear();
                self.requeue_marked();
                looper
            }
        };
        let LoopState {
            recv_buf,
            ready,
            pending,
        } = &mut *looper;

        mem::swap(pending, &mut *lock(&self.pending));
        for conn in pending.drain(..) {
            self.service_pending(handler, &conn);
        }

        self.waiting.store(true, Ordering::SeqCst);
        let timeout = if lock(&self.pending).is_empty() {
            timeout
        } else {
            Duration::ZERO
        };
        let waited = self.registry.wait(ready, timeout);
        self.waiting.store(false, Ordering::SeqCst);
        waited?;

        let mut count = 0;
        for (key, occurred) in ready.iter() {
            let slot = match lock(&self.table).slots.get(key) {
                Some(Slot::Conn(conn)) => Slot::Conn(Arc::clone(conn)),
                Some(Slot::Listener(listener)) => Slot::Listener(Arc::clone(listener)),
                // Closed since the wait, or a wake-up.
                _ => continue,
            };
            count += 1;
            match slot {
                Slot::Conn(conn) => self.service_ready(handler, &conn, occurred, recv_buf),
                Slot::Listener(listener) => self.accept(handler, &listener),
                Slot::Free => {}
            }
        }

        handler.io_loop_completed_for_all(self);
        Ok(count)
    }

    /// A connection that changed since the last wait: write its queue, update what is
    /// watched.
    fn service_pending<H: Handler + ?Sized>(&self, handler: &mut H, conn: &Arc<Conn>) {
        let send_ok = handler.should_try_to_send(conn.id);
        let recv_ok = handler.should_try_to_recv(conn.id);
        let (send_error, drained, register_error) = {
            let mut state = conn.lock();
            state.pending = false;
            if state.closed {
                return;
            }
            let queued = !state.queue.is_empty();
            let send_error = if send_ok && state.send_error.is_none() {
                state.flush(&conn.sock).err()
            } else {
                None
            };
            let drained = queued && send_error.is_none() && state.queue.is_empty();
            (
                send_error,
                drained,
                self.update_registration(conn, &mut state, recv_ok, send_ok),
            )
        };
        self.report(handler, conn.id, send_error, register_error);
        // The queue drained here, before any wait (the socket took it all at once): the
        // handler hears it as from a wait that found the socket writable. (No receive
        // follows in this step, so the answer, Core's cancel_recv, has nothing to cancel.)
        if drained {
            handler.ready_to_send(self, conn.id);
        }
    }

    /// Calls the handler about failures found while the connection was locked.
    fn report<H: Handler + ?Sized>(
        &self,
        handler: &mut H,
        id: Id,
        send_error: Option<io::Error>,
        register_error: Option<io::Error>,
    ) {
        if let Some(e) = send_error {
            handler.got_permanent_send_error(self, id, &e);
        }
        if let Some(e) = register_error {
            handler.got_permanent_read_error(self, id, &e);
        }
    }

    /// Brings the registration in line with what the connection wants; an OS refusal ends
    /// reading (and is returned, to be reported as a read error).
    fn update_registration(
        &self,
        conn: &Conn,
        state: &mut ConnState,
        recv_ok: bool,
        send_ok: bool,
    ) -> Option<io::Error> {
        let wanted = state.wanted(recv_ok, send_ok);
        let socket = conn.sock.get()?;
        let result = match state.registered {
            Some(current) if current == wanted => return None,
            Some(_) => self.registry.reregister(socket, conn.key, wanted),
            // Nothing wanted and not registered: stay so.
            None if wanted.is_empty() => return None,
            // SAFETY: the socket stays in place inside the connection's `Arc`, and is
            // deregistered before the last `Arc` can go: `retire` (from `close` and `Drop`,
            // the only ways out of the table) deregisters it under this same lock and marks
            // it closed, and a closed connection is never registered again.
            None => unsafe { self.registry.register(socket, conn.key, wanted) },
        };
        match result {
            Ok(()) => {
                state.registered = Some(wanted);
                None
            }
            Err(e) => {
                state.recv_done = true;
                Some(e)
            }
        }
    }

    /// A connection the wait found ready: Core's `SocketHandlerConnected` for one socket.
    fn service_ready<H: Handler + ?Sized>(
        &self,
        handler: &mut H,
        conn: &Arc<Conn>,
        occurred: SockEvent,
        recv_buf: &mut [u8],
    ) {
        let id = conn.id;
        let interest = {
            let mut state = conn.lock();
            if state.closed {
                return;
            }
            match state.registered {
                Some(interest) if !interest.is_empty() => interest,
                // Watched for nothing, yet reported (an error or hang-up is reported
                // regardless): stop watching, or level-triggered waits would spin on it.
                _ => {
                    if state.registered.take().is_some() {
                        if let Some(socket) = conn.sock.get() {
                            let _ = self.registry.deregister(socket, conn.key);
                        }
                    }
                    return;
                }
            }
        };
        // An error is noticed by the operation it breaks, as in Core (which reads on ERR).
        let error = occurred.contains(SockEvent::ERR);
        let send_ready =
            interest.contains(SockEvent::SEND) && (error || occurred.contains(SockEvent::SEND));
        let mut recv_ready =
            interest.contains(SockEvent::RECV) && (error || occurred.contains(SockEvent::RECV));

        if send_ready {
            let (flushed, drained) = {
                let mut state = conn.lock();
                if state.closed {
                    return;
                }
                let flushed = state.flush(&conn.sock);
                (flushed, state.queue.is_empty())
            };
            match flushed {
                Err(e) => handler.got_permanent_send_error(self, id, &e),
                Ok(()) if drained => {
                    if handler.ready_to_send(self, id) {
                        recv_ready = false;
                    }
                }
                Ok(()) => {}
            }
        }

        // A handler may have closed it in `ready_to_send`.
        if recv_ready && !(send_ready && conn.lock().closed) {
            match conn.sock.recv(recv_buf) {
                Ok(0) => {
                    conn.lock().recv_done = true;
                    handler.got_eof(self, id);
                }
                Ok(n) => handler.got_data(self, id, &recv_buf[..n.min(recv_buf.len())]),
                Err(e) if !is_permanent(&e) => {}
                Err(e) => {
                    conn.lock().recv_done = true;
                    handler.got_permanent_read_error(self, id, &e);
                }
            }
        }

        handler.io_loop_completed_for_one(self, id);

        let send_ok = handler.should_try_to_send(id);
        let recv_ok = handler.should_try_to_recv(id);
        let register_error = {
            let mut state = conn.lock();
            if state.closed {
                return;
            }
            self.update_registration(conn, &mut state, recv_ok, send_ok)
        };
        self.report(handler, id, None, register_error);
    }

    /// A listener the wait found ready: Core's `SocketHandlerListening` for one socket.
    fn accept<H: Handler + ?Sized>(&self, handler: &mut H, listener: &Listener) {
        for _ in 0..ACCEPT_BATCH {
            // Would-block ends the batch; so does any other failure (the peer gave up before
            // the accept, out of descriptors, ...): Core logs it and tries again next time.
            let Ok((sock, them)) = listener.sock.accept() else {
                break;
            };
            let me = sock.local_addr().unwrap_or(listener.addr);
            let id = self.insert(sock);
            if !handler.new_connection_accepted(self, id, me, them) {
                self.close(id);
            }
        }
    }
}

impl Drop for SockMan {
    fn drop(&mut self) {
        let table = mem::take(&mut *lock(&self.table));
        for (key, slot) in table.slots.into_iter().enumerate() {
            match slot {
                Slot::Listener(listener) => {
                    if let Some(socket) = listener.sock.get() {
                        let _ = self.registry.deregister(socket, key);
                    }
                }
                Slot::Conn(conn) => self.retire(&conn),
                Slot::Free => {}
            }
        }
        lock(&self.pending).clear();
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
