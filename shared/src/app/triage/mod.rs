//! The `task-triage` handler: parse → diagnose (pure) → claim and fold ([`fold`]: state store)
//! → enrich (ECS, Logs) → deliver (notifier), answering every invocation with a
//! [`TriageOutcome`]. Writes happen only on a live backend.

mod fold;

use std::sync::Arc;

use super::{enrich::enrich, publish::deliver, Backend, Setup};
use crate::batch::report::{apply_job_policy, batch_task, completion_note, completion_notice};
use crate::batch::{report::BatchTask, JobCatalog};
use crate::config::TriageConfig;
use crate::domain::HttpsFormat;
use crate::entry::{Invocation, Mode};
use crate::error::Result;
use crate::events::ecs::{parse_triage_input, TaskStateChange, TriageInput};
use crate::events::InboundEvent;
use crate::ports::Clock;
use crate::state::StormWindow;
use crate::triage::report::{self, Enrichment};
use crate::triage::{apply_override, classify, Diagnosis};

pub use crate::triage::outcome::{Decision, TriageOutcome};

/// The function, built once per cold start.
#[derive(Debug)]
pub struct TaskTriage {
    backend: Backend,
    clock: Arc<dyn Clock>,
    config: TriageConfig,
    https_format: HttpsFormat,
    /// `batch-runner`'s catalog, to name the job of a task it started.
    jobs: JobCatalog,
}

/// One stop being handled: the event, its diagnosis and its batch job, if any.
struct Stopped<'a> {
    change: &'a TaskStateChange,
    diagnosis: &'a Diagnosis,
    batch: Option<&'a BatchTask>,
}

impl TaskTriage {
    pub fn new(setup: Setup) -> Self {
        Self {
            backend: setup.backend,
            clock: setup.clock,
            https_format: setup.config.notify.https_format,
            config: setup.config.triage,
            jobs: setup.config.jobs,
        }
    }

    /// Classifies, then applies the category override and the batch job rules (pure).
    pub fn diagnose(&self, change: &TaskStateChange) -> (Diagnosis, Option<BatchTask>) {
        let classified = classify(&change.detail);
        let category = self.config.override_for(classified.category);
        let diagnosis = apply_override(classified, category);
        let batch = batch_task(change, &diagnosis, &self.jobs);
        (apply_job_policy(diagnosis, batch.as_ref()), batch)
    }

    /// Handles one event.
    pub async fn handle(
        &self,
        event: InboundEvent,
        invocation: Invocation,
    ) -> Result<TriageOutcome> {
        let change = match parse_triage_input(event.text())? {
            TriageInput::TaskStateChange(change) => change,
            TriageInput::Other {
                event_id,
                detail_type,
            } => {
                tracing::info!(detail_type, "ignored: not a task state change");
                let note = format!("detail-type `{detail_type}` is not handled");
                return Ok(TriageOutcome::ignored(event_id, None, note));
            }
        };
        let task = &change.detail;
        if !task.is_stopped() && !task.is_termination_notice() {
            let status = task.last_status.as_deref().unwrap_or("missing");
            tracing::info!(
                task_arn = task.task_arn,
                last_status = status,
                "ignored: task has not stopped"
            );
            let note = format!("lastStatus {status} is not a stop");
            return Ok(TriageOutcome::ignored(
                change.id.clone(),
                task.task_arn.clone(),
                note,
            ));
        }
        let (diagnosis, batch) = self.diagnose(&change);
        tracing::info!(task_arn = task.task_arn, category = %diagnosis.category, rule = diagnosis.rule, notify = diagnosis.notify, "classified");
        let mut outcome = TriageOutcome {
            event_id: change.id.clone(),
            task_arn: task.task_arn.clone(),
            decision: Decision::Silent,
            diagnosis: None,
            message_id: None,
            notes: batch.iter().map(|b| completion_note(&change, b)).collect(),
        };
        if diagnosis.notify {
            let stopped = Stopped {
                change: &change,
                diagnosis: &diagnosis,
                batch: batch.as_ref(),
            };
            match self.backend.state() {
                Some(state) => {
                    self.fold(&stopped, state, &invocation, &mut outcome)
                        .await?
                }
                None => {
                    if self.backend.mode() != Mode::Offline {
                        outcome
                            .notes
                            .push("no STATE_TABLE: duplicates and storms are not folded".into());
                    }
                    self.send(&stopped, None, None, &mut outcome).await?;
                }
            }
        }
        tracing::info!(task_arn = outcome.task_arn, decision = outcome.decision.as_str(), category = %diagnosis.category, message_id = outcome.message_id, "outcome");
        outcome.diagnosis = Some(diagnosis);
        Ok(outcome)
    }

    /// Enriches, words and delivers the notification: of the stop, of its job's completion, or
    /// the storm's digest.
    async fn send(
        &self,
        stop: &Stopped<'_>,
        storm: Option<&StormWindow>,
        previous_storm: Option<u64>,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        outcome.decision = Decision::Notify;
        let (change, diagnosis) = (stop.change, stop.diagnosis);
        let enrichment = match self.backend.ports() {
            Some(ports) => enrich(ports, change, diagnosis, self.config.log_lines).await,
            None => Enrichment::default(),
        };
        let notice = match (storm, stop.batch) {
            (Some(window), _) => report::storm_notice(change, diagnosis, &enrichment, window),
            (None, batch) => {
                let notice = report::task_notice(change, diagnosis, &enrichment, previous_storm);
                match batch {
                    Some(b) => completion_notice(notice, change, diagnosis, &b.job, b.succeeded),
                    None => notice,
                }
            }
        };
        outcome.notes.extend(enrichment.missing.iter().cloned());
        outcome.message_id = deliver(
            &self.backend,
            &notice,
            self.https_format,
            &mut outcome.notes,
        )
        .await?;
        Ok(())
    }
}
