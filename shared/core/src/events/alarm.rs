//! CloudWatch alarm state changes as `alarm-scaler` receives them, in each of their shapes:
//! the EventBridge "CloudWatch Alarm State Change" event, the direct Lambda alarm action
//! (`alarmData`), and the classic alarm JSON inside an SNS record (metric-math alarms included);
//! plus the scheduled tick. All become one [`AlarmTransition`] (or [`ScalerEvent::Tick`]).
//!
//! `aws_lambda_events`' alarm types reject metric-math alarms and accept unrelated JSON with an
//! empty name, so the alarm payloads are read here, checking `source` and the alarm name, inside
//! the SNS envelope below and the shared [`EventBridgeEvent`](super::EventBridgeEvent).

use crate::arn::Arn;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{from_value_at, json_kind};
use crate::domain::AlarmState;
use crate::error::{AutopilotError, Result};

/// EventBridge detail-type of alarm state changes.
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";
/// EventBridge detail-type of scheduled rules.
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

/// How an alarm transition reached the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    EventBridge,
    AlarmAction,
    Sns,
    /// Read back with DescribeAlarms on a tick.
    DescribeAlarms,
}

/// One alarm state (transition or current state), whatever shape it came in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmTransition {
    pub delivery: Delivery,
    pub alarm_name: String,
    pub alarm_arn: Option<Arn>,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    /// The state's timestamp as the event gives it (part of the transition's identity).
    pub state_timestamp: Option<String>,
    /// `state_timestamp` in epoch seconds (parsed with the event: a malformed one is refused).
    #[serde(skip)]
    pub state_at: Option<i64>,
    pub reason: Option<String>,
    /// The most recent datapoint the alarm evaluated, when the event carries one.
    pub metric_value: Option<f64>,
    pub threshold: Option<f64>,
    /// Metric dimensions (`ClusterName`, `ServiceName` …) of the alarm's metric(s).
    pub dimensions: BTreeMap<String, String>,
    /// The account the delivery says the alarm is in (EventBridge `account`, an alarm action's
    /// `accountId`, the SNS message's `AWSAccountId`), beside its ARN's.
    #[serde(skip)]
    pub account: Option<String>,
}

impl AlarmTransition {
    /// The identity of this transition: alarm (ARN or name) and state timestamp.
    pub fn transition_id(&self) -> String {
        format!(
            "{}#{}#{}",
            self.alarm_arn.as_deref().unwrap_or(&self.alarm_name),
            self.state.as_str(),
            self.state_timestamp.as_deref().unwrap_or("-")
        )
    }

    /// The accounts the delivery names, with where (see [`crate::trust::Accounts::check`]).
    pub fn accounts_named(&self) -> [(&'static str, Option<&str>); 2] {
        let (account_at, arn_at) = match self.delivery {
            Delivery::EventBridge => ("account", "resources[0]"),
            Delivery::AlarmAction => ("accountId", "alarmArn"),
            Delivery::Sns => (
                "Records[0].Sns.Message.AWSAccountId",
                "Records[0].Sns.Message.AlarmArn",
            ),
            Delivery::DescribeAlarms => ("AlarmArn", "AlarmArn"),
        };
        [
            (account_at, self.account.as_deref()),
            (arn_at, self.alarm_arn.as_ref().and_then(Arn::account)),
        ]
    }

    /// The ECS service named by the `ClusterName` and `ServiceName` dimensions.
    pub fn service_dimensions(&self) -> Option<(&str, &str)> {
        Some((
            self.dimensions.get("ClusterName")?.as_str(),
            self.dimensions.get("ServiceName")?.as_str(),
        ))
    }
}

/// What woke `alarm-scaler`.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalerEvent {
    Transition(Box<AlarmTransition>),
    Tick,
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> AutopilotError {
    AutopilotError::invalid_event(field, problem)
}

fn string_at<'a>(object: &'a Value, key: &str, field: &str) -> Result<&'a str> {
    match object.get(key) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
        Some(Value::String(_)) => Err(invalid(field, "must not be empty")),
        Some(other) => Err(invalid(
            field,
            format!("expected a string, got {}", json_kind(other)),
        )),
        None => Err(invalid(field, "missing")),
    }
}

fn state_at(object: &Value, key: &str, field: &str) -> Result<AlarmState> {
    let text = string_at(object, key, field)?;
    AlarmState::parse(text).ok_or_else(|| {
        invalid(
            field,
            format!("`{text}` is not ALARM, OK or INSUFFICIENT_DATA"),
        )
    })
}

/// The epoch seconds of the time at `key`, if the object has one there.
fn time_at(object: &Value, key: &str, field: &str) -> Result<Option<i64>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => super::parse_time(text, field).map(Some),
        Some(other) => Err(invalid(
            field,
            format!("expected a timestamp string, got {}", json_kind(other)),
        )),
    }
}

/// `text` as the ARN in `field`.
fn arn_at(text: &str, field: &str) -> Result<Arn> {
    Arn::parse(text).map_err(|e| invalid(field, e.to_string()))
}

fn optional_string(object: &Value, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Reads an event of any supported shape.
pub fn parse_scaler_event(event: &Value) -> Result<ScalerEvent> {
    let Some(object) = event.as_object() else {
        return Err(invalid(
            "$",
            format!("expected a JSON object, got {}", json_kind(event)),
        ));
    };
    if object.contains_key("Records") {
        return parse_sns(event);
    }
    if object.contains_key("tick") {
        return Ok(ScalerEvent::Tick);
    }
    if let Some(kind) = object.get("detail-type") {
        return match kind.as_str() {
            Some(SCHEDULED_EVENT) => Ok(ScalerEvent::Tick),
            Some(ALARM_STATE_CHANGE) => parse_eventbridge(event),
            Some(other) => Err(invalid(
                "detail-type",
                format!("`{other}` is neither `{ALARM_STATE_CHANGE}` nor `{SCHEDULED_EVENT}`"),
            )),
            None => Err(invalid("detail-type", "expected a string")),
        };
    }
    if object.contains_key("alarmData") {
        return parse_alarm_action(event);
    }
    Err(invalid(
        "$",
        "not an alarm event: expected an EventBridge alarm state change, a Lambda alarm action (`alarmData`), an SNS record or a tick",
    ))
}

fn require_cloudwatch_source(event: &Value) -> Result<()> {
    let source = string_at(event, "source", "source")?;
    if source != "aws.cloudwatch" {
        return Err(invalid(
            "source",
            format!("`{source}` is not aws.cloudwatch"),
        ));
    }
    Ok(())
}

fn parse_eventbridge(event: &Value) -> Result<ScalerEvent> {
    require_cloudwatch_source(event)?;
    let envelope: super::EventBridgeEvent<Value> = from_value_at(event, "")?;
    let arn = match envelope.resources.and_then(|r| r.into_iter().next()) {
        Some(text) => Some(arn_at(&text, "resources[0]")?),
        None => None,
    };
    let mut transition = modern_alarm(&envelope.detail, "detail", Delivery::EventBridge, arn)?;
    transition.account = envelope.account;
    Ok(ScalerEvent::Transition(Box::new(transition)))
}

fn parse_alarm_action(event: &Value) -> Result<ScalerEvent> {
    require_cloudwatch_source(event)?;
    let arn = match optional_string(event, "alarmArn") {
        Some(text) => Some(arn_at(&text, "alarmArn")?),
        None => None,
    };
    let data = &event["alarmData"];
    let mut transition = modern_alarm(data, "alarmData", Delivery::AlarmAction, arn)?;
    transition.account = optional_string(event, "accountId");
    Ok(ScalerEvent::Transition(Box::new(transition)))
}

/// The `alarmName`/`state`/`configuration` shape shared by EventBridge and alarm actions.
fn modern_alarm(
    data: &Value,
    at: &str,
    delivery: Delivery,
    alarm_arn: Option<Arn>,
) -> Result<AlarmTransition> {
    if !data.is_object() {
        return Err(invalid(
            at,
            format!("expected an object, got {}", json_kind(data)),
        ));
    }
    let alarm_name = string_at(data, "alarmName", &format!("{at}.alarmName"))?.to_owned();
    let state = data
        .get("state")
        .ok_or_else(|| invalid(format!("{at}.state"), "missing"))?;
    let value = state_at(state, "value", &format!("{at}.state.value"))?;
    let previous_state = data
        .get("previousState")
        .and_then(|p| p.get("value"))
        .and_then(Value::as_str)
        .and_then(AlarmState::parse);
    let reason = optional_string(state, "reason");
    let reason_data = state
        .get("reasonData")
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    let (mut metric_value, mut threshold) = reason_data
        .as_ref()
        .map(values_from_reason_data)
        .unwrap_or_default();
    if metric_value.is_none() {
        metric_value = reason.as_deref().and_then(latest_datapoint_in_reason);
    }
    if threshold.is_none() {
        threshold = reason.as_deref().and_then(threshold_in_reason);
    }
    let mut dimensions = BTreeMap::new();
    if let Some(metrics) = data
        .pointer("/configuration/metrics")
        .and_then(Value::as_array)
    {
        for metric in metrics {
            if let Some(dims) = metric
                .pointer("/metricStat/metric/dimensions")
                .and_then(Value::as_object)
            {
                for (name, value) in dims {
                    if let Some(value) = value.as_str() {
                        dimensions
                            .entry(name.clone())
                            .or_insert_with(|| value.to_owned());
                    }
                }
            }
        }
    }
    Ok(AlarmTransition {
        delivery,
        alarm_name,
        alarm_arn,
        state: value,
        previous_state,
        state_at: time_at(state, "timestamp", &format!("{at}.state.timestamp"))?,
        state_timestamp: optional_string(state, "timestamp"),
        reason,
        metric_value,
        threshold,
        dimensions,
        account: None,
    })
}

/// The SNS event Lambda receives: its records, each with the notification SNS signed (every
/// field SNS always sends is required, so that other JSON with a `Records` key is refused).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsEvent {
    records: Vec<SnsRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)] // Read to require them, as SNS always sends them.
struct SnsRecord {
    event_source: String,
    event_version: String,
    event_subscription_arn: String,
    sns: SnsMessage,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)] // Read to require them, as SNS always sends them.
struct SnsMessage {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    timestamp: chrono::DateTime<chrono::Utc>,
    signature_version: String,
    signature: String,
    #[serde(alias = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(alias = "UnsubscribeURL")]
    unsubscribe_url: String,
    message: String,
}

fn parse_sns(event: &Value) -> Result<ScalerEvent> {
    let envelope: SnsEvent = from_value_at(event, "")?;
    if envelope.records.len() != 1 {
        return Err(invalid(
            "Records",
            format!(
                "expected exactly one SNS record (as SNS delivers), got {}",
                envelope.records.len()
            ),
        ));
    }
    let message = &envelope.records[0].sns.message;
    let classic: Value = serde_json::from_str(message).map_err(|e| {
        invalid(
            "Records[0].Sns.Message",
            format!("not a CloudWatch alarm (not JSON: {e})"),
        )
    })?;
    let transition = classic_alarm(&classic, "Records[0].Sns.Message")?;
    Ok(ScalerEvent::Transition(Box::new(transition)))
}

/// The classic alarm JSON (`AlarmName`, `NewStateValue`, `Trigger` …) sent to SNS.
pub fn classic_alarm(message: &Value, at: &str) -> Result<AlarmTransition> {
    if !message.is_object() {
        return Err(invalid(
            at,
            format!("expected an object, got {}", json_kind(message)),
        ));
    }
    let alarm_name = string_at(message, "AlarmName", &format!("{at}.AlarmName"))?.to_owned();
    let state = state_at(message, "NewStateValue", &format!("{at}.NewStateValue"))?;
    let reason = optional_string(message, "NewStateReason");
    let trigger = message.get("Trigger");
    let threshold = trigger
        .and_then(|t| t.get("Threshold"))
        .and_then(Value::as_f64)
        .or_else(|| reason.as_deref().and_then(threshold_in_reason));
    let mut dimensions = BTreeMap::new();
    if let Some(trigger) = trigger {
        collect_name_value_dimensions(trigger.get("Dimensions"), &mut dimensions);
        if let Some(metrics) = trigger.get("Metrics").and_then(Value::as_array) {
            for metric in metrics {
                collect_name_value_dimensions(
                    metric.pointer("/MetricStat/Metric/Dimensions"),
                    &mut dimensions,
                );
            }
        }
    }
    Ok(AlarmTransition {
        delivery: Delivery::Sns,
        alarm_name,
        alarm_arn: match optional_string(message, "AlarmArn") {
            Some(text) => Some(arn_at(&text, &format!("{at}.AlarmArn"))?),
            None => None,
        },
        state,
        previous_state: message
            .get("OldStateValue")
            .and_then(Value::as_str)
            .and_then(AlarmState::parse),
        state_at: time_at(
            message,
            "StateChangeTime",
            "Records[0].Sns.Message.StateChangeTime",
        )?,
        state_timestamp: optional_string(message, "StateChangeTime"),
        metric_value: reason.as_deref().and_then(latest_datapoint_in_reason),
        reason,
        threshold,
        dimensions,
        account: optional_string(message, "AWSAccountId"),
    })
}

/// `[{"name": …, "value": …}]` (either case) into the map.
fn collect_name_value_dimensions(list: Option<&Value>, into: &mut BTreeMap<String, String>) {
    for dimension in list.and_then(Value::as_array).into_iter().flatten() {
        let field = |lower: &str, upper: &str| {
            dimension
                .get(lower)
                .or_else(|| dimension.get(upper))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if let (Some(name), Some(value)) = (field("name", "Name"), field("value", "Value")) {
            into.entry(name).or_insert(value);
        }
    }
}

/// The latest datapoint and the threshold from `reasonData` / `StateReasonData`:
/// `recentDatapoints` (oldest first) is preferred; `evaluatedDatapoints` (by timestamp) is the
/// fallback, since it may list points of an earlier evaluation.
pub fn values_from_reason_data(data: &Value) -> (Option<f64>, Option<f64>) {
    let threshold = data.get("threshold").and_then(Value::as_f64);
    let evaluated = data
        .get("evaluatedDatapoints")
        .and_then(Value::as_array)
        .and_then(|points| {
            points
                .iter()
                .filter_map(|p| {
                    Some((
                        p.get("timestamp").and_then(Value::as_str).unwrap_or(""),
                        p.get("value")?.as_f64()?,
                    ))
                })
                .max_by(|a, b| a.0.cmp(b.0))
                .map(|(_, value)| value)
        });
    let recent = data
        .get("recentDatapoints")
        .and_then(Value::as_array)
        .and_then(|points| points.iter().rev().find_map(Value::as_f64));
    (recent.or(evaluated), threshold)
}

/// The most recent datapoint in a reason such as
/// `… datapoints [412.0 (14/09/26 11:59:00), 300.0 (14/09/26 11:58:00)] was greater …`.
pub fn latest_datapoint_in_reason(reason: &str) -> Option<f64> {
    let start = reason.find("datapoints [")? + "datapoints [".len();
    let end = start + reason[start..].find(']')?;
    reason[start..end]
        .split("),")
        .filter_map(|entry| {
            let entry = entry.trim();
            let (value, stamp) = match entry.split_once('(') {
                Some((value, stamp)) => (value.trim(), stamp.trim_end_matches(')').trim()),
                None => (entry, ""),
            };
            let value: f64 = value.parse().ok()?;
            value
                .is_finite()
                .then_some((sortable_reason_time(stamp), value))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, value)| value)
}

/// `dd/mm/yy HH:MM:SS` as a sortable string (`yymmddHHMMSS`); unparseable times sort first.
fn sortable_reason_time(stamp: &str) -> String {
    let Some((date, time)) = stamp.split_once(' ') else {
        return String::new();
    };
    let parts: Vec<&str> = date.split('/').collect();
    if parts.len() != 3 {
        return String::new();
    }
    format!(
        "{}{}{}{}",
        parts[2],
        parts[1],
        parts[0],
        time.replace(':', "")
    )
}

/// The threshold in a reason such as `… greater than the threshold (100.0) …`.
pub fn threshold_in_reason(reason: &str) -> Option<f64> {
    let start = reason.find("threshold (")? + "threshold (".len();
    let end = start + reason[start..].find(')')?;
    reason[start..end].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/fixtures/alarms/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn transition(event: &Value) -> AlarmTransition {
        match parse_scaler_event(event).unwrap() {
            ScalerEvent::Transition(t) => *t,
            ScalerEvent::Tick => panic!("expected a transition"),
        }
    }

    #[test]
    fn all_three_shapes_give_the_same_transition() {
        let eventbridge = transition(&fixture("eventbridge-alarm.json"));
        let action = transition(&fixture("direct-lambda-action.json"));
        let sns = transition(&fixture("sns-classic.json"));
        for t in [&eventbridge, &action, &sns] {
            assert_eq!(t.alarm_name, "orders-queue-backlog-high");
            assert_eq!(t.state, AlarmState::Alarm);
            assert_eq!(t.previous_state, Some(AlarmState::Ok));
            assert_eq!(t.metric_value, Some(412.0));
            assert_eq!(t.threshold, Some(100.0));
            assert_eq!(
                t.alarm_arn.as_deref(),
                Some("arn:aws:cloudwatch:us-east-1:111122223333:alarm:orders-queue-backlog-high")
            );
            assert_eq!(
                t.state_timestamp.as_deref(),
                Some("2026-09-14T12:00:37.415+0000")
            );
            assert_eq!(
                t.dimensions.get("QueueName").map(String::as_str),
                Some("orders")
            );
        }
        assert_eq!(eventbridge.transition_id(), sns.transition_id());
        assert_eq!(action.transition_id(), sns.transition_id());
        assert_eq!(eventbridge.delivery, Delivery::EventBridge);
        assert_eq!(action.delivery, Delivery::AlarmAction);
        assert_eq!(sns.delivery, Delivery::Sns);
    }

    #[test]
    fn ecs_dimensions_name_the_service() {
        let t = transition(&fixture("eventbridge-ecs-cpu-alarm.json"));
        assert_eq!(t.service_dimensions(), Some(("shop", "orders-api")));
    }

    #[test]
    fn ok_transition_reads_its_own_value() {
        let t = transition(&fixture("eventbridge-ok.json"));
        assert_eq!(t.state, AlarmState::Ok);
        assert_eq!(t.metric_value, Some(12.0));
    }

    #[test]
    fn metric_math_alarm_in_sns_is_accepted() {
        let message = json!({
            "AlarmName": "backlog-per-task",
            "NewStateValue": "ALARM",
            "NewStateReason": "Threshold Crossed: 2 out of the last 2 datapoints [250.0 (14/09/26 12:01:00), 180.0 (14/09/26 12:00:00)] was greater than the threshold (100.0) (minimum 2 datapoints for OK -> ALARM transition).",
            "StateChangeTime": "2026-09-14T12:02:10.100+0000",
            "OldStateValue": "OK",
            "Trigger": {
                "Period": 60, "EvaluationPeriods": 2, "ComparisonOperator": "GreaterThanThreshold",
                "Threshold": 100.0,
                "Metrics": [
                    {"Expression": "m1 / m2", "Id": "e1", "Label": "backlog per task", "ReturnData": true},
                    {"Id": "m1", "MetricStat": {"Metric": {"Dimensions": [{"value": "orders", "name": "QueueName"}], "MetricName": "ApproximateNumberOfMessagesVisible", "Namespace": "AWS/SQS"}, "Period": 60, "Stat": "Sum"}, "ReturnData": false},
                    {"Id": "m2", "MetricStat": {"Metric": {"Dimensions": [{"value": "shop", "name": "ClusterName"}, {"value": "orders-worker", "name": "ServiceName"}], "MetricName": "RunningTaskCount", "Namespace": "ECS/ContainerInsights"}, "Period": 60, "Stat": "Average"}, "ReturnData": false}
                ]
            }
        });
        let mut event = fixture("sns-classic.json");
        event["Records"][0]["Sns"]["Message"] = json!(message.to_string());
        let t = transition(&event);
        assert_eq!(t.alarm_name, "backlog-per-task");
        assert_eq!(t.metric_value, Some(250.0), "latest datapoint wins");
        assert_eq!(t.threshold, Some(100.0));
        assert_eq!(t.service_dimensions(), Some(("shop", "orders-worker")));
        assert_eq!(t.alarm_arn, None);
    }

    #[test]
    fn unrelated_json_is_rejected_with_the_field() {
        let error = |event: Value| match parse_scaler_event(&event) {
            Err(AutopilotError::InvalidEvent { field, .. }) => field,
            other => panic!("expected InvalidEvent, got {other:?}"),
        };
        assert_eq!(error(json!({"hello": "world"})), "$");
        assert_eq!(error(json!([1, 2])), "$");
        let mut wrong_source = fixture("eventbridge-alarm.json");
        wrong_source["source"] = json!("my.app");
        assert_eq!(error(wrong_source), "source");
        let mut empty_name = fixture("direct-lambda-action.json");
        empty_name["alarmData"]["alarmName"] = json!("");
        assert_eq!(error(empty_name), "alarmData.alarmName");
        let mut not_alarm = fixture("sns-classic.json");
        not_alarm["Records"][0]["Sns"]["Message"] = json!("{\"hello\": 1}");
        assert_eq!(error(not_alarm), "Records[0].Sns.Message.AlarmName");
        let mut bad_state = fixture("eventbridge-alarm.json");
        bad_state["detail"]["state"]["value"] = json!("RED");
        assert_eq!(error(bad_state), "detail.state.value");
    }

    #[test]
    fn ticks_are_recognised() {
        let scheduled = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events", "account": "1", "time": "2026-09-15T02:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
        assert_eq!(parse_scaler_event(&scheduled).unwrap(), ScalerEvent::Tick);
        assert_eq!(
            parse_scaler_event(&json!({"tick": true})).unwrap(),
            ScalerEvent::Tick
        );
    }

    #[test]
    fn reason_parsing_is_forgiving() {
        assert_eq!(latest_datapoint_in_reason("no datapoints here"), None);
        assert_eq!(
            latest_datapoint_in_reason(
                "Threshold Crossed: Maximum 412.0 GreaterThanThreshold 100.0"
            ),
            None
        );
        assert_eq!(
            latest_datapoint_in_reason(
                "1 out of the last 1 datapoints [7.5 (01/01/26 00:00:00)] was"
            ),
            Some(7.5)
        );
        assert_eq!(
            threshold_in_reason("less than the threshold (0.5)."),
            Some(0.5)
        );
    }
}
