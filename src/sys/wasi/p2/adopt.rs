//! Sockets made elsewhere: adopting `wasi:sockets/tcp` sockets as [`Sock`](crate::Sock).

use std::io;

use wasi::io::streams::{InputStream, OutputStream};
use wasi::sockets::network::ErrorCode;
use wasi::sockets::tcp::TcpSocket;

use super::super::state::Phase;
use super::errno::error_code_to_errno;
use super::Socket;

/// Sockets are always non-blocking here: nothing to do.
pub(crate) fn adopt(_socket: &Socket) -> io::Result<()> {
    Ok(())
}

impl From<TcpSocket> for crate::Sock {
    /// Adopts a `wasi:sockets/tcp` socket in any state: unbound or bound, listening, or with a
    /// connect started (finished here if it is done; one that already failed keeps its error
    /// as the pending socket error, as `SO_ERROR` does natively). A socket whose streams
    /// someone already took cannot be read here: adopt it with its streams instead.
    fn from(socket: TcpSocket) -> crate::Sock {
        let adopted = match socket.finish_connect() {
            Ok((input, output)) => Socket::connected(socket, input, output),
            Err(ErrorCode::WouldBlock) => Socket::new(socket, Phase::Connecting),
            // No connect in progress: the socket is in whatever state it was put.
            Err(ErrorCode::NotInProgress | ErrorCode::InvalidState) => {
                let phase = if socket.is_listening() {
                    Phase::Listening
                } else {
                    Phase::Unconnected
                };
                Socket::new(socket, phase)
            }
            // The connect finished and failed (refused, unreachable, ...) before adoption.
            Err(code) => {
                let failed = Socket::new(socket, Phase::Failed);
                failed.lock().pending_error = Some(error_code_to_errno(code));
                failed
            }
        };
        crate::Sock::from(adopted)
    }
}

impl From<(TcpSocket, InputStream, OutputStream)> for crate::Sock {
    /// Adopts a connected socket with its streams, as `accept` and `finish-connect` return them.
    fn from((socket, input, output): (TcpSocket, InputStream, OutputStream)) -> crate::Sock {
        crate::Sock::from(Socket::connected(socket, input, output))
    }
}
