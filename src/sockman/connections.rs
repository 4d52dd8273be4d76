//! Connections by id: connecting, adding, sending (with the capped queue), closing, and the
//! list of connections the loop looks at before its next wait.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::conn::{Conn, ConnState};
use super::table::Slot;
use super::{lock, Id, SockMan, SockManError};
use crate::error::is_permanent;
use crate::socks5::Credentials;
use crate::{Sock, SockError, Socks5Error};

impl SockMan {
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

    /// Connects to `dest`, given as `"host:port"`, `"[ipv6]:port"` or `"unix:<path>"`
    /// ([`Sock::connect_by_name`]: a name is looked up and each address tried in turn, with
    /// `timeout` per attempt) and adds the connection (Core's `ConnectNode` +
    /// `ConnectAndMakeId`). Blocks the calling thread for the lookup and the attempts.
    ///
    /// # Errors
    /// As [`Sock::connect_by_name`]: [`SockError::Resolve`] for a malformed `dest` or a name
    /// that does not resolve; else the last attempt's error.
    pub fn connect_by_name(&self, dest: &str, timeout: Duration) -> Result<Id, SockError> {
        let sock = Sock::connect_by_name(dest, timeout)?;
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

    pub(super) fn insert(&self, sock: Sock) -> Id {
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

    pub(super) fn conn(&self, id: Id) -> Result<Arc<Conn>, SockManError> {
        lock(&self.table)
            .conn(id)
            .ok_or(SockManError::UnknownConnection(id))
    }

    /// Sends `data` on connection `id` (Core's `SendBytes`), queueing what the socket does
    /// not take now; the loop writes the queue as the socket drains. Returns how many bytes
    /// went to the socket at once (Core's return value); the rest are queued. Either all of
    /// `data` is taken (sent or queued) or, on an error, none of it.
    ///
    /// A message is taken whole onto an empty queue, however long (Core queues every message
    /// whole and lets `-maxsendbuffer` only pause its message processing); behind queued bytes
    /// it is taken only if the queue stays within [`Options::send_queue_cap`](super::Options::send_queue_cap). So a
    /// connection's queue holds at most the larger of the cap and the longest message sent
    /// to it onto an empty queue; with a cap of 0, one message at a time.
    ///
    /// With `will_send_more` (Core's `MSG_MORE` hint) nothing is written now: the bytes are
    /// queued, and a loop waiting on another thread is not woken, so the sends that follow
    /// usually go out together in one write. The loop writes the queue whenever it next looks
    /// at the connection: at once after a send without the hint (which wakes it) or a
    /// [`wake`](SockMan::wake), else at its next iteration, which a loop already running may
    /// start before the message is complete (one write is likely, not promised, as with
    /// `MSG_MORE`). Empty `data` returns 0.
    ///
    /// Callable from inside [`Handler`](super::Handler) events and, natively, from any thread; from another
    /// thread, bytes left queued (without `will_send_more`) wake the loop at once.
    ///
    /// # Errors
    /// [`SockManError::UnknownConnection`]; [`SockManError::SendQueueFull`] when bytes are
    /// queued and these would take the queue past the cap; [`SockManError::Send`] on a
    /// permanent error (now or earlier).
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
            if queued > 0 && queued.saturating_add(data.len()) > self.options.send_queue_cap {
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
            self.account(&mut state);
            self.mark_pending(&conn, &mut state);
        }
        // The rest of the message follows: let a waiting loop sleep until it has come.
        if !will_send_more {
            self.wake_if_waiting();
        }
        Ok(sent)
    }

    /// Closes connection `id` (Core's `CloseConnection`): the socket is closed (at once, or
    /// as soon as a running loop iteration lets go of it) and queued bytes are dropped
    /// ([`close_after_send`](SockMan::close_after_send) sends them first).
    /// Returns whether the connection existed and this call closed it.
    ///
    /// No event about `id` follows: called inside an event of the loop, not the rest of that
    /// connection's step (no [`io_loop_completed_for_one`](super::Handler::io_loop_completed_for_one),
    /// no [`should_try_to_send`](super::Handler::should_try_to_send) /
    /// [`should_try_to_recv`](super::Handler::should_try_to_recv)) nor anything later; called
    /// from another thread, only an event the loop is delivering at that moment may still
    /// come.
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
        // Its descriptor is free: a listener paused for want of one may accept again.
        self.conn_closed.store(true, Ordering::Release);
        if !lock(&self.paused).is_empty() {
            self.wake_if_waiting();
        }
        true
    }

    /// Marks a connection closed and stops watching it; its socket closes when the last
    /// `Arc` goes: at once, unless a loop iteration holds it.
    pub(super) fn retire(&self, conn: &Conn) {
        let mut state = conn.lock();
        state.closed = true;
        state.queue = Default::default();
        state.held = 0;
        self.account(&mut state);
        if mem::take(&mut state.pending) {
            lock(&self.pending).retain(|pending| !std::ptr::eq(&**pending, conn));
        }
        if state.registered.take().is_some() {
            if let Some(socket) = conn.sock.socket() {
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
        let conn = self.conn(id)?;
        conn.sock
            .local_addr()
            .map_err(|source| SockManError::Io { id, source })
    }

    /// The peer's address of connection `id`.
    ///
    /// # Errors
    /// [`SockManError::UnknownConnection`]; [`SockManError::Io`] from `getpeername(2)`.
    pub fn peer_addr(&self, id: Id) -> Result<SocketAddr, SockManError> {
        let conn = self.conn(id)?;
        conn.sock
            .peer_addr()
            .map_err(|source| SockManError::Io { id, source })
    }

    /// Asks [`Handler::should_try_to_send`](super::Handler::should_try_to_send) and [`Handler::should_try_to_recv`](super::Handler::should_try_to_recv) about `id`
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
    /// [`ThreadInterrupt`](crate::ThreadInterrupt) of [`run`](SockMan::run), so it returns at once instead of within
    /// [`MAX_WAIT_FOR_IO`](crate::MAX_WAIT_FOR_IO). A wake with no loop waiting makes the next wait return at once.
    ///
    /// # Errors
    /// The OS error of the notification.
    pub fn wake(&self) -> io::Result<()> {
        self.registry.notify()
    }

    pub(super) fn mark_pending(&self, conn: &Arc<Conn>, state: &mut ConnState) {
        if !state.pending && !state.closed {
            state.pending = true;
            lock(&self.pending).push(Arc::clone(conn));
        }
    }

    /// Puts every connection marked pending back on the list (after a handler's panic lost
    /// some of them): O(connections), once.
    pub(super) fn requeue_marked(&self) {
        let conns = lock(&self.table).conns();
        let marked: Vec<Arc<Conn>> = conns
            .into_iter()
            .filter(|conn| conn.lock().pending)
            .collect();
        // One that is on the list already comes twice, which only recomputes its interest.
        lock(&self.pending).extend(marked);
    }

    pub(super) fn wake_if_waiting(&self) {
        // The loop sets `waiting` before it looks at `pending` under that lock; a change
        // pushed to `pending` after that look sees `waiting` set (the lock orders them).
        if self.waiting.load(Ordering::SeqCst) {
            let _ = self.registry.notify();
        }
    }
}
