//! Applying one alarm's decision: observe the service and its scalable target, decide (pure),
//! record the change in the revisioned scaling memory (deciding again after losing a race),
//! UpdateService, and tell.

use super::{AlarmScaler, Scaled, OFFLINE_SERVICE_USAGE, RECORD_ATTEMPTS};
use crate::app::claim::HeldClaim;
use crate::app::contend::{retry_contended, Attempt, Contended};
use crate::app::publish::Occasion;
use crate::arn::Arn;
use crate::domain::service_arn;
use crate::entry::Invocation;
use crate::error::{AutopilotError, Result};
use crate::keys::memory_key;
use crate::ports::Scope;
use crate::scaling::report::{scaling_notice, Target};
use crate::scaling::{
    decide, ScalingDecision, ScalingInput, ScalingMemory, ServiceObservation, TargetBounds, Trigger,
};
use crate::state::CLI_LEASE_S;

use super::ScalingOutcome;

impl AlarmScaler {
    /// Observes, decides, records and applies (again after losing a race); then notifies.
    pub(super) async fn scale(
        &self,
        scaled: Scaled<'_>,
        held: Option<&HeldClaim<'_>>,
        invocation: &Invocation,
        outcome: &mut ScalingOutcome,
    ) -> Result<()> {
        let Scaled {
            alarm,
            policy,
            trigger,
            cluster,
            service,
        } = scaled;
        let key = memory_key(cluster, service);
        let resource = format!("scaling memory {key}");
        let contended = Contended {
            attempts: RECORD_ATTEMPTS,
            contender: &key,
            resource: &resource,
        };
        let decision = retry_contended(self.clock.as_ref(), contended, async |attempt| {
            let (observed, bounds) = self.observe(scaled, outcome).await?;
            let (memory, revision) = match self.backend.state() {
                Some(state) => state.scaling_memory(&key).await?,
                None => (ScalingMemory::default(), 0),
            };
            let now = self.clock.now_s();
            let decided = decide(&ScalingInput {
                policy,
                state: alarm.state,
                trigger,
                metric_value: alarm.metric_value,
                threshold: alarm.threshold,
                service: observed,
                target_bounds: bounds,
                memory: memory.clone(),
                now,
            });
            let acting = self
                .backend
                .writers()
                .and_then(|writers| Some((writers, writers.state.as_deref()?)))
                .filter(|_| decided.changes() && !outcome.dry_run);
            let Some((writers, state)) = acting else {
                return Ok(Attempt::Done(decided));
            };
            let next = decided.memory_after(memory.clone(), now);
            let change = decided.change_text(&alarm.alarm_name);
            if !state.record_scaling(&key, revision, &next, &change).await? {
                let attempt = attempt + 1;
                outcome.notes.push(format!("attempt {attempt}: another invocation scaled {cluster}/{service} first; decided again"));
                return Ok(Attempt::Lost);
            }
            let writers = writers.in_scope(Scope::of_arn(cluster).as_ref()).await;
            if let Err(error) = writers
                .scaling
                .set_desired_count(cluster, service, decided.to)
                .await
            {
                // Give the cooldown back so the retry is not blocked by a change that never was.
                let reverted = state
                    .record_scaling(
                        &key,
                        revision + 1,
                        &memory,
                        "reverted: UpdateService failed",
                    )
                    .await;
                if let Err(revert) = reverted {
                    tracing::warn!("could not revert the scaling memory of {key}: {revert}");
                }
                return Err(error);
            }
            Ok(Attempt::Done(decided))
        })
        .await?;
        outcome.record(&decision);
        if decision.worth_telling(trigger) {
            self.notify(scaled, &decision, held, invocation, outcome)
                .await?;
        }
        Ok(())
    }

    /// The service's counts and deployment state, and the scalable target's bounds (a failed
    /// read of the latter falls back to the policy's bounds with a note).
    async fn observe(
        &self,
        scaled: Scaled<'_>,
        outcome: &mut ScalingOutcome,
    ) -> Result<(ServiceObservation, Option<TargetBounds>)> {
        let Some(ports) = self.backend.ports() else {
            return Ok((
                self.assumed
                    .service
                    .ok_or_else(|| AutopilotError::Usage(OFFLINE_SERVICE_USAGE.into()))?,
                None,
            ));
        };
        let (cluster, service) = (scaled.cluster, scaled.service);
        let ports = ports.in_scope(Scope::of_arn(cluster).as_ref()).await;
        let (snapshot, bounds) = tokio::join!(
            ports.services.describe_service(cluster, service),
            ports.targets.service_bounds(cluster, service)
        );
        let snapshot =
            snapshot?
                .filter(|s| s.is_active())
                .ok_or_else(|| AutopilotError::ServiceNotFound {
                    cluster: cluster.to_owned(),
                    service: service.to_owned(),
                    field: format!("scaling.alarms.{}.service", scaled.alarm.alarm_name),
                })?;
        let bounds = bounds.unwrap_or_else(|error| {
            tracing::warn!("scalable target of {cluster}/{service} unreadable, using the policy bounds: {error}");
            outcome.notes.push(format!("scalable target bounds unreadable, policy bounds used: {error}"));
            None
        });
        Ok((ServiceObservation::of(&snapshot), bounds))
    }

    async fn notify(
        &self,
        scaled: Scaled<'_>,
        decision: &ScalingDecision,
        held: Option<&HeldClaim<'_>>,
        invocation: &Invocation,
        outcome: &mut ScalingOutcome,
    ) -> Result<()> {
        let (alarm, cluster, service) = (scaled.alarm, scaled.cluster, scaled.service);
        let region = alarm
            .alarm_arn
            .as_ref()
            .and_then(Arn::region)
            .or(self.region.as_deref());
        let (trigger, would) = (scaled.trigger, scaled.policy.dry_run);
        let notice = scaling_notice(
            alarm,
            trigger,
            Target {
                cluster,
                service,
                region,
            },
            decision,
            would,
        );
        let now = self.clock.now_s();
        // A transition's own time; a tick's time for a repeat.
        let at = match trigger {
            Trigger::Transition => alarm.state_at.unwrap_or(now),
            Trigger::Tick => now,
        };
        // The service lives where its cluster's ARN says, else in the alarm's account and region.
        let service_arn = service_arn(cluster, service, alarm.alarm_arn.as_ref());
        let occasion = Occasion {
            at,
            tagged: service_arn.as_deref(),
            known_tags: None,
            deadline_s: invocation.deadline_epoch_s(now, CLI_LEASE_S),
        };
        let notes = &mut outcome.notes;
        match self
            .courier
            .deliver(&self.backend, &notice, occasion, held, notes)
            .await
        {
            Ok(delivered) => {
                outcome.message_id = delivered.message_id;
                outcome.route = Some(delivered.routed);
            }
            // The service was changed and that is recorded; the error that reaches the
            // on-failure destination says so.
            Err(error) if decision.changes() && !would => {
                let (from, to) = (decision.from, decision.to);
                let action = format!("{cluster}/{service} was scaled {from} -> {to}");
                return Err(AutopilotError::NotificationLost {
                    action,
                    cause: error.to_string(),
                });
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }
}
