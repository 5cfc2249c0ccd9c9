//! Duplicates and storms for `task-triage`: take (or, dry-run, look at) the delivery's claim,
//! count the stop into its storm window exactly once (or project the count), then notify the
//! first stop and the digests and fold the rest; the claim completes or is released.

use super::{Decision, Diagnosed, TaskTriage, TriageOutcome};
use crate::app::claim::{self, duplicate_note, Access, HeldClaim};
use crate::app::incident::{record_failure, Target};
use crate::app::storm::{self, Stop};
use crate::entry::{Invocation, Mode};
use crate::error::Result;
use crate::incident::{incident_key, Failure, IncidentTag};
use crate::ports::StateStore;
use crate::state::keyed_cluster;
use crate::state::{self, advance_window, Fold, StormWindow};

impl TaskTriage {
    /// Claims the delivery, counts and folds the stop, and settles the claim.
    pub(super) async fn fold(
        &self,
        signal: &Diagnosed<'_>,
        state: &dyn StateStore,
        invocation: &Invocation,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        let now = self.clock.now_s();
        let dedup_key = signal.dedup_key();
        let Some((held, counted)) = self
            .take_delivery(state, &dedup_key, now, invocation, outcome)
            .await?
        else {
            return Ok(());
        };
        let result = self
            .count_and_send(signal, state, &dedup_key, counted, now, outcome)
            .await;
        if let Some(held) = held {
            let decision = if outcome.decision == Decision::Folded {
                "folded"
            } else {
                "notify"
            };
            outcome.notes.extend(
                held.settle(&result, decision, outcome.message_id.as_deref())
                    .await,
            );
        }
        result
    }

    /// Takes (live) or looks at (dry-run) the claim of a delivery; `None` when it is a
    /// duplicate, which the outcome then says.
    pub(super) async fn take_delivery<'s>(
        &self,
        state: &'s dyn StateStore,
        key: &str,
        now: i64,
        invocation: &Invocation,
        outcome: &mut TriageOutcome,
    ) -> Result<Option<(Option<HeldClaim<'s>>, Option<u64>)>> {
        let live = self.backend.mode() == Mode::Live;
        let ttl_s = self.config.dedup_ttl_s;
        let notes = &mut outcome.notes;
        match claim::access(state, key, now, invocation, ttl_s, live, notes).await? {
            Access::Duplicate {
                decision,
                message_id,
            } => {
                outcome.decision = Decision::Duplicate;
                let note = duplicate_note(decision.as_deref(), message_id.as_deref());
                outcome.notes.push(note);
                Ok(None)
            }
            Access::Go { held, counted } => Ok(Some((held, counted))),
        }
    }

    /// Counts the stop into its storm window (live) or projects the count (dry-run), then
    /// notifies the first stop and the digests.
    async fn count_and_send(
        &self,
        signal: &Diagnosed<'_>,
        state: &dyn StateStore,
        dedup_key: &str,
        counted: Option<u64>,
        now: i64,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        let (storm_key, reason) = signal.storm(self.home_account.as_deref());
        let counting = Stop {
            claim_key: dedup_key,
            storm_key: &storm_key,
            now,
            window_s: self.config.storm_window_s,
            title: &signal.diagnosis.title,
            reason: &reason,
        };
        let window = match (self.backend.mode(), counted) {
            (_, Some(count)) => StormWindow {
                count,
                ..state.read_window(&storm_key).await?.unwrap_or_default()
            },
            (Mode::Live, None) => {
                storm::count_stop_once(state, self.clock.as_ref(), counting).await?
            }
            (_, None) => {
                let open = state.read_window(&storm_key).await?;
                advance_window(
                    open.as_ref(),
                    now,
                    counting.window_s,
                    counting.title,
                    counting.reason,
                )
            }
        };
        outcome.incident = self
            .fold_into_incident(signal, state, dedup_key, &signal.incident_reason(), now)
            .await?;
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
                self.send(signal, Some(&window), None, outcome).await
            }
            Fold::First => {
                self.send(signal, None, window.previous_count, outcome)
                    .await
            }
        }
    }

    /// Folds the signal of a service into the service's incident (dry-run: projects it); a
    /// standalone task has none.
    async fn fold_into_incident(
        &self,
        signal: &Diagnosed<'_>,
        state: &dyn StateStore,
        key: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<IncidentTag>> {
        let Some((cluster, service)) = signal.service_of() else {
            return Ok(None);
        };
        let keyed = keyed_cluster(&cluster, signal.account(), self.home_account.as_deref());
        let incident_key = incident_key(&keyed, &service);
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
        let live = self.backend.mode() == Mode::Live;
        let applied = record_failure(state, self.clock.as_ref(), target, failure, live).await?;
        Ok(Some(applied.incident().tag_for(key)))
    }
}
