//! Target policies (`scaling.targets.<name>`): a service sized by the work waiting, read on the
//! tick — an SQS backlog or any CloudWatch metric, divided by what one task should hold — and the
//! pure decision that turns the readings of a service's signals into its desired count.
//!
//! The decision, for one service at one tick:
//! - each signal recommends `ceil(value / target_per_task)` (a `per-task` metric:
//!   `ceil(running × value / target_per_task)`, as target tracking), with activation (a service
//!   at zero leaves it only when the value is above `activation`) and the way down to zero (only
//!   after the value has been 0 for `scale_to_zero_after_s`; until then at least one task, so a
//!   backlog below activation is still drained);
//! - the service goes to the largest recommendation of its signals (none is overruled
//!   downward);
//! - scale-in is stabilised as Kubernetes HPA does: never below the highest recommendation of the
//!   last `scale_in_stabilization_s` (the history starts from the current desired count, so a
//!   fresh state table does not scale in at once);
//! - `max_step_out` / `max_step_in` limit one tick's change (tasks, or percent of the current
//!   count rounded away from zero, at least one task, also from zero);
//! - the bounds come last: a desired count outside `[min, max]` is corrected at once, past the
//!   stabilisation and the step limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{AutopilotError, Result};
use crate::scaling::policy::MAX_DESIRED;

/// Written as tasks or a percent in the configuration (see its `Deserialize`).
impl schemars::JsonSchema for StepLimit {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StepLimit".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?%$"}]})
    }
}

#[cfg(test)]
mod tests;

/// Target policies keyed by name.
pub type TargetPolicies = BTreeMap<String, TargetPolicy>;

fn default_300() -> u64 {
    300
}

fn default_fallback_after() -> u32 {
    3
}

fn default_period_s() -> u32 {
    60
}

fn default_statistic() -> String {
    "Average".to_owned()
}

/// Longest stabilisation window accepted, in seconds (HPA's own maximum).
pub const MAX_STABILIZATION_S: u64 = 3600;
/// Longest wait before going to zero, in seconds.
pub const MAX_SCALE_TO_ZERO_AFTER_S: u64 = 24 * 3600;

/// A service sized by one signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetPolicy {
    /// The service's cluster: its name, or its ARN for a member account's cluster.
    pub cluster: String,
    pub service: String,
    pub min: u32,
    pub max: u32,
    /// The backlog of SQS queues (exactly one of `sqs` and `metric`).
    #[serde(default)]
    pub sqs: Option<SqsSignal>,
    /// A CloudWatch metric or metric-math expression.
    #[serde(default)]
    pub metric: Option<MetricSignal>,
    /// How much of the value one task should hold (messages per task, …).
    pub target_per_task: f64,
    /// A service at zero leaves it only when the value is above this.
    #[serde(default)]
    pub activation: f64,
    /// How long the value must have been 0 before the service goes to zero (0: at once).
    #[serde(default = "default_300")]
    pub scale_to_zero_after_s: u64,
    /// Scale-in never goes below the highest recommendation of this many seconds.
    #[serde(default = "default_300")]
    pub scale_in_stabilization_s: u64,
    /// The most one tick adds.
    #[serde(default)]
    pub max_step_out: Option<StepLimit>,
    /// The most one tick removes.
    #[serde(default)]
    pub max_step_in: Option<StepLimit>,
    /// Failed reads in a row before `fallback` applies.
    #[serde(default = "default_fallback_after")]
    pub fallback_after: u32,
    #[serde(default)]
    pub fallback: Fallback,
    /// Decide and report, but never change the service.
    #[serde(default)]
    pub dry_run: bool,
}

/// The backlog of one or more queues, summed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqsSignal {
    /// Queue URLs (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
    pub queues: Vec<String>,
    /// Count messages being processed (`ApproximateNumberOfMessagesNotVisible`) too.
    #[serde(default)]
    pub count_in_flight: bool,
}

/// What a metric's value means.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ValueIs {
    /// The work of the whole service (as KEDA): desired = ceil(value / target_per_task).
    #[default]
    Total,
    /// An average per running task (as target tracking): desired = ceil(running × value /
    /// target_per_task).
    PerTask,
}

/// One CloudWatch GetMetricData query: a metric and statistic, or a metric-math expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSignal {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub metric_name: Option<String>,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    #[serde(default = "default_statistic")]
    pub statistic: String,
    /// A metric-math or Metrics Insights expression (instead of namespace and metric_name).
    #[serde(default)]
    pub expression: Option<String>,
    #[serde(default = "default_period_s")]
    pub period_s: u32,
    #[serde(default)]
    pub value_is: ValueIs,
    /// The account whose metric it is, when not the stack's own (a member's): read there,
    /// through that member's role.
    #[serde(default)]
    pub account: Option<String>,
}

impl MetricSignal {
    /// How far back a read looks for the latest datapoint: five periods, at least 300 s (a
    /// metric published late or every few minutes still has one).
    pub fn look_back_s(&self) -> i64 {
        i64::from(self.period_s.saturating_mul(5)).max(300)
    }
}

/// A limit on one tick's change: tasks (`3`) or a percent of the current count (`"50%"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepLimit {
    Tasks(u32),
    Percent(f64),
}

impl StepLimit {
    /// The most tasks one tick may move from `current`: a percent rounds away from zero and is
    /// at least one task (also from zero).
    pub fn tasks_from(self, current: u32) -> u32 {
        match self {
            Self::Tasks(n) => n,
            Self::Percent(p) => ((f64::from(current) * p / 100.0).ceil() as u32).max(1),
        }
    }
}

impl Serialize for StepLimit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Tasks(n) => s.serialize_u32(*n),
            Self::Percent(p) => s.serialize_str(&format!("{p}%")),
        }
    }
}

impl<'de> Deserialize<'de> for StepLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Tasks(u32),
            Text(String),
        }
        match Written::deserialize(d)? {
            Written::Tasks(n) => Ok(Self::Tasks(n)),
            Written::Text(text) => text
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<f64>().ok())
                .filter(|p| p.is_finite())
                .map(Self::Percent)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "`{text}` is neither a number of tasks nor a percent such as \"50%\""
                    ))
                }),
        }
    }
}

/// What a target does after `fallback_after` failed reads in a row.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Fallback {
    /// Keep the desired count as it is.
    #[default]
    Hold,
    /// Go to this many tasks.
    Count(u32),
}

/// Where an SQS queue URL points: its region, account and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlace<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

/// Reads `https://sqs.<region>.amazonaws.com/<account>/<name>` (also the `.amazonaws.com.cn`
/// partition's form).
pub fn queue_place(url: &str) -> Option<QueuePlace<'_>> {
    let rest = url.strip_prefix("https://sqs.")?;
    let (host, path) = rest.split_once('/')?;
    let region = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (account, name) = path.split_once('/')?;
    let name_ok = !name.is_empty()
        && name.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    (crate::arn::is_aws_region(region) && crate::arn::is_account_id(account) && name_ok).then_some(
        QueuePlace {
            region,
            account,
            name,
        },
    )
}

/// Validates every target, and that the targets of one service have bounds in common; errors
/// name `scaling.targets.<name>.<field>`.
pub fn validate(targets: &TargetPolicies) -> Result<()> {
    for (name, target) in targets {
        target.validate(&format!("scaling.targets.{name}"))?;
    }
    by_service(targets).map(|_| ())
}

impl TargetPolicy {
    /// The signal's kind, as results name it.
    pub fn kind(&self) -> &'static str {
        if self.sqs.is_some() {
            "sqs"
        } else {
            "metric"
        }
    }

    /// Checks what the types do not; errors name `<at>.<field>`.
    pub fn validate(&self, at: &str) -> Result<()> {
        let bad = |field: &str, problem: String| {
            Err(AutopilotError::invalid_config(
                format!("{at}.{field}"),
                problem,
            ))
        };
        crate::scaling::policy::check_service_and_bounds(
            at,
            &self.cluster,
            &self.service,
            self.min,
            self.max,
        )?;
        match (&self.sqs, &self.metric) {
            (Some(_), Some(_)) => {
                return bad("metric", "give one signal: sqs or metric, not both".into())
            }
            (None, None) => return bad("sqs", "give one signal: sqs or metric".into()),
            _ => {}
        }
        if !(self.target_per_task.is_finite() && self.target_per_task > 0.0) {
            return bad(
                "target_per_task",
                format!("{} is not a positive number", self.target_per_task),
            );
        }
        if !(self.activation.is_finite() && self.activation >= 0.0) {
            return bad(
                "activation",
                format!("{} is not a number ≥ 0", self.activation),
            );
        }
        if self.scale_to_zero_after_s > MAX_SCALE_TO_ZERO_AFTER_S {
            return bad(
                "scale_to_zero_after_s",
                format!(
                    "{} is more than {MAX_SCALE_TO_ZERO_AFTER_S}",
                    self.scale_to_zero_after_s
                ),
            );
        }
        if self.scale_in_stabilization_s > MAX_STABILIZATION_S {
            return bad(
                "scale_in_stabilization_s",
                format!(
                    "{} is more than {MAX_STABILIZATION_S}",
                    self.scale_in_stabilization_s
                ),
            );
        }
        for (field, limit) in [
            ("max_step_out", self.max_step_out),
            ("max_step_in", self.max_step_in),
        ] {
            match limit {
                Some(StepLimit::Tasks(0)) => return bad(field, "must move at least 1 task".into()),
                Some(StepLimit::Percent(p)) if !(p > 0.0 && p <= 1000.0) => {
                    return bad(field, format!("{p}% is not in (0, 1000]"))
                }
                _ => {}
            }
        }
        if self.fallback_after == 0 {
            return bad("fallback_after", "must be at least 1".into());
        }
        if let Fallback::Count(n) = self.fallback {
            if n < self.min || n > self.max {
                return bad(
                    "fallback",
                    format!(
                        "{n} tasks is outside [min, max] = [{}, {}]",
                        self.min, self.max
                    ),
                );
            }
        }
        if let Some(sqs) = &self.sqs {
            if sqs.queues.is_empty() {
                return bad("sqs.queues", "name at least one queue URL".into());
            }
            for (i, url) in sqs.queues.iter().enumerate() {
                if queue_place(url).is_none() {
                    return bad(
                        &format!("sqs.queues[{i}]"),
                        format!(
                            "`{}` is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)",
                            crate::domain::clip(url, 256)
                        ),
                    );
                }
            }
        }
        if let Some(metric) = &self.metric {
            let named = metric.namespace.is_some() || metric.metric_name.is_some();
            match (&metric.expression, named) {
                (Some(_), true) => {
                    return bad(
                        "metric.expression",
                        "give an expression or namespace and metric_name, not both".into(),
                    )
                }
                (None, _) if metric.namespace.is_none() || metric.metric_name.is_none() => {
                    return bad(
                        "metric.metric_name",
                        "give namespace and metric_name, or an expression".into(),
                    )
                }
                _ => {}
            }
            if !(matches!(metric.period_s, 1 | 5 | 10 | 30) || metric.period_s % 60 == 0)
                || metric.period_s == 0
            {
                return bad(
                    "metric.period_s",
                    format!(
                        "{} is not 1, 5, 10, 30 or a multiple of 60",
                        metric.period_s
                    ),
                );
            }
            if let Some(account) = &metric.account {
                if !crate::arn::is_account_id(account) {
                    return bad(
                        "metric.account",
                        format!("`{account}` is not a 12-digit account id"),
                    );
                }
            }
        }
        Ok(())
    }

    /// What this signal recommends for its service: `value` read now, `running` and `current`
    /// (desired) tasks, and since when the value has been 0 (`zero_since`, epoch seconds).
    pub fn recommend(
        &self,
        value: f64,
        running: u32,
        current: u32,
        zero_since: Option<i64>,
        now: i64,
    ) -> (u32, String) {
        let value = value.max(0.0);
        let raw = match self.metric.as_ref().map(|m| m.value_is) {
            Some(ValueIs::PerTask) => f64::from(running) * value / self.target_per_task,
            _ => value / self.target_per_task,
        };
        let raw = raw.ceil().min(f64::from(MAX_DESIRED)) as u32;
        if current == 0 && value <= self.activation {
            return (
                0,
                format!(
                    "at zero: {value} is not above activation {}",
                    self.activation
                ),
            );
        }
        if value > 0.0 {
            return (
                raw,
                format!("{value} / {} per task → {raw}", self.target_per_task),
            );
        }
        let waited = zero_since.map_or(0, |since| now.saturating_sub(since).max(0) as u64);
        if waited >= self.scale_to_zero_after_s {
            (
                0,
                format!("0 for {waited} s (≥ {} s) → 0", self.scale_to_zero_after_s),
            )
        } else {
            (
                1,
                format!(
                    "0 for {waited} s: at least 1 task until {} s",
                    self.scale_to_zero_after_s
                ),
            )
        }
    }
}

/// One signal's part in a service's decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalPart {
    /// The policy's name (a target's, or an alarm's).
    pub name: String,
    /// `sqs`, `metric` or `alarm`.
    pub kind: String,
    /// What was read (`None`: the read failed, or an alarm).
    pub value: Option<f64>,
    /// What it recommends (`None`: nothing this tick, such as a failed read held).
    pub recommendation: Option<u32>,
    pub why: String,
}

/// The limits one service is held to: the intersection of its policies' bounds, the strictest
/// stabilisation and step limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceLimits {
    pub min: u32,
    pub max: u32,
    pub stabilization_s: u64,
    pub max_step_out: Option<StepLimit>,
    pub max_step_in: Option<StepLimit>,
}

/// The recommendations of one service's recent ticks: a queue of (time, recommendation) whose
/// recommendations strictly decrease, so that its front is the highest of the window and it
/// never holds more than the window's distinct falling values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecommendationHistory(pub Vec<(i64, u32)>);

/// At most this many entries are kept (a falling run longer than this loses its oldest).
pub const HISTORY_LIMIT: usize = 64;

impl RecommendationHistory {
    /// The history with `recommendation` made at `now`, keeping what the window still needs.
    /// An empty history starts from `current` (as HPA), so a fresh state does not scale in at
    /// once.
    pub fn with(&self, now: i64, recommendation: u32, current: u32, window_s: u64) -> Self {
        let mut entries = self.0.clone();
        if entries.is_empty() && window_s > 0 {
            entries.push((now, current));
        }
        let oldest = now.saturating_sub(window_s as i64);
        entries.retain(|(at, _)| *at > oldest || *at == now);
        while entries.last().is_some_and(|(_, r)| *r <= recommendation) {
            entries.pop();
        }
        entries.push((now, recommendation));
        if entries.len() > HISTORY_LIMIT {
            entries.drain(..entries.len() - HISTORY_LIMIT);
        }
        Self(entries)
    }

    /// The highest recommendation kept.
    pub fn highest(&self) -> Option<u32> {
        self.0.first().map(|(_, r)| *r)
    }
}

/// What a service's target policies remember between ticks (kept with its scaling memory, one
/// item per service, so that alarm and target decisions on it are serialised by one revision).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetMemory {
    /// The service's recent recommendations (scale-in stabilisation).
    pub history: RecommendationHistory,
    /// Per target: since when its value has been 0 (epoch seconds).
    pub zero_since: BTreeMap<String, i64>,
    /// Per target: failed reads in a row.
    pub failures: BTreeMap<String, u32>,
}

/// How old the targets' latest recommendation may be and still hold an alarm's scale-in (three
/// ticks): a service whose target policies were removed is not held by what they last said.
pub const FRESH_RECOMMENDATION_S: i64 = 180;

impl TargetMemory {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// What the service's target policies recommended at their latest tick, if that was in the
    /// last [`FRESH_RECOMMENDATION_S`].
    pub fn latest_recommendation(&self, now: i64) -> Option<u32> {
        self.history
            .0
            .last()
            .filter(|(at, _)| now.saturating_sub(*at) <= FRESH_RECOMMENDATION_S)
            .map(|(_, r)| *r)
    }
}

/// What bounded a service's change, when something did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoundedBy {
    Min,
    Max,
    Stabilization,
    MaxStepOut,
    MaxStepIn,
    /// Scale-in held while a deployment is in progress.
    Deployment,
    /// The `min` or `max` of this open schedule.
    Schedule(String),
}

impl BoundedBy {
    /// How a notice names it: its JSON name (`max-step-out`), a schedule by its own name.
    pub fn describe(&self) -> String {
        match self {
            Self::Min => "min".into(),
            Self::Max => "max".into(),
            Self::Stabilization => "stabilization".into(),
            Self::MaxStepOut => "max-step-out".into(),
            Self::MaxStepIn => "max-step-in".into(),
            Self::Deployment => "deployment".into(),
            Self::Schedule(name) => format!("schedule {name}"),
        }
    }
}

/// A service's decision for one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetDecision {
    pub desired_from: u32,
    pub desired_to: u32,
    /// The signal whose recommendation decided (the largest).
    pub decided_by: Option<String>,
    pub bounded_by: Option<BoundedBy>,
    /// The history to keep for the next tick.
    #[serde(skip)]
    pub history: RecommendationHistory,
    pub reason: String,
}

/// Decides one service's desired count from its signals' parts (see the module's rules).
pub fn decide(
    limits: ServiceLimits,
    parts: &[SignalPart],
    current: u32,
    history: &RecommendationHistory,
    now: i64,
) -> TargetDecision {
    let largest = parts
        .iter()
        .filter_map(|p| p.recommendation.map(|r| (r, p.name.as_str())))
        .max_by_key(|(r, _)| *r);
    let Some((recommended, by)) = largest else {
        let to = current.clamp(limits.min, limits.max);
        return TargetDecision {
            desired_from: current,
            desired_to: to,
            decided_by: None,
            bounded_by: bound_name(current, to, &limits),
            history: history.clone(),
            reason: "no signal recommends anything this tick: held".into(),
        };
    };
    let history = history.with(now, recommended, current, limits.stabilization_s);
    let mut to = recommended;
    let mut bounded_by = None;
    if to < current {
        let floor = history.highest().unwrap_or(to).min(current);
        if floor > to {
            to = floor;
            bounded_by = Some(BoundedBy::Stabilization);
        }
        if let Some(limit) = limits.max_step_in {
            let lowest = current.saturating_sub(limit.tasks_from(current));
            if to < lowest {
                to = lowest;
                bounded_by = Some(BoundedBy::MaxStepIn);
            }
        }
    } else if to > current {
        if let Some(limit) = limits.max_step_out {
            let highest = current.saturating_add(limit.tasks_from(current));
            if to > highest {
                to = highest;
                bounded_by = Some(BoundedBy::MaxStepOut);
            }
        }
    }
    let clamped = to.clamp(limits.min, limits.max);
    if clamped != to {
        bounded_by = bound_name(to, clamped, &limits);
        to = clamped;
    }
    let held = match &bounded_by {
        None => String::new(),
        Some(BoundedBy::Stabilization) => format!(
            "; held at {to}: the highest recommendation of the last {} s",
            limits.stabilization_s
        ),
        Some(BoundedBy::MaxStepOut) => format!("; {to} at most this tick (max_step_out)"),
        Some(BoundedBy::MaxStepIn) => format!("; {to} at least this tick (max_step_in)"),
        Some(BoundedBy::Min) => format!("; min is {}", limits.min),
        Some(BoundedBy::Max) => format!("; max is {}", limits.max),
        Some(BoundedBy::Deployment) | Some(BoundedBy::Schedule(_)) => String::new(),
    };
    TargetDecision {
        desired_from: current,
        desired_to: to,
        decided_by: Some(by.to_owned()),
        bounded_by,
        history,
        reason: format!("{by} recommends {recommended}{held}"),
    }
}

fn bound_name(from: u32, to: u32, limits: &ServiceLimits) -> Option<BoundedBy> {
    match to.cmp(&from) {
        std::cmp::Ordering::Greater if to == limits.min => Some(BoundedBy::Min),
        std::cmp::Ordering::Less if to == limits.max => Some(BoundedBy::Max),
        _ => None,
    }
}

/// The target policies of one service.
#[derive(Debug, Clone)]
pub struct ServiceTargets<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    /// Its policies, by name.
    pub targets: Vec<(&'a str, &'a TargetPolicy)>,
}

/// The target policies grouped by the service they size. Several on one service are held to the
/// intersection of their bounds: an empty one is `InvalidConfig` naming both policies.
pub fn by_service(targets: &TargetPolicies) -> Result<Vec<ServiceTargets<'_>>> {
    let mut grouped: BTreeMap<(&str, &str), Vec<(&str, &TargetPolicy)>> = BTreeMap::new();
    for (name, target) in targets {
        grouped
            .entry((target.cluster.as_str(), target.service.as_str()))
            .or_default()
            .push((name.as_str(), target));
    }
    let mut services = Vec::new();
    for ((cluster, service), targets) in grouped {
        let (low, high) = (
            targets.iter().max_by_key(|(_, t)| t.min),
            targets.iter().min_by_key(|(_, t)| t.max),
        );
        if let (Some((low_name, low)), Some((high_name, high))) = (low, high) {
            if low.min > high.max {
                return Err(AutopilotError::invalid_config(
                    format!("scaling.targets.{low_name}.min"),
                    format!(
                        "{} is above the max of scaling.targets.{high_name} ({}), which sizes the \
                         same service {cluster}/{service}: their bounds do not meet",
                        low.min, high.max
                    ),
                ));
            }
        }
        services.push(ServiceTargets {
            cluster,
            service,
            targets,
        });
    }
    Ok(services)
}

impl ServiceTargets<'_> {
    /// Whether the service's tick is a dry run: any of its policies says `dry_run`.
    pub fn dry_run(&self) -> bool {
        self.targets.iter().any(|(_, t)| t.dry_run)
    }

    /// The fallback of the target named `name`, if it sizes this service.
    pub fn fallback_of(&self, name: &str) -> Option<Fallback> {
        self.targets
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.fallback)
    }

    /// The limits at `current` tasks: the intersection of the bounds, the longest stabilisation
    /// and the strictest step limits (each worked out in tasks from `current`).
    pub fn limits_at(&self, current: u32) -> ServiceLimits {
        let policies = || self.targets.iter().map(|(_, t)| *t);
        let strictest = |limit: fn(&TargetPolicy) -> Option<StepLimit>| {
            policies()
                .filter_map(limit)
                .map(|l| l.tasks_from(current))
                .min()
                .map(StepLimit::Tasks)
        };
        ServiceLimits {
            min: policies().map(|t| t.min).max().unwrap_or(0),
            max: policies().map(|t| t.max).min().unwrap_or(0),
            stabilization_s: policies()
                .map(|t| t.scale_in_stabilization_s)
                .max()
                .unwrap_or(0),
            max_step_out: strictest(|t| t.max_step_out),
            max_step_in: strictest(|t| t.max_step_in),
        }
    }
}

/// What one signal's read gave this tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Value(f64),
    /// The read failed (or gave no datapoint), and why.
    Failed(String),
}

/// A change in a signal's reading worth telling once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ReadingEvent {
    /// `fallback_after` reads in a row failed: the fallback applies from now on.
    FallingBack { target: String, reason: String },
    /// A read succeeded again after the fallback applied.
    Recovered { target: String },
}

impl ReadingEvent {
    /// The target whose reads it is about.
    pub fn target(&self) -> &str {
        match self {
            Self::FallingBack { target, .. } | Self::Recovered { target } => target,
        }
    }
}

/// Each signal's part this tick from its reading, and the memory for the next one: `zero_since`
/// set while a value is 0 (and cleared otherwise); failed reads counted in a row, the fallback
/// applied from the `fallback_after`-th (and told once), and its recovery told once.
pub fn parts_of(
    service: &ServiceTargets<'_>,
    readings: &BTreeMap<String, Reading>,
    running: u32,
    current: u32,
    memory: &mut TargetMemory,
    now: i64,
) -> (Vec<SignalPart>, Vec<ReadingEvent>) {
    let mut parts = Vec::new();
    let mut events = Vec::new();
    for (name, target) in &service.targets {
        let name = (*name).to_owned();
        let reading = readings
            .get(&name)
            .cloned()
            .unwrap_or_else(|| Reading::Failed("not read".into()));
        match reading {
            Reading::Value(value) => {
                let failed_before = memory.failures.remove(&name).unwrap_or(0);
                if failed_before >= target.fallback_after {
                    events.push(ReadingEvent::Recovered {
                        target: name.clone(),
                    });
                }
                if value <= 0.0 {
                    memory.zero_since.entry(name.clone()).or_insert(now);
                } else {
                    memory.zero_since.remove(&name);
                }
                let zero_since = memory.zero_since.get(&name).copied();
                let (recommendation, why) =
                    target.recommend(value, running, current, zero_since, now);
                parts.push(SignalPart {
                    name,
                    kind: target.kind().into(),
                    value: Some(value),
                    recommendation: Some(recommendation),
                    why,
                });
            }
            Reading::Failed(reason) => {
                let failures = memory.failures.entry(name.clone()).or_insert(0);
                *failures = failures.saturating_add(1);
                let failures = *failures;
                if failures == target.fallback_after {
                    events.push(ReadingEvent::FallingBack {
                        target: name.clone(),
                        reason: reason.clone(),
                    });
                }
                let (recommendation, why) = if failures < target.fallback_after {
                    (
                        None,
                        format!(
                            "read failed ({failures} of {} before the fallback): {reason}",
                            target.fallback_after
                        ),
                    )
                } else {
                    match target.fallback {
                        Fallback::Hold => (None, format!("fallback: hold ({reason})")),
                        Fallback::Count(n) => (Some(n), format!("fallback: {n} tasks ({reason})")),
                    }
                };
                parts.push(SignalPart {
                    name,
                    kind: target.kind().into(),
                    value: None,
                    recommendation,
                    why,
                });
            }
        }
    }
    (parts, events)
}
