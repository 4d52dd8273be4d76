//! Typed socket options: [`SockOpt`] and [`SockOptValue`], for
//! [`Sock::get_sock_opt`](crate::Sock::get_sock_opt) / [`Sock::set_sock_opt`](crate::Sock::set_sock_opt).

use std::io;
use std::time::Duration;

use crate::{sys, Sock};

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
/// | `Linger` | `SO_LINGER` | unsupported | `Linger` |
/// | `Ipv6V6Only` | `IPV6_V6ONLY` (IPv6 sockets only) | unsupported | `Bool` |
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
    /// What closing does with unsent data (`SO_LINGER`): `None` (the default) closes at once
    /// and lets the OS send the rest; `Some(Duration::ZERO)` resets the connection (`RST`).
    /// Whole seconds: a fraction is dropped (`l_linger` counts seconds).
    Linger,
    /// An IPv6 socket takes IPv6 only, no IPv4-mapped addresses (`IPV6_V6ONLY`). Sockets this
    /// crate binds have it on, as Core's; the OS lets it change only before `bind`, so it is
    /// for sockets made elsewhere and adopted. An IPv4 socket answers the OS's error.
    Ipv6V6Only,
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
    /// [`SockOpt::Linger`]: `None` off, `Some(time)` on with that time.
    Linger(Option<Duration>),
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
            SockOpt::Linger => "SO_LINGER",
            SockOpt::Ipv6V6Only => "IPV6_V6ONLY",
        }
    }
}

/// The socket options of a [`Sock`]: typed `GetSockOpt` / `SetSockOpt`, and a getter and setter
/// for each common option.
impl Sock {
    /// Reads a socket option (Core's `GetSockOpt`, typed).
    ///
    /// # Errors
    /// `Unsupported` when the host has no such option (see [`SockOpt`]); the OS error;
    /// `NotConnected` on the invalid sock.
    pub fn get_sock_opt(&self, opt: SockOpt) -> io::Result<SockOptValue> {
        sys::get_sock_opt(self.try_get()?, opt)
    }

    /// Writes a socket option (Core's `SetSockOpt`, typed).
    ///
    /// # Errors
    /// `InvalidInput` for a value of the wrong type or a read-only option; `Unsupported` when
    /// the host has no such option; the OS error; `NotConnected` on the invalid sock.
    pub fn set_sock_opt(&self, opt: SockOpt, value: SockOptValue) -> io::Result<()> {
        let socket = self.try_get()?;
        sys::set_sock_opt(socket, SetSockOpt::new(opt, value)?)
    }

    /// Enables or disables `TCP_NODELAY` (Nagle's algorithm off when `true`).
    ///
    /// # Errors
    /// As [`set_sock_opt`](Sock::set_sock_opt).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.set_sock_opt(SockOpt::NoDelay, SockOptValue::Bool(nodelay))
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// As [`get_sock_opt`](Sock::get_sock_opt).
    pub fn nodelay(&self) -> io::Result<bool> {
        self.get_bool(SockOpt::NoDelay)
    }

    /// Enables or disables `SO_KEEPALIVE`.
    ///
    /// # Errors
    /// As [`set_sock_opt`](Sock::set_sock_opt).
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.set_sock_opt(SockOpt::KeepAlive, SockOptValue::Bool(keepalive))
    }

    /// Whether `SO_KEEPALIVE` is set.
    ///
    /// # Errors
    /// As [`get_sock_opt`](Sock::get_sock_opt).
    pub fn keepalive(&self) -> io::Result<bool> {
        self.get_bool(SockOpt::KeepAlive)
    }

    /// Sets the kernel receive buffer size (`SO_RCVBUF`).
    ///
    /// # Errors
    /// As [`set_sock_opt`](Sock::set_sock_opt).
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        self.set_sock_opt(SockOpt::RecvBufferSize, SockOptValue::Size(size))
    }

    /// The kernel receive buffer size (`SO_RCVBUF`).
    ///
    /// # Errors
    /// As [`get_sock_opt`](Sock::get_sock_opt).
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        self.get_size(SockOpt::RecvBufferSize)
    }

    /// Sets the kernel send buffer size (`SO_SNDBUF`).
    ///
    /// # Errors
    /// As [`set_sock_opt`](Sock::set_sock_opt).
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        self.set_sock_opt(SockOpt::SendBufferSize, SockOptValue::Size(size))
    }

    /// The kernel send buffer size (`SO_SNDBUF`).
    ///
    /// # Errors
    /// As [`get_sock_opt`](Sock::get_sock_opt).
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        self.get_size(SockOpt::SendBufferSize)
    }

    /// Sets `SO_LINGER` ([`SockOpt::Linger`]): `Some(Duration::ZERO)` makes the close reset the
    /// connection.
    ///
    /// # Errors
    /// As [`set_sock_opt`](Sock::set_sock_opt); `Unsupported` on WASI 0.2.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.set_sock_opt(SockOpt::Linger, SockOptValue::Linger(linger))
    }

    /// `SO_LINGER` ([`SockOpt::Linger`]).
    ///
    /// # Errors
    /// As [`get_sock_opt`](Sock::get_sock_opt); `Unsupported` on WASI 0.2.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        match self.get_sock_opt(SockOpt::Linger)? {
            SockOptValue::Linger(linger) => Ok(linger),
            other => Err(unexpected(SockOpt::Linger, other)),
        }
    }

    /// Sets `IPV6_V6ONLY` ([`SockOpt::Ipv6V6Only`]); the OS takes it only before `bind`.
    ///
    /// # Errors
    /// As [`set_sock_opt`](Sock::set_sock_opt); the OS error on an IPv4 or bound socket;
    /// `Unsupported` on WASI 0.2.
    pub fn set_only_v6(&self, only_v6: bool) -> io::Result<()> {
        self.set_sock_opt(SockOpt::Ipv6V6Only, SockOptValue::Bool(only_v6))
    }

    /// Whether `IPV6_V6ONLY` is set ([`SockOpt::Ipv6V6Only`]).
    ///
    /// # Errors
    /// As [`get_sock_opt`](Sock::get_sock_opt); the OS error on an IPv4 socket;
    /// `Unsupported` on WASI 0.2.
    pub fn only_v6(&self) -> io::Result<bool> {
        self.get_bool(SockOpt::Ipv6V6Only)
    }

    /// Takes the pending socket error (`SO_ERROR`), clearing it.
    ///
    /// # Errors
    /// As [`get_sock_opt`](Sock::get_sock_opt).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self.get_sock_opt(SockOpt::Error)? {
            SockOptValue::Error(code) => Ok(code.map(io::Error::from_raw_os_error)),
            other => Err(unexpected(SockOpt::Error, other)),
        }
    }

    fn get_bool(&self, opt: SockOpt) -> io::Result<bool> {
        match self.get_sock_opt(opt)? {
            SockOptValue::Bool(on) => Ok(on),
            other => Err(unexpected(opt, other)),
        }
    }

    fn get_size(&self, opt: SockOpt) -> io::Result<usize> {
        match self.get_sock_opt(opt)? {
            SockOptValue::Size(size) => Ok(size),
            other => Err(unexpected(opt, other)),
        }
    }
}

fn unexpected(opt: SockOpt, value: SockOptValue) -> io::Error {
    io::Error::other(format!("socket option {opt:?} gave {value:?}"))
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
    Linger(Option<Duration>),
    Ipv6V6Only(bool),
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
            (SockOpt::Linger, SockOptValue::Linger(linger)) => SetSockOpt::Linger(linger),
            (SockOpt::Ipv6V6Only, SockOptValue::Bool(on)) => SetSockOpt::Ipv6V6Only(on),
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
            SetSockOpt::Linger(_) => SockOpt::Linger,
            SetSockOpt::Ipv6V6Only(_) => SockOpt::Ipv6V6Only,
        }
    }
}

/// The error of an option the host does not have.
#[cfg_attr(not(all(sockets, target_family = "wasm")), allow(dead_code))] // only WASI lacks options
pub(crate) fn unsupported(opt: SockOpt) -> io::Error {
    crate::error::unsupported(opt.name())
}
