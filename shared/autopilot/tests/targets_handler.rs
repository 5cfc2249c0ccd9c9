//! `alarm-scaler`'s tick for target policies on the in-memory ports: a worker sized from zero
//! by its queue in one tick, the way back to zero through the stabilisation window, reads that
//! fail (fallback told once, recovery told once), several signals on one service, member
//! accounts' queues, an alarm policy and a target policy on one service, the cost of a tick in
//! calls, races and the modes.

mod common;

use std::time::Duration;

use autopilot::app::scaler::{AlarmScaler, Assumed, ScalerResponse, ServiceTick};
use autopilot::app::Setup;
use autopilot::config::StackConfig;
use autopilot::entry::{Invocation, Mode};
use autopilot::scaling::target::BoundedBy;
use autopilot::scaling::{Action, ScalingMemory, ServiceObservation};
use autopilot::testkit::{steady_service, World, MEMBER_ACCOUNTS};
use autopilot::AutopilotError;

const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/111122223333/orders";
const MEMORY_KEY: &str = "scaler#service#shop#orders-worker";
const TICK: &str = r#"{"version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
    "detail-type": "Scheduled Event", "source": "aws.events", "account": "111122223333",
    "time": "2026-09-15T02:00:00Z", "region": "us-east-1", "resources": [], "detail": {}}"#;

fn orders(extra: &str) -> String {
    format!(
        r#"{{"scaling": {{"targets": {{"orders": {{"cluster": "shop", "service": "orders-worker",
        "min": 0, "max": 20, "target_per_task": 50, "sqs": {{"queues": ["{QUEUE}"]}}{extra}}}}}}}}}"#
    )
}

fn world(desired: i32) -> World {
    let world = World::new();
    world
        .ecs
        .set_service("shop", "orders-worker", steady_service(desired, desired));
    world
}

fn setup(world: &World, mode: Mode, config: &str) -> Setup {
    world.setup(mode, StackConfig::parse(config).unwrap())
}

fn scaler(world: &World, config: &str) -> AlarmScaler {
    AlarmScaler::new(setup(world, Mode::Live, config), None).unwrap()
}

async fn tick(scaler: &AlarmScaler) -> autopilot::Result<Vec<ServiceTick>> {
    let event: serde_json::Value = serde_json::from_str(TICK).unwrap();
    match scaler.handle(event.into(), Invocation::default()).await? {
        ScalerResponse::Tick { services, .. } => Ok(services),
        other => panic!("expected a tick, got {other:?}"),
    }
}

async fn one(scaler: &AlarmScaler) -> ServiceTick {
    let mut services = tick(scaler).await.unwrap();
    assert_eq!(services.len(), 1, "{services:?}");
    services.remove(0)
}

fn desired(world: &World) -> i32 {
    world.ecs.service("shop", "orders-worker").unwrap().desired
}

#[tokio::test]
async fn a_worker_at_zero_goes_to_five_tasks_in_one_tick_for_250_messages_at_50_a_task() {
    let world = world(0);
    world.signals.set_backlog(QUEUE, 250, 0);
    let scaler = scaler(&world, &orders(""));

    let sized = one(&scaler).await;
    assert_eq!((sized.desired_from, sized.desired_to), (Some(0), Some(5)));
    assert_eq!(sized.action, Action::ScaleOut);
    assert_eq!(sized.decided_by.as_deref(), Some("orders"));
    assert_eq!(sized.signals[0].value, Some(250.0));
    assert_eq!(sized.signals[0].recommendation, Some(5));
    assert!(!sized.dry_run);
    assert_eq!(
        world.ecs.desired_updates(),
        [("shop".into(), "orders-worker".into(), 5)]
    );
    let (memory, revision, change) = world.state.scaling_at(MEMORY_KEY).unwrap();
    assert_eq!(
        (revision, change.as_str()),
        (1, "scale-out 0 -> 5 by orders")
    );
    assert!(memory.last_scale_out_at.is_some());
    let subjects = world.notifier.subjects();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(
        subjects[0].contains("scaled out 0 -> 5 (orders)"),
        "{subjects:?}"
    );
    assert_eq!(sized.message_ids.len(), 1);
    // The tick's cost: one read of the queue, one DescribeServices, one UpdateService.
    assert_eq!(world.calls.count("GetQueueAttributes"), 1);
    assert_eq!(world.calls.count("DescribeServices"), 1);
    assert_eq!(world.calls.count("UpdateService"), 1);
}

#[tokio::test]
async fn drained_the_service_is_held_by_the_stabilisation_window_then_goes_to_zero_after_the_delay()
{
    let world = world(5);
    world.signals.set_backlog(QUEUE, 0, 0);
    let scaler = scaler(&world, &orders(""));

    // The history starts from the current count: nothing comes down at once.
    let held = one(&scaler).await;
    assert_eq!(held.desired_to, Some(5));
    assert_eq!(held.bounded_by, Some(BoundedBy::Stabilization));
    assert_eq!(held.signals[0].recommendation, Some(1), "{held:?}");

    world.clock.advance(Duration::from_secs(150));
    assert_eq!(one(&scaler).await.desired_to, Some(5));
    assert_eq!(desired(&world), 5);

    // Past the window: down to the highest recommendation since (1: still draining).
    world.clock.advance(Duration::from_secs(151));
    let down = one(&scaler).await;
    assert_eq!((down.action, down.desired_to), (Action::ScaleIn, Some(1)));
    assert_eq!(desired(&world), 1);

    // 0 for 300 s and the window past the last 1: zero.
    world.clock.advance(Duration::from_secs(151));
    let zero = one(&scaler).await;
    assert_eq!((zero.action, zero.desired_to), (Action::ScaleIn, Some(0)));
    assert_eq!(desired(&world), 0);
    assert_eq!(world.notifier.subjects().len(), 2);

    // At zero a backlog at or below activation leaves it there.
    let world_at_zero = {
        world.signals.set_backlog(QUEUE, 10, 0);
        let scaler = AlarmScaler::new(
            setup(&world, Mode::Live, &orders(r#", "activation": 10"#)),
            None,
        )
        .unwrap();
        one(&scaler).await
    };
    assert_eq!(world_at_zero.desired_to, Some(0));
    assert!(world_at_zero.signals[0].why.contains("activation"));
}

#[tokio::test]
async fn a_queue_that_cannot_be_read_is_told_once_when_the_fallback_applies_and_once_when_read_again(
) {
    let world = world(3);
    world
        .signals
        .fail_backlog(QUEUE, "AWS.SimpleQueueService.NonExistentQueue");
    let scaler = scaler(&world, &orders(r#", "fallback": {"count": 2}"#));

    for n in 1..=2 {
        let failing = one(&scaler).await;
        assert_eq!(failing.desired_to, Some(3), "read {n}: {failing:?}");
        assert_eq!(failing.signals[0].recommendation, None);
        assert!(failing.events.is_empty());
        world.clock.advance(Duration::from_secs(60));
    }
    assert!(world.notifier.subjects().is_empty());
    // The third failure in a row: the fallback applies, and says so once.
    let fallen = one(&scaler).await;
    assert_eq!(fallen.signals[0].recommendation, Some(2));
    assert_eq!(fallen.events.len(), 1, "{fallen:?}");
    world.clock.advance(Duration::from_secs(400));
    let again = one(&scaler).await;
    assert!(again.events.is_empty());
    assert_eq!(again.desired_to, Some(2), "{again:?}");
    let subjects = world.notifier.subjects();
    let warnings: Vec<_> = subjects
        .iter()
        .filter(|s| s.contains("cannot read the signal of orders"))
        .collect();
    assert_eq!(warnings.len(), 1, "{subjects:?}");
    assert!(warnings[0].contains("goes to 2 tasks"), "{subjects:?}");

    world.signals.set_backlog(QUEUE, 500, 0);
    let read = one(&scaler).await;
    assert_eq!(read.desired_to, Some(10));
    let subjects = world.notifier.subjects();
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains("is read again"))
            .count(),
        1,
        "{subjects:?}"
    );
    let (memory, ..) = world.state.scaling_at(MEMORY_KEY).unwrap();
    assert!(memory.targets.failures.is_empty(), "{memory:?}");
}

#[tokio::test]
async fn several_signals_on_one_service_scale_to_the_largest_and_name_it() {
    let world = world(2);
    world.signals.set_backlog(QUEUE, 100, 0);
    world.signals.set_metric("latency", 30.0);
    let config = format!(
        r#"{{"scaling": {{"targets": {{
        "orders": {{"cluster": "shop", "service": "orders-worker", "min": 1, "max": 20,
            "target_per_task": 50, "sqs": {{"queues": ["{QUEUE}"]}}}},
        "latency": {{"cluster": "shop", "service": "orders-worker", "min": 0, "max": 8,
            "target_per_task": 10, "metric": {{"namespace": "Shop", "metric_name": "Latency",
            "value_is": "per-task"}}}}}}}}}}"#
    );
    let scaler = scaler(&world, &config);
    let sized = one(&scaler).await;
    // orders: 100 / 50 → 2; latency: 2 tasks × 30 / 10 → 6; bounds [1, 8].
    let recommended: Vec<_> = sized
        .signals
        .iter()
        .map(|s| (s.name.as_str(), s.recommendation))
        .collect();
    assert_eq!(recommended, [("latency", Some(6)), ("orders", Some(2))]);
    assert_eq!(sized.desired_to, Some(6));
    assert_eq!(sized.decided_by.as_deref(), Some("latency"));
    assert_eq!(world.calls.count("GetMetricData"), 1);

    // The metric rises past the intersection's max (8, latency's): held at it.
    world.signals.set_metric("latency", 100.0);
    let capped = one(&scaler).await;
    assert_eq!(capped.desired_to, Some(8));
    assert_eq!(capped.bounded_by, Some(BoundedBy::Max));
}

#[tokio::test]
async fn a_tick_of_twelve_services_of_one_cluster_describes_them_in_two_calls() {
    let world = World::new();
    let mut targets = Vec::new();
    for i in 0..12 {
        let service = format!("worker-{i:02}");
        world
            .ecs
            .set_service("shop", &service, steady_service(1, 1));
        let queue = format!("https://sqs.us-east-1.amazonaws.com/111122223333/q{i}");
        world.signals.set_backlog(&queue, 100, 0);
        targets.push(format!(
            r#""t{i}": {{"cluster": "shop", "service": "{service}", "min": 0, "max": 5,
            "target_per_task": 50, "sqs": {{"queues": ["{queue}"]}}}}"#
        ));
    }
    let config = format!(r#"{{"scaling": {{"targets": {{{}}}}}}}"#, targets.join(","));
    let scaler = scaler(&world, &config);
    let services = tick(&scaler).await.unwrap();
    assert_eq!(services.len(), 12);
    assert!(
        services.iter().all(|s| s.desired_to == Some(2)),
        "{services:?}"
    );
    assert_eq!(world.calls.count("DescribeServices"), 2);
    assert_eq!(world.calls.count("GetQueueAttributes"), 12);
    assert_eq!(world.calls.count("UpdateService"), 12);
}

#[tokio::test]
async fn a_missing_service_fails_the_tick_after_the_others_were_sized() {
    let world = World::new();
    world
        .ecs
        .set_service("shop", "present", steady_service(0, 0));
    world.signals.set_backlog(QUEUE, 100, 0);
    let config = format!(
        r#"{{"scaling": {{"targets": {{
        "a-gone": {{"cluster": "shop", "service": "gone", "min": 0, "max": 5,
            "target_per_task": 50, "sqs": {{"queues": ["{QUEUE}"]}}}},
        "b-present": {{"cluster": "shop", "service": "present", "min": 0, "max": 5,
            "target_per_task": 50, "sqs": {{"queues": ["{QUEUE}"]}}}}}}}}}}"#
    );
    let scaler = scaler(&world, &config);
    let error = tick(&scaler).await.unwrap_err();
    assert_eq!(error.error_type(), "ServiceNotFound");
    assert!(
        error.to_string().contains("scaling.targets.a-gone.service"),
        "{error}"
    );
    assert_eq!(
        world.ecs.desired_updates(),
        [("shop".into(), "present".into(), 2)]
    );
}

#[tokio::test]
async fn losing_the_race_for_the_service_means_reading_it_and_deciding_again() {
    let world = world(0);
    world.signals.set_backlog(QUEUE, 250, 0);
    world.state.scale_concurrently(ScalingMemory {
        last_scale_out_at: Some(1),
        ..ScalingMemory::default()
    });
    let scaler = scaler(&world, &orders(""));
    let sized = one(&scaler).await;
    assert!(
        sized.notes.iter().any(|n| n.contains("decided again")),
        "{sized:?}"
    );
    assert_eq!(sized.desired_to, Some(5));
    assert_eq!(world.ecs.desired_updates().len(), 1);
    assert_eq!(world.calls.count("DescribeServices"), 2);
}

#[tokio::test]
async fn dry_run_and_a_policys_dry_run_decide_but_change_nothing() {
    for (mode, extra) in [(Mode::DryRun, ""), (Mode::Live, r#", "dry_run": true"#)] {
        let world = world(0);
        world.signals.set_backlog(QUEUE, 250, 0);
        let scaler = AlarmScaler::new(setup(&world, mode, &orders(extra)), None).unwrap();
        let sized = one(&scaler).await;
        assert_eq!(sized.desired_to, Some(5), "{mode:?}");
        assert!(sized.dry_run);
        assert!(world.ecs.desired_updates().is_empty());
        assert!(world.state.scaling_at(MEMORY_KEY).is_none());
        assert_eq!(world.calls.count("UpdateService"), 0);
    }
}

#[tokio::test]
async fn offline_decides_from_the_assumed_readings_without_a_call() {
    let world = world(0);
    let assumed = Assumed {
        service: Some(ServiceObservation {
            desired: 0,
            running: 0,
            deployment_in_progress: false,
        }),
        backlogs: [("orders".to_owned(), 250.0)].into(),
        ..Assumed::default()
    };
    let scaler = AlarmScaler::new(setup(&world, Mode::Offline, &orders("")), assumed).unwrap();
    let sized = one(&scaler).await;
    assert_eq!(sized.desired_to, Some(5));
    assert!(world.calls.log().is_empty(), "{:?}", world.calls.log());

    let typo = Assumed {
        backlogs: [("order".to_owned(), 250.0)].into(),
        ..Assumed::default()
    };
    let error = AlarmScaler::new(setup(&world, Mode::Offline, &orders("")), typo).unwrap_err();
    assert!(
        error.to_string().contains("no target policy `order`"),
        "{error}"
    );
    let wrong_kind = Assumed {
        metrics: [("orders".to_owned(), 250.0)].into(),
        ..Assumed::default()
    };
    let error =
        AlarmScaler::new(setup(&world, Mode::Offline, &orders("")), wrong_kind).unwrap_err();
    assert!(
        error.to_string().contains("reads sqs, not metric"),
        "{error}"
    );
}

#[tokio::test]
async fn a_members_queue_is_read_through_that_members_role() {
    let member = MEMBER_ACCOUNTS[0];
    let queue = format!("https://sqs.eu-west-1.amazonaws.com/{member}/orders");
    let world = world(0);
    world
        .members
        .add(member)
        .signals
        .set_backlog(&queue, 120, 0);
    let config = orders("").replace(QUEUE, &queue);
    let scaler = scaler(&world, &config);
    let sized = one(&scaler).await;
    assert_eq!(sized.desired_to, Some(3));
    assert!(world
        .members
        .asked()
        .iter()
        .any(|s| s.account == member && s.region == "eu-west-1"));
    assert_eq!(world.calls.count("GetQueueAttributes"), 0);
}

#[test]
fn a_queue_or_metric_of_an_account_the_stack_does_not_act_for_is_refused_at_cold_start() {
    let world = World::new();
    let foreign = "https://sqs.us-east-1.amazonaws.com/999988887777/orders";
    let metric = r#"{"scaling": {"targets": {"latency": {"cluster": "shop",
        "service": "orders-worker", "min": 0, "max": 8, "target_per_task": 10,
        "metric": {"namespace": "Shop", "metric_name": "Latency", "account": "999988887777"}}}}}"#;
    for (config, field) in [
        (
            orders("").replace(QUEUE, foreign),
            "scaling.targets.orders.sqs.queues[0]",
        ),
        (metric.to_owned(), "scaling.targets.latency.metric.account"),
    ] {
        match AlarmScaler::new(setup(&world, Mode::Live, &config), None) {
            Err(AutopilotError::InvalidConfig {
                field: named,
                problem,
            }) => {
                assert_eq!(named, field);
                assert!(problem.contains("999988887777"), "{problem}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_failed_update_gives_the_change_time_back_and_keeps_what_was_read() {
    let world = world(0);
    world
        .calls
        .fail_next("UpdateService", "ThrottlingException", 1);
    world.signals.set_backlog(QUEUE, 250, 0);
    let scaler = scaler(&world, &orders(""));
    let error = tick(&scaler).await.unwrap_err();
    assert!(error.to_string().contains("ThrottlingException"), "{error}");
    let (memory, revision, change) = world.state.scaling_at(MEMORY_KEY).unwrap();
    assert_eq!(
        (revision, change.as_str()),
        (2, "reverted: UpdateService failed")
    );
    assert_eq!(memory.last_scale_out_at, None);
    assert!(!memory.targets.history.0.is_empty());
    // The next tick scales.
    assert_eq!(one(&scaler).await.desired_to, Some(5));
}

#[tokio::test]
async fn an_alarm_policy_and_a_target_policy_on_one_service_do_not_overrule_each_other_downward() {
    let world = world(6);
    // The alarm is in ALARM (its steps took the service to 6); the queue asks for 4.
    world
        .alarms
        .know(&common::fixture("alarms/direct-lambda-action.json"));
    world.signals.set_backlog(QUEUE, 200, 0);
    let config = format!(
        r#"{{"scaling": {{
        "alarms": {{"orders-queue-backlog-high": {{"cluster": "shop", "service": "orders-worker",
            "min": 0, "max": 20, "alarm_steps": [{{"lower": 0, "adjustment": 2}}],
            "ok_steps": [{{"upper": 0, "adjustment": -3}}], "scale_in_cooldown_s": 0,
            "scale_out_cooldown_s": 0}}}},
        "targets": {{"orders": {{"cluster": "shop", "service": "orders-worker", "min": 0,
            "max": 20, "target_per_task": 50, "scale_in_stabilization_s": 0,
            "sqs": {{"queues": ["{QUEUE}"]}}}}}}}}}}"#
    );
    let scaler = scaler(&world, &config);
    let held = one(&scaler).await;
    assert_eq!(held.desired_to, Some(6), "{held:?}");
    assert_eq!(
        held.decided_by.as_deref(),
        Some("orders-queue-backlog-high")
    );
    let alarm = held.signals.iter().find(|s| s.kind == "alarm").unwrap();
    assert_eq!(alarm.recommendation, Some(6), "{held:?}");
    assert!(world.ecs.desired_updates().is_empty());

    // The alarm returns to OK: its step (−3) would leave 3, the queue's latest tick asked for 4.
    let ok = common::fixture("alarms/eventbridge-ok.json");
    let outcome = match scaler
        .handle(ok.into(), Invocation::default())
        .await
        .unwrap()
    {
        ScalerResponse::One(outcome) => outcome,
        other => panic!("{other:?}"),
    };
    assert_eq!((outcome.action, outcome.to), (Action::ScaleIn, Some(4)));
    assert!(
        outcome.reason.contains("target policies recommend 4"),
        "{}",
        outcome.reason
    );
    assert_eq!(desired(&world), 4);
}

#[tokio::test]
async fn an_open_schedule_raises_min_at_once_and_a_schedule_must_bound_a_sized_service() {
    let world = world(1);
    world.signals.set_backlog(QUEUE, 0, 0);
    let config = format!(
        r#"{{"scaling": {{
        "targets": {{"orders": {{"cluster": "shop", "service": "orders-worker", "min": 0,
            "max": 20, "target_per_task": 50, "sqs": {{"queues": ["{QUEUE}"]}}}}}},
        "schedules": {{"peak": {{"cluster": "shop", "service": "orders-worker",
            "cron": "cron(* * * * ? *)", "timezone": "Europe/Berlin", "duration_s": 120,
            "min": 4}}}}}}}}"#
    );
    let scaler = scaler(&world, &config);
    let raised = one(&scaler).await;
    assert_eq!(
        (raised.action, raised.desired_to),
        (Action::ScaleOut, Some(4))
    );
    assert_eq!(
        raised.bounded_by,
        Some(BoundedBy::Schedule("peak".into())),
        "{raised:?}"
    );
    assert_eq!(desired(&world), 4);

    let not_sized = config.replace(
        r#""service": "orders-worker",
            "cron""#,
        r#""service": "billing-worker",
            "cron""#,
    );
    match StackConfig::parse(&not_sized) {
        Err(AutopilotError::InvalidConfig { field, problem }) => {
            assert_eq!(field, "scaling.schedules.peak.service");
            assert!(problem.contains("shop/billing-worker"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
}
