//! SOCKS5 client connect: Core's `Socks5()` (`src/netbase.cpp`), RFC 1928 `CONNECT` with
//! RFC 1929 username/password authentication (what Tor uses for stream isolation).
//!
//! [`connect`] runs the handshake over any [`SockIo`], built only on
//! [`send_complete`](SockIo::send_complete) and [`interruptible_recv`] (Core's
//! `InterruptibleRecv`), so a mock can drive it byte by byte.
//! [`Sock::connect_via_socks5`] connects to the proxy and does the handshake in one call;
//! [`Sock::connect_via_socks5_unix`] does the same with a proxy on a Unix-domain socket (Core's
//! `-proxy=unix:/run/tor/socks`, how Tor is usually reached on Linux).
//!
//! The bytes are Core's:
//!
//! | step | client sends | proxy answers |
//! |---|---|---|
//! | greeting | `05 01 00` (or `05 02 00 02` with credentials) | `05 <method>` |
//! | RFC 1929, if the proxy picked `02` | `01 <ulen> <username> <plen> <password>` | `01 00` |
//! | request | `05 01 00 03 <len> <dest> <port, big-endian>` | `05 <rep> 00 <atyp> <addr> <port>` |
//!
//! The destination always goes as a domain name (`atyp` 03), even an IP literal, so the proxy
//! resolves it (no DNS leaks with Tor). The proxy's bound address is read and dropped, as Core
//! does.
//!
//! ```no_run
//! use bitcoin_sock::socks5::Credentials;
//! use bitcoin_sock::{Sock, SockIo, ThreadInterrupt};
//! use std::time::Duration;
//!
//! // Through Tor's SOCKS port, with stream isolation credentials.
//! let auth = Credentials::new("0123456789abcdef-0", "0123456789abcdef-0");
//! let sock = Sock::connect_via_socks5(
//!     "127.0.0.1:9050".parse()?,
//!     "example.onion",
//!     8333,
//!     Some(&auth),
//!     Duration::from_secs(20),
//! )?;
//! sock.send_complete(b"...", Duration::from_secs(20), &ThreadInterrupt::new())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::io::{recv_at_least, Deadline};
use crate::{Sock, SockIo, ThreadInterrupt, UnixAddress};

/// The error of [`interruptible_recv`], also at the crate root (where
/// [`DeadlineIo`](crate::DeadlineIo)'s reads find it); kept here, beside Core's
/// `InterruptibleRecv`, for code written against this path.
pub use crate::recv_error::IntrRecvError;

mod error;
pub use error::{socks5_error_string, Socks5Error};

/// Core's `g_socks5_recv_timeout`: "ample time for negotiation for very slow proxies such as
/// Tor". Core uses it for every send and every read of the handshake.
pub const SOCKS5_RECV_TIMEOUT: Duration = Duration::from_secs(20);

// Core's SOCKSVersion, SOCKS5Method, SOCKS5Command and SOCKS5Atyp.
const SOCKS5: u8 = 0x05;
const METHOD_NOAUTH: u8 = 0x00;
const METHOD_USER_PASS: u8 = 0x02;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAINNAME: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;
// RFC 1929's sub-negotiation version and its success status.
const USER_PASS_VERSION: u8 = 0x01;
const USER_PASS_SUCCESS: u8 = 0x00;
const REPLY_SUCCEEDED: u8 = 0x00;

/// Username and password for RFC 1929 authentication (Core's `ProxyCredentials`).
///
/// Tor isolates streams by them: connections with different credentials get different
/// circuits. Core gives every connection `"<16 random hex digits>-<counter>"` as both.
/// Each must be at most 255 bytes; [`connect`] checks when the proxy asks for them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username (RFC 1929 `UNAME`).
    pub username: String,
    /// The password (RFC 1929 `PASSWD`).
    pub password: String,
}

impl Credentials {
    /// Credentials from a username and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    // The password stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Reads exactly `buf.len()` bytes within `timeout`, unless interrupted (Core's
/// `InterruptibleRecv`).
///
/// Tries [`recv`](SockIo::recv) first; while nothing is there, waits for
/// [`SockEvent::RECV`](crate::SockEvent::RECV) at most `min(time left, MAX_WAIT_FOR_IO)`, so an interrupt is noticed
/// within about a second. Between attempts it checks the interrupt, then the deadline, as
/// Core does. Where Core is fragile this is stricter: one attempt is always made (Core makes
/// none with a zero timeout), a read that completes succeeds even with the interrupt set, and
/// `EINTR` is tried again (Core gives up; `EINVAL`, which Core waits on, is permanent here, as
/// [`io_error_is_permanent`](crate::io_error_is_permanent) says).
///
/// # Errors
/// [`IntrRecvError::Disconnected`] when `recv` returns 0 (end of stream);
/// [`IntrRecvError::NetworkError`] on a permanent `recv` error or a failed wait;
/// [`IntrRecvError::Interrupted`]; [`IntrRecvError::Timeout`]. Each says how many bytes
/// arrived; they are at the start of `buf`.
///
/// ```
/// # bitcoin_sock::wasip3_main!(); // WASI 0.3: `main` entered where sockets may wait
/// use bitcoin_sock::socks5::interruptible_recv;
/// use bitcoin_sock::{Sock, SockIo, ThreadInterrupt};
/// use std::time::Duration;
///
/// let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 8)?;
/// let client = Sock::connect(listener.local_addr()?, Duration::from_secs(5))?;
/// listener.wait(Duration::from_secs(5), bitcoin_sock::SockEvent::RECV)?;
/// let (server, _) = listener.accept()?;
/// let interrupt = ThreadInterrupt::new();
/// client.send_complete(b"\x05\x00", Duration::from_secs(5), &interrupt)?;
///
/// let mut reply = [0u8; 2];
/// interruptible_recv(&server, &mut reply, Duration::from_secs(5), &interrupt)?;
/// assert_eq!(reply, [5, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn interruptible_recv<S: SockIo + ?Sized>(
    sock: &S,
    buf: &mut [u8],
    timeout: Duration,
    interrupt: &ThreadInterrupt,
) -> Result<(), IntrRecvError> {
    let expected = buf.len();
    recv_at_least(sock, buf, expected, &mut Deadline::new(timeout), interrupt).map(drop)
}

/// Asks the SOCKS5 proxy at the other end of `sock` to connect to `dest:port` (Core's
/// `Socks5()`); on success `sock` is a tunnel to the destination.
///
/// Offers "no authentication", and username/password (RFC 1929) when `auth` is given; the
/// proxy picks. The destination goes as a domain name (the proxy resolves it, also an IP
/// literal). Every send ([`send_complete`](SockIo::send_complete)) and every read
/// ([`interruptible_recv`]) gets `timeout` of its own, as in Core, which uses
/// [`SOCKS5_RECV_TIMEOUT`]; `interrupt` stops any of them. `sock` must be connected to the
/// proxy and non-blocking (every [`Sock`] this crate makes is).
///
/// # Errors
/// A [`Socks5Error`] saying which step failed, with Core's text:
/// [`HostnameTooLong`](Socks5Error::HostnameTooLong) (before sending anything),
/// [`Send`](Socks5Error::Send), [`MethodReply`](Socks5Error::MethodReply),
/// [`InitFailed`](Socks5Error::InitFailed), [`WrongAuthMethod`](Socks5Error::WrongAuthMethod),
/// [`CredentialsTooLong`](Socks5Error::CredentialsTooLong),
/// [`AuthReply`](Socks5Error::AuthReply), [`AuthFailed`](Socks5Error::AuthFailed),
/// [`ReadResponse`](Socks5Error::ReadResponse),
/// [`RequestNotAccepted`](Socks5Error::RequestNotAccepted), [`Reply`](Socks5Error::Reply) (the
/// proxy could not reach the destination),
/// [`MalformedResponse`](Socks5Error::MalformedResponse),
/// [`ReadAddress`](Socks5Error::ReadAddress). No reply bytes can make it panic.
///
/// ```no_run
/// use bitcoin_sock::socks5::{self, SOCKS5_RECV_TIMEOUT};
/// use bitcoin_sock::{Sock, ThreadInterrupt};
/// use std::time::Duration;
///
/// let proxy = Sock::connect("127.0.0.1:9050".parse()?, Duration::from_secs(5))?;
/// let interrupt = ThreadInterrupt::new();
/// socks5::connect(&proxy, "seed.bitcoin.sipa.be", 8333, None, SOCKS5_RECV_TIMEOUT, &interrupt)?;
/// // `proxy` now talks to seed.bitcoin.sipa.be:8333.
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn connect<S: SockIo + ?Sized>(
    sock: &S,
    dest: &str,
    port: u16,
    auth: Option<&Credentials>,
    timeout: Duration,
    interrupt: &ThreadInterrupt,
) -> Result<(), Socks5Error> {
    let dest_len = u8::try_from(dest.len()).map_err(|_| Socks5Error::HostnameTooLong)?;
    let send = |data: &[u8]| {
        sock.send_complete(data, timeout, interrupt)
            .map_err(Socks5Error::Send)
    };
    let recv = |buf: &mut [u8]| interruptible_recv(sock, buf, timeout, interrupt);

    let greeting: &[u8] = match auth {
        Some(_) => &[SOCKS5, 2, METHOD_NOAUTH, METHOD_USER_PASS],
        None => &[SOCKS5, 1, METHOD_NOAUTH],
    };
    send(greeting)?;
    let mut method_reply = [0u8; 2];
    recv(&mut method_reply).map_err(|source| Socks5Error::MethodReply {
        dest: dest.to_owned(),
        port,
        source,
    })?;
    let [version, method] = method_reply;
    if version != SOCKS5 {
        return Err(Socks5Error::InitFailed { version });
    }
    match (method, auth) {
        (METHOD_USER_PASS, Some(auth)) => {
            let too_long = |_| Socks5Error::CredentialsTooLong;
            let username_len = u8::try_from(auth.username.len()).map_err(too_long)?;
            let password_len = u8::try_from(auth.password.len()).map_err(too_long)?;
            let mut request = Vec::with_capacity(3 + auth.username.len() + auth.password.len());
            request.push(USER_PASS_VERSION);
            request.push(username_len);
            request.extend_from_slice(auth.username.as_bytes());
            request.push(password_len);
            request.extend_from_slice(auth.password.as_bytes());
            send(&request)?;
            let mut response = [0u8; 2];
            recv(&mut response).map_err(Socks5Error::AuthReply)?;
            if response != [USER_PASS_VERSION, USER_PASS_SUCCESS] {
                return Err(Socks5Error::AuthFailed { response });
            }
        }
        (METHOD_NOAUTH, _) => {}
        (method, _) => return Err(Socks5Error::WrongAuthMethod { method }),
    }

    let mut request = Vec::with_capacity(7 + dest.len());
    request.extend_from_slice(&[SOCKS5, CMD_CONNECT, 0x00, ATYP_DOMAINNAME, dest_len]);
    request.extend_from_slice(dest.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    send(&request)?;

    let mut header = [0u8; 4];
    recv(&mut header).map_err(Socks5Error::ReadResponse)?;
    let [version, code, reserved, address_type] = header;
    if version != SOCKS5 {
        return Err(Socks5Error::RequestNotAccepted { version });
    }
    if code != REPLY_SUCCEEDED {
        return Err(Socks5Error::Reply { code });
    }
    if reserved != 0x00 {
        return Err(Socks5Error::MalformedResponse { header });
    }
    // BND.ADDR and BND.PORT: read so the tunnel starts at the destination's first byte, then
    // dropped, as in Core.
    let mut address = [0u8; 255];
    let address_len = match address_type {
        ATYP_IPV4 => 4,
        ATYP_IPV6 => 16,
        ATYP_DOMAINNAME => {
            let mut len = [0u8; 1];
            recv(&mut len).map_err(Socks5Error::ReadAddress)?;
            usize::from(len[0])
        }
        _ => return Err(Socks5Error::MalformedResponse { header }),
    };
    recv(&mut address[..address_len]).map_err(Socks5Error::ReadAddress)?;
    let mut bound_port = [0u8; 2];
    recv(&mut bound_port).map_err(Socks5Error::ReadAddress)?;
    Ok(())
}

impl Sock {
    /// Connects to `dest:port` through the SOCKS5 proxy at `proxy` (Core's
    /// `ConnectThroughProxy`): [`Sock::connect`] to the proxy within `timeout`, then the
    /// handshake of [`socks5::connect`](connect) with `timeout` for each step and no
    /// interrupt. Returns the tunnel.
    ///
    /// # Errors
    /// [`Socks5Error::ProxyConnect`] when the proxy cannot be reached; any error of
    /// [`socks5::connect`](connect) otherwise, e.g. [`Socks5Error::Reply`] when the proxy
    /// cannot reach the destination.
    ///
    /// ```no_run
    /// use bitcoin_sock::Sock;
    /// use std::time::Duration;
    ///
    /// let sock = Sock::connect_via_socks5(
    ///     "127.0.0.1:9050".parse()?,
    ///     "seed.bitcoin.sipa.be",
    ///     8333,
    ///     None,
    ///     Duration::from_secs(20),
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_via_socks5(
        proxy: SocketAddr,
        dest: &str,
        port: u16,
        auth: Option<&Credentials>,
        timeout: Duration,
    ) -> Result<Sock, Socks5Error> {
        let sock = Sock::connect(proxy, timeout).map_err(Socks5Error::ProxyConnect)?;
        connect(&sock, dest, port, auth, timeout, &ThreadInterrupt::new())?;
        Ok(sock)
    }

    /// Connects to `dest:port` through the SOCKS5 proxy listening on the Unix-domain socket
    /// `proxy` (Core's `ConnectThroughProxy` with a `-proxy=unix:<path>` / `-onion=unix:<path>`
    /// proxy): [`Sock::connect_unix`] within `timeout`, then the handshake of
    /// [`socks5::connect`](connect), as [`connect_via_socks5`](Sock::connect_via_socks5).
    /// Tor isolates streams by the `auth` [`Credentials`] as over TCP.
    ///
    /// # Errors
    /// [`Socks5Error::ProxyConnect`] with a
    /// [`SockError::Connect`](crate::SockError::Connect) or
    /// [`SockError::ConnectTimeout`](crate::SockError::ConnectTimeout) when the proxy
    /// cannot be reached (`Unsupported` off native Unix); any error of
    /// [`socks5::connect`](connect) otherwise.
    ///
    /// ```no_run
    /// use bitcoin_sock::socks5::Credentials;
    /// use bitcoin_sock::{Sock, UnixAddress};
    /// use std::time::Duration;
    ///
    /// let isolation = Credentials::new("0123456789abcdef-0", "0123456789abcdef-0");
    /// let sock = Sock::connect_via_socks5_unix(
    ///     &UnixAddress::path("/run/tor/socks"),
    ///     "example.onion",
    ///     8333,
    ///     Some(&isolation),
    ///     Duration::from_secs(20),
    /// )?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_via_socks5_unix(
        proxy: &UnixAddress,
        dest: &str,
        port: u16,
        auth: Option<&Credentials>,
        timeout: Duration,
    ) -> Result<Sock, Socks5Error> {
        let sock = Sock::connect_unix(proxy, timeout).map_err(Socks5Error::ProxyConnect)?;
        connect(&sock, dest, port, auth, timeout, &ThreadInterrupt::new())?;
        Ok(sock)
    }
}
