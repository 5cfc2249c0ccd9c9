//! The state port's contract: the scenarios every [`StateStore`] must answer the same way, run
//! against [`MemoryState`](super::MemoryState) (the handler tests' fake) in this crate and
//! against `StateTable` on the local cloud (`tests/tests/state_contract_local_cloud.rs`), so
//! that what the handler tests prove of the fake holds of DynamoDB.
//!
//! Each scenario takes a store and a key prefix of its own (scenarios may share one table) and
//! panics, naming the step, when an answer differs.

use crate::batch::record::RunRecord;
use crate::incident::Incident;
use crate::ports::{Counting, RecordWrite, StateStore};
use crate::scaling::target::{RecommendationHistory, TargetMemory};
use crate::scaling::ScalingMemory;
use crate::state::{Claim, MutedLedger, MutedNotice, Stop, StormWindow};

/// Every scenario, by name, for a runner that goes through them in turn.
pub const SCENARIOS: [&str; 8] = [
    "claims",
    "storm_windows",
    "scaling_memory",
    "runs",
    "run_records",
    "incidents",
    "watch_records",
    "muted_ledgers",
];

/// Runs the scenario called `name` (one of [`SCENARIOS`]).
pub async fn run(name: &str, state: &dyn StateStore, prefix: &str) {
    match name {
        "claims" => claims(state, prefix).await,
        "storm_windows" => storm_windows(state, prefix).await,
        "scaling_memory" => scaling_memory(state, prefix).await,
        "runs" => runs(state, prefix).await,
        "run_records" => run_records(state, prefix).await,
        "incidents" => incidents(state, prefix).await,
        "watch_records" => watch_records(state, prefix).await,
        "muted_ledgers" => muted_ledgers(state, prefix).await,
        other => panic!("no contract scenario {other}"),
    }
}

/// A claim is taken once, held for its lease, resumed after a failure with the destinations
/// already delivered to, and refused as a duplicate once complete.
pub async fn claims(state: &dyn StateStore, prefix: &str) {
    let key = format!("{prefix}dedup#claims");
    let (now, lease, ttl) = (1_000, 1_060, 3_600);
    assert_eq!(
        state.peek_claim(&key, now).await.unwrap(),
        Claim::Fresh,
        "peek, none"
    );
    assert_eq!(
        state.claim(&key, now, lease, ttl).await.unwrap(),
        Claim::Fresh,
        "first claim"
    );
    assert_eq!(
        state.claim(&key, now + 1, lease, ttl).await.unwrap(),
        Claim::InProgress,
        "claimed again within the lease"
    );
    assert_eq!(
        state.peek_claim(&key, now + 1).await.unwrap(),
        Claim::InProgress,
        "peek within the lease"
    );
    state.record_delivery(&key, "topic:ops").await.unwrap();
    state.record_delivery(&key, "slack:ops").await.unwrap();
    state.record_delivery(&key, "topic:ops").await.unwrap();
    let resumed = Claim::Resumed {
        delivered: vec!["slack:ops".into(), "topic:ops".into()],
    };
    assert_eq!(
        state.peek_claim(&key, lease + 1).await.unwrap(),
        resumed,
        "peek after the lease"
    );
    assert_eq!(
        state.claim(&key, lease + 1, lease + 61, ttl).await.unwrap(),
        resumed,
        "claimed after the lease ran out"
    );
    state.release(&key).await.unwrap();
    assert_eq!(
        state.claim(&key, lease + 2, lease + 62, ttl).await.unwrap(),
        resumed,
        "claimed at once after a release"
    );
    state.complete(&key, "notified", Some("m-1")).await.unwrap();
    let duplicate = Claim::Duplicate {
        decision: Some("notified".into()),
        message_id: Some("m-1".into()),
    };
    assert_eq!(
        state
            .claim(&key, lease + 500, lease + 560, ttl)
            .await
            .unwrap(),
        duplicate,
        "claimed once complete"
    );
    assert_eq!(
        state.peek_claim(&key, lease + 500).await.unwrap(),
        duplicate,
        "peek once complete"
    );

    let other = format!("{prefix}dedup#silent");
    state.claim(&other, now, lease, ttl).await.unwrap();
    state.complete(&other, "ignored", None).await.unwrap();
    assert_eq!(
        state.claim(&other, now + 1, lease, ttl).await.unwrap(),
        Claim::Duplicate {
            decision: Some("ignored".into()),
            message_id: None,
        },
        "a completion without a message"
    );

    let missing = format!("{prefix}dedup#missing");
    let refused = state
        .complete(&missing, "notified", None)
        .await
        .expect_err("completing a claim never taken");
    assert_eq!(refused.error_type(), "AwsCallFailed", "{refused}");
    assert!(
        state.release(&missing).await.is_err(),
        "releasing a claim never taken"
    );
    assert_eq!(
        state.peek_claim(&missing, now).await.unwrap(),
        Claim::Fresh,
        "a refused write leaves no record"
    );
}

fn stop<'a>(claim_key: &'a str, storm_key: &'a str, now: i64, title: &'a str) -> Stop<'a> {
    Stop {
        claim_key,
        storm_key,
        now,
        window_s: 600,
        title,
        reason: "Essential container in task exited",
    }
}

/// A window is opened by one stop only, counts each later stop once with its own number (a
/// retried delivery gets its number back), refuses stops once it has run out, and is gone once
/// closed.
pub async fn storm_windows(state: &dyn StateStore, prefix: &str) {
    let storm = format!("{prefix}storm#shop#api#oom");
    let claims: Vec<String> = (1..=4).map(|n| format!("{prefix}dedup#stop-{n}")).collect();
    let first = stop(&claims[0], &storm, 1_000, "Out of memory");
    assert_eq!(
        state.count_into_open(&first).await.unwrap(),
        Counting::NotOpen(None),
        "counting with no window"
    );
    assert_eq!(
        state.read_window(&storm).await.unwrap(),
        None,
        "no window yet"
    );
    let opened = first.opened(None);
    assert!(
        state.open_window(&first, None, &opened).await.unwrap(),
        "opening"
    );
    assert!(
        !state.open_window(&first, None, &opened).await.unwrap(),
        "opening where one was opened"
    );
    assert_eq!(
        state.read_window(&storm).await.unwrap(),
        Some(opened.clone()),
        "the window as opened"
    );

    let second = stop(&claims[1], &storm, 1_100, "Exit code 137");
    let counted = StormWindow {
        count: 2,
        started_at: 1_000,
        last_at: 1_100,
        titles: vec!["Exit code 137".into(), "Out of memory".into()],
        last_reason: Some("Essential container in task exited".into()),
        previous_count: None,
    };
    assert_eq!(
        state.count_into_open(&second).await.unwrap(),
        Counting::Counted(counted.clone()),
        "a second stop"
    );
    assert_eq!(
        state.count_into_open(&second).await.unwrap(),
        Counting::Counted(counted.clone()),
        "the second stop's retry"
    );
    let third = stop(&claims[2], &storm, 1_200, "Out of memory");
    let Counting::Counted(after_third) = state.count_into_open(&third).await.unwrap() else {
        panic!("the third stop was not counted");
    };
    assert_eq!(after_third.count, 3, "the third stop's number");
    assert_eq!(after_third.titles, counted.titles, "titles once each");
    assert_eq!(
        state.peek_count(&claims[1], &storm).await.unwrap(),
        (Some(after_third.clone()), Some(2)),
        "peeking the second stop's number"
    );
    state.forget_count(&claims[1], &storm).await.unwrap();
    state.forget_count(&claims[1], &storm).await.unwrap();
    assert_eq!(
        state.peek_count(&claims[1], &storm).await.unwrap(),
        (Some(after_third.clone()), None),
        "a forgotten number"
    );

    let late = stop(&claims[3], &storm, 1_000 + 600, "Out of memory");
    assert_eq!(
        state.count_into_open(&late).await.unwrap(),
        Counting::NotOpen(Some(after_third.clone())),
        "a stop after the window ran out"
    );
    let next = late.opened(Some(&after_third));
    assert!(
        !state.open_window(&late, None, &next).await.unwrap(),
        "replacing a window not read"
    );
    assert!(
        state
            .open_window(&late, Some(&after_third), &next)
            .await
            .unwrap(),
        "replacing the window read"
    );
    assert!(
        !state
            .open_window(&late, Some(&after_third), &next)
            .await
            .unwrap(),
        "replacing a window already replaced"
    );
    assert_eq!(
        state.peek_count(&claims[3], &storm).await.unwrap(),
        (
            Some(StormWindow {
                previous_count: None,
                ..next
            }),
            Some(1)
        ),
        "the new window has the opener's number"
    );

    state
        .close_windows(std::slice::from_ref(&storm))
        .await
        .unwrap();
    assert_eq!(state.read_window(&storm).await.unwrap(), None, "closed");
    assert_eq!(
        state.count_into_open(&late).await.unwrap(),
        Counting::NotOpen(None),
        "counting into a closed window"
    );
}

/// Scaling memory is revisioned: a write from a stale revision is refused, and what was
/// written (including a time taken away) reads back.
pub async fn scaling_memory(state: &dyn StateStore, prefix: &str) {
    let key = format!("{prefix}scaling#shop#api");
    assert_eq!(
        state.scaling_memory(&key).await.unwrap(),
        (ScalingMemory::default(), 0),
        "nothing recorded"
    );
    let out = ScalingMemory {
        last_scale_out_at: Some(1_000),
        last_scale_in_at: None,
        ..Default::default()
    };
    assert!(
        state.record_scaling(&key, 0, &out, "1 -> 3").await.unwrap(),
        "first"
    );
    assert!(
        !state.record_scaling(&key, 0, &out, "1 -> 3").await.unwrap(),
        "from a stale revision"
    );
    assert_eq!(
        state.scaling_memory(&key).await.unwrap(),
        (out.clone(), 1),
        "after the first"
    );
    // The target policies' memory rides along: history, zero_since and failures per target.
    let both = ScalingMemory {
        last_scale_out_at: Some(1_000),
        last_scale_in_at: Some(2_000),
        targets: TargetMemory {
            history: RecommendationHistory(vec![(1_900, 7), (1_960, 4)]),
            zero_since: [("orders".to_owned(), 1_950)].into(),
            failures: [("cpu".to_owned(), 2)].into(),
        },
    };
    assert!(
        state
            .record_scaling(&key, 1, &both, "3 -> 2")
            .await
            .unwrap(),
        "second"
    );
    assert_eq!(
        state.scaling_memory(&key).await.unwrap(),
        (both.clone(), 2),
        "after the second"
    );
    let in_only = ScalingMemory {
        last_scale_out_at: None,
        last_scale_in_at: Some(3_000),
        ..Default::default()
    };
    assert!(
        state
            .record_scaling(&key, 2, &in_only, "2 -> 1")
            .await
            .unwrap(),
        "third"
    );
    assert_eq!(
        state.scaling_memory(&key).await.unwrap(),
        (in_only, 3),
        "a time and the targets' memory taken away"
    );
}

/// A claimed run counts its resumptions and keeps the tasks it started, each once.
pub async fn runs(state: &dyn StateStore, prefix: &str) {
    let key = format!("{prefix}batch#run#nightly#2026-12-03T02:00:00Z");
    assert!(
        state.resume_run(&key).await.is_err(),
        "resuming a run never claimed"
    );
    state.claim(&key, 1_000, 1_900, 86_400).await.unwrap();
    assert_eq!(
        state.resume_run(&key).await.unwrap(),
        (1, vec![]),
        "first round"
    );
    state.add_run_tasks(&key, &[]).await.unwrap();
    state
        .add_run_tasks(&key, &["arn:task/b".into(), "arn:task/a".into()])
        .await
        .unwrap();
    state
        .add_run_tasks(&key, &["arn:task/a".into()])
        .await
        .unwrap();
    assert_eq!(
        state.resume_run(&key).await.unwrap(),
        (2, vec!["arn:task/a".into(), "arn:task/b".into()]),
        "second round, with the tasks started"
    );
    assert!(
        state
            .add_run_tasks(&format!("{prefix}batch#run#never"), &["arn:task/c".into()])
            .await
            .is_err(),
        "adding tasks to a run never claimed"
    );
}

/// A run record is written only over the revision read and reads back whole; its tasks point
/// at it; the job's runs come back newest first from `since`, and only those due by `now` are
/// due; a watch keeps its first time.
pub async fn run_records(state: &dyn StateStore, prefix: &str) {
    let job = format!("{prefix}extract");
    let at = |day: i64| 1_800_000_000 + day * 86_400;
    let record = |day: i64| {
        let mut record = RunRecord::new(&job, &format!("day-{day}"), at(day), 1, at(day));
        record.add_tasks(&[format!("arn:task/{prefix}{day}")]);
        record
    };
    let key = |day: i64| crate::keys::record_key(&job, &format!("day-{day}"));
    let stored = |due_at: Option<i64>| RecordWrite {
        due_at,
        expires_at: at(40),
    };
    assert_eq!(state.read_record(&key(1)).await.unwrap(), None, "none yet");
    assert!(
        state
            .write_record(&key(1), 0, &record(1), stored(Some(at(1) + 600)))
            .await
            .unwrap(),
        "first write"
    );
    assert!(
        !state
            .write_record(&key(1), 0, &record(1), stored(None))
            .await
            .unwrap(),
        "a second first write is refused"
    );
    assert_eq!(
        state.read_record(&key(1)).await.unwrap(),
        Some((record(1), 1)),
        "reads back whole"
    );
    for day in [2, 3] {
        assert!(state
            .write_record(&key(day), 0, &record(day), stored(None))
            .await
            .unwrap());
    }
    let mut finished = record(1);
    finished.outcome = crate::batch::record::Outcome::Failed;
    assert!(
        !state
            .write_record(&key(1), 2, &finished, stored(None))
            .await
            .unwrap(),
        "a stale revision is refused"
    );
    let days =
        |runs: Vec<RunRecord>| -> Vec<String> { runs.into_iter().map(|r| r.run_id).collect() };
    assert_eq!(
        days(state.runs_of(&job, at(2), 10).await.unwrap()),
        vec!["day-3", "day-2"],
        "newest first, from since"
    );
    assert_eq!(
        days(state.runs_of(&job, 0, 1).await.unwrap()),
        vec!["day-3"],
        "the latest run"
    );
    assert!(state
        .runs_of(&format!("{prefix}other"), 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        state.runs_due(&job, at(1) + 599).await.unwrap().is_empty(),
        "not yet due"
    );
    assert_eq!(
        state.runs_due(&job, at(1) + 600).await.unwrap(),
        vec![(record(1), 1)],
        "due"
    );
    assert!(state
        .write_record(&key(1), 1, &finished, stored(None))
        .await
        .unwrap());
    assert!(
        state.runs_due(&job, at(5)).await.unwrap().is_empty(),
        "nothing pending once written without a due time"
    );
    let tasks: Vec<String> = (0..30)
        .map(|i| format!("arn:task/{prefix}many-{i}"))
        .collect();
    state.point_tasks(&key(2), &tasks, at(40)).await.unwrap();
    assert_eq!(
        state.record_of_task(&tasks[29]).await.unwrap(),
        Some(key(2)),
        "pointers past the first 25"
    );
    assert_eq!(
        state.record_of_task("arn:task/unknown").await.unwrap(),
        None
    );
    let watch = crate::keys::expect_key(&job);
    assert_eq!(state.watch_since(&watch, 100, at(40)).await.unwrap(), 100);
    assert_eq!(
        state.watch_since(&watch, 200, at(41)).await.unwrap(),
        100,
        "the first time is kept"
    );
}

/// An incident is written only over the revision read; what was written reads back whole.
pub async fn incidents(state: &dyn StateStore, prefix: &str) {
    let key = format!("{prefix}incident#shop#api");
    assert_eq!(state.read_incident(&key).await.unwrap(), None, "none yet");
    let opened = Incident {
        id: "inc-0123456789abcdef".into(),
        cluster: "shop".into(),
        service: "api".into(),
        opened_at: 1_000,
        last_signal_at: 1_000,
        counts: [("oom".to_owned(), 1)].into(),
        latest_reasons: vec!["OutOfMemoryError: Container killed due to memory usage".into()],
        applied: vec!["dedup#stop-1".into()],
        ..Incident::default()
    };
    assert!(
        state.write_incident(&key, 0, &opened).await.unwrap(),
        "opening"
    );
    assert!(
        !state.write_incident(&key, 0, &opened).await.unwrap(),
        "opening again from nothing"
    );
    assert_eq!(
        state.read_incident(&key).await.unwrap(),
        Some((opened.clone(), 1)),
        "as opened"
    );
    let resolved = Incident {
        resolved_at: Some(2_000),
        resolved_by: Some("the deployment completed".into()),
        resolved_by_key: Some("dedup#deploy-1".into()),
        muted: [("deployment".to_owned(), 2)].into(),
        ..opened.clone()
    };
    assert!(
        !state.write_incident(&key, 2, &resolved).await.unwrap(),
        "from a revision not yet reached"
    );
    assert!(
        state.write_incident(&key, 1, &resolved).await.unwrap(),
        "resolving"
    );
    assert_eq!(
        state.read_incident(&key).await.unwrap(),
        Some((resolved, 2)),
        "as resolved"
    );
}

/// The watchdog's record is set, moved and forgotten.
pub async fn watch_records(state: &dyn StateStore, prefix: &str) {
    let key = format!("{prefix}watch#shop#api");
    assert_eq!(state.short_since(&key).await.unwrap(), None, "none yet");
    state
        .set_short_since(&key, Some(1_000), 1_000)
        .await
        .unwrap();
    assert_eq!(state.short_since(&key).await.unwrap(), Some(1_000), "set");
    state
        .set_short_since(&key, Some(1_500), 1_600)
        .await
        .unwrap();
    assert_eq!(state.short_since(&key).await.unwrap(), Some(1_500), "moved");
    state.set_short_since(&key, None, 1_700).await.unwrap();
    assert_eq!(state.short_since(&key).await.unwrap(), None, "forgotten");
}

/// A muted notice is counted once per claim, per category, with what it was about; the
/// ledger is gone once forgotten.
pub async fn muted_ledgers(state: &dyn StateStore, prefix: &str) {
    let key = format!("{prefix}muted#deploys#1700000000");
    assert_eq!(state.muted_ledger(&key).await.unwrap(), None, "none yet");
    let notice = |category, about, claim_key| MutedNotice {
        ledger_key: &key,
        category,
        about,
        until: 1_700_000_000,
        ttl_s: 86_400,
        claim_key,
    };
    state
        .count_muted(&notice("oom", Some("shop/api"), Some("dedup#1")))
        .await
        .unwrap();
    state
        .count_muted(&notice("oom", Some("shop/api"), Some("dedup#1")))
        .await
        .unwrap();
    state
        .count_muted(&notice("oom", Some("shop/web"), Some("dedup#2")))
        .await
        .unwrap();
    state
        .count_muted(&notice("deployment", None, None))
        .await
        .unwrap();
    state
        .count_muted(&notice("deployment", Some("shop/api"), None))
        .await
        .unwrap();
    assert_eq!(
        state.muted_ledger(&key).await.unwrap(),
        Some(MutedLedger {
            counts: [("deployment".to_owned(), 2), ("oom".to_owned(), 2)].into(),
            about: vec!["shop/api".into(), "shop/web".into()],
        }),
        "counted once per claim"
    );
    state.forget_muted(&key).await.unwrap();
    assert_eq!(state.muted_ledger(&key).await.unwrap(), None, "forgotten");
}
