//! What only the AWS adapters know, against mocked SDK clients (`aws-smithy-mocks`): the
//! requests they build (conditions, the fields UpdateService and RunTask carry), how they read
//! answers back (old claims, refused storm counts, failures[], alarm reasons) and how SDK errors
//! become [`autopilot::AutopilotError::Aws`] with the service's code. Handler behaviour is tested on
//! the in-memory ports (`*_handler.rs`).

use aws_sdk_applicationautoscaling::operation::describe_scalable_targets::DescribeScalableTargetsOutput;
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ScalableTarget, ServiceNamespace};
use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};
use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsOutput;
use aws_sdk_cloudwatchlogs::types::OutputLogEvent;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
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
    AlarmReader, ClaimWriter, Counting, LogReader, MuteWriter, ScalableTargets, ScalingWriter,
    ServiceReader, ServiceScaler, StormReader, StormWriter, TaskLister, TaskRunner,
};
use autopilot::scaling::{ScalingMemory, TargetBounds};
use autopilot::state::{counted_key, Claim, MutedNotice, Stop, StormWindow};

type Item = std::collections::HashMap<String, AttributeValue>;

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

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn condition_failed() -> UpdateItemError {
    UpdateItemError::ConditionalCheckFailedException(
        ConditionalCheckFailedException::builder().build(),
    )
}

fn window(count: u64, started_at: i64) -> StormWindow {
    StormWindow {
        count,
        started_at,
        last_at: started_at,
        titles: vec!["a".into()],
        last_reason: Some("r".into()),
        previous_count: None,
    }
}

#[tokio::test]
async fn a_claim_is_conditional_and_reads_what_it_replaced() {
    let take = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.condition_expression() == Some("attribute_not_exists(pk) OR #status = :retryable OR (#status = :in_progress AND lease_until < :now)")
                && r.return_values() == Some(&ReturnValue::AllOld)
                && r.expression_attribute_values().and_then(|v| v.get(":expires")) == Some(&n(100 + 3600))
        })
        .then_output(|| {
            UpdateItemOutput::builder()
                .attributes("status", AttributeValue::S("RETRYABLE".into()))
                .attributes("delivered", AttributeValue::Ss(vec!["webhook:slack".into(), "default".into()]))
                .build()
        });
    let table = dynamodb(&[&take]);
    assert_eq!(
        table.claim("dedup#k", 100, 200, 3600).await.unwrap(),
        Claim::Resumed {
            delivered: vec!["default".into(), "webhook:slack".into()]
        }
    );
    assert_eq!(take.num_calls(), 1);
}

#[tokio::test]
async fn a_refused_claim_reads_the_record_to_say_why() {
    let refuse = mock!(aws_sdk_dynamodb::Client::update_item).then_error(condition_failed);
    let record = mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| r.consistent_read() == Some(true))
        .then_output(|| {
            GetItemOutput::builder()
                .item("status", AttributeValue::S("COMPLETE".into()))
                .item("decision", AttributeValue::S("notify".into()))
                .item("message_id", AttributeValue::S("m-9".into()))
                .build()
        });
    let claim = dynamodb(&[&refuse, &record])
        .claim("dedup#k", 100, 200, 3600)
        .await
        .unwrap();
    assert_eq!(
        claim,
        Claim::Duplicate {
            decision: Some("notify".into()),
            message_id: Some("m-9".into())
        }
    );
}

#[tokio::test]
async fn completing_a_claim_requires_its_record() {
    let complete = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.condition_expression() == Some("attribute_exists(pk)")
                && r.update_expression()
                    == Some(
                        "SET #status = :complete, decision = :decision, message_id = :message_id",
                    )
        })
        .then_error(condition_failed);
    let error = dynamodb(&[&complete])
        .complete("dedup#gone", "notify", Some("m-1"))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AwsCallFailed");
    assert!(
        error
            .to_string()
            .starts_with("dynamodb.UpdateItem failed: ")
            && error
                .to_string()
                .contains("ConditionalCheckFailedException"),
        "{error}"
    );
    assert_eq!(complete.num_calls(), 1);
}

fn stop<'a>(claim_key: &'a str, now: i64) -> Stop<'a> {
    Stop {
        claim_key,
        storm_key: "storm#s",
        now,
        window_s: 600,
        title: "a",
        reason: "r",
    }
}

fn window_item(stops: i64, started_at: i64, counted: &[(&str, i64)]) -> Item {
    let numbers = counted
        .iter()
        .map(|(claim, number)| (counted_key(claim), n(*number)))
        .collect();
    Item::from([
        ("pk".to_owned(), AttributeValue::S("storm#s".into())),
        ("stops".to_owned(), n(stops)),
        ("started_at".to_owned(), n(started_at)),
        ("last_at".to_owned(), n(started_at)),
        ("titles".to_owned(), AttributeValue::Ss(vec!["a".into()])),
        ("counted".to_owned(), AttributeValue::M(numbers)),
    ])
}

#[tokio::test]
async fn counting_into_an_open_window_is_one_atomic_increment_that_records_the_number() {
    let count = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            let names = r.expression_attribute_names().cloned().unwrap_or_default();
            let values = r.expression_attribute_values().cloned().unwrap_or_default();
            r.update_expression().is_some_and(|e| {
                e.starts_with("SET stops = stops + :one, #counted.#claim = stops + :one,")
                    && e.ends_with("ADD titles :title")
            }) && r.condition_expression()
                == Some(
                    "started_at > :open_since AND attribute_exists(#counted) \
                     AND attribute_not_exists(#counted.#claim)",
                )
                && names.get("#claim") == Some(&counted_key("dedup#k"))
                && values.get(":open_since") == Some(&n(1_000 - 600))
                && r.return_values() == Some(&ReturnValue::AllNew)
        })
        .then_output(|| {
            UpdateItemOutput::builder()
                .set_attributes(Some(window_item(3, 500, &[("dedup#k", 3)])))
                .build()
        });
    let counting = dynamodb(&[&count])
        .count_into_open(&stop("dedup#k", 1_000))
        .await
        .unwrap();
    let Counting::Counted(window) = counting else {
        panic!("{counting:?}");
    };
    assert_eq!(
        (window.count, window.started_at, count.num_calls()),
        (3, 500, 1)
    );
}

#[tokio::test]
async fn a_refused_count_reads_the_window_to_say_counted_before_or_not_open() {
    let refuse = mock!(aws_sdk_dynamodb::Client::update_item).then_error(condition_failed);
    let read = mock!(aws_sdk_dynamodb::Client::get_item)
        .sequence()
        .output(|| {
            GetItemOutput::builder()
                .set_item(Some(window_item(9, 500, &[("dedup#k", 7)])))
                .build()
        })
        .output(|| {
            GetItemOutput::builder()
                .set_item(Some(window_item(40, 10, &[])))
                .build()
        })
        .output(|| GetItemOutput::builder().build())
        .build();
    let table = dynamodb(&[&refuse, &read]);
    let retried = table
        .count_into_open(&stop("dedup#k", 1_000))
        .await
        .unwrap();
    assert!(
        matches!(&retried, Counting::Counted(w) if w.count == 7),
        "a retry gets its number back: {retried:?}"
    );
    let closed = table
        .count_into_open(&stop("dedup#k", 1_000))
        .await
        .unwrap();
    assert!(
        matches!(&closed, Counting::NotOpen(Some(w)) if w.started_at == 10 && w.count == 40),
        "{closed:?}"
    );
    let none = table
        .count_into_open(&stop("dedup#k", 1_000))
        .await
        .unwrap();
    assert_eq!(none, Counting::NotOpen(None));
}

#[tokio::test]
async fn a_window_an_earlier_version_wrote_gets_its_map_and_then_counts() {
    let count = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression()
                .is_some_and(|e| e.starts_with("SET stops"))
        })
        .sequence()
        .error(condition_failed)
        .output(|| {
            UpdateItemOutput::builder()
                .set_attributes(Some(window_item(6, 900, &[("dedup#k", 6)])))
                .build()
        })
        .build();
    let give_map = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression() == Some("SET #counted = :empty")
                && r.condition_expression()
                    == Some("attribute_exists(pk) AND attribute_not_exists(#counted)")
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let legacy = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
        let mut item = window_item(5, 900, &[]);
        item.remove("counted");
        GetItemOutput::builder().set_item(Some(item)).build()
    });
    let counting = dynamodb(&[&give_map, &count, &legacy])
        .count_into_open(&stop("dedup#k", 1_000))
        .await
        .unwrap();
    assert!(
        matches!(&counting, Counting::Counted(w) if w.count == 6),
        "{counting:?}"
    );
    assert_eq!((count.num_calls(), give_map.num_calls()), (2, 1));
}

#[tokio::test]
async fn a_new_window_is_put_only_where_none_is_or_the_closed_one_still_is() {
    let fresh = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|p| p.condition_expression() == Some("attribute_not_exists(pk)"))
        .then_output(|| PutItemOutput::builder().build());
    let replacing = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(|p| {
            let item = p.item().cloned().unwrap_or_default();
            let numbers = item.get("counted").and_then(|m| m.as_m().ok()).cloned();
            p.condition_expression() == Some("started_at = :started")
                && p.expression_attribute_values()
                    .and_then(|v| v.get(":started"))
                    == Some(&n(10))
                && item.get("stops") == Some(&n(1))
                && numbers == Some([(counted_key("c"), n(1))].into())
        })
        .then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
    let table = dynamodb(&[&fresh, &replacing]);
    let opened = table
        .open_window(&stop("c", 5_000), None, &window(1, 5_000))
        .await
        .unwrap();
    let raced = table
        .open_window(&stop("c", 5_000), Some(&window(40, 10)), &window(1, 5_000))
        .await
        .unwrap();
    assert_eq!(
        (opened, raced),
        (true, false),
        "another stop replaced it first"
    );
    assert_eq!((fresh.num_calls(), replacing.num_calls()), (1, 1));
}

#[tokio::test]
async fn forgetting_a_number_removes_only_an_entry_that_is_there() {
    let forget = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.update_expression() == Some("REMOVE #counted.#claim")
                && r.condition_expression() == Some("attribute_exists(#counted.#claim)")
        })
        .then_error(condition_failed);
    dynamodb(&[&forget])
        .forget_count("dedup#k", "storm#s")
        .await
        .expect("an entry already gone is not an error");
    assert_eq!(forget.num_calls(), 1);
}

#[tokio::test]
async fn a_scaling_write_is_revisioned_and_a_lost_race_is_false() {
    let first = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.condition_expression() == Some("attribute_not_exists(pk) OR revision = :expected")
                && r.update_expression() == Some("SET revision = :next, last_change = :change, last_scale_out_at = :out REMOVE last_scale_in_at")
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let later = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| r.condition_expression() == Some("revision = :expected"))
        .then_error(condition_failed);
    let table = dynamodb(&[&first, &later]);
    let memory = ScalingMemory {
        last_scale_out_at: Some(10),
        last_scale_in_at: None,
    };
    assert!(table
        .record_scaling("scaler#service#a", 0, &memory, "x")
        .await
        .unwrap());
    assert!(!table
        .record_scaling("scaler#service#a", 3, &memory, "x")
        .await
        .unwrap());
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

#[tokio::test]
async fn reading_a_window_reads_the_stored_attributes() {
    let item = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .item("stops", n(12))
            .item("started_at", n(100))
            .item("last_at", n(160))
            .item("titles", AttributeValue::Ss(vec!["b".into(), "a".into()]))
            .item("last_reason", AttributeValue::S(String::new()))
            .build()
    });
    let window = dynamodb(&[&item])
        .read_window("storm#s")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        window,
        StormWindow {
            count: 12,
            started_at: 100,
            last_at: 160,
            titles: vec!["a".into(), "b".into()],
            last_reason: None,
            previous_count: None
        }
    );
}

#[tokio::test]
async fn closing_windows_deletes_each_one() {
    let delete = mock!(aws_sdk_dynamodb::Client::delete_item)
        .match_requests(|r| {
            r.key()
                .and_then(|k| k.get("pk"))
                .is_some_and(|pk| matches!(pk, AttributeValue::S(key) if key.starts_with("storm#shop#service:orders-api#")))
        })
        .then_output(|| aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput::builder().build());
    let keys = [
        "storm#shop#service:orders-api#oom".to_owned(),
        "storm#shop#service:orders-api#app-exit".to_owned(),
    ];
    dynamodb(&[&delete]).close_windows(&keys).await.unwrap();
    assert_eq!(delete.num_calls(), 2);
}

#[tokio::test]
async fn a_muted_notice_is_counted_once_per_claim() {
    let count = mock!(aws_sdk_dynamodb::Client::update_item)
        .match_requests(|r| {
            r.key().and_then(|k| k.get("pk")) == Some(&AttributeValue::S("muted#0#7200".into()))
                && r.update_expression()
                    == Some("ADD #count :one, about :about, claims :claims SET muted_until = :until, expires_at = :expires")
                && r.condition_expression() == Some("NOT contains(claims, :claim)")
                && r.expression_attribute_names().and_then(|n| n.get("#count")).map(String::as_str)
                    == Some("c:oom")
                && r.expression_attribute_values().and_then(|v| v.get(":expires")) == Some(&n(7200 + 600))
        })
        .then_output(|| UpdateItemOutput::builder().build());
    // The same claim again: the condition refuses it, which is "counted before", not an error.
    let again = mock!(aws_sdk_dynamodb::Client::update_item).then_error(condition_failed);
    let muted = MutedNotice {
        ledger_key: "muted#0#7200",
        category: "oom",
        about: Some("shop/orders-api"),
        until: 7200,
        ttl_s: 600,
        claim_key: Some("dedup#k"),
    };
    let table = dynamodb(&[&count]);
    table.count_muted(&muted).await.unwrap();
    let table = dynamodb(&[&again]);
    table.count_muted(&muted).await.unwrap();
    assert_eq!((count.num_calls(), again.num_calls()), (1, 1));
}
