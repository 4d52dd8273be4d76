//! Typed socket options: [`SockOpt`] and [`SockOptValue`], for
//! [`Sock::get_sock_opt`](crate::Sock::get_sock_opt) / [`Sock::set_sock_opt`](crate::Sock::set_sock_opt).

use std::io;

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

impl SockOpt {
    /// The option's name on the hosts that have it, for the `Unsupported` error of the others.
    #[cfg_attr(not(all(sockets, target_family = "wasm")), allow(dead_code))] // only WASI lacks options
    pub(crate) fn name(self) -> &'static str {
        match self {
            SockOpt::NoDelay => "TCP_NODELAY",
            SockOpt::KeepAlive => "SO_KEEPALIVE",
            SockOpt::RecvBufferSize => "SO_RCVBUF",
            SockOpt::SendBufferSize => "SO_SNDBUF",
            SockOpt::ReuseAddress => "SO_REUSEADDR",
            SockOpt::Ttl => "IP_TTL",
            SockOpt::Error => "SO_ERROR",
        }
    }
}

/// A socket option write whose value has the option's type and range: checked once, by
/// [`SetSockOpt::new`], so that a backend only does what its host does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(sockets), allow(dead_code))] // the unsupported backend never reads one
pub(crate) enum SetSockOpt {
    NoDelay(bool),
    KeepAlive(bool),
    RecvBufferSize(usize),
    SendBufferSize(usize),
    ReuseAddress(bool),
    /// The IP header's TTL / hop-limit field holds 8 bits on every host.
    Ttl(u8),
}

impl SetSockOpt {
    /// `opt` set to `value`, if that value fits the option.
    ///
    /// # Errors
    /// `InvalidInput` for a value of the wrong type, a write to the read-only
    /// [`SockOpt::Error`], or a TTL above 255.
    pub(crate) fn new(opt: SockOpt, value: SockOptValue) -> io::Result<SetSockOpt> {
        Ok(match (opt, value) {
            (SockOpt::NoDelay, SockOptValue::Bool(on)) => SetSockOpt::NoDelay(on),
            (SockOpt::KeepAlive, SockOptValue::Bool(on)) => SetSockOpt::KeepAlive(on),
            (SockOpt::RecvBufferSize, SockOptValue::Size(size)) => SetSockOpt::RecvBufferSize(size),
            (SockOpt::SendBufferSize, SockOptValue::Size(size)) => SetSockOpt::SendBufferSize(size),
            (SockOpt::ReuseAddress, SockOptValue::Bool(on)) => SetSockOpt::ReuseAddress(on),
            (SockOpt::Ttl, SockOptValue::Size(ttl)) => SetSockOpt::Ttl(
                u8::try_from(ttl)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TTL out of range"))?,
            ),
            (opt, value) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("socket option {opt:?} cannot be set to {value:?}"),
                ))
            }
        })
    }

    /// The option written.
    #[cfg_attr(not(all(sockets, target_family = "wasm")), allow(dead_code))] // only WASI lacks options
    pub(crate) fn opt(self) -> SockOpt {
        match self {
            SetSockOpt::NoDelay(_) => SockOpt::NoDelay,
            SetSockOpt::KeepAlive(_) => SockOpt::KeepAlive,
            SetSockOpt::RecvBufferSize(_) => SockOpt::RecvBufferSize,
            SetSockOpt::SendBufferSize(_) => SockOpt::SendBufferSize,
            SetSockOpt::ReuseAddress(_) => SockOpt::ReuseAddress,
            SetSockOpt::Ttl(_) => SockOpt::Ttl,
        }
    }
}

/// The error of an option the host does not have.
#[cfg_attr(not(all(sockets, target_family = "wasm")), allow(dead_code))] // only WASI lacks options
pub(crate) fn unsupported(opt: SockOpt) -> io::Error {
    crate::error::unsupported(opt.name())
}
