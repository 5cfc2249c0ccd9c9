//! Following the tasks `batch-runner` started: each Task State Change (RUNNING, STOPPED) is
//! folded into its run's record (found through the task's pointer). A run that ends succeeded
//! starts the jobs that run after it once all their upstreams succeeded for the same scheduled
//! time; one that fails for good makes them `upstream-failed`, told once. Both are safe to
//! repeat: a redelivered event finds the dependents' claims and alerts already taken.

use super::{BatchRunner, Origin, RunnerResponse, TaskFollowed};
use crate::batch::outcome::RunAlerted;
use crate::batch::policy::dependents;
use crate::batch::record::{Outcome, RunRecord, TaskStop};
use crate::batch::report::{alert_notice, RunAlert};
use crate::batch::{job_of_started_by, JobSpec};
use crate::entry::Invocation;
use crate::error::{AutopilotError, Result};
use crate::events::ecs::{accounts_named, TaskStateChange};
use crate::events::schedule::JobRequest;
use crate::keys::{claim_key, record_key};
use crate::triage::classify;

impl BatchRunner {
    /// Folds a task's state change into its run's record, then acts on how the run ended.
    pub(super) async fn follow(
        &self,
        change: &TaskStateChange,
        invocation: &Invocation,
    ) -> Result<RunnerResponse> {
        if let Some(ignored) = self.foreign(accounts_named(change), "a task") {
            return Ok(ignored);
        }
        let detail = &change.detail;
        let task = detail
            .task_arn
            .as_ref()
            .map(ToString::to_string)
            .ok_or_else(|| AutopilotError::invalid_event("detail.taskArn", "missing"))?;
        let status = detail.last_status.clone().unwrap_or_default();
        let job = detail
            .started_by
            .as_deref()
            .and_then(|marker| job_of_started_by(marker, &self.jobs))
            .unwrap_or_default()
            .to_owned();
        let mut followed = TaskFollowed {
            job: job.clone(),
            task: task.clone(),
            status: status.clone(),
            run: None,
            outcome: None,
            verdict: None,
            started: Vec::new(),
            upstream_failed: Vec::new(),
            notes: Vec::new(),
        };
        let Some(spec) = self.jobs.get(&job) else {
            followed
                .notes
                .push("not a task of a catalog job: nothing recorded".into());
            return Ok(RunnerResponse::Task(Box::new(followed)));
        };
        let Some(reader) = self.backend.state() else {
            followed
                .notes
                .push("offline: run records are not read".into());
            return Ok(RunnerResponse::Task(Box::new(followed)));
        };
        let Some(key) = reader.record_of_task(&task).await? else {
            followed.notes.push(
                "no run record points at this task (started before run records, or without a state table)".into(),
            );
            return Ok(RunnerResponse::Task(Box::new(followed)));
        };
        let now = self.clock.now_s();
        let at = change.time.map_or(now, |t| t.timestamp());
        let retry = spec.retry.as_ref();
        let fold = |record: &mut RunRecord| match status.as_str() {
            "RUNNING" => record.with_running(&task, at),
            "STOPPED" => {
                let diagnosis = classify(detail);
                TaskStop::of(detail, &diagnosis, at)
                    .is_some_and(|stop| record.with_stop(stop, retry))
            }
            _ => false,
        };
        let record = match self.backend.live_state() {
            Some(state) => self
                .change_record(state, &key, spec, || None, fold)
                .await?
                .map(|(record, _)| record),
            None => reader.read_record(&key).await?.map(|(mut record, _)| {
                fold(&mut record);
                record
            }),
        };
        let Some(record) = record else {
            followed.notes.push(format!("the record {key} has expired"));
            return Ok(RunnerResponse::Task(Box::new(followed)));
        };
        followed.run = Some(record.run_id.clone());
        followed.outcome = Some(record.outcome);
        followed.verdict = Some(record.verdict(retry));
        tracing::info!(
            job,
            run = record.run_id,
            status,
            outcome = record.outcome.as_str(),
            "task followed"
        );
        match record.outcome {
            Outcome::Succeeded => {
                followed.started = self
                    .start_dependents(&record, invocation, &mut followed.notes)
                    .await?;
            }
            Outcome::Running => {}
            ended => {
                followed.upstream_failed = self.fail_dependents(&record, ended, invocation).await?;
            }
        }
        Ok(RunnerResponse::Task(Box::new(followed)))
    }

    /// Starts each job that runs after `record`'s job once every job in its `after` has a
    /// succeeded run for the same scheduled time (its claim makes a second start a duplicate).
    async fn start_dependents(
        &self,
        record: &RunRecord,
        invocation: &Invocation,
        notes: &mut Vec<String>,
    ) -> Result<Vec<super::RunOutcome>> {
        let mut started = Vec::new();
        let Some(reader) = self.backend.state() else {
            return Ok(started);
        };
        'dependents: for dependent in dependents(&self.jobs, &record.job) {
            let spec = &self.jobs[dependent];
            for upstream in spec.after.iter().filter(|u| **u != record.job) {
                let key = record_key(upstream, &record.run_id);
                let outcome = reader.read_record(&key).await?.map(|(r, _)| r.outcome);
                if outcome != Some(Outcome::Succeeded) {
                    let state = outcome.map_or("no run yet", Outcome::as_str);
                    notes.push(format!(
                        "{dependent} waits for {upstream} ({state}) for {}",
                        record.run_id
                    ));
                    continue 'dependents;
                }
            }
            let request = JobRequest {
                job: dependent.to_owned(),
                scheduled_time: Some(record.run_id.clone()),
                scheduled_at: Some(record.scheduled_at),
                parameters: shared_parameters(record, spec),
            };
            started.push(
                self.run(&request, invocation, Origin::After(&record.job))
                    .await?,
            );
        }
        Ok(started)
    }

    /// Marks every job downstream of `record`'s job `upstream-failed` for the same scheduled
    /// time (unless it already has a run) and tells each once.
    pub(super) async fn fail_dependents(
        &self,
        record: &RunRecord,
        ended: Outcome,
        invocation: &Invocation,
    ) -> Result<Vec<RunAlerted>> {
        let mut alerted = Vec::new();
        let now = self.clock.now_s();
        let mut queue: std::collections::VecDeque<(String, String, Outcome)> =
            dependents(&self.jobs, &record.job)
                .into_iter()
                .map(|d| (d.to_owned(), record.job.clone(), ended))
                .collect();
        let mut seen = std::collections::BTreeSet::new();
        while let Some((job, upstream, outcome)) = queue.pop_front() {
            if !seen.insert(job.clone()) {
                continue;
            }
            let spec = &self.jobs[&job];
            let note = format!(
                "{upstream}'s run for {} ended {}",
                record.run_id,
                outcome.as_str()
            );
            if let Some(state) = self.backend.live_state() {
                let key = record_key(&job, &record.run_id);
                let absent = || {
                    Some(RunRecord::ended(
                        &job,
                        &record.run_id,
                        record.scheduled_at,
                        Outcome::UpstreamFailed,
                        note.clone(),
                        now,
                    ))
                };
                let stored = self
                    .change_record(state, &key, spec, absent, |_| false)
                    .await?;
                if stored.is_some_and(|(r, _)| r.outcome != Outcome::UpstreamFailed) {
                    continue;
                }
            }
            let alert = RunAlert::UpstreamFailed {
                upstream: &upstream,
                outcome,
            };
            let name = format!("batch#alert#upstream-failed#{job}#{}", record.run_id);
            alerted.push(
                self.alert(&job, spec, Some(&record.run_id), alert, &name, invocation)
                    .await?,
            );
            queue.extend(
                dependents(&self.jobs, &job)
                    .into_iter()
                    .map(|d| (d.to_owned(), job.clone(), Outcome::UpstreamFailed)),
            );
        }
        Ok(alerted)
    }

    /// Tells `alert` once: under a claim named `name` when live (a second telling finds it
    /// complete), routed but not sent on a dry run.
    pub(super) async fn alert(
        &self,
        job: &str,
        spec: &JobSpec,
        run_id: Option<&str>,
        alert: RunAlert<'_>,
        name: &str,
        invocation: &Invocation,
    ) -> Result<RunAlerted> {
        let notice = alert_notice(job, spec, run_id, alert, self.region.as_deref());
        let kind = match alert {
            RunAlert::NeverStarted { .. } => "never-started",
            RunAlert::UpstreamFailed { .. } => "upstream-failed",
            RunAlert::Missed { .. } => "missed-run",
        };
        let mut alerted = RunAlerted {
            job: job.to_owned(),
            run: run_id.map(str::to_owned),
            alert: kind,
            reason: notice.summary.clone(),
            message_id: None,
            route: None,
            duplicate: false,
        };
        let now = self.clock.now_s();
        let held = match self.backend.live_state() {
            Some(state) => {
                let ttl = u64::from(spec.history_days) * 86_400;
                match super::claim::take(state, claim_key(name), now, invocation, ttl).await? {
                    super::Taken::Duplicate { .. } => {
                        alerted.duplicate = true;
                        return Ok(alerted);
                    }
                    super::Taken::Fresh(held) | super::Taken::Resumed(held) => Some(held),
                }
            }
            None => None,
        };
        let occasion = super::Occasion {
            at: now,
            tagged: None,
            known_tags: Some(&spec.tags),
            deadline_s: invocation.deadline_epoch_s(now, crate::state::CLI_LEASE_S),
        };
        let mut notes = Vec::new();
        let delivered = self
            .courier
            .deliver(&self.backend, &notice, occasion, held.as_ref(), &mut notes)
            .await;
        if let Some(held) = held {
            held.settle(&delivered, kind, None).await;
        }
        let delivered = delivered?;
        alerted.message_id = delivered.message_id;
        alerted.route = Some(delivered.routed);
        tracing::info!(job, alert = kind, "alert");
        Ok(alerted)
    }
}

/// The upstream run's parameter values the dependent declares too.
fn shared_parameters(
    record: &RunRecord,
    spec: &JobSpec,
) -> std::collections::BTreeMap<String, String> {
    record
        .parameters
        .iter()
        .filter(|(name, _)| spec.parameters.contains_key(*name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}
