//! Local-cloud harness for `alarm-scaler`: beside a deployed [`TriageStack`] (its topic, inbox,
//! state table and cluster), a service at zero tasks, the `alarm-scaler` Lambda, an SNS topic
//! for alarm actions subscribed to it, and a CloudWatch alarm on a custom metric whose actions
//! go to that topic (the local cloud fires SNS alarm actions, not EventBridge alarm events).
//! For target policies: a second service at zero, a real SQS queue its backlog is read from and
//! a custom metric put with PutMetricData.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{delivered_ids, logs_of, LocalCloud, Received, Result, TriageStack, CLUSTER};

/// The service the scaler drives; it starts at zero tasks.
pub const WORKER: &str = "orders-worker";
/// The alarm the demo trips with PutMetricData.
pub const DEMO_ALARM: &str = "orders-backlog-demo";
/// The alarm the fixtures name.
pub const FIXTURE_ALARM: &str = "orders-queue-backlog-high";
pub const METRIC_NAMESPACE: &str = "Autopilot/Demo";
pub const METRIC_NAME: &str = "OrdersBacklog";
/// The alarm's period: short, so that the demo's OK transition comes quickly.
pub const ALARM_PERIOD_S: i32 = 10;

/// The scaling section deployed: one policy per alarm, both on the worker service.
pub fn scaling_config(cooldown_s: u64) -> Value {
    let policy = json!({
        "cluster": CLUSTER, "service": WORKER, "min": 0, "max": 6,
        "alarm_steps": [
            {"lower": 0, "upper": 100, "adjustment": 2},
            {"lower": 100, "upper": 500, "adjustment": 3},
            {"lower": 500, "adjustment": 5}
        ],
        "ok_steps": [{"upper": 0, "adjustment": -1}],
        "scale_out_cooldown_s": cooldown_s,
        "scale_in_cooldown_s": cooldown_s
    });
    json!({"alarms": { DEMO_ALARM: policy, FIXTURE_ALARM: policy }})
}

/// The service target policies size; it starts at zero tasks.
pub const QUEUE_WORKER: &str = "orders-queue-worker";
/// The queue whose backlog sizes [`QUEUE_WORKER`].
pub const QUEUE_NAME: &str = "orders-backlog";
/// The metric a second target policy on [`QUEUE_WORKER`] reads.
pub const JOBS_METRIC: &str = "JobsWaiting";

/// The queue's URL as a configuration names it (the local cloud finds it by account and name).
pub fn queue_url(account: &str) -> String {
    format!("https://sqs.us-east-1.amazonaws.com/{account}/{QUEUE_NAME}")
}

/// Two target policies on [`QUEUE_WORKER`]: its queue's backlog at 50 messages a task, and
/// [`JOBS_METRIC`] at 10 a task; scale-in stabilised over `window_s`, zero after `window_s` of
/// an empty queue.
pub fn targets_config(account: &str, window_s: u64) -> Value {
    json!({
        "orders-backlog": {
            "cluster": CLUSTER, "service": QUEUE_WORKER, "min": 0, "max": 10,
            "sqs": {"queues": [queue_url(account)]},
            "target_per_task": 50,
            "scale_in_stabilization_s": window_s, "scale_to_zero_after_s": window_s
        },
        "jobs-waiting": {
            "cluster": CLUSTER, "service": QUEUE_WORKER, "min": 0, "max": 10,
            "metric": {"namespace": METRIC_NAMESPACE, "metric_name": JOBS_METRIC,
                       "statistic": "Maximum", "period_s": 1},
            "target_per_task": 10,
            "scale_in_stabilization_s": window_s, "scale_to_zero_after_s": window_s
        }
    })
}

/// The demo metric's one dimension.
fn queue_dimension() -> aws_sdk_cloudwatch::types::Dimension {
    aws_sdk_cloudwatch::types::Dimension::builder()
        .name("QueueName")
        .value("orders")
        .build()
}

/// The deployed scaler and what it acts on.
pub struct ScalerStack {
    pub alarms_topic_arn: String,
    /// The deployed alarm-scaler function's name.
    pub function: String,
    pub ecs: aws_sdk_ecs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub account: String,
    /// The real queue of [`QUEUE_NAME`] (the local cloud's URL).
    pub queue_url: String,
}

impl ScalerStack {
    /// A local cloud with the triage stack (kept for its inbox) and alarm-scaler deployed with
    /// the configuration `config` gives for the local cloud's account.
    pub async fn on_local_cloud(
        config: impl FnOnce(&str) -> Value,
    ) -> Result<(LocalCloud, TriageStack, Self)> {
        let cloud = LocalCloud::start().await?;
        let triage_zip = crate::bootstrap_zip(&crate::binary("task-triage")?)?;
        let mut triage = TriageStack::deploy(&cloud, triage_zip, &json!({})).await?;
        let zip = crate::bootstrap_zip(&crate::binary("alarm-scaler")?)?;
        let config = config(&triage.account);
        let scaler = Self::deploy(&cloud, &mut triage, zip, &config).await?;
        Ok((cloud, triage, scaler))
    }

    /// What the scaler says it published, read from the inbox: once its log has `outcomes`
    /// outcome lines of `action` (`scale-out` …), the message ids of its `delivered` lines to
    /// the default topic that the inbox has not given yet (see [`TriageStack::receive`]).
    pub async fn published(
        &self,
        cloud: &LocalCloud,
        triage: &TriageStack,
        action: &str,
        outcomes: usize,
        timeout: Duration,
    ) -> Result<Vec<Received>> {
        let started = Instant::now();
        loop {
            let lines = logs_of(cloud, &self.function).await?;
            let done = lines
                .iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter(|r| r["fields"]["message"] == "outcome" && r["fields"]["action"] == action)
                .count();
            if done >= outcomes {
                return triage
                    .receive(&delivered_ids(&lines, "default"), timeout)
                    .await;
            }
            if started.elapsed() >= timeout {
                return Err(format!(
                    "{done} of {outcomes} `{action}` outcomes of the scaler within {timeout:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Creates the worker service (0 tasks), the Lambda with the stack's own alarm topic, and the
    /// alarm.
    pub async fn deploy(
        cloud: &crate::LocalCloud,
        triage: &mut TriageStack,
        bootstrap_zip: Vec<u8>,
        config_document: &Value,
    ) -> Result<Self> {
        let c = &cloud.config;
        let ecs = aws_sdk_ecs::Client::new(c);
        let lambda = aws_sdk_lambda::Client::new(c);
        let cloudwatch = aws_sdk_cloudwatch::Client::new(c);
        for service in [WORKER, QUEUE_WORKER] {
            sdk!(
                "CreateService",
                ecs.create_service()
                    .cluster(CLUSTER)
                    .service_name(service)
                    .task_definition(&triage.task_definition)
                    .desired_count(0)
                    .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
                    .send()
            )?;
        }
        let sqs = aws_sdk_sqs::Client::new(c);
        let queue_url = sdk!(
            "CreateQueue",
            sqs.create_queue().queue_name(QUEUE_NAME).send()
        )?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
        let account = &triage.account;
        let worker_arn = [WORKER, QUEUE_WORKER]
            .map(|s| format!("arn:aws:ecs:us-east-1:{account}:service/{CLUSTER}/{s}"))
            .join(",");
        let queue_arn = format!("arn:aws:sqs:us-east-1:{account}:{QUEUE_NAME}");
        // The stack owns the alarm topic (CreateAlarmTopic) and subscribes the function to it
        // (AlarmTopicSubscription); the alarm's actions name the stack's AlarmTopicArn output.
        let function = triage
            .enable(
                cloud,
                "AlarmScalerFunction",
                bootstrap_zip,
                &[
                    ("ScaledServiceArns", worker_arn),
                    ("ScaledQueueArns", queue_arn),
                    ("CreateAlarmTopic", "true".to_owned()),
                    ("ConfigDocument", config_document.to_string()),
                ],
            )
            .await?;
        let alarms_topic_arn = triage.stack.output("AlarmTopicArn")?.to_owned();
        sdk!(
            "PutMetricAlarm",
            cloudwatch
                .put_metric_alarm()
                .alarm_name(DEMO_ALARM)
                .alarm_description("Backlog of the orders queue (demo)")
                .namespace(METRIC_NAMESPACE)
                .metric_name(METRIC_NAME)
                .dimensions(queue_dimension())
                .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
                .period(ALARM_PERIOD_S)
                .evaluation_periods(1)
                .threshold(100.0)
                .comparison_operator(
                    aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold
                )
                .alarm_actions(&alarms_topic_arn)
                .ok_actions(&alarms_topic_arn)
                .send()
        )?;
        // The fixtures' alarm, as DescribeAlarms is to confirm what an alarm action says of it:
        // in ALARM at the fixtures' datapoint (412 over 100), without actions of its own.
        sdk!(
            "PutMetricAlarm",
            cloudwatch
                .put_metric_alarm()
                .alarm_name(FIXTURE_ALARM)
                .namespace("AWS/SQS")
                .metric_name("ApproximateNumberOfMessagesVisible")
                .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
                .period(60)
                .evaluation_periods(1)
                .threshold(100.0)
                .comparison_operator(
                    aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold
                )
                .send()
        )?;
        sdk!(
            "SetAlarmState",
            cloudwatch
                .set_alarm_state()
                .alarm_name(FIXTURE_ALARM)
                .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
                .state_reason("Threshold Crossed: 1 datapoint [412.0] was greater than the threshold (100.0).")
                .state_reason_data(r#"{"version": "1.0", "recentDatapoints": [412.0], "threshold": 100.0}"#)
                .send()
        )?;
        Ok(Self {
            alarms_topic_arn,
            function,
            ecs,
            cloudwatch,
            lambda,
            sqs,
            account: triage.account.clone(),
            queue_url,
        })
    }

    /// Sends `count` messages to the queue (ten a call).
    pub async fn send_messages(&self, count: usize) -> Result<()> {
        for start in (0..count).step_by(10) {
            let entries: Vec<_> = (start..count.min(start + 10))
                .map(|i| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(format!("{{\"order\": {i}}}"))
                        .build()
                        .map_err(|e| format!("message {i}: {e}"))
                })
                .collect::<Result<_>>()?;
            sdk!(
                "SendMessageBatch",
                self.sqs
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
            )?;
        }
        Ok(())
    }

    /// Empties the queue (the workers drained it).
    pub async fn purge_queue(&self) -> Result<()> {
        sdk!(
            "PurgeQueue",
            self.sqs.purge_queue().queue_url(&self.queue_url).send()
        )?;
        Ok(())
    }

    /// Puts one datapoint of [`JOBS_METRIC`] (high resolution: its own second).
    pub async fn put_jobs_waiting(&self, value: f64) -> Result<()> {
        let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
            .metric_name(JOBS_METRIC)
            .value(value)
            .storage_resolution(1);
        self.put_datum(datum.build()).await
    }

    /// Runs one tick (as the schedule does) and gives the part of its answer about `service`.
    pub async fn tick_for(&self, service: &str) -> Result<Value> {
        let answer = self.invoke(&json!({"tick": true})).await?;
        let wanted = format!("{CLUSTER}/{service}");
        answer["services"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["service"] == wanted.as_str()))
            .cloned()
            .ok_or_else(|| format!("the tick said nothing of {wanted}: {answer}"))
    }

    /// Publishes one datapoint of the demo metric (the local cloud evaluates alarms at once).
    pub async fn put_backlog(&self, value: f64) -> Result<()> {
        let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
            .metric_name(METRIC_NAME)
            .dimensions(queue_dimension())
            .value(value);
        self.put_datum(datum.build()).await
    }

    /// PutMetricData of one datum in the demo's namespace.
    async fn put_datum(&self, datum: aws_sdk_cloudwatch::types::MetricDatum) -> Result<()> {
        sdk!(
            "PutMetricData",
            self.cloudwatch
                .put_metric_data()
                .namespace(METRIC_NAMESPACE)
                .metric_data(datum)
                .send()
        )?;
        Ok(())
    }

    /// The alarm's current state.
    pub async fn alarm_state(&self) -> Result<String> {
        let output = sdk!(
            "DescribeAlarms",
            self.cloudwatch
                .describe_alarms()
                .alarm_names(DEMO_ALARM)
                .send()
        )?;
        Ok(output
            .metric_alarms()
            .first()
            .and_then(|a| a.state_value())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default())
    }

    /// The worker service's desired count.
    pub async fn desired(&self) -> Result<i32> {
        self.desired_of(WORKER).await
    }

    /// A service's desired count, as ECS says it.
    pub async fn desired_of(&self, service: &str) -> Result<i32> {
        let output = sdk!(
            "DescribeServices",
            self.ecs
                .describe_services()
                .cluster(CLUSTER)
                .services(service)
                .send()
        )?;
        Ok(output
            .services()
            .first()
            .map(|s| s.desired_count())
            .unwrap_or(-1))
    }

    /// Waits until the desired count is `expected` (or `timeout`); returns the last value seen.
    pub async fn wait_for_desired(&self, expected: i32, timeout: Duration) -> Result<i32> {
        let started = Instant::now();
        loop {
            let desired = self.desired().await?;
            if desired == expected || started.elapsed() >= timeout {
                return Ok(desired);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Invokes the function synchronously; an error names the function error.
    pub async fn invoke(&self, payload: &Value) -> Result<Value> {
        crate::invoke_sync(&self.lambda, &self.function, payload).await
    }

    /// Invokes the function asynchronously, as EventBridge and SNS invoke it in AWS: with
    /// Lambda's retries and the on-failure destination (the local cloud's own EventBridge and
    /// SNS deliveries run a function once).
    pub async fn invoke_async(&self, payload: &Value) -> Result<()> {
        sdk!(
            "Invoke",
            self.lambda
                .invoke()
                .function_name(&self.function)
                .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                .payload(aws_smithy_types::Blob::new(payload.to_string()))
                .send()
        )?;
        Ok(())
    }

    /// An alarm fixture, with the account rewritten to the local cloud's and, when given, a
    /// new state timestamp (a distinct transition).
    pub fn alarm_fixture(&self, name: &str, timestamp: Option<&str>) -> Result<Value> {
        let path = crate::fixtures_dir().join(format!("alarms/{name}.json"));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut event: Value = serde_json::from_str(&text.replace("111122223333", &self.account))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(timestamp) = timestamp {
            for pointer in ["/detail/state/timestamp", "/alarmData/state/timestamp"] {
                if let Some(slot) = event.pointer_mut(pointer) {
                    *slot = json!(timestamp);
                }
            }
        }
        Ok(event)
    }
}
