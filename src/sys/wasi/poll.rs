//! The poll plan: `watch` each socket, one `wasi:io/poll.poll`, `settle` what became ready.

use std::io;
use std::time::Duration;

use wasi::clocks::monotonic_clock;
use wasi::io::poll::{poll as wasi_poll, Pollable};
use wasi::io::streams::StreamError;

use super::errno::stream_error_to_errno;
use super::graveyard;
use super::io::READ_CHUNK;
use super::{InputEnd, Phase, Socket};
use crate::sys::PollTarget;
use crate::SockEvent;

/// What a socket waits on in one `poll`, and what is already known without waiting.
pub(super) struct Watch<'a> {
    pub(super) recv: Option<&'a Pollable>,
    pub(super) send: Option<&'a Pollable>,
    pub(super) occurred: SockEvent,
}

/// Decides, for one socket, which pollables to wait on and which events hold already.
pub(super) fn watch<'a>(socket: &'a Socket, requested: SockEvent) -> Watch<'a> {
    let state = socket.lock();
    let mut watch = Watch {
        recv: None,
        send: None,
        occurred: SockEvent::empty(),
    };
    match state.phase {
        Phase::Connecting => watch.send = Some(socket.socket_ready()),
        Phase::Listening if requested.contains(SockEvent::RECV) => {
            watch.recv = Some(socket.socket_ready());
        }
        Phase::Listening => {}
        Phase::Connected => {
            if let Some((input, output)) = socket.streams() {
                if requested.contains(SockEvent::RECV) {
                    if state.readable() {
                        watch.occurred |= SockEvent::RECV;
                    } else {
                        watch.recv = Some(socket.input_ready(input));
                    }
                }
                if requested.contains(SockEvent::SEND) {
                    watch.send = Some(socket.output_ready(output));
                }
            }
        }
        Phase::Unconnected | Phase::Failed => {
            // Natively an unconnected or failed socket polls as hung up.
            watch.occurred |= SockEvent::ERR;
        }
    }
    if matches!(state.input_end, Some(InputEnd::Error(_))) || state.pending_error.is_some() {
        watch.occurred |= SockEvent::ERR;
    }
    drop(state);
    watch
}

/// After `poll`: turns ready pollables into events, finishing connects and reading ahead so
/// that a failed stream shows as `ERR`, as natively.
pub(super) fn settle(
    socket: &Socket,
    requested: SockEvent,
    recv_ready: bool,
    send_ready: bool,
) -> SockEvent {
    let mut state = socket.lock();
    let mut occurred = SockEvent::empty();
    match state.phase {
        Phase::Connecting if send_ready => {
            socket.connect_finish(&mut state);
            match state.phase {
                Phase::Connected => occurred |= SockEvent::SEND,
                Phase::Failed => occurred |= requested | SockEvent::ERR,
                _ => {}
            }
        }
        Phase::Listening if recv_ready => occurred |= SockEvent::RECV,
        Phase::Connected => {
            if recv_ready {
                socket.fill(&mut state, READ_CHUNK);
                if state.readable() {
                    occurred |= SockEvent::RECV;
                }
            }
            if send_ready {
                if let Some((_, output)) = socket.streams() {
                    match output.check_write() {
                        Ok(0) => {}
                        Ok(budget) => {
                            state.write_budget = usize::try_from(budget).unwrap_or(usize::MAX);
                            occurred |= SockEvent::SEND;
                        }
                        Err(StreamError::Closed) => occurred |= SockEvent::SEND,
                        Err(StreamError::LastOperationFailed(err)) => {
                            state.pending_error = Some(stream_error_to_errno(&err));
                            occurred |= SockEvent::SEND;
                        }
                    }
                }
            }
        }
        _ => {}
    }
    if matches!(state.input_end, Some(InputEnd::Error(_))) || state.pending_error.is_some() {
        occurred |= SockEvent::ERR;
    }
    occurred & (requested | SockEvent::ERR)
}

/// One `wasi:io/poll.poll` over every socket's pollables and a monotonic-clock timer.
/// Socks whose events hold already (buffered data, a failed connect) make the timer zero, so
/// the others are still reported in the same call.
pub(crate) fn poll<T: PollTarget>(targets: &mut [T], timeout: Duration) -> io::Result<()> {
    graveyard::sweep();
    // Per target: the events known without waiting, and the indices of its recv and send
    // pollables in the one list given to `poll`.
    let mut plans = Vec::with_capacity(targets.len());
    let ready = {
        let mut pollables: Vec<&Pollable> = Vec::with_capacity(targets.len() * 2 + 1);
        for target in targets.iter() {
            let plan = match target.socket() {
                Some(socket) => {
                    let watch = watch(socket, target.requested());
                    let recv = push(&mut pollables, watch.recv);
                    let send = push(&mut pollables, watch.send);
                    (watch.occurred, recv, send)
                }
                None => (SockEvent::empty(), None, None),
            };
            plans.push(plan);
        }
        let known_now = plans.iter().any(|(occurred, ..)| !occurred.is_empty());
        let nanos = if known_now {
            0
        } else {
            u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)
        };
        let timer = monotonic_clock::subscribe_duration(nanos);
        pollables.push(&timer);
        let mut ready = vec![false; pollables.len()];
        for index in wasi_poll(&pollables) {
            if let Some(flag) = ready.get_mut(index as usize) {
                *flag = true;
            }
        }
        ready
    };

    let mut stuck = Vec::new();
    for (index, (target, (known, recv, send))) in targets.iter_mut().zip(plans).enumerate() {
        let is_ready = |slot: Option<usize>| slot.is_some_and(|i| ready[i]);
        let occurred = match target.socket() {
            Some(socket) => {
                let requested = target.requested();
                let settled = settle(socket, requested, is_ready(recv), is_ready(send));
                if send_stuck(requested, is_ready(send), settled) {
                    stuck.push((index, known | settled));
                }
                known | settled
            }
            None => SockEvent::empty(),
        };
        target.set_occurred(occurred);
    }
    if !stuck.is_empty() {
        let sockets: Vec<(usize, &Socket)> = stuck
            .iter()
            .enumerate()
            .filter_map(|(at, &(index, _))| Some((at, targets[index].socket()?)))
            .collect();
        let mut now_sendable = Vec::new();
        retry_sends(&sockets, |at| now_sendable.push(at));
        drop(sockets);
        for at in now_sendable {
            let (index, before) = stuck[at];
            targets[index].set_occurred(before | SockEvent::SEND);
        }
    }
    Ok(())
}

/// How many sockets [`retry_sends`] polls at a time: each costs the budget two ready
/// operations (its pollable, then its `check-write`), well under tokio's 128 per turn.
const RETRY_CHUNK: usize = 32;

/// The longest a retry poll waits: only reached if a pollable that was ready is not any more.
const RETRY_WAIT_NANOS: u64 = 10_000_000;

/// Whether `settle` found `socket` not writable although its SEND pollable was ready: what a
/// spent budget looks like (see [`retry_sends`]).
pub(super) fn send_stuck(requested: SockEvent, send_ready: bool, occurred: SockEvent) -> bool {
    send_ready && requested.contains(SockEvent::SEND) && !occurred.contains(SockEvent::SEND)
}

/// Asks again, after a yield, whether the sockets whose send got stuck can send; calls
/// `sent(index)` for each that can (`index` is the caller's, as given in `stuck`).
///
/// wasmtime runs the guest inside one tokio task, and tokio lets a task do 128 ready I/O
/// operations per turn (its cooperative budget). A `poll` that finds many pollables ready
/// spends it, and until the task yields every `check-write` answers 0 although its pollable is
/// ready: those sockets never send, the next wait finds the same pollables ready and spends
/// the budget again, for ever (1,000 echoing connections stall so). A `poll` whose pollables
/// the spent budget holds back yields, and the task comes back with a new budget; so the stuck
/// sockets are polled again, a few at a time, and only then asked to `check-write`.
pub(super) fn retry_sends(stuck: &[(usize, &Socket)], mut sent: impl FnMut(usize)) {
    for chunk in stuck.chunks(RETRY_CHUNK) {
        let outputs: Vec<Option<&Pollable>> = chunk
            .iter()
            .map(|(_, socket)| {
                socket
                    .streams()
                    .map(|(_, output)| socket.output_ready(output))
            })
            .collect();
        let mut pollables: Vec<&Pollable> = outputs.iter().flatten().copied().collect();
        let timer = monotonic_clock::subscribe_duration(RETRY_WAIT_NANOS);
        pollables.push(&timer);
        let ready = wasi_poll(&pollables);
        drop(pollables);
        let mut at = 0;
        for ((index, socket), output) in chunk.iter().zip(&outputs) {
            if output.is_none() {
                continue;
            }
            let is_ready = ready.contains(&(at as u32));
            at += 1;
            if is_ready && settle(socket, SockEvent::SEND, false, true).contains(SockEvent::SEND) {
                sent(*index);
            }
        }
        drop(timer);
    }
}

/// Appends `pollable` (if any) to the poll list; its index there.
fn push<'a>(pollables: &mut Vec<&'a Pollable>, pollable: Option<&'a Pollable>) -> Option<usize> {
    pollable.map(|pollable| {
        pollables.push(pollable);
        pollables.len() - 1
    })
}
