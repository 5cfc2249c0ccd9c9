//! What `batch-runner` answers: one run's outcome, or the timeout tick's stops (the Lambda
//! response and the CLI's JSON line).

use serde::Serialize;

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
    Tick {
        tick: bool,
        stopped: Vec<TimeoutStop>,
        notes: Vec<String>,
    },
}
