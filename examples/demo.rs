//! A tour of `bitcoin-sock`: connect, send a whole message, read up to a terminator, wait on
//! many sockets, see errors with Core's texts. Runs natively and in wasmtime with the same
//! output.
//!
//! With no argument it starts its own loopback peer (in the same thread, so it also runs on
//! `wasm32-wasip2`, which has none). Given `HOST:PORT` (and optionally a line to send) it talks
//! to that peer instead: sends the line and prints the first line of the answer.
//!
//! ```sh
//! cargo run --example demo
//! cargo run --example demo -- 127.0.0.1:7000 "hello"
//! cargo run --example demo --target wasm32-wasip2
//! ```

use std::process::ExitCode;
use std::time::Duration;

use bitcoin_sock::{resolve, Events, Sock, SockError, SockEvent, SockIo, ThreadInterrupt};

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_LINE: usize = 64 * 1024;

// WASI 0.3 (feature `wasip3`): `main` entered where sockets may wait; elsewhere nothing.
bitcoin_sock::wasip3_main!();

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first() {
        Some(target) => remote(target, args.get(1).map_or("hello", String::as_str)),
        None => embedded(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Talks to a peer it starts itself on loopback.
fn embedded() -> Result<(), Box<dyn std::error::Error>> {
    let interrupt = ThreadInterrupt::new();

    let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 16)?;
    let addr = listener.local_addr()?;
    println!("listening on 127.0.0.1 (port chosen by the OS)");

    let client = Sock::connect(addr, TIMEOUT)?;
    println!("connected: {:?}", client.wait(TIMEOUT, SockEvent::SEND)?);

    let occurred = listener.wait(TIMEOUT, SockEvent::RECV)?;
    println!("listener ready: {occurred:?}");
    let (server, _) = listener.accept()?;

    // Bitcoin-style line protocol: several messages in one send.
    client.send_complete(b"version\nverack\nping 42\n", TIMEOUT, &interrupt)?;
    println!("client sent 3 lines with send_complete");

    for _ in 0..3 {
        let line = server.recv_until_terminator(b'\n', TIMEOUT, &interrupt, MAX_LINE)?;
        println!("server got: {}", String::from_utf8_lossy(&line));
    }

    server.send_complete(b"pong 42\n", TIMEOUT, &interrupt)?;

    // One wait over every socket: only the client has something to read.
    let mut socks = [
        (&listener, Events::new(SockEvent::RECV)),
        (&client, Events::new(SockEvent::RECV)),
        (&server, Events::new(SockEvent::RECV)),
    ];
    let ready = Sock::wait_many(TIMEOUT, &mut socks)?;
    println!(
        "wait_many: {ready} ready (listener {:?}, client {:?}, server {:?})",
        socks[0].1.occurred, socks[1].1.occurred, socks[2].1.occurred
    );
    let reply = client.recv_until_terminator(b'\n', TIMEOUT, &interrupt, MAX_LINE)?;
    println!("client got: {}", String::from_utf8_lossy(&reply));

    // Core's error texts: a line that never ends, then a peer that goes away.
    client.send_complete(b"no terminator", TIMEOUT, &interrupt)?;
    match server.recv_until_terminator(b'\n', Duration::from_millis(50), &interrupt, MAX_LINE) {
        Err(err) => println!("short timeout: {err}"),
        Ok(line) => println!("unexpected line: {line:?}"),
    }
    drop(client);
    match server.recv_until_terminator(b'\n', TIMEOUT, &interrupt, MAX_LINE) {
        Err(err @ SockError::Closed { .. }) => {
            println!("peer gone: {err} ({} bytes kept)", err.received().len());
        }
        other => println!("unexpected: {other:?}"),
    }
    println!(
        "is_connected: {:?}",
        server.is_connected().map_err(|e| e.to_string())
    );
    println!(
        "invalid sock: {:?}",
        Sock::default().is_connected().map_err(|e| e.to_string())
    );
    Ok(())
}

/// Talks to `target` (`HOST:PORT`): sends `line` and prints the first line of the answer.
fn remote(target: &str, line: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or("expected HOST:PORT, e.g. 127.0.0.1:8333")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = *resolve(host, port.parse()?)?
        .first()
        .ok_or("the name resolved to no address")?;
    let interrupt = ThreadInterrupt::new();

    let sock = Sock::connect(addr, TIMEOUT)?;
    println!("connected to {addr} from {}", sock.local_addr()?);
    sock.send_complete(format!("{line}\n").as_bytes(), TIMEOUT, &interrupt)?;
    match sock.recv_until_terminator(b'\n', TIMEOUT, &interrupt, MAX_LINE) {
        Ok(reply) => println!("reply: {}", String::from_utf8_lossy(&reply)),
        Err(err) => println!("no reply line: {err}"),
    }
    println!(
        "is_connected: {:?}",
        sock.is_connected().map_err(|e| e.to_string())
    );
    Ok(())
}
