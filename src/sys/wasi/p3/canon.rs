//! The component-model built-ins this backend calls directly: waitable-sets, subtasks,
//! `thread.yield`, the stream and future intrinsics of the `wasip3` bindings, and the two
//! async-lowered imports whose calls must outlive one Rust call (`tcp-socket.connect` and
//! `monotonic-clock.wait-until`).
//!
//! `wit_bindgen::block_on` cannot keep an operation in flight from one call to the next (it
//! returns only when everything started inside it has finished), so reads, writes, connects
//! and timers are started here and completed by the events of one waitable-set (`reactor`).

use wasip3::sockets::types::{ErrorCode, TcpSocket};
use wasip3::wit_bindgen::rt::async_support::{FutureVtable, StreamVtable};
use wasip3::wit_future::FuturePayload;
use wasip3::wit_stream::StreamPayload;

/// `waitable-set.wait`'s event codes.
pub(super) const EVENT_SUBTASK: u32 = 1;
pub(super) const EVENT_STREAM_READ: u32 = 2;
pub(super) const EVENT_STREAM_WRITE: u32 = 3;
pub(super) const EVENT_FUTURE_READ: u32 = 4;

/// A subtask's status: it returned (its results are written).
pub(super) const STATUS_RETURNED: u32 = 2;

/// What a stream or future read or write did: a packed return code or event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transfer {
    /// In flight; its event comes later.
    Blocked,
    Completed(usize),
    /// The other end is gone (after this many items).
    Dropped(usize),
    Cancelled(usize),
}

impl Transfer {
    pub(super) fn from_code(code: u32) -> Transfer {
        if code == u32::MAX {
            return Transfer::Blocked;
        }
        let count = (code >> 4) as usize;
        match code & 0xf {
            0 => Transfer::Completed(count),
            1 => Transfer::Dropped(count),
            _ => Transfer::Cancelled(count),
        }
    }
}

#[link(wasm_import_module = "$root")]
extern "C" {
    #[link_name = "[waitable-set-new]"]
    fn waitable_set_new() -> u32;
    #[link_name = "[waitable-join]"]
    fn waitable_join(waitable: u32, set: u32);
    #[link_name = "[waitable-set-wait]"]
    fn waitable_set_wait(set: u32, payload: *mut [u32; 2]) -> u32;
    #[link_name = "[waitable-set-poll]"]
    fn waitable_set_poll(set: u32, payload: *mut [u32; 2]) -> u32;
    #[link_name = "[subtask-cancel]"]
    fn subtask_cancel(subtask: u32) -> u32;
    #[link_name = "[subtask-drop]"]
    fn subtask_drop(subtask: u32);
    #[link_name = "[thread-yield]"]
    fn thread_yield() -> bool;
}

#[link(wasm_import_module = "wasi:clocks/monotonic-clock@0.3.2")]
extern "C" {
    #[link_name = "[async-lower]wait-until"]
    fn wait_until(when: i64) -> u32;
}

#[link(wasm_import_module = "wasi:sockets/types@0.3.2")]
extern "C" {
    #[link_name = "[async-lower][method]tcp-socket.connect"]
    fn tcp_connect(params: *mut u8, results: *mut u8) -> u32;
}

/// One event of a waitable-set: (code, waitable, payload).
pub(super) type Event = (u32, u32, u32);

pub(super) fn new_set() -> u32 {
    // SAFETY: a built-in without arguments.
    unsafe { waitable_set_new() }
}

/// Joins `waitable` to `set`, or (with 0) takes it out of any set.
pub(super) fn join(waitable: u32, set: u32) {
    // SAFETY: the caller owns `waitable` and `set` (a wrong handle traps, it cannot corrupt).
    unsafe { waitable_join(waitable, set) }
}

/// Blocks until one waitable of `set` has an event. Only where the host allows blocking
/// (`entry::may_block`): elsewhere the host traps.
pub(super) fn wait(set: u32) -> Event {
    let mut payload = [0u32; 2];
    // SAFETY: `payload` is the two words the built-in writes.
    let code = unsafe { waitable_set_wait(set, &mut payload) };
    (code, payload[0], payload[1])
}

/// An event of `set` that is already there, without blocking.
pub(super) fn poll(set: u32) -> Option<Event> {
    let mut payload = [0u32; 2];
    // SAFETY: `payload` is the two words the built-in writes.
    let code = unsafe { waitable_set_poll(set, &mut payload) };
    (code != 0).then_some((code, payload[0], payload[1]))
}

/// Lets the host run (and its I/O progress) once; only where blocking is allowed.
pub(super) fn yield_now() {
    // SAFETY: a built-in without arguments; whether the task was cancelled is of no use here
    // (a `run` export is not cancelled by wasmtime).
    unsafe {
        thread_yield();
    }
}

/// A subtask (an async-lowered call in flight) of `packed`, the call's return value, and
/// its status.
pub(super) fn subtask_of(packed: u32) -> (u32, u32) {
    (packed >> 4, packed & 0xf)
}

/// Cancels a subtask that left every set, blocking until the callee acknowledges; its last
/// status.
pub(super) fn cancel_subtask(subtask: u32) -> u32 {
    // SAFETY: the caller owns the subtask, which is in no set and not yet resolved-and-dropped.
    unsafe { subtask_cancel(subtask) }
}

pub(super) fn drop_subtask(subtask: u32) {
    // SAFETY: the caller owns the subtask, which has resolved (returned or cancelled).
    unsafe { subtask_drop(subtask) }
}

/// Starts `monotonic-clock.wait-until(when)`: `None` when it returned at once (the time has
/// come), else its subtask.
pub(super) fn start_timer(when: u64) -> Option<u32> {
    // SAFETY: one i64 parameter, no results.
    let packed = unsafe { wait_until(when as i64) };
    let (subtask, status) = subtask_of(packed);
    (status != STATUS_RETURNED && subtask != 0).then_some(subtask)
}

/// The canonical-ABI area of `tcp-socket.connect`: its parameters (the socket's handle, then
/// an `ip-socket-address`: 36 bytes), then its `result<_, error-code>` (20 bytes), laid out as
/// the `wasip3` bindings lay them out for the same import.
#[repr(C, align(4))]
pub(super) struct ConnectArea {
    params: [u8; 36],
    result: [u8; 20],
}

impl ConnectArea {
    pub(super) fn new(
        socket: &TcpSocket,
        addr: &wasip3::sockets::types::IpSocketAddress,
    ) -> Box<ConnectArea> {
        use wasip3::sockets::types::IpSocketAddress;
        let mut area = Box::new(ConnectArea {
            params: [0; 36],
            result: [0; 20],
        });
        let p = &mut area.params;
        p[0..4].copy_from_slice(&socket.handle().to_le_bytes());
        match addr {
            IpSocketAddress::Ipv4(v4) => {
                p[4] = 0;
                p[8..10].copy_from_slice(&v4.port.to_le_bytes());
                let (a, b, c, d) = v4.address;
                p[10..14].copy_from_slice(&[a, b, c, d]);
            }
            IpSocketAddress::Ipv6(v6) => {
                p[4] = 1;
                p[8..10].copy_from_slice(&v6.port.to_le_bytes());
                p[12..16].copy_from_slice(&v6.flow_info.to_le_bytes());
                let (a, b, c, d, e, f, g, h) = v6.address;
                for (i, segment) in [a, b, c, d, e, f, g, h].iter().enumerate() {
                    p[16 + 2 * i..18 + 2 * i].copy_from_slice(&segment.to_le_bytes());
                }
                p[32..36].copy_from_slice(&v6.scope_id.to_le_bytes());
            }
        }
        area
    }

    /// Starts the connect: `Ok(subtask)` while it runs, `Err(result)` when it finished at once.
    pub(super) fn start(&mut self) -> Result<u32, Result<(), ErrorCode>> {
        // SAFETY: the area is the parameters and results of this import, and stays where it is
        // (boxed, kept with the socket) until the subtask has returned or been cancelled.
        let packed = unsafe { tcp_connect(self.params.as_mut_ptr(), self.result.as_mut_ptr()) };
        let (subtask, status) = subtask_of(packed);
        if status == STATUS_RETURNED || subtask == 0 {
            Err(self.result())
        } else {
            Ok(subtask)
        }
    }

    /// The connect's result, once its subtask returned.
    pub(super) fn result(&mut self) -> Result<(), ErrorCode> {
        // SAFETY: the host wrote a `result<_, error-code>` here when the subtask returned (the
        // same layout `lift` reads for the futures of `send` and `receive`).
        unsafe { (result_vtable().lift)(self.result.as_mut_ptr()) }
    }
}

fn bytes() -> &'static StreamVtable<u8> {
    <u8 as StreamPayload>::VTABLE
}

fn sockets() -> &'static StreamVtable<TcpSocket> {
    <TcpSocket as StreamPayload>::VTABLE
}

fn result_vtable() -> &'static FutureVtable<Result<(), ErrorCode>> {
    <Result<(), ErrorCode> as FuturePayload>::VTABLE
}

/// A new `stream<u8>`: (readable end, writable end).
pub(super) fn new_byte_stream() -> (u32, u32) {
    // SAFETY: a built-in without arguments.
    let handles = unsafe { (bytes().new)() };
    (handles as u32, (handles >> 32) as u32)
}

/// The readable end `handle` as the bindings' reader, to hand to an import (`send`).
pub(super) fn byte_reader(handle: u32) -> wasip3::wit_bindgen::rt::async_support::StreamReader<u8> {
    wasip3::wit_bindgen::rt::async_support::StreamReader::new(handle, bytes())
}

/// Starts a read of up to `len` bytes into `buf`.
///
/// # Safety
/// `buf` must stay valid for `len` bytes, and untouched, until the read's event came or it
/// was cancelled.
pub(super) unsafe fn read_bytes(stream: u32, buf: *mut u8, len: usize) -> Transfer {
    // SAFETY: the caller's contract.
    Transfer::from_code(unsafe { (bytes().start_read)(stream, buf, len) })
}

/// Starts a write of `len` bytes from `buf`.
///
/// # Safety
/// `buf` must stay valid for `len` bytes, and unchanged, until the write's event came or it
/// was cancelled.
pub(super) unsafe fn write_bytes(stream: u32, buf: *const u8, len: usize) -> Transfer {
    // SAFETY: the caller's contract.
    Transfer::from_code(unsafe { (bytes().start_write)(stream, buf, len) })
}

/// Cancels the read in flight on `stream` (which left every set), blocking until the host
/// answers; what the read did.
pub(super) fn cancel_bytes_read(stream: u32) -> Transfer {
    // SAFETY: the caller owns the stream, which has a read in flight.
    Transfer::from_code(unsafe { (bytes().cancel_read)(stream) })
}

/// Cancels the write in flight on `stream` (which left every set), blocking until the host
/// answers; what the write did.
pub(super) fn cancel_bytes_write(stream: u32) -> Transfer {
    // SAFETY: the caller owns the stream, which has a write in flight.
    Transfer::from_code(unsafe { (bytes().cancel_write)(stream) })
}

pub(super) fn drop_bytes_reader(stream: u32) {
    // SAFETY: the caller owns the readable end, with no read in flight.
    unsafe { (bytes().drop_readable)(stream) }
}

pub(super) fn drop_bytes_writer(stream: u32) {
    // SAFETY: the caller owns the writable end, with no write in flight.
    unsafe { (bytes().drop_writable)(stream) }
}

/// Starts a read of one accepted socket into `slot` (its handle).
///
/// # Safety
/// `slot` must stay valid, and untouched, until the read's event came or it was cancelled.
pub(super) unsafe fn read_socket(stream: u32, slot: *mut u32) -> Transfer {
    // SAFETY: the caller's contract; a socket's canonical form is its 32-bit handle.
    Transfer::from_code(unsafe { (sockets().start_read)(stream, slot.cast(), 1) })
}

pub(super) fn cancel_socket_read(stream: u32) -> Transfer {
    // SAFETY: the caller owns the stream, which has a read in flight.
    Transfer::from_code(unsafe { (sockets().cancel_read)(stream) })
}

pub(super) fn drop_socket_reader(stream: u32) {
    // SAFETY: the caller owns the readable end, with no read in flight.
    unsafe { (sockets().drop_readable)(stream) }
}

/// The socket whose handle a completed read put in a slot.
pub(super) fn take_socket(handle: u32) -> TcpSocket {
    // SAFETY: the host transferred ownership of this handle to us with the completed read.
    unsafe { TcpSocket::from_handle(handle) }
}

/// The canonical-ABI area of a `result<_, error-code>`, read from a `future`.
#[repr(C, align(4))]
pub(super) struct ResultArea([u8; 20]);

impl ResultArea {
    pub(super) fn new() -> Box<ResultArea> {
        Box::new(ResultArea([0; 20]))
    }

    /// Starts reading the future `future` into this area.
    ///
    /// # Safety
    /// The area must stay where it is until the read's event came or it was cancelled.
    pub(super) unsafe fn start_read(&mut self, future: u32) -> Transfer {
        // SAFETY: the caller's contract.
        Transfer::from_code(unsafe { (result_vtable().start_read)(future, self.0.as_mut_ptr()) })
    }

    /// The value a completed read wrote.
    pub(super) fn take(&mut self) -> Result<(), ErrorCode> {
        // SAFETY: a completed future read wrote a `result<_, error-code>` here.
        unsafe { (result_vtable().lift)(self.0.as_mut_ptr()) }
    }
}

pub(super) fn cancel_result_read(future: u32) -> Transfer {
    // SAFETY: the caller owns the future, which has a read in flight.
    Transfer::from_code(unsafe { (result_vtable().cancel_read)(future) })
}

pub(super) fn drop_result_reader(future: u32) {
    // SAFETY: the caller owns the readable end, with no read in flight.
    unsafe { (result_vtable().drop_readable)(future) }
}
