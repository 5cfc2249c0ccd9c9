//! `alarm-scaler` on the in-memory ports: bounds from the scalable target, one change per
//! cooldown across racing invocations, a failed UpdateService, duplicates, the tick, and the
//! modes.

mod common;

use std::collections::BTreeMap;

use autopilot::app::scaler::{AlarmScaler, ScalerResponse, ScalingOutcome};
use autopilot::app::Setup;
use autopilot::config::StackConfig;
use autopilot::domain::AlarmState;
use autopilot::entry::{Invocation, Mode};
use autopilot::events::alarm::{AlarmTransition, Delivery};
use autopilot::scaling::{Action, ClampedBy, ScalingMemory, ServiceObservation, TargetBounds};
use autopilot::state::ClaimStatus;
use autopilot::testkit::{steady_service, World, START};
use common::{assert_noted, fixture};

const POLICY: &str = r#"{"scaling": {"alarms": {"orders-queue-backlog-high": {
    "cluster": "shop", "service": "orders-worker", "min": 0, "max": 10,
    "alarm_steps": [
        {"lower": 0, "upper": 100, "adjustment": 1},
        {"lower": 100, "upper": 500, "adjustment": 3},
        {"lower": 500, "adjustment": 5}],
    "ok_steps": [{"upper": 0, "adjustment": -1}],
    "repeat_while_alarm": true}}}}"#;
const ALARM: &str = "alarms/direct-lambda-action.json";
const MEMORY_KEY: &str = "scaler#service#shop#orders-worker";

fn world(desired: i32, running: i32) -> World {
    let world = World::new();
    world
        .ecs
        .set_service("shop", "orders-worker", steady_service(desired, running));
    world.alarms.know(&fixture(ALARM));
    world
}

fn setup(world: &World, mode: Mode) -> Setup {
    world.setup(mode, StackConfig::parse(POLICY).unwrap())
}

fn scaler(world: &World) -> AlarmScaler {
    AlarmScaler::new(setup(world, Mode::Live), None).unwrap()
}

async fn one(scaler: &AlarmScaler, event: serde_json::Value) -> autopilot::Result<ScalingOutcome> {
    match scaler.handle(event.into(), Invocation::default()).await? {
        ScalerResponse::One(outcome) => Ok(*outcome),
        other => panic!("expected one outcome, got {other:?}"),
    }
}

fn transition_claim(world: &World) -> Option<ClaimStatus> {
    let keys = world.state.claim_keys();
    assert!(keys.len() <= 1, "{keys:?}");
    keys.first()
        .and_then(|key| world.state.claim_at(key))
        .and_then(|c| c.status)
}

#[tokio::test]
async fn scalable_target_bounds_clamp_and_only_the_desired_count_changes() {
    let world = world(2, 2);
    world
        .targets
        .register("shop", "orders-worker", TargetBounds { min: 1, max: 4 });
    let outcome = one(&scaler(&world), fixture(ALARM)).await.unwrap();
    assert_eq!(
        (outcome.action, outcome.from, outcome.to),
        (Action::ScaleOut, Some(2), Some(4))
    );
    assert_eq!(outcome.clamped_by, Some(ClampedBy::ScalableTargetMax));
    assert_eq!(
        world.ecs.desired_updates(),
        [("shop".into(), "orders-worker".into(), 4)]
    );
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].subject.contains("scaled out 2 -> 4"),
        "{}",
        sent[0].subject
    );
    assert!(sent[0].message.contains("scalable-target-max"));
    assert_eq!(outcome.message_id.as_deref(), Some("m-1"));
    assert_eq!(transition_claim(&world), Some(ClaimStatus::Complete));
    let (memory, revision, _) = world.state.scaling_at(MEMORY_KEY).unwrap();
    assert_eq!((memory.last_scale_out_at, revision), (Some(START), 1));
}

#[tokio::test]
async fn an_unreadable_scalable_target_falls_back_to_the_policy_bounds_with_a_note() {
    let world = world(2, 2);
    world
        .calls
        .fail_always("DescribeScalableTargets", "AccessDeniedException");
    let outcome = one(&scaler(&world), fixture(ALARM)).await.unwrap();
    assert_eq!(
        (outcome.action, outcome.to),
        (Action::ScaleOut, Some(5)),
        "412 is 312 over: +3"
    );
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("policy bounds used") && n.contains("AccessDeniedException")),
        "{:?}",
        outcome.notes
    );
    assert_eq!(world.ecs.desired_updates().len(), 1);
}

#[tokio::test]
async fn losing_the_race_for_the_service_means_deciding_again_inside_the_cooldown() {
    let world = world(2, 2);
    world.state.scale_concurrently(ScalingMemory {
        last_scale_out_at: Some(START),
        last_scale_in_at: None,
        ..Default::default()
    });
    let outcome = one(&scaler(&world), fixture(ALARM)).await.unwrap();
    assert_eq!(outcome.action, Action::None);
    assert!(
        outcome.reason.contains("scale-out cooldown"),
        "{}",
        outcome.reason
    );
    assert_noted(
        &outcome.notes,
        "attempt 1: another invocation scaled shop/orders-worker first",
    );
    assert!(
        world.ecs.desired_updates().is_empty(),
        "one change per cooldown across invocations"
    );
    assert_eq!(
        world.calls.count("Publish"),
        0,
        "a cooldown is not worth a notification"
    );
    assert_eq!(transition_claim(&world), Some(ClaimStatus::Complete));
}

#[tokio::test]
async fn a_failed_update_gives_the_cooldown_back_and_releases_the_transition() {
    let world = world(2, 2);
    world
        .calls
        .fail_next("UpdateService", "ThrottlingException", 1);
    let scaler = scaler(&world);
    let error = one(&scaler, fixture(ALARM)).await.unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    assert!(
        error
            .to_string()
            .contains("ecs.UpdateService failed: ThrottlingException"),
        "{error}"
    );
    let (memory, revision, change) = world.state.scaling_at(MEMORY_KEY).unwrap();
    assert_eq!(
        (memory, revision),
        (ScalingMemory::default(), 2),
        "recorded, then reverted"
    );
    assert!(change.starts_with("reverted"), "{change}");
    assert_eq!(transition_claim(&world), Some(ClaimStatus::Retryable));
    let retry = one(&scaler, fixture(ALARM)).await.unwrap();
    assert_eq!(
        (retry.action, retry.to),
        (Action::ScaleOut, Some(5)),
        "the retry is not blocked by a change that never was"
    );
    assert_eq!(world.ecs.desired_updates().len(), 1);
}

#[tokio::test]
async fn a_lost_notification_after_a_change_names_the_change() {
    let world = world(2, 2);
    world.calls.fail_next("Publish", "InternalError", 1);
    let error = one(&scaler(&world), fixture(ALARM)).await.unwrap_err();
    assert_eq!(error.error_type(), "NotificationLost");
    assert!(
        error
            .to_string()
            .contains("shop/orders-worker was scaled 2 -> 5"),
        "{error}"
    );
    assert_eq!(world.ecs.desired_updates().len(), 1, "the change stands");
}

#[tokio::test]
async fn a_duplicate_transition_does_nothing() {
    let world = world(2, 2);
    let scaler = scaler(&world);
    one(&scaler, fixture(ALARM)).await.unwrap();
    let calls = world.calls.count("DescribeServices");
    let again = one(&scaler, fixture(ALARM)).await.unwrap();
    assert_eq!(again.action, Action::None);
    assert_eq!(
        again.reason,
        "transition already handled (scale-out): duplicate delivery"
    );
    assert_eq!(
        world.calls.count("DescribeServices"),
        calls,
        "not even read"
    );
    assert_eq!(world.ecs.desired_updates().len(), 1);
}

#[tokio::test]
async fn the_tick_repeats_the_step_for_alarms_still_in_alarm() {
    let world = world(4, 4);
    world.alarms.set(vec![AlarmTransition {
        delivery: Delivery::DescribeAlarms,
        alarm_name: "orders-queue-backlog-high".into(),
        alarm_arn: Some(
            "arn:aws:cloudwatch:us-east-1:111122223333:alarm:orders-queue-backlog-high"
                .parse()
                .unwrap(),
        ),
        state: AlarmState::Alarm,
        previous_state: None,
        state_timestamp: None,
        state_at: None,
        reason: None,
        metric_value: Some(640.0),
        threshold: Some(100.0),
        dimensions: BTreeMap::new(),
        account: None,
    }]);
    let response = scaler(&world)
        .handle(
            serde_json::json!({"tick": true}).into(),
            Invocation::default(),
        )
        .await
        .unwrap();
    let ScalerResponse::Tick { results, .. } = response else {
        panic!("expected a tick response")
    };
    assert_eq!(results.len(), 1);
    assert_eq!(
        (results[0].action, results[0].to),
        (Action::ScaleOut, Some(9))
    );
    assert!(
        world.state.claim_keys().is_empty(),
        "ticks are not transitions: no claim"
    );
    assert_eq!(world.ecs.desired_updates().len(), 1);
}

#[tokio::test]
async fn a_missing_service_is_named() {
    let world = World::new();
    world.alarms.know(&fixture(ALARM));
    let error = one(&scaler(&world), fixture(ALARM)).await.unwrap_err();
    assert_eq!(error.error_type(), "ServiceNotFound");
    assert!(
        error.to_string().contains("orders-worker")
            && error
                .to_string()
                .contains("scaling.alarms.orders-queue-backlog-high.service"),
        "{error}"
    );
}

#[tokio::test]
async fn dry_run_decides_but_changes_nothing() {
    let world = world(2, 2);
    let scaler = AlarmScaler::new(setup(&world, Mode::DryRun), None).unwrap();
    let outcome = one(&scaler, fixture(ALARM)).await.unwrap();
    assert_eq!(
        (outcome.action, outcome.to, outcome.dry_run),
        (Action::ScaleOut, Some(5), true)
    );
    assert_noted(&outcome.notes, "dry-run: not sent to default:");
    assert!(world.ecs.desired_updates().is_empty() && world.state.claim_keys().is_empty());
    assert!(world.state.scaling_at(MEMORY_KEY).is_none());
}

#[tokio::test]
async fn offline_needs_the_assumed_service_and_makes_no_call() {
    let world = world(2, 2);
    let bare = AlarmScaler::new(setup(&world, Mode::Offline), None).unwrap();
    let error = one(&bare, fixture(ALARM)).await.unwrap_err();
    assert_eq!(error.error_type(), "Usage");
    let assumed = ServiceObservation {
        desired: 2,
        running: 2,
        deployment_in_progress: false,
    };
    let scaler = AlarmScaler::new(setup(&world, Mode::Offline), Some(assumed)).unwrap();
    let outcome = one(&scaler, fixture(ALARM)).await.unwrap();
    assert_eq!((outcome.action, outcome.to), (Action::ScaleOut, Some(5)));
    assert!(world.calls.log().is_empty(), "{:?}", world.calls.log());
}

#[test]
fn a_live_scaler_needs_a_state_table() {
    let world = world(2, 2);
    let setup = world.setup_with(Mode::Live, StackConfig::parse(POLICY).unwrap(), false);
    let error = AlarmScaler::new(setup, None).unwrap_err();
    assert_eq!(error.error_type(), "InvalidConfig");
    assert!(error.to_string().contains("STATE_TABLE"), "{error}");
}
