//! Sockets made elsewhere: adopting `wasi:sockets/types@0.3` sockets as
//! [`Sock`](crate::Sock).

use std::io;

use wasip3::sockets::types::TcpSocket;
use wasip3::wit_bindgen::rt::async_support::StreamReader;

use super::super::state::Phase;
use super::Socket;

/// Sockets are always non-blocking here: nothing to do.
pub(crate) fn adopt(_socket: &Socket) -> io::Result<()> {
    Ok(())
}

impl From<TcpSocket> for crate::Sock {
    /// Adopts a `wasi:sockets/types@0.3` TCP socket that is unbound, bound, or connected (its
    /// `receive` and `send` not called yet: they are called here). A listener is adopted with
    /// its stream of accepted sockets instead (`listen` gives it once), and a socket whose
    /// connect is in flight cannot be: its `connect` call belongs to whoever made it.
    fn from(socket: TcpSocket) -> crate::Sock {
        let adopted = if socket.get_remote_address().is_ok() {
            Socket::connected(socket)
        } else {
            Socket::new(socket, Phase::Unconnected)
        };
        crate::Sock::from(adopted)
    }
}

impl From<(TcpSocket, StreamReader<TcpSocket>)> for crate::Sock {
    /// Adopts a listener with the stream of accepted sockets its `listen` returned.
    fn from((socket, accepted): (TcpSocket, StreamReader<TcpSocket>)) -> crate::Sock {
        let adopted = Socket::new(socket, Phase::Unconnected);
        adopted
            .lock()
            .listening(&adopted.shared, accepted.take_handle());
        crate::Sock::from(adopted)
    }
}
