//! The refusals of a host's network policy, asserted once for the hosts that deny all of it
//! (`restricted.rs`) and the one that denies some addresses (`addr_check.rs`).

use std::io::ErrorKind;
use std::net::SocketAddr;

use bitcoin_sock::{network_error_string, OpError, SockAddress, SockError};

/// Asserts the policy's refusal of `op` on `target`: `PermissionDenied`, the operation and
/// the target in the error and at the start of its text.
#[track_caller]
pub fn assert_refused(err: &OpError, op: &str, preposition: &str, target: &str) {
    assert_eq!(
        err.kind(),
        ErrorKind::PermissionDenied,
        "{err} (this test needs a runner with the policy its file names: scripts/test-all.sh)"
    );
    assert_eq!((err.op(), err.target()), (op, target));
    let prefix = format!("{op}() {preposition} {target} failed: ");
    assert!(err.to_string().starts_with(&prefix), "{err}");
}

/// What a refusal of the network reads like on WASI after the operation and its target:
/// Core's words and wasi-libc's `EACCES`, then that the host refused and what grants access in
/// wasmtime, `Permission denied (2); the WASI host refused network access (wasmtime run grants
/// it with -S inherit-network=y)`.
pub fn refusal_text() -> String {
    format!(
        "{}; the WASI host refused network access (wasmtime run grants it with \
         -S inherit-network=y)",
        network_error_string(libc::EACCES)
    )
}

/// [`assert_refused`], with wasi-libc's `EACCES` inside and the whole text:
/// `"<op>() <preposition> <target> failed: "` and [`refusal_text`].
#[track_caller]
pub fn assert_refused_with_eacces(err: &OpError, op: &str, preposition: &str, target: &str) {
    assert_refused(err, op, preposition, target);
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
    assert_eq!(
        err.to_string(),
        format!("{op}() {preposition} {target} failed: {}", refusal_text())
    );
}

/// Asserts the policy's refusal of a connect to `addr`: [`SockError::Connect`] naming it,
/// `PermissionDenied` with wasi-libc's `EACCES`, [`refusal_text`], and not a timeout.
#[track_caller]
pub fn assert_connect_refused(err: &SockError, addr: SocketAddr) {
    let SockError::Connect {
        addr: failed,
        source,
    } = err
    else {
        panic!("expected SockError::Connect, got {err:?}");
    };
    assert_eq!(*failed, SockAddress::Ip(addr));
    assert_eq!(source.kind(), ErrorKind::PermissionDenied, "{source}");
    assert_eq!(source.raw_os_error(), Some(libc::EACCES));
    assert_eq!(
        err.to_string(),
        format!("connect() to {addr} failed: {}", refusal_text())
    );
    assert!(!err.is_timeout());
}
