//! `batch-runner` on the in-memory ports: capacity retries and the fallback, configuration
//! failures, exact partial success, the overlap guard, duplicates and resumed runs, the
//! timeout tick, and the modes. The fake clock makes the backoff instant and visible.

mod common;

use std::time::Duration;

use autopilot::app::batch::{BatchRunner, RunOutcome, RunnerResponse};
use autopilot::batch::report::RunAction;
use autopilot::config::StackConfig;
use autopilot::entry::{Invocation, Mode};
use autopilot::state::ClaimStatus;
use autopilot::testkit::{start_then_fail, FakeTask, StoredClaim, World, START};

const RUN_KEY: &str = "batch#run#invoice-export#2026-09-15T02:00:00Z";
const CAPACITY: &str = "Capacity is unavailable at this time. Please try again later or in a different availability zone";

fn catalog(count: u32, overlap: &str, fallback: bool) -> StackConfig {
    let mut job = serde_json::json!({
        "cluster": "shop", "task_definition": "invoice-export:3", "count": count,
        "capacity_provider_strategy": [{"capacity_provider": "FARGATE_SPOT", "weight": 1}],
        "network": {"subnets": ["subnet-1"]}, "overlap": overlap, "timeout_s": 3600
    });
    if fallback {
        job["fallback_capacity_provider_strategy"] =
            serde_json::json!([{"capacity_provider": "FARGATE", "weight": 1}]);
    }
    StackConfig::parse(&serde_json::json!({"jobs": {"invoice-export": job}}).to_string()).unwrap()
}

fn runner(world: &World, mode: Mode, config: StackConfig) -> BatchRunner {
    BatchRunner::new(world.setup(mode, config))
}

async fn run(runner: &BatchRunner) -> autopilot::Result<RunOutcome> {
    let request =
        serde_json::json!({"job": "invoice-export", "scheduled_time": "2026-09-15T02:00:00Z"});
    match runner.handle(request.into(), Invocation::default()).await? {
        RunnerResponse::Run(outcome) => Ok(*outcome),
        other => panic!("expected a run, got {other:?}"),
    }
}

fn providers(world: &World) -> Vec<String> {
    world
        .ecs
        .run_requests()
        .iter()
        .map(|r| r.capacity_provider_strategy[0].capacity_provider.clone())
        .collect()
}

fn previous_run(world: &World) {
    world.ecs.add_task(FakeTask {
        arn: "arn:aws:ecs:us-east-1:111122223333:task/shop/old".into(),
        cluster: "shop".into(),
        started_by: "batch-runner/invoice-export".into(),
        started_at: Some(START - 600),
    });
}

#[tokio::test]
async fn capacity_twice_then_success() {
    let world = World::new();
    world
        .ecs
        .script_run_task([start_then_fail(0, CAPACITY), start_then_fail(0, CAPACITY)]);
    let outcome = run(&runner(&world, Mode::Live, catalog(1, "skip", false)))
        .await
        .unwrap();
    assert_eq!(
        (outcome.action, outcome.attempts, outcome.tasks.len()),
        (RunAction::Started, 3, 1)
    );
    assert!(outcome.failures.is_empty());
    assert_eq!(
        world.clock.slept(),
        [Duration::from_secs(1), Duration::from_secs(2)]
    );
    assert_eq!(
        world.calls.count("Publish"),
        0,
        "a successful start is not news"
    );
    assert_eq!(
        outcome
            .notes
            .iter()
            .filter(|n| n.contains("(capacity); retrying"))
            .count(),
        2,
        "{:?}",
        outcome.notes
    );
}

#[tokio::test]
async fn a_configuration_failure_is_not_retried_and_is_reported() {
    let world = World::new();
    world.ecs.script_run_task([start_then_fail(0, "MISSING")]);
    let outcome = run(&runner(&world, Mode::Live, catalog(1, "skip", true)))
        .await
        .unwrap();
    assert_eq!(outcome.action, RunAction::Failed);
    assert_eq!(
        outcome.reason,
        "RunTask failed for a configuration reason (not retried): MISSING"
    );
    assert_eq!(
        (world.ecs.run_requests().len(), world.calls.count("Publish")),
        (1, 1)
    );
    assert_eq!(
        world.state.claim_at(RUN_KEY).unwrap().status,
        Some(ClaimStatus::Complete),
        "retrying cannot help"
    );
}

#[tokio::test]
async fn capacity_exhausted_moves_to_the_fallback_strategy() {
    let world = World::new();
    world
        .ecs
        .script_run_task((0..5).map(|_| start_then_fail(0, CAPACITY)));
    let outcome = run(&runner(&world, Mode::Live, catalog(1, "skip", true)))
        .await
        .unwrap();
    assert_eq!((outcome.action, outcome.attempts), (RunAction::Started, 6));
    assert_eq!(
        providers(&world),
        ["FARGATE_SPOT"; 5]
            .into_iter()
            .chain(["FARGATE"])
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn capacity_exhausted_everywhere_is_an_error_and_a_critical_notification() {
    let world = World::new();
    world
        .ecs
        .script_run_task((0..10).map(|_| start_then_fail(0, CAPACITY)));
    let error = run(&runner(&world, Mode::Live, catalog(1, "skip", true)))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "CapacityUnavailable");
    assert!(
        error.to_string().contains("0 of 1 tasks started"),
        "{error}"
    );
    assert_eq!(
        world.ecs.run_requests().len(),
        10,
        "5 primary + 5 fallback attempts"
    );
    assert_eq!(world.calls.count("Publish"), 1);
    assert!(world.notifier.sent()[0].message.contains("critical"));
    assert_eq!(
        world.state.claim_at(RUN_KEY).unwrap().status,
        Some(ClaimStatus::Retryable),
        "Lambda retries the run"
    );
}

#[tokio::test]
async fn partial_success_is_reported_exactly() {
    let world = World::new();
    world.ecs.script_run_task([
        start_then_fail(10, CAPACITY),
        start_then_fail(1, "ATTRIBUTE"),
    ]);
    let outcome = run(&runner(&world, Mode::Live, catalog(12, "skip", false)))
        .await
        .unwrap();
    assert_eq!(outcome.action, RunAction::Failed);
    assert_eq!(
        (outcome.tasks.len(), outcome.requested),
        (11, 12),
        "10 from the first call, 1 from the second"
    );
    assert_eq!(outcome.failures[0].reason, "ATTRIBUTE");
    assert_eq!(
        world
            .ecs
            .run_requests()
            .iter()
            .map(|r| r.count)
            .collect::<Vec<_>>(),
        [10, 2]
    );
    assert_eq!(
        world.state.claim_at(RUN_KEY).unwrap().tasks.len(),
        11,
        "every started task is on the claim"
    );
}

#[tokio::test]
async fn an_overlapping_run_is_skipped_and_told() {
    let world = World::new();
    previous_run(&world);
    let outcome = run(&runner(&world, Mode::Live, catalog(1, "skip", false)))
        .await
        .unwrap();
    assert_eq!(
        (outcome.action, outcome.previous_tasks.len()),
        (RunAction::Skipped, 1)
    );
    assert!(world.ecs.run_requests().is_empty());
    assert!(
        world.notifier.subjects()[0].contains("skipped"),
        "{:?}",
        world.notifier.subjects()
    );
}

#[tokio::test]
async fn replace_stops_the_previous_run_first() {
    let world = World::new();
    previous_run(&world);
    let outcome = run(&runner(&world, Mode::Live, catalog(1, "replace", false)))
        .await
        .unwrap();
    assert_eq!(
        (outcome.action, outcome.tasks.len()),
        (RunAction::Replaced, 1)
    );
    let stopped = world.ecs.stopped();
    assert_eq!(stopped.len(), 1);
    assert!(
        stopped[0]
            .2
            .starts_with("batch-runner: replaced by the run 2026-09-15T02:00:00Z"),
        "{stopped:?}"
    );
    let log = world.calls.log();
    let position = |operation| log.iter().position(|&op| op == operation);
    assert!(
        position("StopTask") < position("RunTask"),
        "stopped before starting: {log:?}"
    );
}

#[tokio::test]
async fn a_duplicate_delivery_starts_nothing() {
    let world = World::new();
    let runner = runner(&world, Mode::Live, catalog(3, "allow", false));
    let first = run(&runner).await.unwrap();
    let again = run(&runner).await.unwrap();
    assert_eq!(
        (first.action, again.action),
        (RunAction::Started, RunAction::Skipped)
    );
    assert!(
        again.reason.contains("duplicate delivery"),
        "{}",
        again.reason
    );
    assert_eq!(
        (
            world.calls.count("ListTasks"),
            world.ecs.run_requests().len()
        ),
        (1, 1)
    );
    let claim = world.state.claim_at(RUN_KEY).unwrap();
    assert_eq!(
        (claim.status, claim.decision.as_deref(), claim.tasks.len()),
        (Some(ClaimStatus::Complete), Some("started"), 3)
    );
}

#[tokio::test]
async fn a_resumed_run_starts_only_the_rest_with_new_tokens() {
    let world = World::new();
    world.state.put_claim(
        RUN_KEY,
        StoredClaim {
            status: Some(ClaimStatus::Retryable),
            tasks: ["arn:aws:ecs:us-east-1:111122223333:task/shop/t0".to_owned()].into(),
            ..StoredClaim::default()
        },
    );
    let outcome = run(&runner(&world, Mode::Live, catalog(3, "skip", false)))
        .await
        .unwrap();
    assert_eq!(
        (outcome.action, outcome.tasks.len()),
        (RunAction::Started, 3)
    );
    let requests = world.ecs.run_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].count, 2);
    assert!(
        requests[0].client_token.ends_with("-r1c0a1"),
        "{}",
        requests[0].client_token
    );
    assert_eq!(
        world.calls.count("ListTasks"),
        0,
        "a resumed run's own tasks are not an overlap"
    );
}

#[tokio::test]
async fn the_tick_stops_tasks_over_their_timeout_only() {
    let world = World::new();
    for (name, started) in [("late", START - 4_000), ("fresh", START - 100)] {
        world.ecs.add_task(FakeTask {
            arn: format!("arn:aws:ecs:us-east-1:111122223333:task/shop/{name}"),
            cluster: "shop".into(),
            started_by: "batch-runner/invoice-export".into(),
            started_at: Some(started),
        });
    }
    let response = runner(&world, Mode::Live, catalog(1, "skip", false))
        .handle(
            serde_json::json!({"tick": true}).into(),
            Invocation::default(),
        )
        .await
        .unwrap();
    let RunnerResponse::Tick { stopped, .. } = response else {
        panic!("expected a tick")
    };
    assert_eq!(stopped.len(), 1);
    assert_eq!(
        (
            stopped[0].task.as_str(),
            stopped[0].ran_s,
            stopped[0].stopped
        ),
        (
            "arn:aws:ecs:us-east-1:111122223333:task/shop/late",
            4_000,
            true
        )
    );
    assert_eq!(
        world.ecs.stopped()[0].2,
        "batch-runner: exceeded timeout of 3600 s"
    );
}

#[tokio::test]
async fn dry_run_and_offline_print_the_requests_and_send_none() {
    for mode in [Mode::DryRun, Mode::Offline] {
        let world = World::new();
        let outcome = run(&runner(&world, mode, catalog(12, "skip", false)))
            .await
            .unwrap();
        assert_eq!(
            outcome.requests.iter().map(|r| r.count).collect::<Vec<_>>(),
            [10, 2]
        );
        assert_eq!(
            outcome.reason,
            format!("{}: 2 RunTask call(s) not sent", mode.label())
        );
        assert!(world.ecs.run_requests().is_empty() && world.state.claim_keys().is_empty());
        if mode == Mode::Offline {
            assert!(world.calls.log().is_empty(), "{:?}", world.calls.log());
            assert!(outcome
                .notes
                .iter()
                .any(|n| n.contains("overlap not checked")));
        }
    }
}

#[tokio::test]
async fn an_unknown_job_names_the_catalog() {
    let world = World::new();
    let error = runner(&world, Mode::Live, catalog(1, "skip", false))
        .handle(
            serde_json::json!({"job": "nope"}).into(),
            Invocation::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "InvalidEvent");
    assert!(
        error
            .to_string()
            .contains("unknown job `nope`; the catalog has: invoice-export"),
        "{error}"
    );
}
