//! Errors as the errno values of wasi-libc, so `io_error_is_permanent`, `network_error_string`
//! and `io::ErrorKind` agree with native. Each version maps its own error codes to these
//! (`p2/errno.rs`, `p3/errno.rs`).

use std::io;

/// A WASI host answers `access-denied` (`EACCES`) for what its policy refuses: no network
/// at all (`wasmtime run` without `-S inherit-network`, or with `-S tcp=n`; jco with its
/// network denied) or this address (an embedding host's address check).
pub(crate) const NETWORK_REFUSED_HINT: Option<&str> =
    Some("the WASI host refused network access (wasmtime run grants it with -S inherit-network=y)");

/// wasmtime answers a lookup it does not allow with `permanent-resolver-failure`, jco with
/// its network denied the same.
pub(crate) const LOOKUP_REFUSED_HINT: Option<&str> = Some(
    "the WASI host refused name lookup (wasmtime run grants it with -S allow-ip-name-lookup=y)",
);

/// An errno value as the `io::Error` std gives for it natively.
pub(super) fn errno_to_io(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}
