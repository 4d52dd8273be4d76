//! Why a SOCKS5 handshake failed, in Core's words, and Core's texts for the proxy's reply
//! codes.

use std::io;

use super::IntrRecvError;
use crate::SockError;

/// Why a SOCKS5 handshake failed. `Display` prints the text Core logs for the same failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Socks5Error {
    /// Connecting to the proxy itself failed ([`Sock::connect_via_socks5`](crate::Sock::connect_via_socks5) only).
    #[error(transparent)]
    ProxyConnect(SockError),

    /// The destination is longer than the 255 bytes a SOCKS5 domain name can have. Nothing
    /// was sent.
    #[error("Hostname too long")]
    HostnameTooLong,

    /// Sending to the proxy failed: timeout, interrupt or a permanent error of
    /// [`send_complete`](crate::SockIo::send_complete).
    #[error("Error during SOCKS5 proxy handshake: {0}")]
    Send(#[source] SockError),

    /// The proxy's answer to the greeting did not arrive.
    #[error(
        "Socks5() connect to {dest}:{port} failed: InterruptibleRecv() timeout or other failure"
    )]
    MethodReply {
        /// The destination asked for.
        dest: String,
        /// The destination port asked for.
        port: u16,
        /// How the read failed.
        #[source]
        source: IntrRecvError,
    },

    /// The proxy's answer to the greeting is not SOCKS version 5.
    #[error("Proxy failed to initialize")]
    InitFailed {
        /// The version byte the proxy sent.
        version: u8,
    },

    /// The proxy picked a method this client did not offer or cannot do: `ff` (no acceptable
    /// method, e.g. a proxy that insists on a password when none was given), `01` (GSSAPI),
    /// or `02` when no credentials were given.
    #[error("Proxy requested wrong authentication method {method:02x}")]
    WrongAuthMethod {
        /// The method the proxy picked.
        method: u8,
    },

    /// The username or the password is longer than 255 bytes. Checked when the proxy asks for
    /// them, after the greeting, as Core does.
    #[error("Proxy username or password too long")]
    CredentialsTooLong,

    /// The proxy's answer to the credentials did not arrive.
    #[error("Error reading proxy authentication response")]
    AuthReply(#[source] IntrRecvError),

    /// The proxy rejected the credentials (its answer was not `01 00`).
    #[error("Proxy authentication unsuccessful")]
    AuthFailed {
        /// The proxy's answer: version and status.
        response: [u8; 2],
    },

    /// The proxy's answer to the request did not arrive. A [`IntrRecvError::Timeout`] here is
    /// common with Tor (Core does not even log it); [`is_timeout`](Socks5Error::is_timeout)
    /// tells.
    #[error("Error while reading proxy response")]
    ReadResponse(#[source] IntrRecvError),

    /// The proxy's answer to the request is not SOCKS version 5.
    #[error("Proxy failed to accept request")]
    RequestNotAccepted {
        /// The version byte the proxy sent.
        version: u8,
    },

    /// The proxy could not connect to the destination: a non-zero reply code. `Display` is
    /// Core's `Socks5ErrorString` (see [`socks5_error_string`]), e.g. `"connection refused"`.
    #[error("{}", socks5_error_string(*.code))]
    Reply {
        /// The reply code (`REP`).
        code: u8,
    },

    /// The proxy's answer to the request has a non-zero reserved byte or an unknown address
    /// type.
    #[error("Error: malformed proxy response")]
    MalformedResponse {
        /// The answer's first four bytes: version, reply code, reserved, address type.
        header: [u8; 4],
    },

    /// The bound address or port in the proxy's answer did not arrive.
    #[error("Error reading from proxy")]
    ReadAddress(#[source] IntrRecvError),
}

impl Socks5Error {
    /// The proxy's reply code, for [`Socks5Error::Reply`].
    pub fn reply_code(&self) -> Option<u8> {
        match self {
            Socks5Error::Reply { code } => Some(*code),
            _ => None,
        }
    }

    /// Whether a timeout ended the handshake (connecting, sending or reading).
    pub fn is_timeout(&self) -> bool {
        match self {
            Socks5Error::ProxyConnect(e) | Socks5Error::Send(e) => e.is_timeout(),
            _ => matches!(self.recv_error(), Some(IntrRecvError::Timeout { .. })),
        }
    }

    /// Whether the interrupt ended the handshake.
    pub fn is_interrupted(&self) -> bool {
        match self {
            Socks5Error::Send(e) => e.is_interrupted(),
            _ => matches!(self.recv_error(), Some(IntrRecvError::Interrupted { .. })),
        }
    }

    /// How a read failed, for the variants that come from [`interruptible_recv`](super::interruptible_recv).
    pub fn recv_error(&self) -> Option<&IntrRecvError> {
        match self {
            Socks5Error::MethodReply { source, .. }
            | Socks5Error::AuthReply(source)
            | Socks5Error::ReadResponse(source)
            | Socks5Error::ReadAddress(source) => Some(source),
            _ => None,
        }
    }

    /// The OS error, when the failure came from the OS (connecting to the proxy, sending,
    /// receiving).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Socks5Error::ProxyConnect(e) | Socks5Error::Send(e) => e.io_error(),
            _ => self.recv_error().and_then(IntrRecvError::io_error),
        }
    }

    /// The [`io::ErrorKind`] of the failure: that of the error inside for
    /// [`ProxyConnect`](Socks5Error::ProxyConnect), [`Send`](Socks5Error::Send) and the
    /// reads ([`SockError::kind`], [`IntrRecvError::kind`]); `InvalidInput` for a destination
    /// or credentials too long; `InvalidData` for an answer that is not SOCKS5 or is
    /// malformed; `PermissionDenied` for an authentication the proxy refused or asked for
    /// without credentials given; for [`Reply`](Socks5Error::Reply) by its code:
    /// `PermissionDenied` (`02`, not allowed), `ConnectionRefused` (`05`), `TimedOut` (`06`
    /// TTL expired, which Tor sends for a timeout, and `f7`), `Unsupported` (`08`), `Other`
    /// for the rest.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Socks5Error::ProxyConnect(e) | Socks5Error::Send(e) => e.kind(),
            Socks5Error::MethodReply { source, .. }
            | Socks5Error::AuthReply(source)
            | Socks5Error::ReadResponse(source)
            | Socks5Error::ReadAddress(source) => source.kind(),
            Socks5Error::HostnameTooLong | Socks5Error::CredentialsTooLong => {
                io::ErrorKind::InvalidInput
            }
            Socks5Error::InitFailed { .. }
            | Socks5Error::RequestNotAccepted { .. }
            | Socks5Error::MalformedResponse { .. } => io::ErrorKind::InvalidData,
            Socks5Error::WrongAuthMethod { .. } | Socks5Error::AuthFailed { .. } => {
                io::ErrorKind::PermissionDenied
            }
            Socks5Error::Reply { code } => match code {
                0x02 => io::ErrorKind::PermissionDenied,
                0x05 => io::ErrorKind::ConnectionRefused,
                0x06 | 0xf7 => io::ErrorKind::TimedOut,
                0x08 => io::ErrorKind::Unsupported,
                _ => io::ErrorKind::Other,
            },
        }
    }

    /// The OS error code, when the failure came from the OS.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Socks5Error::ProxyConnect(e) | Socks5Error::Send(e) => e.raw_os_error(),
            _ => self.recv_error().and_then(IntrRecvError::raw_os_error),
        }
    }
}

impl From<Socks5Error> for io::Error {
    /// The crate's rule (README, "Errors"): an OS error ([`Socks5Error::io_error`]) as it is,
    /// kind and [`raw_os_error`](io::Error::raw_os_error) kept; any other failure an
    /// `io::Error` of [`Socks5Error::kind`] with this error inside (Core's text).
    fn from(err: Socks5Error) -> io::Error {
        if err.io_error().is_none() {
            return io::Error::new(err.kind(), err);
        }
        match err {
            Socks5Error::ProxyConnect(e) | Socks5Error::Send(e) => e.into(),
            Socks5Error::MethodReply { source, .. }
            | Socks5Error::AuthReply(source)
            | Socks5Error::ReadResponse(source)
            | Socks5Error::ReadAddress(source) => source.into(),
            err => io::Error::new(err.kind(), err),
        }
    }
}

/// Core's `Socks5ErrorString`: the text for a SOCKS5 reply code, with Tor's onion-service
/// codes (`f0`–`f7`); `"unknown (0x..)"` for any other, including `00`.
///
/// ```
/// use bitcoin_sock::socks5::socks5_error_string;
/// assert_eq!(socks5_error_string(0x05), "connection refused");
/// assert_eq!(socks5_error_string(0xf0), "onion service descriptor can not be found");
/// assert_eq!(socks5_error_string(0x09), "unknown (0x09)");
/// ```
pub fn socks5_error_string(code: u8) -> String {
    let text = match code {
        0x01 => "general failure",
        0x02 => "connection not allowed",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired",
        0x07 => "protocol error",
        0x08 => "address type not supported",
        0xf0 => "onion service descriptor can not be found",
        0xf1 => "onion service descriptor is invalid",
        0xf2 => "onion service introduction failed",
        0xf3 => "onion service rendezvous failed",
        0xf4 => "onion service missing client authorization",
        0xf5 => "onion service wrong client authorization",
        0xf6 => "onion service invalid address",
        0xf7 => "onion service introduction timed out",
        _ => return format!("unknown (0x{code:02x})"),
    };
    text.to_owned()
}
