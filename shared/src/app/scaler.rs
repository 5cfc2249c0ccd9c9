//! The `alarm-scaler` handler: alarm transition or tick → observe the service → decide (pure,
//! [`crate::scaling::decide`]) → conditional write of the scaling memory → UpdateService
//! (`desiredCount` only) → notify. Each transition acts once (claim on the state table); two
//! invocations racing for one service produce one change (revisioned scaling memory).

use serde::Serialize;

use super::Setup;
use crate::aws::state_table::StateTable;
use crate::aws::{autoscaling, cloudwatch, ecs, sns, AwsClients};
use crate::config::{HttpsFormat, ENV_STATE_TABLE};
use crate::entry::{Invocation, Mode};
use crate::error::{AutopilotError, Result};
use crate::events::alarm::{parse_scaler_event, AlarmTransition, Delivery, ScalerEvent};
use crate::events::InboundEvent;
use crate::notify;
use crate::scaling::report::{scaling_notice, Target};
use crate::scaling::{
    decide, Action, AlarmState, ChosenStep, ClampedBy, ScalingConfig, ScalingDecision,
    ScalingInput, ScalingMemory, ScalingPolicy, ServiceObservation, TargetBounds, Trigger,
};
use crate::state::{self, Claim};

/// Prefix of transition claims in the state table.
pub const TRANSITION_PREFIX: &str = "scaler#transition#";
/// Prefix of per-service scaling memory in the state table.
pub const SERVICE_PREFIX: &str = "scaler#service#";
/// How long a transition claim is kept (alarm deliveries are retried for at most a day).
pub const TRANSITION_TTL_S: u64 = 2 * 24 * 3600;
/// Attempts at the conditional write before giving up on a contended service.
const RECORD_ATTEMPTS: usize = 3;

/// The response for one alarm (and the CLI's output line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingOutcome {
    pub alarm: String,
    pub state: AlarmState,
    /// `cluster/service`, once known.
    pub service: Option<String>,
    pub action: Action,
    pub from: Option<u32>,
    pub to: Option<u32>,
    pub reason: String,
    pub step: Option<ChosenStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clamped_by: Option<ClampedBy>,
    pub trigger: Trigger,
    pub delivery: Delivery,
    /// True when the service was not changed because of `--dry-run`, `--offline` or the
    /// policy's `dry_run`.
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub notes: Vec<String>,
}

/// The response of an invocation: one alarm, or every alarm a tick re-read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ScalerResponse {
    One(Box<ScalingOutcome>),
    Tick {
        tick: bool,
        results: Vec<ScalingOutcome>,
        notes: Vec<String>,
    },
}

/// The function, built once per cold start.
#[derive(Debug)]
pub struct AlarmScaler {
    mode: Mode,
    policies: ScalingConfig,
    https_format: HttpsFormat,
    topic_arn: Option<String>,
    clients: Option<AwsClients>,
    state: Option<StateTable>,
    assumed: Option<ServiceObservation>,
    region: Option<String>,
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

fn region_of(alarm: &AlarmTransition) -> Option<String> {
    alarm
        .alarm_arn
        .as_deref()
        .and_then(|arn| arn.split(':').nth(3))
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
}

impl AlarmScaler {
    /// Builds the handler. A live run needs `NOTIFY_TOPIC_ARN` and `STATE_TABLE` (cooldowns and
    /// once-only transitions are safety rules); `assumed` is the offline service state.
    pub fn new(setup: Setup, assumed: Option<ServiceObservation>) -> Result<Self> {
        setup.require_topic_when_live()?;
        if setup.mode == Mode::Live && setup.deployment.state_table.is_none() {
            return Err(AutopilotError::invalid_config(
                ENV_STATE_TABLE,
                "required: cooldowns and once-only transitions are kept there",
            ));
        }
        let state = setup.state_table();
        let region = setup.region();
        Ok(Self {
            mode: setup.mode,
            policies: setup.config.scaling,
            https_format: setup.config.triage.https_format,
            topic_arn: setup.deployment.topic_arn,
            clients: setup.clients,
            state,
            assumed,
            region,
        })
    }

    /// Handles one event: an alarm transition in any of its shapes, or a tick.
    pub async fn handle(
        &self,
        event: InboundEvent,
        invocation: Invocation,
    ) -> Result<ScalerResponse> {
        match parse_scaler_event(&event.to_value()?)? {
            ScalerEvent::Transition(alarm) => {
                let outcome = self.act(&alarm, Trigger::Transition, &invocation).await?;
                Ok(ScalerResponse::One(Box::new(outcome)))
            }
            ScalerEvent::Tick => self.tick(&invocation).await,
        }
    }

    /// Re-reads the alarms whose policies repeat while in ALARM and steps those still in ALARM.
    async fn tick(&self, invocation: &Invocation) -> Result<ScalerResponse> {
        let names: Vec<String> = self
            .policies
            .iter()
            .filter(|(_, policy)| policy.repeat_while_alarm)
            .map(|(name, _)| name.clone())
            .collect();
        let mut notes = Vec::new();
        let Some(clients) = &self.clients else {
            notes.push("offline: a tick needs DescribeAlarms; nothing re-read".into());
            return Ok(ScalerResponse::Tick {
                tick: true,
                results: Vec::new(),
                notes,
            });
        };
        if names.is_empty() {
            notes.push("no policy sets repeat_while_alarm".into());
        }
        let alarms = if names.is_empty() {
            Vec::new()
        } else {
            cloudwatch::current_alarms(clients.cloudwatch(), &names).await?
        };
        for name in &names {
            if !alarms.iter().any(|a| &a.alarm_name == name) {
                notes.push(format!("alarm `{name}` does not exist"));
            }
        }
        let mut results = Vec::new();
        let mut first_error = None;
        for alarm in alarms.iter().filter(|a| a.state == AlarmState::Alarm) {
            match self.act(alarm, Trigger::Tick, invocation).await {
                Ok(outcome) => results.push(outcome),
                Err(error) => {
                    tracing::error!(
                        alarm = alarm.alarm_name,
                        error_type = error.error_type(),
                        "tick failed for an alarm: {error}"
                    );
                    notes.push(format!("{}: {error}", alarm.alarm_name));
                    first_error.get_or_insert(error);
                }
            }
        }
        // Alarms that did act are recorded; a failure is returned so it is seen and retried.
        if let Some(error) = first_error {
            return Err(error);
        }
        Ok(ScalerResponse::Tick {
            tick: true,
            results,
            notes,
        })
    }

    /// One alarm state: find its policy and service, act once per transition.
    async fn act(
        &self,
        alarm: &AlarmTransition,
        trigger: Trigger,
        invocation: &Invocation,
    ) -> Result<ScalingOutcome> {
        let mut outcome = ScalingOutcome {
            alarm: alarm.alarm_name.clone(),
            state: alarm.state,
            service: None,
            action: Action::None,
            from: None,
            to: None,
            reason: String::new(),
            step: None,
            clamped_by: None,
            trigger,
            delivery: alarm.delivery,
            dry_run: self.mode != Mode::Live,
            message_id: None,
            notes: Vec::new(),
        };
        let Some(policy) = self.policies.get(&alarm.alarm_name) else {
            outcome.reason = format!("no scaling policy for alarm `{}`", alarm.alarm_name);
            tracing::info!(alarm = alarm.alarm_name, "ignored: no policy");
            return Ok(outcome);
        };
        outcome.dry_run |= policy.dry_run;
        let (cluster, service) = match (&policy.cluster, &policy.service) {
            (Some(cluster), Some(service)) => (cluster.as_str(), service.as_str()),
            _ => alarm.service_dimensions().ok_or_else(|| {
                AutopilotError::invalid_config(
                    format!("scaling.{}.service", alarm.alarm_name),
                    "not set, and the alarm has no ClusterName/ServiceName dimensions to take it from",
                )
            })?,
        };
        outcome.service = Some(format!("{cluster}/{service}"));
        let claim_key = format!("{TRANSITION_PREFIX}{}", alarm.transition_id());
        let claimed = match (&self.state, trigger, self.mode) {
            (Some(state), Trigger::Transition, Mode::Live) => {
                let lease_until =
                    invocation.deadline_epoch_s(state::CLI_LEASE_S) + state::CLAIM_LEASE_MARGIN_S;
                match state
                    .claim(&claim_key, now_s(), lease_until, TRANSITION_TTL_S)
                    .await?
                {
                    Claim::Duplicate { decision, .. } => {
                        outcome.reason = format!(
                            "transition already handled ({}): duplicate delivery",
                            decision.as_deref().unwrap_or("unknown action")
                        );
                        tracing::info!(alarm = alarm.alarm_name, "duplicate transition");
                        return Ok(outcome);
                    }
                    Claim::InProgress => {
                        return Err(AutopilotError::InProgressElsewhere { key: claim_key })
                    }
                    Claim::Fresh => Some(state),
                    Claim::Resumed { .. } => {
                        outcome
                            .notes
                            .push("retry of an earlier delivery that did not complete".into());
                        Some(state)
                    }
                }
            }
            _ => None,
        };
        let result = self
            .scale(alarm, policy, trigger, cluster, service, &mut outcome)
            .await;
        if let Some(state) = claimed {
            let finished = match &result {
                Ok(()) => {
                    state
                        .complete(&claim_key, outcome.action.as_str(), None)
                        .await
                }
                Err(_) => state.release(&claim_key).await,
            };
            if let Err(error) = finished {
                tracing::warn!("could not update the claim {claim_key}: {error}");
                outcome.notes.push(format!(
                    "could not record the transition as handled: {error}"
                ));
            }
        }
        result?;
        tracing::info!(
            alarm = outcome.alarm,
            state = alarm.state.as_str(),
            service = outcome.service,
            action = outcome.action.as_str(),
            from = outcome.from,
            to = outcome.to,
            reason = outcome.reason,
            "outcome"
        );
        Ok(outcome)
    }

    /// Observes, decides, records and applies; then notifies.
    async fn scale(
        &self,
        alarm: &AlarmTransition,
        policy: &ScalingPolicy,
        trigger: Trigger,
        cluster: &str,
        service: &str,
        outcome: &mut ScalingOutcome,
    ) -> Result<()> {
        let memory_key = format!("{SERVICE_PREFIX}{cluster}#{service}");
        let mut decision = None;
        for attempt in 0..RECORD_ATTEMPTS {
            let (observed, bounds) = self
                .observe(&alarm.alarm_name, cluster, service, outcome)
                .await?;
            let (memory, revision) = match &self.state {
                Some(state) => state.scaling_memory(&memory_key).await?,
                None => (ScalingMemory::default(), 0),
            };
            let now = now_s();
            let decided = decide(&ScalingInput {
                policy,
                state: alarm.state,
                trigger,
                metric_value: alarm.metric_value,
                threshold: alarm.threshold,
                service: observed,
                target_bounds: bounds,
                memory,
                now,
            });
            if !decided.changes() || outcome.dry_run {
                decision = Some(decided);
                break;
            }
            let state = self
                .state
                .as_ref()
                .expect("a live scaler has a state table (checked in new)");
            let mut next = memory;
            match decided.action {
                Action::ScaleOut => next.last_scale_out_at = Some(now),
                _ => next.last_scale_in_at = Some(now),
            }
            let change = format!(
                "{} {} -> {} by {}",
                decided.action.as_str(),
                decided.from,
                decided.to,
                alarm.alarm_name
            );
            if !state
                .record_scaling(&memory_key, revision, &next, &change)
                .await?
            {
                outcome.notes.push(format!(
                    "attempt {}: another invocation scaled {cluster}/{service} first; decided again",
                    attempt + 1
                ));
                continue;
            }
            let client = self.clients.as_ref().expect("live mode has clients").ecs();
            if let Err(error) = ecs::set_desired_count(client, cluster, service, decided.to).await {
                // Give the cooldown back so the retry is not blocked by a change that never was.
                if let Err(revert) = state
                    .record_scaling(
                        &memory_key,
                        revision + 1,
                        &memory,
                        "reverted: UpdateService failed",
                    )
                    .await
                {
                    tracing::warn!("could not revert the scaling memory of {memory_key}: {revert}");
                }
                return Err(error);
            }
            decision = Some(decided);
            break;
        }
        let Some(decision) = decision else {
            return Err(AutopilotError::Aws {
                service: "dynamodb",
                operation: "UpdateItem",
                code: "ContendedScalingMemory".into(),
                message: format!(
                    "{memory_key} changed under every one of {RECORD_ATTEMPTS} attempts"
                ),
            });
        };
        outcome.action = decision.action;
        outcome.from = Some(decision.from);
        outcome.to = Some(decision.to);
        outcome.reason = decision.reason.clone();
        outcome.step = decision.step;
        outcome.clamped_by = decision.clamped_by;
        let worth_telling = decision.changes()
            || (trigger == Trigger::Transition
                && decision.refusal.is_some_and(|r| r.worth_notifying()));
        if worth_telling {
            self.notify(
                alarm,
                trigger,
                cluster,
                service,
                &decision,
                policy.dry_run,
                outcome,
            )
            .await?;
        }
        Ok(())
    }

    /// The service's desired/running counts and deployment state, and the scalable target's
    /// bounds (a failed read of the latter falls back to the policy's bounds with a warning).
    async fn observe(
        &self,
        alarm: &str,
        cluster: &str,
        service: &str,
        outcome: &mut ScalingOutcome,
    ) -> Result<(ServiceObservation, Option<TargetBounds>)> {
        let Some(clients) = &self.clients else {
            let assumed = self.assumed.ok_or_else(|| AutopilotError::Input {
                source_name: "--assume-desired".into(),
                message: "offline mode reads no service: pass --assume-desired N (and --assume-running N)".into(),
            })?;
            return Ok((assumed, None));
        };
        let (snapshot, bounds) = tokio::join!(
            ecs::describe_service(clients.ecs(), cluster, service),
            autoscaling::service_bounds(clients.autoscaling(), cluster, service)
        );
        let snapshot = snapshot?
            .filter(|s| s.status.as_deref().is_none_or(|status| status == "ACTIVE"))
            .ok_or_else(|| {
                AutopilotError::invalid_config(
                    format!("scaling.{alarm}.service"),
                    format!("no active service {service} in cluster {cluster}"),
                )
            })?;
        let bounds = match bounds {
            Ok(bounds) => bounds,
            Err(error) => {
                tracing::warn!("scalable target of {cluster}/{service} unreadable, using the policy bounds: {error}");
                outcome.notes.push(format!(
                    "scalable target bounds unreadable, policy bounds used: {error}"
                ));
                None
            }
        };
        let observed = ServiceObservation {
            desired: snapshot.desired.max(0) as u32,
            running: snapshot.running.max(0) as u32,
            deployment_in_progress: snapshot.rollout_state.as_deref() == Some("IN_PROGRESS")
                || snapshot.deployments > 1,
        };
        Ok((observed, bounds))
    }

    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        alarm: &AlarmTransition,
        trigger: Trigger,
        cluster: &str,
        service: &str,
        decision: &ScalingDecision,
        policy_dry_run: bool,
        outcome: &mut ScalingOutcome,
    ) -> Result<()> {
        let region = region_of(alarm).or_else(|| self.region.clone());
        let target = Target {
            cluster,
            service,
            region: region.as_deref(),
        };
        let notice = scaling_notice(alarm, trigger, target, decision, policy_dry_run);
        let publish = notify::render(&notice, self.https_format);
        match (self.mode, &self.clients, &self.topic_arn) {
            (Mode::Live, Some(clients), Some(topic)) => {
                match sns::publish(clients.sns(), topic, &publish).await {
                    Ok(message_id) => {
                        tracing::info!(message_id, subject = publish.subject, "published");
                        outcome.message_id = Some(message_id);
                    }
                    Err(error) if decision.changes() && !policy_dry_run => {
                        // The service was changed and that is recorded; say so in the error
                        // that reaches the on-failure destination.
                        return Err(AutopilotError::Aws {
                            service: "sns",
                            operation: "Publish",
                            code: "NotificationLost".into(),
                            message: format!(
                                "{cluster}/{service} was scaled {} -> {} but the notification failed: {error}",
                                decision.from, decision.to
                            ),
                        });
                    }
                    Err(error) => return Err(error),
                }
            }
            (mode, _, _) => outcome.notes.push(format!(
                "{}: not published: {}",
                if mode == Mode::Offline {
                    "offline"
                } else {
                    "dry-run"
                },
                publish.subject
            )),
        }
        Ok(())
    }
}
