//! How a [`SockMan`](super::SockMan) is sized: [`Options`] and their defaults.

/// Core's receive buffer in `SocketHandlerConnected`: `uint8_t buf[0x10000]`.
pub const DEFAULT_RECV_BUFFER_SIZE: usize = 0x10000;

/// Core's `-maxsendbuffer` default (`DEFAULT_MAXSENDBUFFER`, 5000 × 1000 bytes): more than
/// the largest message a node sends (a 4 MB block).
pub const DEFAULT_SEND_QUEUE_CAP: usize = 5_000_000;

/// Core listens with `SOMAXCONN`; the kernel caps it at its own limit.
pub const DEFAULT_LISTEN_BACKLOG: i32 = 4096;

/// How a [`SockMan`](super::SockMan) is sized.
///
/// ```
/// use bitcoin_sock::sockman::{Options, SockMan};
///
/// let options = Options::default().with_send_queue_cap(1 << 20);
/// assert_eq!(options.recv_buffer_size, 64 * 1024);
/// let man = SockMan::with_options(options)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// The one receive buffer's size: the most one receive reads ([`DEFAULT_RECV_BUFFER_SIZE`],
    /// Core's 64 KiB). At least 1.
    pub recv_buffer_size: usize,
    /// The most bytes a connection's send queue takes behind bytes already queued
    /// ([`DEFAULT_SEND_QUEUE_CAP`]). A message onto an empty queue is taken whole whatever its
    /// length, so a queue holds at most the larger of this and the longest such message; 0
    /// means one message at a time.
    pub send_queue_cap: usize,
    /// The listen backlog of [`bind_and_listen`](super::SockMan::bind_and_listen)
    /// ([`DEFAULT_LISTEN_BACKLOG`]).
    pub listen_backlog: i32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            recv_buffer_size: DEFAULT_RECV_BUFFER_SIZE,
            send_queue_cap: DEFAULT_SEND_QUEUE_CAP,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
        }
    }
}

impl Options {
    /// Sets [`recv_buffer_size`](Options::recv_buffer_size) (0 counts as 1).
    pub fn with_recv_buffer_size(mut self, size: usize) -> Options {
        self.recv_buffer_size = size.max(1);
        self
    }

    /// Sets [`send_queue_cap`](Options::send_queue_cap).
    pub fn with_send_queue_cap(mut self, cap: usize) -> Options {
        self.send_queue_cap = cap;
        self
    }

    /// Sets [`listen_backlog`](Options::listen_backlog).
    pub fn with_listen_backlog(mut self, backlog: i32) -> Options {
        self.listen_backlog = backlog;
        self
    }
}
