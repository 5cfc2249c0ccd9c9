//! `task-triage` on the in-memory ports: what it reads, writes and sends for each kind of stop,
//! under redelivery, storms, contention and failing AWS calls, in each mode.

mod common;

use autopilot::app::triage::{Decision, TaskTriage, TriageOutcome};
use autopilot::config::StackConfig;
use autopilot::domain::Severity;
use autopilot::entry::{Invocation, Mode};
use autopilot::incident::{Incident, IncidentStatus};
use autopilot::state::{ClaimStatus, StormWindow};
use autopilot::testkit::{StoredClaim, World, START};
use common::{assert_noted, event, fixture, orders_api_world};

const OOM: &str = "ecs/service-oom.json";
const DEDUP_KEY: &str =
    "dedup#arn:aws:ecs:us-east-1:111122223333:task/shop/a1b2c3d4e5f60718293a4b5c6d7e8f90#v4";
const STORM_KEY: &str = "storm#shop#service:orders-api#oom";

/// A world whose ECS and Logs know the OOM fixture's service and log stream.
fn world() -> World {
    orders_api_world(&[
        "starting",
        "loading catalog",
        "java.lang.OutOfMemoryError: Java heap space",
    ])
}

fn triage(world: &World, mode: Mode) -> TaskTriage {
    TaskTriage::new(world.setup(mode, StackConfig::default()))
}

async fn handle(triage: &TaskTriage, event: serde_json::Value) -> autopilot::Result<TriageOutcome> {
    triage.handle(event.into(), Invocation::default()).await
}

/// The OOM stop again, as another task of the same service (a new stop of the storm).
fn another_stop(i: usize) -> serde_json::Value {
    let mut stop = fixture(OOM);
    stop["id"] = format!("event-{i}").into();
    stop["detail"]["taskArn"] =
        format!("arn:aws:ecs:us-east-1:111122223333:task/shop/{i:032x}").into();
    stop
}

#[tokio::test]
async fn an_oom_kill_is_told_once_with_its_log_tail_and_service() {
    let world = world();
    let outcome = triage(&world, Mode::Live)
        .handle(event(OOM), Invocation::default())
        .await
        .unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_eq!(outcome.message_id.as_deref(), Some("m-1"));
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].message.contains("java.lang.OutOfMemoryError"),
        "{}",
        sent[0].message
    );
    assert!(
        sent[0].message.contains("running 2 / desired 3"),
        "{}",
        sent[0].message
    );
    assert!(
        sent[0].message.contains("Account          111122223333"),
        "whose task it was: {}",
        sent[0].message
    );
    let claim = world.state.claim_at(DEDUP_KEY).expect("claimed");
    assert_eq!(claim.status, Some(ClaimStatus::Complete));
    assert_eq!(
        (claim.decision.as_deref(), claim.message_id.as_deref()),
        (Some("notify"), Some("m-1"))
    );
    assert_eq!(world.state.window_at(STORM_KEY).map(|w| w.count), Some(1));
    assert_eq!(
        world.state.counted_at(STORM_KEY, DEDUP_KEY),
        None,
        "the window forgets the number of a completed claim"
    );
    assert_eq!(outcome.diagnosis.unwrap().severity, Severity::Critical);
}

#[tokio::test]
async fn a_redelivery_is_a_duplicate_and_sends_nothing() {
    let world = world();
    let triage = triage(&world, Mode::Live);
    handle(&triage, fixture(OOM)).await.unwrap();
    let again = handle(&triage, fixture("ecs/service-oom-duplicate.json"))
        .await
        .unwrap();
    assert_eq!(again.decision, Decision::Duplicate);
    assert!(
        again
            .notes
            .iter()
            .any(|n| n == "already handled (notify, message m-1)"),
        "{:?}",
        again.notes
    );
    assert_eq!(world.calls.count("Publish"), 1);
    assert_eq!(
        world.state.window_at(STORM_KEY).map(|w| w.count),
        Some(1),
        "not counted twice"
    );
}

#[tokio::test]
async fn failing_enrichment_never_blocks_the_notification() {
    let world = world();
    world
        .calls
        .fail_always("DescribeServices", "AccessDeniedException");
    world
        .calls
        .fail_always("DescribeTaskDefinition", "AccessDeniedException");
    let outcome = handle(&triage(&world, Mode::Live), fixture(OOM))
        .await
        .unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_eq!(
        world.calls.count("Publish"),
        1,
        "published once, saying what could not be fetched"
    );
    let message = &world.notifier.sent()[0].message;
    assert!(
        message.contains("service context could not be fetched"),
        "{message}"
    );
    assert_noted(
        &outcome.notes,
        "service context could not be fetched: ecs.DescribeServices failed: AccessDeniedException",
    );
    assert_noted(&outcome.notes, "log tail could not be fetched");
    assert_eq!(
        world.calls.count("GetLogEvents"),
        0,
        "no stream to read without the task definition"
    );
}

#[tokio::test]
async fn a_failed_publish_releases_the_claim_and_the_retry_notifies_exactly_once() {
    let world = world();
    world.calls.fail_next("Publish", "Throttling", 1);
    let triage = triage(&world, Mode::Live);
    let error = handle(&triage, fixture(OOM)).await.unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    assert!(
        error.to_string().contains("sns.Publish failed: Throttling"),
        "{error}"
    );
    let claim = world.state.claim_at(DEDUP_KEY).unwrap();
    assert_eq!(
        (claim.status, world.state.counted_at(STORM_KEY, DEDUP_KEY)),
        (Some(ClaimStatus::Retryable), Some(1)),
        "released, its number kept in the window"
    );
    let retry = handle(&triage, fixture(OOM)).await.unwrap();
    assert_eq!(retry.decision, Decision::Notify);
    assert_noted(&retry.notes, "retry of an earlier delivery");
    assert_eq!(
        world.calls.count("Publish"),
        2,
        "one failed attempt, one delivery"
    );
    assert_eq!(world.notifier.sent().len(), 1);
    assert_eq!(
        world.state.window_at(STORM_KEY).unwrap().count,
        1,
        "the stop is counted once"
    );
}

#[tokio::test]
async fn a_storm_of_twelve_tells_the_first_and_the_tenth() {
    let world = world();
    let triage = triage(&world, Mode::Live);
    let mut decisions = Vec::new();
    for i in 0..12 {
        decisions.push(handle(&triage, another_stop(i)).await.unwrap().decision);
    }
    let notified: Vec<usize> = (0..12)
        .filter(|&i| decisions[i] == Decision::Notify)
        .collect();
    assert_eq!(notified, [0, 9]);
    assert_eq!(
        decisions.iter().filter(|&&d| d == Decision::Folded).count(),
        10
    );
    assert_eq!(world.state.window_at(STORM_KEY).unwrap().count, 12);
    let subjects = world.notifier.subjects();
    assert_eq!(subjects.len(), 2);
    assert!(
        subjects[1].contains("10"),
        "the digest names the count: {subjects:?}"
    );
}

#[tokio::test]
async fn a_stop_that_finds_its_window_just_opened_by_another_counts_into_it() {
    let world = world();
    // The other stop opened the window and the service's incident; this one only reads it.
    world.state.put_incident(
        "incident#shop#orders-api",
        Incident {
            id: "inc-0000000000000001".into(),
            cluster: "shop".into(),
            service: "orders-api".into(),
            opened_at: START,
            last_signal_at: START,
            counts: [("oom".to_owned(), 1)].into(),
            applied: vec!["the-other-stop".into()],
            ..Incident::default()
        },
    );
    world.state.open_concurrently(1);
    let outcome = handle(&triage(&world, Mode::Live), fixture(OOM))
        .await
        .unwrap();
    assert_eq!(
        outcome.decision,
        Decision::Folded,
        "stop 2 of the window folds"
    );
    assert_noted(&outcome.notes, "stop 2 of a storm");
    assert_eq!(
        outcome.incident.map(|tag| (tag.id, tag.status)),
        Some(("inc-0000000000000001".into(), IncidentStatus::Update))
    );
    assert_eq!(world.state.window_at(STORM_KEY).unwrap().count, 2);
    assert_eq!(
        world
            .state
            .incident_at("incident#shop#orders-api")
            .unwrap()
            .1,
        1,
        "a folded stop does not write the incident"
    );
    assert_eq!(
        world.clock.slept().len(),
        1,
        "one pause between the attempts"
    );
    assert_eq!(world.calls.count("Publish"), 0);
}

#[tokio::test]
async fn a_retried_delivery_that_was_counted_keeps_its_number() {
    let world = world();
    world.state.put_window(
        STORM_KEY,
        StormWindow {
            count: 7,
            started_at: START - 60,
            last_at: START - 10,
            titles: vec!["x".into()],
            ..StormWindow::default()
        },
    );
    world.state.put_counted(STORM_KEY, DEDUP_KEY, 1);
    world.state.put_claim(
        DEDUP_KEY,
        StoredClaim {
            status: Some(ClaimStatus::Retryable),
            ..StoredClaim::default()
        },
    );
    let outcome = handle(&triage(&world, Mode::Live), fixture(OOM))
        .await
        .unwrap();
    assert_eq!(
        outcome.decision,
        Decision::Notify,
        "its recorded number 1 is the window's first stop"
    );
    assert_eq!(
        world.state.window_at(STORM_KEY).unwrap().count,
        7,
        "not counted again"
    );
    assert_eq!(world.calls.count("Publish"), 1);
}

#[tokio::test]
async fn dry_run_reads_but_writes_and_sends_nothing() {
    let world = world();
    let outcome = handle(&triage(&world, Mode::DryRun), fixture(OOM))
        .await
        .unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_noted(&outcome.notes, "dry-run: not sent to default:");
    assert!(
        world.state.claim_keys().is_empty() && world.state.windows().is_empty(),
        "nothing written"
    );
    assert_eq!(
        (
            world.calls.count("Publish"),
            world.calls.count("PutItem"),
            world.calls.count("UpdateItem")
        ),
        (0, 0, 0)
    );
    assert_eq!(world.calls.count("DescribeServices"), 1, "it still reads");
}

#[tokio::test]
async fn offline_makes_no_call_at_all() {
    let world = world();
    let outcome = handle(&triage(&world, Mode::Offline), fixture(OOM))
        .await
        .unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_noted(&outcome.notes, "offline: not sent to default:");
    assert!(world.calls.log().is_empty(), "{:?}", world.calls.log());
}

#[tokio::test]
async fn without_a_state_table_it_still_notifies_and_says_so() {
    let world = world();
    let triage = TaskTriage::new(world.setup_with(Mode::Live, StackConfig::default(), false));
    let outcome = handle(&triage, fixture(OOM)).await.unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_noted(&outcome.notes, "no STATE_TABLE");
    assert_eq!(world.calls.count("Publish"), 1);
}

#[tokio::test]
async fn normal_stops_and_other_events_make_no_call() {
    let world = world();
    let triage = triage(&world, Mode::Live);
    let deployment = handle(&triage, fixture("ecs/service-deployment-scale-in.json"))
        .await
        .unwrap();
    assert_eq!(deployment.decision, Decision::Silent);
    let mut running = fixture(OOM);
    running["detail"]["lastStatus"] = "RUNNING".into();
    assert_eq!(
        handle(&triage, running).await.unwrap().decision,
        Decision::Ignored
    );
    let mut other = fixture(OOM);
    other["detail-type"] = "ECS Container Instance State Change".into();
    assert_eq!(
        handle(&triage, other).await.unwrap().decision,
        Decision::Ignored
    );
    assert!(world.calls.log().is_empty(), "{:?}", world.calls.log());
}

#[tokio::test]
async fn category_overrides_silence_or_promote() {
    let world = world();
    let config = StackConfig::parse(r#"{"triage": {"categories": {"oom": {"notify": false}, "health-check": {"severity": "critical"}}}}"#).unwrap();
    let triage = TaskTriage::new(world.setup(Mode::Live, config));
    assert_eq!(
        handle(&triage, fixture(OOM)).await.unwrap().decision,
        Decision::Silent
    );
    let health = handle(&triage, fixture("ecs/elb-health-check.json"))
        .await
        .unwrap();
    assert_eq!(health.diagnosis.unwrap().severity, Severity::Critical);
}

#[tokio::test]
async fn a_batch_job_failure_is_reported_with_the_job_and_a_success_only_when_asked() {
    let world = world();
    let jobs = r#"{"jobs": {"invoice-export": {"cluster": "shop", "task_definition": "invoice-export:3", "launch_type": "FARGATE",
        "network": {"subnets": ["subnet-1"]}, "notify_on_success": false}}}"#;
    let triage = TaskTriage::new(world.setup(Mode::Live, StackConfig::parse(jobs).unwrap()));
    let failed = handle(&triage, fixture("ecs/batch-failed.json"))
        .await
        .unwrap();
    assert_eq!(failed.decision, Decision::Notify);
    assert_noted(&failed.notes, "batch job invoice-export: failed");
    assert!(
        world.notifier.subjects()[0].contains("job invoice-export failed"),
        "{:?}",
        world.notifier.subjects()
    );
    let succeeded = handle(&triage, fixture("ecs/batch-succeeded.json"))
        .await
        .unwrap();
    assert_eq!(succeeded.decision, Decision::Silent);
    assert_noted(&succeeded.notes, "batch job invoice-export: succeeded");
}
