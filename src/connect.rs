//! Connecting by name: Core's `ConnectNode` over `ConnectDirectly` — split `"host:port"`,
//! resolve, try each address in turn with the timeout per attempt, keep the last error.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::parse::split_host_port;
use crate::{resolve, Sock, SockError, UnixAddress};

impl Sock {
    /// Connects to `dest`, given as text: `"host:port"`, `"[ipv6]:port"` or Core's
    /// `"unix:<path>"` (Core's `ConnectNode` with a `pszDest`, as `-connect=` and `-addnode=`
    /// take it; std's and tokio's `TcpStream::connect("host:port")`). A host name is looked
    /// up ([`resolve`]) and each address is tried in the resolver's order
    /// ([`connect_any`](Sock::connect_any)), with `timeout` for each attempt as in Core; an IP
    /// address is not looked up.
    ///
    /// [`connect`](Sock::connect) stays Core's `ConnectSocketDirectly` over one
    /// [`SocketAddr`]: connecting by name is its own call, so a caller always sees whether a
    /// lookup (which may block for the resolver's time, not `timeout`) takes place.
    ///
    /// ```no_run
    /// use bitcoin_sock::Sock;
    /// use std::time::Duration;
    ///
    /// let sock = Sock::connect_by_name("seed.bitcoin.sipa.be:8333", Duration::from_secs(5))?;
    /// let tor = Sock::connect_by_name("unix:/run/tor/socks", Duration::from_secs(5))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SockError::Resolve`] when `dest` is malformed (`InvalidInput`: no port, unmatched
    /// brackets, a port above 65535, empty; see [`split_host_port`]) or its name does not
    /// resolve (the resolver's error: `resolve() of "..." failed: Name or service not known`);
    /// otherwise the error of the last attempt, as [`connect`](Sock::connect) or
    /// [`connect_unix`](Sock::connect_unix) give it ([`SockError::Connect`],
    /// [`SockError::ConnectTimeout`], ...).
    pub fn connect_by_name(dest: &str, timeout: Duration) -> Result<Sock, SockError> {
        if dest.starts_with("unix:") {
            let addr: UnixAddress = dest.parse().map_err(SockError::Resolve)?;
            return Sock::connect_unix(&addr, timeout);
        }
        // An IP address as `SocketAddr` writes it (also with an IPv6 zone, which no resolver
        // takes).
        if let Ok(addr) = dest.parse::<SocketAddr>() {
            return Sock::connect(addr, timeout);
        }
        let (host, port) = split_host_port(dest).map_err(SockError::Resolve)?;
        let addrs = resolve(host, port).map_err(|err| SockError::Resolve(err.into()))?;
        Sock::connect_any(&addrs, timeout)
    }

    /// Connects to the first of `addrs` that accepts, trying each in turn with `timeout` for
    /// each attempt (the loop of Core's `ConnectNode` over `ConnectDirectly`; what std's
    /// `TcpStream::connect` does with several addresses).
    ///
    /// # Errors
    /// The error of the last attempt ([`SockError::Connect`], [`SockError::ConnectTimeout`]),
    /// as Core logs the last; [`SockError::Resolve`] (`InvalidInput`) for an empty `addrs`.
    pub fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<Sock, SockError> {
        let mut last_error = None;
        for &addr in addrs {
            match Sock::connect(addr, timeout) {
                Ok(sock) => return Ok(sock),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            SockError::Resolve(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no address to connect to",
            ))
        }))
    }
}
