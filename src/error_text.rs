//! The words of [`network_error_string`](crate::network_error_string) and of the resolver's
//! failures: one table, the same on every host, keyed by each host's own code.
//!
//! Core's `NetworkErrorString` asks the OS (`strerror_r`, `FormatMessageW`), so its texts
//! differ by host: `Address already in use` (glibc), `Address in use` (wasi-libc), `Only one
//! usage of each socket address ... is normally permitted.` (Windows). Here every code the
//! backends produce reads as glibc says it (the text Core prints on Linux, its main host),
//! followed by the host's own number; only codes outside the table get the host's text.

/// glibc's `strerror` text of each code the backends produce: the errno values natively on
/// Unix and (wasi-libc's) on WASI, Winsock's `WSAE*` values on Windows.
#[cfg(any(
    unix,
    all(target_os = "wasi", any(target_env = "p2", target_env = "p3"))
))]
const DESCRIPTIONS: &[(i32, &str)] = &[
    (libc::EPERM, "Operation not permitted"),
    (libc::ENOENT, "No such file or directory"),
    (libc::EINTR, "Interrupted system call"),
    (libc::EIO, "Input/output error"),
    (libc::EBADF, "Bad file descriptor"),
    (libc::EAGAIN, "Resource temporarily unavailable"),
    (libc::EWOULDBLOCK, "Resource temporarily unavailable"),
    (libc::ENOMEM, "Cannot allocate memory"),
    (libc::EACCES, "Permission denied"),
    (libc::EFAULT, "Bad address"),
    (libc::ENOTDIR, "Not a directory"),
    (libc::EINVAL, "Invalid argument"),
    (libc::ENFILE, "Too many open files in system"),
    (libc::EMFILE, "Too many open files"),
    (libc::EPIPE, "Broken pipe"),
    (libc::ENAMETOOLONG, "File name too long"),
    (libc::ELOOP, "Too many levels of symbolic links"),
    (libc::EROFS, "Read-only file system"),
    (libc::ENOTSOCK, "Socket operation on non-socket"),
    (libc::EDESTADDRREQ, "Destination address required"),
    (libc::EMSGSIZE, "Message too long"),
    (libc::EPROTOTYPE, "Protocol wrong type for socket"),
    (libc::ENOPROTOOPT, "Protocol not available"),
    (libc::EPROTONOSUPPORT, "Protocol not supported"),
    (libc::EOPNOTSUPP, "Operation not supported"),
    (
        libc::EAFNOSUPPORT,
        "Address family not supported by protocol",
    ),
    (libc::EADDRINUSE, "Address already in use"),
    (libc::EADDRNOTAVAIL, "Cannot assign requested address"),
    (libc::ENETDOWN, "Network is down"),
    (libc::ENETUNREACH, "Network is unreachable"),
    (libc::ENETRESET, "Network dropped connection on reset"),
    (libc::ECONNABORTED, "Software caused connection abort"),
    (libc::ECONNRESET, "Connection reset by peer"),
    (libc::ENOBUFS, "No buffer space available"),
    (libc::EISCONN, "Transport endpoint is already connected"),
    (libc::ENOTCONN, "Transport endpoint is not connected"),
    (libc::ETIMEDOUT, "Connection timed out"),
    (libc::ECONNREFUSED, "Connection refused"),
    (libc::EHOSTUNREACH, "No route to host"),
    (libc::EALREADY, "Operation already in progress"),
    (libc::EINPROGRESS, "Operation now in progress"),
    // Unix only: wasi-libc has neither.
    #[cfg(unix)]
    (
        libc::ESHUTDOWN,
        "Cannot send after transport endpoint shutdown",
    ),
    #[cfg(unix)]
    (libc::EHOSTDOWN, "Host is down"),
];

#[cfg(windows)]
use windows_sys::Win32::Networking::WinSock as ws;

/// The same words for Winsock's codes (Windows has no `EPIPE`: a send after one's own
/// shutdown is `WSAESHUTDOWN`).
#[cfg(windows)]
const DESCRIPTIONS: &[(i32, &str)] = &[
    (ws::WSAEINTR, "Interrupted system call"),
    (ws::WSAEBADF, "Bad file descriptor"),
    (ws::WSAEACCES, "Permission denied"),
    (ws::WSAEFAULT, "Bad address"),
    (ws::WSAEINVAL, "Invalid argument"),
    (ws::WSAEMFILE, "Too many open files"),
    (ws::WSAEWOULDBLOCK, "Resource temporarily unavailable"),
    (ws::WSAEINPROGRESS, "Operation now in progress"),
    (ws::WSAEALREADY, "Operation already in progress"),
    (ws::WSAENOTSOCK, "Socket operation on non-socket"),
    (ws::WSAEDESTADDRREQ, "Destination address required"),
    (ws::WSAEMSGSIZE, "Message too long"),
    (ws::WSAEPROTOTYPE, "Protocol wrong type for socket"),
    (ws::WSAENOPROTOOPT, "Protocol not available"),
    (ws::WSAEPROTONOSUPPORT, "Protocol not supported"),
    (ws::WSAEOPNOTSUPP, "Operation not supported"),
    (
        ws::WSAEAFNOSUPPORT,
        "Address family not supported by protocol",
    ),
    (ws::WSAEADDRINUSE, "Address already in use"),
    (ws::WSAEADDRNOTAVAIL, "Cannot assign requested address"),
    (ws::WSAENETDOWN, "Network is down"),
    (ws::WSAENETUNREACH, "Network is unreachable"),
    (ws::WSAENETRESET, "Network dropped connection on reset"),
    (ws::WSAECONNABORTED, "Software caused connection abort"),
    (ws::WSAECONNRESET, "Connection reset by peer"),
    (ws::WSAENOBUFS, "No buffer space available"),
    (ws::WSAEISCONN, "Transport endpoint is already connected"),
    (ws::WSAENOTCONN, "Transport endpoint is not connected"),
    (
        ws::WSAESHUTDOWN,
        "Cannot send after transport endpoint shutdown",
    ),
    (ws::WSAETIMEDOUT, "Connection timed out"),
    (ws::WSAECONNREFUSED, "Connection refused"),
    (ws::WSAELOOP, "Too many levels of symbolic links"),
    (ws::WSAENAMETOOLONG, "File name too long"),
    (ws::WSAEHOSTDOWN, "Host is down"),
    (ws::WSAEHOSTUNREACH, "No route to host"),
];

/// Without sockets no call produces a code.
#[cfg(not(any(
    unix,
    windows,
    all(target_os = "wasi", any(target_env = "p2", target_env = "p3"))
)))]
const DESCRIPTIONS: &[(i32, &str)] = &[];

/// The table's words for `code`, if the backends can produce it.
pub(crate) fn description(code: i32) -> Option<&'static str> {
    DESCRIPTIONS
        .iter()
        .find(|&&(known, _)| known == code)
        .map(|&(_, text)| text)
}

/// How a name lookup failed, in words that are the same on every host (glibc's
/// `gai_strerror`, as for the codes above): each backend sorts its resolver's answers
/// (`EAI_*`, Winsock's `WSAHOST_NOT_FOUND` family, `wasi:sockets/ip-name-lookup`'s codes) into
/// these. They carry no number: the hosts' resolver codes are no OS error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(sockets), allow(dead_code))] // no resolver without sockets
pub(crate) enum LookupFailure {
    /// The name does not exist, or has no address (`EAI_NONAME`, `EAI_NODATA`,
    /// `name-unresolvable`).
    NoSuchName,
    /// Try again later (`EAI_AGAIN`, `temporary-resolver-failure`).
    Temporary,
    /// The resolver failed for good (`EAI_FAIL` and the rest).
    Permanent,
    /// The host allows this program no name lookup (a WASI host's policy): `PermissionDenied`.
    #[cfg_attr(not(target_os = "wasi"), allow(dead_code))] // only WASI hosts refuse lookups
    Refused,
}

#[cfg_attr(not(sockets), allow(dead_code))]
impl LookupFailure {
    /// The failure as the `io::Error` [`resolve`](crate::resolve) returns (inside its context).
    pub(crate) fn into_io(self) -> std::io::Error {
        use std::io::{Error, ErrorKind};
        let text = match self {
            LookupFailure::NoSuchName => "Name or service not known",
            LookupFailure::Temporary => "Temporary failure in name resolution",
            LookupFailure::Permanent => "Non-recoverable failure in name resolution",
            LookupFailure::Refused => {
                return match crate::sys::LOOKUP_REFUSED_HINT {
                    Some(hint) => Error::new(
                        ErrorKind::PermissionDenied,
                        format!("Permission denied; {hint}"),
                    ),
                    None => Error::new(ErrorKind::PermissionDenied, "Permission denied"),
                }
            }
        };
        Error::other(text)
    }
}
