//! Typed socket options: [`SockOpt`] and [`SockOptValue`], for
//! [`Sock::get_sock_opt`](crate::Sock::get_sock_opt) / [`Sock::set_sock_opt`](crate::Sock::set_sock_opt).

/// A socket option, named portably (Core's `GetSockOpt`/`SetSockOpt` take raw levels and names;
/// here each backend maps the option to what its host has, and answers `Unsupported` for the
/// rest).
///
/// | option | native | WASI 0.2 | value |
/// |---|---|---|---|
/// | `NoDelay` | `TCP_NODELAY` | unsupported | `Bool` |
/// | `KeepAlive` | `SO_KEEPALIVE` | `keep-alive-enabled` | `Bool` |
/// | `RecvBufferSize` | `SO_RCVBUF` | `receive-buffer-size` | `Size` |
/// | `SendBufferSize` | `SO_SNDBUF` | `send-buffer-size` | `Size` |
/// | `ReuseAddress` | `SO_REUSEADDR` | unsupported | `Bool` |
/// | `Ttl` | `IP_TTL` / `IPV6_UNICAST_HOPS` | `hop-limit` | `Size` |
/// | `Error` (get only) | `SO_ERROR` (clears it) | the error of a failed connect or write (clears it) | `Error` |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SockOpt {
    /// Disable Nagle's algorithm (`TCP_NODELAY`). Core sets it on every TCP socket it creates,
    /// and so does this crate.
    NoDelay,
    /// Send keep-alive probes (`SO_KEEPALIVE`).
    KeepAlive,
    /// The kernel's receive buffer size in bytes (`SO_RCVBUF`).
    RecvBufferSize,
    /// The kernel's send buffer size in bytes (`SO_SNDBUF`).
    SendBufferSize,
    /// Allow binding an address in `TIME_WAIT` (`SO_REUSEADDR`).
    ReuseAddress,
    /// The time-to-live / hop limit of outgoing packets.
    Ttl,
    /// The pending socket error (`SO_ERROR`); reading it clears it. Read-only.
    Error,
}

/// The value of a [`SockOpt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SockOptValue {
    /// An on/off option.
    Bool(bool),
    /// A size or count.
    Size(usize),
    /// The pending error's OS code, `None` when there is none.
    Error(Option<i32>),
}

/// The error for a value of the wrong type, or a write to a read-only option.
#[cfg_attr(not(sockets), allow(dead_code))] // the unsupported backend never uses it
pub(crate) fn mismatch(opt: SockOpt, value: SockOptValue) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("socket option {opt:?} cannot be set to {value:?}"),
    )
}
