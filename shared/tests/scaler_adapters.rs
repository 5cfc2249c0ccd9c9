//! `alarm-scaler` against mocked AWS (`aws-smithy-mocks`): Application Auto Scaling bounds (the
//! local cloud has no such service), UpdateService carrying only `desiredCount`, a lost race for
//! the scaling memory, a failed UpdateService, a duplicate transition and the tick.

use aws_sdk_applicationautoscaling::operation::describe_scalable_targets::{
    DescribeScalableTargetsError, DescribeScalableTargetsOutput,
};
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ScalableTarget, ServiceNamespace};
use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::update_service::{UpdateServiceError, UpdateServiceOutput};
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, Service};
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;

use autopilot::app::scaler::{AlarmScaler, ScalerResponse, ScalingOutcome};
use autopilot::app::Setup;
use autopilot::aws::AwsClients;
use autopilot::config::{Deployment as Env, StackConfig};
use autopilot::entry::{Invocation, Mode};
use autopilot::scaling::{Action, ClampedBy};

const POLICY: &str = r#"{"scaling": {"orders-queue-backlog-high": {
    "cluster": "shop", "service": "orders-worker", "min": 0, "max": 10,
    "alarm_steps": [
        {"lower": 0, "upper": 100, "adjustment": 1},
        {"lower": 100, "upper": 500, "adjustment": 3},
        {"lower": 500, "adjustment": 5}],
    "ok_steps": [{"upper": 0, "adjustment": -1}],
    "repeat_while_alarm": true}}}"#;

fn alarm_event() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/alarms/direct-lambda-action.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn error_meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} (mocked)"))
        .build()
}

/// The AWS side of one test: each list holds the rules of one client.
#[derive(Default)]
struct Mocks<'a> {
    ecs: Vec<&'a Rule>,
    sns: Vec<&'a Rule>,
    dynamodb: Vec<&'a Rule>,
    cloudwatch: Vec<&'a Rule>,
    autoscaling: Vec<&'a Rule>,
}

fn scaler(mocks: &Mocks<'_>) -> AlarmScaler {
    let clients = AwsClients::from_config(aws_config::SdkConfig::builder().build())
        .with_ecs(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &mocks.ecs))
        .with_sns(mock_client!(aws_sdk_sns, RuleMode::MatchAny, &mocks.sns))
        .with_dynamodb(mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            &mocks.dynamodb
        ))
        .with_cloudwatch(mock_client!(
            aws_sdk_cloudwatch,
            RuleMode::MatchAny,
            &mocks.cloudwatch
        ))
        .with_autoscaling(mock_client!(
            aws_sdk_applicationautoscaling,
            RuleMode::MatchAny,
            &mocks.autoscaling
        ));
    let setup = Setup {
        mode: Mode::Live,
        config: StackConfig::parse(POLICY).unwrap(),
        deployment: Env {
            topic_arn: Some("arn:aws:sns:us-east-1:111122223333:autopilot".into()),
            state_table: Some("state".into()),
        },
        clients: Some(clients),
    };
    AlarmScaler::new(setup, None).unwrap()
}

fn describe_service(desired: i32, running: i32) -> Rule {
    mock!(aws_sdk_ecs::Client::describe_services).then_output(move || {
        DescribeServicesOutput::builder()
            .services(
                Service::builder()
                    .service_name("orders-worker")
                    .status("ACTIVE")
                    .desired_count(desired)
                    .running_count(running)
                    .deployments(
                        Deployment::builder()
                            .status("PRIMARY")
                            .rollout_state(DeploymentRolloutState::Completed)
                            .build(),
                    )
                    .build(),
            )
            .build()
    })
}

fn update_service_ok() -> Rule {
    mock!(aws_sdk_ecs::Client::update_service)
        .then_output(|| UpdateServiceOutput::builder().build())
}

fn scalable_target(min: i32, max: i32) -> Rule {
    mock!(aws_sdk_applicationautoscaling::Client::describe_scalable_targets).then_output(
        move || {
            DescribeScalableTargetsOutput::builder()
                .scalable_targets(
                    ScalableTarget::builder()
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id("service/shop/orders-worker")
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .min_capacity(min)
                        .max_capacity(max)
                        .role_arn("arn:aws:iam::111122223333:role/aas")
                        .creation_time(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        },
    )
}

fn no_scalable_target() -> Rule {
    mock!(aws_sdk_applicationautoscaling::Client::describe_scalable_targets)
        .then_output(|| DescribeScalableTargetsOutput::builder().build())
}

fn pk_starts_with(
    key: Option<&std::collections::HashMap<String, AttributeValue>>,
    prefix: &str,
) -> bool {
    key.and_then(|k| k.get("pk"))
        .and_then(|v| v.as_s().ok())
        .is_some_and(|pk| pk.starts_with(prefix))
}

fn claim_ok() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.contains(":in_progress"))
        })
        .then_output(|| UpdateItemOutput::builder().build())
}

fn claim_finished(expression_part: &'static str) -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(move |r| {
            r.update_expression()
                .is_some_and(|e| e.contains(expression_part))
        })
        .then_output(|| UpdateItemOutput::builder().build())
}

fn no_scaling_memory() -> Rule {
    mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| pk_starts_with(r.key(), "scaler#service#"))
        .then_output(|| GetItemOutput::builder().build())
}

fn record_scaling_ok() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.contains("revision = :next"))
        })
        .then_output(|| UpdateItemOutput::builder().build())
}

fn published() -> Rule {
    mock!(aws_sdk_sns::Client::publish)
        .then_output(|| PublishOutput::builder().message_id("m-1").build())
}

async fn one(scaler: &AlarmScaler, event: serde_json::Value) -> ScalingOutcome {
    match scaler
        .handle(event.into(), Invocation::default())
        .await
        .unwrap()
    {
        ScalerResponse::One(outcome) => *outcome,
        other => panic!("expected one outcome, got {other:?}"),
    }
}

#[tokio::test]
async fn scalable_target_bounds_clamp_and_update_sends_desired_count_only() {
    let (describe, target) = (describe_service(2, 2), scalable_target(1, 4));
    let update = mock!(aws_sdk_ecs::Client::update_service)
        .match_requests(|r| {
            r.desired_count() == Some(4)
                && r.task_definition().is_none()
                && r.force_new_deployment().is_none()
                && r.deployment_configuration().is_none()
                && r.network_configuration().is_none()
                && r.capacity_provider_strategy().is_empty()
                && r.platform_version().is_none()
        })
        .then_output(|| UpdateServiceOutput::builder().build());
    let (claim, memory, record, complete) = (
        claim_ok(),
        no_scaling_memory(),
        record_scaling_ok(),
        claim_finished(":complete"),
    );
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| {
            r.subject().is_some_and(|s| s.contains("scaled out 2 -> 4"))
                && r.message()
                    .is_some_and(|m| m.contains("scalable-target-max"))
        })
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let scaler = scaler(&Mocks {
        ecs: vec![&describe, &update],
        sns: vec![&publish],
        dynamodb: vec![&claim, &memory, &record, &complete],
        autoscaling: vec![&target],
        ..Mocks::default()
    });
    let outcome = one(&scaler, alarm_event()).await;
    assert_eq!(
        (outcome.action, outcome.from, outcome.to),
        (Action::ScaleOut, Some(2), Some(4))
    );
    assert_eq!(outcome.clamped_by, Some(ClampedBy::ScalableTargetMax));
    assert_eq!(
        update.num_calls(),
        1,
        "UpdateService with desiredCount only"
    );
    assert_eq!(publish.num_calls(), 1);
    assert_eq!(outcome.message_id.as_deref(), Some("m-1"));
    assert_eq!(
        (claim.num_calls(), record.num_calls(), complete.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn unreadable_scalable_target_falls_back_to_policy_bounds_with_a_warning() {
    let describe = describe_service(2, 2);
    let update = update_service_ok();
    let target = mock!(aws_sdk_applicationautoscaling::Client::describe_scalable_targets)
        .then_error(|| DescribeScalableTargetsError::generic(error_meta("AccessDeniedException")));
    let (claim, memory, record, complete, publish) = (
        claim_ok(),
        no_scaling_memory(),
        record_scaling_ok(),
        claim_finished(":complete"),
        published(),
    );
    let scaler = scaler(&Mocks {
        ecs: vec![&describe, &update],
        sns: vec![&publish],
        dynamodb: vec![&claim, &memory, &record, &complete],
        autoscaling: vec![&target],
        ..Mocks::default()
    });
    let outcome = one(&scaler, alarm_event()).await;
    assert_eq!((outcome.action, outcome.to), (Action::ScaleOut, Some(5)));
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("policy bounds used") && n.contains("AccessDeniedException")),
        "{:?}",
        outcome.notes
    );
    assert_eq!(update.num_calls(), 1);
}

#[tokio::test]
async fn losing_the_race_for_the_service_means_deciding_again_inside_the_cooldown() {
    let (describe, update, target) = (
        describe_service(2, 2),
        update_service_ok(),
        no_scalable_target(),
    );
    let now = chrono::Utc::now().timestamp();
    // First read: nothing recorded. Second read: the other invocation's scale-out, just now.
    let memory = mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| pk_starts_with(r.key(), "scaler#service#"))
        .sequence()
        .output(|| GetItemOutput::builder().build())
        .output(move || {
            GetItemOutput::builder()
                .item(
                    "pk",
                    AttributeValue::S("scaler#service#shop#orders-worker".into()),
                )
                .item("revision", AttributeValue::N("1".into()))
                .item("last_scale_out_at", AttributeValue::N(now.to_string()))
                .build()
        })
        .build();
    let record = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.contains("revision = :next"))
        })
        .then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .message("revision moved")
                    .build(),
            )
        });
    let (claim, complete, publish) = (claim_ok(), claim_finished(":complete"), published());
    let scaler = scaler(&Mocks {
        ecs: vec![&describe, &update],
        sns: vec![&publish],
        dynamodb: vec![&claim, &memory, &record, &complete],
        autoscaling: vec![&target],
        ..Mocks::default()
    });
    let outcome = one(&scaler, alarm_event()).await;
    assert_eq!(outcome.action, Action::None);
    assert!(
        outcome.reason.contains("scale-out cooldown"),
        "{}",
        outcome.reason
    );
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("another invocation scaled")),
        "{:?}",
        outcome.notes
    );
    assert_eq!(
        update.num_calls(),
        0,
        "one change per cooldown across invocations"
    );
    assert_eq!(
        publish.num_calls(),
        0,
        "a cooldown is not worth a notification"
    );
    assert_eq!(record.num_calls(), 1);
}

#[tokio::test]
async fn a_failed_update_gives_the_cooldown_back_and_releases_the_transition() {
    let (describe, target) = (describe_service(2, 2), no_scalable_target());
    let update = mock!(aws_sdk_ecs::Client::update_service)
        .then_error(|| UpdateServiceError::generic(error_meta("ThrottlingException")));
    let record = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.contains("revision = :next"))
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let (claim, memory, release, complete) = (
        claim_ok(),
        no_scaling_memory(),
        claim_finished(":retryable"),
        claim_finished(":complete"),
    );
    let scaler = scaler(&Mocks {
        ecs: vec![&describe, &update],
        dynamodb: vec![&claim, &memory, &record, &release, &complete],
        autoscaling: vec![&target],
        ..Mocks::default()
    });
    let error = scaler
        .handle(alarm_event().into(), Invocation::default())
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    assert!(
        error
            .to_string()
            .contains("ecs.UpdateService failed: ThrottlingException"),
        "{error}"
    );
    assert_eq!(record.num_calls(), 2, "recorded, then reverted");
    assert_eq!((release.num_calls(), complete.num_calls()), (1, 0));
}

#[tokio::test]
async fn a_duplicate_transition_does_nothing() {
    let claim = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.contains(":in_progress"))
        })
        .then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
    let record = mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| pk_starts_with(r.key(), "scaler#transition#"))
        .then_output(|| {
            GetItemOutput::builder()
                .item("status", AttributeValue::S("COMPLETE".into()))
                .item("decision", AttributeValue::S("scale-out".into()))
                .item("lease_until", AttributeValue::N("0".into()))
                .build()
        });
    let (describe, update) = (describe_service(2, 2), update_service_ok());
    let scaler = scaler(&Mocks {
        ecs: vec![&describe, &update],
        dynamodb: vec![&claim, &record],
        ..Mocks::default()
    });
    let outcome = one(&scaler, alarm_event()).await;
    assert_eq!(outcome.action, Action::None);
    assert!(
        outcome.reason.contains("duplicate delivery"),
        "{}",
        outcome.reason
    );
    assert_eq!((describe.num_calls(), update.num_calls()), (0, 0));
}

#[tokio::test]
async fn the_tick_repeats_the_step_for_alarms_still_in_alarm() {
    let alarms = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(|| {
        DescribeAlarmsOutput::builder()
            .metric_alarms(
                MetricAlarm::builder()
                    .alarm_name("orders-queue-backlog-high")
                    .alarm_arn("arn:aws:cloudwatch:us-east-1:111122223333:alarm:orders-queue-backlog-high")
                    .state_value(StateValue::Alarm)
                    .state_reason("Threshold Crossed: 1 out of the last 1 datapoints [640.0 (14/09/26 12:05:00)] was greater than the threshold (100.0).")
                    .threshold(100.0)
                    .build(),
            )
            .build()
    });
    let (describe, update, target, memory, record, publish) = (
        describe_service(4, 4),
        update_service_ok(),
        no_scalable_target(),
        no_scaling_memory(),
        record_scaling_ok(),
        published(),
    );
    let claim = claim_ok();
    let scaler = scaler(&Mocks {
        ecs: vec![&describe, &update],
        sns: vec![&publish],
        dynamodb: vec![&claim, &memory, &record],
        cloudwatch: vec![&alarms],
        autoscaling: vec![&target],
    });
    let response = scaler
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
    assert_eq!(claim.num_calls(), 0, "ticks are not transitions: no claim");
    assert_eq!(update.num_calls(), 1);
}
