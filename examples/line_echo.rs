//! A line-echo server on `SockMan`, driven by `run_once` in a loop of its own: the way on WASI,
//! which has no threads (natively `SockMan::run` on a thread does the same). A client in the
//! same thread connects by name, sends lines, reads each echo; `quit` makes the server answer
//! `bye` and close after sending it (`close_after_send`). Prints the same natively, in wasmtime
//! and under jco.
//!
//! ```sh
//! cargo run --example line_echo
//! cargo run --example line_echo --target wasm32-wasip2
//! ```

use std::collections::HashMap;
use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{Handler, Id, SockMan};
use bitcoin_sock::{Sock, SockIo, ThreadInterrupt};

// WASI 0.3 (feature `wasip3`): `main` entered where sockets may wait; elsewhere nothing.
bitcoin_sock::wasip3_main!();

/// How long anything may take before the example gives up.
const TIMEOUT: Duration = Duration::from_secs(10);
/// One iteration's wait: short, since the client is driven between iterations.
const STEP: Duration = Duration::from_millis(10);
/// The longest line the server keeps; a peer that sends more is dropped.
const MAX_LINE: usize = 64 * 1024;

/// The server: each connection's unfinished line.
#[derive(Default)]
struct LineEcho {
    partial: HashMap<Id, Vec<u8>>,
}

impl Handler for LineEcho {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        id: Id,
        _: SocketAddr,
        _: SocketAddr,
    ) -> bool {
        println!("server: accepted a connection");
        self.partial.insert(id, Vec::new());
        true
    }

    fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]) {
        let partial = self.partial.entry(id).or_default();
        partial.extend_from_slice(data);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let (reply, last) = match &line[..] {
                b"quit\n" => (&b"bye\n"[..], true),
                echo => (echo, false),
            };
            if man.send(id, reply, false).is_err() {
                self.partial.remove(&id);
                man.close(id);
                return;
            }
            if last {
                // The reply goes out first; no more events for this id.
                println!("server: closing after the reply");
                self.partial.remove(&id);
                man.close_after_send(id, TIMEOUT);
                return;
            }
        }
        if partial.len() > MAX_LINE {
            self.partial.remove(&id);
            man.close(id);
        }
    }

    fn got_eof(&mut self, man: &SockMan, id: Id) {
        self.partial.remove(&id);
        man.close(id);
    }

    fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, _: &io::Error) {
        self.partial.remove(&id);
        man.close(id);
    }
}

/// What the client read: a line, or the end of the stream.
enum Read {
    Line(String),
    End,
}

/// The client: a sock and the bytes read after its last line.
struct Client {
    sock: Sock,
    unread: Vec<u8>,
}

impl Client {
    /// The next line, or the end of the stream, if either is there now (never waits).
    fn poll(&mut self) -> io::Result<Option<Read>> {
        loop {
            if let Some(end) = self.unread.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.unread.drain(..=end).take(end).collect();
                return Ok(Some(Read::Line(
                    String::from_utf8_lossy(&line).into_owned(),
                )));
            }
            let mut buf = [0; 4096];
            match self.sock.recv(&mut buf) {
                Ok(0) => return Ok(Some(Read::End)),
                Ok(n) => self.unread.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Runs the server's loop until the client has read something.
fn run_until_read(
    man: &SockMan,
    server: &mut LineEcho,
    client: &mut Client,
) -> Result<Read, Box<dyn Error>> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(read) = client.poll()? {
            return Ok(read);
        }
        if Instant::now() > deadline {
            return Err("the server did not answer".into());
        }
        man.run_once(server, STEP)?;
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let man = SockMan::new()?;
    let addr = man.bind_and_listen("127.0.0.1:0".parse()?)?;
    println!("server: listening on 127.0.0.1 (port chosen by the OS)");
    let mut server = LineEcho::default();

    // "localhost:PORT" is looked up and each address tried in turn (Core's ConnectNode).
    let sock = Sock::connect_by_name(&format!("localhost:{}", addr.port()), TIMEOUT)?;
    println!("client: connected to localhost");
    let mut client = Client {
        sock,
        unread: Vec::new(),
    };

    let interrupt = ThreadInterrupt::new();
    for line in ["version", "ping 42", "quit"] {
        // A few bytes: the socket takes them at once, so this never waits for the server.
        client
            .sock
            .send_complete(format!("{line}\n").as_bytes(), TIMEOUT, &interrupt)?;
        println!("client -> {line}");
        match run_until_read(&man, &mut server, &mut client)? {
            Read::Line(reply) => println!("client <- {reply}"),
            Read::End => return Err("the server closed before its reply".into()),
        }
    }
    match run_until_read(&man, &mut server, &mut client)? {
        Read::End => println!("client: end of stream after the reply"),
        Read::Line(line) => return Err(format!("unexpected line {line:?}").into()),
    }
    drop(client);

    // The server sees the client's end of stream and finishes its close.
    let deadline = Instant::now() + TIMEOUT;
    while man.closing_count() > 0 {
        if Instant::now() > deadline {
            return Err("the graceful close did not finish".into());
        }
        man.run_once(&mut server, STEP)?;
    }
    println!(
        "server: {} connections, {} closing",
        man.connection_count(),
        man.closing_count()
    );
    Ok(())
}
