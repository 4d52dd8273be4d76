//! The benchmarks: every figure of `bitcoin-sock` beside its baseline, measured in the same run.
//!
//! Each figure is printed as a ratio to its baseline, so the noise of a busy 2-core machine
//! cancels out.
//!
//! ```sh
//! cargo bench --bench sock                           # native: a thread per side
//! cargo bench --bench sock --target wasm32-wasip2    # in wasmtime: one thread drives both sides
//! cargo bench --bench sock -- --quick bulk memory    # smaller sizes; only the named workloads
//! ```
//!
//! Workloads (names for the command line): `bulk`, `pingpong`, `terminator`, `wait_many`,
//! `memory`, `unix` (native Unix only: Unix-domain sockets), `bufsock`, `sockman` (`SockMan`:
//! idle-many, echo, memory; in wasm also the host's `poll` alone), `close` (dropping a sock
//! whose send buffer is full, beside one that is not). Each measurement runs
//! several rounds (3 to 15), ours and the baseline alternating,
//! and the best round of each is kept (noise only ever adds time). Natively the two threads of
//! a measurement are pinned to CPUs (Linux), the same way for ours and the baseline.
//! BENCHMARKS.md has the latest figures.
//!
//! In wasmtime there are no threads: both ends of a connection live in this one instance and
//! the loops drive them in turn. The `std::net` baseline there is `std::net` in non-blocking
//! mode with wasi-libc's `poll()` as its wait: spinning on `WouldBlock` alone stalls for good,
//! because wasmtime moves a stream's buffered output to the host socket only while the guest
//! is inside `wasi:io/poll`.
//!
//! `harness.rs` holds what every workload shares and says how a workload is added; each other
//! file is one workload, its native and wasm versions side by side.

mod bufsock;
mod bulk;
mod close;
mod harness;
mod memory;
mod pingpong;
mod sockman;
mod terminator;
#[cfg(unix)]
mod unix_domain;
mod wait_many;

use std::time::Instant;

// WASI 0.3 (`--features wasip3`): `main` entered where sockets may wait; elsewhere nothing.
bitcoin_sock::wasip3_main!();

use harness::{Config, Report, Result};

/// One workload: the word that selects it on the command line, and its run.
struct Workload {
    name: &'static str,
    run: fn(&Config, &mut Report) -> Result<()>,
}

/// Every workload, in the order they run and print.
const WORKLOADS: &[Workload] = &[
    Workload {
        name: "bulk",
        run: bulk::run,
    },
    Workload {
        name: "pingpong",
        run: pingpong::run,
    },
    Workload {
        name: "terminator",
        run: terminator::run,
    },
    Workload {
        name: "wait_many",
        run: wait_many::run,
    },
    Workload {
        name: "memory",
        run: memory::run,
    },
    #[cfg(unix)]
    Workload {
        name: "unix",
        run: unix_domain::run,
    },
    Workload {
        name: "bufsock",
        run: bufsock::run,
    },
    Workload {
        name: "sockman",
        run: sockman::run,
    },
    Workload {
        name: "close",
        run: close::run,
    },
];

fn main() -> Result<()> {
    #[cfg(not(target_os = "wasi"))]
    if let [_, flag, addr, count] = std::env::args().collect::<Vec<_>>().as_slice() {
        if flag == wait_many::HOLD_ARG {
            return wait_many::hold_connections(addr, count);
        }
    }
    let config = Config::from_args();
    let platform = if cfg!(wasi_p3) {
        "wasm32-wasip2 in wasmtime, WASI 0.3 backend"
    } else if cfg!(target_os = "wasi") {
        "wasm32-wasip2 in wasmtime"
    } else {
        "native"
    };
    println!(
        "bitcoin-sock benchmarks, {platform}{}",
        if config.quick { ", --quick sizes" } else { "" }
    );
    let started = Instant::now();
    let mut report = Report { rows: Vec::new() };
    for workload in WORKLOADS {
        if config.runs(workload.name) {
            (workload.run)(&config, &mut report)?;
        }
    }
    report.print_summary(platform);
    println!("total time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
