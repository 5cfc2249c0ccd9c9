//! Duplicates and storms for `task-triage`: take (or, dry-run, look at) the delivery's claim,
//! count the stop into its storm window exactly once (or project the count), then notify the
//! first stop and the digests and fold the rest; the claim completes or is released. A window's
//! first stop folds into the service's incident; the rest only read it.

use super::{Decision, Diagnosed, TaskTriage, TriageOutcome, Via};
use crate::app::claim::{self, duplicate_note, Access, HeldClaim};
use crate::app::incident::{record_failure, record_muted, Target};
use crate::app::storm;
use crate::app::State;
use crate::entry::Invocation;
use crate::error::Result;
use crate::incident::{Failure, IncidentTag};
use crate::keys::{incident_key, keyed_cluster};
use crate::state::{self, Fold, Stop};

impl TaskTriage {
    /// Claims the delivery, counts and folds the stop, and settles the claim; once the claim is
    /// complete, the window forgets the stop's number (a redelivery stops at the claim).
    pub(super) async fn fold(
        &self,
        signal: &Diagnosed<'_>,
        state: State<'_>,
        invocation: &Invocation,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        let now = self.clock.now_s();
        let dedup_key = signal.dedup_key();
        let Some(held) = self
            .take_delivery(state, &dedup_key, now, invocation, outcome)
            .await?
        else {
            return Ok(());
        };
        let (storm_key, reason) = signal.storm(self.accounts.home());
        let stop = Stop {
            claim_key: &dedup_key,
            storm_key: &storm_key,
            now,
            window_s: self.config.storm_window_s,
            title: &signal.diagnosis.title,
            reason: &reason,
        };
        let via = Via::claimed(held.as_ref(), invocation, now);
        let result = self
            .count_and_send(signal, state, stop, &via, outcome)
            .await;
        let Some(held) = held else {
            return result;
        };
        let decision = match outcome.decision {
            Decision::Folded | Decision::Muted => outcome.decision.as_str(),
            _ => "notify",
        };
        let unsettled = held
            .settle(&result, decision, outcome.message_id.as_deref())
            .await;
        match (&result, unsettled) {
            (Ok(()), None) => {
                let Some(store) = state.writer() else {
                    return result;
                };
                if let Err(error) = store.forget_count(&dedup_key, &storm_key).await {
                    tracing::warn!("could not drop the stop's number from {storm_key}: {error}");
                    outcome.notes.push(format!(
                        "the storm window keeps this stop's number until it expires: {error}"
                    ));
                }
            }
            (_, note) => outcome.notes.extend(note),
        }
        result
    }

    /// Takes (live) or looks at (dry-run) the claim of a delivery; `None` when it is a
    /// duplicate, which the outcome then says, else the claim held (live).
    pub(super) async fn take_delivery<'s>(
        &self,
        state: State<'s>,
        key: &str,
        now: i64,
        invocation: &Invocation,
        outcome: &mut TriageOutcome,
    ) -> Result<Option<Option<HeldClaim<'s>>>> {
        let ttl_s = self.config.dedup_ttl_s;
        let notes = &mut outcome.notes;
        match claim::access(state, key, now, invocation, ttl_s, notes).await? {
            Access::Duplicate {
                decision,
                message_id,
            } => {
                outcome.decision = Decision::Duplicate;
                let note = duplicate_note(decision.as_deref(), message_id.as_deref());
                outcome.notes.push(note);
                Ok(None)
            }
            Access::Go { held } => Ok(Some(held)),
        }
    }

    /// Counts the stop into its storm window (live) or projects the count (dry-run), then
    /// notifies the first stop and the digests. Only a window's first stop is written into the
    /// service's incident: the rest are counted in the window, which the incident's resolution
    /// reads, so that a storm of a thousand stops makes one incident write, not a thousand
    /// contended ones.
    async fn count_and_send(
        &self,
        signal: &Diagnosed<'_>,
        state: State<'_>,
        stop: Stop<'_>,
        via: &Via<'_>,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        let window = storm::count(state, self.clock.as_ref(), stop).await?;
        let fold = state::fold_for(window.count);
        outcome.incident = match fold {
            Fold::First => {
                let reason = signal.incident_reason();
                self.fold_into_incident(signal, state, stop.claim_key, &reason, stop.now)
                    .await?
            }
            Fold::Digest | Fold::Folded => self.incident_of(signal, state, stop.claim_key).await?,
        };
        match fold {
            Fold::Folded => {
                outcome.decision = Decision::Folded;
                outcome.notes.push(format!(
                    "stop {} of a storm in {}; next digest at the next power of ten",
                    window.count, stop.storm_key
                ));
                return Ok(());
            }
            Fold::Digest => {
                outcome
                    .notes
                    .push(format!("storm digest: {} stops", window.count));
                self.send(signal, Some(&window), None, via, outcome).await?;
            }
            Fold::First => {
                self.send(signal, None, window.previous_count, via, outcome)
                    .await?;
            }
        }
        self.count_muted(signal, state, stop.claim_key, outcome)
            .await
    }

    /// A muted notification is counted in the service's incident (live), so that its
    /// resolution says what the maintenance window held back.
    async fn count_muted(
        &self,
        signal: &Diagnosed<'_>,
        state: State<'_>,
        key: &str,
        outcome: &TriageOutcome,
    ) -> Result<()> {
        let Some(store) = state
            .writer()
            .filter(|_| outcome.decision == Decision::Muted)
        else {
            return Ok(());
        };
        let Some((incident_key, _, _)) = self.incident_target(signal) else {
            return Ok(());
        };
        let category = signal.diagnosis.category.as_str();
        record_muted(store, self.clock.as_ref(), &incident_key, key, category).await
    }

    /// The store key of the incident of the signal's service, with its cluster and service; a
    /// standalone task has none.
    fn incident_target(&self, signal: &Diagnosed<'_>) -> Option<(String, String, String)> {
        let (cluster, service) = signal.service_of()?;
        let keyed = keyed_cluster(&cluster, signal.account(), self.accounts.home());
        Some((incident_key(&keyed, &service), cluster, service))
    }

    /// The open incident a folded stop or a digest belongs to, read, not written.
    async fn incident_of(
        &self,
        signal: &Diagnosed<'_>,
        state: State<'_>,
        key: &str,
    ) -> Result<Option<IncidentTag>> {
        let Some((incident_key, _, _)) = self.incident_target(signal) else {
            return Ok(None);
        };
        Ok(state
            .reader()
            .read_incident(&incident_key)
            .await?
            .filter(|(incident, _)| incident.is_open())
            .map(|(incident, _)| incident.tag_for(key)))
    }

    /// Folds the signal of a service into the service's incident (dry-run: projects it); a
    /// standalone task has none.
    async fn fold_into_incident(
        &self,
        signal: &Diagnosed<'_>,
        state: State<'_>,
        key: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<IncidentTag>> {
        let Some((incident_key, cluster, service)) = self.incident_target(signal) else {
            return Ok(None);
        };
        let target = Target {
            key: &incident_key,
            cluster: &cluster,
            service: &service,
        };
        let category = signal.diagnosis.category.as_str();
        let failure = Failure {
            key,
            category,
            reason,
            at: now,
        };
        let applied = record_failure(state, self.clock.as_ref(), target, failure).await?;
        Ok(Some(applied.incident().tag_for(key)))
    }
}
