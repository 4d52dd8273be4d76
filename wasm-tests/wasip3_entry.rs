//! A program on the WASI 0.3 backend that does not add `bitcoin_sock::wasip3_main!()`: its
//! `main` (here libtest's) is entered through the synchronous `wasi:cli/run@0.2`, where the
//! host forbids blocking. Every call that would wait must answer `Unsupported` naming the fix,
//! never trap; what needs no wait (bind, listen, addresses, options) works. Empty elsewhere.
#![cfg(wasi_p3)]

use std::io::ErrorKind;
use std::time::Duration;

use bitcoin_sock::sockman::{Handler, Id, SockMan};
use bitcoin_sock::{resolve, Events, Sock, SockError, SockEvent};

const TIMEOUT: Duration = Duration::from_secs(10);

#[track_caller]
fn assert_names_the_entry(err: &std::io::Error) {
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(
        err.to_string().contains("bitcoin_sock::wasip3_main!()"),
        "the error names the fix: {err}"
    );
}

struct Nothing;
impl Handler for Nothing {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        _: Id,
        _: std::net::SocketAddr,
        _: std::net::SocketAddr,
    ) -> bool {
        true
    }
    fn got_data(&mut self, _: &SockMan, _: Id, _: &[u8]) {}
    fn got_eof(&mut self, _: &SockMan, _: Id) {}
    fn got_permanent_read_error(&mut self, _: &SockMan, _: Id, _: &std::io::Error) {}
}

#[test]
fn calls_that_would_wait_name_the_entry_macro_instead_of_trapping() {
    // No wait needed: these work.
    let listener = Sock::bind_listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
    let addr = listener.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    assert!(listener.keepalive().is_ok());
    assert_eq!(
        resolve("127.0.0.1", 1).unwrap(),
        vec!["127.0.0.1:1".parse().unwrap()]
    );

    match Sock::connect(addr, TIMEOUT) {
        Err(SockError::Connect { source, .. }) => assert_names_the_entry(&source),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert_names_the_entry(&listener.wait(TIMEOUT, SockEvent::RECV).unwrap_err());
    assert_names_the_entry(&listener.wait(Duration::ZERO, SockEvent::RECV).unwrap_err());
    let mut socks = [(&listener, Events::new(SockEvent::RECV))];
    assert_names_the_entry(&Sock::wait_many(TIMEOUT, &mut socks).unwrap_err());
    assert_names_the_entry(&listener.accept().unwrap_err());
    // The resolver's refusal has no OS code: `?` into io::Error keeps the text inside.
    assert_names_the_entry(&resolve("localhost", 8333).unwrap_err().into());

    let man = SockMan::new().unwrap();
    man.bind_and_listen("127.0.0.1:0".parse().unwrap()).unwrap();
    assert_names_the_entry(&man.run_once(&mut Nothing, TIMEOUT).unwrap_err());
    // Dropping everything here must not trap either (nothing was left in flight).
}
