//! The SOCKS5 handshake (`bitcoin_sock::socks5`) driven byte by byte through a scripted proxy:
//! the exact bytes the client sends, every reply code, malformed and truncated replies,
//! timeouts and interrupts on a fake clock. Needs no network; runs natively and in wasmtime.

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use bitcoin_sock::socks5::{
    self, interruptible_recv, socks5_error_string, Credentials, IntrRecvError,
};
use bitcoin_sock::{SockError, SockEvent, SockIo, Socks5Error, ThreadInterrupt, MAX_WAIT_FOR_IO};

const TIMEOUT: Duration = Duration::from_secs(20);
const DEST: &str = "example.onion";
const PORT: u16 = 8333;

/// What reads give once the scripted reply bytes are used up.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// Nothing more yet: `WouldBlock`, and waits time out.
    Silence,
    /// The proxy closed: `Ok(0)`.
    Eof,
}

/// A scripted SOCKS5 proxy: `recv` returns the reply bytes (at most `trickle` per call), then
/// what `then` says; `wait` for RECV makes the next `arriving` chunk readable, or times out by
/// moving the fake clock forward by its timeout. Sends are taken whole unless scripted.
struct MockProxy {
    replies: RefCell<VecDeque<u8>>,
    then: Then,
    trickle: usize,
    arriving: RefCell<VecDeque<Vec<u8>>>,
    recv_errors: RefCell<VecDeque<io::Error>>,
    sends: RefCell<VecDeque<io::Result<usize>>>,
    wait_error: Option<io::ErrorKind>,
    interrupt_on_wait: Option<usize>,
    interrupt: ThreadInterrupt,
    sent: RefCell<Vec<u8>>,
    waits: RefCell<Vec<Duration>>,
    calls: Cell<usize>,
    start: Instant,
    elapsed: Cell<Duration>,
}

/// How many primitive calls a [`MockProxy`] answers before it declares the handshake endless:
/// far above what any script needs, so a loop that never waits (or waits zero on the fake
/// clock) fails at once instead of spinning until a harness timeout.
const CALL_LIMIT: usize = 10_000;

impl MockProxy {
    fn new(replies: &[u8]) -> MockProxy {
        MockProxy {
            replies: RefCell::new(replies.iter().copied().collect()),
            then: Then::Eof,
            trickle: usize::MAX,
            arriving: RefCell::default(),
            recv_errors: RefCell::default(),
            sends: RefCell::default(),
            wait_error: None,
            interrupt_on_wait: None,
            interrupt: ThreadInterrupt::new(),
            sent: RefCell::default(),
            waits: RefCell::default(),
            calls: Cell::new(0),
            start: Instant::now(),
            elapsed: Cell::new(Duration::ZERO),
        }
    }

    fn then(mut self, then: Then) -> MockProxy {
        self.then = then;
        self
    }

    fn trickle(mut self, bytes: usize) -> MockProxy {
        self.trickle = bytes;
        self
    }

    fn arriving(self, bytes: &[u8]) -> MockProxy {
        self.arriving.borrow_mut().push_back(bytes.to_vec());
        self
    }

    fn recv_error(self, error: io::Error) -> MockProxy {
        self.recv_errors.borrow_mut().push_back(error);
        self
    }

    fn sends(self, results: impl IntoIterator<Item = io::Result<usize>>) -> MockProxy {
        self.sends.borrow_mut().extend(results);
        self
    }

    fn wait_error(mut self, kind: io::ErrorKind) -> MockProxy {
        self.wait_error = Some(kind);
        self
    }

    /// Sets `interrupt` during the `nth` wait (from 1).
    fn interrupt_on_wait(mut self, nth: usize) -> MockProxy {
        self.interrupt_on_wait = Some(nth);
        self
    }

    fn sent(&self) -> Vec<u8> {
        self.sent.borrow().clone()
    }

    fn unread(&self) -> Vec<u8> {
        self.replies.borrow().iter().copied().collect()
    }

    fn handshake(&self, auth: Option<&Credentials>) -> Result<(), Socks5Error> {
        socks5::connect(self, DEST, PORT, auth, TIMEOUT, &self.interrupt)
    }

    #[track_caller]
    fn count_call(&self, what: &str) {
        let n = self.calls.get() + 1;
        self.calls.set(n);
        assert!(
            n <= CALL_LIMIT,
            "mock script exhausted: {what} is call {n}, past the limit of {CALL_LIMIT}; the \
             handshake loops without end"
        );
    }
}

impl SockIo for MockProxy {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.count_call("send");
        let taken = match self.sends.borrow_mut().pop_front() {
            Some(Ok(n)) => n.min(data.len()),
            Some(Err(e)) => return Err(e),
            None => data.len(),
        };
        if taken == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.sent.borrow_mut().extend_from_slice(&data[..taken]);
        Ok(taken)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.count_call("recv");
        if let Some(e) = self.recv_errors.borrow_mut().pop_front() {
            return Err(e);
        }
        let mut replies = self.replies.borrow_mut();
        if replies.is_empty() {
            return match self.then {
                Then::Silence => Err(io::ErrorKind::WouldBlock.into()),
                Then::Eof => Ok(0),
            };
        }
        let n = buf.len().min(self.trickle).min(replies.len());
        for (slot, byte) in buf.iter_mut().zip(replies.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.count_call("peek");
        let replies = self.replies.borrow();
        let n = buf.len().min(replies.len());
        for (slot, byte) in buf.iter_mut().zip(replies.iter()) {
            *slot = *byte;
        }
        Ok(n)
    }

    fn wait(&self, timeout: Duration, requested: SockEvent) -> io::Result<SockEvent> {
        self.count_call("wait");
        self.waits.borrow_mut().push(timeout);
        if Some(self.waits.borrow().len()) == self.interrupt_on_wait {
            self.interrupt.interrupt();
        }
        if let Some(kind) = self.wait_error {
            return Err(kind.into());
        }
        if requested.contains(SockEvent::RECV) {
            if !self.replies.borrow().is_empty() {
                return Ok(SockEvent::RECV);
            }
            if let Some(chunk) = self.arriving.borrow_mut().pop_front() {
                self.replies.borrow_mut().extend(chunk);
                return Ok(SockEvent::RECV);
            }
        }
        self.elapsed.set(self.elapsed.get() + timeout);
        Ok(SockEvent::empty())
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed.get()
    }
}

/// What the client sends for `CONNECT DEST:PORT`.
fn connect_request(dest: &str, port: u16) -> Vec<u8> {
    let mut request = vec![0x05, 0x01, 0x00, 0x03, dest.len() as u8];
    request.extend_from_slice(dest.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    request
}

/// RFC 1929's request for `auth`.
fn auth_request(auth: &Credentials) -> Vec<u8> {
    let mut request = vec![0x01, auth.username.len() as u8];
    request.extend_from_slice(auth.username.as_bytes());
    request.push(auth.password.len() as u8);
    request.extend_from_slice(auth.password.as_bytes());
    request
}

/// A successful reply to CONNECT with an IPv4 bound address (what microsocks and Tor send).
const SUCCESS_V4: [u8; 10] = [0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0x20, 0x8d];

/// Successful replies to CONNECT with each kind of bound address.
fn success_replies() -> Vec<(&'static str, Vec<u8>)> {
    let mut v6 = vec![0x05, 0x00, 0x00, 0x04];
    v6.extend_from_slice(&[0; 15]);
    v6.extend_from_slice(&[1, 0x20, 0x8d]);
    let mut domain = vec![0x05, 0x00, 0x00, 0x03, 9];
    domain.extend_from_slice(b"localhost");
    domain.extend_from_slice(&[0x20, 0x8d]);
    vec![
        ("ipv4", SUCCESS_V4.to_vec()),
        ("ipv6", v6),
        ("domain", domain),
    ]
}

fn user_pass() -> Credentials {
    Credentials::new("0123456789abcdef-0", "0123456789abcdef-0")
}

#[track_caller]
fn expect_err(result: Result<(), Socks5Error>) -> Socks5Error {
    match result {
        Err(e) => e,
        Ok(()) => panic!("the handshake succeeded, expected an error"),
    }
}

// ---- What the client sends ----

#[test]
fn greeting_without_credentials_offers_only_noauth() {
    let proxy = MockProxy::new(&[[0x05, 0x00].as_slice(), &SUCCESS_V4].concat());
    proxy.handshake(None).expect("handshake");
    let mut expected = vec![0x05, 0x01, 0x00];
    expected.extend(connect_request(DEST, PORT));
    assert_eq!(proxy.sent(), expected);
}

#[test]
fn greeting_with_credentials_offers_noauth_and_user_pass_then_authenticates() {
    let auth = user_pass();
    let proxy = MockProxy::new(&[[0x05, 0x02, 0x01, 0x00].as_slice(), &SUCCESS_V4].concat());
    proxy.handshake(Some(&auth)).expect("handshake");
    let mut expected = vec![0x05, 0x02, 0x00, 0x02];
    expected.extend([0x01, 18]);
    expected.extend(b"0123456789abcdef-0");
    expected.push(18);
    expected.extend(b"0123456789abcdef-0");
    expected.extend(connect_request(DEST, PORT));
    assert_eq!(proxy.sent(), expected);
}

#[test]
fn credentials_are_not_sent_when_the_proxy_picks_noauth() {
    let proxy = MockProxy::new(&[[0x05, 0x00].as_slice(), &SUCCESS_V4].concat());
    proxy.handshake(Some(&user_pass())).expect("handshake");
    let mut expected = vec![0x05, 0x02, 0x00, 0x02];
    expected.extend(connect_request(DEST, PORT));
    assert_eq!(proxy.sent(), expected);
}

#[test]
fn request_sends_ip_literals_as_domain_names_and_the_port_big_endian() {
    let proxy = MockProxy::new(&[[0x05, 0x00].as_slice(), &SUCCESS_V4].concat());
    socks5::connect(&proxy, "127.0.0.1", 0x1234, None, TIMEOUT, &proxy.interrupt)
        .expect("handshake");
    let mut expected = vec![0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 9];
    expected.extend(b"127.0.0.1");
    expected.extend([0x12, 0x34]);
    assert_eq!(proxy.sent(), expected);
}

#[test]
fn empty_credentials_are_sent_as_zero_lengths() {
    let auth = Credentials::new("", "");
    let proxy = MockProxy::new(&[[0x05, 0x02, 0x01, 0x00].as_slice(), &SUCCESS_V4].concat());
    proxy.handshake(Some(&auth)).expect("handshake");
    assert_eq!(proxy.sent()[4..7], [0x01, 0x00, 0x00]);
}

// ---- Successful replies ----

#[test]
fn success_reads_every_bound_address_type_and_leaves_tunnel_bytes_unread() {
    for (name, reply) in success_replies() {
        let script = [[0x05, 0x00].as_slice(), &reply, b"tunnel data"].concat();
        let proxy = MockProxy::new(&script).then(Then::Silence);
        proxy
            .handshake(None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(proxy.unread(), b"tunnel data", "{name}");
    }
}

#[test]
fn success_with_domain_bound_addresses_of_length_0_and_255() {
    for len in [0u8, 1, 255] {
        let mut reply = vec![0x05, 0x00, 0x00, 0x03, len];
        reply.extend(std::iter::repeat_n(b'a', len.into()));
        reply.extend([0x00, 0x50]);
        let script = [[0x05, 0x00].as_slice(), &reply, b"!"].concat();
        let proxy = MockProxy::new(&script);
        proxy
            .handshake(None)
            .unwrap_or_else(|e| panic!("length {len}: {e}"));
        assert_eq!(proxy.unread(), b"!", "length {len}");
    }
}

#[test]
fn success_when_the_proxy_answers_one_byte_at_a_time() {
    for (name, reply) in success_replies() {
        let script = [[0x05, 0x02, 0x01, 0x00].as_slice(), &reply].concat();
        let proxy = MockProxy::new(&script).trickle(1);
        proxy
            .handshake(Some(&user_pass()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn success_when_the_answers_arrive_in_pieces_across_waits() {
    let proxy = MockProxy::new(&[])
        .then(Then::Silence)
        .arriving(&[0x05])
        .arriving(&[0x00, 0x05, 0x00])
        .arriving(&[0x00, 0x01, 127, 0])
        .arriving(&[0, 1, 0x20])
        .arriving(&[0x8d]);
    proxy.handshake(None).expect("handshake");
    assert_eq!(proxy.waits.borrow().len(), 5);
    assert!(proxy.waits.borrow().iter().all(|w| *w <= MAX_WAIT_FOR_IO));
}

#[test]
fn zero_timeout_succeeds_when_every_answer_is_already_there() {
    let proxy = MockProxy::new(&[[0x05, 0x00].as_slice(), &SUCCESS_V4].concat());
    socks5::connect(&proxy, DEST, PORT, None, Duration::ZERO, &proxy.interrupt)
        .expect("one attempt is always made");
}

#[test]
fn interrupt_set_before_the_call_does_not_fail_answers_that_are_already_there() {
    let proxy = MockProxy::new(&[[0x05, 0x00].as_slice(), &SUCCESS_V4].concat());
    proxy.interrupt.interrupt();
    proxy
        .handshake(None)
        .expect("each step completes on its first attempt");
}

// ---- Reply codes ----

/// Core's `Socks5ErrorString` table.
const CORE_REPLY_TEXTS: [(u8, &str); 16] = [
    (0x01, "general failure"),
    (0x02, "connection not allowed"),
    (0x03, "network unreachable"),
    (0x04, "host unreachable"),
    (0x05, "connection refused"),
    (0x06, "TTL expired"),
    (0x07, "protocol error"),
    (0x08, "address type not supported"),
    (0xf0, "onion service descriptor can not be found"),
    (0xf1, "onion service descriptor is invalid"),
    (0xf2, "onion service introduction failed"),
    (0xf3, "onion service rendezvous failed"),
    (0xf4, "onion service missing client authorization"),
    (0xf5, "onion service wrong client authorization"),
    (0xf6, "onion service invalid address"),
    (0xf7, "onion service introduction timed out"),
];

#[test]
fn every_reply_code_fails_with_cores_text() {
    for (code, text) in CORE_REPLY_TEXTS {
        let reply = [0x05, 0x00, 0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
        let proxy = MockProxy::new(&reply);
        let err = expect_err(proxy.handshake(None));
        assert!(
            matches!(err, Socks5Error::Reply { code: c } if c == code),
            "{code:#04x}: {err:?}"
        );
        assert_eq!(err.to_string(), text, "{code:#04x}");
        assert_eq!(err.reply_code(), Some(code));
    }
}

#[test]
fn unknown_reply_codes_fail_with_their_hex_value() {
    for (code, text) in [
        (0x09, "unknown (0x09)"),
        (0x80, "unknown (0x80)"),
        (0xef, "unknown (0xef)"),
        (0xf8, "unknown (0xf8)"),
        (0xff, "unknown (0xff)"),
    ] {
        let proxy = MockProxy::new(&[0x05, 0x00, 0x05, code, 0x00, 0x01]);
        let err = expect_err(proxy.handshake(None));
        assert_eq!(err.reply_code(), Some(code));
        assert_eq!(err.to_string(), text);
    }
}

#[test]
fn socks5_error_string_matches_core_for_every_code() {
    for code in 0..=u8::MAX {
        let expected = CORE_REPLY_TEXTS
            .iter()
            .find(|(c, _)| *c == code)
            .map_or_else(|| format!("unknown (0x{code:02x})"), |(_, t)| t.to_string());
        assert_eq!(socks5_error_string(code), expected);
    }
    assert_eq!(socks5_error_string(0x00), "unknown (0x00)");
}

#[test]
fn reply_code_is_checked_before_the_reserved_byte_and_address_type() {
    // Core: version, then reply code, then reserved byte; a failure reply's address is not read.
    let proxy = MockProxy::new(&[0x05, 0x00, 0x05, 0x04, 0xff, 0xff]);
    assert_eq!(
        expect_err(proxy.handshake(None)).to_string(),
        "host unreachable"
    );
}

// ---- Malformed replies ----

#[test]
fn method_reply_of_another_version_fails_to_initialize() {
    for version in [0x00, 0x04, 0x06, 0xff] {
        let proxy = MockProxy::new(&[version, 0x00]);
        let err = expect_err(proxy.handshake(None));
        assert!(matches!(err, Socks5Error::InitFailed { version: v } if v == version));
        assert_eq!(err.to_string(), "Proxy failed to initialize");
        assert_eq!(
            proxy.sent(),
            [0x05, 0x01, 0x00],
            "nothing sent after the greeting"
        );
    }
}

#[test]
fn methods_not_offered_are_wrong_authentication_methods() {
    let cases: [(u8, Option<Credentials>, &str); 6] = [
        (0x01, None, "01"),
        (0x02, None, "02"),
        (0x03, None, "03"),
        (0x80, None, "80"),
        (0xff, None, "ff"),
        (0xff, Some(user_pass()), "ff"),
    ];
    for (method, auth, hex) in cases {
        let proxy = MockProxy::new(&[0x05, method]);
        let err = expect_err(proxy.handshake(auth.as_ref()));
        assert!(matches!(err, Socks5Error::WrongAuthMethod { method: m } if m == method));
        assert_eq!(
            err.to_string(),
            format!("Proxy requested wrong authentication method {hex}")
        );
    }
}

#[test]
fn rejected_credentials_fail_authentication() {
    for response in [[0x01, 0x01], [0x01, 0xff], [0x05, 0x00], [0x00, 0x00]] {
        let proxy = MockProxy::new(&[0x05, 0x02, response[0], response[1]]);
        let err = expect_err(proxy.handshake(Some(&user_pass())));
        assert!(matches!(err, Socks5Error::AuthFailed { response: r } if r == response));
        assert_eq!(err.to_string(), "Proxy authentication unsuccessful");
        let mut expected = vec![0x05, 0x02, 0x00, 0x02];
        expected.extend(auth_request(&user_pass()));
        assert_eq!(
            proxy.sent(),
            expected,
            "no request after a failed authentication"
        );
    }
}

#[test]
fn request_reply_of_another_version_is_not_accepted() {
    for version in [0x00, 0x04, 0xff] {
        let proxy = MockProxy::new(&[0x05, 0x00, version, 0x00, 0x00, 0x01]);
        let err = expect_err(proxy.handshake(None));
        assert!(matches!(err, Socks5Error::RequestNotAccepted { version: v } if v == version));
        assert_eq!(err.to_string(), "Proxy failed to accept request");
    }
}

#[test]
fn non_zero_reserved_byte_is_a_malformed_response() {
    for reserved in [0x01, 0x80, 0xff] {
        let proxy = MockProxy::new(&[0x05, 0x00, 0x05, 0x00, reserved, 0x01, 0, 0, 0, 0, 0, 0]);
        let err = expect_err(proxy.handshake(None));
        assert!(matches!(
            err,
            Socks5Error::MalformedResponse { header } if header == [0x05, 0x00, reserved, 0x01]
        ));
        assert_eq!(err.to_string(), "Error: malformed proxy response");
    }
}

#[test]
fn unknown_address_type_is_a_malformed_response() {
    for address_type in [0x00, 0x02, 0x05, 0xff] {
        let proxy = MockProxy::new(&[0x05, 0x00, 0x05, 0x00, 0x00, address_type, 0, 0, 0, 0]);
        let err = expect_err(proxy.handshake(None));
        assert!(
            matches!(err, Socks5Error::MalformedResponse { .. }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "Error: malformed proxy response");
    }
}

/// The text and kind of the failure when the proxy's answers stop after `at` bytes of
/// `script` (method reply, optional auth reply, request reply).
fn expected_failure(at: usize, auth: bool, reply_len: usize) -> (&'static str, usize) {
    let method_end = 2;
    let auth_end = if auth { 4 } else { 2 };
    let header_end = auth_end + 4;
    let reply_end = auth_end + reply_len;
    assert!(at < reply_end);
    if at < method_end {
        (
            "Socks5() connect to example.onion:8333 failed: InterruptibleRecv() timeout or other \
             failure",
            at,
        )
    } else if at < auth_end {
        (
            "Error reading proxy authentication response",
            at - method_end,
        )
    } else if at < header_end {
        ("Error while reading proxy response", at - auth_end)
    } else {
        ("Error reading from proxy", usize::MAX)
    }
}

#[test]
fn truncated_answers_at_every_position_fail_as_disconnected() {
    for auth in [false, true] {
        let credentials = user_pass();
        let prelude: &[u8] = if auth {
            &[0x05, 0x02, 0x01, 0x00]
        } else {
            &[0x05, 0x00]
        };
        for (name, reply) in success_replies() {
            let script = [prelude, &reply].concat();
            for at in 0..script.len() {
                let proxy = MockProxy::new(&script[..at]).then(Then::Eof);
                let err = expect_err(proxy.handshake(auth.then_some(&credentials)));
                let (text, received) = expected_failure(at, auth, reply.len());
                let context = format!("auth {auth}, {name}, cut at {at}: {err:?}");
                assert_eq!(err.to_string(), text, "{context}");
                let source = err.recv_error().expect("a read failed");
                assert!(
                    matches!(source, IntrRecvError::Disconnected { .. }),
                    "{context}"
                );
                if received != usize::MAX {
                    assert_eq!(source.received(), received, "{context}");
                }
                assert!(!err.is_timeout() && !err.is_interrupted(), "{context}");
            }
        }
    }
}

#[test]
fn truncated_answers_at_every_position_time_out_when_the_proxy_goes_silent() {
    for (name, reply) in success_replies() {
        let script = [[0x05, 0x02, 0x01, 0x00].as_slice(), &reply].concat();
        for at in 0..script.len() {
            let proxy = MockProxy::new(&script[..at]).then(Then::Silence);
            let err = expect_err(proxy.handshake(Some(&user_pass())));
            let (text, _) = expected_failure(at, true, reply.len());
            let context = format!("{name}, cut at {at}: {err:?}");
            assert_eq!(err.to_string(), text, "{context}");
            assert!(
                matches!(err.recv_error(), Some(IntrRecvError::Timeout { .. })),
                "{context}"
            );
            assert!(err.is_timeout(), "{context}");
            // Each read has its own timeout (Core's), waited for in steps of at most a second.
            assert!(proxy.elapsed.get() >= TIMEOUT, "{context}");
            assert!(proxy.elapsed.get() < TIMEOUT + MAX_WAIT_FOR_IO, "{context}");
            assert!(proxy.waits.borrow().iter().all(|w| *w <= MAX_WAIT_FOR_IO));
        }
    }
}

#[test]
fn pseudo_random_answers_never_panic() {
    // A deterministic xorshift: the same cases on every run and every target.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..2000 {
        let len = (next() % 40) as usize;
        let mut script: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Bias towards getting past the first checks.
        if case % 2 == 0 && len >= 2 {
            script[0] = 0x05;
            script[1] = (next() % 3) as u8;
        }
        let auth = (case % 3 == 0).then(user_pass);
        let proxy = MockProxy::new(&script).trickle(1 + (next() % 4) as usize);
        let _ = proxy.handshake(auth.as_ref());
    }
}

// ---- Limits checked by the client ----

#[test]
fn hostname_longer_than_255_bytes_fails_before_sending_anything() {
    let long = "a".repeat(256);
    let proxy = MockProxy::new(&[0x05, 0x00]);
    let err = expect_err(socks5::connect(
        &proxy,
        &long,
        PORT,
        None,
        TIMEOUT,
        &proxy.interrupt,
    ));
    assert!(matches!(err, Socks5Error::HostnameTooLong));
    assert_eq!(err.to_string(), "Hostname too long");
    assert!(proxy.sent().is_empty());

    // 255 bytes is the longest a SOCKS5 domain name can be, and it is sent whole.
    let longest = "b".repeat(255);
    let proxy = MockProxy::new(&[[0x05, 0x00].as_slice(), &SUCCESS_V4].concat());
    socks5::connect(&proxy, &longest, PORT, None, TIMEOUT, &proxy.interrupt).expect("255 bytes");
    assert_eq!(proxy.sent()[3..], connect_request(&longest, PORT));
}

#[test]
fn hostname_length_counts_bytes_not_characters() {
    // 128 two-byte characters: 256 bytes.
    let long = "é".repeat(128);
    let proxy = MockProxy::new(&[0x05, 0x00]);
    let err = expect_err(socks5::connect(
        &proxy,
        &long,
        PORT,
        None,
        TIMEOUT,
        &proxy.interrupt,
    ));
    assert!(matches!(err, Socks5Error::HostnameTooLong));
}

#[test]
fn username_or_password_longer_than_255_bytes_fails_after_the_greeting() {
    let long = "u".repeat(256);
    for auth in [
        Credentials::new(long.clone(), "p"),
        Credentials::new("u", long.clone()),
    ] {
        let proxy = MockProxy::new(&[0x05, 0x02, 0x01, 0x00]);
        let err = expect_err(proxy.handshake(Some(&auth)));
        assert!(matches!(err, Socks5Error::CredentialsTooLong));
        assert_eq!(err.to_string(), "Proxy username or password too long");
        // Core checks when the proxy asks for them: the greeting is out, nothing more.
        assert_eq!(proxy.sent(), [0x05, 0x02, 0x00, 0x02]);
    }

    let longest = Credentials::new("u".repeat(255), "p".repeat(255));
    let proxy = MockProxy::new(&[[0x05, 0x02, 0x01, 0x00].as_slice(), &SUCCESS_V4].concat());
    proxy.handshake(Some(&longest)).expect("255 bytes each");
    assert_eq!(proxy.sent()[4..4 + 513], auth_request(&longest));
}

#[test]
fn long_credentials_do_not_matter_when_the_proxy_picks_noauth() {
    // As in Core: the lengths are checked only when the credentials are to be sent.
    let auth = Credentials::new("u".repeat(300), "p".repeat(300));
    let proxy = MockProxy::new(&[[0x05, 0x00].as_slice(), &SUCCESS_V4].concat());
    proxy.handshake(Some(&auth)).expect("handshake");
}

// ---- Timeouts, interrupts, errors ----

#[test]
fn silent_proxy_times_out_on_the_method_reply_after_the_timeout() {
    let proxy = MockProxy::new(&[]).then(Then::Silence);
    let err = expect_err(proxy.handshake(None));
    assert!(
        matches!(
            &err,
            Socks5Error::MethodReply { dest, port: PORT, source: IntrRecvError::Timeout { received: 0, expected: 2 } }
                if dest == DEST
        ),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert_eq!(proxy.elapsed.get(), TIMEOUT);
    assert_eq!(
        proxy.waits.borrow().len(),
        20,
        "one wait per MAX_WAIT_FOR_IO"
    );
}

#[test]
fn silent_proxy_after_the_request_times_out_reading_the_response() {
    let proxy = MockProxy::new(&[0x05, 0x00]).then(Then::Silence);
    let err = expect_err(proxy.handshake(None));
    assert!(matches!(
        err,
        Socks5Error::ReadResponse(IntrRecvError::Timeout { .. })
    ));
    assert_eq!(err.to_string(), "Error while reading proxy response");
    assert!(err.is_timeout());
}

#[test]
fn interrupt_during_a_wait_stops_the_handshake() {
    let proxy = MockProxy::new(&[]).then(Then::Silence).interrupt_on_wait(3);
    let err = expect_err(proxy.handshake(None));
    assert!(
        matches!(
            err,
            Socks5Error::MethodReply {
                source: IntrRecvError::Interrupted { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_interrupted());
    assert!(!err.is_timeout());
    assert_eq!(proxy.waits.borrow().len(), 3);
}

#[test]
fn interrupt_set_before_the_call_stops_at_the_first_missing_answer() {
    let proxy = MockProxy::new(&[0x05, 0x00, 0x05]).then(Then::Silence);
    proxy.interrupt.interrupt();
    let err = expect_err(proxy.handshake(None));
    assert!(matches!(
        err,
        Socks5Error::ReadResponse(IntrRecvError::Interrupted {
            received: 1,
            expected: 4
        })
    ));
    assert!(proxy.waits.borrow().is_empty(), "no wait once interrupted");
}

#[test]
fn interrupt_stops_a_send_that_does_not_go_through() {
    let proxy = MockProxy::new(&[])
        .sends([Ok(0), Ok(0), Ok(0)])
        .interrupt_on_wait(2);
    let err = expect_err(proxy.handshake(None));
    assert!(matches!(
        err,
        Socks5Error::Send(SockError::SendInterrupted { sent: 0, total: 3 })
    ));
    assert_eq!(
        err.to_string(),
        "Error during SOCKS5 proxy handshake: Send interrupted (sent only 0 of 3 bytes before that)"
    );
    assert!(err.is_interrupted());
}

#[test]
fn proxy_that_never_reads_times_out_the_send() {
    let proxy = MockProxy::new(&[]).sends(std::iter::repeat_with(|| Ok(0)).take(100));
    let err = expect_err(proxy.handshake(None));
    assert_eq!(
        err.to_string(),
        "Error during SOCKS5 proxy handshake: Send timeout (sent only 0 of 3 bytes before that)"
    );
    assert!(err.is_timeout());
}

#[test]
fn permanent_send_error_fails_the_handshake() {
    let reset = io::Error::new(io::ErrorKind::ConnectionReset, "connection reset");
    let proxy = MockProxy::new(&[0x05, 0x00]).sends([Ok(3), Err(reset)]);
    let err = expect_err(proxy.handshake(None));
    assert!(
        matches!(err, Socks5Error::Send(SockError::Send(_))),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Error during SOCKS5 proxy handshake: send(): connection reset"
    );
}

#[test]
fn permanent_recv_error_is_a_network_error() {
    let reset = io::Error::new(io::ErrorKind::ConnectionReset, "connection reset");
    let proxy = MockProxy::new(&[0x05, 0x00]).recv_error(reset);
    let err = expect_err(proxy.handshake(None));
    match err {
        Socks5Error::MethodReply {
            source:
                IntrRecvError::NetworkError {
                    source,
                    received: 0,
                    expected: 2,
                },
            ..
        } => assert_eq!(source.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("{other:?}"),
    }
}

#[test]
fn interrupted_system_call_is_tried_again() {
    // Core gives up on EINTR; here it is "try again", as io_error_is_permanent says.
    let proxy = MockProxy::new(&[[0x05, 0x00].as_slice(), &SUCCESS_V4].concat())
        .recv_error(io::ErrorKind::Interrupted.into())
        .recv_error(io::ErrorKind::Interrupted.into());
    proxy.handshake(None).expect("handshake");
}

#[test]
fn failed_wait_is_a_network_error() {
    let proxy = MockProxy::new(&[])
        .then(Then::Silence)
        .wait_error(io::ErrorKind::InvalidInput);
    let err = expect_err(proxy.handshake(None));
    assert!(
        matches!(
            err,
            Socks5Error::MethodReply {
                source: IntrRecvError::NetworkError { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

// ---- interruptible_recv on its own ----

#[test]
fn interruptible_recv_reads_exactly_the_buffer_and_no_more() {
    let proxy = MockProxy::new(b"abcdef").trickle(2);
    let mut buf = [0u8; 5];
    interruptible_recv(&proxy, &mut buf, TIMEOUT, &proxy.interrupt).expect("read");
    assert_eq!(&buf, b"abcde");
    assert_eq!(proxy.unread(), b"f");
}

#[test]
fn interruptible_recv_of_nothing_succeeds_without_reading() {
    let proxy = MockProxy::new(b"x").then(Then::Eof);
    proxy.interrupt.interrupt();
    interruptible_recv(&proxy, &mut [], Duration::ZERO, &proxy.interrupt).expect("empty read");
    assert_eq!(proxy.unread(), b"x");
}

#[test]
fn interruptible_recv_reports_end_of_stream_as_disconnected_with_what_arrived() {
    let proxy = MockProxy::new(b"ab").then(Then::Eof);
    let mut buf = [0u8; 4];
    let err = interruptible_recv(&proxy, &mut buf, TIMEOUT, &proxy.interrupt).unwrap_err();
    assert!(matches!(
        err,
        IntrRecvError::Disconnected {
            received: 2,
            expected: 4
        }
    ));
    assert_eq!(&buf[..2], b"ab");
    assert_eq!(
        err.to_string(),
        "Connection unexpectedly closed by peer (received 2 of 4 bytes before that)"
    );
}

#[test]
fn interruptible_recv_times_out_on_the_fake_clock_with_huge_timeouts_saturating() {
    let proxy = MockProxy::new(b"a").then(Then::Silence);
    let mut buf = [0u8; 2];
    let err =
        interruptible_recv(&proxy, &mut buf, Duration::from_secs(3), &proxy.interrupt).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Receive timeout (received 1 of 2 bytes before that)"
    );
    assert_eq!(proxy.elapsed.get(), Duration::from_secs(3));

    // Duration::MAX does not overflow: it waits (in steps) until interrupted.
    let proxy = MockProxy::new(&[]).then(Then::Silence).interrupt_on_wait(5);
    let err = interruptible_recv(&proxy, &mut buf, Duration::MAX, &proxy.interrupt).unwrap_err();
    assert!(matches!(
        err,
        IntrRecvError::Interrupted { received: 0, .. }
    ));
    assert_eq!(
        err.to_string(),
        "Receive interrupted (received 0 of 2 bytes before that)"
    );
    assert_eq!(proxy.waits.borrow().len(), 5);
    assert!(proxy.waits.borrow().iter().all(|w| *w == MAX_WAIT_FOR_IO));
}

/// A `recv` that claims more bytes than the buffer holds.
struct LyingSock;

impl SockIo for LyingSock {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        Ok(data.len())
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(first) = buf.first_mut() {
            *first = 0x05;
        }
        Ok(buf.len() + 100)
    }
    fn peek(&self, _buf: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
    fn wait(&self, _timeout: Duration, requested: SockEvent) -> io::Result<SockEvent> {
        Ok(requested)
    }
}

#[test]
fn recv_claiming_more_than_the_buffer_does_not_panic() {
    let mut buf = [0u8; 3];
    interruptible_recv(&LyingSock, &mut buf, TIMEOUT, &ThreadInterrupt::new()).expect("read");
    // The whole handshake over it: 05 00 to the greeting, then a success with address type 0.
    let result = socks5::connect(
        &LyingSock,
        DEST,
        PORT,
        None,
        TIMEOUT,
        &ThreadInterrupt::new(),
    );
    assert!(result.is_err());
}

#[test]
fn credentials_debug_hides_the_password() {
    let shown = format!("{:?}", Credentials::new("alice", "secret"));
    assert!(shown.contains("alice"), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
}

/// `Sock::connect_via_socks5_unix`: the connect to the proxy's path and the same handshake
/// over it, against a scripted proxy on a Unix-domain socket in a temporary folder (natively
/// on Unix; tests/unix.rs runs it against microsocks too).
#[cfg(all(unix, not(target_os = "wasi")))]
#[test]
fn connect_via_socks5_unix_runs_the_handshake_over_the_path_and_returns_the_tunnel() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    let dir = std::env::temp_dir().join(format!("bitcoin-sock-socks5-mock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("proxy");
    let listener = UnixListener::bind(&path).expect("listen on the path");
    let proxy = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut greeting = [0u8; 3];
        s.read_exact(&mut greeting).expect("greeting");
        s.write_all(&[0x05, 0x00])
            .expect("method: no authentication");
        let mut head = [0u8; 5];
        s.read_exact(&mut head).expect("request");
        let mut rest = vec![0u8; usize::from(head[4]) + 2];
        s.read_exact(&mut rest).expect("host and port");
        s.write_all(&[0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0])
            .expect("success");
        s.write_all(b"tunnel").expect("tunnel bytes");
        (greeting, head, rest)
    });
    let timeout = Duration::from_secs(10);
    let sock = bitcoin_sock::Sock::connect_via_socks5_unix(
        &bitcoin_sock::UnixAddress::path(&path),
        "example.onion",
        8333,
        None,
        timeout,
    )
    .expect("the handshake succeeds");
    let mut got = [0u8; 6];
    let mut n = 0;
    while n < got.len() {
        sock.wait(timeout, SockEvent::RECV).expect("wait");
        n += sock.recv(&mut got[n..]).expect("recv");
    }
    assert_eq!(&got, b"tunnel");
    // Joined only now: a sock that never reached the proxy fails above, not in this join.
    let (greeting, head, rest) = proxy.join().expect("the proxy");
    assert_eq!(greeting, [0x05, 0x01, 0x00]);
    assert_eq!(head, [0x05, 0x01, 0x00, 0x03, 13]);
    assert_eq!(&rest[..13], b"example.onion");
    assert_eq!(rest[13..], 8333u16.to_be_bytes());
    drop(sock);
    let _ = std::fs::remove_dir_all(&dir);
}
