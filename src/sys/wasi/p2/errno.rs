//! WASI 0.2 error codes and stream errors as the errno values of wasi-libc.

use std::io;

use wasi::sockets::network::ErrorCode;

use super::super::errno::errno_to_io;

/// wasi-libc's mapping of `wasi:sockets` error codes to errno.
pub(super) fn error_code_to_errno(code: ErrorCode) -> i32 {
    match code {
        ErrorCode::AccessDenied => libc::EACCES,
        ErrorCode::NotSupported => libc::EOPNOTSUPP,
        ErrorCode::InvalidArgument => libc::EINVAL,
        ErrorCode::OutOfMemory => libc::ENOMEM,
        ErrorCode::Timeout => libc::ETIMEDOUT,
        ErrorCode::ConcurrencyConflict => libc::EALREADY,
        ErrorCode::NotInProgress => libc::EINVAL,
        ErrorCode::WouldBlock => libc::EWOULDBLOCK,
        ErrorCode::InvalidState => libc::EINVAL,
        ErrorCode::NewSocketLimit => libc::EMFILE,
        ErrorCode::AddressNotBindable => libc::EADDRNOTAVAIL,
        ErrorCode::AddressInUse => libc::EADDRINUSE,
        ErrorCode::RemoteUnreachable => libc::EHOSTUNREACH,
        ErrorCode::ConnectionRefused => libc::ECONNREFUSED,
        ErrorCode::ConnectionReset => libc::ECONNRESET,
        ErrorCode::ConnectionAborted => libc::ECONNABORTED,
        ErrorCode::DatagramTooLarge => libc::EMSGSIZE,
        _ => libc::EOPNOTSUPP,
    }
}

/// A `wasi:sockets` error code as an `io::Error`, through [`error_code_to_errno`].
pub(super) fn error_code_to_io(code: ErrorCode) -> io::Error {
    errno_to_io(error_code_to_errno(code))
}

/// [`error_code_to_io`] for a call that needs a connection (`remote-address`, `shutdown`):
/// WASI's `invalid-state` there means "not connected": `ENOTCONN`, as natively.
pub(super) fn connection_error_code_to_io(code: ErrorCode) -> io::Error {
    match code {
        ErrorCode::InvalidState => errno_to_io(libc::ENOTCONN),
        other => error_code_to_io(other),
    }
}

/// The errno of a failed stream operation. WASI 0.2 gives no code for it (the
/// `network-error-code` function is unstable and absent from the bindings), only a debug text;
/// the common causes are recognised there, anything else is `EIO`, as in wasi-libc.
pub(super) fn stream_error_to_errno(err: &wasi::io::error::Error) -> i32 {
    let text = err.to_debug_string();
    let known = [
        ("ConnectionReset", libc::ECONNRESET),
        ("connection-reset", libc::ECONNRESET),
        ("ConnectionAborted", libc::ECONNABORTED),
        ("connection-aborted", libc::ECONNABORTED),
        ("BrokenPipe", libc::EPIPE),
        ("TimedOut", libc::ETIMEDOUT),
        ("timeout", libc::ETIMEDOUT),
    ];
    known
        .iter()
        .find(|(name, _)| text.contains(name))
        .map_or(libc::EIO, |&(_, code)| code)
}
