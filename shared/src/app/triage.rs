//! The `task-triage` handler: parse → classify → (dedup, fold) → enrich → publish, with the
//! response line every invocation returns. Writes happen only in [`Mode::Live`].

use serde::Serialize;

use super::Setup;
use crate::aws::state_table::StateTable;
use crate::aws::{ecs, logs, sns, AwsClients};
use crate::batch::report::completion_notice;
use crate::batch::{job_of_started_by, JobCatalog};
use crate::config::TriageConfig;
use crate::entry::{Invocation, Mode};
use crate::error::{AutopilotError, Result};
use crate::events::ecs::{parse_triage_input, TaskGroup, TaskStateChange, TriageInput};
use crate::events::InboundEvent;
use crate::notify::{self, Notice};
use crate::state::{self, window_open, Claim, Fold, StormWindow};
use crate::triage::report::{self, Enrichment};
use crate::triage::{classify, Category, Diagnosis, Severity};

/// What happened to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Notify,
    Silent,
    Duplicate,
    Folded,
    Ignored,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notify => "notify",
            Self::Silent => "silent",
            Self::Duplicate => "duplicate",
            Self::Folded => "folded",
            Self::Ignored => "ignored",
        }
    }
}

/// The response of one invocation (and the CLI's output line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriageOutcome {
    pub event_id: Option<String>,
    pub task_arn: Option<String>,
    pub decision: Decision,
    pub diagnosis: Option<Diagnosis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub notes: Vec<String>,
}

/// The function, built once per cold start.
#[derive(Debug)]
pub struct TaskTriage {
    mode: Mode,
    config: TriageConfig,
    topic_arn: Option<String>,
    clients: Option<AwsClients>,
    state: Option<StateTable>,
    /// `batch-runner`'s catalog, to name the job of a task it started.
    jobs: JobCatalog,
}

/// A stopped task that `batch-runner` started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTask {
    pub job: String,
    pub succeeded: bool,
    pub notify_on_success: bool,
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

impl TaskTriage {
    /// Builds the handler from the cold-start setup; a live run needs `NOTIFY_TOPIC_ARN`.
    pub fn new(setup: Setup) -> Result<Self> {
        setup.require_topic_when_live()?;
        let state = setup.state_table();
        Ok(Self {
            mode: setup.mode,
            config: setup.config.triage,
            topic_arn: setup.deployment.topic_arn,
            clients: setup.clients,
            state,
            jobs: setup.config.jobs,
        })
    }

    /// The batch job of a task whose `startedBy` is `batch-runner/…`, and whether it succeeded
    /// (a standalone task whose essential containers exited 0).
    pub fn batch_task(&self, change: &TaskStateChange, diagnosis: &Diagnosis) -> Option<BatchTask> {
        let marker = change.detail.started_by.as_deref()?;
        let job = job_of_started_by(marker, &self.jobs)?;
        Some(BatchTask {
            job: job.to_owned(),
            succeeded: diagnosis.category == Category::Completed,
            notify_on_success: self
                .jobs
                .get(job)
                .is_some_and(|spec| spec.notify_on_success),
        })
    }

    /// Classifies and applies the configuration's per-category overrides.
    pub fn diagnose(&self, change: &TaskStateChange) -> Diagnosis {
        let mut diagnosis = classify(&change.detail);
        if let Some(category) = self.config.override_for(diagnosis.category) {
            diagnosis.notify = category.notify.unwrap_or(diagnosis.notify);
            diagnosis.severity = category.severity.unwrap_or(diagnosis.severity);
        }
        // A batch job's completion is always reported when it failed (a stop by a user or by
        // the runner's timeout included), and on success when the job asks for it.
        if let Some(batch) = self.batch_task(change, &diagnosis) {
            diagnosis.notify = !batch.succeeded || batch.notify_on_success;
            if !batch.succeeded && diagnosis.severity == Severity::Info {
                diagnosis.severity = Severity::Warning;
            }
        }
        diagnosis
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
                return Ok(ignored(
                    event_id,
                    None,
                    format!("detail-type `{detail_type}` is not handled"),
                ));
            }
        };
        let event_id = change.id.clone();
        let task = &change.detail;
        if !task.is_stopped() && !task.is_termination_notice() {
            let status = task.last_status.as_deref().unwrap_or("missing");
            tracing::info!(
                task_arn = task.task_arn,
                last_status = status,
                "ignored: task has not stopped"
            );
            return Ok(ignored(
                event_id,
                task.task_arn.clone(),
                format!("lastStatus {status} is not a stop"),
            ));
        }
        let diagnosis = self.diagnose(&change);
        tracing::info!(task_arn = task.task_arn, category = %diagnosis.category, rule = diagnosis.rule, notify = diagnosis.notify, "classified");
        let mut outcome = TriageOutcome {
            event_id,
            task_arn: task.task_arn.clone(),
            decision: Decision::Silent,
            diagnosis: None,
            message_id: None,
            notes: Vec::new(),
        };
        if let Some(batch) = self.batch_task(&change, &diagnosis) {
            let duration = crate::batch::report::duration_s(&change)
                .map(|s| format!(" after {}", crate::batch::report::human_duration(s)))
                .unwrap_or_default();
            outcome.notes.push(format!(
                "batch job {}: {}{duration}",
                batch.job,
                if batch.succeeded {
                    "succeeded"
                } else {
                    "failed"
                }
            ));
        }
        if diagnosis.notify {
            self.notify(&change, &diagnosis, &invocation, &mut outcome)
                .await?;
        }
        tracing::info!(
            task_arn = outcome.task_arn,
            decision = outcome.decision.as_str(),
            category = %diagnosis.category,
            message_id = outcome.message_id,
            "outcome"
        );
        outcome.diagnosis = Some(diagnosis);
        Ok(outcome)
    }

    async fn notify(
        &self,
        change: &TaskStateChange,
        diagnosis: &Diagnosis,
        invocation: &Invocation,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        let task = &change.detail;
        let task_arn = task.task_arn.as_deref().unwrap_or_default();
        let now = now_s();
        let Some(state) = self.state.as_ref() else {
            if self.mode != Mode::Offline {
                outcome
                    .notes
                    .push("no STATE_TABLE: duplicates and storms are not folded".into());
            }
            return self.send(change, diagnosis, None, None, outcome).await;
        };
        let dedup_key = state::dedup_key(task_arn, task.version, change.id.as_deref());
        let storm_key = state::storm_key(
            task.cluster_name().unwrap_or("-"),
            task.group.as_deref().unwrap_or("-"),
            diagnosis.category.as_str(),
        );
        let claim = if self.mode == Mode::Live {
            let lease_until =
                invocation.deadline_epoch_s(state::CLI_LEASE_S) + state::CLAIM_LEASE_MARGIN_S;
            state
                .claim(&dedup_key, now, lease_until, self.config.dedup_ttl_s)
                .await?
        } else {
            state.peek_claim(&dedup_key, now).await?
        };
        let known_count = match claim {
            Claim::Duplicate {
                decision,
                message_id,
            } => {
                outcome.decision = Decision::Duplicate;
                outcome.notes.push(format!(
                    "already handled ({}{})",
                    decision.as_deref().unwrap_or("unknown decision"),
                    message_id
                        .map(|id| format!(", message {id}"))
                        .unwrap_or_default()
                ));
                return Ok(());
            }
            Claim::InProgress if self.mode == Mode::Live => {
                return Err(AutopilotError::InProgressElsewhere { key: dedup_key });
            }
            Claim::InProgress => {
                outcome
                    .notes
                    .push("another invocation is handling this delivery right now".into());
                None
            }
            Claim::Fresh => None,
            Claim::Resumed { storm_count } => {
                outcome
                    .notes
                    .push("retry of an earlier delivery that did not complete".into());
                storm_count
            }
        };
        let result = self
            .fold_and_send(
                change,
                diagnosis,
                state,
                &dedup_key,
                &storm_key,
                known_count,
                now,
                outcome,
            )
            .await;
        if self.mode == Mode::Live {
            match &result {
                Ok(()) => {
                    let decision = if outcome.decision == Decision::Folded {
                        "folded"
                    } else {
                        "notify"
                    };
                    if let Err(error) = state
                        .complete(&dedup_key, decision, outcome.message_id.as_deref())
                        .await
                    {
                        tracing::warn!("could not mark {dedup_key} complete: {error}");
                        outcome
                            .notes
                            .push(format!("could not record completion: {error}"));
                    }
                }
                Err(_) => {
                    if let Err(error) = state.release(&dedup_key).await {
                        tracing::warn!("could not release {dedup_key}: {error}");
                    }
                }
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn fold_and_send(
        &self,
        change: &TaskStateChange,
        diagnosis: &Diagnosis,
        state: &StateTable,
        dedup_key: &str,
        storm_key: &str,
        known_count: Option<u64>,
        now: i64,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        let reason = change
            .detail
            .containers
            .iter()
            .find_map(|c| c.reason.clone())
            .or_else(|| change.detail.stopped_reason.clone())
            .unwrap_or_default();
        let window = match (self.mode, known_count) {
            (Mode::Live, None) => {
                state
                    .count_stop_once(
                        dedup_key,
                        storm_key,
                        now,
                        self.config.storm_window_s,
                        &diagnosis.title,
                        &reason,
                    )
                    .await?
            }
            (_, Some(count)) => StormWindow {
                count,
                ..state.peek_storm(storm_key).await?.unwrap_or_default()
            },
            (_, None) => match state.peek_storm(storm_key).await? {
                Some(open) if window_open(open.started_at, now, self.config.storm_window_s) => {
                    StormWindow {
                        count: open.count + 1,
                        last_at: now,
                        ..open
                    }
                }
                _ => StormWindow {
                    count: 1,
                    started_at: now,
                    last_at: now,
                    ..StormWindow::default()
                },
            },
        };
        match state::fold_for(window.count) {
            Fold::Folded => {
                outcome.decision = Decision::Folded;
                outcome.notes.push(format!(
                    "stop {} of a storm in {storm_key}; next digest at the next power of ten",
                    window.count
                ));
                Ok(())
            }
            Fold::Digest => {
                outcome
                    .notes
                    .push(format!("storm digest: {} stops", window.count));
                self.send(change, diagnosis, Some(&window), None, outcome)
                    .await
            }
            Fold::First => {
                self.send(change, diagnosis, None, window.previous_count, outcome)
                    .await
            }
        }
    }

    async fn send(
        &self,
        change: &TaskStateChange,
        diagnosis: &Diagnosis,
        storm: Option<&StormWindow>,
        previous_storm: Option<u64>,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        outcome.decision = Decision::Notify;
        let enrichment = self.enrich(change, diagnosis).await;
        let notice: Notice = match (storm, self.batch_task(change, diagnosis)) {
            (Some(window), _) => report::storm_notice(change, diagnosis, &enrichment, window),
            (None, Some(batch)) => completion_notice(
                report::task_notice(change, diagnosis, &enrichment, previous_storm),
                change,
                diagnosis,
                &batch.job,
                batch.succeeded,
            ),
            (None, None) => report::task_notice(change, diagnosis, &enrichment, previous_storm),
        };
        outcome.notes.extend(enrichment.missing.iter().cloned());
        let publish = notify::render(&notice, self.config.https_format);
        if publish.log_lines_dropped > 0 {
            outcome.notes.push(format!(
                "{} log lines left out to fit SNS's 256 KiB",
                publish.log_lines_dropped
            ));
        }
        match (self.mode, &self.clients, &self.topic_arn) {
            (Mode::Live, Some(clients), Some(topic)) => {
                let message_id = sns::publish(clients.sns(), topic, &publish).await?;
                tracing::info!(message_id, subject = publish.subject, "published");
                outcome.message_id = Some(message_id);
            }
            (mode, _, _) => {
                let mode = if mode == Mode::Offline {
                    "offline"
                } else {
                    "dry-run"
                };
                outcome
                    .notes
                    .push(format!("{mode}: not published: {}", publish.subject));
            }
        }
        Ok(())
    }

    /// Service context and log tail; failures become notes, never errors.
    async fn enrich(&self, change: &TaskStateChange, diagnosis: &Diagnosis) -> Enrichment {
        let mut enrichment = Enrichment::default();
        let Some(clients) = &self.clients else {
            return enrichment;
        };
        let task = &change.detail;
        let service = async {
            let (Some(cluster), Some(TaskGroup::Service(name))) =
                (task.cluster_arn.as_deref(), task.task_group())
            else {
                return Ok(None);
            };
            ecs::describe_service(clients.ecs(), cluster, &name).await
        };
        let log_tail = async {
            let (Some(container), Some(definition), Some(task_id)) = (
                diagnosis.container.as_deref(),
                task.task_definition_arn.as_deref(),
                task.task_id(),
            ) else {
                return Ok(None);
            };
            if self.config.log_lines == 0 {
                return Ok(None);
            }
            let Some(target) = ecs::awslogs_target(clients.ecs(), definition, container)
                .await
                .map_err(|e| e.to_string())?
            else {
                return Err(format!("container {container} does not log with awslogs"));
            };
            let Some(stream) = target.stream_for(container, task_id) else {
                return Err(format!("container {container} has no awslogs-stream-prefix, so its stream cannot be named"));
            };
            let lines = logs::tail(
                clients.logs(),
                &target.group,
                &stream,
                self.config.log_lines,
            )
            .await
            .map_err(|e| e.to_string());
            Ok(Some((target, stream, lines)))
        };
        let (service, log_tail) = tokio::join!(service, log_tail);
        match service {
            Ok(snapshot) => enrichment.service = snapshot,
            Err(error) => enrichment
                .missing
                .push(format!("service context could not be fetched: {error}")),
        }
        match log_tail {
            Ok(Some((target, stream, lines))) => {
                match lines {
                    Ok(lines) => enrichment.log_tail = lines,
                    Err(error) => enrichment
                        .missing
                        .push(format!("log tail could not be fetched: {error}")),
                }
                enrichment.log_target = Some(target);
                enrichment.log_stream = Some(stream);
            }
            Ok(None) => {}
            Err(error) => enrichment
                .missing
                .push(format!("log tail could not be fetched: {error}")),
        }
        enrichment
    }
}

fn ignored(event_id: Option<String>, task_arn: Option<String>, note: String) -> TriageOutcome {
    TriageOutcome {
        event_id,
        task_arn,
        decision: Decision::Ignored,
        diagnosis: None,
        message_id: None,
        notes: vec![note],
    }
}
