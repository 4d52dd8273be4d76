//! The poll plan: `watch` each socket, one `wasi:io/poll.poll`, `settle` what became ready.

use std::io;
use std::time::Duration;

use wasi::clocks::monotonic_clock;
use wasi::io::poll::{poll as wasi_poll, Pollable};
use wasi::io::streams::StreamError;

use super::super::state::Phase;
use super::errno::stream_error_to_errno;
use super::graveyard;
use super::io::{check_write, READ_CHUNK};
use super::Socket;
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
        occurred: state.known_events(requested),
    };
    match state.phase {
        Phase::Connecting => watch.send = Some(socket.socket_ready()),
        Phase::Listening if requested.contains(SockEvent::RECV) => {
            watch.recv = Some(socket.socket_ready());
        }
        Phase::Connected => {
            if let Some((input, output)) = socket.streams() {
                if requested.contains(SockEvent::RECV) && !state.readable() {
                    watch.recv = Some(socket.input_ready(input));
                }
                if requested.contains(SockEvent::SEND) {
                    watch.send = Some(socket.output_ready(output));
                }
                // After our own shutdown of the sending half, the peer's end of stream makes a
                // hang-up, reported whatever was requested: watch the input for it. Only with
                // nothing read ahead, so this never reads more than one chunk nobody asked for.
                if watch.recv.is_none()
                    && state.send_shut
                    && state.input_end.is_none()
                    && state.read_ahead.is_empty()
                {
                    watch.recv = Some(socket.input_ready(input));
                }
            }
        }
        // Known without waiting (`known_events`).
        Phase::Listening | Phase::Unconnected | Phase::Failed => {}
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
                    match check_write(socket, output) {
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
    if state.in_error() {
        occurred |= SockEvent::ERR;
    }
    occurred & (requested | SockEvent::ERR)
}

/// One `wasi:io/poll.poll` over every socket's pollables and a monotonic-clock timer.
/// Socks whose events hold already (buffered data, a failed connect) make the timer zero, so
/// the others are still reported in the same call.
pub(crate) fn poll<T: PollTarget>(targets: &mut [T], timeout: Duration) -> io::Result<()> {
    let graves = graveyard::watched();
    // Per target: the events known without waiting, and the indices of its recv and send
    // pollables in the one list given to `poll`.
    let mut plans = Vec::with_capacity(targets.len());
    let mut graves_at = 0..0;
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
        graves_at = graves.push_into(&mut pollables);
        let known_now = plans.iter().any(|(occurred, ..)| !occurred.is_empty());
        let timer = monotonic_clock::subscribe_duration(timer_nanos(known_now, timeout));
        pollables.push(&timer);
        let mut ready = Vec::new();
        poll_into(&pollables, &mut ready);
        ready
    };
    // A buried socket whose write is done ended the wait early: close it now (the front end
    // waits again for the time left when no target is ready).
    graves.sweep_if_ready(graves_at, &ready);

    for (target, (known, recv, send)) in targets.iter_mut().zip(plans) {
        let is_ready = |slot: Option<usize>| slot.is_some_and(|i| ready[i]);
        let occurred = match target.socket() {
            Some(socket) => {
                let settled = settle(socket, target.requested(), is_ready(recv), is_ready(send));
                known | settled
            }
            None => SockEvent::empty(),
        };
        target.set_occurred(occurred);
    }
    Ok(())
}

/// The wait's timer: `timeout`, or zero when some events hold already (`known_now`), so
/// that the others are only looked at, in the same `poll`.
pub(super) fn timer_nanos(known_now: bool, timeout: Duration) -> u64 {
    if known_now {
        0
    } else {
        u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One `wasi:io/poll.poll` over `pollables`; `ready` (its allocation reused) gets one flag
/// per pollable, set for those the host found ready.
pub(super) fn poll_into(pollables: &[&Pollable], ready: &mut Vec<bool>) {
    ready.clear();
    ready.resize(pollables.len(), false);
    for index in wasi_poll(pollables) {
        if let Some(flag) = ready.get_mut(index as usize) {
            *flag = true;
        }
    }
}

/// Appends `pollable` (if any) to the poll list; its index there.
pub(super) fn push<'a>(
    pollables: &mut Vec<&'a Pollable>,
    pollable: Option<&'a Pollable>,
) -> Option<usize> {
    pollable.map(|pollable| {
        pollables.push(pollable);
        pollables.len() - 1
    })
}
