//! Routing and muting through the handlers on the in-memory ports: per-team topics by rule and
//! by tag (tags read once per TTL), severity overrides with `also_default`, a maintenance window
//! that mutes, Slack and Teams webhooks (429 waited out, a failed webhook retried without
//! publishing again to the topic that took it), and the scaler's and runner's notices routed
//! by `source` and `job`.

mod common;

use std::time::Duration;

use autopilot::app::batch::{BatchRunner, RunnerResponse};
use autopilot::app::triage::{Decision, TaskTriage, TriageOutcome, TriageResponse};
use autopilot::config::StackConfig;
use autopilot::domain::Routed;
use autopilot::entry::{Invocation, Mode};
use autopilot::state::ClaimStatus;
use autopilot::testkit::{start_then_fail, World};
use common::{assert_noted, fixture, orders_api_world};
use serde_json::{json, Value};

const PAYMENTS: &str = "arn:aws:sns:us-east-1:111122223333:payments";
const SEARCH: &str = "arn:aws:sns:us-east-1:111122223333:search";
const ORDERS_API: &str = "arn:aws:ecs:us-east-1:111122223333:service/shop/orders-api";
const OOM: &str = "ecs/service-oom.json";

fn world() -> World {
    orders_api_world(&["java.lang.OutOfMemoryError: Java heap space"])
}

fn config(notify: Value) -> StackConfig {
    StackConfig::parse(&json!({ "notify": notify }).to_string()).unwrap()
}

fn triage(world: &World, notify: Value) -> TaskTriage {
    TaskTriage::new(world.setup(Mode::Live, config(notify)))
}

async fn handle(triage: &TaskTriage, event: Value) -> autopilot::Result<TriageOutcome> {
    triage.handle(event.into(), Invocation::default()).await
}

fn topics(world: &World) -> Vec<Option<String>> {
    world
        .notifier
        .sent_to()
        .into_iter()
        .map(|(topic, _)| topic)
        .collect()
}

#[tokio::test]
async fn route_by_tag_sends_each_team_to_its_topic_and_reads_tags_once_per_ttl() {
    let world = world();
    world.ecs.tag(ORDERS_API, &[("team", "payments")]);
    let triage = triage(
        &world,
        json!({"route_by_tag": {"tag": "team", "topics": {"payments": PAYMENTS, "search": SEARCH}}}),
    );
    let outcome = handle(&triage, fixture(OOM)).await.unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_eq!(
        outcome.route,
        Some(Routed {
            by: "route_by_tag team=payments".into(),
            to: vec![PAYMENTS.into()],
            muted: false,
            why: Vec::new(),
            rendered: None,
            payloads: Vec::new(),
        })
    );
    // The same service's failed deployment: its tags come from the cache.
    let outcome = handle(&triage, fixture("service/deployment-failed.json"))
        .await
        .unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_eq!(
        topics(&world),
        vec![Some(PAYMENTS.into()), Some(PAYMENTS.into())]
    );
    assert_eq!(world.calls.count("ListTagsForResource"), 1);
    // After the TTL (300 s by default) they are read again; a value no topic lists goes to
    // the default topic.
    world.clock.advance(Duration::from_secs(301));
    world.ecs.tag(ORDERS_API, &[("team", "checkout")]);
    let outcome = handle(&triage, fixture("service/deployment-rollback.json"))
        .await
        .unwrap();
    assert_eq!(outcome.route.unwrap().to, vec!["default".to_owned()]);
    assert_eq!(world.calls.count("ListTagsForResource"), 2);
}

#[tokio::test]
async fn the_first_matching_rule_decides_overrides_severity_and_adds_the_default() {
    let world = world();
    let triage = triage(
        &world,
        json!({"routes": [
            {"name": "search deployments", "category": ["deployment-failed"], "topic": SEARCH},
            {"name": "orders oom", "cluster": "shop", "service": "orders-*", "category": ["oom"],
             "severity": "critical", "topic": PAYMENTS, "also_default": true},
            {"service": "orders-*", "topic": SEARCH}
        ]}),
    );
    let outcome = handle(&triage, fixture(OOM)).await.unwrap();
    assert_eq!(outcome.route.as_ref().unwrap().by, "rule 1 (orders oom)");
    assert_eq!(topics(&world), vec![Some(PAYMENTS.into()), None]);
    let sent = world.notifier.sent();
    assert!(
        sent[0].subject.starts_with("[CRITICAL] shop/orders-api"),
        "{}",
        sent[0].subject
    );
    assert_eq!(sent[0], sent[1], "one rendering for every topic");
    // No tag rule: no tags read.
    assert_eq!(world.calls.count("ListTagsForResource"), 0);
}

#[tokio::test]
async fn a_maintenance_window_mutes_and_the_decision_says_so() {
    let world = world();
    let triage = triage(
        &world,
        json!({"routes": [{"name": "shop maintenance", "cluster": "shop", "mute": true,
            "windows": [{"start": "2026-09-14T11:00:00Z", "end": "2026-09-14T12:00:00Z"}]}]}),
    );
    // The stop happened at 11:40, inside the window (whatever the clock says now).
    let outcome = handle(&triage, fixture(OOM)).await.unwrap();
    assert_eq!(outcome.decision, Decision::Muted);
    assert!(outcome.route.as_ref().unwrap().muted);
    assert_noted(&outcome.notes, "muted by rule 0 (shop maintenance)");
    // Counted: the Muted metric, under the Outcome `muted`.
    let response: autopilot::Result<TriageResponse> =
        Ok(TriageResponse::One(Box::new(outcome.clone())));
    let line = autopilot::entry::metrics_line("ECSAutopilot", "task-triage", &response, 0, None);
    let document: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (document["Muted"].as_u64(), document["Outcome"].as_str()),
        (Some(1), Some("muted"))
    );
    assert_eq!(document["Notifications"].as_u64(), Some(0));
    assert!(world.notifier.sent().is_empty());
    let claim = world.state.claim_keys()[0].clone();
    assert_eq!(
        world.state.claim_at(&claim).unwrap().decision.as_deref(),
        Some("muted")
    );
    // A redelivery is a duplicate of the muted decision, not a second chance to send.
    let outcome = handle(&triage, fixture(OOM)).await.unwrap();
    assert_eq!(outcome.decision, Decision::Duplicate);
    // An invocation that died after muting but before completing its claim: its retry (the lease
    // over, the stop's number still in the window) is muted again but counted nowhere again.
    let mut unfinished = world.state.claim_at(&claim).unwrap();
    unfinished.status = Some(ClaimStatus::InProgress);
    unfinished.lease_until = 0;
    world.state.put_claim(&claim, unfinished);
    let storm_key = world.state.windows().into_keys().next().unwrap();
    world.state.put_counted(&storm_key, &claim, 1);
    let outcome = handle(&triage, fixture(OOM)).await.unwrap();
    assert_eq!(outcome.decision, Decision::Muted);
    let ledgers = world.state.muted_ledgers();
    let ledger = ledgers.values().next().unwrap();
    assert_eq!(ledger.counts["oom"], 1, "{ledger:?}");
    // The failed deployment at 12:21 is after the window: told.
    let outcome = handle(&triage, fixture("service/deployment-failed.json"))
        .await
        .unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_eq!(world.notifier.sent().len(), 1);
    // The steady state at 12:31 resolves the incident; its resolution says what was muted.
    let outcome = handle(&triage, fixture("service/steady-state.json"))
        .await
        .unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    let resolution = world.notifier.sent().pop().unwrap();
    assert!(
        resolution.message.contains(
            "Muted during a maintenance window: 1 oom notification(s), sent nowhere until now."
        ),
        "{}",
        resolution.message
    );
    // The window ended at 12:00 (the clock is past it): the tick sends its summary once.
    assert_eq!(world.state.muted_ledgers().len(), 1);
    let tick = || triage.respond(json!({"tick": true}).into(), Invocation::default());
    match tick().await.unwrap() {
        TriageResponse::Tick { results, .. } => {
            assert_eq!(results.len(), 1, "{results:?}");
            assert_eq!(results[0].decision, Decision::Notify);
            assert_eq!(
                results[0].route.as_ref().unwrap().to,
                vec!["default".to_owned()]
            );
        }
        other => panic!("{other:?}"),
    }
    let summary = world.notifier.sent().pop().unwrap();
    assert_eq!(
        summary.subject,
        "[INFO] shop/orders-api: maintenance window ended: 1 notification(s) were muted (1 oom)"
    );
    assert!(world.state.muted_ledgers().is_empty());
    match tick().await.unwrap() {
        TriageResponse::Tick { results, .. } => assert!(results.is_empty(), "{results:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn slack_and_teams_webhooks_get_their_own_shapes_and_a_429_is_waited_out() {
    let world = world();
    world.notifier.answer("platform-slack", 429, Some(2));
    let triage = triage(
        &world,
        json!({
            "webhooks": {
                "platform-slack": {"kind": "slack", "url_ssm": "/autopilot/webhooks/slack"},
                "payments-teams": {"kind": "teams", "url_ssm": "/autopilot/webhooks/teams"}
            },
            "routes": [
                {"category": ["oom"], "webhook": "platform-slack"},
                {"webhook": "payments-teams", "also_default": true}
            ]
        }),
    );
    let outcome = handle(&triage, fixture(OOM)).await.unwrap();
    assert_eq!(
        outcome.route.as_ref().unwrap().to,
        vec!["webhook:platform-slack".to_owned()]
    );
    assert_eq!(world.clock.slept(), vec![Duration::from_secs(2)]);
    assert_noted(&outcome.notes, "answered 429: waited 2 s (Retry-After)");
    let outcome = handle(&triage, fixture("service/deployment-failed.json"))
        .await
        .unwrap();
    assert_eq!(
        outcome.route.unwrap().to,
        vec!["webhook:payments-teams".to_owned(), "default".to_owned()]
    );
    let posted = world.notifier.posted();
    assert_eq!(posted.len(), 2);
    let slack: Value = serde_json::from_str(&posted[0].1).unwrap();
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert!(slack["text"].as_str().unwrap().starts_with("[CRITICAL]"));
    let teams: Value = serde_json::from_str(&posted[1].1).unwrap();
    assert_eq!(
        teams["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
    assert_eq!(
        world.notifier.sent().len(),
        1,
        "also_default published once"
    );
}

#[tokio::test]
async fn a_failed_webhook_fails_the_event_and_its_retry_does_not_publish_twice() {
    let world = world();
    world.notifier.answer("platform-slack", 500, None);
    let triage = triage(
        &world,
        json!({
            "webhooks": {"platform-slack": {"kind": "slack", "url_ssm": "/autopilot/webhooks/slack"}},
            "routes": [{"webhook": "platform-slack", "topic": PAYMENTS}]
        }),
    );
    let error = handle(&triage, fixture(OOM)).await.unwrap_err();
    assert_eq!(error.error_type(), "WebhookFailed");
    assert_eq!(error.to_string(), "webhook platform-slack failed: HTTP 500");
    let claim_key = world.state.claim_keys()[0].clone();
    let claim = world.state.claim_at(&claim_key).unwrap();
    assert_eq!(claim.status, Some(ClaimStatus::Retryable));
    assert_eq!(claim.delivered, vec![PAYMENTS.to_owned()]);
    // Lambda's retry: the topic that took it is skipped, the webhook now answers 200.
    let outcome = handle(&triage, fixture(OOM)).await.unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_noted(
        &outcome.notes,
        "took it in an earlier attempt: not sent again",
    );
    assert_eq!(world.notifier.sent().len(), 1);
    assert_eq!(world.notifier.posted().len(), 1);
    let claim = world.state.claim_at(&claim_key).unwrap();
    assert_eq!(claim.status, Some(ClaimStatus::Complete));
}

#[tokio::test]
async fn a_job_is_routed_by_its_name_and_source_and_its_catalog_tags() {
    let world = World::new();
    let document = json!({
        "notify": {
            "routes": [
                {"source": "batch", "job": "invoice-*", "topic": PAYMENTS},
                {"tags": {"team": "search"}, "topic": SEARCH}
            ]
        },
        "jobs": {
            "invoice-export": {"cluster": "shop", "task_definition": "invoice-export:3",
                "launch_type": "FARGATE", "network": {"subnets": ["subnet-1"]}},
            "reindex": {"cluster": "shop", "task_definition": "reindex:1",
                "launch_type": "FARGATE", "network": {"subnets": ["subnet-1"]},
                "tags": {"team": "search"}}
        }
    });
    let config = StackConfig::parse(&document.to_string()).unwrap();
    let runner = BatchRunner::new(world.setup(Mode::Live, config));
    // Both runs fail to start for a configuration reason: reported, not retried.
    world
        .ecs
        .script_run_task([start_then_fail(0, "MISSING"), start_then_fail(0, "MISSING")]);
    for job in ["invoice-export", "reindex"] {
        let request = json!({"job": job, "scheduled_time": "2026-09-15T02:00:00Z"});
        match runner.handle(request.into(), Invocation::default()).await {
            Ok(RunnerResponse::Run(outcome)) => assert!(outcome.route.is_some(), "{outcome:?}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        topics(&world),
        vec![Some(PAYMENTS.into()), Some(SEARCH.into())]
    );
    // A job's tags come from its catalog entry: nothing read.
    assert_eq!(world.calls.count("ListTagsForResource"), 0);
}
