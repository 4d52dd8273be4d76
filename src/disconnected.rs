//! [`Disconnected`]: why [`SockIo::is_connected`](crate::SockIo::is_connected) says a
//! connection is down.

use std::io;

use crate::error::describe;

/// Why a connection is not up, as [`SockIo::is_connected`](crate::SockIo::is_connected)
/// finds it (Core's `IsConnected` `errmsg`, as a type code can match on).
///
/// `Display` is Core's text exactly: `closed` when the peer closed; for an error, its
/// [`network_error_string`](crate::network_error_string) (`Connection reset by peer (104)`),
/// or `not connected` for the invalid sock.
///
/// ```
/// use bitcoin_sock::{Disconnected, Sock, SockIo};
///
/// let err = Sock::default().is_connected().unwrap_err();
/// assert!(matches!(err, Disconnected::Error(_)));
/// assert_eq!(err.to_string(), "not connected");
/// assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::NotConnected);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Disconnected {
    /// The peer closed the connection: a peek read end of stream.
    #[error("closed")]
    Closed,

    /// A permanent error: the peer reset the connection (`ConnectionReset`), the sock is
    /// invalid (`NotConnected`), ...; the error as the OS gave it, code and all.
    #[error("{}", describe(.0))]
    Error(#[source] io::Error),
}

impl Disconnected {
    /// The error, for [`Disconnected::Error`].
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Disconnected::Closed => None,
            Disconnected::Error(err) => Some(err),
        }
    }

    /// The [`io::ErrorKind`]: `UnexpectedEof` for [`Closed`](Disconnected::Closed), the
    /// error's own for [`Error`](Disconnected::Error) (`ConnectionReset`, `NotConnected`, ...).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Disconnected::Closed => io::ErrorKind::UnexpectedEof,
            Disconnected::Error(err) => err.kind(),
        }
    }

    /// The OS error code, when the OS reported the failure (`None` for
    /// [`Closed`](Disconnected::Closed) and for the invalid sock).
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io_error().and_then(io::Error::raw_os_error)
    }
}

impl From<Disconnected> for io::Error {
    /// The crate's rule (README, "Errors"): [`Disconnected::Error`] is its error as it is
    /// (kind and OS code kept); [`Disconnected::Closed`] is an `io::Error` of
    /// [`Disconnected::kind`] (`UnexpectedEof`) with this error inside (Core's text).
    fn from(err: Disconnected) -> io::Error {
        match err {
            Disconnected::Error(err) => err,
            err => io::Error::new(err.kind(), err),
        }
    }
}
