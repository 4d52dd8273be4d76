//! [`OpError`]: the error of [`Sock::bind`](crate::Sock::bind),
//! [`Sock::listen`](crate::Sock::listen) and [`resolve`](crate::resolve), naming the operation
//! and its address; and [`os_error_code`], the OS code of an `io::Error` from anywhere.

use std::error::Error;
use std::io;

use crate::error::describe;
use crate::sockman::SockManError;
use crate::{Disconnected, IntrRecvError, SockError, Socks5Error};

/// The error of [`Sock::bind`](crate::Sock::bind), [`Sock::listen`](crate::Sock::listen),
/// [`Sock::bind_listen`](crate::Sock::bind_listen), [`resolve`](crate::resolve) and
/// [`SockMan::bind_and_listen`](crate::sockman::SockMan::bind_and_listen): the operation, the
/// address it was about, and the error underneath.
///
/// `Display` reads like Core's `"connect() to ... failed: ..."` ([`SockError::Connect`] is the
/// same for connects): `bind() to 127.0.0.1:8333 failed: Address already in use (98)`,
/// `listen() on 127.0.0.1:8333 failed: ...`, `resolve() of "seed.bitcoin.sipa.be" failed: ...`.
/// A host that denies the network (an edge platform, `wasmtime run` without
/// `-S inherit-network`) thus says which operation and which address it refused.
///
/// [`kind`](OpError::kind) and [`raw_os_error`](OpError::raw_os_error) are the OS error's; the
/// `io::Error` made `From` this (what `?` gives in a function returning [`io::Result`]) follows
/// the crate's rule (README, "Errors"): an OS error as it is, code and all, else an `io::Error`
/// of the same kind with this error inside.
///
/// ```
/// use bitcoin_sock::Sock;
///
/// let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 8)?;
/// let addr = listener.local_addr()?;
/// let err = Sock::bind_listen(addr, 8).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
/// assert_eq!(err.op(), "bind");
/// assert!(err.to_string().starts_with(&format!("bind() to {addr} failed: ")));
/// assert!(err.raw_os_error().is_some());
/// let code = err.raw_os_error();
/// assert_eq!(std::io::Error::from(err).raw_os_error(), code);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// On the invalid sock ([`Sock::default`](crate::Sock::default)) `listen` fails as every call
/// there does: `NotConnected`, `Display` exactly `not connected`, and an empty
/// [`target`](OpError::target).
#[derive(Debug, thiserror::Error)]
#[error("{}", self.text())]
pub struct OpError {
    op: &'static str,
    preposition: &'static str,
    target: String,
    #[source]
    source: io::Error,
}

impl OpError {
    /// `source` with the operation (`"bind"`) and what it was about (`"to"`,
    /// `"127.0.0.1:8333"`).
    pub(crate) fn new(
        op: &'static str,
        preposition: &'static str,
        target: String,
        source: io::Error,
    ) -> OpError {
        OpError {
            op,
            preposition,
            target,
            source,
        }
    }

    /// `op` failed because the sock is the invalid one: no address to name.
    pub(crate) fn on_invalid_sock(op: &'static str) -> OpError {
        OpError::new(op, "", String::new(), crate::error::not_connected())
    }

    fn text(&self) -> String {
        if self.target.is_empty() {
            describe(&self.source)
        } else {
            let OpError {
                op,
                preposition,
                target,
                ..
            } = self;
            format!(
                "{op}() {preposition} {target} failed: {}",
                describe(&self.source)
            )
        }
    }

    /// The operation: `"bind"`, `"listen"` or `"resolve"`.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// What the operation was about: the socket address (`"127.0.0.1:8333"`, `"[::1]:0"`) or,
    /// for `resolve`, the quoted name; empty on the invalid sock.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The error underneath: the OS error, with its raw code where it has one; for
    /// `resolve`, the resolver's failure or the refusal of an invalid name (no code).
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }

    /// The [`io::ErrorKind`] of the error underneath (`AddrInUse`, `PermissionDenied`,
    /// `InvalidInput`, ...).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The OS error code, when the failure came from the OS (`None` for a resolver's failure,
    /// whose codes are no OS codes).
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl From<OpError> for io::Error {
    /// The OS error as it is when the failure came from the OS (kind and
    /// [`raw_os_error`](io::Error::raw_os_error) kept; `Display` is then std's, without the
    /// operation and address); otherwise an `io::Error` of [`OpError::kind`] with this error
    /// inside (`Display` names the operation and address).
    fn from(err: OpError) -> io::Error {
        if err.raw_os_error().is_some() {
            err.source
        } else {
            io::Error::new(err.kind(), err)
        }
    }
}

/// The raw OS error code of `err`, looking through any of this crate's error types inside it
/// (what [`io::Error::raw_os_error`] answers where the code sits at the top).
///
/// The crate's own errors have `raw_os_error()` themselves, and their conversions into
/// `io::Error` keep the code at the top, so this is for `io::Error`s made elsewhere that carry
/// one of them inside: the [`read_exact`](std::io::Read::read_exact) and
/// [`write_all`](std::io::Write::write_all) of [`DeadlineIo`](crate::DeadlineIo), which keep
/// Core's text with the byte counts and so put the OS error inside, or an `io::Error` a user
/// built with [`io::Error::new`] around one of them.
pub fn os_error_code(err: &io::Error) -> Option<i32> {
    err.raw_os_error()
        .or_else(|| inner_os_error_code(err.get_ref()?))
}

/// The OS code inside `inner`, if it is one of the crate's error types (or an `io::Error`).
fn inner_os_error_code(inner: &(dyn Error + Send + Sync + 'static)) -> Option<i32> {
    if let Some(e) = inner.downcast_ref::<OpError>() {
        e.raw_os_error()
    } else if let Some(e) = inner.downcast_ref::<SockError>() {
        e.raw_os_error()
    } else if let Some(e) = inner.downcast_ref::<IntrRecvError>() {
        e.raw_os_error()
    } else if let Some(e) = inner.downcast_ref::<Socks5Error>() {
        e.raw_os_error()
    } else if let Some(e) = inner.downcast_ref::<SockManError>() {
        e.raw_os_error()
    } else if let Some(e) = inner.downcast_ref::<Disconnected>() {
        e.raw_os_error()
    } else {
        os_error_code(inner.downcast_ref::<io::Error>()?)
    }
}
