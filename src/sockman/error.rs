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

    /// The [`io::ErrorKind`] of the failure: the OS error's for [`Send`](SockManError::Send)
    /// and [`Io`](SockManError::Io); `NotFound` for
    /// [`UnknownConnection`](SockManError::UnknownConnection); `WouldBlock` for
    /// [`SendQueueFull`](SockManError::SendQueueFull) (nothing was queued; try again once the
    /// queue drained).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            SockManError::Send { source, .. } | SockManError::Io { source, .. } => source.kind(),
            SockManError::UnknownConnection(_) => io::ErrorKind::NotFound,
            SockManError::SendQueueFull { .. } => io::ErrorKind::WouldBlock,
        }
    }

    /// The OS error code, when the failure came from the OS.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io_error().and_then(io::Error::raw_os_error)
    }
}

impl From<SockManError> for io::Error {
    /// The crate's rule (README, "Errors"): an OS error ([`Send`](SockManError::Send),
    /// [`Io`](SockManError::Io)) as it is, so its kind and
    /// [`raw_os_error`](io::Error::raw_os_error) survive; the others an `io::Error` of
    /// [`SockManError::kind`] with this error inside.
    fn from(err: SockManError) -> io::Error {
        match err {
            SockManError::Send { source, .. } | SockManError::Io { source, .. } => source,
            err => io::Error::new(err.kind(), err),
        }
    }
}
