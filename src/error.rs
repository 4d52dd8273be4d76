//! Errors: [`SockError`] for the high-level operations, and Core's error-code helpers
//! [`network_error_string`] and [`io_error_is_permanent`].

use std::io;
use std::time::Duration;

use crate::op_error::os_error_code;
use crate::{error_text, sys, SockAddress};

/// Why a high-level operation ([`SockIo`](crate::SockIo), [`Sock::connect`](crate::Sock::connect),
/// [`Sock::connect_by_name`](crate::Sock::connect_by_name) or
/// [`Sock::connect_unix`](crate::Sock::connect_unix)) failed.
///
/// `Display` prints Core's texts exactly. Receive errors carry the bytes consumed before the
/// failure (`received`), so nothing read from the socket is lost (Core drops them).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SockError {
    /// `send()` failed with a permanent error.
    #[error("send(): {}", describe(.0))]
    Send(#[source] io::Error),

    /// The deadline passed before all data was sent.
    #[error("Send timeout (sent only {sent} of {total} bytes before that)")]
    SendTimeout {
        /// Bytes sent before the deadline.
        sent: usize,
        /// Bytes asked to send.
        total: usize,
    },

    /// The interrupt was set before all data was sent.
    #[error("Send interrupted (sent only {sent} of {total} bytes before that)")]
    SendInterrupted {
        /// Bytes sent before the interrupt was noticed.
        sent: usize,
        /// Bytes asked to send.
        total: usize,
    },

    /// `recv()` failed with a permanent error.
    #[error("recv(): {}", describe(.source))]
    Recv {
        /// The error.
        #[source]
        source: io::Error,
        /// Bytes consumed before the error.
        received: Vec<u8>,
    },

    /// The peer closed the connection before the terminator arrived.
    #[error("Connection unexpectedly closed by peer")]
    Closed {
        /// Bytes consumed before the end of stream.
        received: Vec<u8>,
    },

    /// `max_data` bytes arrived without a terminator.
    #[error("Received too many bytes without a terminator ({})", .received.len())]
    TooManyBytes {
        /// The bytes consumed (all of them, none after the limit).
        received: Vec<u8>,
    },

    /// The deadline passed before the terminator arrived.
    #[error("Receive timeout (received {} bytes without terminator before that)", .received.len())]
    RecvTimeout {
        /// Bytes consumed before the deadline.
        received: Vec<u8>,
    },

    /// The interrupt was set before the terminator arrived.
    #[error("Receive interrupted (received {} bytes without terminator before that)", .received.len())]
    RecvInterrupted {
        /// Bytes consumed before the interrupt was noticed.
        received: Vec<u8>,
    },

    /// A read returned fewer bytes than the peek before it promised.
    #[error(
        "recv() returned {read} bytes on attempt to read {attempted} bytes but previous peek \
         claimed {peeked} bytes are available"
    )]
    ShortRead {
        /// Bytes the read returned (they are at the end of `received`).
        read: usize,
        /// Bytes the read asked for.
        attempted: usize,
        /// Bytes the peek reported.
        peeked: usize,
        /// Bytes consumed, including the short read's.
        received: Vec<u8>,
    },

    /// Waiting for the socket failed while receiving.
    #[error("wait(): {}", describe(.source))]
    Wait {
        /// The error.
        #[source]
        source: io::Error,
        /// Bytes consumed before the error.
        received: Vec<u8>,
    },

    /// Waiting for the socket failed while sending (Core ignores a failed wait there and
    /// tries again; this crate stops and says how far it got).
    #[error("wait(): {} (sent only {sent} of {total} bytes before that)", describe(.source))]
    SendWait {
        /// The error.
        #[source]
        source: io::Error,
        /// Bytes sent before the error.
        sent: usize,
        /// Bytes asked to send.
        total: usize,
    },

    /// The connection attempt did not finish within the timeout. For a Unix-domain address
    /// ([`Sock::connect_unix`](crate::Sock::connect_unix)): the listener's backlog stayed full
    /// (only Linux waits for room; elsewhere that is refused).
    #[error("connection attempt to {addr} timed out")]
    ConnectTimeout {
        /// The address being connected to, IP or Unix-domain.
        addr: SockAddress,
        /// The timeout that passed.
        timeout: Duration,
    },

    /// The connection attempt failed (refused, unreachable, no such path, ...).
    #[error("connect() to {addr} failed: {}", describe(.source))]
    Connect {
        /// The address being connected to, IP or Unix-domain.
        addr: SockAddress,
        /// The error; its kind says which failure: `ConnectionRefused` (nothing listens
        /// there, or a Unix path that is no socket), `NotFound` (no such Unix path),
        /// `PermissionDenied` (the host or the socket file's permissions deny it),
        /// `InvalidInput` (a Unix path that does not fit in `sun_path`), `Unsupported` (a host
        /// without that kind of socket), ...
        #[source]
        source: io::Error,
    },

    /// The destination of a connect by name ([`Sock::connect_by_name`](crate::Sock::connect_by_name))
    /// did not parse (`InvalidInput`: `invalid address "...": ...`), did not resolve (the
    /// resolver's error, an [`OpError`](crate::OpError) naming the name inside: `resolve() of
    /// "..." failed: ...`), or gave no address to try. `Display` and the kind are the inner
    /// error's; [`raw_os_error`](SockError::raw_os_error) finds an OS code inside the
    /// resolver's error.
    #[error(transparent)]
    Resolve(io::Error),
}

impl SockError {
    /// The bytes a failed receive consumed before failing (empty for other errors).
    pub fn received(&self) -> &[u8] {
        match self {
            SockError::Recv { received, .. }
            | SockError::Wait { received, .. }
            | SockError::Closed { received }
            | SockError::TooManyBytes { received }
            | SockError::RecvTimeout { received }
            | SockError::RecvInterrupted { received }
            | SockError::ShortRead { received, .. } => received,
            _ => &[],
        }
    }

    /// The underlying I/O error, if the failure came from the OS.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            SockError::Send(e) | SockError::Resolve(e) => Some(e),
            SockError::Recv { source, .. }
            | SockError::Wait { source, .. }
            | SockError::SendWait { source, .. }
            | SockError::Connect { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The [`io::ErrorKind`] of the failure: the OS error's own where there is one
    /// ([`io_error`](SockError::io_error)); otherwise `TimedOut` (a timeout), `Other` (an
    /// interrupt: never `Interrupted`, see `From`), `UnexpectedEof`
    /// ([`Closed`](SockError::Closed)), `InvalidData` ([`TooManyBytes`](SockError::TooManyBytes),
    /// [`ShortRead`](SockError::ShortRead)). The kind the `io::Error` made `From` this has.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            SockError::SendTimeout { .. }
            | SockError::RecvTimeout { .. }
            | SockError::ConnectTimeout { .. } => io::ErrorKind::TimedOut,
            SockError::SendInterrupted { .. } | SockError::RecvInterrupted { .. } => {
                io::ErrorKind::Other
            }
            SockError::Closed { .. } => io::ErrorKind::UnexpectedEof,
            SockError::TooManyBytes { .. } | SockError::ShortRead { .. } => {
                io::ErrorKind::InvalidData
            }
            SockError::Send(source)
            | SockError::Resolve(source)
            | SockError::Recv { source, .. }
            | SockError::Wait { source, .. }
            | SockError::SendWait { source, .. }
            | SockError::Connect { source, .. } => source.kind(),
        }
    }

    /// The OS error code, when the failure came from the OS (looking through the
    /// [`OpError`](crate::OpError) of a [`Resolve`](SockError::Resolve)): what
    /// [`io::Error::raw_os_error`] answers on the `io::Error` made `From` this.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io_error().and_then(os_error_code)
    }

    /// Whether the error is a timeout (of a send, a receive or a connect).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            SockError::SendTimeout { .. }
                | SockError::RecvTimeout { .. }
                | SockError::ConnectTimeout { .. }
        )
    }

    /// Whether the error is an interrupt (of a send or a receive).
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            SockError::SendInterrupted { .. } | SockError::RecvInterrupted { .. }
        )
    }
}

impl From<SockError> for io::Error {
    /// The crate's rule (README, "Errors"): an OS error ([`SockError::io_error`]) is returned
    /// as it is, kind and [`raw_os_error`](io::Error::raw_os_error) kept; any other failure is
    /// an `io::Error` of [`SockError::kind`] with this error inside (Core's text as
    /// `Display`, [`get_ref`](io::Error::get_ref) downcasts to it).
    ///
    /// An interrupt becomes [`io::ErrorKind::Other`], as in [`DeadlineIo`](crate::DeadlineIo),
    /// never [`io::ErrorKind::Interrupted`]: std's `write_all`, `read_exact`, `read_to_end`
    /// and `io::copy` retry that kind at once, so a `Write` or `Read` built on
    /// [`send_complete`](crate::SockIo::send_complete) with `?` would spin instead of
    /// stopping. [`SockError::is_interrupted`] on the error inside tells it apart.
    fn from(err: SockError) -> io::Error {
        match err {
            SockError::Send(source)
            | SockError::Resolve(source)
            | SockError::Recv { source, .. }
            | SockError::Wait { source, .. }
            | SockError::SendWait { source, .. }
            | SockError::Connect { source, .. } => source,
            err => io::Error::new(err.kind(), err),
        }
    }
}

/// Core's `NetworkErrorString`: a description of `err` followed by the code, e.g.
/// `"Connection refused (111)"` on Linux.
///
/// The description is the same on every host for every code this crate's backends produce
/// (`Connection refused (111)` on Linux, `(61)` on macOS, `(10061)` on Windows, `(14)` in
/// WASI): glibc's words, what Core prints on Linux, where Core elsewhere prints its host's
/// (README, "Error texts"). Any other code gives the OS's own text. Never panics.
///
/// ```
/// let text = bitcoin_sock::network_error_string(12345);
/// assert!(text.ends_with(" (12345)"));
/// ```
pub fn network_error_string(err: i32) -> String {
    if let Some(description) = error_text::description(err) {
        return format!("{description} ({err})");
    }
    // std asks the OS (strerror_r, FormatMessageW, wasi-libc) and appends " (os error N)";
    // Core's form is "<text> (N)".
    let text = io::Error::from_raw_os_error(err).to_string();
    let suffix = format!(" (os error {err})");
    let description = text.strip_suffix(&suffix).unwrap_or(&text);
    format!("{description} ({err})")
}

/// Core's `IOErrorIsPermanent`: false only for the "try again" codes (`EAGAIN`,
/// `EWOULDBLOCK`, `EINTR`, `EINPROGRESS`; their `WSAE*` twins on Windows; wasi-libc's values on
/// WASI).
///
/// ```
/// # #[cfg(unix)] {
/// assert!(!bitcoin_sock::io_error_is_permanent(libc::EAGAIN));
/// assert!(bitcoin_sock::io_error_is_permanent(libc::ECONNRESET));
/// # }
/// ```
pub fn io_error_is_permanent(err: i32) -> bool {
    !TRY_AGAIN_CODES.contains(&err)
}

cfg_if::cfg_if! {
    if #[cfg(windows)] {
        /// Winsock's "try again" codes (it has no separate `EAGAIN`).
        const TRY_AGAIN_CODES: &[i32] = &[
            windows_sys::Win32::Networking::WinSock::WSAEWOULDBLOCK,
            windows_sys::Win32::Networking::WinSock::WSAEINTR,
            windows_sys::Win32::Networking::WinSock::WSAEINPROGRESS,
        ];
    } else if #[cfg(any(unix, all(target_os = "wasi", any(target_env = "p2", target_env = "p3"))))] {
        /// The "try again" codes of the host's libc (wasi-libc on WASI).
        const TRY_AGAIN_CODES: &[i32] = &[
            libc::EAGAIN,
            libc::EWOULDBLOCK,
            libc::EINTR,
            libc::EINPROGRESS,
        ];
    } else {
        /// Without sockets no call fails with a code worth retrying.
        const TRY_AGAIN_CODES: &[i32] = &[];
    }
}

/// [`io_error_is_permanent`] for an [`io::Error`]: by its OS code when it has one (so the
/// answer is the same as for the raw code), else by its kind.
pub(crate) fn is_permanent(err: &io::Error) -> bool {
    match os_error_code(err) {
        Some(code) => io_error_is_permanent(code),
        None => !matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    }
}

/// The text Core puts after `"send(): "` / `"recv(): "`: [`network_error_string`] for OS
/// errors, the error's own text otherwise.
///
/// Where a WASI host refused the network (`PermissionDenied`), the text goes on to say so and
/// what grants access in wasmtime.
pub(crate) fn describe(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => match sys::NETWORK_REFUSED_HINT {
            Some(hint) if err.kind() == io::ErrorKind::PermissionDenied => {
                format!("{}; {hint}", network_error_string(code))
            }
            _ => network_error_string(code),
        },
        None => err.to_string(),
    }
}

/// The error of every operation on the invalid sock.
pub(crate) fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "not connected")
}

/// The error of an operation the host cannot do (native Linux can do them all).
#[cfg_attr(any(target_os = "linux", target_os = "android"), allow(dead_code))]
pub(crate) fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not supported on this host"),
    )
}
