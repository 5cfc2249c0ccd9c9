//! Plain domain types every part of the library shares: how urgent a message is, the format of
//! the `https` payload, an alarm's state, and what ECS tells about a service and a container's
//! logs. No I/O and no dependencies on other modules of the crate: the pure modules, the ports
//! and the adapters all speak these.

use serde::{Deserialize, Serialize};

use crate::arn::{last_segment, Arn};

/// How urgent a notification is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Payload carried by the `https` protocol of a notification.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HttpsFormat {
    /// The same structured JSON as `sqs` and `lambda`.
    #[default]
    Structured,
    /// Amazon Q Developer in chat applications (Chatbot) custom-notification schema.
    Chatbot,
}

/// A CloudWatch alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AlarmState {
    #[serde(rename = "ALARM")]
    Alarm,
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().as_str() {
            "ALARM" => Some(Self::Alarm),
            "OK" => Some(Self::Ok),
            "INSUFFICIENT_DATA" => Some(Self::InsufficientData),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "ALARM",
            Self::Ok => "OK",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// What ECS says about a service (DescribeServices), as a notification and the scaler use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ServiceSnapshot {
    pub status: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// Rollout state of the primary deployment (`IN_PROGRESS`, `COMPLETED`, `FAILED`).
    pub rollout_state: Option<String>,
    /// Whether the deployment circuit breaker is on, and with rollback.
    pub circuit_breaker: Option<bool>,
    pub circuit_breaker_rollback: Option<bool>,
    pub deployments: usize,
    /// Each deployment, primary first as ECS lists them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deployment_list: Vec<DeploymentSnapshot>,
}

/// One deployment of a service (DescribeServices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct DeploymentSnapshot {
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: Option<String>,
    pub task_definition: Option<String>,
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub running: i32,
    pub desired: i32,
    pub failed_tasks: i32,
}

impl ServiceSnapshot {
    /// `running 1 / desired 3, pending 2, rollout IN_PROGRESS`, as notifications state it.
    pub fn counts_text(&self) -> String {
        let mut text = format!("running {} / desired {}", self.running, self.desired);
        if self.pending > 0 {
            text.push_str(&format!(", pending {}", self.pending));
        }
        if let Some(rollout) = &self.rollout_state {
            text.push_str(&format!(", rollout {rollout}"));
        }
        text
    }

    /// The deployment with this id.
    pub fn deployment(&self, id: &str) -> Option<&DeploymentSnapshot> {
        self.deployment_list.iter().find(|d| d.id == id)
    }

    /// Whether the service is usable (`ACTIVE`, or no status reported).
    pub fn is_active(&self) -> bool {
        self.status
            .as_deref()
            .is_none_or(|status| status == "ACTIVE")
    }
}

/// Where a container's awslogs output goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsLogsTarget {
    pub group: String,
    pub stream_prefix: Option<String>,
    pub region: Option<String>,
}

impl AwsLogsTarget {
    /// The stream of one task's container: `prefix/container/task-id`.
    pub fn stream_for(&self, container: &str, task_id: &str) -> Option<String> {
        self.stream_prefix
            .as_ref()
            .map(|prefix| format!("{prefix}/{container}/{task_id}"))
    }
}

/// What kind of stop or service signal this was (triage's diagnosis). The identifiers are part of the product's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Oom,
    AppExit,
    ImagePull,
    Secrets,
    LogConfig,
    Network,
    Storage,
    HealthCheck,
    StartFailure,
    SpotInterruption,
    Infrastructure,
    Deployment,
    UserStop,
    Completed,
    Unknown,
    // Service events (deployment state changes, service actions).
    DeploymentFailed,
    Rollback,
    DeploymentProgress,
    StartImpaired,
    PlacementFailure,
    ConfigurationFailure,
    Throttled,
    UnhealthyTargets,
    DaemonPlacement,
    SteadyState,
    DesiredCount,
    TasksStopped,
    // The watchdog.
    ServiceDegraded,
    StuckPending,
}

impl Category {
    /// Every category, in table order.
    pub const ALL: [Category; 29] = [
        Self::Oom,
        Self::AppExit,
        Self::ImagePull,
        Self::Secrets,
        Self::LogConfig,
        Self::Network,
        Self::Storage,
        Self::HealthCheck,
        Self::StartFailure,
        Self::SpotInterruption,
        Self::Infrastructure,
        Self::Deployment,
        Self::UserStop,
        Self::Completed,
        Self::Unknown,
        Self::DeploymentFailed,
        Self::Rollback,
        Self::DeploymentProgress,
        Self::StartImpaired,
        Self::PlacementFailure,
        Self::ConfigurationFailure,
        Self::Throttled,
        Self::UnhealthyTargets,
        Self::DaemonPlacement,
        Self::SteadyState,
        Self::DesiredCount,
        Self::TasksStopped,
        Self::ServiceDegraded,
        Self::StuckPending,
    ];

    /// The identifier as serialized (`image-pull`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oom => "oom",
            Self::AppExit => "app-exit",
            Self::ImagePull => "image-pull",
            Self::Secrets => "secrets",
            Self::LogConfig => "log-config",
            Self::Network => "network",
            Self::Storage => "storage",
            Self::HealthCheck => "health-check",
            Self::StartFailure => "start-failure",
            Self::SpotInterruption => "spot-interruption",
            Self::Infrastructure => "infrastructure",
            Self::Deployment => "deployment",
            Self::UserStop => "user-stop",
            Self::Completed => "completed",
            Self::Unknown => "unknown",
            Self::DeploymentFailed => "deployment-failed",
            Self::Rollback => "rollback",
            Self::DeploymentProgress => "deployment-progress",
            Self::StartImpaired => "start-impaired",
            Self::PlacementFailure => "placement-failure",
            Self::ConfigurationFailure => "configuration-failure",
            Self::Throttled => "throttled",
            Self::UnhealthyTargets => "unhealthy-targets",
            Self::DaemonPlacement => "daemon-placement",
            Self::SteadyState => "steady-state",
            Self::DesiredCount => "desired-count",
            Self::TasksStopped => "tasks-stopped",
            Self::ServiceDegraded => "service-degraded",
            Self::StuckPending => "stuck-pending",
        }
    }

    /// Whether this category notifies by default, and at which severity.
    pub fn default_policy(self) -> (bool, Severity) {
        use Severity::*;
        match self {
            Self::Oom | Self::AppExit | Self::ImagePull | Self::Secrets | Self::LogConfig => {
                (true, Critical)
            }
            Self::Storage | Self::StartFailure => (true, Critical),
            Self::Network | Self::HealthCheck | Self::Infrastructure | Self::Unknown => {
                (true, Warning)
            }
            Self::SpotInterruption => (true, Info),
            Self::Deployment | Self::UserStop | Self::Completed => (false, Info),
            Self::DeploymentFailed
            | Self::StartImpaired
            | Self::PlacementFailure
            | Self::ConfigurationFailure
            | Self::ServiceDegraded => (true, Critical),
            Self::Rollback
            | Self::Throttled
            | Self::UnhealthyTargets
            | Self::DaemonPlacement
            | Self::StuckPending => (true, Warning),
            Self::DeploymentProgress
            | Self::SteadyState
            | Self::DesiredCount
            | Self::TasksStopped => (false, Info),
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The function that sends a notice (a job's completion report is `triage`'s); routing rules
/// name it by [`Source::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Triage,
    Scaler,
    Batch,
}

impl Source {
    /// As a routing rule names it (`triage`, `scaler`, `batch`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triage => "triage",
            Self::Scaler => "scaler",
            Self::Batch => "batch",
        }
    }

    /// The function's name (`task-triage` …), as notifications carry it.
    pub fn function(self) -> &'static str {
        match self {
            Self::Triage => "task-triage",
            Self::Scaler => "alarm-scaler",
            Self::Batch => "batch-runner",
        }
    }
}

/// Written as the function's name, as notifications carry it.
impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.function())
    }
}

/// 64-bit FNV-1a over `parts` (a separator between them): a stable hash for shortened names,
/// tokens and record keys (not for security).
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            hash ^= 0x1f;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        for byte in part.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Epoch seconds as RFC 3339 in UTC (`2026-11-03T02:00:00Z`), for records, notices and tables.
pub fn utc_time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| at.to_string())
}

/// `text` cut to at most `max` bytes (on a character boundary), for what is taken from an
/// event into a log line or an error message: a name or reason of megabytes stays a line.
pub fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` clipped to `max` bytes, saying how long it was when it was cut.
pub fn clipped(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    format!("{}… ({} bytes)", clip(&text, max), text.len())
}

/// The ARN of ECS service `service` of `cluster`: in the cluster's own partition, region and
/// account when `cluster` is an ARN, else in `elsewhere`'s (any ARN of the same place: an
/// alarm's, another cluster's) — `arn:aws:ecs:<region>:<account>:service/<cluster>/<service>`.
pub fn service_arn(cluster: &str, service: &str, elsewhere: Option<&Arn>) -> Option<String> {
    let own = Arn::parse(cluster).ok();
    let place = own.as_ref().or(elsewhere)?;
    let (region, account) = (place.region()?, place.account()?);
    Some(format!(
        "arn:{}:ecs:{region}:{account}:service/{}/{service}",
        place.partition(),
        last_segment(cluster)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_arn_is_built_where_its_cluster_or_else_the_other_arn_lives() {
        let cluster = "arn:aws-cn:ecs:cn-north-1:111122223333:cluster/shop";
        let alarm = &Arn::parse("arn:aws:cloudwatch:eu-west-1:444455556666:alarm:backlog").unwrap();
        assert_eq!(
            service_arn(cluster, "api", Some(alarm)).as_deref(),
            Some("arn:aws-cn:ecs:cn-north-1:111122223333:service/shop/api")
        );
        assert_eq!(
            service_arn("shop", "api", Some(alarm)).as_deref(),
            Some("arn:aws:ecs:eu-west-1:444455556666:service/shop/api")
        );
        assert_eq!(service_arn("shop", "api", None), None);
        let global = Arn::parse("arn:aws:iam::111122223333:role/x").unwrap();
        assert_eq!(service_arn("shop", "api", Some(&global)), None);
    }

    #[test]
    fn clipping_keeps_short_text_and_cuts_on_a_character_boundary() {
        assert_eq!(clip("orders-api", 64), "orders-api");
        assert_eq!(clip("ééé", 3), "é");
        assert_eq!(clipped("ab".repeat(10), 4), "abab… (20 bytes)");
        assert_eq!(clipped("short".into(), 10), "short");
    }

    #[test]
    fn alarm_states_parse_loosely_and_print_exactly() {
        assert_eq!(AlarmState::parse(" alarm "), Some(AlarmState::Alarm));
        assert_eq!(AlarmState::parse("nope"), None);
        assert_eq!(AlarmState::InsufficientData.as_str(), "INSUFFICIENT_DATA");
    }
}

/// Where a notice went: the `route` of a response line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Routed {
    /// What decided: `rule 0 (payments)`, `route_by_tag team=payments` or `default`.
    pub by: String,
    /// The destinations (`default`, a topic ARN, `webhook:<name>`); empty when muted.
    pub to: Vec<String>,
    /// Sent nowhere: a muting rule applied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
    /// Why, rule by rule (`--explain-route`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
    /// What a person would receive: the subject and readable text (`--format text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendered: Option<String>,
    /// The exact body each destination would receive (`--format payload`).
    #[serde(skip)]
    pub payloads: Vec<Payload>,
}

/// What one destination would receive: an SNS topic the subject, message and attributes; a
/// webhook the JSON as posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payload {
    /// The destination's label (`default`, a topic ARN, `webhook:<name>`).
    pub to: String,
    pub body: serde_json::Value,
}
