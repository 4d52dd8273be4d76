//! The node example's outbound peers kept (examples/node/outbound.rs): when each `--connect`
//! target is tried again, with the clock passed in. No sockets, so these run natively and in
//! wasmtime alike; the transit-fault scenarios (scripts/transit-faults.sh) run the same logic
//! against bcoin through a proxy that resets and restarts.

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

#[allow(dead_code)]
#[path = "../examples/node/outbound.rs"]
mod outbound;

use std::time::{Duration, Instant};

use outbound::{Backoff, Lost, Outbound, Status, ONE_SHOT_ATTEMPTS};

const MS: Duration = Duration::from_millis(1);

fn one(give_up_after: Option<u32>, now: Instant) -> Outbound<u32> {
    Outbound::new(
        vec!["127.0.0.1:18444".to_owned()],
        Backoff::CORE,
        give_up_after,
        now,
    )
}

#[test]
fn cores_cadence_half_a_second_growing_by_half_capped_at_five() {
    let delays: Vec<u64> = (1..=12)
        .map(|failures| Backoff::CORE.delay(failures).as_millis() as u64)
        .collect();
    assert_eq!(
        delays,
        [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5000, 5000]
    );
    // Zero failures is one; a huge count saturates at the cap.
    assert_eq!(Backoff::CORE.delay(0), 500 * MS);
    assert_eq!(Backoff::CORE.delay(u32::MAX), Backoff::CORE.max);
    let fast = Backoff {
        base: 100 * MS,
        max: 250 * MS,
    };
    assert_eq!(fast.delay(2), 200 * MS);
    assert_eq!(fast.delay(3), 250 * MS);
}

#[test]
fn every_target_is_due_at_start_and_not_again_while_connected() {
    let start = Instant::now();
    let mut targets: Outbound<u32> = Outbound::new(
        vec!["a:1".to_owned(), "b:2".to_owned()],
        Backoff::CORE,
        None,
        start,
    );
    assert_eq!(targets.due(start), [0, 1]);
    assert_eq!(targets.next_deadline(), Some(start));
    targets.connected(0, 7);
    targets.connected(1, 8);
    assert!(targets.due(start + Duration::from_secs(3600)).is_empty());
    assert_eq!(targets.next_deadline(), None);
    assert_eq!(targets.dest(1), "b:2");
}

#[test]
fn a_refused_connect_is_retried_after_a_growing_delay() {
    let start = Instant::now();
    let mut targets = one(None, start);
    let mut now = start;
    for (failures, want) in [(1, 500), (2, 1000), (3, 1500)] {
        assert_eq!(
            targets.failed(0, now),
            Some(want * MS),
            "failure {failures}"
        );
        // Not due a millisecond early; due at the delay.
        assert!(targets.due(now + want * MS - MS).is_empty());
        assert_eq!(targets.next_deadline(), Some(now + want * MS));
        now += want * MS;
        assert_eq!(targets.due(now), [0]);
    }
    assert_eq!(targets.attempts(0), 3);
}

#[test]
fn a_connection_that_goes_away_is_reconnected_and_a_sync_resets_the_delay() {
    let start = Instant::now();
    let mut targets = one(None, start);
    targets.connected(0, 1);
    // Gone before its sync ended: a failure.
    let lost = targets.update(start, |_| Status::Gone);
    assert_eq!(
        lost,
        [Lost {
            dest: "127.0.0.1:18444".to_owned(),
            retry_in: Some(500 * MS),
            attempts: 1
        }]
    );
    let now = start + 500 * MS;
    assert_eq!(targets.failed(0, now), Some(1000 * MS));
    let now = now + 1000 * MS;
    targets.connected(0, 2);
    // Open, handshaken: nothing changes.
    assert!(targets.update(now, |_| Status::Connecting).is_empty());
    assert!(targets.update(now, |_| Status::Handshaken).is_empty());
    assert!(!targets.done());
    // Synced: done, and the failures forgotten.
    assert!(targets.update(now, |_| Status::Synced).is_empty());
    assert!(targets.done());
    assert_eq!(targets.synced_count(), 1);
    let lost = targets.update(now, |_| Status::Gone);
    assert_eq!(lost[0].retry_in, Some(500 * MS));
    assert_eq!(targets.due(now + 500 * MS), [0]);
}

#[test]
fn the_update_asks_about_the_connected_id() {
    let start = Instant::now();
    let mut targets: Outbound<u32> = Outbound::new(
        vec!["a:1".to_owned(), "b:2".to_owned()],
        Backoff::CORE,
        None,
        start,
    );
    targets.connected(0, 10);
    targets.connected(1, 20);
    let lost = targets.update(start, |id| {
        if id == 20 {
            Status::Gone
        } else {
            Status::Synced
        }
    });
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].dest, "b:2");
    assert_eq!(targets.due(start + 500 * MS), [1]);
}

#[test]
fn a_node_that_only_syncs_gives_up_after_ten_failures_in_a_row() {
    let start = Instant::now();
    let mut targets = one(Some(ONE_SHOT_ATTEMPTS), start);
    let mut now = start;
    for _ in 1..ONE_SHOT_ATTEMPTS {
        let delay = targets.failed(0, now).expect("still trying");
        now += delay;
    }
    assert!(!targets.done());
    assert_eq!(targets.failed(0, now), None);
    // Given up: never due again, and the node is done.
    assert!(targets.due(now + Duration::from_secs(3600)).is_empty());
    assert_eq!(targets.next_deadline(), None);
    assert!(targets.done());
    assert_eq!(targets.synced_count(), 0);
}

#[test]
fn a_listening_node_never_gives_up() {
    let start = Instant::now();
    let mut targets = one(None, start);
    let mut now = start;
    for _ in 0..1000 {
        let delay = targets
            .failed(0, now)
            .expect("a listening node keeps trying");
        assert!(delay <= Backoff::CORE.max);
        now += delay;
    }
    assert!(!targets.done());
}
