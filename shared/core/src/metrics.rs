//! What an invocation counts, as one CloudWatch Embedded Metric Format document (pure): the
//! function's answer (or its error) becomes a [`Measurement`], and [`emf_document`] the JSON
//! line CloudWatch Logs turns into metrics — no PutMetricData call, no extra latency.
//!
//! Each function counts only its own metrics (every custom metric series costs), under the
//! dimension sets `[Function]`, `[Function, Outcome]` and, for `task-triage`,
//! `[Function, Category]`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::batch::outcome::RunnerResponse;
use crate::batch::report::RunAction;
use crate::scaling::outcome::{ScalerResponse, ScalingOutcome};
use crate::triage::outcome::{Decision, TriageOutcome};

/// The namespace when none is configured.
pub const DEFAULT_NAMESPACE: &str = "ECSAutopilot";

/// A metric the functions emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Events (or ticks) handled.
    Events,
    /// Notifications sent.
    Notifications,
    /// Normal stops, not told.
    Silent,
    /// Redeliveries of what was handled.
    Duplicates,
    /// Stops counted into a storm without a notification of their own.
    Folded,
    /// Notifications a muting rule (a maintenance window) held back.
    Muted,
    /// Desired-count changes made.
    ScalingActions,
    /// Job runs that started tasks.
    JobRuns,
    /// Invocations that returned an error (Lambda retries them).
    Failures,
    /// Events ignored because they named an account the stack does not act for.
    ForeignEvents,
    /// New configuration versions refused (the last good one kept).
    ConfigRefused,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Self::Events => "Events",
            Self::Notifications => "Notifications",
            Self::Silent => "Silent",
            Self::Duplicates => "Duplicates",
            Self::Folded => "Folded",
            Self::Muted => "Muted",
            Self::ScalingActions => "ScalingActions",
            Self::JobRuns => "JobRuns",
            Self::Failures => "Failures",
            Self::ForeignEvents => "ForeignEvents",
            Self::ConfigRefused => "ConfigRefused",
        }
    }
}

/// The metrics each function emits (zeros included, so that sums over time are right).
pub fn metrics_of(function: &str) -> &'static [Metric] {
    use Metric::*;
    match function {
        "task-triage" => &[
            Events,
            Notifications,
            Silent,
            Duplicates,
            Folded,
            Muted,
            Failures,
            ForeignEvents,
            ConfigRefused,
        ],
        "alarm-scaler" => &[
            Events,
            Notifications,
            Duplicates,
            Muted,
            ScalingActions,
            Failures,
            ForeignEvents,
            ConfigRefused,
        ],
        "batch-runner" => &[
            Events,
            Notifications,
            Duplicates,
            Muted,
            JobRuns,
            Failures,
            ForeignEvents,
            ConfigRefused,
        ],
        _ => &[Events, Notifications, Failures, ConfigRefused],
    }
}

/// A function's answer, as what it counts.
pub trait Measured {
    fn measurement(&self) -> Measurement;
}

impl Measured for ScalerResponse {
    fn measurement(&self) -> Measurement {
        Measurement::of_scaler(self)
    }
}

impl Measured for RunnerResponse {
    fn measurement(&self) -> Measurement {
        Measurement::of_runner(self)
    }
}

/// Environment variable naming the metrics' namespace (the template's `MetricsNamespace`).
pub const ENV_NAMESPACE: &str = "AUTOPILOT_METRICS_NAMESPACE";

/// The namespace from the environment (empty or unset: [`DEFAULT_NAMESPACE`]), or what is wrong
/// with it.
pub fn namespace_from(value: Option<&str>) -> Result<String, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_NAMESPACE.to_owned()),
        Some(namespace) if valid_namespace(namespace) => Ok(namespace.to_owned()),
        Some(namespace) => Err(format!(
            "`{namespace}` is not a CloudWatch namespace (1-255 printable ASCII characters, not starting with AWS/ or :)"
        )),
    }
}

/// What one invocation counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measurement {
    /// What became of it: the decision, the action or the error type.
    pub outcome: String,
    /// The diagnosis category (task-triage).
    pub category: Option<String>,
    pub counts: BTreeMap<Metric, u64>,
    /// The configuration's versions the invocation ran under (`name@14, …`), from SSM.
    pub config_version: Option<String>,
}

impl Measurement {
    fn new(outcome: &str, category: Option<String>) -> Self {
        let mut measurement = Self {
            outcome: outcome.to_owned(),
            category,
            counts: BTreeMap::new(),
            config_version: None,
        };
        measurement.add(Metric::Events, 1);
        measurement
    }

    fn add(&mut self, metric: Metric, n: u64) {
        *self.counts.entry(metric).or_default() += n;
    }

    /// Stamps the configuration's versions and counts the versions refused before this
    /// invocation (at its refresh).
    pub fn under_config(mut self, version: Option<&str>, refused: u64) -> Self {
        self.config_version = version.map(str::to_owned);
        self.add(Metric::ConfigRefused, refused);
        self
    }

    /// An invocation that failed with `error_type`.
    pub fn failed(error_type: &str) -> Self {
        let mut measurement = Self::new(error_type, None);
        measurement.add(Metric::Failures, 1);
        measurement
    }

    /// One triage outcome (an event, or one finding of a tick).
    pub fn of_triage(outcome: &TriageOutcome) -> Self {
        let category = outcome
            .diagnosis
            .as_ref()
            .map(|d| d.category.as_str().to_owned());
        let mut measurement = Self::new(outcome.decision.as_str(), category);
        measurement.count_triage(outcome);
        measurement
    }

    fn count_triage(&mut self, outcome: &TriageOutcome) {
        let metric = match outcome.decision {
            Decision::Notify => Metric::Notifications,
            Decision::Silent => Metric::Silent,
            Decision::Duplicate => Metric::Duplicates,
            Decision::Folded => Metric::Folded,
            Decision::Muted => Metric::Muted,
            Decision::Ignored if outcome.foreign.is_some() => Metric::ForeignEvents,
            Decision::Ignored => return,
        };
        self.add(metric, 1);
    }

    /// A watchdog tick: one event, its findings' decisions counted.
    pub fn of_triage_tick(findings: &[TriageOutcome]) -> Self {
        let mut measurement = Self::new("tick", None);
        for finding in findings {
            measurement.count_triage(finding);
        }
        measurement
    }

    pub fn of_scaler(response: &ScalerResponse) -> Self {
        match response {
            ScalerResponse::One(outcome) => {
                let mut measurement = Self::new(outcome.action.as_str(), None);
                measurement.count_scaling(outcome);
                measurement
            }
            ScalerResponse::Tick {
                results, services, ..
            } => {
                let mut measurement = Self::new("tick", None);
                results.iter().for_each(|o| measurement.count_scaling(o));
                for service in services {
                    if service.action.changes() && !service.dry_run {
                        measurement.add(Metric::ScalingActions, 1);
                    }
                    if !service.message_ids.is_empty() {
                        let sent = service.message_ids.len() as u64;
                        measurement.add(Metric::Notifications, sent);
                    }
                }
                measurement
            }
        }
    }

    fn count_scaling(&mut self, outcome: &ScalingOutcome) {
        if outcome.action.changes() && !outcome.dry_run {
            self.add(Metric::ScalingActions, 1);
        }
        if outcome.message_id.is_some() {
            self.add(Metric::Notifications, 1);
        }
        if outcome.route.as_ref().is_some_and(|r| r.muted) {
            self.add(Metric::Muted, 1);
        }
        if outcome.duplicate {
            self.add(Metric::Duplicates, 1);
        }
        if outcome.foreign.is_some() {
            self.add(Metric::ForeignEvents, 1);
        }
    }

    pub fn of_runner(response: &RunnerResponse) -> Self {
        match response {
            RunnerResponse::Run(outcome) => {
                let mut measurement = Self::new(outcome.action.as_str(), None);
                if matches!(outcome.action, RunAction::Started | RunAction::Replaced)
                    && !outcome.tasks.is_empty()
                {
                    measurement.add(Metric::JobRuns, 1);
                }
                if outcome.message_id.is_some() {
                    measurement.add(Metric::Notifications, 1);
                }
                if outcome.route.as_ref().is_some_and(|r| r.muted) {
                    measurement.add(Metric::Muted, 1);
                }
                if outcome.duplicate {
                    measurement.add(Metric::Duplicates, 1);
                }
                measurement
            }
            RunnerResponse::Ignored { action, .. } => {
                let mut measurement = Self::new(action, None);
                measurement.add(Metric::ForeignEvents, 1);
                measurement
            }
            RunnerResponse::Task(followed) => {
                let mut measurement = Self::new("task", None);
                let started = followed
                    .started
                    .iter()
                    .filter(|run| !run.tasks.is_empty())
                    .count();
                measurement.add(Metric::JobRuns, started as u64);
                let told = followed
                    .upstream_failed
                    .iter()
                    .filter(|a| a.message_id.is_some())
                    .count();
                measurement.add(Metric::Notifications, told as u64);
                measurement
            }
            RunnerResponse::Tick {
                retried, alerted, ..
            } => {
                let mut measurement = Self::new("tick", None);
                let started = retried.iter().filter(|run| !run.tasks.is_empty()).count();
                measurement.add(Metric::JobRuns, started as u64);
                let told = alerted.iter().filter(|a| a.message_id.is_some()).count();
                measurement.add(Metric::Notifications, told as u64);
                measurement
            }
        }
    }
}

/// Namespaces CloudWatch accepts for custom metrics: 1–255 printable ASCII characters, not
/// starting with `AWS/` (reserved) or `:`.
pub fn valid_namespace(namespace: &str) -> bool {
    (1..=255).contains(&namespace.len())
        && namespace.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !namespace.starts_with("AWS/")
        && !namespace.starts_with(':')
}

/// The EMF document of one invocation of `function`, at `timestamp_ms`; `handler_ms` (how long
/// the handler took) rides along as a property, not a metric (Lambda's own `Duration` is the
/// metric), for CloudWatch Logs Insights (`stats pct(HandlerMs, 99) by Category`).
pub fn emf_document(
    namespace: &str,
    function: &str,
    measurement: &Measurement,
    timestamp_ms: i64,
    handler_ms: Option<f64>,
) -> Value {
    let metrics = metrics_of(function);
    let mut dimensions = vec![json!(["Function"]), json!(["Function", "Outcome"])];
    let mut root = Map::new();
    root.insert("Function".into(), function.into());
    // A property, not a dimension: which release wrote the document, without new metric series.
    root.insert("Version".into(), crate::VERSION.into());
    root.insert("Outcome".into(), measurement.outcome.as_str().into());
    if let Some(version) = &measurement.config_version {
        root.insert("ConfigVersion".into(), version.as_str().into());
    }
    if function == "task-triage" {
        if let Some(category) = &measurement.category {
            dimensions.push(json!(["Function", "Category"]));
            root.insert("Category".into(), category.as_str().into());
        }
    }
    for metric in metrics {
        let value = measurement.counts.get(metric).copied().unwrap_or(0);
        root.insert(metric.name().into(), value.into());
    }
    if let Some(ms) = handler_ms {
        root.insert("HandlerMs".into(), json!((ms * 1000.0).round() / 1000.0));
    }
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name(), "Unit": "Count"}))
        .collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_counts_one_event_and_one_failure_under_its_error_type() {
        let failed = Measurement::failed("AwsCallFailed");
        let document = emf_document(
            DEFAULT_NAMESPACE,
            "alarm-scaler",
            &failed,
            1_700_000_000_000,
            Some(1.25),
        );
        assert_eq!(document["HandlerMs"], 1.25);
        assert_eq!(document["Outcome"], "AwsCallFailed");
        assert_eq!(
            (document["Events"].as_u64(), document["Failures"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(document["ScalingActions"], 0);
        assert_eq!(document["Version"], env!("CARGO_PKG_VERSION"));
        let dimensions = document["_aws"]["CloudWatchMetrics"][0]["Dimensions"].to_string();
        assert!(
            !dimensions.contains("Version"),
            "not a dimension: {dimensions}"
        );
        assert!(document.get("Category").is_none());
        assert!(document.get("Silent").is_none(), "not a scaler metric");
    }

    #[test]
    fn namespaces_follow_cloudwatchs_rules() {
        assert!(valid_namespace("ECSAutopilot"));
        assert!(valid_namespace("Platform/ECS Autopilot"));
        assert!(!valid_namespace(""));
        assert!(!valid_namespace("AWS/ECS"));
        assert!(!valid_namespace("é"));
        assert!(!valid_namespace(&"n".repeat(256)));
    }
}
