//! [`Registry`] and [`Readiness`]: what [`SockMan`](crate::sockman::SockMan) keeps registered
//! with the OS between waits, natively through the `polling` crate.

use std::io;
use std::time::Duration;

use super::Socket;
use crate::SockEvent;

/// The OS registration of [`SockMan`](crate::sockman::SockMan): the `polling` crate in
/// level-triggered mode (epoll on Linux and Android, kqueue on macOS and the BSDs, IOCP/AFD on
/// Windows, event ports on illumos), so the sockets stay registered between waits and a wait
/// costs what is ready, not how many sockets there are.
pub(crate) struct Registry {
    poller: polling::Poller,
}

/// What one [`Registry::wait`] found: reused between waits, so waiting allocates nothing.
pub(crate) struct Readiness {
    events: polling::Events,
}

fn interest(key: usize, requested: SockEvent) -> polling::Event {
    polling::Event::new(
        key,
        requested.contains(SockEvent::RECV),
        requested.contains(SockEvent::SEND),
    )
}

impl Registry {
    /// `epoll_create1(2)` / `kqueue(2)` / an I/O completion port, plus the means to
    /// [`notify`](Registry::notify).
    pub(crate) fn new() -> io::Result<Registry> {
        Ok(Registry {
            poller: polling::Poller::new()?,
        })
    }

    /// Starts watching `socket` for `requested` under `key` (`EPOLL_CTL_ADD`, `EV_ADD`).
    ///
    /// # Safety
    /// `socket` must stay where it is, and alive, until it is
    /// [`deregister`](Registry::deregister)ed (every backend's contract; `polling` needs the
    /// "alive" part, and only on Windows).
    pub(crate) unsafe fn register(
        &self,
        socket: &Socket,
        key: usize,
        requested: SockEvent,
    ) -> io::Result<()> {
        // SAFETY: the caller deregisters `socket` before it is closed.
        unsafe {
            self.poller
                .add_with_mode(socket, interest(key, requested), polling::PollMode::Level)
        }
    }

    /// Changes what `socket` is watched for (`EPOLL_CTL_MOD`, `EV_ADD`/`EV_DELETE`).
    pub(crate) fn reregister(
        &self,
        socket: &Socket,
        key: usize,
        requested: SockEvent,
    ) -> io::Result<()> {
        self.poller
            .modify_with_mode(socket, interest(key, requested), polling::PollMode::Level)
    }

    /// Stops watching `socket` (`EPOLL_CTL_DEL`, `EV_DELETE`).
    pub(crate) fn deregister(&self, socket: &Socket, _key: usize) -> io::Result<()> {
        self.poller.delete(socket)
    }

    /// One system wait (`epoll_wait(2)`, `kevent(2)`, ...) of at most `timeout`
    /// (`Duration::MAX`: no limit); fills `ready`. Returns early, with nothing ready, after a
    /// [`notify`](Registry::notify). `EINTR` is retried inside `polling`.
    pub(crate) fn wait(&self, ready: &mut Readiness, timeout: Duration) -> io::Result<()> {
        ready.events.clear();
        let timeout = (timeout != Duration::MAX).then_some(timeout);
        self.poller.wait(&mut ready.events, timeout).map(drop)
    }

    /// Wakes the current or the next [`wait`](Registry::wait) (an eventfd, a pipe or a user
    /// event, as `polling` picks).
    pub(crate) fn notify(&self) -> io::Result<()> {
        self.poller.notify()
    }
}

impl Readiness {
    pub(crate) fn new() -> Readiness {
        Readiness {
            events: polling::Events::new(),
        }
    }

    /// The keys that are ready, with what occurred.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, SockEvent)> + '_ {
        self.events.iter().map(|event| {
            let mut occurred = SockEvent::empty();
            if event.readable {
                occurred |= SockEvent::RECV;
            }
            if event.writable {
                occurred |= SockEvent::SEND;
            }
            if event.is_err() == Some(true) {
                occurred |= SockEvent::ERR;
            }
            (event.key, occurred)
        })
    }
}
