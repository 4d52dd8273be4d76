//! The socket-less values of the API checked exhaustively: `SockEvent`'s set algebra over all
//! eight sets against plain bit arithmetic, and the accessors of `SockError`, `IntrRecvError`
//! and `Socks5Error` on every variant. No socket, no clock: runs on every target, like
//! `no_socket.rs` (natively, wasmtime on `wasm32-wasip2` and `wasm32-wasip1`, Node.js on
//! `wasm32-unknown-unknown`). Its name sorts first, so it is the first target
//! `scripts/mutants.sh` runs: a mutant of these values fails here in milliseconds instead of
//! making the loopback tests wait out their timeouts.

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

// wasm32-unknown-unknown has no libtest runner: there every `#[test]` below is a
// `#[wasm_bindgen_test]`, run in Node.js.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bitcoin_sock::socks5::IntrRecvError;
use bitcoin_sock::{Events, SockError, SockEvent, Socks5Error};

fn all_sets() -> impl Iterator<Item = SockEvent> {
    (0u8..8).map(SockEvent::from_bits_truncate)
}

// ---------------------------------------------------------------------------------------------
// SockEvent

#[test]
fn sock_event_algebra_is_bit_arithmetic_on_every_pair_of_sets() {
    for a in all_sets() {
        assert_eq!(a.is_empty(), a.bits() == 0, "{a:?}");
        for b in all_sets() {
            let (x, y) = (a.bits(), b.bits());
            assert_eq!(a.contains(b), x & y == y, "{a:?} contains {b:?}");
            assert_eq!(a.intersects(b), x & y != 0, "{a:?} intersects {b:?}");
            assert_eq!((a | b).bits(), x | y, "{a:?} | {b:?}");
            assert_eq!((a & b).bits(), x & y, "{a:?} & {b:?}");
            let mut or = a;
            or |= b;
            assert_eq!(or, a | b);
            let mut and = a;
            and &= b;
            assert_eq!(and, a & b);
            assert_eq!(a.difference(b).bits(), x & !y, "{a:?} - {b:?}");
            assert_eq!(a - b, a.difference(b));
            let mut minus = a;
            minus -= b;
            assert_eq!(minus, a - b);
            assert_eq!(a == b, x == y);
        }
    }
}

#[test]
fn sock_event_from_bits_truncate_keeps_exactly_the_three_event_bits() {
    for bits in 0..=u8::MAX {
        assert_eq!(SockEvent::from_bits_truncate(bits).bits(), bits & 0b111);
    }
    assert_eq!(SockEvent::from_bits_truncate(0b001), SockEvent::RECV);
    assert_eq!(SockEvent::from_bits_truncate(0b010), SockEvent::SEND);
    assert_eq!(SockEvent::from_bits_truncate(0b100), SockEvent::ERR);
}

#[test]
fn sock_event_debug_names_every_set_in_bit_order() {
    let names = [
        "(empty)",
        "RECV",
        "SEND",
        "RECV | SEND",
        "ERR",
        "RECV | ERR",
        "SEND | ERR",
        "RECV | SEND | ERR",
    ];
    for (set, name) in all_sets().zip(names) {
        assert_eq!(format!("{set:?}"), name);
    }
}

#[test]
fn events_new_and_default_start_with_nothing_occurred() {
    for requested in all_sets() {
        let events = Events::new(requested);
        assert_eq!(events.requested, requested);
        assert_eq!(events.occurred, SockEvent::empty());
    }
    assert_eq!(Events::default(), Events::new(SockEvent::empty()));
}

// ---------------------------------------------------------------------------------------------
// SockError accessors, on every variant

fn os_error() -> io::Error {
    io::Error::from_raw_os_error(42)
}

/// Every variant, with `b"partial"` as the bytes a receive consumed where it has any.
fn every_sock_error() -> Vec<SockError> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8333);
    let received = || b"partial".to_vec();
    vec![
        SockError::Send(os_error()),
        SockError::SendTimeout { sent: 1, total: 2 },
        SockError::SendInterrupted { sent: 1, total: 2 },
        SockError::Recv {
            source: os_error(),
            received: received(),
        },
        SockError::Closed {
            received: received(),
        },
        SockError::TooManyBytes {
            received: received(),
        },
        SockError::RecvTimeout {
            received: received(),
        },
        SockError::RecvInterrupted {
            received: received(),
        },
        SockError::ShortRead {
            read: 1,
            attempted: 2,
            peeked: 3,
            received: received(),
        },
        SockError::Wait {
            source: os_error(),
            received: received(),
        },
        SockError::SendWait {
            source: os_error(),
            sent: 1,
            total: 2,
        },
        SockError::ConnectTimeout {
            addr: addr.into(),
            timeout: Duration::from_secs(1),
        },
        SockError::Connect {
            addr: addr.into(),
            source: os_error(),
        },
    ]
}

#[test]
fn sock_error_received_is_the_consumed_bytes_of_receive_errors_only() {
    for err in every_sock_error() {
        let receives = matches!(
            err,
            SockError::Recv { .. }
                | SockError::Wait { .. }
                | SockError::Closed { .. }
                | SockError::TooManyBytes { .. }
                | SockError::RecvTimeout { .. }
                | SockError::RecvInterrupted { .. }
                | SockError::ShortRead { .. }
        );
        let expected: &[u8] = if receives { b"partial" } else { b"" };
        assert_eq!(err.received(), expected, "{err:?}");
    }
}

#[test]
fn sock_error_io_error_is_the_os_error_of_os_failures_only() {
    for err in every_sock_error() {
        let from_os = matches!(
            err,
            SockError::Send(_)
                | SockError::Recv { .. }
                | SockError::Wait { .. }
                | SockError::SendWait { .. }
                | SockError::Connect { .. }
        );
        assert_eq!(
            err.io_error().and_then(io::Error::raw_os_error),
            from_os.then_some(42),
            "{err:?}"
        );
    }
}

#[test]
fn sock_error_is_timeout_and_is_interrupted_say_exactly_which() {
    for err in every_sock_error() {
        let timeout = matches!(
            err,
            SockError::SendTimeout { .. }
                | SockError::RecvTimeout { .. }
                | SockError::ConnectTimeout { .. }
        );
        let interrupted = matches!(
            err,
            SockError::SendInterrupted { .. } | SockError::RecvInterrupted { .. }
        );
        assert_eq!(err.is_timeout(), timeout, "{err:?}");
        assert_eq!(err.is_interrupted(), interrupted, "{err:?}");
    }
}

#[test]
fn sock_error_into_io_error_keeps_os_errors_and_gives_the_others_a_kind() {
    for err in every_sock_error() {
        let text = err.to_string();
        let expected = match err {
            SockError::Send(_)
            | SockError::Recv { .. }
            | SockError::Wait { .. }
            | SockError::SendWait { .. }
            | SockError::Connect { .. } => None,
            SockError::SendTimeout { .. }
            | SockError::RecvTimeout { .. }
            | SockError::ConnectTimeout { .. } => Some(io::ErrorKind::TimedOut),
            // Not `Interrupted`, which std's loops retry forever (tests/mock.rs).
            SockError::SendInterrupted { .. } | SockError::RecvInterrupted { .. } => {
                Some(io::ErrorKind::Other)
            }
            SockError::Closed { .. } => Some(io::ErrorKind::UnexpectedEof),
            SockError::TooManyBytes { .. } | SockError::ShortRead { .. } => {
                Some(io::ErrorKind::InvalidData)
            }
            _ => unreachable!("every_sock_error has no other variant"),
        };
        let kind = err.kind();
        let code = err.raw_os_error();
        let converted = io::Error::from(err);
        // kind() and raw_os_error() say what the conversion gives.
        assert_eq!(converted.kind(), kind, "{text}");
        assert_eq!(converted.raw_os_error(), code, "{text}");
        match expected {
            // The OS error itself: its code survives, not wrapped.
            None => assert_eq!(converted.raw_os_error(), Some(42), "{text}"),
            Some(kind) => {
                assert_eq!(converted.kind(), kind, "{text}");
                assert_eq!(converted.raw_os_error(), None, "{text}");
                // The SockError is inside, with its text.
                assert_eq!(converted.to_string(), text);
                let inner = converted
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<SockError>())
                    .expect("the SockError is the source");
                assert_eq!(inner.to_string(), text);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// IntrRecvError and Socks5Error accessors

fn every_intr_recv_error(received: usize) -> Vec<IntrRecvError> {
    vec![
        IntrRecvError::Timeout {
            received,
            expected: 9,
        },
        IntrRecvError::Disconnected {
            received,
            expected: 9,
        },
        IntrRecvError::NetworkError {
            source: os_error(),
            received,
            expected: 9,
        },
        IntrRecvError::Interrupted {
            received,
            expected: 9,
        },
    ]
}

#[test]
fn intr_recv_error_received_is_the_count_of_every_variant() {
    for received in [0, 3, 8] {
        for err in every_intr_recv_error(received) {
            assert_eq!(err.received(), received, "{err:?}");
        }
    }
}

#[test]
fn socks5_error_accessors_say_which_step_and_why() {
    let from_recv =
        |wrap: fn(IntrRecvError) -> Socks5Error| every_intr_recv_error(1).into_iter().map(wrap);
    let method_reply = |source| Socks5Error::MethodReply {
        dest: "example.com".to_owned(),
        port: 8333,
        source,
    };
    let mut errors: Vec<Socks5Error> = Vec::new();
    errors.extend(from_recv(method_reply));
    errors.extend(from_recv(Socks5Error::AuthReply));
    errors.extend(from_recv(Socks5Error::ReadResponse));
    errors.extend(from_recv(Socks5Error::ReadAddress));
    for err in &errors {
        let source = err.recv_error().expect("a read failed");
        assert_eq!(
            err.is_timeout(),
            matches!(source, IntrRecvError::Timeout { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.is_interrupted(),
            matches!(source, IntrRecvError::Interrupted { .. }),
            "{err:?}"
        );
        assert_eq!(err.reply_code(), None);
    }

    let send = |err: SockError| Socks5Error::Send(err);
    for (err, timeout, interrupted) in [
        (
            send(SockError::SendTimeout { sent: 0, total: 3 }),
            true,
            false,
        ),
        (
            send(SockError::SendInterrupted { sent: 0, total: 3 }),
            false,
            true,
        ),
        (send(SockError::Send(os_error())), false, false),
        (
            Socks5Error::ProxyConnect(SockError::ConnectTimeout {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9050).into(),
                timeout: Duration::from_secs(1),
            }),
            true,
            false,
        ),
        (
            Socks5Error::ProxyConnect(SockError::Connect {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9050).into(),
                source: os_error(),
            }),
            false,
            false,
        ),
    ] {
        assert_eq!(err.is_timeout(), timeout, "{err:?}");
        assert_eq!(err.is_interrupted(), interrupted, "{err:?}");
        assert!(err.recv_error().is_none());
        assert_eq!(err.reply_code(), None);
    }

    for code in [0x01, 0x05, 0xf0, 0xff] {
        let err = Socks5Error::Reply { code };
        assert_eq!(err.reply_code(), Some(code));
        assert!(!err.is_timeout() && !err.is_interrupted());
        assert!(err.recv_error().is_none());
    }
    for err in [
        Socks5Error::HostnameTooLong,
        Socks5Error::InitFailed { version: 4 },
        Socks5Error::WrongAuthMethod { method: 0xff },
        Socks5Error::CredentialsTooLong,
        Socks5Error::AuthFailed { response: [1, 1] },
        Socks5Error::RequestNotAccepted { version: 4 },
        Socks5Error::MalformedResponse {
            header: [5, 0, 1, 1],
        },
    ] {
        assert!(!err.is_timeout() && !err.is_interrupted(), "{err:?}");
        assert!(err.recv_error().is_none() && err.reply_code().is_none());
    }
}

// ---------------------------------------------------------------------------------------------
// ThreadInterrupt's flag

#[test]
fn thread_interrupt_flag_is_set_by_interrupt_and_cleared_by_reset_only() {
    let interrupt = bitcoin_sock::ThreadInterrupt::new();
    assert!(!interrupt.is_interrupted());
    interrupt.reset();
    assert!(!interrupt.is_interrupted());
    interrupt.interrupt();
    assert!(interrupt.is_interrupted());
    interrupt.interrupt();
    assert!(interrupt.is_interrupted());
    // An interrupted flag answers sleep_for at once, however long the sleep (no clock read).
    assert!(!interrupt.sleep_for(Duration::MAX));
    assert!(interrupt.is_interrupted(), "sleep_for does not clear it");
    interrupt.reset();
    assert!(!interrupt.is_interrupted());
    assert!(!bitcoin_sock::ThreadInterrupt::default().is_interrupted());
}
