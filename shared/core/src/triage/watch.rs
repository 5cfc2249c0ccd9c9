//! The watchdog's decisions (pure): which services of a watched cluster it looks at, when a
//! service short of its desired count has been so long enough to say so (`service-degraded`:
//! critical at 0 running, else warning), which tasks are stuck before RUNNING (`stuck-pending`),
//! and when an open incident is over because the service has run at its desired count with no
//! new failure for `resolve_after_s`.

use serde::Deserialize;

use super::{Category, Diagnosis};
use crate::domain::Severity;
use crate::events::ecs::TaskDetail;
use crate::incident::Incident;
use crate::state::span_text;

/// Section `triage.watch`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Clusters to watch: a name or ARN, or `{"cluster": …, "services": [globs]}`.
    pub clusters: Vec<WatchedCluster>,
    /// How long a service may run short of its desired count before it is `service-degraded`.
    pub stuck_after_s: u64,
    /// How long a task may stay PROVISIONING, PENDING or ACTIVATING before it is stuck.
    pub pending_after_s: u64,
    /// At most this many services are looked at per tick (a note says when the cap is reached).
    pub max_services: u32,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            clusters: Vec::new(),
            stuck_after_s: 600,
            pending_after_s: 900,
            max_services: 100,
        }
    }
}

/// One watched cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum WatchedCluster {
    All(String),
    Some {
        cluster: String,
        #[serde(default)]
        services: Vec<String>,
    },
}

impl WatchedCluster {
    /// The cluster as configured: a name, or an ARN (which may name a member account).
    pub fn id(&self) -> &str {
        match self {
            Self::All(cluster) | Self::Some { cluster, .. } => cluster,
        }
    }

    /// The cluster's name (the last segment of an ARN).
    pub fn name(&self) -> &str {
        let cluster = match self {
            Self::All(cluster) | Self::Some { cluster, .. } => cluster,
        };
        crate::arn::last_segment(cluster)
    }

    /// Whether the service `name` is watched.
    pub fn watches(&self, name: &str) -> bool {
        match self {
            Self::Some { services, .. } if !services.is_empty() => {
                services.iter().any(|glob| glob_matches(glob, name))
            }
            _ => true,
        }
    }
}

/// Section `triage.incidents`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsConfig {
    /// An open incident resolves when the watchdog sees the service at its desired count with
    /// no new failure for this long.
    pub resolve_after_s: u64,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        Self {
            resolve_after_s: 600,
        }
    }
}

/// Shell-style glob: `*` any run of characters, `?` one character, anything else itself.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), name.chars().collect());
    let (mut p, mut n, mut star, mut mark) = (0, 0, None, 0);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// A service short of its desired count since `since`, at `now`: degraded once that has lasted
/// `stuck_after_s` (critical with nothing running).
pub fn degraded(
    desired: i32,
    running: i32,
    since: i64,
    now: i64,
    stuck_after_s: u64,
) -> Option<Severity> {
    if running >= desired || now.saturating_sub(since) < stuck_after_s as i64 {
        return None;
    }
    Some(if running <= 0 {
        Severity::Critical
    } else {
        Severity::Warning
    })
}

/// Tasks still before RUNNING (PROVISIONING, PENDING, ACTIVATING) for longer than
/// `pending_after_s`, oldest first.
pub fn stuck_tasks(tasks: &[TaskDetail], now: i64, pending_after_s: u64) -> Vec<&TaskDetail> {
    let mut stuck: Vec<&TaskDetail> = tasks
        .iter()
        .filter(|t| {
            matches!(
                t.last_status.as_deref(),
                Some("PROVISIONING" | "PENDING" | "ACTIVATING")
            )
        })
        .filter(|t| {
            t.created_at
                .is_some_and(|at| now.saturating_sub(at.timestamp()) > pending_after_s as i64)
        })
        .collect();
    stuck.sort_by_key(|t| t.created_at);
    stuck
}

/// Whether an open incident is over: the service runs at its desired count and no failure came
/// for `resolve_after_s`.
pub fn resolvable(
    incident: &Incident,
    desired: i32,
    running: i32,
    now: i64,
    resolve_after_s: u64,
) -> bool {
    incident.is_open()
        && running >= desired
        && now.saturating_sub(incident.last_signal_at) >= resolve_after_s as i64
}

/// The diagnosis of a service short of its desired count.
pub fn degraded_diagnosis(
    cluster: &str,
    service: &str,
    desired: i32,
    running: i32,
    since: i64,
    now: i64,
    severity: Severity,
) -> Diagnosis {
    let span = span_text(since, now);
    Diagnosis {
        category: Category::ServiceDegraded,
        severity,
        notify: true,
        rule: "watch:short-of-desired".into(),
        title: format!("{running} of {desired} tasks running for {span}"),
        summary: format!("Service {service} in cluster {cluster} has run {running} of its {desired} desired tasks for {span}; ECS may take many minutes to report why."),
        container: None,
        exit_code: None,
        evidence: vec![format!("desired: {desired}"), format!("running: {running}"), format!("short since: {}", chrono::DateTime::from_timestamp(since, 0).map(|t| t.to_rfc3339()).unwrap_or_default())],
        remediation: vec![
            "Look at the service's events and its stopped tasks: tasks that cannot be placed, cannot pull their image or fail their health checks never reach RUNNING.".into(),
            "Check the capacity provider (instances, Fargate capacity) and the subnets' free addresses.".into(),
        ],
    }
}

/// The diagnosis of tasks stuck before RUNNING.
pub fn stuck_diagnosis(cluster: &str, service: &str, stuck: &[&TaskDetail], now: i64) -> Diagnosis {
    let oldest = stuck
        .first()
        .and_then(|t| t.created_at)
        .map(|at| span_text(at.timestamp(), now))
        .unwrap_or_default();
    let evidence = stuck
        .iter()
        .map(|t| {
            let mut line = format!(
                "{} {}",
                t.task_id().unwrap_or("?"),
                t.last_status.as_deref().unwrap_or("?")
            );
            if let Some(provider) = t
                .capacity_provider_name
                .as_deref()
                .or(t.launch_type.as_deref())
            {
                line.push_str(&format!(" on {provider}"));
            }
            if let Some(reason) = t
                .stopped_reason
                .as_deref()
                .or_else(|| t.containers.iter().find_map(|c| c.reason.as_deref()))
            {
                line.push_str(&format!(": {reason}"));
            }
            line
        })
        .collect();
    Diagnosis {
        category: Category::StuckPending,
        severity: Severity::Warning,
        notify: true,
        rule: "watch:stuck-before-running".into(),
        title: format!("{} task(s) stuck before RUNNING, the oldest for {oldest}", stuck.len()),
        summary: format!("Service {service} in cluster {cluster} has {} task(s) that have not reached RUNNING, the oldest for {oldest}.", stuck.len()),
        container: None,
        exit_code: None,
        evidence,
        remediation: vec![
            "PROVISIONING: capacity (EC2 instances, ENIs, Fargate) is not there yet; PENDING: the image pull or the agent is slow or failing; ACTIVATING: load balancer registration or Service Connect setup is waiting.".into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        for (pattern, name, expected) in [
            ("orders-*", "orders-api", true),
            ("orders-*", "payments", false),
            ("*", "", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*-api", "orders-api", true),
            ("o*s*i", "orders-api", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob_matches(pattern, name), expected, "{pattern} {name}");
        }
    }

    #[test]
    fn degraded_only_after_the_grace_and_critical_at_zero() {
        assert_eq!(degraded(2, 0, 0, 599, 600), None);
        assert_eq!(degraded(2, 0, 0, 600, 600), Some(Severity::Critical));
        assert_eq!(degraded(2, 1, 0, 600, 600), Some(Severity::Warning));
        assert_eq!(degraded(2, 2, 0, 6000, 600), None);
    }

    #[test]
    fn stuck_tasks_are_the_old_ones_before_running() {
        let task = |status: &str, created: i64| -> TaskDetail {
            serde_json::from_value(serde_json::json!({"taskArn": format!("arn:aws:ecs:us-east-1:1:task/c/{status}{created}"), "lastStatus": status,
                "createdAt": chrono::DateTime::from_timestamp(created, 0).unwrap().to_rfc3339()})).unwrap()
        };
        let tasks = [
            task("PENDING", 0),
            task("RUNNING", 0),
            task("PROVISIONING", 500),
            task("ACTIVATING", 50),
        ];
        let stuck: Vec<&str> = stuck_tasks(&tasks, 1_000, 900)
            .iter()
            .map(|t| t.last_status.as_deref().unwrap())
            .collect();
        assert_eq!(stuck, ["PENDING", "ACTIVATING"]);
    }

    #[test]
    fn config_reads_names_arns_and_globs() {
        let config: WatchConfig = serde_json::from_str(r#"{"clusters": ["arn:aws:ecs:us-east-1:1:cluster/shop", {"cluster": "pay", "services": ["api-*"]}]}"#).unwrap();
        assert_eq!(config.clusters[0].name(), "shop");
        assert!(config.clusters[0].watches("anything"));
        assert!(config.clusters[1].watches("api-eu") && !config.clusters[1].watches("worker"));
        assert_eq!(
            (
                config.stuck_after_s,
                config.pending_after_s,
                config.max_services
            ),
            (600, 900, 100)
        );
    }
}
