//! Only the stack's own accounts move it: an event, alarm or tick naming any other account (in
//! its envelope or in an ARN) is `ignored` by each function, saying which account and where it
//! was named, counted as `ForeignEvents`, with no call made anywhere (no read, no AssumeRole, no
//! change, no notification); an alarm of a policy's name that is not the one it binds (another
//! region, or not its `alarm_arn`) is ignored too, and a policy naming another account's alarm
//! or cluster is refused at cold start.

mod common;

use autopilot::app::batch::{BatchRunner, RunnerResponse};
use autopilot::app::scaler::{AlarmScaler, ScalerResponse};
use autopilot::app::triage::{Decision, TaskTriage, TriageResponse};
use autopilot::config::StackConfig;
use autopilot::entry::{Invocation, Mode};
use autopilot::metrics::{Measured, Metric};
use autopilot::scaling::Action;
use autopilot::testkit::{steady_service, World, FOREIGN_ACCOUNT, HOME_ACCOUNT, MEMBER_ACCOUNTS};
use common::fixture;
use serde_json::Value;

const POLICY: &str = r#"{"scaling": {"alarms": {"orders-queue-backlog-high": {
    "cluster": "shop", "service": "orders-worker", "min": 0, "max": 10,
    "alarm_steps": [{"lower": 0, "adjustment": 2}]}}}}"#;

/// `path`'s fixture with every mention of the home account replaced by `account`.
fn from_account(path: &str, account: &str) -> Value {
    let text = fixture(path).to_string().replace(HOME_ACCOUNT, account);
    serde_json::from_str(&text).unwrap()
}

fn nothing_called(world: &World) {
    assert_eq!(world.calls.log(), Vec::<&str>::new(), "no call anywhere");
    assert!(world.notifier.sent().is_empty(), "nothing told");
}

async fn triage(world: &World, event: Value) -> TriageResponse {
    TaskTriage::new(world.setup(Mode::Live, StackConfig::default()))
        .respond(event.into(), Invocation::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn task_triage_ignores_a_stop_of_a_foreign_account() {
    let world = World::new();
    let response = triage(
        &world,
        from_account("ecs/service-oom.json", FOREIGN_ACCOUNT),
    )
    .await;
    let TriageResponse::One(outcome) = &response else {
        panic!("{response:?}")
    };
    assert_eq!(outcome.decision, Decision::Ignored);
    let foreign = outcome.foreign.as_ref().expect("the foreign account");
    assert_eq!(
        (foreign.account.as_str(), foreign.named_by.as_str()),
        (FOREIGN_ACCOUNT, "account")
    );
    assert_eq!(
        outcome.notes,
        ["account 999988887777 (account) is not this stack's or one of its members'"]
    );
    assert_eq!(response.measurement().counts[&Metric::ForeignEvents], 1);
    nothing_called(&world);
}

#[tokio::test]
async fn a_foreign_arn_in_an_event_of_the_stacks_own_account_is_ignored_too() {
    let world = World::new();
    let mut stop = fixture("ecs/service-oom.json");
    let task = stop["detail"]["taskArn"].as_str().unwrap().to_owned();
    stop["detail"]["taskArn"] = task.replace(HOME_ACCOUNT, FOREIGN_ACCOUNT).into();
    let TriageResponse::One(outcome) = triage(&world, stop).await else {
        panic!()
    };
    assert_eq!(outcome.decision, Decision::Ignored);
    assert_eq!(outcome.foreign.unwrap().named_by, "detail.taskArn");
    nothing_called(&world);
}

#[tokio::test]
async fn task_triage_ignores_a_service_event_of_a_foreign_account() {
    let world = World::new();
    let event = from_account("service/deployment-failed.json", FOREIGN_ACCOUNT);
    let TriageResponse::One(outcome) = triage(&world, event).await else {
        panic!()
    };
    assert_eq!(outcome.decision, Decision::Ignored);
    assert_eq!(outcome.service.as_deref(), Some("orders-api"));
    assert_eq!(outcome.foreign.unwrap().account, FOREIGN_ACCOUNT);
    nothing_called(&world);
}

#[tokio::test]
async fn a_member_accounts_stop_is_handled() {
    let world = World::new();
    let event = from_account("ecs/service-oom.json", MEMBER_ACCOUNTS[0]);
    world.members.add(MEMBER_ACCOUNTS[0]);
    let TriageResponse::One(outcome) = triage(&world, event).await else {
        panic!()
    };
    assert_eq!(outcome.decision, Decision::Notify);
    assert!(outcome.foreign.is_none());
}

fn scaler_world() -> World {
    let world = World::new();
    world
        .ecs
        .set_service("shop", "orders-worker", steady_service(1, 1));
    world
}

/// The alarm of the policy's name, from a foreign account, in each shape it can arrive in: the
/// account the delivery names and the alarm's ARN both foreign.
#[tokio::test]
async fn alarm_scaler_ignores_an_alarm_of_a_foreign_account_in_every_delivery() {
    for (path, named_by) in [
        ("alarms/eventbridge-alarm.json", "account"),
        ("alarms/direct-lambda-action.json", "accountId"),
        (
            "alarms/sns-classic.json",
            "Records[0].Sns.Message.AWSAccountId",
        ),
    ] {
        let world = scaler_world();
        let scaler = AlarmScaler::new(
            world.setup(Mode::Live, StackConfig::parse(POLICY).unwrap()),
            None,
        )
        .unwrap();
        let response = scaler
            .handle(
                from_account(path, FOREIGN_ACCOUNT).into(),
                Invocation::default(),
            )
            .await
            .unwrap();
        let ScalerResponse::One(outcome) = &response else {
            panic!("{response:?}")
        };
        assert_eq!(outcome.action, Action::Ignored, "{path}");
        assert_eq!(
            outcome.reason,
            format!("account 999988887777 ({named_by}) is not this stack's or one of its members'"),
            "{path}"
        );
        assert_eq!(response.measurement().counts[&Metric::ForeignEvents], 1);
        assert_eq!(
            response.measurement().counts.get(&Metric::ScalingActions),
            None,
            "no scaling action counted"
        );
        assert!(world.ecs.desired_updates().is_empty(), "{path}");
        nothing_called(&world);
    }
}

#[tokio::test]
async fn alarm_scaler_ignores_a_foreign_alarm_arn_under_the_stacks_own_account() {
    let world = scaler_world();
    let scaler = AlarmScaler::new(
        world.setup(Mode::Live, StackConfig::parse(POLICY).unwrap()),
        None,
    )
    .unwrap();
    let mut event = fixture("alarms/eventbridge-alarm.json");
    let arn = event["resources"][0].as_str().unwrap().to_owned();
    event["resources"][0] = arn.replace(HOME_ACCOUNT, FOREIGN_ACCOUNT).into();
    let ScalerResponse::One(outcome) = scaler
        .handle(event.into(), Invocation::default())
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(outcome.action, Action::Ignored);
    assert_eq!(outcome.foreign.unwrap().named_by, "resources[0]");
    nothing_called(&world);
}

#[tokio::test]
async fn batch_runner_ignores_a_tick_of_a_foreign_account() {
    let world = World::new();
    let runner = BatchRunner::new(world.setup(Mode::Live, StackConfig::default()));
    let event = from_account("schedule/eventbridge-scheduled-event.json", FOREIGN_ACCOUNT);
    let response = runner
        .handle(event.into(), Invocation::default())
        .await
        .unwrap();
    let RunnerResponse::Ignored { action, reason, .. } = &response else {
        panic!("{response:?}")
    };
    assert_eq!(*action, "ignored");
    assert_eq!(
        reason,
        "account 999988887777 (account) is not this stack's or one of its members'"
    );
    assert_eq!(response.measurement().counts[&Metric::ForeignEvents], 1);
    let line = serde_json::to_value(&response).unwrap();
    assert_eq!(line["action"], "ignored");
    assert_eq!(line["foreign"]["account"], FOREIGN_ACCOUNT);
    nothing_called(&world);
}

/// A scaler over `config`'s policies, on a fresh world whose `orders-worker` runs 1 task.
fn scaler_for(config: &str) -> (World, autopilot::Result<AlarmScaler>) {
    let world = scaler_world();
    let setup = world.setup(Mode::Live, StackConfig::parse(config).unwrap());
    let scaler = AlarmScaler::new(setup, None);
    (world, scaler)
}

async fn outcome_of(scaler: &AlarmScaler, event: Value) -> autopilot::app::scaler::ScalingOutcome {
    match scaler
        .handle(event.into(), Invocation::default())
        .await
        .unwrap()
    {
        ScalerResponse::One(outcome) => *outcome,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_alarm_of_the_policys_name_in_another_region_is_not_the_one_it_binds() {
    let (world, scaler) = scaler_for(POLICY);
    let event = fixture("alarms/eventbridge-alarm.json");
    let text = event.to_string().replace(
        "arn:aws:cloudwatch:us-east-1:",
        "arn:aws:cloudwatch:eu-west-1:",
    );
    let outcome = outcome_of(&scaler.unwrap(), serde_json::from_str(&text).unwrap()).await;
    assert_eq!(outcome.action, Action::Ignored);
    assert_eq!(
        outcome.reason,
        "alarm `orders-queue-backlog-high` in eu-west-1 is not in this stack's region us-east-1 \
         (bind another region's alarm with alarm_arn)"
    );
    nothing_called(&world);
}

#[tokio::test]
async fn a_members_alarm_bound_by_its_arn_scales_and_the_home_alarm_of_that_name_does_not() {
    let member = MEMBER_ACCOUNTS[0];
    let arn = format!("arn:aws:cloudwatch:us-east-1:{member}:alarm:orders-queue-backlog-high");
    let config = POLICY.replace(
        r#""cluster": "shop""#,
        &format!(r#""alarm_arn": "{arn}", "cluster": "shop""#),
    );
    let (world, scaler) = scaler_for(&config);
    let scaler = scaler.unwrap();
    let home = outcome_of(&scaler, fixture("alarms/eventbridge-alarm.json")).await;
    assert_eq!(home.action, Action::Ignored);
    assert_eq!(
        home.reason,
        format!(
            "alarm arn:aws:cloudwatch:us-east-1:111122223333:alarm:orders-queue-backlog-high \
             is not the one the policy binds ({arn})"
        )
    );
    nothing_called(&world);
    let from_member = outcome_of(
        &scaler,
        from_account("alarms/eventbridge-alarm.json", member),
    )
    .await;
    assert_eq!(from_member.action, Action::ScaleOut, "{from_member:?}");
}

#[tokio::test]
async fn a_policy_naming_another_accounts_alarm_or_cluster_is_refused_at_cold_start() {
    for (field, patch) in [
        (
            "alarm_arn",
            format!(
                r#""alarm_arn": "arn:aws:cloudwatch:us-east-1:{FOREIGN_ACCOUNT}:alarm:orders-queue-backlog-high", "cluster": "shop""#
            ),
        ),
        (
            "cluster",
            format!(r#""cluster": "arn:aws:ecs:us-east-1:{FOREIGN_ACCOUNT}:cluster/shop""#),
        ),
    ] {
        let config = POLICY.replace(r#""cluster": "shop""#, &patch);
        let error = scaler_for(&config).1.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "invalid configuration at `scaling.alarms.orders-queue-backlog-high.{field}`: account \
                 999988887777 is not this stack's or one of its members' (MEMBER_ACCOUNT_IDS)"
            )
        );
    }
}

#[test]
fn a_policy_names_its_service_and_a_bound_alarm_arn_names_its_alarm() {
    let without_service = POLICY.replace(r#""service": "orders-worker", "#, "");
    let error = StackConfig::parse(&without_service).unwrap_err();
    assert!(
        error.to_string().starts_with(
            "invalid configuration at `scaling.alarms.orders-queue-backlog-high`: missing field `service`"
        ),
        "{error}"
    );
    let other_alarm = POLICY.replace(
        r#""cluster": "shop""#,
        r#""alarm_arn": "arn:aws:cloudwatch:us-east-1:111122223333:alarm:cpu-high", "cluster": "shop""#,
    );
    let error = StackConfig::parse(&other_alarm).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid configuration at `scaling.alarms.orders-queue-backlog-high.alarm_arn`: \
         `arn:aws:cloudwatch:us-east-1:111122223333:alarm:cpu-high` is not the ARN of a \
         CloudWatch alarm named `orders-queue-backlog-high`"
    );
}

#[tokio::test]
async fn an_sns_alarm_message_is_acted_on_as_describe_alarms_returns_the_alarm() {
    let (world, scaler) = scaler_for(POLICY);
    // DescribeAlarms says OK (the policy has no OK steps); the message says ALARM.
    let mut ok = fixture("alarms/eventbridge-ok.json");
    ok["detail"]["alarmName"] = "orders-queue-backlog-high".into();
    ok["resources"][0] =
        "arn:aws:cloudwatch:us-east-1:111122223333:alarm:orders-queue-backlog-high".into();
    world.alarms.know(&ok);
    let outcome = outcome_of(&scaler.unwrap(), fixture("alarms/sns-classic.json")).await;
    assert_eq!(
        outcome.state,
        autopilot::domain::AlarmState::Ok,
        "{outcome:?}"
    );
    assert_eq!(outcome.action, Action::None, "{outcome:?}");
    assert!(
        outcome
            .notes
            .contains(&"the message says ALARM, DescribeAlarms says OK: acting on OK".to_owned()),
        "{:?}",
        outcome.notes
    );
    assert!(world.ecs.desired_updates().is_empty());
}

#[tokio::test]
async fn a_forged_alarm_message_or_action_for_an_alarm_that_does_not_exist_moves_nothing() {
    for path in [
        "alarms/sns-classic.json",
        "alarms/direct-lambda-action.json",
    ] {
        let (world, scaler) = scaler_for(POLICY);
        let outcome = outcome_of(&scaler.unwrap(), fixture(path)).await;
        assert_eq!(outcome.action, Action::Ignored, "{path}");
        assert_eq!(
            outcome.reason,
            "DescribeAlarms does not know alarm `orders-queue-backlog-high` in this account and \
             region; the message is not acted on",
            "{path}"
        );
        assert_eq!(world.calls.log(), ["DescribeAlarms"], "{path}");
        assert!(world.notifier.sent().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn an_event_whose_region_is_not_of_aws_shape_is_refused_naming_the_field() {
    let world = World::new();
    let mut stop = fixture("ecs/service-oom.json");
    stop["region"] = "evil.example/#".into();
    let error = TaskTriage::new(world.setup(Mode::Live, StackConfig::default()))
        .respond(stop.into(), Invocation::default())
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "InvalidEvent");
    assert!(
        error.to_string().contains("region") && error.to_string().contains("evil.example/#"),
        "{error}"
    );
    nothing_called(&world);
}

#[tokio::test]
async fn a_log_region_not_of_aws_shape_gets_no_link_and_a_note() {
    let world = World::new();
    world.ecs.set_log_target(
        "arn:aws:ecs:us-east-1:111122223333:task-definition/orders-api:17",
        "orders-api",
        autopilot::domain::AwsLogsTarget {
            group: "/ecs/orders-api".into(),
            stream_prefix: Some("ecs".into()),
            region: Some("evil.example/#".into()),
        },
    );
    let TriageResponse::One(outcome) = triage(&world, fixture("ecs/service-oom.json")).await else {
        panic!()
    };
    assert_eq!(outcome.decision, Decision::Notify);
    let sent = world.notifier.sent();
    let message: Value = serde_json::from_str(&sent[0].message).unwrap();
    let body: Value = serde_json::from_str(message["https"].as_str().unwrap()).unwrap();
    let links: Vec<&str> = body["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["url"].as_str())
        .collect();
    assert!(!links.is_empty(), "the task's own links stay");
    assert!(
        links
            .iter()
            .all(|url| url.starts_with("https://us-east-1.console.aws.amazon.com/")),
        "{links:?}"
    );
    assert_eq!(
        body["facts"]["Logs link"],
        "left out: awslogs-region `evil.example/#` is not an AWS region"
    );
}
