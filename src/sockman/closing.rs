//! Graceful close: [`SockMan::close_after_send`] — send what is queued, then close, bounded by
//! a deadline — and the loop's service of the connections that are closing.

use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{Conn, ConnState};
use super::table::Slot;
use super::{lock, Id, SockMan};
use crate::error::is_permanent;
use crate::{sys, SockEvent};

/// A connection's graceful close, in its [`ConnState`](super::conn::ConnState).
#[derive(Clone, Copy, Debug)]
pub(super) struct Closing {
    /// When to give up sending; `None`: never (a timeout too big for the clock).
    deadline: Option<Instant>,
    /// The queue went out and the host was asked to hand it all to its socket.
    flush_started: bool,
    /// The sending half is shut: the queue went out, the peer has its end of stream.
    send_shut: bool,
}

impl Closing {
    /// Waiting for the host to take the last bytes before the sending half is shut: watched
    /// for SEND, which the host reports when they are taken.
    pub(super) fn awaits_flush(&self) -> bool {
        self.flush_started && !self.send_shut
    }
}

impl SockMan {
    /// Closes connection `id` once its queued bytes are sent, giving up `timeout` from now:
    /// "send this, then close", as Core's HTTP server does after a reply (Core's
    /// `CloseConnection` and [`close`](SockMan::close) drop what is queued). What `SO_LINGER`
    /// promises a blocking close, done by the loop, so neither the caller nor the loop waits.
    ///
    /// From this call on the id is gone, as after [`close`](SockMan::close): no event follows
    /// for it (but one a loop on another thread is delivering at that moment),
    /// [`send`](SockMan::send) and [`close`](SockMan::close) do not know it, and it is not in
    /// [`connection_count`](SockMan::connection_count). The loop then, with no handler
    /// involved (`should_try_to_send` is not asked):
    /// 1. writes the queue as the socket drains;
    /// 2. once it is written (on WASI: once the host has handed it all to its socket), shuts
    ///    the sending half (Core's `ShutdownSend`): the peer reads every byte, then end of
    ///    stream;
    /// 3. reads and drops what the peer still sends (closing a socket with unread bytes would
    ///    reset the connection, and the peer could lose the end of the reply), until the
    ///    peer's end of stream, then closes;
    /// 4. at the deadline closes whatever the state: with bytes still queued it resets the
    ///    connection where the host can (`SO_LINGER` 0 natively: the peer reads
    ///    `ConnectionReset`, and the kernel drops what it held); on WASI, which has no reset,
    ///    the host still sends what it took from the last write, then the peer reads end of
    ///    stream. A peer that reads everything but keeps its side open is closed at the
    ///    deadline as well, without a reset (its end of stream was sent).
    ///
    /// A permanent send error closes at once. The loop waits no longer than the nearest
    /// deadline, so [`run`](SockMan::run) and [`run_once`](SockMan::run_once) keep each
    /// deadline; [`closing_count`](SockMan::closing_count) says how many closes are under
    /// way (e.g. to keep calling `run_once` before a program exits). Dropping the manager
    /// closes them at once.
    ///
    /// Returns whether the connection existed; `false` for an unknown id.
    ///
    /// ```
    /// # bitcoin_sock::wasip3_main!(); // WASI 0.3: `main` entered where sockets may wait
    /// use bitcoin_sock::sockman::{Handler, Id, SockMan};
    /// use bitcoin_sock::{Sock, SockEvent, SockIo, ThreadInterrupt};
    /// use std::net::SocketAddr;
    /// use std::time::Duration;
    ///
    /// /// Answers one request, then closes.
    /// struct Reply;
    /// impl Handler for Reply {
    ///     fn new_connection_accepted(&mut self, _: &SockMan, _: Id, _: SocketAddr, _: SocketAddr) -> bool {
    ///         true
    ///     }
    ///     fn got_data(&mut self, man: &SockMan, id: Id, _request: &[u8]) {
    ///         let _ = man.send(id, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false);
    ///         man.close_after_send(id, Duration::from_secs(5));
    ///     }
    ///     fn got_eof(&mut self, man: &SockMan, id: Id) {
    ///         man.close(id);
    ///     }
    ///     fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, _: &std::io::Error) {
    ///         man.close(id);
    ///     }
    /// }
    ///
    /// let man = SockMan::new()?;
    /// let addr = man.bind_and_listen("127.0.0.1:0".parse()?)?;
    /// let client = Sock::connect(addr, Duration::from_secs(5))?;
    /// client.send(b"GET / HTTP/1.1\r\n\r\n")?;
    /// let mut reply = Vec::new();
    /// loop {
    ///     man.run_once(&mut Reply, Duration::from_millis(10))?;
    ///     let mut buf = [0; 256];
    ///     match client.recv(&mut buf) {
    ///         Ok(0) => break, // the reply, then end of stream
    ///         Ok(n) => reply.extend_from_slice(&buf[..n]),
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
    ///         Err(e) => return Err(e.into()),
    ///     }
    /// }
    /// assert!(reply.ends_with(b"\r\n\r\nok"));
    /// drop(client); // the manager reads its end of stream and closes
    /// while man.closing_count() > 0 {
    ///     man.run_once(&mut Reply, Duration::from_millis(10))?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_after_send(&self, id: Id, timeout: Duration) -> bool {
        let conn = {
            let mut table = lock(&self.table);
            let Some(key) = table.by_id.remove(&id) else {
                return false;
            };
            match table.slots.get(key) {
                // The slot stays: the registry still reports the socket under its key.
                Some(Slot::Conn(conn)) => Arc::clone(conn),
                // `by_id` names only connection slots.
                _ => return false,
            }
        };
        {
            let mut state = conn.lock();
            state.closing = Some(Closing {
                deadline: Instant::now().checked_add(timeout),
                flush_started: false,
                send_shut: false,
            });
            lock(&self.closing).push(Arc::clone(&conn));
            self.mark_pending(&conn, &mut state);
        }
        self.wake_if_waiting();
        true
    }

    /// How many connections [`close_after_send`](SockMan::close_after_send) is still
    /// closing.
    pub fn closing_count(&self) -> usize {
        lock(&self.closing).len()
    }

    /// A closing connection's turn in the loop: before the wait (`occurred` empty) or after
    /// it found the socket ready. Returns without a handler call.
    pub(super) fn service_closing(
        &self,
        conn: &Arc<Conn>,
        occurred: SockEvent,
        recv_buf: &mut [u8],
    ) {
        let done = {
            let mut state = conn.lock();
            let Some(mut closing) = state.closing.filter(|_| !state.closed) else {
                return;
            };
            if state.send_error.is_none() {
                // An error drops the queue and is remembered: the close is done.
                let _ = state.flush(&conn.sock);
            }
            let sent = state.queue.is_empty() && state.send_error.is_none();
            if sent && !closing.send_shut {
                if let Some(socket) = conn.sock.socket() {
                    if !closing.flush_started {
                        closing.flush_started = true;
                        if let Err(e) = sys::start_flush(socket) {
                            state.fail_send(&e);
                        }
                    }
                    // Shut only once the host has the bytes (a host may drop what it holds),
                    // and with nothing unread where the host can tell (jco's shutdown is a
                    // close, which a byte left unread makes a reset).
                    if state.send_error.is_none() && sys::is_flushed(socket) {
                        drop_readable(conn, &mut state, recv_buf);
                        closing.send_shut = true;
                        // Fails only on a socket already broken, which the reads find.
                        let _ = conn.sock.shutdown(Shutdown::Write);
                        // jco's shutdown closes both halves, and then no wait reports the
                        // end of stream this reads at once (elsewhere: nothing yet).
                        drop_readable(conn, &mut state, recv_buf);
                    }
                }
            }
            if occurred.intersects(SockEvent::RECV | SockEvent::ERR) {
                drop_readable(conn, &mut state, recv_buf);
            }
            state.closing = Some(closing);
            // Done when nothing can be sent, or all was and the peer has ended too.
            let done = state.send_error.is_some() || (closing.send_shut && state.recv_done);
            // What is left: the queue to write or the host's flush (SEND), the peer's end of
            // stream (RECV).
            done || self
                .update_registration(conn, &mut state, true, true)
                .is_some()
        };
        if done {
            self.finish_closing(conn, false);
        }
    }

    /// Closes the closing connections whose deadline passed, resetting those with bytes still
    /// queued; returns the time until the nearest deadline left.
    pub(super) fn expire_closing(&self) -> Option<Duration> {
        let closing = lock(&self.closing).clone();
        if closing.is_empty() {
            // No clock read: a host without sockets (and so without closes) may have none.
            return None;
        }
        let now = Instant::now();
        let mut nearest: Option<Duration> = None;
        for conn in closing {
            let (deadline, unsent) = {
                let state = conn.lock();
                let deadline = state.closing.and_then(|closing| closing.deadline);
                (deadline, !state.queue.is_empty())
            };
            match deadline {
                Some(deadline) if deadline <= now => self.finish_closing(&conn, unsent),
                Some(deadline) => {
                    let left = deadline - now;
                    nearest = Some(nearest.map_or(left, |nearest| nearest.min(left)));
                }
                None => {}
            }
        }
        nearest
    }

    /// Ends a graceful close: the slot is freed, the socket stops being watched and closes
    /// (reset first when `reset`).
    fn finish_closing(&self, conn: &Arc<Conn>, reset: bool) {
        if reset {
            if let Some(socket) = conn.sock.socket() {
                // A socket that refuses gets an ordinary close, the best there is.
                let _ = sys::reset_on_close(socket);
            }
        }
        {
            let mut table = lock(&self.table);
            if matches!(table.slots.get(conn.key), Some(Slot::Conn(slot)) if Arc::ptr_eq(slot, conn))
            {
                table.release_slot(conn.key);
            }
        }
        self.retire(conn);
        lock(&self.closing).retain(|closing| !Arc::ptr_eq(closing, conn));
    }
}

/// How many receives one turn of a closing connection makes at most: a peer that keeps
/// sending cannot hold the loop, and what it sends beyond waits for the next turn.
const DROP_READS_PER_TURN: usize = 16;

/// Reads and drops what the peer sent, noting its end of stream or a failed read.
fn drop_readable(conn: &Conn, state: &mut ConnState, recv_buf: &mut [u8]) {
    for _ in 0..DROP_READS_PER_TURN {
        if state.recv_done {
            return;
        }
        match conn.sock.recv(recv_buf) {
            Ok(0) => state.recv_done = true,
            Ok(_) => {}
            Err(e) if !is_permanent(&e) => return,
            Err(_) => state.recv_done = true,
        }
    }
}
