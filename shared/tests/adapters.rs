//! Adapter error paths with `aws-smithy-mocks`: what the triage handler does when AWS calls fail.
//! (The scaler's are in `scaler_adapters.rs`.)

use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;

use autopilot::app::triage::{Decision, TaskTriage};
use autopilot::app::Setup;
use autopilot::aws::AwsClients;
use autopilot::config::{Deployment, StackConfig};
use autopilot::entry::{Invocation, Mode};

fn oom_event() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/ecs/service-oom.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn service_error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} (mocked)"))
        .build()
}

fn clients(ecs: &[&Rule], sns: &[&Rule], dynamodb: &[&Rule]) -> AwsClients {
    AwsClients::from_config(aws_config::SdkConfig::builder().build())
        .with_ecs(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, ecs))
        .with_sns(mock_client!(aws_sdk_sns, RuleMode::MatchAny, sns))
        .with_logs(mock_client!(
            aws_sdk_cloudwatchlogs,
            RuleMode::MatchAny,
            &[]
        ))
        .with_dynamodb(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamodb))
}

fn triage(clients: AwsClients, state_table: Option<&str>) -> TaskTriage {
    TaskTriage::new(Setup {
        mode: Mode::Live,
        config: StackConfig::default(),
        deployment: Deployment {
            topic_arn: Some("arn:aws:sns:us-east-1:111122223333:autopilot".into()),
            state_table: state_table.map(str::to_owned),
        },
        clients: Some(clients),
    })
    .unwrap()
}

fn describe_services_fails() -> Rule {
    mock!(aws_sdk_ecs::Client::describe_services)
        .then_error(|| DescribeServicesError::generic(service_error("AccessDeniedException")))
}

fn describe_task_definition_fails() -> Rule {
    mock!(aws_sdk_ecs::Client::describe_task_definition)
        .then_error(|| DescribeTaskDefinitionError::generic(service_error("AccessDeniedException")))
}

/// A live triage whose enrichment calls (DescribeServices, DescribeTaskDefinition) all fail.
fn triage_with_failing_enrichment(
    publish: &Rule,
    dynamodb: &[&Rule],
    state_table: Option<&str>,
) -> TaskTriage {
    let (services, task_definition) = (describe_services_fails(), describe_task_definition_fails());
    triage(
        clients(&[&services, &task_definition], &[publish], dynamodb),
        state_table,
    )
}

#[tokio::test]
async fn throttled_publish_is_returned_as_an_error() {
    let publish = mock!(aws_sdk_sns::Client::publish)
        .then_error(|| PublishError::generic(service_error("Throttling")));
    let triage = triage_with_failing_enrichment(&publish, &[], None);
    let error = triage
        .handle(oom_event().into(), Invocation::default())
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    assert!(
        error.to_string().contains("sns.Publish failed: Throttling"),
        "{error}"
    );
    assert!(publish.num_calls() >= 1);
}

#[tokio::test]
async fn failing_enrichment_never_blocks_the_notification() {
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|request| {
            request
                .message()
                .is_some_and(|m| m.contains("service context could not be fetched"))
        })
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let triage = triage_with_failing_enrichment(&publish, &[], None);
    let outcome = triage
        .handle(oom_event().into(), Invocation::default())
        .await
        .unwrap();
    assert_eq!(outcome.decision, Decision::Notify);
    assert_eq!(outcome.message_id.as_deref(), Some("m-1"));
    assert_eq!(
        publish.num_calls(),
        1,
        "published once, saying what could not be fetched"
    );
    assert!(outcome.notes.iter().any(|n| n.contains("service context could not be fetched: ecs.DescribeServices failed: AccessDeniedException")), "{:?}", outcome.notes);
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("log tail could not be fetched")),
        "{:?}",
        outcome.notes
    );
}

#[tokio::test]
async fn a_failed_publish_releases_the_claim_so_the_retry_is_not_blocked() {
    let claim = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.contains(":in_progress"))
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let storm = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.starts_with("ADD stops"))
        })
        .then_output(|| {
            UpdateItemOutput::builder()
                .attributes(
                    "stops",
                    aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
                )
                .attributes(
                    "started_at",
                    aws_sdk_dynamodb::types::AttributeValue::N("0".into()),
                )
                .build()
        });
    let record_count = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| r.update_expression() == Some("SET storm_count = :count"))
        .then_output(|| UpdateItemOutput::builder().build());
    let release = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| r.update_expression() == Some("SET #status = :retryable"))
        .then_output(|| UpdateItemOutput::builder().build());
    let complete = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.contains(":complete"))
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let publish = mock!(aws_sdk_sns::Client::publish)
        .then_error(|| PublishError::generic(service_error("InternalError")));
    let triage = triage_with_failing_enrichment(
        &publish,
        &[&claim, &storm, &record_count, &release, &complete],
        Some("state"),
    );
    let error = triage
        .handle(oom_event().into(), Invocation::default())
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    assert_eq!(claim.num_calls(), 1);
    assert_eq!(storm.num_calls(), 1);
    assert_eq!(
        record_count.num_calls(),
        1,
        "the storm count is kept on the claim for the retry"
    );
    assert_eq!(release.num_calls(), 1, "the claim is released");
    assert_eq!(complete.num_calls(), 0);
}
