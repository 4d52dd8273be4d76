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
}
