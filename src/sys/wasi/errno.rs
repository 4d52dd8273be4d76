//! Errors as the errno values of wasi-libc, so `io_error_is_permanent`, `network_error_string`
//! and `io::ErrorKind` agree with native. Each version maps its own error codes to these
//! (`p2/errno.rs`, `p3/errno.rs`).

use std::io;

/// An errno value as the `io::Error` std gives for it natively.
pub(super) fn errno_to_io(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}
