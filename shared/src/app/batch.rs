//! The `batch-runner` handler: job request → claim the run (once per scheduled time) → overlap
//! guard (ListTasks by startedBy) → RunTask in calls of ≤ 10 with client tokens, retrying
//! capacity `failures[]` with backoff inside the time budget and then the fallback strategy →
//! report. The tick stops tasks over their job's `timeout_s`. No invocation waits for a task:
//! `task-triage` reports completions.

use serde::Serialize;

use super::Setup;
use crate::aws::state_table::StateTable;
use crate::aws::{ecs, sns, AwsClients};
use crate::batch::report::{run_notice, RunAction, RunFacts};
use crate::batch::{
    backoff_s, classify_failure, overlap_decision, replace_reason, retry_fits, run_task_request,
    run_token, split, started_by, timed_out, timeout_reason, FailureClass, JobCatalog, JobSpec,
    OverlapDecision, Placement, RunFailure, RunTaskRequest,
};
use crate::config::HttpsFormat;
use crate::entry::{Invocation, Mode};
use crate::error::{AutopilotError, Result};
use crate::events::schedule::{parse_runner_event, JobRequest, RunnerEvent};
use crate::events::InboundEvent;
use crate::notify;
use crate::state::{self, Claim};

/// Prefix of run claims in the state table.
pub const RUN_PREFIX: &str = "batch#run#";
/// How long a run claim is kept.
pub const RUN_TTL_S: u64 = 7 * 24 * 3600;
/// RunTask attempts per call and placement.
pub const MAX_ATTEMPTS: u32 = 5;
/// Time budget outside Lambda (CLI), in seconds.
const CLI_BUDGET_S: u64 = 120;

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
    pub notes: Vec<String>,
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
    Tick {
        tick: bool,
        stopped: Vec<TimeoutStop>,
        notes: Vec<String>,
    },
}

/// The function, built once per cold start.
#[derive(Debug)]
pub struct BatchRunner {
    mode: Mode,
    jobs: JobCatalog,
    https_format: HttpsFormat,
    topic_arn: Option<String>,
    clients: Option<AwsClients>,
    state: Option<StateTable>,
    region: Option<String>,
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// How a call loop ended.
enum Stop {
    Done,
    Configuration,
    CapacityExhausted,
}

impl BatchRunner {
    /// Builds the handler; a live run needs `NOTIFY_TOPIC_ARN`.
    pub fn new(setup: Setup) -> Result<Self> {
        setup.require_topic_when_live()?;
        let state = setup.state_table();
        let region = setup.region();
        Ok(Self {
            mode: setup.mode,
            jobs: setup.config.jobs,
            https_format: setup.config.triage.https_format,
            topic_arn: setup.deployment.topic_arn,
            clients: setup.clients,
            state,
            region,
        })
    }

    /// Handles one event: a job request or the tick.
    pub async fn handle(
        &self,
        event: InboundEvent,
        invocation: Invocation,
    ) -> Result<RunnerResponse> {
        match parse_runner_event(&event.to_value()?)? {
            RunnerEvent::Run(request) => Ok(RunnerResponse::Run(Box::new(
                self.run(&request, &invocation).await?,
            ))),
            RunnerEvent::Tick => self.tick().await,
        }
    }

    fn job(&self, name: &str) -> Result<&JobSpec> {
        self.jobs.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.jobs.keys().map(String::as_str).collect();
            AutopilotError::invalid_event(
                "job",
                format!(
                    "unknown job `{name}`; the catalog has: {}",
                    if known.is_empty() {
                        "no jobs".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })
    }

    async fn run(&self, request: &JobRequest, invocation: &Invocation) -> Result<RunOutcome> {
        let job = request.job.as_str();
        let spec = self.job(job)?;
        let run_id = request
            .scheduled_time
            .clone()
            .or_else(|| invocation.request_id.clone())
            .unwrap_or_else(|| format!("manual-{}", now_s()));
        let mut outcome = RunOutcome {
            job: job.to_owned(),
            action: RunAction::Started,
            tasks: Vec::new(),
            failures: Vec::new(),
            attempts: 0,
            client_token: run_token(job, &run_id),
            requested: spec.count,
            previous_tasks: Vec::new(),
            reason: String::new(),
            requests: Vec::new(),
            message_id: None,
            notes: Vec::new(),
        };
        let key = format!("{RUN_PREFIX}{job}#{run_id}");
        let mut round = 0;
        let claimed = match (&self.state, self.mode) {
            (Some(state), Mode::Live) => {
                let lease_until =
                    invocation.deadline_epoch_s(state::CLI_LEASE_S) + state::CLAIM_LEASE_MARGIN_S;
                match state.claim(&key, now_s(), lease_until, RUN_TTL_S).await? {
                    Claim::Duplicate { decision, .. } => {
                        outcome.action = RunAction::Skipped;
                        outcome.reason = format!(
                            "duplicate delivery of run {run_id}: already handled ({})",
                            decision.as_deref().unwrap_or("unknown")
                        );
                        tracing::info!(job, run_id, "duplicate run request");
                        return Ok(outcome);
                    }
                    Claim::InProgress => return Err(AutopilotError::InProgressElsewhere { key }),
                    Claim::Fresh => Some(state),
                    Claim::Resumed { .. } => {
                        let (resumed_round, started) = state.resume_run(&key).await?;
                        round = resumed_round;
                        outcome.notes.push(format!(
                            "resumed after a failed invocation (round {round}); {} tasks were already started",
                            started.len()
                        ));
                        outcome.tasks = started;
                        Some(state)
                    }
                }
            }
            (None, Mode::Live) => {
                outcome.notes.push(
                    "no STATE_TABLE: duplicates are caught by client tokens and the overlap guard only"
                        .into(),
                );
                None
            }
            _ => None,
        };
        let result = self
            .run_claimed(
                job,
                spec,
                &run_id,
                round,
                claimed.map(|state| (state, key.as_str())),
                invocation,
                &mut outcome,
            )
            .await;
        if let Some(state) = claimed {
            let finished = match &result {
                Ok(()) => state.complete(&key, outcome.action.as_str(), None).await,
                Err(_) => state.release(&key).await,
            };
            if let Err(error) = finished {
                tracing::warn!("could not update the run claim {key}: {error}");
            }
        }
        tracing::info!(
            job,
            run_id,
            action = outcome.action.as_str(),
            tasks = outcome.tasks.len(),
            requested = outcome.requested,
            attempts = outcome.attempts,
            "outcome"
        );
        result.map(|()| outcome)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_claimed(
        &self,
        job: &str,
        spec: &JobSpec,
        run_id: &str,
        round: u32,
        // The run's claim and its key, where the started tasks are recorded.
        claim: Option<(&StateTable, &str)>,
        invocation: &Invocation,
        outcome: &mut RunOutcome,
    ) -> Result<()> {
        let resumed = round > 0;
        let marker = started_by(job);
        if let (Some(clients), false) = (&self.clients, resumed) {
            let running = ecs::tasks_started_by(clients.ecs(), &spec.cluster, &marker).await?;
            match overlap_decision(spec.overlap, &running) {
                OverlapDecision::Start => {}
                OverlapDecision::Skip(tasks) => {
                    outcome.action = RunAction::Skipped;
                    outcome.reason = format!(
                        "{} task(s) of the previous run are still running (overlap: skip); nothing started",
                        tasks.len()
                    );
                    outcome.previous_tasks = tasks;
                    return self.notify(job, spec, run_id, None, outcome).await;
                }
                OverlapDecision::Replace(tasks) => {
                    let reason = replace_reason(run_id);
                    if self.mode == Mode::Live {
                        for task in &tasks {
                            ecs::stop_task(clients.ecs(), &spec.cluster, task, &reason).await?;
                        }
                    } else {
                        outcome.notes.push(format!(
                            "dry-run: would stop {} task(s) with reason `{reason}`",
                            tasks.len()
                        ));
                    }
                    outcome.action = RunAction::Replaced;
                    outcome.previous_tasks = tasks;
                }
            }
        } else if self.clients.is_none() {
            outcome
                .notes
                .push("offline: overlap not checked (no ListTasks)".into());
        }
        let already = outcome.tasks.len().min(spec.count as usize) as u32;
        let calls = split(spec.count - already);
        if self.mode != Mode::Live {
            outcome.requests = calls
                .iter()
                .enumerate()
                .map(|(call, &count)| {
                    run_task_request(job, spec, run_id, round, call, 1, count, Placement::Primary)
                })
                .collect();
            outcome.reason = format!(
                "{}: {} RunTask call(s) not sent",
                if self.mode == Mode::Offline {
                    "offline"
                } else {
                    "dry-run"
                },
                outcome.requests.len()
            );
            return Ok(());
        }
        let clients = self.clients.as_ref().expect("live mode has clients");
        let deadline = invocation.deadline_epoch_s(CLI_BUDGET_S);
        let mut stop = Stop::Done;
        'calls: for (call, &count) in calls.iter().enumerate() {
            let mut need = count;
            let mut placement = Placement::Primary;
            let mut attempt = 0;
            loop {
                attempt += 1;
                outcome.attempts += 1;
                let request =
                    run_task_request(job, spec, run_id, round, call, attempt, need, placement);
                let result = ecs::run_task(clients.ecs(), &request).await?;
                if let Some((state, key)) = claim {
                    state.add_run_tasks(key, &result.tasks).await?;
                }
                need = need.saturating_sub(result.tasks.len() as u32);
                outcome.tasks.extend(result.tasks);
                if need == 0 {
                    break;
                }
                let failures = if result.failures.is_empty() {
                    vec![RunFailure {
                        arn: None,
                        reason: "RunTask started fewer tasks than asked and gave no failure".into(),
                        detail: None,
                    }]
                } else {
                    result.failures
                };
                let capacity_only = failures
                    .iter()
                    .all(|f| classify_failure(&f.reason) == FailureClass::Capacity);
                outcome.failures = failures;
                if !capacity_only {
                    stop = Stop::Configuration;
                    break 'calls;
                }
                let remaining_s = deadline - now_s();
                if attempt < MAX_ATTEMPTS && retry_fits(attempt + 1, remaining_s) {
                    let wait = backoff_s(attempt + 1);
                    outcome.notes.push(format!(
                        "call {call} attempt {attempt}: {} (capacity); retrying in {wait} s",
                        outcome.failures[0].reason
                    ));
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                    continue;
                }
                if placement == Placement::Primary
                    && !spec.fallback_capacity_provider_strategy.is_empty()
                    && retry_fits(2, remaining_s)
                {
                    outcome.notes.push(format!(
                        "call {call}: capacity still unavailable after {attempt} attempt(s); trying the fallback strategy"
                    ));
                    placement = Placement::Fallback;
                    attempt = 0;
                    continue;
                }
                stop = Stop::CapacityExhausted;
                break 'calls;
            }
        }
        if matches!(stop, Stop::Done) {
            outcome.failures.clear();
            outcome.reason = format!(
                "started {} of {} task(s) in {} RunTask attempt(s)",
                outcome.tasks.len(),
                spec.count,
                outcome.attempts
            );
            if outcome.action == RunAction::Replaced {
                outcome.reason.push_str(&format!(
                    "; stopped {} task(s) of the previous run",
                    outcome.previous_tasks.len()
                ));
                return self.notify(job, spec, run_id, None, outcome).await;
            }
            return Ok(());
        }
        let class = match stop {
            Stop::CapacityExhausted => FailureClass::Capacity,
            _ => FailureClass::Configuration,
        };
        outcome.action = RunAction::Failed;
        let first = outcome
            .failures
            .first()
            .map(|f| f.reason.clone())
            .unwrap_or_default();
        outcome.reason = match class {
            FailureClass::Capacity => format!(
                "capacity unavailable after {} attempt(s){}: {first}",
                outcome.attempts,
                if spec.fallback_capacity_provider_strategy.is_empty() {
                    ""
                } else {
                    " and the fallback strategy"
                }
            ),
            FailureClass::Configuration => {
                format!("RunTask failed for a configuration reason (not retried): {first}")
            }
        };
        self.notify(job, spec, run_id, Some(class), outcome).await?;
        match class {
            FailureClass::Capacity => Err(AutopilotError::CapacityUnavailable {
                job: job.to_owned(),
                started: outcome.tasks.len(),
                requested: spec.count,
                reason: first,
            }),
            // Retrying cannot help; the run is reported (critical notification) and completes.
            FailureClass::Configuration => Ok(()),
        }
    }

    async fn notify(
        &self,
        job: &str,
        spec: &JobSpec,
        run_id: &str,
        failure_class: Option<FailureClass>,
        outcome: &mut RunOutcome,
    ) -> Result<()> {
        let notice = run_notice(&RunFacts {
            job,
            cluster: &spec.cluster,
            action: outcome.action,
            requested: spec.count,
            tasks: &outcome.tasks,
            failures: &outcome.failures,
            failure_class,
            stopped: &outcome.previous_tasks,
            attempts: outcome.attempts,
            run_id,
            reason: &outcome.reason,
            region: self.region.as_deref(),
        });
        let publish = notify::render(&notice, self.https_format);
        match (self.mode, &self.clients, &self.topic_arn) {
            (Mode::Live, Some(clients), Some(topic)) => {
                let id = sns::publish(clients.sns(), topic, &publish).await?;
                tracing::info!(message_id = id, subject = publish.subject, "published");
                outcome.message_id = Some(id);
            }
            _ => outcome
                .notes
                .push(format!("not published: {}", publish.subject)),
        }
        Ok(())
    }

    /// Stops tasks of jobs with `timeout_s` that have run longer.
    async fn tick(&self) -> Result<RunnerResponse> {
        let mut stopped = Vec::new();
        let mut notes = Vec::new();
        let Some(clients) = &self.clients else {
            notes.push("offline: the tick needs ListTasks; nothing checked".into());
            return Ok(RunnerResponse::Tick {
                tick: true,
                stopped,
                notes,
            });
        };
        let now = now_s();
        for (job, spec) in &self.jobs {
            let Some(timeout) = spec.timeout_s else {
                continue;
            };
            let running =
                ecs::tasks_started_by(clients.ecs(), &spec.cluster, &started_by(job)).await?;
            if running.is_empty() {
                continue;
            }
            let tasks = ecs::task_start_times(clients.ecs(), &spec.cluster, &running).await?;
            for (task, ran_s) in timed_out(&tasks, timeout, now) {
                let live = self.mode == Mode::Live;
                if live {
                    ecs::stop_task(
                        clients.ecs(),
                        &spec.cluster,
                        &task,
                        &timeout_reason(timeout),
                    )
                    .await?;
                }
                tracing::info!(job, task, ran_s, stopped = live, "timeout");
                stopped.push(TimeoutStop {
                    job: job.clone(),
                    task,
                    ran_s,
                    stopped: live,
                });
            }
        }
        if self.jobs.values().all(|s| s.timeout_s.is_none()) {
            notes.push("no job sets timeout_s".into());
        }
        Ok(RunnerResponse::Tick {
            tick: true,
            stopped,
            notes,
        })
    }
}
