//! [`SockManError`]: why a call about one connection failed.

use std::io;

use super::Id;
use crate::error::describe;

/// Why a [`SockMan`](super::SockMan) call about one connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SockManError {
    /// No connection has this id: it was closed, refused, or never existed.
    #[error("connection {0} does not exist")]
    UnknownConnection(Id),

    /// Bytes are queued and these would push the connection's send queue past
    /// [`Options::send_queue_cap`](super::Options::send_queue_cap); none of them were taken (a message onto an empty
    /// queue is always taken). The peer is not reading fast enough (or at all): wait for
    /// [`Handler::ready_to_send`](super::Handler::ready_to_send), or close it.
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

    /// The OS failed a query about the connection's socket (`getsockname(2)`,
    /// `getpeername(2)`); `Display` is `connection <id>: ` and the error as Core describes
    /// one (`Transport endpoint is not connected (107)`).
    #[error("connection {id}: {}", describe(.source))]
    Io {
        /// The connection.
        id: Id,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl SockManError {
    /// The connection the error is about.
    pub fn id(&self) -> Id {
        match self {
            SockManError::UnknownConnection(id)
            | SockManError::SendQueueFull { id, .. }
            | SockManError::Send { id, .. }
            | SockManError::Io { id, .. } => *id,
        }
    }

    /// The OS error, for [`Send`](SockManError::Send) and [`Io`](SockManError::Io).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            SockManError::Send { source, .. } | SockManError::Io { source, .. } => Some(source),
            SockManError::UnknownConnection(_) | SockManError::SendQueueFull { .. } => None,
        }
    }
}

impl From<SockManError> for io::Error {
    /// An OS error ([`Send`](SockManError::Send), [`Io`](SockManError::Io)) as it is, so its
    /// kind and [`raw_os_error`](io::Error::raw_os_error) survive; the others with this
    /// error inside: [`UnknownConnection`](SockManError::UnknownConnection) is `NotFound`,
    /// [`SendQueueFull`](SockManError::SendQueueFull) `WouldBlock` (nothing was queued; try
    /// again once the queue drained).
    fn from(err: SockManError) -> io::Error {
        match err {
            SockManError::Send { source, .. } | SockManError::Io { source, .. } => source,
            SockManError::UnknownConnection(_) => io::Error::new(io::ErrorKind::NotFound, err),
            SockManError::SendQueueFull { .. } => io::Error::new(io::ErrorKind::WouldBlock, err),
        }
    }
}
