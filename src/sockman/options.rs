//! How a [`SockMan`](super::SockMan) is sized: [`Options`] and their defaults.

/// Core's receive buffer in `SocketHandlerConnected`: `uint8_t buf[0x10000]`.
pub const DEFAULT_RECV_BUFFER_SIZE: usize = 0x10000;

/// Core's `-maxsendbuffer` default (`DEFAULT_MAXSENDBUFFER`, 5000 × 1000 bytes): more than
/// the largest message a node sends (a 4 MB block).
pub const DEFAULT_SEND_QUEUE_CAP: usize = 5_000_000;

/// Core listens with `SOMAXCONN`; the kernel caps it at its own limit.
pub const DEFAULT_LISTEN_BACKLOG: i32 = 4096;

/// What all connections together may hold by default: 32 MiB, small enough for a wasm
/// instance (whose memory never shrinks) and room for 125 peers' replies of 256 KiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 32 << 20;

/// A connection is not read from while more than this waits in its send queue: 64 KiB, one
/// receive's worth, far less than Core's 5 MB (a reply longer than this is still taken whole;
/// reading resumes once the peer has read all but 64 KiB of it). With 256 KiB, 100 peers that
/// ask and never read made a wasm node hold 35 MiB of replies; with 64 KiB, 11-16 MiB.
pub const DEFAULT_PAUSE_RECV_ABOVE: usize = 64 << 10;

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
    /// The most all connections together may hold ([`DEFAULT_MEMORY_BUDGET`]): their send
    /// queues' memory and what the handler declares with
    /// [`set_held`](super::SockMan::set_held). Past it, the connection that holds the most is
    /// closed. The sum can pass it by at most one receive ([`recv_buffer_size`]) and the
    /// replies the handler queues for it before the check that follows each event.
    ///
    /// [`recv_buffer_size`]: Options::recv_buffer_size
    pub memory_budget: usize,
    /// A connection whose send queue holds more than this is not read from until the queue
    /// is back within it ([`DEFAULT_PAUSE_RECV_ABOVE`]; Core's `fPauseSend`, which stops
    /// processing a peer's messages while its `-maxsendbuffer` is full). Its bytes wait in
    /// the kernel and TCP slows the peer.
    pub pause_recv_above: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            recv_buffer_size: DEFAULT_RECV_BUFFER_SIZE,
            send_queue_cap: DEFAULT_SEND_QUEUE_CAP,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            pause_recv_above: DEFAULT_PAUSE_RECV_ABOVE,
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

    /// Sets [`memory_budget`](Options::memory_budget).
    pub fn with_memory_budget(mut self, bytes: usize) -> Options {
        self.memory_budget = bytes;
        self
    }

    /// Sets [`pause_recv_above`](Options::pause_recv_above).
    pub fn with_pause_recv_above(mut self, bytes: usize) -> Options {
        self.pause_recv_above = bytes;
        self
    }
}
