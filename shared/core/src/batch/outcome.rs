//! What `batch-runner` answers: one run's outcome, what a task's state change did to its run,
//! or the tick's work — retries started, runs that never started, missed runs, tasks stopped at
//! their timeout (the Lambda response and the CLI's JSON line).

use serde::Serialize;

use super::record::{Outcome, Verdict};
use super::report::RunAction;
use super::{run_token, JobSpec, RunFailure, RunTaskRequest};

/// The response for one run (and the CLI's output line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    pub job: String,
    pub action: RunAction,
    pub tasks: Vec<String>,
    pub failures: Vec<RunFailure>,
    pub attempts: u32,
    pub client_token: String,
    pub requested: u32,
    /// Tasks of the previous run: still running (skipped) or stopped (replaced).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub previous_tasks: Vec<String>,
    pub reason: String,
    /// `--dry-run`/`--offline`: the RunTask requests it would send.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<RunTaskRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Where its notification went (or would go): the rule that decided and the destinations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<crate::domain::Routed>,
    /// A redelivery of what was handled before (nothing done again).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    pub notes: Vec<String>,
}

impl RunOutcome {
    /// A run of `job` identified by `run_id`, before anything is done.
    pub fn new(job: &str, run_id: &str, spec: &JobSpec) -> Self {
        Self {
            job: job.to_owned(),
            action: RunAction::Started,
            tasks: Vec::new(),
            failures: Vec::new(),
            attempts: 0,
            client_token: run_token(job, run_id),
            requested: spec.count,
            previous_tasks: Vec::new(),
            reason: String::new(),
            requests: Vec::new(),
            message_id: None,
            route: None,
            duplicate: false,
            notes: Vec::new(),
        }
    }
}

/// A task stopped by the tick for exceeding its job's timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeoutStop {
    pub job: String,
    pub task: String,
    pub ran_s: i64,
    pub stopped: bool,
}

/// What a Task State Change of a task the runner started did to its run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskFollowed {
    pub job: String,
    pub task: String,
    /// `RUNNING` or `STOPPED`.
    pub status: String,
    /// The run's identity, when its record was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Dependent runs this run's success started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub started: Vec<RunOutcome>,
    /// Jobs whose run for the same time this run's failure made `upstream-failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstream_failed: Vec<RunAlerted>,
    pub notes: Vec<String>,
}

/// A run-level notice the runner sent (never started, upstream failed, missed run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunAlerted {
    pub job: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// `never-started`, `upstream-failed` or `missed-run`.
    pub alert: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<crate::domain::Routed>,
    /// Told before (a redelivered event or tick): not sent again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// The response of an invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RunnerResponse {
    Run(Box<RunOutcome>),
    /// An event of an account the stack does not act for: nothing run or stopped.
    Ignored {
        /// Always `ignored`, as the other functions say it.
        action: &'static str,
        reason: String,
        foreign: crate::trust::Foreign,
    },
    /// A task it started changed state.
    Task(Box<TaskFollowed>),
    Tick {
        tick: bool,
        stopped: Vec<TimeoutStop>,
        /// Retries that were due and started.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        retried: Vec<RunOutcome>,
        /// Never-started runs and missed runs told.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        alerted: Vec<RunAlerted>,
        notes: Vec<String>,
    },
}
