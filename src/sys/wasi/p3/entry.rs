//! Entering the program where the host allows blocking: `wasi:cli/run@0.3`.
//!
//! WASI 0.3 lets a task block (`waitable-set.wait`, a synchronous cancel) only inside an
//! `async`-typed export; a plain `fn main` is exported as the synchronous `wasi:cli/run@0.2`,
//! where wasmtime traps on the first wait ("cannot block a synchronous task before
//! returning"). [`wasip3_main!`](crate::wasip3_main) exports the async `wasi:cli/run@0.3.2`
//! beside it (wasmtime prefers it when a component exports both); its body calls wasi-libc's
//! `__main_void`, the C `main` rustc emits for a Rust binary (and for libtest's generated
//! `main`), so the program's ordinary `main` runs unchanged where blocking is allowed.
//!
//! Whether the program came in that way is the one thing this backend can know: every call
//! that may block checks it first and answers `Unsupported`, naming the fix, instead of
//! letting the host trap. What it cannot see: a program entered through another async export
//! of its own (a `wasi:http` handler) may block too, and must call [`run_main`]'s
//! [`allow_blocking`] first.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

pub use wasip3;

use super::{graveyard, reactor};

static MAY_BLOCK: AtomicBool = AtomicBool::new(false);

/// Declares that this task was entered through an async export, where the host allows
/// blocking; [`wasip3_main!`](crate::wasip3_main) does it for `main`. Call it first in an
/// async export of your own (a `wasi:http` handler) before using sockets there.
pub fn allow_blocking() {
    MAY_BLOCK.store(true, Ordering::Release);
}

/// `Ok` where the host allows blocking, else `Unsupported` with what to add.
pub(super) fn may_block() -> io::Result<()> {
    if MAY_BLOCK.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "WASI 0.3 sockets can wait only in a program entered through wasi:cli/run@0.3: \
             add `bitcoin_sock::wasip3_main!();` to the crate root (the host forbids \
             blocking in a plain `fn main`)",
        ))
    }
}

/// The body of the `wasi:cli/run@0.3` export of [`wasip3_main!`](crate::wasip3_main): runs
/// the program's `main`, lets the sockets closed with bytes unsent finish (for at most
/// [`MAX_WAIT_FOR_IO`](crate::MAX_WAIT_FOR_IO)), stops the timer, and returns whether it
/// succeeded (an exit code other than 0 and 1, which the export's result cannot carry, exits
/// here).
pub fn run_main() -> bool {
    extern "C" {
        /// wasi-libc's `main` without arguments: what rustc emits for a binary's `main`.
        fn __main_void() -> i32;
    }
    allow_blocking();
    // SAFETY: called once, as wasi-libc's `_start` would (which the host does not call when it
    // enters through this export).
    let code = unsafe { __main_void() };
    graveyard::flush(crate::MAX_WAIT_FOR_IO);
    reactor::stop_timer();
    match code {
        0 => true,
        // The export's `Err` is exit code 1.
        1 => false,
        other => std::process::exit(other),
    }
}

/// Exports `wasi:cli/run@0.3` running the program's `main` ([`crate::wasip3_main`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __wasip3_main {
    () => {
        const _: () = {
            struct BitcoinSockMain;
            impl $crate::__wasip3_entry::wasip3::exports::cli::run::Guest for BitcoinSockMain {
                async fn run() -> ::core::result::Result<(), ()> {
                    if $crate::__wasip3_entry::run_main() {
                        Ok(())
                    } else {
                        Err(())
                    }
                }
            }
            $crate::__wasip3_entry::wasip3::cli::command::export!(
                BitcoinSockMain with_types_in $crate::__wasip3_entry::wasip3
            );
        };
    };
}
