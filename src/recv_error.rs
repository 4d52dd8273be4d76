//! [`IntrRecvError`]: how a read of an exact number of bytes with Core's deadline and interrupt
//! failed, for [`DeadlineIo`](crate::DeadlineIo) reads and the SOCKS5 handshake.

use std::io;

use crate::error::describe;

/// How Core's `InterruptibleRecv` failed (its `IntrRecvError`, without `OK`): the error of
/// [`socks5::interruptible_recv`](crate::socks5::interruptible_recv) and of a
/// [`DeadlineIo`](crate::DeadlineIo) read (inside its `io::Error`). Each carries how
/// many of the expected bytes arrived before the failure; they are at the start of the buffer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntrRecvError {
    /// The deadline passed first.
    #[error("Receive timeout (received {received} of {expected} bytes before that)")]
    Timeout {
        /// Bytes received.
        received: usize,
        /// Bytes asked for.
        expected: usize,
    },

    /// The peer closed the connection (`recv` returned 0) first.
    #[error(
        "Connection unexpectedly closed by peer (received {received} of {expected} bytes \
         before that)"
    )]
    Disconnected {
        /// Bytes received.
        received: usize,
        /// Bytes asked for.
        expected: usize,
    },

    /// `recv` failed with a permanent error, or waiting for the socket failed.
    #[error("{} (received {received} of {expected} bytes before that)", describe(.source))]
    NetworkError {
        /// The error.
        #[source]
        source: io::Error,
        /// Bytes received.
        received: usize,
        /// Bytes asked for.
        expected: usize,
    },

    /// The interrupt was set first.
    #[error("Receive interrupted (received {received} of {expected} bytes before that)")]
    Interrupted {
        /// Bytes received.
        received: usize,
        /// Bytes asked for.
        expected: usize,
    },
}

impl IntrRecvError {
    /// How many of the expected bytes arrived before the failure.
    pub fn received(&self) -> usize {
        match self {
            IntrRecvError::Timeout { received, .. }
            | IntrRecvError::Disconnected { received, .. }
            | IntrRecvError::NetworkError { received, .. }
            | IntrRecvError::Interrupted { received, .. } => *received,
        }
    }

    /// The error, for [`NetworkError`](IntrRecvError::NetworkError).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            IntrRecvError::NetworkError { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The [`io::ErrorKind`]: `TimedOut`, `UnexpectedEof` for
    /// [`Disconnected`](IntrRecvError::Disconnected), `Other` for an interrupt (never
    /// `Interrupted`, which std's `read_exact` would retry at once), the error's own for
    /// [`NetworkError`](IntrRecvError::NetworkError).
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            IntrRecvError::Timeout { .. } => io::ErrorKind::TimedOut,
            IntrRecvError::Disconnected { .. } => io::ErrorKind::UnexpectedEof,
            IntrRecvError::NetworkError { source, .. } => source.kind(),
            IntrRecvError::Interrupted { .. } => io::ErrorKind::Other,
        }
    }

    /// The OS error code, when the failure came from the OS.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io_error().and_then(io::Error::raw_os_error)
    }
}

impl From<IntrRecvError> for io::Error {
    /// The crate's rule (README, "Errors"): a [`NetworkError`](IntrRecvError::NetworkError)
    /// is its OS error as it is (kind and code kept, without the byte counts); the others an
    /// `io::Error` of [`IntrRecvError::kind`] with this error inside (Core's text).
    fn from(err: IntrRecvError) -> io::Error {
        match err {
            IntrRecvError::NetworkError { source, .. } => source,
            err => io::Error::new(err.kind(), err),
        }
    }
}
