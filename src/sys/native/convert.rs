//! Sockets made elsewhere, adopted as [`Sock`], and a sock as std's own descriptor types: the
//! route that follows no dependency's version (`socket2`'s is `Sock::get`, `release`, `adopt`
//! and `From<socket2::Socket>`, under the `socket2` feature).
//!
//! std's `AsFd` / `AsSocket` cannot say "no socket" (Core's `INVALID_SOCKET`), so the sock
//! lends its descriptor through [`Sock::borrow_fd`] / [`Sock::borrow_socket`], which answer
//! `None` for the invalid sock, and gives it up through `TryFrom`, which refuses the invalid
//! sock with the `NotConnected` error of every other call on it.

use super::Socket;
use crate::Sock;

impl From<std::net::TcpStream> for Sock {
    /// Adopts a connected stream, in non-blocking mode, as [`Sock::adopt`] does (a refusal
    /// is not reported: [`Sock::set_non_blocking`] reports it).
    fn from(stream: std::net::TcpStream) -> Sock {
        Sock::adopt_quietly(Socket::from(stream))
    }
}

impl From<std::net::TcpListener> for Sock {
    /// Adopts a listener, in non-blocking mode (so `accept` never blocks), as
    /// [`Sock::adopt`] does (a refusal is not reported: [`Sock::set_non_blocking`] reports it).
    fn from(listener: std::net::TcpListener) -> Sock {
        Sock::adopt_quietly(Socket::from(listener))
    }
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

    use super::Socket;
    use crate::error::not_connected;
    use crate::Sock;

    impl Sock {
        /// The descriptor, lent (Core's `Get`, as std's type); `None` for the invalid sock.
        /// What `AsFd` would give, for code that takes `impl AsFd` (`rustix`, `polling`,
        /// tokio's `AsyncFd`); no dependency's version is in it.
        ///
        /// ```
        /// use bitcoin_sock::Sock;
        /// use std::os::fd::AsRawFd;
        ///
        /// let sock = Sock::bind("127.0.0.1:0".parse()?)?;
        /// let fd = sock.borrow_fd().expect("a valid sock");
        /// assert_eq!(fd.as_raw_fd(), sock.as_raw_fd());
        /// assert!(Sock::default().borrow_fd().is_none());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn borrow_fd(&self) -> Option<BorrowedFd<'_>> {
            self.socket().map(AsFd::as_fd)
        }
    }

    impl AsRawFd for Sock {
        /// The descriptor, or `-1` for the invalid sock (Core's `INVALID_SOCKET`).
        fn as_raw_fd(&self) -> RawFd {
            self.socket().map_or(-1, AsRawFd::as_raw_fd)
        }
    }

    impl FromRawFd for Sock {
        /// Adopts a raw descriptor, in non-blocking mode, as `Sock::from(OwnedFd)`.
        ///
        /// # Safety
        /// `fd` must be an open socket that nothing else owns; the sock will close it.
        unsafe fn from_raw_fd(fd: RawFd) -> Sock {
            // SAFETY: the caller hands over sole ownership of an open socket.
            Sock::from(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    }

    impl IntoRawFd for Sock {
        /// Gives up the descriptor without closing it; `-1` for the invalid sock.
        fn into_raw_fd(mut self) -> RawFd {
            self.take_socket().map_or(-1, IntoRawFd::into_raw_fd)
        }
    }

    impl From<OwnedFd> for Sock {
        /// Adopts an owned socket descriptor, in non-blocking mode (no `SIGPIPE` on Apple), as
        /// [`Sock::adopt`] does; a refusal is not reported: [`Sock::set_non_blocking`] reports
        /// it.
        fn from(fd: OwnedFd) -> Sock {
            Sock::adopt_quietly(Socket::from(fd))
        }
    }

    impl TryFrom<Sock> for OwnedFd {
        type Error = io::Error;

        /// Gives up the descriptor without closing it (Core's `Release`, as std's type).
        ///
        /// # Errors
        /// `NotConnected` ("not connected") for the invalid sock, which has none.
        fn try_from(mut sock: Sock) -> io::Result<OwnedFd> {
            sock.take_socket()
                .map(OwnedFd::from)
                .ok_or_else(not_connected)
        }
    }
}

#[cfg(windows)]
mod windows {
    use std::io;
    use std::os::windows::io::{
        AsRawSocket, AsSocket, BorrowedSocket, FromRawSocket, IntoRawSocket, OwnedSocket, RawSocket,
    };

    use windows_sys::Win32::Networking::WinSock::INVALID_SOCKET;

    use super::Socket;
    use crate::error::not_connected;
    use crate::Sock;

    impl Sock {
        /// The socket, lent (Core's `Get`, as std's type); `None` for the invalid sock. What
        /// `AsSocket` would give; no dependency's version is in it.
        pub fn borrow_socket(&self) -> Option<BorrowedSocket<'_>> {
            self.socket().map(AsSocket::as_socket)
        }
    }

    impl AsRawSocket for Sock {
        /// The socket, or `INVALID_SOCKET` for the invalid sock.
        fn as_raw_socket(&self) -> RawSocket {
            self.socket()
                .map_or(INVALID_SOCKET as _, AsRawSocket::as_raw_socket)
        }
    }

    impl FromRawSocket for Sock {
        /// Adopts a raw socket, in non-blocking mode, as `Sock::from(OwnedSocket)`.
        ///
        /// # Safety
        /// `socket` must be an open socket that nothing else owns; the sock will close it.
        unsafe fn from_raw_socket(socket: RawSocket) -> Sock {
            // SAFETY: the caller hands over sole ownership of an open socket.
            Sock::from(unsafe { OwnedSocket::from_raw_socket(socket) })
        }
    }

    impl IntoRawSocket for Sock {
        /// Gives up the socket without closing it; `INVALID_SOCKET` for the invalid sock.
        fn into_raw_socket(mut self) -> RawSocket {
            self.take_socket()
                .map_or(INVALID_SOCKET as _, IntoRawSocket::into_raw_socket)
        }
    }

    impl From<OwnedSocket> for Sock {
        /// Adopts an owned socket, in non-blocking mode, as [`Sock::adopt`] does; a refusal is
        /// not reported: [`Sock::set_non_blocking`] reports it.
        fn from(socket: OwnedSocket) -> Sock {
            Sock::adopt_quietly(Socket::from(socket))
        }
    }

    impl TryFrom<Sock> for OwnedSocket {
        type Error = io::Error;

        /// Gives up the socket without closing it (Core's `Release`, as std's type).
        ///
        /// # Errors
        /// `NotConnected` ("not connected") for the invalid sock, which has none.
        fn try_from(mut sock: Sock) -> io::Result<OwnedSocket> {
            sock.take_socket()
                .map(OwnedSocket::from)
                .ok_or_else(not_connected)
        }
    }
}
