//! Incidents on the in-memory ports: a service's failures open one incident and fold into it,
//! a recovery resolves it once with one `resolved` notification, every notification carries the
//! incident's id and status, and all of it holds under redelivery, a lost publish and a lost race.

mod common;

use autopilot::app::triage::{Decision, TaskTriage, TriageOutcome};
use autopilot::config::StackConfig;
use autopilot::entry::{Invocation, Mode};
use autopilot::incident::IncidentStatus;
use autopilot::testkit::World;
use common::fixture;

const INCIDENT_KEY: &str = "incident#shop#orders-api";

fn triage(world: &World, mode: Mode) -> TaskTriage {
    TaskTriage::new(world.setup(mode, StackConfig::default()))
}

async fn handle(triage: &TaskTriage, event: serde_json::Value) -> TriageOutcome {
    triage
        .handle(event.into(), Invocation::default())
        .await
        .unwrap()
}

/// The OOM stop of another task of orders-api.
fn oom(i: usize) -> serde_json::Value {
    let mut stop = fixture("ecs/service-oom.json");
    stop["id"] = format!("stop-{i}").into();
    stop["detail"]["taskArn"] =
        format!("arn:aws:ecs:us-east-1:111122223333:task/shop/{i:032x}").into();
    stop
}

fn attribute<'a>(publish: &'a autopilot::notify::Publish, name: &str) -> Option<&'a str> {
    publish
        .attributes
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn failures_open_one_incident_and_a_steady_state_resolves_it_once() {
    let world = World::new();
    let triage = triage(&world, Mode::Live);
    let first = handle(&triage, oom(0)).await;
    let id = first.incident.clone().expect("an incident").id;
    assert_eq!(
        (first.decision, first.incident.unwrap().status),
        (Decision::Notify, IncidentStatus::Open)
    );
    let second = handle(&triage, oom(1)).await;
    assert_eq!(
        (second.decision, second.incident.unwrap().status),
        (Decision::Folded, IncidentStatus::Update)
    );
    world.clock.advance(std::time::Duration::from_secs(120));
    let failed = handle(&triage, fixture("service/deployment-failed.json")).await;
    let tag = failed.incident.unwrap();
    assert_eq!(
        (failed.decision, tag.id.as_str(), tag.status),
        (Decision::Notify, id.as_str(), IncidentStatus::Update)
    );
    world.clock.advance(std::time::Duration::from_secs(600));
    let steady = handle(&triage, fixture("service/steady-state.json")).await;
    let tag = steady.incident.unwrap();
    assert_eq!(
        (steady.decision, tag.id.as_str(), tag.status),
        (Decision::Notify, id.as_str(), IncidentStatus::Resolved)
    );
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 3, "open, update, resolved");
    let statuses: Vec<Option<&str>> = sent.iter().map(|p| attribute(p, "status")).collect();
    assert_eq!(statuses, [Some("open"), Some("update"), Some("resolved")]);
    assert!(sent
        .iter()
        .all(|p| attribute(p, "incident_id") == Some(id.as_str())));
    let resolved = &sent[2];
    assert!(
        resolved.subject.contains("resolved after 12 min 0 s"),
        "{}",
        resolved.subject
    );
    assert!(
        resolved.message.contains("2 oom, 1 deployment-failed"),
        "{}",
        resolved.message
    );
    assert!(
        resolved
            .message
            .contains("the service reached a steady state"),
        "{}",
        resolved.message
    );
    assert!(
        resolved
            .message
            .contains("orders-api: killed for exceeding its memory limit"),
        "the latest reasons are worded for people: {}",
        resolved.message
    );
    // The resolution closed the incident's storm windows: the next failure is a window's first.
    for category in ["oom", "deployment-failed"] {
        let key = format!("storm#shop#service:orders-api#{category}");
        assert_eq!(world.state.window_at(&key), None, "{key} closed");
    }
    assert_eq!(world.calls.count("DeleteItem"), 2);
    let again = handle(&triage, {
        let mut e = fixture("service/steady-state.json");
        e["id"] = "later".into();
        e
    })
    .await;
    assert_eq!(
        (again.decision, again.incident),
        (Decision::Silent, None),
        "nothing left to resolve"
    );
    // An OOM after the resolution opens a new incident and, its window closed, is told.
    let after = handle(&triage, oom(2)).await;
    let tag = after.incident.unwrap();
    assert_ne!(
        tag.id, id,
        "a failure after the resolution opens a new incident"
    );
    assert_eq!(
        (after.decision, tag.status),
        (Decision::Notify, IncidentStatus::Open)
    );
    let sent = world.notifier.sent();
    assert_eq!(sent.len(), 4);
    assert_eq!(attribute(&sent[3], "status"), Some("open"));
    assert_eq!(attribute(&sent[3], "incident_id"), Some(tag.id.as_str()));
    let folded = handle(&triage, oom(3)).await;
    assert_eq!(
        (folded.decision, folded.incident.unwrap().status),
        (Decision::Folded, IncidentStatus::Update),
        "the next one folds into the new incident"
    );
}

#[tokio::test]
async fn a_redelivered_recovery_is_a_duplicate() {
    let world = World::new();
    let triage = triage(&world, Mode::Live);
    handle(&triage, oom(0)).await;
    handle(&triage, fixture("service/steady-state.json")).await;
    let again = handle(&triage, fixture("service/steady-state.json")).await;
    assert_eq!(
        again.decision,
        Decision::Duplicate,
        "the same recovery, already told"
    );
    assert_eq!(world.notifier.sent().len(), 2);
}

#[tokio::test]
async fn a_lost_resolved_notification_is_sent_again_by_the_retry_and_only_once() {
    let world = World::new();
    let triage = triage(&world, Mode::Live);
    handle(&triage, oom(0)).await;
    world.calls.fail_next("Publish", "InternalError", 1);
    let error = triage
        .handle(
            fixture("service/steady-state.json").into(),
            Invocation::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    let (incident, _) = world.state.incident_at(INCIDENT_KEY).unwrap();
    assert!(
        !incident.is_open(),
        "resolved in the store before the publish failed"
    );
    let retry = handle(&triage, fixture("service/steady-state.json")).await;
    assert_eq!(retry.decision, Decision::Notify);
    let resolved: Vec<_> = world
        .notifier
        .sent()
        .into_iter()
        .filter(|p| attribute(p, "status") == Some("resolved"))
        .collect();
    assert_eq!(resolved.len(), 1);
    let third = handle(&triage, fixture("service/steady-state.json")).await;
    assert_eq!(third.decision, Decision::Duplicate);
}

#[tokio::test]
async fn a_lost_race_for_the_incident_reads_again_and_counts_once() {
    let world = World::new();
    let triage = triage(&world, Mode::Live);
    handle(&triage, oom(0)).await;
    world.state.write_incidents_concurrently(1);
    let failed = handle(&triage, fixture("service/deployment-failed.json")).await;
    assert_eq!(failed.decision, Decision::Notify);
    let (incident, revision) = world.state.incident_at(INCIDENT_KEY).unwrap();
    assert_eq!(
        (incident.counts["deployment-failed"], revision),
        (1, 3),
        "counted once; the race moved the revision"
    );
    assert_eq!(world.clock.slept().len(), 1, "one pause, then the write");
}

#[tokio::test]
async fn a_storm_writes_its_incident_once_and_the_resolution_counts_every_stop_once() {
    let world = World::new();
    let triage = triage(&world, Mode::Live);
    for i in 0..25 {
        handle(&triage, oom(i)).await;
    }
    let redelivered = handle(&triage, oom(7)).await;
    assert_eq!(redelivered.decision, Decision::Duplicate);
    let (incident, revision) = world.state.incident_at(INCIDENT_KEY).unwrap();
    assert_eq!(
        (incident.counts["oom"], revision),
        (1, 1),
        "only the window's first stop wrote the incident"
    );
    world.clock.advance(std::time::Duration::from_secs(60));
    let steady = handle(&triage, fixture("service/steady-state.json")).await;
    assert_eq!(steady.decision, Decision::Notify);
    let (incident, _) = world.state.incident_at(INCIDENT_KEY).unwrap();
    assert_eq!(
        (incident.counts["oom"], incident.signals()),
        (25, 25),
        "the window's 24 folded stops joined the incident as it resolved"
    );
    let resolved = world.notifier.sent().pop().unwrap();
    assert!(
        resolved.message.contains("It held 25 signal(s): 25 oom"),
        "{}",
        resolved.message
    );
    assert_eq!(
        world.state.window_at("storm#shop#service:orders-api#oom"),
        None,
        "closed"
    );
}

#[tokio::test]
async fn standalone_tasks_have_no_incident_and_dry_run_writes_none() {
    let world = World::new();
    let live = triage(&world, Mode::Live);
    let standalone = handle(&live, fixture("ecs/batch-failed.json")).await;
    assert_eq!(standalone.incident, None);
    let dry = triage(&world, Mode::DryRun);
    let projected = handle(&dry, oom(0)).await;
    assert_eq!(
        projected.incident.map(|t| t.status),
        Some(IncidentStatus::Open)
    );
    assert!(
        world.state.incident_at(INCIDENT_KEY).is_none(),
        "dry-run writes no incident"
    );
}

#[tokio::test]
async fn a_failed_deployment_in_a_new_incident_is_told_though_its_window_is_open() {
    let world = World::new();
    let triage = triage(&world, Mode::Live);
    let first = handle(&triage, fixture("service/deployment-failed.json")).await;
    assert_eq!(first.decision, Decision::Notify);
    handle(&triage, fixture("service/steady-state.json")).await;
    world.clock.advance(std::time::Duration::from_secs(300));
    let mut again = fixture("service/deployment-failed.json");
    again["id"] = "the-next-deployment".into();
    let second = handle(&triage, again).await;
    let tag = second.incident.unwrap();
    assert_eq!(
        (second.decision, tag.status),
        (Decision::Notify, IncidentStatus::Open),
        "{:?}",
        second.notes
    );
    assert_ne!(tag.id, first.incident.unwrap().id);
    assert_eq!(world.notifier.sent().len(), 3, "open, resolved, open");
}
