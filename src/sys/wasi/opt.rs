//! Socket options: the ones WASI 0.2 has, and the pending error this backend keeps.

use std::io;

use super::errno::wasi_err;
use super::Socket;
use crate::error::unsupported;
use crate::{SockOpt, SockOptValue};

/// Reads an option WASI 0.2 has; `SockOpt::Error` reads the pending error this backend keeps.
pub(crate) fn get_sock_opt(socket: &Socket, opt: SockOpt) -> io::Result<SockOptValue> {
    let tcp = socket.tcp();
    Ok(match opt {
        SockOpt::KeepAlive => SockOptValue::Bool(tcp.keep_alive_enabled().map_err(wasi_err)?),
        SockOpt::RecvBufferSize => {
            SockOptValue::Size(size(tcp.receive_buffer_size().map_err(wasi_err)?))
        }
        SockOpt::SendBufferSize => {
            SockOptValue::Size(size(tcp.send_buffer_size().map_err(wasi_err)?))
        }
        SockOpt::Ttl => SockOptValue::Size(tcp.hop_limit().map_err(wasi_err)?.into()),
        SockOpt::Error => SockOptValue::Error(socket.lock().pending_error.take()),
        SockOpt::NoDelay => return Err(unsupported("TCP_NODELAY")),
        SockOpt::ReuseAddress => return Err(unsupported("SO_REUSEADDR")),
    })
}

fn size(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Writes an option WASI 0.2 has.
pub(crate) fn set_sock_opt(socket: &Socket, opt: SockOpt, value: SockOptValue) -> io::Result<()> {
    let tcp = socket.tcp();
    match (opt, value) {
        (SockOpt::KeepAlive, SockOptValue::Bool(on)) => tcp.set_keep_alive_enabled(on),
        (SockOpt::RecvBufferSize, SockOptValue::Size(bytes)) => {
            tcp.set_receive_buffer_size(bytes as u64)
        }
        (SockOpt::SendBufferSize, SockOptValue::Size(bytes)) => {
            tcp.set_send_buffer_size(bytes as u64)
        }
        (SockOpt::Ttl, SockOptValue::Size(hops)) => {
            let hops = u8::try_from(hops)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TTL out of range"))?;
            tcp.set_hop_limit(hops)
        }
        (SockOpt::NoDelay, SockOptValue::Bool(_)) => return Err(unsupported("TCP_NODELAY")),
        (SockOpt::ReuseAddress, SockOptValue::Bool(_)) => return Err(unsupported("SO_REUSEADDR")),
        (opt, value) => return Err(crate::opt::mismatch(opt, value)),
    }
    .map_err(wasi_err)
}
