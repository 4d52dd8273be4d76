//! The loop: [`SockMan::run`] and [`SockMan::run_once`], Core's `ThreadSocketHandler`.

use std::io;
use std::mem;
use std::sync::atomic::Ordering;
use std::sync::{Arc, TryLockError};
use std::time::Duration;

use super::conn::{Conn, ConnState};
use super::table::Slot;
use super::{lock, Handler, SockMan};
use crate::error::is_permanent;
use crate::{sys, SockEvent, ThreadInterrupt, MAX_WAIT_FOR_IO};

/// What only the loop touches: locked for a whole [`SockMan::run_once`].
pub(super) struct LoopState {
    pub(super) recv_buf: Box<[u8]>,
    pub(super) ready: sys::Readiness,
    /// The connections to look at before the wait; swapped with [`SockMan::pending`] so both
    /// keep their memory.
    pub(super) pending: Vec<Arc<Conn>>,
}

impl SockMan {
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

    /// One iteration of the loop (see the [module docs](crate::sockman#an-iteration)): one OS wait of at
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
            if conn.lock().closing.is_some() {
                conn.lock().pending = false;
                self.service_closing(&conn, SockEvent::empty(), recv_buf);
            } else {
                self.service_pending(handler, &conn);
            }
        }

        // A graceful close's deadline ends the wait too.
        let timeout = match self.expire_closing() {
            Some(deadline) => timeout.min(deadline),
            None => timeout,
        };
        self.waiting.store(true, Ordering::SeqCst);
        // After `waiting` is set: a close from another thread after this look wakes the wait.
        let timeout = self.resume_listeners(timeout);
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
                Slot::Conn(conn) if conn.lock().closing.is_some() => {
                    self.service_closing(&conn, occurred, recv_buf);
                }
                Slot::Conn(conn) => self.service_ready(handler, &conn, occurred, recv_buf),
                Slot::Listener(listener) => self.accept(handler, &listener),
                Slot::Free => {}
            }
        }

        self.expire_closing();
        // Sends from other threads, and connections an event closed before their turn ended.
        self.enforce_budget(handler);
        handler.io_loop_completed_for_all(self);
        Ok(count)
    }

    /// A connection that changed since the last wait: write its queue, update what is
    /// watched.
    fn service_pending<H: Handler + ?Sized>(&self, handler: &mut H, conn: &Arc<Conn>) {
        // Closed by an event of this step (this list was taken before): no question about it.
        if conn.is_closed() {
            return;
        }
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
        // The queue drained here, before any wait (the socket took it all at once): the
        // handler hears it as from a wait that found the socket writable. (No receive
        // follows in this step, so the answer, Core's cancel_recv, has nothing to cancel.)
        if self.report(handler, conn, send_error, register_error) && drained {
            handler.ready_to_send(self, conn.id);
        }
        self.enforce_budget(handler);
    }

    /// Calls the handler about failures found while the connection was locked; whether the
    /// connection is still open afterwards (an event may close it, and no event follows then).
    fn report<H: Handler + ?Sized>(
        &self,
        handler: &mut H,
        conn: &Conn,
        send_error: Option<io::Error>,
        register_error: Option<io::Error>,
    ) -> bool {
        if let Some(e) = send_error {
            handler.got_permanent_send_error(self, conn.id, &e);
            if conn.is_closed() {
                return false;
            }
        }
        if let Some(e) = register_error {
            handler.got_permanent_read_error(self, conn.id, &e);
        }
        !conn.is_closed()
    }

    /// Brings the registration in line with what the connection wants; an OS refusal ends
    /// reading (and is returned, to be reported as a read error).
    pub(super) fn update_registration(
        &self,
        conn: &Conn,
        state: &mut ConnState,
        recv_ok: bool,
        send_ok: bool,
    ) -> Option<io::Error> {
        self.account(state);
        let wanted = state.wanted(recv_ok, send_ok, self.options.pause_recv_above);
        let socket = conn.sock.socket()?;
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
                        if let Some(socket) = conn.sock.socket() {
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
            // `close` promises that no event follows: an event may have closed it.
            if conn.is_closed() {
                return;
            }
        }

        if recv_ready {
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
            if conn.is_closed() {
                return;
            }
        }

        handler.io_loop_completed_for_one(self, id);
        if conn.is_closed() {
            return;
        }

        let send_ok = handler.should_try_to_send(id);
        let recv_ok = handler.should_try_to_recv(id);
        let register_error = {
            let mut state = conn.lock();
            if state.closed {
                return;
            }
            self.update_registration(conn, &mut state, recv_ok, send_ok)
        };
        self.report(handler, conn, None, register_error);
        self.enforce_budget(handler);
    }
}
