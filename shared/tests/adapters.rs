//! Adapter error paths with `aws-smithy-mocks`: what the triage handler does when AWS calls fail.
//! (The scaler's are in `scaler_adapters.rs`.)

use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, TransactWriteItem};
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
fn is_storm_key(key: &std::collections::HashMap<String, AttributeValue>) -> bool {
    key.get("pk")
        .and_then(|pk| pk.as_s().ok())
        .is_some_and(|pk| pk.starts_with("storm#"))
}

/// GetItem of the storm window: none open yet.
fn no_open_window() -> Rule {
    mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| r.key().is_some_and(is_storm_key))
        .then_output(|| GetItemOutput::builder().build())
}

/// A storm window open with `stops` stops.
fn window_item(stops: u64) -> GetItemOutput {
    GetItemOutput::builder()
        .item(
            "pk",
            AttributeValue::S("storm#shop#service:orders-api#oom".into()),
        )
        .item("stops", AttributeValue::N(stops.to_string()))
        .item("started_at", AttributeValue::N(chrono_now().to_string()))
        .build()
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The counting transaction succeeds.
fn counts_stop() -> Rule {
    mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .then_output(|| TransactWriteItemsOutput::builder().build())
}

/// The counting transaction is cancelled: `codes` per item (storm window, claim).
fn cancelled(codes: [&str; 2]) -> TransactWriteItemsError {
    let mut exception = TransactionCanceledException::builder().message("cancelled (mocked)");
    for code in codes {
        exception =
            exception.cancellation_reasons(CancellationReason::builder().code(code).build());
    }
    TransactWriteItemsError::TransactionCanceledException(exception.build())
}

/// The number the transaction gives the stop (the storm window's `stops`, as written).
fn counted_as(item: &TransactWriteItem) -> Option<String> {
    if let Some(update) = item.update() {
        return update
            .expression_attribute_values()
            .and_then(|v| v.get(":next"))
            .and_then(|v| v.as_n().ok())
            .cloned();
    }
    item.put()
        .and_then(|put| put.item().get("stops"))
        .and_then(|v| v.as_n().ok())
        .cloned()
}

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
    let window = no_open_window();
    let counted = counts_stop();
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
        &[&claim, &window, &counted, &release, &complete],
        Some("state"),
    );
    let error = triage
        .handle(oom_event().into(), Invocation::default())
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    assert_eq!(claim.num_calls(), 1);
    assert_eq!(
        counted.num_calls(),
        1,
        "the stop is counted, its number kept on the claim for the retry"
    );
    assert_eq!(release.num_calls(), 1, "the claim is released");
    assert_eq!(complete.num_calls(), 0);
}

/// Claim, publish and completion succeed; the storm window is mocked per test.
fn triage_counting(dynamodb: &[&Rule], publish: &Rule) -> TaskTriage {
    triage_with_failing_enrichment(publish, dynamodb, Some("state"))
}

fn claim_ok() -> Rule {
    mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.contains(":in_progress") || e.contains(":complete"))
        })
        .then_output(|| UpdateItemOutput::builder().build())
}

fn published() -> Rule {
    mock!(aws_sdk_sns::Client::publish)
        .then_output(|| PublishOutput::builder().message_id("m-1").build())
}

#[tokio::test]
async fn a_stop_whose_number_another_stop_took_reads_again_and_takes_the_next() {
    let claim = claim_ok();
    let window = mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| r.key().is_some_and(is_storm_key))
        .sequence()
        .output(|| window_item(1))
        .output(|| window_item(2))
        .build();
    // Stop 2 is taken by a concurrent stop (the window changed under the condition); the
    // second attempt numbers it 3 and keeps that number on its claim.
    let lost_race = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .match_requests(|r| counted_as(&r.transact_items()[0]).as_deref() == Some("2"))
        .then_error(|| cancelled(["ConditionalCheckFailed", "None"]));
    let count = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .match_requests(|r| {
            counted_as(&r.transact_items()[0]).as_deref() == Some("3")
                && r.transact_items()[1].update().is_some_and(|claim| {
                    claim
                        .condition_expression()
                        .is_some_and(|c| c.contains("attribute_not_exists(storm_count)"))
                        && claim
                            .expression_attribute_values()
                            .and_then(|v| v.get(":count"))
                            == Some(&AttributeValue::N("3".into()))
                })
        })
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let publish = published();
    let outcome = triage_counting(&[&claim, &window, &lost_race, &count], &publish)
        .handle(oom_event().into(), Invocation::default())
        .await
        .unwrap();
    assert_eq!(lost_race.num_calls(), 1, "the first attempt lost the race");
    assert_eq!(count.num_calls(), 1, "the second wrote stop 3");
    assert_eq!(
        window.num_calls(),
        2,
        "the window is read again after the race"
    );
    assert_eq!(
        outcome.decision,
        Decision::Folded,
        "stop 3 of the window folds"
    );
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("stop 3 of a storm")),
        "{:?}",
        outcome.notes
    );
    assert_eq!(publish.num_calls(), 0);
}

#[tokio::test]
async fn a_retried_delivery_that_was_counted_keeps_its_number() {
    let claim = claim_ok();
    let window = mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| r.key().is_some_and(is_storm_key))
        .then_output(|| window_item(7));
    let recorded = mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| r.key().is_some_and(|k| !is_storm_key(k)))
        .then_output(|| {
            GetItemOutput::builder()
                .item("storm_count", AttributeValue::N("1".into()))
                .build()
        });
    let count = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .then_error(|| cancelled(["None", "ConditionalCheckFailed"]));
    let publish = published();
    let outcome = triage_counting(&[&claim, &window, &recorded, &count], &publish)
        .handle(oom_event().into(), Invocation::default())
        .await
        .unwrap();
    assert_eq!(count.num_calls(), 1, "counted once, not again");
    assert_eq!(recorded.num_calls(), 1, "the claim's number is read back");
    assert_eq!(
        outcome.decision,
        Decision::Notify,
        "its recorded number 1 is the window's first stop: notified (the earlier attempt failed to publish)"
    );
    assert_eq!(publish.num_calls(), 1);
}
