//! The watchdog on the in-memory ports: a service short of its desired count is told once per
//! degradation (after the grace), tasks stuck before RUNNING are told, an incident resolves once
//! the service has run at its desired count with no new failure, and a tick's AWS calls are
//! bounded as documented.

mod common;

use std::time::Duration;

use autopilot::app::triage::{Decision, TaskTriage, TriageResponse};
use autopilot::config::StackConfig;
use autopilot::domain::{ServiceSnapshot, Severity};
use autopilot::entry::{Invocation, Mode};
use autopilot::events::ecs::TaskDetail;
use autopilot::incident::IncidentStatus;
use autopilot::testkit::{World, START};
use common::fixture;

const CONFIG: &str =
    r#"{"triage": {"watch": {"clusters": [{"cluster": "shop", "services": ["orders-*"]}]}}}"#;

fn service(desired: i32, running: i32) -> ServiceSnapshot {
    ServiceSnapshot {
        status: Some("ACTIVE".into()),
        desired,
        running,
        ..ServiceSnapshot::default()
    }
}

fn pending_task(created: i64) -> TaskDetail {
    serde_json::from_value(serde_json::json!({
        "taskArn": "arn:aws:ecs:us-east-1:111122223333:task/shop/0000000000000000000000000000pend",
        "lastStatus": "PROVISIONING", "capacityProviderName": "FARGATE_SPOT",
        "createdAt": chrono::DateTime::from_timestamp(created, 0).unwrap().to_rfc3339()
    }))
    .unwrap()
}

fn triage(world: &World) -> TaskTriage {
    TaskTriage::new(world.setup(Mode::Live, StackConfig::parse(CONFIG).unwrap()))
}

async fn tick(
    triage: &TaskTriage,
) -> (
    usize,
    Vec<autopilot::app::triage::TriageOutcome>,
    Vec<String>,
) {
    match triage
        .respond(
            serde_json::json!({"tick": true}).into(),
            Invocation::default(),
        )
        .await
        .unwrap()
    {
        TriageResponse::Tick {
            checked,
            results,
            notes,
            ..
        } => (checked, results, notes),
        other => panic!("expected a tick, got {other:?}"),
    }
}

#[tokio::test]
async fn a_service_at_zero_of_two_is_told_once_after_the_grace() {
    let world = World::new();
    world.ecs.set_service("shop", "orders-api", service(2, 0));
    world.ecs.set_service("shop", "payments", service(2, 0));
    let triage = triage(&world);
    let (checked, results, _) = tick(&triage).await;
    assert_eq!(
        (checked, results.len()),
        (1, 0),
        "only orders-*; short, but not for long yet"
    );
    world.clock.advance(Duration::from_secs(600));
    let (_, results, _) = tick(&triage).await;
    assert_eq!(results.len(), 1);
    let degraded = &results[0];
    assert_eq!(degraded.decision, Decision::Notify);
    let diagnosis = degraded.diagnosis.as_ref().unwrap();
    assert_eq!(
        (diagnosis.category.as_str(), diagnosis.severity),
        ("service-degraded", Severity::Critical)
    );
    assert_eq!(
        degraded.incident.as_ref().unwrap().status,
        IncidentStatus::Open
    );
    world.clock.advance(Duration::from_secs(60));
    let (_, results, _) = tick(&triage).await;
    assert_eq!(
        results[0].decision,
        Decision::Duplicate,
        "the same degradation is not told again"
    );
    assert_eq!(world.calls.count("Publish"), 1);
    let subject = &world.notifier.subjects()[0];
    assert!(
        subject.contains("0 of 2 tasks running for 10 min"),
        "{subject}"
    );
}

#[tokio::test]
async fn tasks_stuck_before_running_are_told_with_their_capacity_provider() {
    let world = World::new();
    world.ecs.set_service("shop", "orders-api", service(2, 1));
    world
        .ecs
        .set_service_tasks("shop", "orders-api", vec![pending_task(START - 1_000)]);
    let (_, results, _) = tick(&triage(&world)).await;
    assert_eq!(results.len(), 1);
    let diagnosis = results[0].diagnosis.as_ref().unwrap();
    assert_eq!(diagnosis.category.as_str(), "stuck-pending");
    assert!(
        diagnosis.evidence[0].contains("PROVISIONING on FARGATE_SPOT"),
        "{:?}",
        diagnosis.evidence
    );
    assert_eq!(
        (
            world.calls.count("ListTasks"),
            world.calls.count("DescribeTasks")
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn an_incident_resolves_once_the_service_is_whole_again_for_long_enough() {
    let world = World::new();
    world.ecs.set_service("shop", "orders-api", service(3, 3));
    let triage = triage(&world);
    let oom = triage
        .handle(
            fixture("ecs/service-oom.json").into(),
            Invocation::default(),
        )
        .await
        .unwrap();
    let id = oom.incident.unwrap().id;
    world.clock.advance(Duration::from_secs(300));
    let (_, results, _) = tick(&triage).await;
    assert!(results.is_empty(), "not yet: the failure is 5 minutes old");
    world.clock.advance(Duration::from_secs(300));
    let (_, results, _) = tick(&triage).await;
    assert_eq!(results.len(), 1);
    let tag = results[0].incident.clone().unwrap();
    assert_eq!(
        (tag.id.as_str(), tag.status, results[0].decision),
        (id.as_str(), IncidentStatus::Resolved, Decision::Notify)
    );
    assert!(world.notifier.sent()[1]
        .message
        .contains("3 of 3 tasks running with no new failure for 10 min"));
    let (_, results, _) = tick(&triage).await;
    assert!(results.is_empty(), "resolved once");
}

#[tokio::test]
async fn a_tick_costs_what_the_readme_says() {
    let world = World::new();
    for i in 0..25 {
        world
            .ecs
            .set_service("shop", &format!("orders-{i:02}"), service(1, 1));
    }
    world.ecs.set_service("shop", "orders-short", service(2, 1));
    let (checked, _, _) = tick(&triage(&world)).await;
    assert_eq!(checked, 26);
    assert_eq!(world.calls.count("ListServices"), 1);
    assert_eq!(world.calls.count("DescribeServices"), 3, "batches of 10");
    assert_eq!(
        world.calls.count("GetItem"),
        26 + 25,
        "short-since for each, incident for each whole one"
    );
    assert_eq!(
        world.calls.count("ListTasks"),
        1,
        "tasks only for the short service"
    );
}

#[tokio::test]
async fn the_cap_and_the_modes_are_said() {
    let world = World::new();
    for i in 0..5 {
        world
            .ecs
            .set_service("shop", &format!("orders-{i}"), service(1, 1));
    }
    let capped = r#"{"triage": {"watch": {"clusters": ["shop", "other"], "max_services": 5}}}"#;
    let triage = TaskTriage::new(world.setup(Mode::Live, StackConfig::parse(capped).unwrap()));
    let (checked, _, notes) = tick(&triage).await;
    assert_eq!(checked, 5);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("cap of 5 services per tick reached before cluster other")),
        "{notes:?}"
    );
    let offline = TaskTriage::new(world.setup(Mode::Offline, StackConfig::parse(CONFIG).unwrap()));
    let (_, _, notes) = tick(&offline).await;
    assert!(notes[0].starts_with("offline"), "{notes:?}");
    let unwatched = TaskTriage::new(world.setup(Mode::Live, StackConfig::default()));
    let (_, _, notes) = tick(&unwatched).await;
    assert!(notes[0].contains("no cluster"), "{notes:?}");
    let scheduled =
        serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    assert!(matches!(
        triage
            .respond(scheduled.into(), Invocation::default())
            .await
            .unwrap(),
        TriageResponse::Tick { .. }
    ));
}
