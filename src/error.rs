//! Errors: [`SockError`] for the high-level operations, and Core's error-code helpers
//! [`network_error_string`] and [`io_error_is_permanent`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::{error_text, sys, UnixAddress};

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

    /// The connection attempt did not finish within the timeout.
    #[error("connection attempt to {addr} timed out")]
    ConnectTimeout {
        /// The address being connected to.
        addr: SocketAddr,
        /// The timeout that passed.
        timeout: Duration,
    },

    /// The connection attempt failed (refused, unreachable, ...).
    #[error("connect() to {addr} failed: {}", describe(.source))]
    Connect {
        /// The address being connected to.
        addr: SocketAddr,
        /// The error; its kind says which failure (e.g. `ConnectionRefused`).
        #[source]
        source: io::Error,
    },

    /// The destination of a connect by name ([`Sock::connect_by_name`](crate::Sock::connect_by_name))
    /// did not parse (`InvalidInput`: `invalid address "...": ...`), did not resolve (the
    /// resolver's error, inside an [`OpError`] naming the name: `resolve() of "..." failed:
    /// ...`), or gave no address to try. `Display` and the kind are the inner error's.
    #[error(transparent)]
    Resolve(io::Error),

    /// The connection attempt to a Unix-domain socket did not finish within the timeout: the
    /// listener's backlog stayed full (only Linux waits for room; elsewhere that is refused).
    #[error("connection attempt to {addr} timed out")]
    ConnectUnixTimeout {
        /// The address being connected to.
        addr: UnixAddress,
        /// The timeout that passed.
        timeout: Duration,
    },

    /// The connection attempt to a Unix-domain socket failed.
    #[error("connect() to {addr} failed: {}", describe(.source))]
    ConnectUnix {
        /// The address being connected to.
        addr: UnixAddress,
        /// The error; its kind says which failure: `NotFound` (no such path),
        /// `ConnectionRefused` (nothing listens there, or it is not a socket),
        /// `PermissionDenied`, `InvalidInput` (a path that does not fit in `sun_path`),
        /// `Unsupported` (a host without Unix-domain sockets).
        #[source]
        source: io::Error,
    },
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
            | SockError::Connect { source, .. }
            | SockError::ConnectUnix { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Whether the error is a timeout (of a send, a receive or a connect).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            SockError::SendTimeout { .. }
                | SockError::RecvTimeout { .. }
                | SockError::ConnectTimeout { .. }
                | SockError::ConnectUnixTimeout { .. }
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
    /// Keeps an OS error as it is; gives other failures the closest [`io::ErrorKind`], with
    /// Core's text inside.
    ///
    /// An interrupt becomes [`io::ErrorKind::Other`], as in [`DeadlineIo`](crate::DeadlineIo),
    /// never [`io::ErrorKind::Interrupted`]: std's `write_all`, `read_exact`, `read_to_end`
    /// and `io::copy` retry that kind at once, so a `Write` or `Read` built on
    /// [`send_complete`](crate::SockIo::send_complete) with `?` would spin instead of
    /// stopping. [`SockError::is_interrupted`] on the error inside tells it apart.
    fn from(err: SockError) -> io::Error {
        let kind = match &err {
            SockError::Send(_)
            | SockError::Resolve(_)
            | SockError::Recv { .. }
            | SockError::Wait { .. }
            | SockError::SendWait { .. }
            | SockError::Connect { .. }
            | SockError::ConnectUnix { .. } => None,
            SockError::SendTimeout { .. }
            | SockError::RecvTimeout { .. }
            | SockError::ConnectTimeout { .. }
            | SockError::ConnectUnixTimeout { .. } => Some(io::ErrorKind::TimedOut),
            SockError::SendInterrupted { .. } | SockError::RecvInterrupted { .. } => {
                Some(io::ErrorKind::Other)
            }
            SockError::Closed { .. } => Some(io::ErrorKind::UnexpectedEof),
            SockError::TooManyBytes { .. } | SockError::ShortRead { .. } => {
                Some(io::ErrorKind::InvalidData)
            }
        };
        match kind {
            Some(kind) => io::Error::new(kind, err),
            None => match err {
                SockError::Send(e) | SockError::Resolve(e) => e,
                SockError::Recv { source, .. }
                | SockError::Wait { source, .. }
                | SockError::SendWait { source, .. }
                | SockError::Connect { source, .. }
                | SockError::ConnectUnix { source, .. } => source,
                // Every other variant has a kind above.
                other => io::Error::other(other),
            },
        }
    }
}

/// An error of [`Sock::bind`](crate::Sock::bind), [`Sock::listen`](crate::Sock::listen) or
/// [`resolve`](crate::resolve) with the operation and the address it was about, inside the
/// [`io::Error`] those calls return. That error keeps the OS error's kind, so `err.kind()` is
/// `PermissionDenied`, `AddrInUse`, ... as without the context.
///
/// `Display` reads like Core's `"connect() to ... failed: ..."` ([`SockError::Connect`] is the
/// same for connects): `bind() to 127.0.0.1:8333 failed: Address already in use (98)`,
/// `listen() on 127.0.0.1:8333 failed: ...`, `resolve() of "seed.bitcoin.sipa.be" failed: ...`.
/// A host that denies the network (an edge platform, `wasmtime run` without
/// `-S inherit-network`) thus says which operation and which address it refused.
///
/// The OS error, with its raw code, is the [`source`](std::error::Error::source); because an
/// [`io::Error`] with a message cannot also carry a raw code, `err.raw_os_error()` is `None` on
/// the outer error: [`os_error_code`] looks through the context.
///
/// ```
/// use bitcoin_sock::{os_error_code, OpError, Sock};
///
/// let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 8)?;
/// let addr = listener.local_addr()?;
/// let err = Sock::bind_listen(addr, 8).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
/// let context = err.get_ref().and_then(|e| e.downcast_ref::<OpError>()).unwrap();
/// assert_eq!(context.op(), "bind");
/// assert!(err.to_string().starts_with(&format!("bind() to {addr} failed: ")));
/// assert_eq!(os_error_code(&err), context.io_error().raw_os_error());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{op}() {preposition} {target} failed: {}", describe(.source))]
pub struct OpError {
    op: &'static str,
    preposition: &'static str,
    target: String,
    #[source]
    source: io::Error,
}

impl OpError {
    /// The operation: `"bind"`, `"listen"` or `"resolve"`.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// What the operation was about: the socket address (`"127.0.0.1:8333"`, `"[::1]:0"`) or,
    /// for `resolve`, the quoted name.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The OS error, with its raw code where it has one.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

/// Wraps `source` in an [`OpError`], keeping its kind.
pub(crate) fn with_context(
    op: &'static str,
    preposition: &'static str,
    target: String,
    source: io::Error,
) -> io::Error {
    let kind = source.kind();
    io::Error::new(
        kind,
        OpError {
            op,
            preposition,
            target,
            source,
        },
    )
}

/// The raw OS error code of `err`, looking through the [`OpError`] context that
/// [`Sock::bind`](crate::Sock::bind), [`Sock::listen`](crate::Sock::listen) and
/// [`resolve`](crate::resolve) add: what [`io::Error::raw_os_error`] answers for errors
/// without it.
pub fn os_error_code(err: &io::Error) -> Option<i32> {
    err.raw_os_error().or_else(|| {
        err.get_ref()?
            .downcast_ref::<OpError>()?
            .source
            .raw_os_error()
    })
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
