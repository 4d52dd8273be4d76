//! Listeners: binding, stopping, and accepting from the loop (Core's `BindAndStartListening`,
//! `StopListening`, `SocketHandlerListening`), the pause of a listener whose accept fails,
//! and the pause a user asks for.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::table::{ListenState, Listener, Slot};
use super::{lock, Handler, SockMan};
use crate::{OpError, Sock, SockEvent, MAX_WAIT_FOR_IO};

/// Connections accepted from one ready listener in one iteration, so a flood of connects
/// cannot starve the established connections (Core accepts one).
const ACCEPT_BATCH: usize = 64;

/// The first pause of a listener whose accept failed (out of descriptors, of buffers, ...);
/// each failure in a row doubles it, up to [`MAX_WAIT_FOR_IO`].
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl SockMan {
    /// Binds to `addr`, listens, and accepts from the loop from now on (Core's
    /// `BindAndStartListening`). May be called any number of times, also while the loop runs.
    /// Returns the address bound (port 0 picks a free port).
    ///
    /// # Errors
    /// The [`OpError`] of [`Sock::bind_listen`] (e.g. `AddrInUse`: `bind() to 127.0.0.1:8333
    /// failed: ...`); an [`OpError`] of `listen` on `addr` when registering the listening
    /// socket with the loop fails.
    pub fn bind_and_listen(&self, addr: SocketAddr) -> Result<SocketAddr, OpError> {
        let sock = Sock::bind_listen(addr, self.options.listen_backlog)?;
        let fail = |err| OpError::new("listen", "on", addr.to_string(), err);
        let addr = sock.local_addr().map_err(fail)?;
        let mut table = lock(&self.table);
        let key = table.take_slot();
        let listener = Arc::new(Listener {
            sock,
            addr,
            key,
            state: Mutex::new(ListenState {
                open: true,
                paused_until: None,
                backoff: Duration::ZERO,
                held: false,
            }),
        });
        let Some(socket) = listener.sock.socket() else {
            table.release_slot(key);
            return Err(fail(crate::error::not_connected()));
        };
        // SAFETY: the socket stays in place inside the `Arc`, and is deregistered before the
        // last `Arc` can go: by `stop_listening` or `SockMan`'s `Drop`, the only places a
        // listener leaves the table.
        if let Err(e) = unsafe { self.registry.register(socket, key, SockEvent::RECV) } {
            table.release_slot(key);
            return Err(fail(e));
        }
        table.slots[key] = Slot::Listener(Arc::clone(&listener));
        Ok(addr)
    }

    /// Closes every listening socket (Core's `StopListening`); connections stay. No accept
    /// starts after this returns, also in an iteration that is accepting (from inside
    /// [`new_connection_accepted`](super::Handler::new_connection_accepted), or on another
    /// thread); a connection accepted just before may still be announced.
    pub fn stop_listening(&self) {
        let mut table = lock(&self.table);
        for key in 0..table.slots.len() {
            if let Slot::Listener(listener) = &table.slots[key] {
                // Waits for an accept in progress on the loop's thread.
                lock(&listener.state).open = false;
                if let Some(socket) = listener.sock.socket() {
                    let _ = self.registry.deregister(socket, key);
                }
                table.release_slot(key);
            }
        }
    }

    /// Stops accepting on the listener bound to `addr` (an address
    /// [`bind_and_listen`](SockMan::bind_and_listen) returned) until
    /// [`resume_listening`](SockMan::resume_listening), e.g. while the node has all the
    /// inbound peers it takes (mio users deregister the listener). The socket stays bound and
    /// listening: connections queue in the kernel's backlog (past it the OS refuses or drops
    /// them) and are accepted after the resume. No accept starts after this returns, as for
    /// [`stop_listening`](SockMan::stop_listening). Pausing a paused listener does nothing.
    ///
    /// # Errors
    /// `NotFound` when no listener is bound to `addr`; the OS error of changing the socket's
    /// registration (the listener is not paused then).
    ///
    /// ```
    /// use bitcoin_sock::sockman::SockMan;
    ///
    /// let man = SockMan::new()?;
    /// let addr = man.bind_and_listen("127.0.0.1:0".parse().unwrap())?;
    /// man.pause_listening(addr)?;
    /// assert!(man.is_listening_paused(addr)?);
    /// man.resume_listening(addr)?;
    /// assert!(!man.is_listening_paused(addr)?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pause_listening(&self, addr: SocketAddr) -> io::Result<()> {
        let listener = self.listener(addr)?;
        // Waits for an accept in progress on the loop's thread.
        let mut state = lock(&listener.state);
        if state.held || !state.open {
            return Ok(());
        }
        if state.paused_until.is_none() {
            if let Some(socket) = listener.sock.socket() {
                self.registry
                    .reregister(socket, listener.key, SockEvent::empty())?;
            }
        }
        state.held = true;
        Ok(())
    }

    /// Accepts again on the listener bound to `addr` after
    /// [`pause_listening`](SockMan::pause_listening); the connections that queued meanwhile
    /// are accepted from the next iteration. Resuming a listener that is not paused does
    /// nothing (one paused after failed accepts resumes when its back-off ends).
    ///
    /// # Errors
    /// `NotFound` when no listener is bound to `addr`; the OS error of changing the socket's
    /// registration (the listener stays paused then).
    pub fn resume_listening(&self, addr: SocketAddr) -> io::Result<()> {
        let listener = self.listener(addr)?;
        let mut state = lock(&listener.state);
        if !state.held {
            return Ok(());
        }
        if state.paused_until.is_none() {
            if let Some(socket) = listener.sock.socket() {
                self.registry
                    .reregister(socket, listener.key, SockEvent::RECV)?;
            }
        }
        state.held = false;
        Ok(())
    }

    /// Whether the listener bound to `addr` is paused by
    /// [`pause_listening`](SockMan::pause_listening) (not by failed accepts' back-off).
    ///
    /// # Errors
    /// `NotFound` when no listener is bound to `addr`.
    pub fn is_listening_paused(&self, addr: SocketAddr) -> io::Result<bool> {
        let listener = self.listener(addr)?;
        let held = lock(&listener.state).held;
        Ok(held)
    }

    /// The listener bound to `addr`.
    fn listener(&self, addr: SocketAddr) -> io::Result<Arc<Listener>> {
        let table = lock(&self.table);
        table
            .slots
            .iter()
            .find_map(|slot| match slot {
                Slot::Listener(listener) if listener.addr == addr => Some(Arc::clone(listener)),
                _ => None,
            })
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no listener on {addr}"))
            })
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

    /// A listener the wait found ready: Core's `SocketHandlerListening` for one socket.
    pub(super) fn accept<H: Handler + ?Sized>(&self, handler: &mut H, listener: &Arc<Listener>) {
        for _ in 0..ACCEPT_BATCH {
            let accepted = {
                let mut state = lock(&listener.state);
                if !state.open || state.held {
                    break;
                }
                let accepted = listener.sock.accept();
                if accepted.is_ok() {
                    state.backoff = Duration::ZERO;
                }
                accepted
            };
            let (sock, them) = match accepted {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    handler.got_accept_error(self, listener.addr, &e);
                    if gone_before_accept(&e) {
                        continue;
                    }
                    // Out of descriptors, buffers, ...: the listener stays ready (its
                    // connections wait) and every accept would fail the same way, so a
                    // level-triggered wait would spin on it. Not watched for a while.
                    self.pause(listener);
                    break;
                }
            };
            let me = sock.local_addr().unwrap_or(listener.addr);
            let id = self.insert(sock);
            if !handler.new_connection_accepted(self, id, me, them) {
                self.close(id);
            }
        }
    }

    /// Stops watching `listener` until its back-off passes or a connection closes.
    fn pause(&self, listener: &Arc<Listener>) {
        {
            let mut state = lock(&listener.state);
            state.backoff = (state.backoff * 2).clamp(ACCEPT_BACKOFF, MAX_WAIT_FOR_IO);
            state.paused_until = Some(Instant::now() + state.backoff);
            if let Some(socket) = listener.sock.socket() {
                // Still registered (nothing to read is reported for nothing); on failure it
                // stays watched and is tried again at the next wait, as before.
                let _ = self
                    .registry
                    .reregister(socket, listener.key, SockEvent::empty());
            }
        }
        lock(&self.paused).push(Arc::clone(listener));
    }

    /// Before a wait: watches again the paused listeners whose back-off passed, or all of
    /// them once a connection closed (a descriptor may be free); returns `timeout`, cut to
    /// end when the next back-off does.
    pub(super) fn resume_listeners(&self, timeout: Duration) -> Duration {
        let mut paused = lock(&self.paused);
        if paused.is_empty() {
            return timeout;
        }
        let conn_closed = self.conn_closed.swap(false, Ordering::AcqRel);
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        paused.retain(|listener| {
            let mut state = lock(&listener.state);
            match state.paused_until {
                // Stopped meanwhile: deregistered already.
                _ if !state.open => false,
                Some(until) if !conn_closed && until > now => {
                    next = Some(next.map_or(until, |next| next.min(until)));
                    true
                }
                _ => {
                    state.paused_until = None;
                    // Paused by the user too: resume_listening watches it again.
                    if state.held {
                        return false;
                    }
                    if let Some(socket) = listener.sock.socket() {
                        let _ = self
                            .registry
                            .reregister(socket, listener.key, SockEvent::RECV);
                    }
                    false
                }
            }
        });
        next.map_or(timeout, |until| {
            timeout.min(until.saturating_duration_since(now))
        })
    }
}

/// Whether an accept failed for that one connection only (its peer gave up, or a signal),
/// so the next accept may succeed.
fn gone_before_accept(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
