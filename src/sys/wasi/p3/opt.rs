//! Socket options through WASI 0.3's `tcp-socket` methods (which options exist is shared:
//! `../opt.rs`).

use std::io;

use super::super::opt::{self as shared, HostOptions};
use super::errno::error_code_to_io;
use super::Socket;
use crate::opt::SetSockOpt;
use crate::{SockOpt, SockOptValue};

impl HostOptions for Socket {
    fn keep_alive(&self) -> io::Result<bool> {
        self.lock()
            .tcp()
            .get_keep_alive_enabled()
            .map_err(error_code_to_io)
    }
    fn set_keep_alive(&self, on: bool) -> io::Result<()> {
        self.lock()
            .tcp()
            .set_keep_alive_enabled(on)
            .map_err(error_code_to_io)
    }
    fn recv_buffer_size(&self) -> io::Result<u64> {
        self.lock()
            .tcp()
            .get_receive_buffer_size()
            .map_err(error_code_to_io)
    }
    fn set_recv_buffer_size(&self, bytes: u64) -> io::Result<()> {
        self.lock()
            .tcp()
            .set_receive_buffer_size(bytes)
            .map_err(error_code_to_io)
    }
    fn send_buffer_size(&self) -> io::Result<u64> {
        self.lock()
            .tcp()
            .get_send_buffer_size()
            .map_err(error_code_to_io)
    }
    fn set_send_buffer_size(&self, bytes: u64) -> io::Result<()> {
        let mut state = self.lock();
        let tcp = state.tcp();
        tcp.set_send_buffer_size(bytes).map_err(error_code_to_io)?;
        // The bytes `send` takes ahead of the host follow the host's buffer (as the kernel
        // reports it, e.g. doubled by Linux).
        let size = tcp.get_send_buffer_size().unwrap_or(bytes);
        if let Some(tx) = state.tx.as_mut() {
            tx.set_capacity(size);
        }
        Ok(())
    }
    fn hop_limit(&self) -> io::Result<u8> {
        self.lock().tcp().get_hop_limit().map_err(error_code_to_io)
    }
    fn set_hop_limit(&self, hops: u8) -> io::Result<()> {
        self.lock()
            .tcp()
            .set_hop_limit(hops)
            .map_err(error_code_to_io)
    }
    fn take_pending_error(&self) -> Option<i32> {
        self.lock().pending_error.take()
    }
}

/// Reads an option (`../opt.rs`).
pub(crate) fn get_sock_opt(socket: &Socket, opt: SockOpt) -> io::Result<SockOptValue> {
    shared::get(socket, opt)
}

/// Writes an option (`../opt.rs`).
pub(crate) fn set_sock_opt(socket: &Socket, opt: SetSockOpt) -> io::Result<()> {
    shared::set(socket, opt)
}
