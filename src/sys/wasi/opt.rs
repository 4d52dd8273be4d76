//! Socket options: the ones WASI 0.2 has, and the pending error this backend keeps.

use std::io;

use super::errno::error_code_to_io;
use super::Socket;
use crate::opt::{unsupported, SetSockOpt};
use crate::{SockOpt, SockOptValue};

/// Reads an option WASI 0.2 has; `SockOpt::Error` reads the pending error this backend keeps.
pub(crate) fn get_sock_opt(socket: &Socket, opt: SockOpt) -> io::Result<SockOptValue> {
    let tcp = socket.tcp();
    Ok(match opt {
        SockOpt::KeepAlive => {
            SockOptValue::Bool(tcp.keep_alive_enabled().map_err(error_code_to_io)?)
        }
        SockOpt::RecvBufferSize => {
            SockOptValue::Size(size(tcp.receive_buffer_size().map_err(error_code_to_io)?))
        }
        SockOpt::SendBufferSize => {
            SockOptValue::Size(size(tcp.send_buffer_size().map_err(error_code_to_io)?))
        }
        SockOpt::Ttl => SockOptValue::Size(tcp.hop_limit().map_err(error_code_to_io)?.into()),
        SockOpt::Error => SockOptValue::Error(socket.lock().pending_error.take()),
        // TCP_NODELAY, SO_REUSEADDR, SO_LINGER, IPV6_V6ONLY, and whatever a later option
        // WASI 0.2 lacks.
        _ => return Err(unsupported(opt)),
    })
}

fn size(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Writes an option WASI 0.2 has.
pub(crate) fn set_sock_opt(socket: &Socket, opt: SetSockOpt) -> io::Result<()> {
    let tcp = socket.tcp();
    match opt {
        SetSockOpt::KeepAlive(on) => tcp.set_keep_alive_enabled(on),
        SetSockOpt::RecvBufferSize(bytes) => tcp.set_receive_buffer_size(bytes as u64),
        SetSockOpt::SendBufferSize(bytes) => tcp.set_send_buffer_size(bytes as u64),
        SetSockOpt::Ttl(hops) => tcp.set_hop_limit(hops),
        _ => return Err(unsupported(opt.opt())),
    }
    .map_err(error_code_to_io)
}
