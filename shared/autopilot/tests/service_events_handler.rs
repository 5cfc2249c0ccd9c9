//! `task-triage` on service events (deployment state changes, service actions), on the in-memory
//! ports: which notify, what a failed deployment's notification joins, folding, duplicates,
//! failing enrichment and overrides.

mod common;

use autopilot::app::triage::{Decision, TaskTriage, TriageOutcome};
use autopilot::config::StackConfig;
use autopilot::domain::{DeploymentSnapshot, ServiceSnapshot, Severity};
use autopilot::entry::{Invocation, Mode};
use autopilot::events::ecs::TaskDetail;
use autopilot::state::ClaimStatus;
use autopilot::testkit::World;
use common::{assert_noted, fixture};

const TD: &str = "arn:aws:ecs:us-east-1:111122223333:task-definition/orders-api";

fn deployment(id: &str, status: &str, revision: u32, rollout: &str) -> DeploymentSnapshot {
    DeploymentSnapshot {
        id: id.into(),
        status: Some(status.into()),
        task_definition: Some(format!("{TD}:{revision}")),
        rollout_state: Some(rollout.into()),
        ..DeploymentSnapshot::default()
    }
}

fn crashed(revision: u32, i: usize) -> TaskDetail {
    serde_json::from_value(serde_json::json!({
        "taskArn": format!("arn:aws:ecs:us-east-1:111122223333:task/shop/{i:032x}"),
        "clusterArn": "arn:aws:ecs:us-east-1:111122223333:cluster/shop",
        "taskDefinitionArn": format!("{TD}:{revision}"), "group": "service:orders-api", "lastStatus": "STOPPED",
        "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
        "containers": [{"name": "orders-api", "exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}]
    }))
    .unwrap()
}

/// orders-api:18 failed and is being rolled back to :17; its five tasks were OOM-killed.
fn world() -> World {
    let world = World::new();
    world.ecs.set_service(
        "shop",
        "orders-api",
        ServiceSnapshot {
            status: Some("ACTIVE".into()),
            desired: 2,
            running: 0,
            deployments: 2,
            deployment_list: vec![
                deployment("ecs-svc/1900000000000000019", "PRIMARY", 17, "IN_PROGRESS"),
                deployment("ecs-svc/1800000000000000018", "ACTIVE", 18, "FAILED"),
            ],
            ..ServiceSnapshot::default()
        },
    );
    world.ecs.set_stopped_tasks(
        "shop",
        "orders-api",
        (0..5).map(|i| crashed(18, i)).collect(),
    );
    world
}

fn triage(world: &World, config: &str) -> TaskTriage {
    TaskTriage::new(world.setup(Mode::Live, StackConfig::parse(config).unwrap()))
}

async fn handle(triage: &TaskTriage, event: serde_json::Value) -> autopilot::Result<TriageOutcome> {
    triage.handle(event.into(), Invocation::default()).await
}

#[tokio::test]
async fn a_failed_deployment_is_told_with_what_failed_and_where_it_went_back() {
    let world = world();
    let outcome = handle(
        &triage(&world, "{}"),
        fixture("service/deployment-failed.json"),
    )
    .await
    .unwrap();
    assert_eq!(
        (outcome.decision, outcome.service.as_deref()),
        (Decision::Notify, Some("shop/orders-api"))
    );
    let diagnosis = outcome.diagnosis.unwrap();
    assert_eq!(
        (diagnosis.category.as_str(), diagnosis.severity),
        ("deployment-failed", Severity::Critical)
    );
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .subject
            .contains("deployment of orders-api:18 failed"),
        "{}",
        sent[0].subject
    );
    assert!(
        sent[0].message.contains("5 of 5 new tasks") && sent[0].message.contains("(oom)"),
        "{}",
        sent[0].message
    );
    assert!(
        sent[0].message.contains("rolled back to orders-api:17"),
        "{}",
        sent[0].message
    );
    assert_eq!(
        (
            world.calls.count("ListTasks"),
            world.calls.count("DescribeTasks")
        ),
        (1, 1)
    );
    let key = "dedup#arn:aws:ecs:us-east-1:111122223333:service/shop/orders-api#event-9a1c0e51-0002-4e0b-9f00-000000000002";
    assert_eq!(
        world.state.claim_at(key).unwrap().status,
        Some(ClaimStatus::Complete)
    );
    assert_eq!(
        world
            .state
            .window_at("storm#shop#service:orders-api#deployment-failed")
            .unwrap()
            .count,
        1
    );
}

#[tokio::test]
async fn progress_completion_and_steady_state_are_silent_and_only_look_for_an_incident() {
    let world = world();
    let triage = triage(&world, "{}");
    for name in [
        "deployment-in-progress",
        "deployment-completed",
        "steady-state",
    ] {
        let outcome = handle(&triage, fixture(&format!("service/{name}.json")))
            .await
            .unwrap();
        assert_eq!(outcome.decision, Decision::Silent, "{name}");
    }
    assert_eq!(
        world.calls.log(),
        ["GetItem", "GetItem"],
        "a completed deployment and a steady state read the incident (none open); nothing else"
    );
}

#[tokio::test]
async fn the_rollback_and_impaired_starts_are_told() {
    let world = world();
    let triage = triage(&world, "{}");
    let rollback = handle(&triage, fixture("service/deployment-rollback.json"))
        .await
        .unwrap();
    assert_eq!(
        (
            rollback.decision,
            rollback.diagnosis.unwrap().category.as_str()
        ),
        (Decision::Notify, "rollback")
    );
    let impaired = handle(&triage, fixture("service/start-impaired.json"))
        .await
        .unwrap();
    assert_eq!(impaired.decision, Decision::Notify);
    let subjects = world.notifier.subjects();
    assert!(subjects[0].contains("is rolling back"), "{subjects:?}");
    let message = &world.notifier.sent()[0].message;
    assert!(
        message.contains("rolled back to orders-api:17"),
        "{message}"
    );
    assert!(
        subjects[1].contains("cannot start its tasks"),
        "{subjects:?}"
    );
}

#[tokio::test]
async fn repeated_impaired_starts_fold_and_a_redelivery_is_a_duplicate() {
    let world = world();
    let triage = triage(&world, "{}");
    let mut decisions = Vec::new();
    for i in 0..3 {
        let mut event = fixture("service/start-impaired.json");
        event["id"] = format!("impaired-{i}").into();
        decisions.push(handle(&triage, event).await.unwrap().decision);
    }
    assert_eq!(
        decisions,
        [Decision::Notify, Decision::Folded, Decision::Folded]
    );
    let mut again = fixture("service/start-impaired.json");
    again["id"] = "impaired-0".into();
    assert_eq!(
        handle(&triage, again).await.unwrap().decision,
        Decision::Duplicate
    );
    assert_eq!(world.calls.count("Publish"), 1);
    assert_eq!(
        world
            .state
            .window_at("storm#shop#service:orders-api#start-impaired")
            .unwrap()
            .count,
        3
    );
}

#[tokio::test]
async fn placement_and_configuration_failures_are_explained_without_reading_tasks() {
    let world = world();
    let triage = triage(&world, "{}");
    let placement = handle(&triage, fixture("service/placement-failure-memory.json"))
        .await
        .unwrap();
    assert_eq!(
        placement.diagnosis.unwrap().rule,
        "event:SERVICE_TASK_PLACEMENT_FAILURE/placement-memory"
    );
    let role = handle(&triage, fixture("service/configuration-failure-role.json"))
        .await
        .unwrap();
    assert_eq!(
        role.diagnosis.unwrap().category.as_str(),
        "configuration-failure"
    );
    assert_eq!(world.calls.count("ListTasks"), 0);
    let message = &world.notifier.sent()[0].message;
    assert!(
        message.contains("enough free memory") && message.contains("shop-asg"),
        "{message}"
    );
}

#[tokio::test]
async fn failing_enrichment_never_blocks_a_service_notification() {
    let world = world();
    world
        .calls
        .fail_always("DescribeServices", "AccessDeniedException");
    world
        .calls
        .fail_always("ListTasks", "AccessDeniedException");
    let outcome = handle(
        &triage(&world, "{}"),
        fixture("service/deployment-failed.json"),
    )
    .await
    .unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_noted(
        &outcome.notes,
        "service context could not be fetched: ecs.DescribeServices failed: AccessDeniedException",
    );
    assert_noted(
        &outcome.notes,
        "stopped tasks could not be read: ecs.ListTasks failed: AccessDeniedException",
    );
    assert!(world.notifier.sent()[0]
        .message
        .contains("no stopped task of it could be read"));
}

#[tokio::test]
async fn categories_are_configurable_and_a_missing_event_name_is_named() {
    let world = world();
    let triage = triage(
        &world,
        r#"{"triage": {"categories": {"throttled": {"notify": false}, "steady-state": {"notify": true}}}}"#,
    );
    assert_eq!(
        handle(&triage, fixture("service/throttled.json"))
            .await
            .unwrap()
            .decision,
        Decision::Silent
    );
    assert_eq!(
        handle(&triage, fixture("service/steady-state.json"))
            .await
            .unwrap()
            .decision,
        Decision::Notify
    );
    let mut nameless = fixture("service/start-impaired.json");
    nameless["detail"]
        .as_object_mut()
        .unwrap()
        .remove("eventName");
    let error = handle(&triage, nameless).await.unwrap_err();
    assert_eq!(error.error_type(), "InvalidEvent");
    assert!(error.to_string().contains("detail.eventName"), "{error}");
}
