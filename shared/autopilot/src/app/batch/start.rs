//! Starting a claimed run: the overlap guard (skip, or stop the previous run to replace it),
//! then the RunTask calls the pure [`RunStepper`] asks for, each call's started tasks recorded on
//! the run's claim and in its record (pointed at it) before the next, and the report of how it
//! ended.

use std::time::Duration;

use super::{BatchRunner, Run};
use crate::batch::report::{failed_reason, skipped_reason, started_reason, RunAction};
use crate::batch::stepper::{RunStep, RunStepper};
use crate::batch::{overlap_decision, replace_reason, started_by, FailureClass, OverlapDecision};
use crate::entry::Invocation;
use crate::error::{AutopilotError, Result};
use crate::ports::Scope;

use super::RunOutcome;

/// Time budget outside Lambda (CLI), in seconds.
const CLI_BUDGET_S: u64 = 120;

impl BatchRunner {
    /// The overlap guard, then the RunTask calls (live) or their plan (dry-run, offline).
    pub(super) async fn start(
        &self,
        run: Run<'_>,
        invocation: &Invocation,
        outcome: &mut RunOutcome,
    ) -> Result<()> {
        // A retry belongs to its run, whose tasks have all stopped: no overlap to guard.
        if run.round == 0 && run.attempt == 1 && !self.guard_overlap(run, outcome).await? {
            return self.notify(run, None, outcome).await;
        }
        let deadline = invocation.deadline_epoch_s(self.clock.now_s(), CLI_BUDGET_S);
        let started = std::mem::take(&mut outcome.tasks);
        let mut stepper =
            RunStepper::new(run.job, run.spec, run.run_id, run.round, started, deadline);
        let Some(writers) = self.backend.writers() else {
            outcome.requests = stepper.planned_requests();
            outcome.tasks = stepper.tasks;
            let calls = outcome.requests.len();
            outcome.reason = format!(
                "{}: {calls} RunTask call(s) not sent",
                self.backend.mode().label()
            );
            return Ok(());
        };
        let writers = &writers
            .in_scope(Scope::of_arn(&run.spec.cluster).as_ref())
            .await;
        let end = loop {
            match stepper.next_step() {
                RunStep::Call(request) => {
                    let result = writers.tasks.run_task(&request).await?;
                    if let Some((store, key)) = run.claimed {
                        store.add_run_tasks(key, &result.tasks).await?;
                    }
                    self.note_tasks(run, &result.tasks).await?;
                    stepper.record(result, self.clock.now_s());
                }
                RunStep::Wait(seconds) => self.clock.sleep(Duration::from_secs(seconds)).await,
                RunStep::Done(end) => break end,
            }
        };
        (outcome.tasks, outcome.failures, outcome.attempts) =
            (stepper.tasks, stepper.failures, stepper.attempts);
        outcome.notes.extend(stepper.notes);
        let spec = run.spec;
        let Some(class) = end.failure_class() else {
            let replaced =
                (outcome.action == RunAction::Replaced).then_some(outcome.previous_tasks.len());
            outcome.reason =
                started_reason(outcome.tasks.len(), spec.count, outcome.attempts, replaced);
            return match replaced {
                Some(_) => self.notify(run, None, outcome).await,
                None => Ok(()),
            };
        };
        outcome.action = RunAction::Failed;
        let first = outcome
            .failures
            .first()
            .map(|f| f.reason.clone())
            .unwrap_or_default();
        let with_fallback = !spec.fallback_capacity_provider_strategy.is_empty();
        outcome.reason = failed_reason(class, outcome.attempts, with_fallback, &first);
        self.notify(run, Some(class), outcome).await?;
        match class {
            FailureClass::Capacity => Err(AutopilotError::CapacityUnavailable {
                job: run.job.to_owned(),
                started: outcome.tasks.len(),
                requested: spec.count,
                reason: first,
            }),
            // Retrying cannot help; the run is reported (critical notification) and completes.
            FailureClass::Configuration => Ok(()),
        }
    }

    /// Adds started tasks to the run's record and points them at it, so that their Task State
    /// Changes find their run.
    async fn note_tasks(&self, run: Run<'_>, tasks: &[String]) -> Result<()> {
        let Some((state, key)) = run.record.filter(|_| !tasks.is_empty()) else {
            return Ok(());
        };
        let now = self.clock.now_s();
        let stored = self
            .change_record(
                state,
                key,
                run.spec,
                || None,
                |record| record.add_tasks(tasks),
            )
            .await?;
        let expires_at = stored.map_or(now, |(record, _)| {
            record.expires_at(run.spec.history_days, now)
        });
        state.point_tasks(key, tasks, expires_at).await
    }

    /// Looks for the previous run's tasks: false when the run is skipped. A replaced run's
    /// tasks are stopped (live) before anything starts.
    async fn guard_overlap(&self, run: Run<'_>, outcome: &mut RunOutcome) -> Result<bool> {
        let Some(ports) = self.backend.ports() else {
            outcome
                .notes
                .push("offline: overlap not checked (no ListTasks)".into());
            return Ok(true);
        };
        let cluster = &run.spec.cluster;
        let ports = &ports.in_scope(Scope::of_arn(cluster).as_ref()).await;
        let running = ports
            .task_list
            .tasks_started_by(cluster, &started_by(run.job))
            .await?;
        match overlap_decision(run.spec.overlap, &running) {
            OverlapDecision::Start => {}
            OverlapDecision::Skip(tasks) => {
                outcome.action = RunAction::Skipped;
                outcome.reason = skipped_reason(tasks.len());
                outcome.previous_tasks = tasks;
                return Ok(false);
            }
            OverlapDecision::Replace(tasks) => {
                let reason = replace_reason(run.run_id);
                if let Some(writers) = self.backend.writers() {
                    let writers = writers.in_scope(Scope::of_arn(cluster).as_ref()).await;
                    for task in &tasks {
                        writers.tasks.stop_task(cluster, task, &reason).await?;
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
        Ok(true)
    }
}
