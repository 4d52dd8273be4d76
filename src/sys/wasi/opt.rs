//! Socket options: the four WASI has (0.2 and 0.3 alike), the two it lacks, and the pending
//! error this crate keeps for `SO_ERROR`. Each version says how to reach its socket's options
//! ([`HostOptions`], in `p2/opt.rs` and `p3/opt.rs`).

use std::io;

use crate::opt::{unsupported, SetSockOpt};
use crate::{SockOpt, SockOptValue};

/// The options a `wasi:sockets` TCP socket has, through one version's calls.
pub(super) trait HostOptions {
    fn keep_alive(&self) -> io::Result<bool>;
    fn set_keep_alive(&self, on: bool) -> io::Result<()>;
    fn recv_buffer_size(&self) -> io::Result<u64>;
    fn set_recv_buffer_size(&self, bytes: u64) -> io::Result<()>;
    fn send_buffer_size(&self) -> io::Result<u64>;
    fn set_send_buffer_size(&self, bytes: u64) -> io::Result<()>;
    fn hop_limit(&self) -> io::Result<u8>;
    fn set_hop_limit(&self, hops: u8) -> io::Result<()>;
    /// The pending error, cleared (`SO_ERROR`).
    fn take_pending_error(&self) -> Option<i32>;
}

/// Reads an option WASI has; `SockOpt::Error` reads the pending error this backend keeps.
pub(super) fn get(socket: &impl HostOptions, opt: SockOpt) -> io::Result<SockOptValue> {
    Ok(match opt {
        SockOpt::KeepAlive => SockOptValue::Bool(socket.keep_alive()?),
        SockOpt::RecvBufferSize => SockOptValue::Size(size(socket.recv_buffer_size()?)),
        SockOpt::SendBufferSize => SockOptValue::Size(size(socket.send_buffer_size()?)),
        SockOpt::Ttl => SockOptValue::Size(socket.hop_limit()?.into()),
        SockOpt::Error => SockOptValue::Error(socket.take_pending_error()),
        // TCP_NODELAY, SO_REUSEADDR, SO_LINGER, IPV6_V6ONLY, and whatever a later option
        // WASI lacks.
        _ => return Err(unsupported(opt)),
    })
}

fn size(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Writes an option WASI has.
pub(super) fn set(socket: &impl HostOptions, opt: SetSockOpt) -> io::Result<()> {
    match opt {
        SetSockOpt::KeepAlive(on) => socket.set_keep_alive(on),
        SetSockOpt::RecvBufferSize(bytes) => socket.set_recv_buffer_size(bytes as u64),
        SetSockOpt::SendBufferSize(bytes) => socket.set_send_buffer_size(bytes as u64),
        SetSockOpt::Ttl(hops) => socket.set_hop_limit(hops),
        _ => Err(unsupported(opt.opt())),
    }
}
