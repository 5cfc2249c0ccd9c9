//! The `task-triage` handler: parse → diagnose (pure) → claim and fold ([`fold`]: state store)
//! → enrich and deliver ([`tell`]: ECS, Logs, notifier), answering every invocation with a
//! [`TriageOutcome`]. It handles stopped tasks and service events (deployment state changes,
//! service actions) alike. Writes happen only on a live backend.

mod fold;
mod resolve;
mod signal;
mod summary;
mod tell;
mod watch;

use tell::Via;

use signal::{Diagnosed, Signal};

use std::sync::Arc;

use super::{Backend, Setup};
use crate::app::publish::Courier;
use crate::batch::record::TaskStop;
use crate::batch::report::{
    apply_job_policy, apply_run_verdict, batch_task, completion_note, RunView,
};
use crate::batch::{report::BatchTask, JobCatalog};
use crate::config::TriageConfig;
use crate::domain::clip;
use crate::entry::{Invocation, Mode};
use crate::error::Result;
use crate::events::alarm::SCHEDULED_EVENT;
use crate::events::ecs::{accounts_named, parse_triage_input, TaskStateChange, TriageInput};
use crate::events::service::ServiceEvent;
use crate::events::InboundEvent;
use crate::metrics::{Measured, Measurement};
use crate::ports::Clock;
use crate::present::{Present, Shown};
use crate::telemetry::LOGGED_BYTES;
use crate::triage::service::classify_service_event;
use crate::triage::{apply_override, classify, Diagnosis};
use crate::trust::{Accounts, Foreign};

pub use crate::triage::outcome::{Decision, TriageOutcome};

/// Whether an event is the watchdog's tick: `{"tick": true}` or an EventBridge Scheduled Event.
/// A cheap look at the text first: nearly every event is not.
fn is_tick(event: &InboundEvent) -> bool {
    let text = event.text();
    if !text.contains("\"tick\"") && !text.contains(SCHEDULED_EVENT) {
        return false;
    }
    event.to_value().is_ok_and(|value| {
        value.get("tick").and_then(serde_json::Value::as_bool) == Some(true)
            || value.get("detail-type").and_then(serde_json::Value::as_str) == Some(SCHEDULED_EVENT)
    })
}

/// The function, built once per cold start.
#[derive(Debug)]
pub struct TaskTriage {
    backend: Backend,
    clock: Arc<dyn Clock>,
    config: TriageConfig,
    /// Routes and delivers its notices.
    courier: Courier,
    /// `batch-runner`'s catalog, to name the job of a task it started.
    jobs: JobCatalog,
    /// The region the function runs in (console links of the watchdog's findings).
    region: Option<String>,
    /// The account it runs in (other accounts' services are keyed apart) and its members; any
    /// other account's event is ignored.
    accounts: Accounts,
}

/// The response of an invocation: one event's outcome, or what the watchdog's tick found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum TriageResponse {
    One(Box<TriageOutcome>),
    Tick {
        tick: bool,
        /// Services looked at.
        checked: usize,
        /// One outcome per finding (degraded, stuck, resolved).
        results: Vec<TriageOutcome>,
        notes: Vec<String>,
    },
}

impl Present for TriageResponse {
    fn shown(&self) -> Shown<'_> {
        match self {
            Self::One(outcome) => outcome.shown(),
            Self::Tick {
                checked,
                results,
                notes,
                ..
            } => Shown::tick(
                format!(
                    "tick, {checked} service(s) checked, {} finding(s)",
                    results.len()
                ),
                results.iter().map(Present::shown).collect(),
                notes,
            ),
        }
    }
}

impl Measured for TriageResponse {
    fn measurement(&self) -> Measurement {
        match self {
            Self::One(outcome) => Measurement::of_triage(outcome),
            Self::Tick { results, .. } => Measurement::of_triage_tick(results),
        }
    }
}

impl TaskTriage {
    pub fn new(setup: Setup) -> Self {
        Self {
            backend: setup.backend,
            clock: setup.clock,
            courier: setup.courier,
            config: setup.config.triage,
            jobs: setup.config.jobs,
            region: setup.region,
            accounts: setup.accounts,
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

    /// Reads the run record of a job's task (when there is one) and folds this stop into a
    /// copy of it, so that the completion report says what `batch-runner` decides: which
    /// attempt it was and whether a retry follows. A record that cannot be read leaves the
    /// report as it was, with a note.
    async fn read_run(
        &self,
        change: &TaskStateChange,
        diagnosis: &Diagnosis,
        task: &mut BatchTask,
        notes: &mut Vec<String>,
    ) {
        let (Some(state), Some(spec)) = (self.backend.state(), self.jobs.get(&task.job)) else {
            return;
        };
        let Some(stop) = TaskStop::of(&change.detail, diagnosis, self.clock.now_s()) else {
            return;
        };
        let record = match state.record_of_task(&stop.task).await {
            Ok(Some(key)) => state.read_record(&key).await,
            Ok(None) => return,
            Err(error) => Err(error),
        };
        match record {
            Ok(Some((record, _))) => {
                task.run = Some(RunView::of(record, stop, spec.retry.as_ref()));
            }
            Ok(None) => {}
            Err(error) => notes.push(format!("the run's record could not be read: {error}")),
        }
    }

    /// Diagnoses a service event and applies its category's override (pure).
    pub fn diagnose_service(&self, event: &ServiceEvent) -> Diagnosis {
        let classified = classify_service_event(event);
        let category = self.config.override_for(classified.category);
        apply_override(classified, category)
    }

    /// Answers one invocation: the watchdog's tick (`{"tick": true}` or an EventBridge
    /// Scheduled Event), or an event for [`handle`](Self::handle).
    pub async fn respond(
        &self,
        event: InboundEvent,
        invocation: Invocation,
    ) -> Result<TriageResponse> {
        if is_tick(&event) {
            return self.watch(&invocation).await;
        }
        Ok(TriageResponse::One(Box::new(
            self.handle(event, invocation).await?,
        )))
    }

    /// Handles one event.
    pub async fn handle(
        &self,
        event: InboundEvent,
        invocation: Invocation,
    ) -> Result<TriageOutcome> {
        match parse_triage_input(event.text())? {
            TriageInput::TaskStateChange(change) => {
                if let Err(foreign) = self.accounts.check(accounts_named(&change)) {
                    let task = change.detail.task_arn.as_deref().map(str::to_owned);
                    return Ok(self.refuse(change.id.clone(), task, None, foreign));
                }
                self.handle_stop(&change, &invocation).await
            }
            TriageInput::Service(event) => {
                if let Err(foreign) = self.accounts.check(event.accounts_named()) {
                    let service = event.service_name().map(str::to_owned);
                    return Ok(self.refuse(event.id.clone(), None, service, foreign));
                }
                self.handle_service(&event, &invocation).await
            }
            TriageInput::Other {
                event_id,
                detail_type,
            } => {
                let detail_type = clip(&detail_type, LOGGED_BYTES);
                tracing::info!(
                    detail_type,
                    "ignored: not a task state change or service event"
                );
                let note = format!("detail-type `{detail_type}` is not handled");
                Ok(TriageOutcome::ignored(event_id, None, note))
            }
        }
    }

    /// An event of an account the stack does not act for: nothing read, assumed or told.
    fn refuse(
        &self,
        event_id: Option<String>,
        task_arn: Option<String>,
        service: Option<String>,
        foreign: Foreign,
    ) -> TriageOutcome {
        tracing::warn!(
            account = foreign.account,
            named_by = foreign.named_by,
            "ignored: an account that is not the stack's or a member's"
        );
        TriageOutcome::foreign(event_id, task_arn, service, foreign)
    }

    async fn handle_stop(
        &self,
        change: &TaskStateChange,
        invocation: &Invocation,
    ) -> Result<TriageOutcome> {
        let task = &change.detail;
        if !task.is_stopped() && !task.is_termination_notice() {
            let status = clip(
                task.last_status.as_deref().unwrap_or("missing"),
                LOGGED_BYTES,
            );
            tracing::info!(
                task_arn = task.task_arn.as_deref().map(|arn| clip(arn, LOGGED_BYTES)),
                last_status = status,
                "ignored: task has not stopped"
            );
            let note = format!("lastStatus {status} is not a stop");
            return Ok(TriageOutcome::ignored(
                change.id.clone(),
                task.task_arn.as_deref().map(str::to_owned),
                note,
            ));
        }
        let (diagnosis, mut batch) = self.diagnose(change);
        let mut notes = Vec::new();
        if let Some(task) = batch.as_mut() {
            self.read_run(change, &diagnosis, task, &mut notes).await;
        }
        let diagnosis = apply_run_verdict(diagnosis, batch.as_ref());
        let mut outcome = TriageOutcome::silent(
            change.id.clone(),
            task.task_arn.as_deref().map(str::to_owned),
            None,
        );
        outcome
            .notes
            .extend(batch.iter().map(|b| completion_note(change, b)));
        outcome.notes.append(&mut notes);
        let signal = Signal::Stop {
            change,
            batch: batch.as_ref(),
        };
        self.conclude(signal, diagnosis, invocation, outcome).await
    }

    async fn handle_service(
        &self,
        event: &ServiceEvent,
        invocation: &Invocation,
    ) -> Result<TriageOutcome> {
        let diagnosis = self.diagnose_service(event);
        let service = match (event.cluster_name(), event.service_name()) {
            (Some(cluster), Some(service)) => Some(format!("{cluster}/{service}")),
            (_, service) => service.map(str::to_owned),
        };
        let mut outcome = TriageOutcome::silent(event.id.clone(), None, service);
        let signal = Signal::Service(event);
        let diagnosed = Diagnosed {
            signal,
            diagnosis: &diagnosis,
        };
        if self
            .resolve(&diagnosed, event, invocation, &mut outcome)
            .await?
        {
            outcome.diagnosis = Some(diagnosis);
            return Ok(outcome);
        }
        self.decide(diagnosed, invocation, &mut outcome).await?;
        outcome.diagnosis = Some(diagnosis);
        Ok(outcome)
    }

    /// Decides about `signal` and answers with its diagnosis.
    async fn conclude(
        &self,
        signal: Signal<'_>,
        diagnosis: Diagnosis,
        invocation: &Invocation,
        mut outcome: TriageOutcome,
    ) -> Result<TriageOutcome> {
        let diagnosed = Diagnosed {
            signal,
            diagnosis: &diagnosis,
        };
        self.decide(diagnosed, invocation, &mut outcome).await?;
        outcome.diagnosis = Some(diagnosis);
        Ok(outcome)
    }

    /// Tells about a diagnosed signal that deserves it: folded with its duplicates and storm
    /// (with a state table), else sent as it is.
    async fn decide(
        &self,
        diagnosed: Diagnosed<'_>,
        invocation: &Invocation,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        let diagnosis = diagnosed.diagnosis;
        tracing::info!(category = %diagnosis.category, rule = diagnosis.rule, notify = diagnosis.notify, "classified");
        if diagnosis.notify {
            match self.backend.state_access() {
                Some(state) => self.fold(&diagnosed, state, invocation, outcome).await?,
                None => {
                    if self.backend.mode() != Mode::Offline {
                        outcome
                            .notes
                            .push("no STATE_TABLE: duplicates and storms are not folded".into());
                    }
                    let via = Via::unclaimed(invocation, self.clock.now_s());
                    self.send(&diagnosed, None, None, &via, outcome).await?;
                }
            }
        }
        let (task_arn, service) = (outcome.task_arn.as_deref(), outcome.service.as_deref());
        let (task_arn, service) = (
            task_arn.map(|arn| clip(arn, LOGGED_BYTES)),
            service.map(|name| clip(name, LOGGED_BYTES)),
        );
        tracing::info!(task_arn, service, decision = outcome.decision.as_str(), category = %diagnosis.category, message_id = outcome.message_id, "outcome");
        Ok(())
    }
}
