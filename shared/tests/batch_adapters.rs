//! `batch-runner` against mocked ECS, SNS and DynamoDB (`aws-smithy-mocks`): RunTask
//! `failures[]` sequences (capacity twice then success, capacity to the fallback strategy,
//! capacity exhausted, configuration failures, partial success), the overlap guard (skip,
//! replace) and a duplicate delivery. Time is paused, so backoffs cost nothing.

use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::run_task::{RunTaskInput, RunTaskOutput};
use aws_sdk_ecs::operation::stop_task::StopTaskOutput;
use aws_sdk_ecs::types::{Failure, Task};
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

use autopilot::app::batch::{BatchRunner, RunOutcome, RunnerResponse};
use autopilot::app::Setup;
use autopilot::aws::AwsClients;
use autopilot::batch::report::RunAction;
use autopilot::config::{Deployment, StackConfig};
use autopilot::entry::{Invocation, Mode};

fn catalog(count: u32, overlap: &str, fallback: bool) -> StackConfig {
    let mut job = serde_json::json!({
        "cluster": "shop", "task_definition": "invoice-export:3", "count": count,
        "capacity_provider_strategy": [{"capacity_provider": "FARGATE_SPOT", "weight": 1}],
        "network": {"subnets": ["subnet-1"]}, "overlap": overlap
    });
    if fallback {
        job["fallback_capacity_provider_strategy"] =
            serde_json::json!([{"capacity_provider": "FARGATE", "weight": 1}]);
    }
    StackConfig::parse(&serde_json::json!({"jobs": {"invoice-export": job}}).to_string()).unwrap()
}

fn runner(
    config: StackConfig,
    ecs: &[&Rule],
    sns: &[&Rule],
    dynamodb: &[&Rule],
    table: bool,
) -> BatchRunner {
    let clients = AwsClients::from_config(aws_config::SdkConfig::builder().build())
        .with_ecs(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, ecs))
        .with_sns(mock_client!(aws_sdk_sns, RuleMode::MatchAny, sns))
        .with_dynamodb(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamodb));
    BatchRunner::new(Setup {
        mode: Mode::Live,
        config,
        deployment: Deployment {
            topic_arn: Some("arn:aws:sns:us-east-1:111122223333:autopilot".into()),
            state_table: table.then(|| "state".to_owned()),
        },
        clients: Some(clients),
    })
    .unwrap()
}

fn request() -> serde_json::Value {
    serde_json::json!({"job": "invoice-export", "scheduled_time": "2026-09-15T02:00:00Z"})
}

fn nothing_running() -> Rule {
    mock!(aws_sdk_ecs::Client::list_tasks).then_output(|| ListTasksOutput::builder().build())
}

fn running(arn: &'static str) -> Rule {
    mock!(aws_sdk_ecs::Client::list_tasks)
        .match_requests(|r| r.started_by() == Some("batch-runner/invoice-export"))
        .then_output(move || ListTasksOutput::builder().task_arns(arn).build())
}

fn started(n: usize) -> RunTaskOutput {
    let mut output = RunTaskOutput::builder();
    for i in 0..n {
        output = output.tasks(
            Task::builder()
                .task_arn(format!("arn:aws:ecs:us-east-1:111122223333:task/shop/t{i}"))
                .build(),
        );
    }
    output.build()
}

fn failed(reason: &'static str) -> RunTaskOutput {
    RunTaskOutput::builder()
        .failures(Failure::builder().reason(reason).build())
        .build()
}

fn published() -> Rule {
    mock!(aws_sdk_sns::Client::publish)
        .then_output(|| PublishOutput::builder().message_id("m-1").build())
}

async fn run(runner: &BatchRunner) -> autopilot::Result<RunOutcome> {
    match runner
        .handle(request().into(), Invocation::default())
        .await?
    {
        RunnerResponse::Run(outcome) => Ok(*outcome),
        other => panic!("expected a run, got {other:?}"),
    }
}

fn uses_provider(r: &RunTaskInput, provider: &str) -> bool {
    r.capacity_provider_strategy()
        .first()
        .is_some_and(|s| s.capacity_provider() == provider)
}

#[tokio::test(start_paused = true)]
async fn capacity_twice_then_success() {
    let list = nothing_running();
    let run_task = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(|r| {
            r.started_by() == Some("batch-runner/invoice-export")
                && r.client_token().is_some_and(|t| t.len() <= 64)
                && r.count() == Some(1)
        })
        .sequence()
        .output(|| failed("RESOURCE:CPU"))
        .output(|| failed("Capacity is unavailable at this time. Please try again later or in a different availability zone"))
        .output(|| started(1))
        .build();
    let publish = published();
    let runner = runner(
        catalog(1, "skip", false),
        &[&list, &run_task],
        &[&publish],
        &[],
        false,
    );
    let outcome = run(&runner).await.unwrap();
    assert_eq!(outcome.action, RunAction::Started);
    assert_eq!(outcome.attempts, 3);
    assert_eq!(outcome.tasks.len(), 1);
    assert!(outcome.failures.is_empty());
    assert_eq!(run_task.num_calls(), 3);
    assert_eq!(publish.num_calls(), 0, "a successful start is not news");
    assert_eq!(
        outcome
            .notes
            .iter()
            .filter(|n| n.contains("(capacity); retrying"))
            .count(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn configuration_failure_is_not_retried_and_is_reported() {
    let list = nothing_running();
    let run_task = mock!(aws_sdk_ecs::Client::run_task).then_output(|| failed("MISSING"));
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| {
            r.subject()
                .is_some_and(|s| s.starts_with("[CRITICAL]") && s.contains("failed to start"))
        })
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let runner = runner(
        catalog(1, "skip", true),
        &[&list, &run_task],
        &[&publish],
        &[],
        false,
    );
    let outcome = run(&runner).await.unwrap();
    assert_eq!(outcome.action, RunAction::Failed);
    assert_eq!(
        run_task.num_calls(),
        1,
        "no retry, no fallback for a configuration failure"
    );
    assert_eq!(outcome.failures[0].reason, "MISSING");
    assert_eq!(publish.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn capacity_exhausted_moves_to_the_fallback_strategy() {
    let list = nothing_running();
    let primary = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(|r| uses_provider(r, "FARGATE_SPOT"))
        .then_output(|| failed("RESOURCE:MEMORY"));
    let fallback = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(|r| uses_provider(r, "FARGATE"))
        .then_output(|| started(1));
    let runner = runner(
        catalog(1, "skip", true),
        &[&list, &primary, &fallback],
        &[],
        &[],
        false,
    );
    let outcome = run(&runner).await.unwrap();
    assert_eq!(outcome.action, RunAction::Started);
    assert_eq!(primary.num_calls(), 5);
    assert_eq!(fallback.num_calls(), 1);
    assert_eq!(outcome.attempts, 6);
}

#[tokio::test(start_paused = true)]
async fn capacity_exhausted_everywhere_is_an_error_and_a_critical_notification() {
    let list = nothing_running();
    let run_task = mock!(aws_sdk_ecs::Client::run_task).then_output(|| failed("RESOURCE:CPU"));
    let publish = published();
    let runner = runner(
        catalog(1, "skip", true),
        &[&list, &run_task],
        &[&publish],
        &[],
        false,
    );
    let error = run(&runner).await.unwrap_err();
    assert_eq!(error.error_type(), "CapacityUnavailable");
    assert!(
        error.to_string().contains("0 of 1 tasks started"),
        "{error}"
    );
    assert_eq!(run_task.num_calls(), 10, "5 primary + 5 fallback attempts");
    assert_eq!(publish.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn partial_success_is_reported_exactly() {
    let list = nothing_running();
    let run_task = mock!(aws_sdk_ecs::Client::run_task)
        .sequence()
        .output(|| started(10))
        .output(|| {
            let mut output = started(1);
            output.failures = Some(vec![Failure::builder()
                .reason("ATTRIBUTE")
                .arn("arn:ci/x")
                .build()]);
            output
        })
        .build();
    let publish = published();
    let runner = runner(
        catalog(12, "skip", false),
        &[&list, &run_task],
        &[&publish],
        &[],
        false,
    );
    let outcome = run(&runner).await.unwrap();
    assert_eq!(outcome.action, RunAction::Failed);
    assert_eq!(
        outcome.tasks.len(),
        11,
        "10 from the first call, 1 from the second"
    );
    assert_eq!(outcome.requested, 12);
    assert_eq!(outcome.failures[0].reason, "ATTRIBUTE");
    assert_eq!(run_task.num_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn overlapping_run_is_skipped() {
    let list = running("arn:aws:ecs:us-east-1:111122223333:task/shop/old");
    let run_task = mock!(aws_sdk_ecs::Client::run_task).then_output(|| started(1));
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| r.subject().is_some_and(|s| s.contains("skipped")))
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let runner = runner(
        catalog(1, "skip", false),
        &[&list, &run_task],
        &[&publish],
        &[],
        false,
    );
    let outcome = run(&runner).await.unwrap();
    assert_eq!(outcome.action, RunAction::Skipped);
    assert_eq!(outcome.previous_tasks.len(), 1);
    assert_eq!(run_task.num_calls(), 0);
    assert_eq!(publish.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn replace_stops_the_previous_run_first() {
    let list = running("arn:aws:ecs:us-east-1:111122223333:task/shop/old");
    let stop = mock!(aws_sdk_ecs::Client::stop_task)
        .match_requests(|r| {
            r.task() == Some("arn:aws:ecs:us-east-1:111122223333:task/shop/old")
                && r.reason().is_some_and(|reason| {
                    reason.starts_with("batch-runner: replaced by the run 2026-09-15T02:00:00Z")
                })
        })
        .then_output(|| StopTaskOutput::builder().build());
    let run_task = mock!(aws_sdk_ecs::Client::run_task).then_output(|| started(1));
    let publish = published();
    let runner = runner(
        catalog(1, "replace", false),
        &[&list, &stop, &run_task],
        &[&publish],
        &[],
        false,
    );
    let outcome = run(&runner).await.unwrap();
    assert_eq!(outcome.action, RunAction::Replaced);
    assert_eq!((stop.num_calls(), run_task.num_calls()), (1, 1));
    assert_eq!(outcome.tasks.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_delivery_starts_nothing() {
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
    let record = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .item("status", AttributeValue::S("COMPLETE".into()))
            .item("decision", AttributeValue::S("started".into()))
            .item("lease_until", AttributeValue::N("0".into()))
            .build()
    });
    let list = nothing_running();
    let run_task = mock!(aws_sdk_ecs::Client::run_task).then_output(|| started(1));
    let runner = runner(
        catalog(1, "allow", false),
        &[&list, &run_task],
        &[],
        &[&claim, &record],
        true,
    );
    let outcome = run(&runner).await.unwrap();
    assert_eq!(outcome.action, RunAction::Skipped);
    assert!(
        outcome.reason.contains("duplicate delivery"),
        "{}",
        outcome.reason
    );
    assert_eq!((list.num_calls(), run_task.num_calls()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_run_with_a_state_table_records_its_tasks_and_completes() {
    let claim = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.contains(":in_progress"))
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let record_tasks = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| r.update_expression() == Some("ADD tasks :tasks"))
        .then_output(|| UpdateItemOutput::builder().build());
    let complete = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.contains(":complete"))
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let list = nothing_running();
    let run_task = mock!(aws_sdk_ecs::Client::run_task).then_output(|| started(3));
    let runner = runner(
        catalog(3, "skip", false),
        &[&list, &run_task],
        &[],
        &[&claim, &record_tasks, &complete],
        true,
    );
    let outcome = run(&runner).await.unwrap();
    assert_eq!(
        (outcome.action, outcome.tasks.len()),
        (RunAction::Started, 3)
    );
    assert_eq!(
        (
            claim.num_calls(),
            record_tasks.num_calls(),
            complete.num_calls()
        ),
        (1, 1, 1)
    );
}
