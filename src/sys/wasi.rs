//! WASI: what the 0.2 and 0.3 backends share, and the two backends side by side.
//!
//! Both are the same `Sock` over `wasi:sockets` TCP with a read-ahead buffer for `peek`
//! (WASI has none); they differ in how they wait. WASI 0.2 (`p2/`) hands `wasi:io/poll.poll`
//! the whole list of pollables at every wait; WASI 0.3 (`p3/`) keeps each socket's reads and
//! writes in flight, joined to one component-model `waitable-set`, so a wait costs what is
//! ready. `build.rs` names the one in this build `cfg(wasi_p3)` (the `wasip3` feature on
//! `wasm32-wasip2`, or the `wasm32-wasip3` target) and `src/sys/mod.rs` picks it.
//!
//! Shared here, once:
//!
//! * `state`: the phases of a socket, how its input ended, the read-ahead, and the events a
//!   socket's state gives without waiting (the rules `poll(2)` follows natively);
//! * `errno`: errno values as `io::Error`;
//! * `addr`: `std::net` addresses ⇄ `wasi:sockets` addresses, and the texts of a failed lookup;
//! * `opt`: which options WASI has, and `SO_ERROR` from the state.
//!
//! `p2/` and `p3/` have the same files with the same functions in the same order (`mod.rs`,
//! `errno`, `addr`, `tcp`, `adopt`, `io`, `poll`, `opt`, `registry`, `graveyard`), so a diff of
//! the two shows only what the versions do differently; `p3/` adds the component-model
//! built-ins (`canon`), its one waitable-set (`reactor`) and the program's entry (`entry`).

mod addr;
mod errno;
mod opt;
mod state;

#[cfg(not(wasi_p3))]
pub(crate) mod p2;
#[cfg(wasi_p3)]
pub(crate) mod p3;

/// Neither WASI 0.2 nor 0.3 has a way to duplicate a socket resource.
pub(crate) fn try_clone<S>(_socket: &S) -> std::io::Result<S> {
    Err(crate::error::unsupported("duplicating a socket"))
}
