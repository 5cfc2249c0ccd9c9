//! A configuration in SSM parts changing under running functions (in memory): a valid new
//! version applied without a cold start, an invalid one refused once for every function while
//! the last good one keeps working, a removed part, an unreadable SSM, and what refreshing
//! costs in SSM calls.

use std::sync::Arc;
use std::time::Duration;

use autopilot::app::batch::{BatchRunner, RunnerResponse};
use autopilot::app::live::Live;
use autopilot::domain::Source;
use autopilot::entry::Invocation;
use autopilot::ports::Clock;
use autopilot::testkit::{MemoryConfig, World};
use serde_json::json;

const JOBS: &str = "/autopilot/config/jobs-data";
const ROUTES: &str = "/autopilot/config/routes-payments";

fn jobs(count: u32) -> String {
    json!({"jobs": {"invoice-export": {
        "cluster": "shop", "task_definition": "invoice-export:3", "count": count,
        "network": {"subnets": ["subnet-1"]}, "overlap": "allow"
    }}})
    .to_string()
}

async fn runner(world: &World, ssm: &Arc<MemoryConfig>) -> Live<BatchRunner> {
    let setup = world.refreshed_setup(ssm.clone()).await;
    Live::new(setup, Source::Batch, |setup| Ok(BatchRunner::new(setup))).unwrap()
}

fn seeded(world: &World) -> Arc<MemoryConfig> {
    let ssm = Arc::new(MemoryConfig::new(world.calls.clone()));
    ssm.put(JOBS, &jobs(1));
    ssm.put(ROUTES, &json!({"notify": {"routes": []}}).to_string());
    ssm
}

/// Runs the job once at the world's time; the number of tasks it asked for.
async fn tasks_started(world: &World, live: &Live<BatchRunner>) -> usize {
    let before = world.ecs.run_requests().len();
    let now = chrono::DateTime::from_timestamp(world.clock.now_s(), 0).unwrap();
    let request = json!({"job": "invoice-export", "scheduled_time": now.to_rfc3339()});
    let response = live
        .current()
        .await
        .app
        .handle(request.into(), Invocation::default())
        .await
        .unwrap();
    assert!(matches!(response, RunnerResponse::Run(_)), "{response:?}");
    world.ecs.run_requests()[before..]
        .iter()
        .map(|r| r.count as usize)
        .sum()
}

fn minutes(world: &World, n: u64) {
    world.clock.advance(Duration::from_secs(60 * n));
}

#[tokio::test]
async fn a_valid_new_version_is_applied_at_the_next_look_without_a_cold_start() {
    let world = World::new();
    let ssm = seeded(&world);
    let live = runner(&world, &ssm).await;
    assert_eq!(
        live.current().await.version.as_deref(),
        Some("/autopilot/config/jobs-data@1, /autopilot/config/routes-payments@1")
    );
    ssm.put(JOBS, &jobs(2));
    // Within the interval nothing is read.
    world.clock.advance(Duration::from_secs(59));
    assert_eq!(tasks_started(&world, &live).await, 1);
    assert_eq!(
        world.calls.count("GetParametersByPath"),
        1,
        "the first read"
    );
    minutes(&world, 1);
    assert_eq!(tasks_started(&world, &live).await, 2);
    let current = live.current().await;
    assert_eq!(
        current.version.as_deref(),
        Some("/autopilot/config/jobs-data@2, /autopilot/config/routes-payments@1")
    );
    assert_eq!(current.refused, 0);
    assert!(world.notifier.sent().is_empty());
}

#[tokio::test]
async fn an_invalid_version_is_refused_and_told_once_for_every_function() {
    let world = World::new();
    let ssm = seeded(&world);
    let runner_a = runner(&world, &ssm).await;
    // Another execution environment (or function) on the same state table.
    let runner_b = runner(&world, &ssm).await;
    ssm.put(JOBS, &jobs(0));
    minutes(&world, 1);
    let a = runner_a.current().await;
    let b = runner_b.current().await;
    assert_eq!((a.refused, b.refused), (1, 1), "each counts its refusal");
    assert_eq!(
        a.version.as_deref(),
        Some("/autopilot/config/jobs-data@1, /autopilot/config/routes-payments@1"),
        "the last good version stays"
    );
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 1, "told once: {sent:#?}");
    assert!(
        sent[0].subject.starts_with(
            "[CRITICAL] configuration version 2 of /autopilot/config/jobs-data rejected"
        ),
        "{}",
        sent[0].subject
    );
    let body: serde_json::Value = serde_json::from_str(&sent[0].message).unwrap();
    let default: serde_json::Value = serde_json::from_str(body["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(
        default["title"],
        "configuration version 2 of /autopilot/config/jobs-data rejected: \
         jobs.invoice-export.count: 0 is outside 1..=100"
    );
    assert_eq!(default["kind"], "config-refused");
    assert_eq!(default["severity"], "critical");

    // The functions keep working on the last good configuration, and say nothing more.
    assert_eq!(tasks_started(&world, &runner_a).await, 1);
    minutes(&world, 1);
    assert_eq!(runner_a.current().await.refused, 0);
    assert_eq!(world.notifier.sent().len(), 1);

    // The fix is picked up.
    ssm.put(JOBS, &jobs(3));
    minutes(&world, 1);
    assert_eq!(tasks_started(&world, &runner_a).await, 3);
    assert_eq!(world.notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_removed_part_is_applied_and_removing_every_part_is_refused() {
    let world = World::new();
    let ssm = seeded(&world);
    let live = runner(&world, &ssm).await;
    ssm.delete(ROUTES);
    minutes(&world, 1);
    assert_eq!(
        live.current().await.version.as_deref(),
        Some("/autopilot/config/jobs-data@1")
    );
    ssm.delete(JOBS);
    minutes(&world, 1);
    let current = live.current().await;
    assert_eq!(current.refused, 1);
    assert_eq!(
        current.version.as_deref(),
        Some("/autopilot/config/jobs-data@1")
    );
    let body: serde_json::Value = serde_json::from_str(&world.notifier.sent()[0].message).unwrap();
    assert!(
        body["default"]
            .as_str()
            .unwrap()
            .contains("no parameter left under the path"),
        "{body}"
    );
    assert_eq!(tasks_started(&world, &live).await, 1);
}

#[tokio::test]
async fn an_unreadable_ssm_keeps_the_configuration_and_costs_one_call_per_interval() {
    let world = World::new();
    let ssm = seeded(&world);
    let live = runner(&world, &ssm).await;
    world
        .calls
        .fail_always("GetParametersByPath", "ThrottlingException");
    for _ in 0..10 {
        world.clock.advance(Duration::from_secs(20));
        let current = live.current().await;
        assert_eq!(current.refused, 0);
        assert!(current.version.is_some());
    }
    // 200 s: looks at 60, 120 and 180 s besides the first read.
    assert_eq!(world.calls.count("GetParametersByPath"), 4);
    assert!(world.notifier.sent().is_empty());
    assert_eq!(tasks_started(&world, &live).await, 1);
}

#[tokio::test]
async fn refreshing_costs_one_ssm_call_per_interval_whatever_the_traffic() {
    let world = World::new();
    let ssm = seeded(&world);
    let live = runner(&world, &ssm).await;
    // An hour of an invocation every 5 s.
    for _ in 0..720 {
        world.clock.advance(Duration::from_secs(5));
        live.current().await;
    }
    assert_eq!(world.calls.count("GetParametersByPath"), 1 + 60);

    // With config_refresh_s = 0 a function reads its configuration at cold start only.
    let world = World::new();
    let ssm = Arc::new(MemoryConfig::new(world.calls.clone()));
    ssm.put(JOBS, &json!({"config_refresh_s": 0}).to_string());
    let live = runner(&world, &ssm).await;
    for _ in 0..10 {
        minutes(&world, 10);
        live.current().await;
    }
    assert_eq!(world.calls.count("GetParametersByPath"), 1);
}

#[tokio::test]
async fn what_the_stack_does_not_allow_is_told_once_per_version() {
    let world = World::new();
    let ssm = seeded(&world);
    ssm.put(
        ROUTES,
        &json!({"notify": {"route_by_tag": {"tag": "team", "topics": {}}}}).to_string(),
    );
    let stack: autopilot::config::stack::StackParameters =
        [("RoutingByTags".to_owned(), "false".to_owned())].into();
    let live = |world: &World| {
        let (world, ssm, stack) = (world.clone(), ssm.clone(), stack.clone());
        async move {
            let mut setup = world.refreshed_setup(ssm).await;
            setup.stack_parameters = Some(stack);
            Live::new(setup, Source::Triage, |setup| Ok(BatchRunner::new(setup))).unwrap()
        }
    };
    let (a, b) = (live(&world).await, live(&world).await);
    a.current().await;
    b.current().await;
    a.current().await;
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 1, "once for both environments: {sent:#?}");
    let body: serde_json::Value = serde_json::from_str(&sent[0].message).unwrap();
    let structured: serde_json::Value =
        serde_json::from_str(body["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(structured["kind"], "config-mismatch");
    assert_eq!(structured["severity"], "warning");
    assert!(structured["sections"].to_string().contains(
        "notify.route_by_tag: needs RoutingByTags=true: without it the functions may not read tags"
    ));

    // A new version with the same problem is told again, once.
    ssm.put(JOBS, &jobs(2));
    minutes(&world, 1);
    a.current().await;
    b.current().await;
    assert_eq!(world.notifier.sent().len(), 2);
}

#[tokio::test]
async fn a_notice_whose_claim_cannot_be_taken_is_told_later_not_by_everyone() {
    let world = World::new();
    let ssm = seeded(&world);
    let live = runner(&world, &ssm).await;
    ssm.put(JOBS, &jobs(0));
    minutes(&world, 1);
    world
        .calls
        .fail_next("UpdateItem", "ProvisionedThroughputExceededException", 1);
    assert_eq!(live.current().await.refused, 1);
    assert!(
        world.notifier.sent().is_empty(),
        "not told without the claim"
    );
    minutes(&world, 1);
    assert_eq!(
        live.current().await.refused,
        1,
        "refused again at the next look"
    );
    assert_eq!(world.notifier.sent().len(), 1, "and told then");
    minutes(&world, 1);
    assert_eq!(live.current().await.refused, 0);
    assert_eq!(world.notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_disagreement_that_cannot_be_told_is_tried_again_a_minute_on() {
    let world = World::new();
    let ssm = seeded(&world);
    ssm.put(
        ROUTES,
        &json!({"notify": {"route_by_tag": {"tag": "team", "topics": {}}}}).to_string(),
    );
    let mut setup = world.refreshed_setup(ssm).await;
    setup.stack_parameters = Some([("RoutingByTags".to_owned(), "false".to_owned())].into());
    let live = Live::new(setup, Source::Triage, |setup| Ok(BatchRunner::new(setup))).unwrap();
    world
        .calls
        .fail_next("UpdateItem", "ProvisionedThroughputExceededException", 1);
    live.current().await;
    let claims = world.calls.count("UpdateItem");
    live.current().await;
    assert_eq!(
        world.calls.count("UpdateItem"),
        claims,
        "not at every invocation"
    );
    assert!(world.notifier.sent().is_empty());
    minutes(&world, 1);
    live.current().await;
    assert_eq!(world.notifier.sent().len(), 1, "told a minute on");
}
