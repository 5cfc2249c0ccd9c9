//! CloudWatch adapter: the [`AlarmReader`] giving the current state of the configured alarms
//! (DescribeAlarms), read on `alarm-scaler`'s tick to repeat steps while an alarm stays in ALARM;
//! and the [`MetricReader`] of target policies (GetMetricData, up to 500 queries a call, each
//! query's latest datapoint).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, ScanBy,
};

use super::{aws_error, AwsClients};
use crate::arn::Arn;
use crate::domain::AlarmState;
use crate::error::Result;
use crate::events::alarm::{
    latest_datapoint_in_reason, threshold_in_reason, values_from_reason_data, AlarmTransition,
    Delivery,
};
use crate::ports::{AlarmReader, MetricReader};
use crate::scaling::target::MetricSignal;

/// DescribeAlarms accepts at most this many names per call.
const NAMES_PER_CALL: usize = 100;
/// GetMetricData accepts at most this many queries per call.
const QUERIES_PER_CALL: usize = 500;

#[async_trait]
impl MetricReader for AwsClients {
    async fn latest_values(
        &self,
        queries: &[(String, MetricSignal)],
        now_s: i64,
    ) -> Result<BTreeMap<String, f64>> {
        // Per key: the latest datapoint's (time, value), whatever order the pages give.
        let mut latest: BTreeMap<String, ((i64, u32), f64)> = BTreeMap::new();
        for chunk in queries.chunks(QUERIES_PER_CALL) {
            // Query ids must start with a lower-case letter: `q<index>`, mapped back to keys.
            let ids: Vec<String> = (0..chunk.len()).map(|i| format!("q{i}")).collect();
            let look_back = chunk
                .iter()
                .map(|(_, m)| m.look_back_s())
                .max()
                .unwrap_or(300);
            let mut request = self
                .cloudwatch()
                .get_metric_data()
                .start_time(aws_smithy_types::DateTime::from_secs(now_s - look_back))
                // One minute ahead: a datapoint of this very second is still counted.
                .end_time(aws_smithy_types::DateTime::from_secs(now_s + 60))
                .scan_by(ScanBy::TimestampDescending);
            for (id, (_, signal)) in ids.iter().zip(chunk) {
                request = request.metric_data_queries(metric_query(id, signal));
            }
            let mut next_token: Option<String> = None;
            loop {
                let output = request
                    .clone()
                    .set_next_token(next_token.take())
                    .send()
                    .await
                    .map_err(|e| aws_error("cloudwatch", "GetMetricData", e))?;
                for result in output.metric_data_results() {
                    let Some(index) = result
                        .id()
                        .and_then(|id| id.strip_prefix('q'))
                        .and_then(|i| i.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    let Some((key, _)) = chunk.get(index) else {
                        continue;
                    };
                    let points = result.timestamps().iter().zip(result.values());
                    for (at, value) in points {
                        let at = (at.secs(), at.subsec_nanos());
                        let slot = latest.entry(key.clone()).or_insert((at, *value));
                        if at > slot.0 {
                            *slot = (at, *value);
                        }
                    }
                }
                match output.next_token() {
                    Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(latest
            .into_iter()
            .map(|(key, (_, value))| (key, value))
            .collect())
    }
}

/// One GetMetricData query for `signal`: its expression, or its metric and statistic.
fn metric_query(id: &str, signal: &MetricSignal) -> MetricDataQuery {
    let query = MetricDataQuery::builder().id(id).return_data(true);
    let query = match &signal.expression {
        Some(expression) => query.expression(expression).period(signal.period_s as i32),
        None => {
            let metric = Metric::builder()
                .set_namespace(signal.namespace.clone())
                .set_metric_name(signal.metric_name.clone())
                .set_dimensions(Some(
                    signal
                        .dimensions
                        .iter()
                        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                        .collect(),
                ))
                .build();
            query.metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(signal.period_s as i32)
                    .stat(&signal.statistic)
                    .build(),
            )
        }
    };
    // A member's metric is read in the member's account (through its role), not by AccountId.
    query.build()
}

#[async_trait]
impl AlarmReader for AwsClients {
    async fn current_alarms(&self, names: &[String]) -> Result<Vec<AlarmTransition>> {
        current_alarms(self.cloudwatch(), names).await
    }
}

/// The current state of each named metric alarm that exists (unknown names are left out).
async fn current_alarms(
    client: &aws_sdk_cloudwatch::Client,
    names: &[String],
) -> Result<Vec<AlarmTransition>> {
    let mut alarms = Vec::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut next_token: Option<String> = None;
        loop {
            let output = client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| aws_error("cloudwatch", "DescribeAlarms", e))?;
            alarms.extend(output.metric_alarms().iter().filter_map(alarm_state));
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
    }
    Ok(alarms)
}

fn collect(dimensions: &[Dimension], into: &mut BTreeMap<String, String>) {
    for dimension in dimensions {
        if let (Some(name), Some(value)) = (dimension.name(), dimension.value()) {
            into.entry(name.to_owned())
                .or_insert_with(|| value.to_owned());
        }
    }
}

/// A time as CloudWatch writes it in its alarm messages and events (`2026-09-14T12:00:37.415+0000`),
/// so that a transition read back has the identity its deliveries give it.
fn message_time(time: &aws_smithy_types::DateTime) -> Option<String> {
    let at = chrono::DateTime::from_timestamp(time.secs(), time.subsec_nanos())?;
    Some(at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string())
}

fn alarm_state(alarm: &MetricAlarm) -> Option<AlarmTransition> {
    let name = alarm.alarm_name().filter(|n| !n.is_empty())?;
    let state = AlarmState::parse(alarm.state_value()?.as_str())?;
    let reason = alarm.state_reason().map(str::to_owned);
    let (mut metric_value, mut threshold) = alarm
        .state_reason_data()
        .and_then(|data| serde_json::from_str(data).ok())
        .map(|data| values_from_reason_data(&data))
        .unwrap_or_default();
    if metric_value.is_none() {
        metric_value = reason.as_deref().and_then(latest_datapoint_in_reason);
    }
    threshold = threshold
        .or(alarm.threshold())
        .or_else(|| reason.as_deref().and_then(threshold_in_reason));
    let mut dimensions = BTreeMap::new();
    collect(alarm.dimensions(), &mut dimensions);
    for query in alarm.metrics() {
        if let Some(metric) = query.metric_stat().and_then(|s| s.metric()) {
            collect(metric.dimensions(), &mut dimensions);
        }
    }
    Some(AlarmTransition {
        delivery: Delivery::DescribeAlarms,
        alarm_name: name.to_owned(),
        alarm_arn: alarm.alarm_arn().and_then(|arn| Arn::parse(arn).ok()),
        state,
        previous_state: None,
        state_timestamp: alarm.state_updated_timestamp().and_then(message_time),
        state_at: alarm.state_updated_timestamp().map(|t| t.secs()),
        reason,
        metric_value,
        threshold,
        dimensions,
        account: None,
    })
}
