//! [`Handler`]: the loop's events and flow-control questions (Core's `SockMan` virtual
//! methods).

use std::io;
use std::net::SocketAddr;

use super::{Id, SockMan};

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
    /// fail with [`SockManError::Send`](super::SockManError::Send). The default does nothing; closing is usual.
    fn got_permanent_send_error(&mut self, man: &SockMan, id: Id, err: &io::Error) {
        let _ = (man, id, err);
    }

    /// Accepting from the listener on `listen_addr` failed (Core logs it: `socket error
    /// accept failed: <NetworkErrorString>`). Would-block is no failure and is not reported.
    /// After a failure that would repeat (out of descriptors or buffers, e.g. `EMFILE` under
    /// a flood of peers) the listener is not watched until a connection of this manager
    /// closes or [`ACCEPT_BACKOFF`](super::ACCEPT_BACKOFF) passes, doubled by each failure in
    /// a row up to [`MAX_WAIT_FOR_IO`](crate::MAX_WAIT_FOR_IO), so the loop does not spin on
    /// it; a failure of one connection only (its peer gave up: `ConnectionAborted`) is not
    /// paused for. The default does nothing.
    fn got_accept_error(&mut self, man: &SockMan, listen_addr: SocketAddr, err: &io::Error) {
        let _ = (man, listen_addr, err);
    }

    /// All connections together hold more than
    /// [`Options::memory_budget`](super::Options::memory_budget) (`used` bytes), and this
    /// one holds the most (`held`: its send queue and what
    /// [`set_held`](SockMan::set_held) declared): the manager closes it when this returns.
    /// Forget the connection here and say why; the default does nothing.
    fn memory_budget_exceeded(&mut self, man: &SockMan, id: Id, held: usize, used: usize) {
        let _ = (man, id, held, used);
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
