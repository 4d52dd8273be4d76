//! Listeners: binding, stopping, and accepting from the loop (Core's `BindAndStartListening`,
//! `StopListening`, `SocketHandlerListening`).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::table::{Listener, Slot};
use super::{lock, Handler, SockMan};
use crate::{Sock, SockEvent};

/// Connections accepted from one ready listener in one iteration, so a flood of connects
/// cannot starve the established connections (Core accepts one).
const ACCEPT_BATCH: usize = 64;

impl SockMan {
    /// Binds to `addr`, listens, and accepts from the loop from now on (Core's
    /// `BindAndStartListening`). May be called any number of times, also while the loop runs.
    /// Returns the address bound (port 0 picks a free port).
    ///
    /// # Errors
    /// The OS error of binding (e.g. `AddrInUse`), listening or registering the socket.
    pub fn bind_and_listen(&self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let sock = Sock::bind_listen(addr, self.options.listen_backlog)?;
        let addr = sock.local_addr()?;
        let listener = Arc::new(Listener {
            sock,
            addr,
            open: Mutex::new(true),
        });
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

    /// Closes every listening socket (Core's `StopListening`); connections stay. No accept
    /// starts after this returns, also in an iteration that is accepting (from inside
    /// [`new_connection_accepted`](super::Handler::new_connection_accepted), or on another
    /// thread); a connection accepted just before may still be announced.
    pub fn stop_listening(&self) {
        let mut table = lock(&self.table);
        for key in 0..table.slots.len() {
            if let Slot::Listener(listener) = &table.slots[key] {
                // Waits for an accept in progress on the loop's thread.
                *lock(&listener.open) = false;
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

    /// A listener the wait found ready: Core's `SocketHandlerListening` for one socket.
    pub(super) fn accept<H: Handler + ?Sized>(&self, handler: &mut H, listener: &Listener) {
        for _ in 0..ACCEPT_BATCH {
            let accepted = {
                let open = lock(&listener.open);
                if !*open {
                    break;
                }
                listener.sock.accept()
            };
            // Would-block ends the batch; so does any other failure (the peer gave up before
            // the accept, out of descriptors, ...): Core logs it and tries again next time.
            let Ok((sock, them)) = accepted else {
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
