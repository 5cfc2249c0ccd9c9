//! Batch job planning for `batch-runner` (pure, no I/O): the `startedBy` marker and client
//! tokens, splitting a run into RunTask calls of ≤ 10 tasks, the overlap decision, which
//! `failures[]` reasons are worth retrying, the retry backoff within the time budget, and which
//! tasks exceeded their job's timeout. Its modules hold the catalog ([`catalog`]), what a job
//! asks of its runs ([`policy`]: retries, dependencies, parameters), run records and the retry
//! stepper over them ([`record`]), missed-run windows ([`missed`]), the history table
//! ([`history`]), and what is said about runs ([`report`], [`outcome`]).

pub mod catalog;
pub mod history;
pub mod missed;
pub mod outcome;
pub mod policy;
pub mod record;
pub mod report;
pub mod stepper;

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use catalog::{CapacityProviderItem, JobCatalog, JobSpec, Overlap};

/// How long a run claim is kept.
pub const RUN_TTL_S: u64 = 7 * 24 * 3600;

/// The identity of a run: its scheduled time, else the invocation's request id, else the time.
pub fn run_id(scheduled_time: Option<&str>, request_id: Option<&str>, now: i64) -> String {
    scheduled_time
        .or(request_id)
        .map_or_else(|| format!("manual-{now}"), str::to_owned)
}

/// Every task the runner starts carries `startedBy = batch-runner/<job>`.
pub const STARTED_BY_PREFIX: &str = "batch-runner/";
/// ECS's limit on `startedBy`.
pub const MAX_STARTED_BY: usize = 36;
/// ECS's limit on `clientToken`.
pub const MAX_CLIENT_TOKEN: usize = 64;
/// RunTask starts at most this many tasks per call.
pub const MAX_TASKS_PER_CALL: u32 = 10;

/// `batch-runner/<job>`, shortened deterministically to 36 characters
/// (`batch-runner/<start of name>~<8 hex of the name's hash>`) when the name is long.
pub fn started_by(job: &str) -> String {
    let full = format!("{STARTED_BY_PREFIX}{job}");
    if full.len() <= MAX_STARTED_BY {
        return full;
    }
    let hash = format!("{:08x}", crate::domain::fnv1a(&[job]) as u32);
    let keep = MAX_STARTED_BY - STARTED_BY_PREFIX.len() - 1 - hash.len();
    let start: String = job.chars().take(keep).collect();
    format!("{STARTED_BY_PREFIX}{start}~{hash}")
}

/// The job a `startedBy` value names, given the catalog (shortened values map back through it).
pub fn job_of_started_by<'a>(
    started_by_value: &'a str,
    catalog: &'a JobCatalog,
) -> Option<&'a str> {
    let rest = started_by_value.strip_prefix(STARTED_BY_PREFIX)?;
    catalog
        .keys()
        .find(|job| started_by(job) == started_by_value)
        .map(String::as_str)
        .or(Some(rest))
}

/// The token of one RunTask call: job, run identity (scheduled time or event id), round (how
/// many times this run was resumed after a failed invocation), call index and attempt; ≤ 64
/// ASCII characters. A redelivered event yields the same tokens, so ECS starts nothing new.
pub fn client_token(job: &str, run_id: &str, round: u32, call: usize, attempt: u32) -> String {
    let readable: String = job
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    let token = format!(
        "{readable}-{:016x}-r{round}c{call}a{attempt}",
        crate::domain::fnv1a(&[job, run_id])
    );
    token.chars().take(MAX_CLIENT_TOKEN).collect()
}

/// The run's base token (round 0, call 0, attempt 1), reported in the response.
pub fn run_token(job: &str, run_id: &str) -> String {
    client_token(job, run_id, 0, 0, 1)
}

/// What one RunTask call returned: started tasks and `failures[]` (a 200 with failures is how
/// Fargate reports missing capacity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RunTaskResult {
    pub tasks: Vec<String>,
    pub failures: Vec<RunFailure>,
}

/// One entry of RunTask's `failures[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunFailure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Task counts per RunTask call.
pub fn split(count: u32) -> Vec<u32> {
    let mut calls = Vec::new();
    let mut left = count;
    while left > 0 {
        let take = left.min(MAX_TASKS_PER_CALL);
        calls.push(take);
        left -= take;
    }
    calls
}

/// What a RunTask `failures[]` reason says about retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// No room right now (Fargate capacity, `RESOURCE:*`, agent busy): retry, then fall back.
    Capacity,
    /// The request cannot succeed as configured (`MISSING`, `ATTRIBUTE`, invalid parameters).
    Configuration,
}

/// Classifies a failure reason; unknown reasons count as configuration (no blind retries).
pub fn classify_failure(reason: &str) -> FailureClass {
    let lower = reason.to_ascii_lowercase();
    let capacity = lower.starts_with("resource:")
        || lower.contains("capacity is unavailable")
        || lower.contains("insufficient capacity")
        || lower.contains("no container instances")
        || (lower.contains("capacity provider")
            && (lower.contains("no capacity") || lower.contains("scaling")))
        || lower == "agent"
        || lower.contains("throttl")
        || lower.contains("timeout waiting for network interface");
    if capacity {
        FailureClass::Capacity
    } else {
        FailureClass::Configuration
    }
}

/// What the overlap guard decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "decision", content = "tasks")]
pub enum OverlapDecision {
    Start,
    Skip(Vec<String>),
    Replace(Vec<String>),
}

/// The overlap decision for a job given its tasks still running (or pending).
pub fn overlap_decision(policy: Overlap, running: &[String]) -> OverlapDecision {
    match (policy, running.is_empty()) {
        (_, true) | (Overlap::Allow, _) => OverlapDecision::Start,
        (Overlap::Skip, false) => OverlapDecision::Skip(running.to_vec()),
        (Overlap::Replace, false) => OverlapDecision::Replace(running.to_vec()),
    }
}

/// Backoff before retry `attempt` (2, 3 …): 1 s, 2 s, 4 s, 8 s, then 15 s.
pub fn backoff_s(attempt: u32) -> u64 {
    (1u64 << attempt.saturating_sub(2).min(4)).min(15)
}

/// Whether another attempt fits: its backoff plus a reserve for the attempt itself and the
/// report must end before the deadline (`remaining_s` seconds away).
pub fn retry_fits(attempt: u32, remaining_s: i64) -> bool {
    const RESERVE_S: i64 = 5;
    backoff_s(attempt) as i64 + RESERVE_S <= remaining_s
}

/// A task of a job, as ListTasks/DescribeTasks show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningTask {
    pub task_arn: String,
    /// Epoch seconds; `None` while still provisioning.
    pub started_at: Option<i64>,
}

/// Tasks that have run longer than `timeout_s` at `now`, with how long they ran.
pub fn timed_out(tasks: &[RunningTask], timeout_s: u64, now: i64) -> Vec<(String, i64)> {
    tasks
        .iter()
        .filter_map(|task| {
            let ran = now.saturating_sub(task.started_at?);
            (ran > timeout_s as i64).then(|| (task.task_arn.clone(), ran))
        })
        .collect()
}

/// How the stop reason of a task stopped at its timeout begins.
pub const TIMEOUT_REASON_PREFIX: &str = "batch-runner: exceeded timeout";

/// The stop reason for a task over its timeout.
pub fn timeout_reason(timeout_s: u64) -> String {
    format!("{TIMEOUT_REASON_PREFIX} of {timeout_s} s")
}

/// The stop reason for a task replaced by a newer run.
pub fn replace_reason(run_id: &str) -> String {
    let reason = format!("batch-runner: replaced by the run {run_id}");
    reason.chars().take(255).collect()
}

/// Which placement a RunTask call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    Primary,
    Fallback,
}

/// One RunTask call, as plain data (printed by `--dry-run`, sent by the adapter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunTaskRequest {
    pub cluster: String,
    pub task_definition: String,
    pub count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capacity_provider_strategy: Vec<CapacityProviderItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<catalog::Network>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<catalog::ContainerOverride>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<&'static str>,
    pub started_by: String,
    pub client_token: String,
}

/// The RunTask request of call `call`, attempt `attempt`, for `count` tasks.
#[allow(clippy::too_many_arguments)]
pub fn run_task_request(
    job: &str,
    spec: &JobSpec,
    run_id: &str,
    round: u32,
    call: usize,
    attempt: u32,
    count: u32,
    placement: Placement,
) -> RunTaskRequest {
    let (launch_type, strategy) = match placement {
        Placement::Primary => (
            spec.launch_type.map(|l| l.as_str()),
            spec.capacity_provider_strategy.clone(),
        ),
        Placement::Fallback => (None, spec.fallback_capacity_provider_strategy.clone()),
    };
    let token_attempt = match placement {
        Placement::Primary => attempt,
        Placement::Fallback => 100 + attempt,
    };
    RunTaskRequest {
        cluster: spec.cluster.clone(),
        task_definition: spec.task_definition.clone(),
        count,
        launch_type,
        capacity_provider_strategy: strategy,
        network: spec.network.clone(),
        overrides: spec.overrides.clone(),
        tags: spec.tags.clone(),
        propagate_tags: spec.propagate_tags.map(|p| p.as_str()),
        started_by: started_by(job),
        client_token: client_token(job, run_id, round, call, token_attempt),
    }
}
