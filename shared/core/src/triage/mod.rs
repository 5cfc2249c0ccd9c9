//! Failed-task triage: a pure classification of an ECS task stop into a [`Diagnosis`].
//!
//! Order of evidence: each container's `reason`, then the essential container's exit code (when
//! the task stopped because it exited), then `stoppedReason`, then `stopCode`. Reasons are matched
//! against the phrase table in [`rules`]; exit codes are explained by [`explain_exit_code`].

pub mod outcome;
pub mod report;
pub mod rules;
pub mod service;
pub mod service_report;
pub mod watch;

use serde::{Deserialize, Serialize};

use crate::domain::Severity;
use crate::events::ecs::{Container, StopCode, TaskDetail, TaskGroup};
use rules::{match_reason, Rule};

pub use crate::domain::Category;

/// The raw reason a storm window keeps as its latest: the first container reason, else the
/// task's stopped reason.
pub fn storm_reason(task: &TaskDetail) -> String {
    task.containers
        .iter()
        .find_map(|c| c.reason.clone())
        .or_else(|| task.stopped_reason.clone())
        .unwrap_or_default()
}

/// Configured overrides for one diagnosis category (section `triage.categories`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryOverride {
    pub notify: Option<bool>,
    pub severity: Option<Severity>,
}

/// A diagnosis with the configured override of its category applied.
pub fn apply_override(mut diagnosis: Diagnosis, category: Option<&CategoryOverride>) -> Diagnosis {
    if let Some(category) = category {
        diagnosis.notify = category.notify.unwrap_or(diagnosis.notify);
        diagnosis.severity = category.severity.unwrap_or(diagnosis.severity);
    }
    diagnosis
}

/// The outcome of classifying one task stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub category: Category,
    pub severity: Severity,
    /// Whether this stop deserves a notification (category default or config override).
    pub notify: bool,
    /// Which rule decided: a table rule id, `exit-code`, `completed`, `stop-code:<code>`, `unknown`.
    pub rule: String,
    pub title: String,
    pub summary: String,
    pub container: Option<String>,
    pub exit_code: Option<i64>,
    /// Raw facts from the event, as `field: value` lines.
    pub evidence: Vec<String>,
    pub remediation: Vec<String>,
}

/// What the classifier found, before the task context is worded into a summary.
struct Finding {
    category: Category,
    rule: String,
    title: String,
    container: Option<String>,
    exit_code: Option<i64>,
    remediation: Vec<String>,
}

impl Finding {
    fn from_rule(rule: &Rule, container: Option<&Container>) -> Self {
        Self {
            category: rule.category,
            rule: rule.id.to_owned(),
            title: rule.title.to_owned(),
            container: container.and_then(|c| c.name.clone()),
            exit_code: container.and_then(|c| c.exit_code),
            remediation: rule.remediation.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Classifies a task stop. Pure: no I/O, no clock.
pub fn classify(task: &TaskDetail) -> Diagnosis {
    let finding = find(task);
    let (notify, severity) = finding.category.default_policy();
    Diagnosis {
        summary: summarize(task, &finding),
        evidence: evidence(task),
        category: finding.category,
        severity,
        notify,
        rule: finding.rule,
        title: finding.title,
        container: finding.container,
        exit_code: finding.exit_code,
        remediation: finding.remediation,
    }
}

fn find(task: &TaskDetail) -> Finding {
    // 1. A container's own reason is the most specific evidence there is; across containers the
    //    table's order decides (an OOM kill outranks a sidecar's pull error).
    let by_container = task
        .containers
        .iter()
        .filter_map(|c| {
            c.reason
                .as_deref()
                .and_then(rules::match_reason_ranked)
                .map(|(rank, rule)| (rank, rule, c))
        })
        .min_by_key(|(rank, _, _)| *rank);
    if let Some((_, rule, container)) = by_container {
        return Finding::from_rule(rule, Some(container));
    }
    // 2. The task stopped because an essential container exited: its exit code says why.
    if essential_container_exited(task) {
        if let Some(finding) = exit_code_finding(task) {
            return finding;
        }
    }
    // 3. The stopped reason. A user's StopTask reason is free text, so it is not matched.
    if task.stop_code != Some(StopCode::UserInitiated) {
        if let Some(rule) = task.stopped_reason.as_deref().and_then(match_reason) {
            return Finding::from_rule(rule, failing_container(task));
        }
        if let Some(container) = task
            .containers
            .iter()
            .find(|c| c.health_status.as_deref() == Some("UNHEALTHY"))
        {
            if let Some(rule) = rules::REASON_RULES
                .iter()
                .find(|r| r.id == "container-health-check")
            {
                return Finding::from_rule(rule, Some(container));
            }
        }
    }
    // 4. The stop code.
    if let Some(finding) = task
        .stop_code
        .as_ref()
        .and_then(|code| stop_code_finding(task, code))
    {
        return finding;
    }
    // 5. Container reasons nobody recognised still deserve to be read.
    let unexplained = task.containers.iter().find(|c| c.reason.is_some());
    Finding {
        category: Category::Unknown,
        rule: "unknown".to_owned(),
        title: "stopped for a reason not recognised".to_owned(),
        container: unexplained.and_then(|c| c.name.clone()),
        exit_code: unexplained.and_then(|c| c.exit_code),
        remediation: vec![
            "Read the raw reasons in the evidence; describe-tasks keeps stopped tasks for about an hour.".to_owned(),
        ],
    }
}

fn essential_container_exited(task: &TaskDetail) -> bool {
    let says_exited = task.stopped_reason.as_deref().is_some_and(|reason| {
        reason
            .to_ascii_lowercase()
            .contains("essential container in task exited")
    });
    match &task.stop_code {
        Some(StopCode::EssentialContainerExited) => true,
        Some(_) => says_exited,
        None => says_exited || task.stopped_reason.is_none(),
    }
}

/// The container most likely to have failed: a non-zero exit that is not the signal ECS sends
/// when stopping the others (143 SIGTERM, 137 SIGKILL) first, then 137, then 143.
fn failing_container(task: &TaskDetail) -> Option<&Container> {
    let rank = |code: i64| match code {
        0 => None,
        143 => Some(2),
        137 => Some(1),
        _ => Some(0),
    };
    task.containers
        .iter()
        .filter_map(|c| c.exit_code.and_then(rank).map(|r| (r, c)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, c)| c)
}

fn exit_code_finding(task: &TaskDetail) -> Option<Finding> {
    if let Some(container) = failing_container(task) {
        let code = container.exit_code.unwrap_or_default();
        let (meaning, remediation) = explain_exit_code(code);
        return Some(Finding {
            category: Category::AppExit,
            rule: "exit-code".to_owned(),
            title: format!("exited with code {code} ({meaning})"),
            container: container.name.clone(),
            exit_code: Some(code),
            remediation,
        });
    }
    let exited: Vec<&Container> = task
        .containers
        .iter()
        .filter(|c| c.exit_code == Some(0))
        .collect();
    if exited.is_empty() {
        return None;
    }
    let container = exited[0];
    if matches!(task.task_group(), Some(TaskGroup::Family(_))) {
        return Some(Finding {
            category: Category::Completed,
            rule: "completed".to_owned(),
            title: "completed successfully".to_owned(),
            container: container.name.clone(),
            exit_code: Some(0),
            remediation: Vec::new(),
        });
    }
    Some(Finding {
        category: Category::AppExit,
        rule: "exit-code".to_owned(),
        title: "exited with code 0 although it is a service's essential container".to_owned(),
        container: container.name.clone(),
        exit_code: Some(0),
        remediation: vec![
            "A service's essential container must keep running: check that the process does not daemonise or finish after start-up (foreground the server, no `&` in the command).".to_owned(),
        ],
    })
}

/// What an exit code usually means, and what to do about it.
pub fn explain_exit_code(code: i64) -> (String, Vec<String>) {
    let advice = |lines: &[&str]| lines.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let logs = "Read the container's last log lines below for the error the application printed.";
    match code {
        1 => ("application error".into(), advice(&[logs, "Run the same image and command locally with the task's environment to reproduce."])),
        2 => ("misuse of a shell builtin or invalid arguments".into(), advice(&[logs, "Check `command` and `entryPoint` arguments in the task definition."])),
        126 => ("command found but not executable".into(), advice(&["Make the entrypoint executable in the image (chmod +x) and check it is not a directory."])),
        127 => ("command not found".into(), advice(&["Check that `command`/`entryPoint` name a program installed in the image and on its PATH."])),
        134 => ("aborted (SIGABRT)".into(), advice(&[logs, "An assertion, a panic with abort, or a JVM/native crash: look for a core dump or hs_err log."])),
        137 => ("killed by SIGKILL".into(), advice(&[
            "Exit 137 without an OutOfMemoryError reason means the process was SIGKILLed: often it ignored SIGTERM and was killed after stopTimeout, or an in-container process manager killed it.",
            "Handle SIGTERM and finish within stopTimeout; if memory is near its limit, rule out the kernel OOM killer in the host's logs.",
        ])),
        139 => ("segmentation fault (SIGSEGV)".into(), advice(&[logs, "A native crash: check native libraries for the task's CPU architecture and glibc/musl mismatches."])),
        143 => ("terminated by SIGTERM".into(), advice(&["Something asked the process to stop; if nobody stopped the task, look for a supervisor or health check inside the container."])),
        255 => ("exit status out of range".into(), advice(&[logs])),
        128..=192 => (format!("killed by signal {}", code - 128), advice(&[logs])),
        _ => ("non-zero exit".into(), advice(&[logs])),
    }
}

fn stop_code_finding(task: &TaskDetail, code: &StopCode) -> Option<Finding> {
    let (category, title, remediation): (Category, &str, &[&str]) = match code {
        StopCode::UserInitiated => (Category::UserStop, "stopped by a user or API call", &[]),
        StopCode::SpotInterruption | StopCode::TerminationNotice => {
            return rules::REASON_RULES
                .iter()
                .find(|r| r.id == "spot-interruption")
                .map(|rule| Finding::from_rule(rule, None));
        }
        StopCode::TaskFailedToStart => (
            Category::StartFailure,
            "task failed to start",
            &["Read the raw reasons in the evidence and the service's events (describe-services) for the failing step."],
        ),
        StopCode::EssentialContainerExited => (
            Category::AppExit,
            "essential container exited (exit code not reported)",
            &["Read the container's last log lines for the error the application printed."],
        ),
        StopCode::ServiceSchedulerInitiated | StopCode::Other(_) => return None,
    };
    let container = if category == Category::AppExit {
        failing_container(task)
    } else {
        None
    };
    Some(Finding {
        category,
        rule: format!("stop-code:{code}"),
        title: title.to_owned(),
        container: container.and_then(|c| c.name.clone()),
        exit_code: container.and_then(|c| c.exit_code),
        remediation: remediation.iter().map(|s| (*s).to_owned()).collect(),
    })
}

fn summarize(task: &TaskDetail, finding: &Finding) -> String {
    let task_id = task.task_id().unwrap_or("unknown");
    let owner = match task.task_group() {
        Some(TaskGroup::Service(name)) => format!("service {name}"),
        Some(TaskGroup::Family(family)) => format!("standalone task of {family}"),
        Some(TaskGroup::Other(group)) => format!("group {group}"),
        None => "task".to_owned(),
    };
    let cluster = task.cluster_name().unwrap_or("unknown");
    let subject = match &finding.container {
        Some(name) => format!("Container {name}"),
        None => "The task".to_owned(),
    };
    let when = if task.is_termination_notice() {
        "will stop"
    } else {
        "stopped"
    };
    let mut summary = format!(
        "Task {task_id} ({owner}, cluster {cluster}) {when}: {subject} {}.",
        finding.title
    );
    if let Some(reason) = task.stopped_reason.as_deref().filter(|r| !r.is_empty()) {
        summary.push_str(&format!(" ECS says: \"{reason}\""));
        if let Some(code) = &task.stop_code {
            summary.push_str(&format!(" ({code})"));
        }
        summary.push('.');
    }
    summary
}

fn evidence(task: &TaskDetail) -> Vec<String> {
    let mut lines = Vec::new();
    for container in &task.containers {
        let name = container.name.as_deref().unwrap_or("?");
        if let Some(reason) = &container.reason {
            lines.push(format!("containers[{name}].reason: {reason}"));
        }
        if let Some(code) = container.exit_code {
            lines.push(format!("containers[{name}].exitCode: {code}"));
        }
        if let Some(health) = container
            .health_status
            .as_deref()
            .filter(|h| *h == "UNHEALTHY")
        {
            lines.push(format!("containers[{name}].healthStatus: {health}"));
        }
    }
    if let Some(reason) = &task.stopped_reason {
        lines.push(format!("stoppedReason: {reason}"));
    }
    if let Some(code) = &task.stop_code {
        lines.push(format!("stopCode: {code}"));
    }
    lines
}

#[cfg(test)]
mod tests;
