//! The WASI 0.3 side of workload `sockman` (`--features wasip3`): idle-many, one connection
//! active among N, per `run_once`, beside its two baselines from the same run:
//!
//! * the limit: the same iteration written directly on `waitable-set.wait` over raw
//!   `wasi:sockets@0.3` sockets, a read in flight on every connection (what this crate's
//!   registry does, minus everything around it);
//! * WASI 0.2's floor: one `wasi:io/poll.poll` over the N connections' pollables with one
//!   ready (what every iteration of the 0.2 backend pays at least, whatever else it does).
//!
//! The three need their own connections (both ends in this instance: 2N sockets each, and
//! the host allows 20,000 descriptors), so they are measured one after the other, each the
//! best of its rounds, rather than alternating.

use std::time::{Duration, Instant};

use bitcoin_sock::sockman::SockMan;
use bitcoin_sock::Sock;

use super::wasm::{host, open_pairs};
use super::{idle_round_ours, micros, Count};
use crate::harness::{allocations, loopback, send_all, Config, Report, Result, Row, TIMEOUT};

/// The connection counts of the 0.3 rows: the last as many as 20,000 descriptors allow
/// with both ends of every connection in this instance.
const COUNTS: [usize; 4] = [10, 125, 1_000, 8_000];

/// The component-model built-ins the limit loop calls, and the byte streams' intrinsics.
mod raw {
    use wasip3::wit_bindgen::rt::async_support::StreamVtable;
    use wasip3::wit_stream::StreamPayload;

    pub const EVENT_STREAM_READ: u32 = 2;

    #[link(wasm_import_module = "$root")]
    extern "C" {
        #[link_name = "[waitable-set-new]"]
        fn waitable_set_new() -> u32;
        #[link_name = "[waitable-set-drop]"]
        fn waitable_set_drop(set: u32);
        #[link_name = "[waitable-join]"]
        fn waitable_join(waitable: u32, set: u32);
        #[link_name = "[waitable-set-wait]"]
        fn waitable_set_wait(set: u32, payload: *mut [u32; 2]) -> u32;
    }

    fn bytes() -> &'static StreamVtable<u8> {
        <u8 as StreamPayload>::VTABLE
    }

    pub fn new_set() -> u32 {
        // SAFETY: a built-in without arguments.
        unsafe { waitable_set_new() }
    }

    pub fn drop_set(set: u32) {
        // SAFETY: the set is ours and empty.
        unsafe { waitable_set_drop(set) }
    }

    pub fn join(waitable: u32, set: u32) {
        // SAFETY: the handles are ours (a wrong one traps, it cannot corrupt).
        unsafe { waitable_join(waitable, set) }
    }

    /// (event code, waitable, payload).
    pub fn wait(set: u32) -> (u32, u32, u32) {
        let mut payload = [0u32; 2];
        // SAFETY: `payload` is the two words the built-in writes.
        let code = unsafe { waitable_set_wait(set, &mut payload) };
        (code, payload[0], payload[1])
    }

    /// Starts a read into `buf`; the packed result (`u32::MAX`: in flight).
    ///
    /// # Safety
    /// `buf` stays valid and untouched until the read's event came or it was cancelled.
    pub unsafe fn start_read(stream: u32, buf: *mut u8, len: usize) -> u32 {
        // SAFETY: the caller's contract.
        unsafe { (bytes().start_read)(stream, buf, len) }
    }

    /// Writes one byte; the packed result (`u32::MAX`: in flight).
    pub fn write_byte(stream: u32, byte: &'static u8) -> u32 {
        // SAFETY: a static byte stays valid and unchanged.
        unsafe { (bytes().start_write)(stream, byte, 1) }
    }

    pub fn cancel_read(stream: u32) {
        // SAFETY: the stream is ours, with a read in flight, in no set.
        unsafe { (bytes().cancel_read)(stream) };
    }

    pub fn drop_reader(stream: u32) {
        // SAFETY: the stream is ours, with no read in flight.
        unsafe { (bytes().drop_readable)(stream) }
    }

    pub fn drop_writer(stream: u32) {
        // SAFETY: the stream is ours, with no write in flight.
        unsafe { (bytes().drop_writable)(stream) }
    }

    /// A new byte stream: (readable, writable).
    pub fn new_stream() -> (u32, u32) {
        // SAFETY: a built-in without arguments.
        let handles = unsafe { (bytes().new)() };
        (handles as u32, (handles >> 32) as u32)
    }

    pub fn reader(handle: u32) -> wasip3::wit_bindgen::rt::async_support::StreamReader<u8> {
        wasip3::wit_bindgen::rt::async_support::StreamReader::new(handle, bytes())
    }
}

use wasip3::sockets::types::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, TcpSocket,
};
use wasip3::wit_bindgen::block_on;
use wasip3::wit_bindgen::rt::async_support::FutureReader;

/// A future of `send` or `receive`: how the stream ended.
type Outcome = FutureReader<std::result::Result<(), ErrorCode>>;

/// N raw 0.3 connections, the servers' reads in flight in one set, and the active
/// client's send stream.
struct RawIdle {
    set: u32,
    /// Per server: its receive stream, the stream's result, and the read's buffer.
    servers: Vec<(TcpSocket, u32, Outcome, Box<[u8; 16]>)>,
    clients: Vec<TcpSocket>,
    /// The active client's send stream (its writable end) and `send`'s result.
    active: (u32, Outcome),
    listener: TcpSocket,
}

fn error(code: ErrorCode) -> String {
    format!("{code:?}")
}

impl RawIdle {
    fn open(count: usize) -> Result<RawIdle> {
        let listener = TcpSocket::create(IpAddressFamily::Ipv4).map_err(error)?;
        listener
            .bind(IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: 0,
                address: (127, 0, 0, 1),
            }))
            .map_err(error)?;
        listener.set_listen_backlog_size(4096).map_err(error)?;
        let mut accepts = listener.listen().map_err(error)?;
        let addr = listener.get_local_address().map_err(error)?;
        let set = raw::new_set();
        let mut servers = Vec::with_capacity(count);
        let mut clients = Vec::with_capacity(count);
        for _ in 0..count {
            let client = TcpSocket::create(IpAddressFamily::Ipv4).map_err(error)?;
            block_on(client.connect(addr)).map_err(error)?;
            let server = block_on(accepts.next()).ok_or("the listener's stream ended")?;
            let (stream, result) = server.receive();
            let stream = stream.take_handle();
            let buf = Box::new([0u8; 16]);
            // A zero-length read in flight (as the crate's registry keeps): no buffer held
            // per idle connection, and the host has nothing to copy until one is read.
            // SAFETY: a zero-length read writes nothing.
            let status =
                unsafe { raw::start_read(stream, std::ptr::NonNull::dangling().as_ptr(), 0) };
            if status != u32::MAX {
                return Err("an idle connection had bytes".into());
            }
            raw::join(stream, set);
            servers.push((server, stream, result, buf));
            clients.push(client);
        }
        drop(accepts);
        let (reader, writer) = raw::new_stream();
        let Some(active_client) = clients.last() else {
            return Err("no connection".into());
        };
        let sent = active_client.send(raw::reader(reader));
        raw::join(writer, set);
        Ok(RawIdle {
            set,
            servers,
            clients,
            active: (writer, sent),
            listener,
        })
    }

    /// `iterations` times: the active client writes a byte, the loop waits on the set
    /// until the active server's read says it came, and starts the next read. As the
    /// crate's registry does: the first wait is a zero-length read's, and the byte is read at
    /// once after it; from then on a read with its buffer is in flight (wasmtime keeps a
    /// socket that had bytes ready until a read finds none, so a zero-length read would
    /// answer at once).
    fn round(&mut self, iterations: usize) -> Result<Duration> {
        static BYTE: u8 = b'!';
        let (writer, _) = self.active;
        let Some((_, active, _, buf)) = self.servers.last_mut() else {
            return Err("no connection".into());
        };
        let start = Instant::now();
        for _ in 0..iterations {
            // A write in flight completes by an event of the same set (ignored below).
            raw::write_byte(writer, &BYTE);
            let payload = loop {
                let (code, waitable, payload) = raw::wait(self.set);
                if code == raw::EVENT_STREAM_READ && waitable == *active {
                    break payload;
                }
            };
            if payload >> 4 == 0 {
                // SAFETY: `buf` lives in `self`; the byte is there, so the read completes
                // at once.
                let read = unsafe { raw::start_read(*active, buf.as_mut_ptr(), buf.len()) };
                if read == u32::MAX || read >> 4 == 0 {
                    return Err("the byte the host announced was not there".into());
                }
            }
            // SAFETY: `buf` lives in `self` until the read's event came or `close` cancelled
            // it.
            let next = unsafe { raw::start_read(*active, buf.as_mut_ptr(), buf.len()) };
            if next != u32::MAX {
                return Err("a read found bytes that were never sent".into());
            }
        }
        Ok(start.elapsed())
    }

    /// Leaves the set, cancels the reads, drops the streams, then the sockets.
    fn close(self) {
        let (writer, sent) = self.active;
        raw::join(writer, 0);
        raw::drop_writer(writer);
        drop(sent);
        for (server, stream, result, buf) in self.servers {
            raw::join(stream, 0);
            raw::cancel_read(stream);
            raw::drop_reader(stream);
            drop(buf);
            drop(result);
            drop(server);
        }
        drop(self.clients);
        drop(self.listener);
        raw::drop_set(self.set);
    }
}

/// One idle-many measurement of ours at `n` connections: (time, iterations, allocations per
/// iteration).
fn ours(config: &Config, count: usize) -> Result<(Duration, usize, f64)> {
    let listener = Sock::bind_listen(loopback(), 4096)?;
    let addr = listener.local_addr()?;
    let (clients, servers) = open_pairs(&listener, count, || Ok(Sock::connect(addr, TIMEOUT)?))?;
    let Some(active_client) = clients.last() else {
        return Err("no connection".into());
    };
    let man = SockMan::new()?;
    let mut handler = Count::default();
    for sock in servers {
        man.add_connection(sock)?;
    }
    man.run_once(&mut handler, Duration::ZERO)?;
    let iterations = config.idle_iterations(count).max(200);
    let mut best = Duration::MAX;
    for _ in 0..config.idle_rounds {
        best = best.min(idle_round_ours(
            &man,
            &mut handler,
            active_client,
            iterations,
        )?);
    }
    let before = allocations();
    idle_round_ours(&man, &mut handler, active_client, iterations)?;
    let per_iteration = (allocations() - before) as f64 / iterations as f64;
    Ok((best, iterations, per_iteration))
}

/// WASI 0.2's floor at `count` connections: one `poll` over their pollables, one ready.
fn p2_floor(config: &Config, count: usize) -> Result<(Duration, usize)> {
    use wasi::io::poll::{poll, Pollable};
    let network = wasi::sockets::instance_network::instance_network();
    let listener = Sock::bind_listen(loopback(), 4096)?;
    let port = listener.local_addr()?.port();
    let (raws, servers) = open_pairs(&listener, count, || host::connect(&network, port))?;
    let (Some(active_raw), Some(active_server)) = (raws.last(), servers.last()) else {
        return Err("no connection".into());
    };
    send_all(active_server, b"!")?;
    active_raw.readable.block();
    let list: Vec<&Pollable> = raws.iter().map(|raw| &raw.readable).collect();
    let calls = (2_000_000 / count).clamp(20, 20_000);
    let mut best = Duration::MAX;
    for _ in 0..config.sockman_rounds {
        let start = Instant::now();
        for _ in 0..calls {
            if poll(&list).len() != 1 {
                return Err("the host's poll found the wrong number ready".into());
            }
        }
        best = best.min(start.elapsed());
    }
    Ok((best, calls))
}

pub(super) fn idle_limits(config: &Config, report: &mut Report) -> Result<()> {
    println!(
        "\n8. SockMan idle-many on WASI 0.3: per run_once, one connection active among N, beside a loop written directly on waitable-set.wait (the limit) and WASI 0.2's floor (one wasi:io/poll.poll over N), best of {} rounds each, one after the other",
        config.idle_rounds
    );
    let counts: Vec<usize> = if config.quick {
        vec![10, 1_000, 8_000]
    } else {
        COUNTS.to_vec()
    };
    let mut first: Option<(usize, f64)> = None;
    for count in counts {
        let (ours_time, iterations, allocs) = ours(config, count)?;
        let per_ours = ours_time.as_secs_f64() / iterations as f64;

        let mut raw = RawIdle::open(count)?;
        let mut limit = Duration::MAX;
        for _ in 0..config.idle_rounds {
            limit = limit.min(raw.round(iterations)?);
        }
        raw.close();
        let per_limit = limit.as_secs_f64() / iterations as f64;

        let (floor, calls) = p2_floor(config, count)?;
        let per_floor = floor.as_secs_f64() / calls as f64;

        report.add(Row::ratio(
            &format!("0.3 idle-many {count}: run_once vs waitable-set.wait loop"),
            micros(ours_time, iterations),
            micros(limit, iterations),
            per_limit / per_ours,
            Some(0.7),
        ));
        report.add(Row::ratio(
            &format!("0.3 idle-many {count}: run_once vs 0.2's floor (wasi:io/poll over {count})"),
            micros(ours_time, iterations),
            format!("{:.2} µs/poll", per_floor * 1e6),
            per_floor / per_ours,
            (count >= 8_000).then_some(50.0),
        ));
        report.add(super::info(
            format!("0.3 idle-many {count}: allocations per run_once iteration"),
            format!("{allocs:.2} allocs/iteration"),
        ));
        match first {
            None => first = Some((count, per_ours)),
            Some((smallest, per_smallest)) => report.add(Row::ratio(
                &format!("0.3 idle-many flatness: {count} vs {smallest} connections"),
                format!("{:.2} µs/iteration", per_ours * 1e6),
                format!("{:.2} µs/iteration", per_smallest * 1e6),
                per_smallest / per_ours,
                // Within 1.5x of the smallest: 1 / 1.5.
                (count >= 8_000).then_some(1.0 / 1.5),
            )),
        }
    }
    Ok(())
}
