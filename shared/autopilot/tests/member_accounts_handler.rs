//! Many accounts on the in-memory ports: an event from a member account is enriched through
//! that account's ports (its role), never the central account's; a member account the functions
//! cannot reach still gets its notification, which says why the context is missing; two accounts using
//! the same cluster and service names keep their storm windows and incidents apart; batch jobs,
//! scaling policies and watched clusters naming a member account's cluster ARN act in that
//! account (and region).

mod common;

use autopilot::app::batch::{BatchRunner, RunnerResponse};
use autopilot::app::scaler::AlarmScaler;
use autopilot::app::triage::{Decision, TaskTriage, TriageOutcome, TriageResponse};
use autopilot::config::StackConfig;
use autopilot::domain::ServiceSnapshot;
use autopilot::entry::{Invocation, Mode};
use autopilot::ports::Scope;
use autopilot::testkit::{
    orders_api_logs, steady_service, FakeMember, World, HOME_ACCOUNT, MEMBER_ACCOUNTS,
};
use common::{assert_noted, fixture};

const OOM: &str = "ecs/service-oom.json";
const MEMBER: &str = MEMBER_ACCOUNTS[0];
/// A member the stack acts for, where no member role answers.
const UNREACHABLE: &str = MEMBER_ACCOUNTS[1];

/// The OOM fixture as it arrives from `account` (forwarded by the member template's rule).
fn oom_from(account: &str) -> serde_json::Value {
    let mut stop = fixture(OOM);
    let text = stop.to_string().replace(HOME_ACCOUNT, account);
    stop = serde_json::from_str(&text).unwrap();
    stop["id"] = format!("oom-from-{account}").into();
    stop
}

/// What `member` knows of the OOM fixture's service, task definition and log stream.
fn seed(member: &FakeMember, account: &str) {
    member.ecs.set_service(
        "shop",
        "orders-api",
        ServiceSnapshot {
            status: Some("ACTIVE".into()),
            desired: 4,
            running: 1,
            ..ServiceSnapshot::default()
        },
    );
    orders_api_logs(
        &member.ecs,
        &member.logs,
        account,
        &["member account: heap exhausted"],
    );
}

async fn handle(triage: &TaskTriage, event: serde_json::Value) -> TriageOutcome {
    triage
        .handle(event.into(), Invocation::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_member_accounts_stop_is_enriched_through_that_accounts_ports_only() {
    let world = World::new();
    let member = world.members.add(MEMBER);
    seed(&member, MEMBER);
    let triage = TaskTriage::new(world.setup(Mode::Live, StackConfig::default()));
    let outcome = handle(&triage, oom_from(MEMBER)).await;
    assert_eq!(outcome.decision, Decision::Notify);
    assert!(outcome.notes.is_empty(), "{:?}", outcome.notes);
    let message = &world.notifier.sent()[0].message;
    assert!(
        message.contains("member account: heap exhausted"),
        "{message}"
    );
    assert!(message.contains("running 1 / desired 4"), "{message}");
    assert!(
        message.contains("Account          222233334444"),
        "{message}"
    );
    assert_eq!(world.members.asked(), [Scope::new(MEMBER, "us-east-1")]);
    for operation in ["DescribeServices", "DescribeTaskDefinition", "GetLogEvents"] {
        assert_eq!(
            member.calls.count(operation),
            1,
            "{operation} in the member"
        );
        assert_eq!(world.calls.count(operation), 0, "{operation} at home");
    }
}

#[tokio::test]
async fn an_unreachable_member_still_gets_its_notification_saying_why_context_is_missing() {
    let world = World::new();
    let triage = TaskTriage::new(world.setup(Mode::Live, StackConfig::default()));
    let outcome = handle(&triage, oom_from(UNREACHABLE)).await;
    assert_eq!(outcome.decision, Decision::Notify);
    assert_noted(
        &outcome.notes,
        "service context could not be fetched: account 333344445555 in us-east-1 cannot be reached: no member role is configured",
    );
    assert_noted(
        &outcome.notes,
        "log tail could not be fetched: account 333344445555",
    );
    assert_eq!(world.notifier.sent().len(), 1);
    assert_eq!(world.calls.count("DescribeServices"), 0, "no home call");
}

#[tokio::test]
async fn the_same_names_in_two_accounts_keep_their_windows_and_incidents_apart() {
    let world = World::new();
    seed(&world.members.add(MEMBER), MEMBER);
    let triage = TaskTriage::new(world.setup(Mode::Live, StackConfig::default()));
    let home = handle(&triage, oom_from(HOME_ACCOUNT)).await;
    let member = handle(&triage, oom_from(MEMBER)).await;
    // With one key for both, the member's OOM would be the window's second stop (folded) and
    // join the home service's incident.
    assert_eq!(
        (home.decision, member.decision),
        (Decision::Notify, Decision::Notify)
    );
    let windows: Vec<String> = world.state.windows().into_keys().collect();
    assert_eq!(
        windows,
        [
            "storm#222233334444/shop#service:orders-api#oom",
            "storm#shop#service:orders-api#oom",
        ]
    );
    let (home_incident, member_incident) = (home.incident.unwrap(), member.incident.unwrap());
    assert_ne!(home_incident.id, member_incident.id);
    assert!(world
        .state
        .incident_at("incident#222233334444/shop#orders-api")
        .is_some());
    assert!(world
        .state
        .incident_at("incident#shop#orders-api")
        .is_some());
}

#[tokio::test]
async fn a_job_on_a_member_accounts_cluster_runs_there() {
    let world = World::new();
    let member = world.members.add(MEMBER);
    let cluster = format!("arn:aws:ecs:eu-west-1:{MEMBER}:cluster/shop");
    let config = StackConfig::parse(
        &serde_json::json!({"jobs": {"invoice-export": {
            "cluster": cluster, "task_definition": "invoice-export:3", "count": 1,
            "launch_type": "FARGATE", "network": {"subnets": ["subnet-1"]}
        }}})
        .to_string(),
    )
    .unwrap();
    let runner = BatchRunner::new(world.setup(Mode::Live, config));
    let request =
        serde_json::json!({"job": "invoice-export", "scheduled_time": "2026-09-15T02:00:00Z"});
    let response = runner
        .handle(request.into(), Invocation::default())
        .await
        .unwrap();
    let RunnerResponse::Run(outcome) = response else {
        panic!("expected a run, got {response:?}");
    };
    assert_eq!(outcome.tasks.len(), 1, "{outcome:?}");
    assert_eq!(member.ecs.run_requests().len(), 1);
    assert_eq!(member.calls.count("ListTasks"), 1, "the overlap guard");
    assert_eq!(world.calls.count("RunTask"), 0);
    assert_eq!(world.members.asked()[0], Scope::new(MEMBER, "eu-west-1"));
}

#[tokio::test]
async fn a_watched_member_cluster_is_read_there_and_keyed_by_its_account() {
    let world = World::new();
    let member = world.members.add(MEMBER);
    let short = ServiceSnapshot {
        status: Some("ACTIVE".into()),
        desired: 2,
        running: 0,
        ..ServiceSnapshot::default()
    };
    member.ecs.set_service("shop", "payments", short);
    let cluster = format!("arn:aws:ecs:eu-west-1:{MEMBER}:cluster/shop");
    let config = serde_json::json!({"triage": {"watch": {"clusters": [cluster]}}});
    let config = StackConfig::parse(&config.to_string()).unwrap();
    let triage = TaskTriage::new(world.setup(Mode::Live, config));
    let tick = || async {
        let tick = serde_json::json!({"tick": true});
        match triage.respond(tick.into(), Invocation::default()).await {
            Ok(TriageResponse::Tick {
                checked, results, ..
            }) => (checked, results),
            other => panic!("a tick: {other:?}"),
        }
    };
    tick().await;
    world.clock.advance(std::time::Duration::from_secs(600));
    let (checked, results) = tick().await;
    assert_eq!((checked, results.len()), (1, 1));
    assert_eq!(results[0].decision, Decision::Notify);
    assert_eq!(member.calls.count("ListServices"), 2);
    assert_eq!(world.calls.count("ListServices"), 0);
    assert!(world
        .state
        .incident_at("incident#222233334444/shop#payments")
        .is_some());
    let message = &world.notifier.sent()[0].message;
    assert!(
        message.contains("eu-west-1.console.aws.amazon.com"),
        "links to the cluster's region: {message}"
    );
}

#[tokio::test]
async fn a_policy_on_a_member_accounts_service_scales_it_there() {
    let world = World::new();
    let member = world.members.add(MEMBER);
    member
        .ecs
        .set_service("shop", "orders-worker", steady_service(1, 1));
    let cluster = format!("arn:aws:ecs:us-east-1:{MEMBER}:cluster/shop");
    let policy = serde_json::json!({"scaling": {"alarms": {"orders-queue-backlog-high": {
        "cluster": cluster, "service": "orders-worker", "min": 0, "max": 10,
        "alarm_steps": [{"lower": 0, "adjustment": 2}]}}}});
    let setup = world.setup(Mode::Live, StackConfig::parse(&policy.to_string()).unwrap());
    let scaler = AlarmScaler::new(setup, None).unwrap();
    let alarm = fixture("alarms/direct-lambda-action.json");
    world.alarms.know(&alarm);
    scaler
        .handle(alarm.into(), Invocation::default())
        .await
        .unwrap();
    assert_eq!(
        member.ecs.desired_updates(),
        [(cluster.clone(), "orders-worker".to_owned(), 3)]
    );
    assert_eq!(member.calls.count("DescribeScalableTargets"), 1);
    assert_eq!(world.calls.count("UpdateService"), 0);
}
