//! Linux only: run a call on another thread and go on only once that thread is observably
//! blocked in the kernel (`/proc/self/task/TID/stat` state `S`, `/proc/self/task/TID/syscall`
//! naming the call), so a cross-thread test really exercises "wake a blocked wait" instead of
//! usually sending or interrupting before the other thread waits. No sleeps to let it settle:
//! the state is read until it holds, up to [`TIMEOUT`](super::TIMEOUT).

use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use super::TIMEOUT;

/// The system calls a `poll(2)`-based wait blocks in: glibc's `poll()` is the `poll` syscall on
/// x86_64; architectures without one (aarch64) have only `ppoll`.
pub fn poll_syscalls() -> &'static [i64] {
    #[cfg(target_arch = "x86_64")]
    return &[libc::SYS_poll, libc::SYS_ppoll];
    #[cfg(not(target_arch = "x86_64"))]
    return &[libc::SYS_ppoll];
}

/// The system call a condition-variable sleep blocks in.
pub fn futex_syscalls() -> &'static [i64] {
    &[libc::SYS_futex]
}

/// The kernel's ids of a thread: its task id (for `/proc`) and its `pthread_t` (for
/// `pthread_kill`).
#[derive(Clone, Copy, Debug)]
pub struct ThreadIds {
    pub tid: libc::pid_t,
    pub pthread: libc::pthread_t,
}

/// A thread seen blocked in a system call: which one, and its arguments (as the kernel prints
/// them: raw register values).
#[derive(Clone, Debug)]
pub struct BlockedIn {
    pub syscall: i64,
    pub args: Vec<u64>,
}

impl BlockedIn {
    /// `poll(2)`'s timeout argument in milliseconds (-1: forever), when the call is `poll`
    /// (`ppoll` passes a pointer instead).
    pub fn poll_timeout_ms(&self) -> Option<i32> {
        #[cfg(target_arch = "x86_64")]
        if self.syscall == libc::SYS_poll {
            // The third argument, an `int` in a 64-bit register: the low half is the value.
            return Some(self.args[2] as u32 as i32);
        }
        None
    }
}

fn ids() -> ThreadIds {
    // SAFETY: gettid and pthread_self have no preconditions and cannot fail.
    unsafe {
        ThreadIds {
            tid: libc::syscall(libc::SYS_gettid) as libc::pid_t,
            pthread: libc::pthread_self(),
        }
    }
}

/// What `/proc` says about `tid` now: the blocking system call if the thread sleeps in one.
pub fn blocked_in(tid: libc::pid_t) -> Option<BlockedIn> {
    let syscall = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // stat is "tid (comm) S ...": the state follows the last ')'.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    if state != "S" {
        return None;
    }
    // "running", "-1 sp pc" (blocked, not in a system call) or "nr arg1 ... arg6 sp pc".
    let mut fields = syscall.split_whitespace();
    let number: i64 = fields.next()?.parse().ok()?;
    if number < 0 {
        return None;
    }
    let args = fields
        .take(6)
        .map(|field| u64::from_str_radix(field.trim_start_matches("0x"), 16).ok())
        .collect::<Option<Vec<u64>>>()?;
    Some(BlockedIn {
        syscall: number,
        args,
    })
}

/// Reads `/proc` until `tid` sleeps in one of `syscalls` and `extra` holds for it; fails the
/// test after [`TIMEOUT`], or at once if `finished()` says the thread already returned (the
/// call did not block, or stopped blocking too early).
#[track_caller]
pub fn wait_until_blocked(
    tid: libc::pid_t,
    syscalls: &[i64],
    finished: impl Fn() -> bool,
    extra: impl Fn(&BlockedIn) -> bool,
) -> BlockedIn {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(blocked) = blocked_in(tid) {
            if syscalls.contains(&blocked.syscall) && extra(&blocked) {
                return blocked;
            }
        }
        assert!(
            !finished(),
            "the thread returned instead of blocking in one of the system calls {syscalls:?}"
        );
        assert!(
            Instant::now() < deadline,
            "thread {tid} did not block in one of the system calls {syscalls:?} within {TIMEOUT:?} \
             (last seen: {:?})",
            blocked_in(tid)
        );
        // Reading /proc is the wait; a short pause keeps it from starving the other thread.
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Spawns `call` on a scoped thread and returns once that thread is blocked in one of
/// `syscalls` (see [`wait_until_blocked`]), with the thread's ids and what it is blocked in.
#[track_caller]
pub fn spawn_blocked<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    syscalls: &[i64],
    call: impl FnOnce() -> T + Send + 'scope,
) -> (ScopedJoinHandle<'scope, T>, ThreadIds, BlockedIn) {
    let (tx, rx) = mpsc::channel();
    let handle = scope.spawn(move || {
        tx.send(ids()).expect("the spawning thread listens");
        call()
    });
    let ids = rx.recv_timeout(TIMEOUT).expect("the thread starts");
    let blocked = wait_until_blocked(ids.tid, syscalls, || handle.is_finished(), |_| true);
    (handle, ids, blocked)
}
