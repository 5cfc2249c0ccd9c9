//! The `batch-runner` handler: job request → claim the run (once per scheduled time) → record
//! it → start its tasks ([`start`]: overlap guard, then the RunTask calls the pure stepper asks
//! for) → report. The Task State Changes of the tasks it started ([`follow`]) close the run's
//! attempts in its record, start the jobs that run after it, or mark them upstream-failed. The
//! tick ([`tick`]) starts retries that are due, flags runs that never started and jobs that
//! missed a run, and stops tasks over their job's `timeout_s`. No invocation waits for a task.

pub mod commands;
mod follow;
mod records;
mod start;
mod tick;

use std::sync::Arc;

use super::claim::HeldClaim;
use super::claim::{self, Taken};
use super::publish::{Courier, Occasion};
use super::{Backend, Setup};
use crate::batch::history::{rows, HistoryRow};
use crate::batch::policy::resolve_parameters;
use crate::batch::record::{Outcome, RunRecord};
use crate::batch::report::{duplicate_reason, run_notice, RunAction, RunFacts};
use crate::batch::{catalog, run_id, FailureClass, JobCatalog, JobSpec, RUN_TTL_S};
use crate::entry::{Invocation, Mode};
use crate::error::{AutopilotError, Result};
use crate::events::schedule::{parse_runner_event, JobRequest, RunnerEvent};
use crate::events::InboundEvent;
use crate::keys::{attempt_key, record_key};
use crate::ports::{Clock, RunWriter, StateStore};
use crate::trust::Accounts;

pub use crate::batch::outcome::{RunOutcome, RunnerResponse, TaskFollowed, TimeoutStop};

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

/// What asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// A schedule's event (a job with `after` has none and is refused).
    Schedule,
    /// `batch-runner run`: a run by hand or a backfill.
    ByHand,
    /// The success of the last of its `after` jobs, named.
    After(&'a str),
    /// The tick: attempt `n` (2 …) of a run whose retry is due.
    Retry(u32),
}

/// One run of a job.
#[derive(Clone, Copy)]
struct Run<'a> {
    job: &'a str,
    /// The job with the run's parameters in its overrides.
    spec: &'a JobSpec,
    /// The run's identity in RunTask's tokens and its notices (`<run>#a<n>` for a retry).
    run_id: &'a str,
    /// 1 for the first attempt, 2 … for retries.
    attempt: u32,
    /// How often this run was resumed after a failed invocation.
    round: u32,
    /// Where the run's started tasks are recorded on its claim (a claimed run).
    claimed: Option<(&'a dyn RunWriter, &'a str)>,
    /// The run's record (live, with a state table).
    record: Option<(&'a dyn StateStore, &'a str)>,
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
                let outcome = self.run(&request, &invocation, Origin::Schedule).await?;
                Ok(RunnerResponse::Run(Box::new(outcome)))
            }
            RunnerEvent::Task(change) => self.follow(&change, &invocation).await,
            RunnerEvent::Tick { account } => {
                match self.foreign([("account", account.as_deref())], "a tick") {
                    Some(ignored) => Ok(ignored),
                    None => self.tick(&invocation).await,
                }
            }
        }
    }

    /// The answer to an event of an account that is not the stack's or a member's (`what`:
    /// "a tick", "a task"): nothing run, stopped or recorded.
    fn foreign<'a>(
        &self,
        named: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
        what: &str,
    ) -> Option<RunnerResponse> {
        let foreign = self.accounts.check(named).err()?;
        tracing::warn!(
            account = foreign.account,
            "ignored: {what} of an account that is not the stack's or a member's"
        );
        Some(RunnerResponse::Ignored {
            action: "ignored",
            reason: foreign.reason(),
            foreign,
        })
    }

    /// `batch-runner run JOB`: a run started by hand exactly as a schedule would start it
    /// (same claim, tokens, overlap guard and record), a dependent job included.
    pub async fn run_by_hand(
        &self,
        request: &JobRequest,
        invocation: &Invocation,
    ) -> Result<RunnerResponse> {
        let outcome = self.run(request, invocation, Origin::ByHand).await?;
        Ok(RunnerResponse::Run(Box::new(outcome)))
    }

    /// `batch-runner history`: the recorded runs of `job` (every job when none) scheduled at
    /// or after `since`, newest first.
    pub async fn history(&self, job: Option<&str>, since: i64) -> Result<Vec<HistoryRow>> {
        let Some(state) = self.backend.state() else {
            return Err(AutopilotError::Usage(
                "history reads the state table: run it without --offline, with STATE_TABLE set"
                    .into(),
            ));
        };
        let jobs: Vec<&str> = match job {
            Some(job) => vec![catalog::job(&self.jobs, job).map(|_| job)?],
            None => self.jobs.keys().map(String::as_str).collect(),
        };
        let mut records = Vec::new();
        for job in jobs {
            records.extend(state.runs_of(job, since, HISTORY_LIMIT).await?);
        }
        Ok(rows(&records, self.clock.now_s()))
    }

    /// Claims the run (or its retry), records it, starts it, and completes or releases the
    /// claim.
    async fn run(
        &self,
        request: &JobRequest,
        invocation: &Invocation,
        origin: Origin<'_>,
    ) -> Result<RunOutcome> {
        let (job, now) = (request.job.as_str(), self.clock.now_s());
        let declared = catalog::job(&self.jobs, job)?;
        if origin == Origin::Schedule && !declared.after.is_empty() {
            return Err(AutopilotError::invalid_event(
                "job",
                format!(
                    "job {job} runs after {}: it has no schedule of its own (remove the schedule; it starts when they succeed)",
                    declared.after.join(", ")
                ),
            ));
        }
        let scheduled_at = request.scheduled_at.unwrap_or(now);
        let values = resolve_parameters(declared, &request.parameters, scheduled_at)?;
        let spec = &declared.with_parameters(&values);
        let run_id = run_id(
            request.scheduled_time.as_deref(),
            invocation.request_id.as_deref(),
            now,
        );
        let attempt = match origin {
            Origin::Retry(n) => n,
            _ => 1,
        };
        let token_id = match attempt {
            1 => run_id.clone(),
            n => format!("{run_id}#a{n}"),
        };
        let mut outcome = RunOutcome::new(job, &token_id, spec);
        if let Origin::After(upstream) = origin {
            outcome
                .notes
                .push(format!("started by the success of {upstream}"));
        }
        let key = attempt_key(job, &run_id, attempt);
        let rkey = record_key(job, &run_id);
        let mut run = Run {
            job,
            spec,
            run_id: &token_id,
            attempt,
            round: 0,
            claimed: None,
            record: None,
            held: None,
            at: scheduled_at,
            deadline_s: invocation.deadline_epoch_s(now, crate::state::CLI_LEASE_S),
        };
        let held = match self.backend.live_state() {
            Some(state) => {
                match claim::take(state, key.clone(), now, invocation, RUN_TTL_S).await? {
                    Taken::Duplicate { decision, .. } => {
                        outcome.action = RunAction::Skipped;
                        outcome.reason = duplicate_reason(&token_id, decision.as_deref());
                        outcome.duplicate = true;
                        tracing::info!(job, run_id = token_id, "duplicate run request");
                        return Ok(outcome);
                    }
                    Taken::Fresh(held) => {
                        let first = || {
                            let mut record =
                                RunRecord::new(job, &run_id, scheduled_at, spec.count, now);
                            record.parameters = values.clone();
                            record.by_hand = origin == Origin::ByHand;
                            Some(record)
                        };
                        self.change_record(state, &rkey, spec, first, |record| {
                            attempt > 1 && record.attempts.len() < attempt as usize && {
                                record.begin_retry(now);
                                true
                            }
                        })
                        .await?;
                        run.claimed = Some((state, &key));
                        run.record = Some((state, &rkey));
                        Some(held)
                    }
                    Taken::Resumed(held) => {
                        (run.round, outcome.tasks) = state.resume_run(&key).await?;
                        let (round, started) = (run.round, outcome.tasks.len());
                        outcome.notes.push(format!("resumed after a failed invocation (round {round}); {started} tasks were already started"));
                        run.claimed = Some((state, &key));
                        run.record = Some((state, &rkey));
                        Some(held)
                    }
                }
            }
            None if self.backend.mode() == Mode::Live => {
                outcome.notes.push("no STATE_TABLE: duplicates are caught by client tokens and the overlap guard only; no run record".into());
                None
            }
            None => None,
        };
        let run = Run {
            held: held.as_ref(),
            ..run
        };
        let mut result = self.start(run, invocation, &mut outcome).await;
        if result.is_ok() {
            result = self.end_record(run, &mut outcome, invocation).await;
        } else if let (Some((state, key)), true) = (run.record, attempt > 1) {
            // The tick has no retries of its own: the record asks the next tick to try again.
            let again = self.clock.now_s() + RETRY_START_AGAIN_S;
            let later = self
                .change_record(state, key, spec, || None, |r| r.retry_later(again))
                .await;
            if let Err(error) = later {
                outcome
                    .notes
                    .push(format!("could not put the retry off: {error}"));
            }
        }
        if let Some(held) = held {
            outcome
                .notes
                .extend(held.settle(&result, outcome.action.as_str(), None).await);
        }
        tracing::info!(
            job,
            run_id = token_id,
            action = outcome.action.as_str(),
            tasks = outcome.tasks.len(),
            requested = outcome.requested,
            attempts = outcome.attempts,
            "outcome"
        );
        result.map(|()| outcome)
    }

    /// Ends the run's record when it will have no tasks: skipped, or failed to start for a
    /// reason a retry cannot cure (then the jobs after it are upstream-failed).
    async fn end_record(
        &self,
        run: Run<'_>,
        outcome: &mut RunOutcome,
        invocation: &Invocation,
    ) -> Result<()> {
        let Some((state, key)) = run.record else {
            return Ok(());
        };
        let ended = match outcome.action {
            RunAction::Skipped => Outcome::Skipped,
            RunAction::Failed => Outcome::Failed,
            RunAction::Started | RunAction::Replaced => return Ok(()),
        };
        let (now, reason) = (self.clock.now_s(), outcome.reason.clone());
        let stored = self
            .change_record(
                state,
                key,
                run.spec,
                || None,
                |record| {
                    record.outcome == Outcome::Running && {
                        record.end_with(ended, reason.clone(), now);
                        true
                    }
                },
            )
            .await?;
        if let Some((record, _)) = stored.filter(|_| ended == Outcome::Failed) {
            for alerted in self.fail_dependents(&record, ended, invocation).await? {
                outcome.notes.push(format!(
                    "{}: upstream-failed ({})",
                    alerted.job, alerted.reason
                ));
            }
        }
        Ok(())
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
}

/// How long a retry whose RunTask failed waits before the tick tries it again.
const RETRY_START_AGAIN_S: i64 = 60;

/// Runs of one job a history lists, at most.
const HISTORY_LIMIT: usize = 1000;
