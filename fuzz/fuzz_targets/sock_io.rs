//! Drives Core's high-level operations and the SOCKS5 handshake through a sock whose every result comes from the
//! fuzzer (Core's `FuzzedSock`): partial sends, would-block, EINTR, permanent errors, peeks
//! that the next read does not honour, spurious wake-ups, time that jumps. Checks that nothing
//! panics or hangs and that the results keep their promises.
#![no_main]

use std::cell::{Cell, RefCell};
use std::io;
use std::time::{Duration, Instant};

use bitcoin_sock::socks5::{self, Credentials};
use bitcoin_sock::{SockError, SockEvent, SockIo, ThreadInterrupt};
use libfuzzer_sys::fuzz_target;

/// The fuzzer's bytes, taken one decision at a time; zeros once used up.
struct Script<'a> {
    bytes: &'a [u8],
}

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&first, rest)) => {
                self.bytes = rest;
                first
            }
            None => 0,
        }
    }

    fn is_done(&self) -> bool {
        self.bytes.is_empty()
    }
}

struct FuzzedSock<'a> {
    script: RefCell<Script<'a>>,
    /// Bytes a peek showed, which an honest recv returns next.
    peeked: RefCell<Vec<u8>>,
    start: Instant,
    elapsed: Cell<Duration>,
    /// Whether a recv returned other bytes than the peek before it showed.
    lied: Cell<bool>,
}

impl FuzzedSock<'_> {
    fn error(&self, choice: u8) -> io::Error {
        match choice % 4 {
            0 => io::ErrorKind::WouldBlock.into(),
            1 => io::Error::from_raw_os_error(libc::EINTR),
            2 => io::Error::from_raw_os_error(libc::ECONNRESET),
            _ => io::Error::from_raw_os_error(libc::EAGAIN),
        }
    }

    /// Random data of at most `len` bytes, ending at exhaustion with end of stream.
    fn data(&self, len: usize) -> io::Result<Vec<u8>> {
        let mut script = self.script.borrow_mut();
        if script.is_done() {
            return Ok(Vec::new());
        }
        let choice = script.byte();
        if choice < 64 {
            return Err(self.error(choice));
        }
        let n = usize::from(script.byte()).min(len);
        Ok((0..n).map(|_| script.byte()).collect())
    }
}

impl SockIo for FuzzedSock<'_> {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        let mut script = self.script.borrow_mut();
        if script.is_done() {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        let choice = script.byte();
        if choice < 64 {
            return Err(self.error(choice));
        }
        Ok(usize::from(script.byte()).min(data.len()))
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let honest = self.script.borrow_mut().byte() < 224;
        let mut peeked = self.peeked.borrow_mut();
        let bytes = if honest && !peeked.is_empty() {
            let n = peeked.len().min(buf.len());
            peeked.drain(..n).collect()
        } else {
            self.lied.set(self.lied.get() || !peeked.is_empty());
            peeked.clear();
            self.data(buf.len())?
        };
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut peeked = self.peeked.borrow_mut();
        if peeked.len() < buf.len() {
            let more = self.data(buf.len() - peeked.len())?;
            if more.is_empty() && peeked.is_empty() {
                return Ok(0);
            }
            peeked.extend(more);
        }
        let n = peeked.len().min(buf.len());
        buf[..n].copy_from_slice(&peeked[..n]);
        Ok(n)
    }

    fn wait(&self, timeout: Duration, requested: SockEvent) -> io::Result<SockEvent> {
        let choice = self.script.borrow_mut().byte();
        // Time passes: all of the timeout, or a fuzzer-chosen part of it.
        let step = if choice & 1 == 0 {
            timeout
        } else {
            timeout / u32::from(choice | 1)
        };
        self.elapsed.set(self.elapsed.get().saturating_add(step));
        match choice >> 6 {
            0 => Ok(SockEvent::empty()),
            1 => Ok(requested),
            2 => Ok(requested | SockEvent::ERR),
            _ => Err(self.error(choice)),
        }
    }

    fn now(&self) -> Instant {
        self.start
            .checked_add(self.elapsed.get())
            .unwrap_or(self.start)
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&header, rest)) = input.split_first() else {
        return;
    };
    let sock = FuzzedSock {
        script: RefCell::new(Script { bytes: rest }),
        peeked: RefCell::new(Vec::new()),
        start: Instant::now(),
        elapsed: Cell::new(Duration::ZERO),
        lied: Cell::new(false),
    };
    let interrupt = ThreadInterrupt::new();
    if header & 0x80 != 0 {
        interrupt.interrupt();
    }
    let timeout = Duration::from_millis(u64::from(header & 0x0f) * 700);
    match header & 0x30 {
        0x00 => {
            let data = vec![0x5a; usize::from(header & 0x0f) * 97];
            match sock.send_complete(&data, timeout, &interrupt) {
                Ok(()) => {}
                Err(SockError::SendTimeout { sent, total })
                | Err(SockError::SendInterrupted { sent, total }) => {
                    assert!(sent < total && total == data.len());
                }
                Err(_) => {}
            }
        }
        0x10 | 0x20 => {
            let max_data = usize::from(header & 0x0f) * 300;
            let terminator = b'\n';
            match sock.recv_until_terminator(terminator, timeout, &interrupt, max_data) {
                // What was consumed is returned; only a sock that lied about its peek can
                // slip a terminator into it.
                Ok(line) => {
                    assert!(line.len() < max_data);
                    assert!(sock.lied.get() || !line.contains(&terminator));
                }
                Err(err) => {
                    assert!(err.received().len() <= max_data);
                    assert!(sock.lied.get() || !err.received().contains(&terminator));
                    let _ = err.to_string();
                }
            }
        }
        _ if header & 0x40 != 0 => {
            // Core's Socks5() against a fuzzed proxy; the credentials make it take the
            // username/password path when the proxy asks for it.
            let credentials = Credentials::new("user", "password");
            let auth = (header & 0x01 != 0).then_some(&credentials);
            if let Err(err) =
                socks5::connect(&sock, "example.onion", 8333, auth, timeout, &interrupt)
            {
                let _ = err.to_string();
            }
        }
        _ => {
            let _ = sock.is_connected();
        }
    }
});
