//! What only the AWS adapters know, against mocked SDK clients (`aws-smithy-mocks`): the
//! requests they build (the fields UpdateService and RunTask carry), how they read answers back
//! (failures[], alarm reasons, pages) and how SDK errors become
//! [`autopilot::AutopilotError::Aws`] with the service's code. The state table is held to the
//! state contract on the local cloud instead (`tests/tests/state_contract_local_cloud.rs`);
//! handler behaviour is tested on the in-memory ports (`*_handler.rs`).

use aws_sdk_applicationautoscaling::operation::describe_scalable_targets::DescribeScalableTargetsOutput;
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ScalableTarget, ServiceNamespace};
use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};
use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsOutput;
use aws_sdk_cloudwatchlogs::types::OutputLogEvent;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::run_task::RunTaskOutput;
use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
use aws_sdk_ecs::types::{
    Deployment, DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentRolloutState, Failure,
    Service, Task,
};
use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;

use autopilot::aws::sns::SnsNotifier;
use autopilot::aws::state_table::StateTable;
use autopilot::aws::AwsClients;
use autopilot::batch::{run_task_request, JobSpec, Placement};
use autopilot::domain::AlarmState;
use autopilot::notify::Publish;
use autopilot::ports::{
    AlarmReader, ClaimWriter, LogReader, MuteWriter, ScalableTargets, ScalingWriter, ServiceReader,
    ServiceScaler, TaskLister, TaskRunner,
};
use autopilot::scaling::{ScalingMemory, TargetBounds};
use autopilot::state::MutedNotice;

fn clients() -> AwsClients {
    AwsClients::from_config(aws_config::SdkConfig::builder().build())
}

fn dynamodb(rules: &[&Rule]) -> StateTable {
    StateTable::new(
        clients().with_dynamodb(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules)),
        "state",
    )
}

fn ecs(rules: &[&Rule]) -> AwsClients {
    clients().with_ecs(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, rules))
}

/// A write DynamoDB refuses for another reason than its condition is an error naming the
/// service's code, never taken for "someone else got there first". (What the state table
/// answers otherwise is the state contract's, run against the local cloud.)
#[tokio::test]
async fn a_throttled_state_write_is_an_error_not_a_refusal() {
    let throttled = || {
        UpdateItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .build(),
        )
    };
    let claim = mock!(aws_sdk_dynamodb::Client::update_item).then_error(throttled);
    let table = dynamodb(&[&claim]);
    let error = table.claim("dedup#k", 100, 200, 3600).await.unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    assert!(
        error
            .to_string()
            .starts_with("dynamodb.UpdateItem failed: ")
            && error
                .to_string()
                .contains("ProvisionedThroughputExceededException"),
        "{error}"
    );
    let memory = ScalingMemory::default();
    assert!(table
        .record_scaling("scaling#k", 0, &memory, "x")
        .await
        .is_err());
    assert!(table
        .count_muted(&MutedNotice {
            ledger_key: "muted#k",
            category: "oom",
            about: None,
            until: 0,
            ttl_s: 60,
            claim_key: Some("dedup#k"),
        })
        .await
        .is_err());
}

fn publish() -> Publish {
    Publish {
        subject: "subject".into(),
        message: "{\"default\": \"text\"}".into(),
        attributes: vec![("severity".into(), "critical".into())],
        log_lines_dropped: 0,
    }
}

#[tokio::test]
async fn sns_publishes_json_structure_with_attributes_and_maps_throttling() {
    let ok = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| {
            r.topic_arn() == Some("arn:aws:sns:us-east-1:111122223333:t")
                && r.message_structure() == Some("json")
                && r.message_attributes()
                    .and_then(|a| a.get("severity"))
                    .and_then(|v| v.string_value())
                    == Some("critical")
        })
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let throttled = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| r.subject() == Some("throttled"))
        .then_error(|| {
            PublishError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("slow down")
                    .build(),
            )
        });
    let sns = SnsNotifier::new(
        clients().with_sns(mock_client!(
            aws_sdk_sns,
            RuleMode::MatchAny,
            &[&throttled, &ok]
        )),
        "arn:aws:sns:us-east-1:111122223333:t",
    );
    assert_eq!(sns.publish(None, &publish()).await.unwrap(), "m-1");
    let error = sns
        .publish(
            None,
            &Publish {
                subject: "throttled".into(),
                ..publish()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    assert_eq!(
        error.to_string(),
        "sns.Publish failed: Throttling: slow down"
    );
}

#[tokio::test]
async fn update_service_carries_the_desired_count_only() {
    let update = mock!(aws_sdk_ecs::Client::update_service)
        .match_requests(|r| {
            r.desired_count() == Some(4)
                && r.cluster() == Some("shop")
                && r.service() == Some("orders-worker")
                && r.task_definition().is_none()
                && r.force_new_deployment().is_none()
                && r.deployment_configuration().is_none()
                && r.network_configuration().is_none()
                && r.capacity_provider_strategy().is_empty()
                && r.platform_version().is_none()
        })
        .then_output(|| UpdateServiceOutput::builder().build());
    ecs(&[&update])
        .set_desired_count("shop", "orders-worker", 4)
        .await
        .unwrap();
    assert_eq!(update.num_calls(), 1);
}

#[tokio::test]
async fn describe_services_reads_the_primary_rollout_and_the_circuit_breaker() {
    let describe = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
        DescribeServicesOutput::builder()
            .services(
                Service::builder()
                    .status("ACTIVE")
                    .desired_count(3)
                    .running_count(1)
                    .pending_count(2)
                    .deployments(
                        Deployment::builder()
                            .status("ACTIVE")
                            .rollout_state(DeploymentRolloutState::Completed)
                            .build(),
                    )
                    .deployments(
                        Deployment::builder()
                            .status("PRIMARY")
                            .rollout_state(DeploymentRolloutState::InProgress)
                            .build(),
                    )
                    .deployment_configuration(
                        DeploymentConfiguration::builder()
                            .deployment_circuit_breaker(
                                DeploymentCircuitBreaker::builder()
                                    .enable(true)
                                    .rollback(true)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let snapshot = ecs(&[&describe])
        .describe_service("shop", "orders-api")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            snapshot.desired,
            snapshot.running,
            snapshot.pending,
            snapshot.deployments
        ),
        (3, 1, 2, 2)
    );
    assert_eq!(snapshot.rollout_state.as_deref(), Some("IN_PROGRESS"));
    assert_eq!(
        (snapshot.circuit_breaker, snapshot.circuit_breaker_rollback),
        (Some(true), Some(true))
    );
}

#[tokio::test]
async fn run_task_sends_the_plan_and_reads_failures() {
    let spec: JobSpec = serde_json::from_value(serde_json::json!({
        "cluster": "shop", "task_definition": "invoice-export:3", "count": 2,
        "capacity_provider_strategy": [{"capacity_provider": "FARGATE_SPOT", "weight": 2, "base": 1}],
        "network": {"subnets": ["subnet-1"], "security_groups": ["sg-1"]},
        "overrides": [{"name": "app", "command": ["run"], "environment": {"MODE": "full"}}],
        "tags": {"team": "billing"}
    }))
    .unwrap();
    let request = run_task_request(
        "invoice-export",
        &spec,
        "2026-09-15T02:00:00Z",
        0,
        0,
        1,
        2,
        Placement::Primary,
    );
    let token = request.client_token.clone();
    let run = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(move |r| {
            let strategy = &r.capacity_provider_strategy()[0];
            let vpc = r
                .network_configuration()
                .and_then(|n| n.awsvpc_configuration())
                .unwrap();
            let container = &r.overrides().unwrap().container_overrides()[0];
            r.client_token() == Some(token.as_str())
                && r.started_by() == Some("batch-runner/invoice-export")
                && r.count() == Some(2)
                && (
                    strategy.capacity_provider(),
                    strategy.weight(),
                    strategy.base(),
                ) == ("FARGATE_SPOT", 2, 1)
                && vpc.subnets() == ["subnet-1"]
                && vpc.security_groups() == ["sg-1"]
                && container.command() == ["run"]
                && container.environment()[0].name() == Some("MODE")
                && r.tags()[0].key() == Some("team")
                && r.launch_type().is_none()
        })
        .then_output(|| {
            RunTaskOutput::builder()
                .tasks(
                    Task::builder()
                        .task_arn("arn:aws:ecs:us-east-1:111122223333:task/shop/t0")
                        .build(),
                )
                .failures(
                    Failure::builder()
                        .reason("RESOURCE:MEMORY")
                        .arn("arn:ci/1")
                        .detail("d")
                        .build(),
                )
                .build()
        });
    let result = ecs(&[&run]).run_task(&request).await.unwrap();
    assert_eq!(
        result.tasks,
        ["arn:aws:ecs:us-east-1:111122223333:task/shop/t0"]
    );
    assert_eq!(
        (
            result.failures[0].reason.as_str(),
            result.failures[0].arn.as_deref()
        ),
        ("RESOURCE:MEMORY", Some("arn:ci/1"))
    );
    assert_eq!(run.num_calls(), 1);
}

#[tokio::test]
async fn list_tasks_follows_every_page() {
    let pages = mock!(aws_sdk_ecs::Client::list_tasks)
        .sequence()
        .output(|| {
            ListTasksOutput::builder()
                .task_arns("a")
                .next_token("p2")
                .build()
        })
        .output(|| ListTasksOutput::builder().task_arns("b").build())
        .build();
    let tasks = ecs(&[&pages])
        .tasks_started_by("shop", "batch-runner/x")
        .await
        .unwrap();
    assert_eq!(
        (tasks, pages.num_calls()),
        (vec!["a".to_owned(), "b".to_owned()], 2)
    );
}

#[tokio::test]
async fn describe_alarms_reads_state_value_and_threshold() {
    let alarms = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(|| {
        DescribeAlarmsOutput::builder()
            .metric_alarms(
                MetricAlarm::builder()
                    .alarm_name("orders-queue-backlog-high")
                    .state_value(StateValue::Alarm)
                    .state_reason("Threshold Crossed: 1 out of the last 1 datapoints [640.0 (14/09/26 12:05:00)] was greater than the threshold (100.0).")
                    .threshold(100.0)
                    .build(),
            )
            .build()
    });
    let clients = clients().with_cloudwatch(mock_client!(
        aws_sdk_cloudwatch,
        RuleMode::MatchAny,
        &[&alarms]
    ));
    let read = clients
        .current_alarms(&["orders-queue-backlog-high".into()])
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(
        (read[0].state, read[0].metric_value, read[0].threshold),
        (AlarmState::Alarm, Some(640.0), Some(100.0))
    );
}

#[tokio::test]
async fn scalable_targets_give_bounds_or_none() {
    let target = mock!(aws_sdk_applicationautoscaling::Client::describe_scalable_targets)
        .match_requests(|r| r.resource_ids() == ["service/shop/orders-worker"])
        .sequence()
        .output(|| {
            DescribeScalableTargetsOutput::builder()
                .scalable_targets(
                    ScalableTarget::builder()
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id("service/shop/orders-worker")
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .min_capacity(1)
                        .max_capacity(4)
                        .role_arn("arn:aws:iam::111122223333:role/aas")
                        .creation_time(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .output(|| DescribeScalableTargetsOutput::builder().build())
        .build();
    let clients = clients().with_autoscaling(mock_client!(
        aws_sdk_applicationautoscaling,
        RuleMode::MatchAny,
        &[&target]
    ));
    let arn = "arn:aws:ecs:us-east-1:111122223333:service/shop/orders-worker";
    assert_eq!(
        clients.service_bounds("shop", arn).await.unwrap(),
        Some(TargetBounds { min: 1, max: 4 })
    );
    assert_eq!(
        clients
            .service_bounds("shop", "orders-worker")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_log_tail_is_oldest_first_without_line_ends() {
    let events = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
        .match_requests(|r| r.start_from_head() == Some(false) && r.limit() == Some(2))
        .then_output(|| {
            GetLogEventsOutput::builder()
                .events(OutputLogEvent::builder().message("one\n").build())
                .events(OutputLogEvent::builder().message("two\r\n").build())
                .build()
        });
    let clients = clients().with_logs(mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::MatchAny,
        &[&events]
    ));
    assert_eq!(clients.tail("g", "s", 2).await.unwrap(), ["one", "two"]);
}

/// The template's state table has the key and the TTL attribute the adapter writes.
#[test]
fn the_template_keys_and_expires_the_state_table_by_the_adapters_names() {
    use autopilot::aws::state_table::attr::{EXPIRES_AT, PK};
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
            .unwrap();
    let table = &template[template.find("  StateTable:\n").expect("StateTable")..];
    let table = &table[..table.find("\n\n").unwrap_or(table.len())];
    for expected in [
        format!("KeySchema:\n        - AttributeName: {PK}\n          KeyType: HASH"),
        format!(
            "TimeToLiveSpecification:\n        AttributeName: {EXPIRES_AT}\n        Enabled: true"
        ),
    ] {
        assert!(table.contains(&expected), "{expected}\nnot in\n{table}");
    }
}

/// A queue's backlog: visible messages, plus those in flight only when asked for.
#[tokio::test]
async fn a_queues_backlog_is_its_visible_messages_and_in_flight_when_asked() {
    use autopilot::ports::BacklogReader;
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
    use aws_sdk_sqs::types::QueueAttributeName;
    const URL: &str = "https://sqs.us-east-1.amazonaws.com/111122223333/orders";
    let answer = |with_in_flight: bool| {
        let mut output = GetQueueAttributesOutput::builder()
            .attributes(QueueAttributeName::ApproximateNumberOfMessages, "250");
        if with_in_flight {
            output = output.attributes(
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                "12",
            );
        }
        output.build()
    };
    let visible = mock!(aws_sdk_sqs::Client::get_queue_attributes)
        .match_requests(|r| {
            r.queue_url() == Some(URL)
                && r.attribute_names() == [QueueAttributeName::ApproximateNumberOfMessages]
        })
        .then_output(move || answer(false));
    let both = mock!(aws_sdk_sqs::Client::get_queue_attributes)
        .match_requests(|r| r.attribute_names().len() == 2)
        .then_output(move || answer(true));
    let gone = mock!(aws_sdk_sqs::Client::get_queue_attributes)
        .match_requests(|r| {
            r.queue_url() == Some("https://sqs.us-east-1.amazonaws.com/111122223333/gone")
        })
        .then_error(|| {
            aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesError::generic(
                ErrorMetadata::builder()
                    .code("AWS.SimpleQueueService.NonExistentQueue")
                    .message("The specified queue does not exist.")
                    .build(),
            )
        });
    let clients = clients().with_sqs(mock_client!(
        aws_sdk_sqs,
        RuleMode::MatchAny,
        &[&gone, &visible, &both]
    ));
    assert_eq!(clients.backlog(URL, false).await.unwrap(), 250);
    assert_eq!(clients.backlog(URL, true).await.unwrap(), 262);
    let error = clients
        .backlog(
            "https://sqs.us-east-1.amazonaws.com/111122223333/gone",
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    assert!(
        error
            .to_string()
            .contains("AWS.SimpleQueueService.NonExistentQueue"),
        "{error}"
    );
}

/// GetMetricData: one call for the queries, each by its own id; of a query's datapoints the one
/// with the latest timestamp, in whatever order they come (the local cloud ignores ScanBy); a
/// query without datapoints is left out.
#[tokio::test]
async fn metric_queries_give_each_its_latest_datapoint() {
    use autopilot::ports::MetricReader;
    use autopilot::scaling::target::{MetricSignal, ValueIs};
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::{MetricDataResult, ScanBy};
    let signal = |expression: Option<&str>| MetricSignal {
        namespace: expression.is_none().then(|| "AWS/SQS".to_owned()),
        metric_name: expression
            .is_none()
            .then(|| "ApproximateNumberOfMessagesVisible".to_owned()),
        dimensions: [("QueueName".to_owned(), "orders".to_owned())].into(),
        statistic: "Maximum".into(),
        expression: expression.map(str::to_owned),
        period_s: 60,
        value_is: ValueIs::Total,
        account: None,
    };
    let answer = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| {
            let queries = r.metric_data_queries();
            let stat = queries[0].metric_stat();
            r.scan_by() == Some(&ScanBy::TimestampDescending)
                && queries.len() == 2
                && queries[0].id() == Some("q0")
                && stat.and_then(|s| s.stat()) == Some("Maximum")
                && stat.and_then(|s| s.period()) == Some(60)
                && queries[1].expression() == Some("SUM(METRICS())")
                && r.end_time().map(|t| t.secs()) == Some(1_000_060)
                && r.start_time().map(|t| t.secs()) == Some(1_000_000 - 300)
        })
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("q0")
                        .timestamps(aws_smithy_types::DateTime::from_secs(999_880))
                        .values(100.0)
                        .timestamps(aws_smithy_types::DateTime::from_secs(999_940))
                        .values(412.0)
                        .timestamps(aws_smithy_types::DateTime::from_secs(999_820))
                        .values(7.0)
                        .build(),
                )
                .metric_data_results(MetricDataResult::builder().id("q1").build())
                .build()
        });
    let clients = clients().with_cloudwatch(mock_client!(
        aws_sdk_cloudwatch,
        RuleMode::MatchAny,
        &[&answer]
    ));
    let values = clients
        .latest_values(
            &[
                ("orders".to_owned(), signal(None)),
                ("all".to_owned(), signal(Some("SUM(METRICS())"))),
            ],
            1_000_000,
        )
        .await
        .unwrap();
    assert_eq!(values, [("orders".to_owned(), 412.0)].into());
    assert_eq!(answer.num_calls(), 1);
}
