//! What needs no socket, on every target: `SockEvent` and `Events`, `ThreadInterrupt`, and the
//! error-code helpers.
//!
//! Run natively, in wasmtime on `wasm32-wasip2` and `wasm32-wasip1`, and in Node.js on
//! `wasm32-unknown-unknown` (`wasm-bindgen-test`, through `wasm-bindgen-test-runner`).

// wasm32-unknown-unknown has no libtest runner: there every `#[test]` below is a
// `#[wasm_bindgen_test]`, run in Node.js (the default without `run_in_browser`).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

mod common;

use std::time::{Duration, Instant};

use bitcoin_sock::{
    io_error_is_permanent, network_error_string, Events, Sock, SockEvent, ThreadInterrupt,
};
use common::{code, PROMPTLY};

/// The time now, where the host has a clock (wasm32-unknown-unknown has none).
fn stopwatch() -> Option<Instant> {
    (!cfg!(all(target_arch = "wasm32", target_os = "unknown"))).then(Instant::now)
}

// ---------------------------------------------------------------------------------------------
// SockEvent and Events

#[test]
fn sock_event_bits_are_cores() {
    assert_eq!(SockEvent::RECV.bits(), 0b001);
    assert_eq!(SockEvent::SEND.bits(), 0b010);
    assert_eq!(SockEvent::ERR.bits(), 0b100);
    assert_eq!(SockEvent::empty().bits(), 0);
    assert_eq!(SockEvent::default(), SockEvent::empty());
    assert_eq!(SockEvent::from_bits_truncate(0xff).bits(), 0b111);
}

#[test]
fn sock_event_set_operations() {
    let mut ev = SockEvent::RECV | SockEvent::SEND;
    assert_eq!(ev.bits(), 0b011);
    assert!(ev.contains(SockEvent::RECV));
    assert!(ev.contains(SockEvent::RECV | SockEvent::SEND));
    assert!(!ev.contains(SockEvent::ERR));
    assert!(!ev.contains(SockEvent::RECV | SockEvent::ERR));
    assert!(ev.contains(SockEvent::empty()));
    assert!(ev.intersects(SockEvent::SEND | SockEvent::ERR));
    assert!(!ev.intersects(SockEvent::ERR));
    assert_eq!(ev & SockEvent::SEND, SockEvent::SEND);
    assert!((ev & SockEvent::ERR).is_empty());
    ev |= SockEvent::ERR;
    assert_eq!(ev.bits(), 0b111);
    ev &= SockEvent::ERR;
    assert_eq!(ev, SockEvent::ERR);
    assert!(!ev.is_empty());
    assert!(SockEvent::empty().is_empty());
}

#[test]
fn sock_event_debug_names_the_events() {
    assert_eq!(
        format!("{:?}", SockEvent::RECV | SockEvent::SEND),
        "RECV | SEND"
    );
    assert_eq!(
        format!("{:?}", SockEvent::ERR | SockEvent::RECV | SockEvent::SEND),
        "RECV | SEND | ERR"
    );
    assert_eq!(format!("{:?}", SockEvent::SEND), "SEND");
    assert_eq!(format!("{:?}", SockEvent::empty()), "(empty)");
}

#[test]
fn events_new_has_nothing_occurred() {
    let events = Events::new(SockEvent::SEND);
    assert_eq!(events.requested, SockEvent::SEND);
    assert!(events.occurred.is_empty());
}

// ---------------------------------------------------------------------------------------------
// ThreadInterrupt

#[test]
fn thread_interrupt_starts_clear_and_can_be_set_and_reset() {
    let interrupt = ThreadInterrupt::new();
    assert!(!interrupt.is_interrupted());
    interrupt.interrupt();
    assert!(interrupt.is_interrupted());
    interrupt.interrupt();
    assert!(interrupt.is_interrupted());
    interrupt.reset();
    assert!(!interrupt.is_interrupted());
}

// Sleeping needs a clock, which wasm32-unknown-unknown lacks (`Instant::now` panics there).
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
#[test]
fn sleep_for_sleeps_the_whole_time_when_not_interrupted() {
    let interrupt = ThreadInterrupt::new();
    let duration = Duration::from_millis(20);
    let start = Instant::now();
    assert!(interrupt.sleep_for(duration));
    assert!(start.elapsed() >= duration);
    assert!(interrupt.sleep_for(Duration::ZERO));
}

#[test]
fn sleep_for_returns_false_at_once_when_interrupted() {
    let interrupt = ThreadInterrupt::new();
    interrupt.interrupt();
    let start = stopwatch();
    assert!(!interrupt.sleep_for(Duration::from_secs(60)));
    assert!(!interrupt.sleep_for(Duration::MAX));
    if let Some(start) = start {
        assert!(start.elapsed() < PROMPTLY);
    }
}

#[test]
fn sock_and_thread_interrupt_are_send_and_sync_on_every_backend() {
    // Code written once must compile the same natively and on WASI.
    fn shareable<T: Send + Sync>() {}
    shareable::<Sock>();
    shareable::<ThreadInterrupt>();
}

// ---------------------------------------------------------------------------------------------
// network_error_string and io_error_is_permanent

#[test]
fn network_error_string_is_description_then_code() {
    let text = network_error_string(code::ECONNREFUSED);
    assert!(
        text.ends_with(&format!(" ({})", code::ECONNREFUSED)),
        "{text}"
    );
    assert!(!text.contains("os error"), "{text}");
    if cfg!(target_os = "linux") {
        assert_eq!(network_error_string(111), "Connection refused (111)");
        assert_eq!(network_error_string(104), "Connection reset by peer (104)");
    }
}

#[test]
fn network_error_string_takes_any_code() {
    for code in [i32::MIN, -1, 0, 99_999, i32::MAX] {
        let text = network_error_string(code);
        assert!(text.ends_with(&format!(" ({code})")), "{code}: {text}");
        assert!(
            text.len() > format!(" ({code})").len(),
            "{code}: no description"
        );
    }
}

#[cfg(sockets)]
#[test]
fn io_error_is_permanent_except_for_try_again_codes() {
    for err in [
        code::EAGAIN,
        code::EWOULDBLOCK,
        code::EINTR,
        code::EINPROGRESS,
    ] {
        assert!(!io_error_is_permanent(err), "{err} is a try-again code");
    }
    for err in [
        code::ECONNRESET,
        code::ECONNREFUSED,
        code::EPIPE,
        code::EINVAL,
        code::ENOTCONN,
        0,
    ] {
        assert!(io_error_is_permanent(err), "{err} is permanent");
    }
}

#[cfg(not(sockets))]
#[test]
fn without_sockets_every_code_is_permanent() {
    // No call can fail with a code worth retrying where there are no sockets.
    for err in [
        code::EAGAIN,
        code::EWOULDBLOCK,
        code::EINTR,
        code::EINPROGRESS,
        code::ECONNRESET,
        0,
    ] {
        assert!(io_error_is_permanent(err), "{err} is permanent");
    }
}
