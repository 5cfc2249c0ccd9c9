//! The `batch-runner` handler: job request → claim the run (once per scheduled time) → start
//! its tasks ([`start`]: overlap guard, then the RunTask calls the pure stepper asks for) →
//! report. The tick stops tasks over their job's `timeout_s`. No invocation waits for a task:
//! `task-triage` reports completions.

mod start;

use std::sync::Arc;

use super::claim::HeldClaim;
use super::claim::{self, Taken};
use super::publish::{Courier, Occasion};
use super::{Backend, Setup};
use crate::batch::report::{duplicate_reason, run_notice, RunAction, RunFacts};
use crate::batch::{
    catalog, run_id, started_by, timed_out, timeout_reason, FailureClass, JobCatalog, JobSpec,
    RUN_TTL_S,
};
use crate::entry::{Invocation, Mode};
use crate::error::Result;
use crate::events::schedule::{parse_runner_event, JobRequest, RunnerEvent};
use crate::events::InboundEvent;
use crate::keys::run_key;
use crate::ports::{Clock, RunWriter, Scope};
use crate::trust::Accounts;

pub use crate::batch::outcome::{RunOutcome, RunnerResponse, TimeoutStop};

/// The function, built once per cold start.
#[derive(Debug)]
pub struct BatchRunner {
    backend: Backend,
    clock: Arc<dyn Clock>,
    jobs: JobCatalog,
    /// Routes and delivers its notices.
    courier: Courier,
    region: Option<String>,
    /// The stack's account and its members: a tick of any other is ignored.
    accounts: Accounts,
}

/// One run of a job.
#[derive(Clone, Copy)]
struct Run<'a> {
    job: &'a str,
    spec: &'a JobSpec,
    run_id: &'a str,
    /// How often this run was resumed after a failed invocation.
    round: u32,
    /// Where the run's started tasks are recorded (a claimed run).
    record: Option<(&'a dyn RunWriter, &'a str)>,
    /// The claim its report is delivered under.
    held: Option<&'a HeldClaim<'a>>,
    /// Its scheduled time (else when it was asked for), epoch s: routing windows hold it.
    at: i64,
    /// The invocation's deadline, epoch s.
    deadline_s: i64,
}

impl BatchRunner {
    pub fn new(setup: Setup) -> Self {
        Self {
            backend: setup.backend,
            clock: setup.clock,
            jobs: setup.config.jobs,
            courier: setup.courier,
            region: setup.region,
            accounts: setup.accounts,
        }
    }

    /// Handles one event: a job request or the tick.
    pub async fn handle(
        &self,
        event: InboundEvent,
        invocation: Invocation,
    ) -> Result<RunnerResponse> {
        match parse_runner_event(&event.to_value()?)? {
            RunnerEvent::Run(request) => {
                let outcome = self.run(&request, &invocation).await?;
                Ok(RunnerResponse::Run(Box::new(outcome)))
            }
            RunnerEvent::Tick { account } => {
                if let Err(foreign) = self.accounts.check([("account", account.as_deref())]) {
                    tracing::warn!(
                        account = foreign.account,
                        "ignored: a tick of an account that is not the stack's or a member's"
                    );
                    return Ok(RunnerResponse::Ignored {
                        action: "ignored",
                        reason: foreign.reason(),
                        foreign,
                    });
                }
                self.tick().await
            }
        }
    }

    /// Claims the run, starts it, and completes or releases the claim.
    async fn run(&self, request: &JobRequest, invocation: &Invocation) -> Result<RunOutcome> {
        let (job, now) = (request.job.as_str(), self.clock.now_s());
        let spec = catalog::job(&self.jobs, job)?;
        let run_id = run_id(
            request.scheduled_time.as_deref(),
            invocation.request_id.as_deref(),
            now,
        );
        let mut outcome = RunOutcome::new(job, &run_id, spec);
        let key = run_key(job, &run_id);
        let mut run = Run {
            job,
            spec,
            run_id: &run_id,
            round: 0,
            record: None,
            held: None,
            at: request.scheduled_at.unwrap_or(now),
            deadline_s: invocation.deadline_epoch_s(now, crate::state::CLI_LEASE_S),
        };
        let held = match self.backend.live_state() {
            Some(state) => {
                match claim::take(state, key.clone(), now, invocation, RUN_TTL_S).await? {
                    Taken::Duplicate { decision, .. } => {
                        outcome.action = RunAction::Skipped;
                        outcome.reason = duplicate_reason(&run_id, decision.as_deref());
                        outcome.duplicate = true;
                        tracing::info!(job, run_id, "duplicate run request");
                        return Ok(outcome);
                    }
                    Taken::Fresh(held) => {
                        run.record = Some((state, &key));
                        Some(held)
                    }
                    Taken::Resumed(held) => {
                        (run.round, outcome.tasks) = state.resume_run(&key).await?;
                        let (round, started) = (run.round, outcome.tasks.len());
                        outcome.notes.push(format!("resumed after a failed invocation (round {round}); {started} tasks were already started"));
                        run.record = Some((state, &key));
                        Some(held)
                    }
                }
            }
            None if self.backend.mode() == Mode::Live => {
                outcome.notes.push("no STATE_TABLE: duplicates are caught by client tokens and the overlap guard only".into());
                None
            }
            None => None,
        };
        let run = Run {
            held: held.as_ref(),
            ..run
        };
        let result = self.start(run, invocation, &mut outcome).await;
        if let Some(held) = held {
            outcome
                .notes
                .extend(held.settle(&result, outcome.action.as_str(), None).await);
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

    async fn notify(
        &self,
        run: Run<'_>,
        failure_class: Option<FailureClass>,
        outcome: &mut RunOutcome,
    ) -> Result<()> {
        let notice = run_notice(&RunFacts {
            job: run.job,
            cluster: &run.spec.cluster,
            action: outcome.action,
            requested: run.spec.count,
            tasks: &outcome.tasks,
            failures: &outcome.failures,
            failure_class,
            stopped: &outcome.previous_tasks,
            attempts: outcome.attempts,
            run_id: run.run_id,
            reason: &outcome.reason,
            region: self.region.as_deref(),
        });
        let occasion = Occasion {
            at: run.at,
            tagged: None,
            known_tags: Some(&run.spec.tags),
            deadline_s: run.deadline_s,
        };
        let notes = &mut outcome.notes;
        let delivered = self
            .courier
            .deliver(&self.backend, &notice, occasion, run.held, notes)
            .await?;
        outcome.message_id = delivered.message_id;
        outcome.route = Some(delivered.routed);
        Ok(())
    }

    /// Stops tasks of jobs with `timeout_s` that have run longer.
    async fn tick(&self) -> Result<RunnerResponse> {
        let (mut stopped, mut notes) = (Vec::new(), Vec::new());
        let Some(ports) = self.backend.ports() else {
            notes.push("offline: the tick needs ListTasks; nothing checked".into());
            return Ok(RunnerResponse::Tick {
                tick: true,
                stopped,
                notes,
            });
        };
        let now = self.clock.now_s();
        for (job, spec) in &self.jobs {
            let Some(timeout) = spec.timeout_s else {
                continue;
            };
            let scope = Scope::of_arn(&spec.cluster);
            let ports = &ports.in_scope(scope.as_ref()).await;
            let running = ports
                .task_list
                .tasks_started_by(&spec.cluster, &started_by(job))
                .await?;
            if running.is_empty() {
                continue;
            }
            let tasks = ports
                .task_list
                .task_start_times(&spec.cluster, &running)
                .await?;
            let writers = match self.backend.writers() {
                Some(writers) => Some(writers.in_scope(scope.as_ref()).await),
                None => None,
            };
            for (task, ran_s) in timed_out(&tasks, timeout, now) {
                if let Some(writers) = &writers {
                    writers
                        .tasks
                        .stop_task(&spec.cluster, &task, &timeout_reason(timeout))
                        .await?;
                }
                let live = writers.is_some();
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
