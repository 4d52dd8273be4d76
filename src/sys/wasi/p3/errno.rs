//! WASI 0.3 error codes as the errno values of wasi-libc. (0.3 has no stream errors of its own:
//! a failed send or receive ends its stream, and the error code comes in the operation's
//! `future`.)

use std::io;

use wasip3::sockets::types::ErrorCode;

use super::super::errno::errno_to_io;

/// wasi-libc's mapping of `wasi:sockets` error codes to errno.
pub(super) fn error_code_to_errno(code: &ErrorCode) -> i32 {
    match code {
        ErrorCode::AccessDenied => libc::EACCES,
        ErrorCode::NotSupported => libc::EOPNOTSUPP,
        ErrorCode::InvalidArgument => libc::EINVAL,
        ErrorCode::OutOfMemory => libc::ENOMEM,
        ErrorCode::Timeout => libc::ETIMEDOUT,
        ErrorCode::InvalidState => libc::EINVAL,
        ErrorCode::AddressNotBindable => libc::EADDRNOTAVAIL,
        ErrorCode::AddressInUse => libc::EADDRINUSE,
        ErrorCode::RemoteUnreachable => libc::EHOSTUNREACH,
        ErrorCode::ConnectionRefused => libc::ECONNREFUSED,
        ErrorCode::ConnectionBroken => libc::EPIPE,
        ErrorCode::ConnectionReset => libc::ECONNRESET,
        ErrorCode::ConnectionAborted => libc::ECONNABORTED,
        ErrorCode::DatagramTooLarge => libc::EMSGSIZE,
        ErrorCode::Other(_) => libc::EIO,
    }
}

/// A `wasi:sockets` error code as an `io::Error`, through [`error_code_to_errno`].
pub(super) fn error_code_to_io(code: ErrorCode) -> io::Error {
    errno_to_io(error_code_to_errno(&code))
}

/// [`error_code_to_io`] for a call that needs a connection (`remote-address`):
/// WASI's `invalid-state` there means "not connected": `ENOTCONN`, as natively.
pub(super) fn connection_error_code_to_io(code: ErrorCode) -> io::Error {
    match code {
        ErrorCode::InvalidState => errno_to_io(libc::ENOTCONN),
        other => error_code_to_io(other),
    }
}
