//! `batch-runner`'s tick (every minute): stops tasks over their job's `timeout_s`; starts the
//! retries whose backoff has passed and flags attempts with no task RUNNING by their start
//! deadline (both found in the sparse `due` index, one Query per job that can have them); and
//! tells a job that missed a run (`expect.every`: its latest run against the windows since).
//! A failure on one job is a note and the others go on: the next tick finds the same work.

use super::{BatchRunner, Origin, RunnerResponse, TimeoutStop};
use crate::batch::missed::{missed, Every};
use crate::batch::outcome::{RunAlerted, RunOutcome};
use crate::batch::policy::DEFAULT_GRACE_S;
use crate::batch::record::RunRecord;
use crate::batch::report::RunAlert;
use crate::batch::{started_by, timed_out, timeout_reason, JobSpec};
use crate::entry::Invocation;
use crate::error::Result;
use crate::events::schedule::JobRequest;
use crate::keys::{expect_key, record_key};
use crate::ports::Scope;

/// How a never-started attempt's tasks are stopped.
fn never_started_reason(deadline_s: u64) -> String {
    format!("batch-runner: not RUNNING within the start deadline of {deadline_s} s")
}

impl BatchRunner {
    pub(super) async fn tick(&self, invocation: &Invocation) -> Result<RunnerResponse> {
        let (mut stopped, mut notes) = (Vec::new(), Vec::new());
        let (mut retried, mut alerted) = (Vec::new(), Vec::new());
        if self.backend.ports().is_none() {
            notes.push(
                "offline: the tick needs ListTasks and the run records; nothing checked".into(),
            );
        }
        for (job, spec) in &self.jobs {
            let work = async {
                self.stop_timed_out(job, spec, &mut stopped).await?;
                self.due_runs(
                    job,
                    spec,
                    invocation,
                    &mut retried,
                    &mut alerted,
                    &mut notes,
                )
                .await?;
                self.missed_runs(job, spec, invocation, &mut alerted, &mut notes)
                    .await
            };
            if let Err(error) = work.await {
                tracing::warn!(job, "tick: {error}");
                notes.push(format!("{job}: {error} (the next tick tries again)"));
            }
        }
        if self.jobs.values().all(|s| s.timeout_s.is_none()) {
            notes.push("no job sets timeout_s".into());
        }
        Ok(RunnerResponse::Tick {
            tick: true,
            stopped,
            retried,
            alerted,
            notes,
        })
    }

    /// Stops the job's tasks that have run longer than its `timeout_s`.
    async fn stop_timed_out(
        &self,
        job: &str,
        spec: &JobSpec,
        stopped: &mut Vec<TimeoutStop>,
    ) -> Result<()> {
        let (Some(timeout), Some(ports)) = (spec.timeout_s, self.backend.ports()) else {
            return Ok(());
        };
        let scope = Scope::of_arn(&spec.cluster);
        let ports = &ports.in_scope(scope.as_ref()).await;
        let running = ports
            .task_list
            .tasks_started_by(&spec.cluster, &started_by(job))
            .await?;
        if running.is_empty() {
            return Ok(());
        }
        let tasks = ports
            .task_list
            .task_start_times(&spec.cluster, &running)
            .await?;
        let writers = match self.backend.writers() {
            Some(writers) => Some(writers.in_scope(scope.as_ref()).await),
            None => None,
        };
        for (task, ran_s) in timed_out(&tasks, timeout, self.clock.now_s()) {
            if let Some(writers) = &writers {
                writers
                    .tasks
                    .stop_task(&spec.cluster, &task, &timeout_reason(timeout))
                    .await?;
            }
            let live = writers.is_some();
            tracing::info!(job, task, ran_s, stopped = live, "timeout");
            stopped.push(TimeoutStop {
                job: job.to_owned(),
                task,
                ran_s,
                stopped: live,
            });
        }
        Ok(())
    }

    /// Starts the job's retries that are due and ends attempts past their start deadline.
    async fn due_runs(
        &self,
        job: &str,
        spec: &JobSpec,
        invocation: &Invocation,
        retried: &mut Vec<RunOutcome>,
        alerted: &mut Vec<RunAlerted>,
        notes: &mut Vec<String>,
    ) -> Result<()> {
        let deadline = spec.expect.as_ref().and_then(|e| e.start_deadline_s);
        let retries = spec.retry.as_ref().is_some_and(|r| r.attempts > 0);
        let Some(reader) = self
            .backend
            .state()
            .filter(|_| retries || deadline.is_some())
        else {
            return Ok(());
        };
        let now = self.clock.now_s();
        for (record, _) in reader.runs_due(job, now).await? {
            if record.retry_due(now) {
                let attempt = record.attempts.len() as u32 + 1;
                if self.backend.live_state().is_none() {
                    notes.push(format!(
                        "{job}: attempt {attempt} of {} is due (not started: dry run)",
                        record.run_id
                    ));
                    continue;
                }
                let request = JobRequest {
                    job: job.to_owned(),
                    scheduled_time: Some(record.run_id.clone()),
                    scheduled_at: Some(record.scheduled_at),
                    parameters: record.parameters.clone(),
                };
                retried.push(
                    self.run(&request, invocation, Origin::Retry(attempt))
                        .await?,
                );
            } else if let Some(deadline_s) = deadline {
                if let Some(alert) = self
                    .never_started(&record, spec, deadline_s, invocation, notes)
                    .await?
                {
                    alerted.push(alert);
                }
            }
        }
        Ok(())
    }

    /// Ends the run whose current attempt has no task RUNNING past the deadline: stops its
    /// tasks (so they do not start late), tells it, and fails the jobs after it.
    async fn never_started(
        &self,
        record: &RunRecord,
        spec: &JobSpec,
        deadline_s: u64,
        invocation: &Invocation,
        notes: &mut Vec<String>,
    ) -> Result<Option<RunAlerted>> {
        let (job, now) = (record.job.as_str(), self.clock.now_s());
        let key = record_key(job, &record.run_id);
        let Some(state) = self.backend.live_state() else {
            notes.push(format!(
                "{job}: run {} has no task RUNNING after {deadline_s} s (dry run: not ended)",
                record.run_id
            ));
            return Ok(None);
        };
        let stored = self
            .change_record(
                state,
                &key,
                spec,
                || None,
                |r| r.with_start_deadline(deadline_s, now),
            )
            .await?;
        let Some((record, true)) = stored else {
            return Ok(None);
        };
        if let (Some(writers), Some(attempt)) = (self.backend.writers(), record.current()) {
            let writers = writers
                .in_scope(Scope::of_arn(&spec.cluster).as_ref())
                .await;
            for task in &attempt.tasks {
                writers
                    .tasks
                    .stop_task(&spec.cluster, task, &never_started_reason(deadline_s))
                    .await?;
            }
        }
        let name = format!("batch#alert#never-started#{job}#{}", record.run_id);
        let alert = RunAlert::NeverStarted { deadline_s };
        let told = self
            .alert(job, spec, Some(&record.run_id), alert, &name, invocation)
            .await?;
        // The jobs after it will not run for this time: say so now, not when its tasks stop.
        let downstream = self
            .fail_dependents(&record, record.outcome, invocation)
            .await?;
        notes.extend(
            downstream
                .iter()
                .map(|a| format!("{}: upstream-failed ({})", a.job, a.reason)),
        );
        Ok(Some(told))
    }

    /// Tells a job's missed run once per window (`expect.every`).
    async fn missed_runs(
        &self,
        job: &str,
        spec: &JobSpec,
        invocation: &Invocation,
        alerted: &mut Vec<RunAlerted>,
        notes: &mut Vec<String>,
    ) -> Result<()> {
        let Some(expect) = &spec.expect else {
            return Ok(());
        };
        let Some(every_text) = &expect.every else {
            return Ok(());
        };
        let Some(reader) = self.backend.state() else {
            return Ok(());
        };
        let every = Every::parse(every_text, expect.timezone.as_deref()).map_err(|problem| {
            crate::error::AutopilotError::invalid_config(
                format!("jobs.{job}.expect.every"),
                problem,
            )
        })?;
        let now = self.clock.now_s();
        let since = match self.backend.live_state() {
            Some(state) => {
                let expires = now + i64::from(spec.history_days) * 86_400;
                state.watch_since(&expect_key(job), now, expires).await?
            }
            None => {
                notes.push(format!("{job}: dry run: missed runs counted from now"));
                now
            }
        };
        let latest = reader.runs_of(job, 0, 1).await?;
        let last_run = latest.first().map(|r| r.scheduled_at);
        let grace = expect.grace_s.unwrap_or(DEFAULT_GRACE_S) as i64;
        let Some(gap) = missed(&every, grace, last_run, since, now) else {
            return Ok(());
        };
        let name = format!("batch#alert#missed#{job}#{}", gap.due_at);
        let alert = RunAlert::Missed {
            every: every_text,
            missed: &gap,
        };
        alerted.push(
            self.alert(job, spec, None, alert, &name, invocation)
                .await?,
        );
        Ok(())
    }
}
