//! Resolving a service's incident: a steady state or a completed deployment after a failure
//! resolves the open incident once (conditional write), and one `resolved` notification says how
//! long it lasted, what it held (the incident's counts joined by the stops its storm windows
//! folded) and what ended it. The event's claim makes a retry send it again rather than lose it.

use super::{Decision, Diagnosed, TaskTriage, TriageOutcome, Via};
use crate::app::incident::{record_recovery, RecoverySignal};
use crate::entry::Invocation;
use crate::error::Result;
use crate::events::service::ServiceEvent;
use crate::incident::{apply_recovery, with_storms, Recovery};
use crate::keys::{incident_key, keyed_cluster, service_storm_key};
use crate::triage::service_report::resolved_notice;

/// What a recovery event says ended the incident; `None` for events that end nothing.
fn recovery_of(event: &ServiceEvent) -> Option<String> {
    match event.detail.event_name.as_str() {
        "SERVICE_STEADY_STATE" => Some("the service reached a steady state".into()),
        "SERVICE_DEPLOYMENT_COMPLETED" => Some(match &event.detail.deployment_id {
            Some(id) => format!("deployment {id} completed"),
            None => "a deployment completed".into(),
        }),
        _ => None,
    }
}

/// A recovery of a service: the signal's key, what ended the incident, the region for links.
#[derive(Debug, Clone, Copy)]
pub(super) struct Recovered<'a> {
    pub cluster: &'a str,
    /// The account of the service, when it says (keys of a member account's service carry it).
    pub account: Option<&'a str>,
    pub service: &'a str,
    pub key: &'a str,
    pub by: &'a str,
    pub region: Option<&'a str>,
    /// When it recovered (the event's time, a tick's), epoch s.
    pub at: i64,
    /// The service's ARN, when known: routing rules read its tags.
    pub tagged: Option<&'a str>,
}

impl TaskTriage {
    /// Resolves the service's open incident when `event` is a recovery; true when it did (or,
    /// dry-run, would), and the outcome says so.
    pub(super) async fn resolve(
        &self,
        diagnosed: &Diagnosed<'_>,
        event: &ServiceEvent,
        invocation: &Invocation,
        outcome: &mut TriageOutcome,
    ) -> Result<bool> {
        let (Some(by), Some((cluster, service))) = (recovery_of(event), diagnosed.service_of())
        else {
            return Ok(false);
        };
        let tagged = diagnosed.tagged_arn(self.home_scope().as_ref());
        let recovery = Recovered {
            cluster: &cluster,
            account: diagnosed.account(),
            service: &service,
            key: &diagnosed.dedup_key(),
            by: &by,
            region: event.region(),
            at: diagnosed.at(self.clock.now_s()),
            tagged: tagged.as_deref(),
        };
        self.resolve_incident(recovery, invocation, outcome).await
    }

    /// Resolves the incident of `recovery`'s service, once; true when it did (or, dry-run,
    /// would), and the outcome says so.
    pub(super) async fn resolve_incident(
        &self,
        recovery: Recovered<'_>,
        invocation: &Invocation,
        outcome: &mut TriageOutcome,
    ) -> Result<bool> {
        let Some(state) = self.backend.state_access() else {
            return Ok(false);
        };
        let Recovered {
            cluster,
            account,
            service,
            key,
            by,
            region,
            at,
            tagged,
        } = recovery;
        let keyed = keyed_cluster(cluster, account, self.accounts.home());
        let (incident_key, key, now, by) = (
            incident_key(&keyed, service),
            key.to_owned(),
            self.clock.now_s(),
            by.to_owned(),
        );
        // A read first: most steady states end nothing and cost no write.
        let Some((current, _)) = state.reader().read_incident(&incident_key).await? else {
            return Ok(false);
        };
        // The stops the service's storm windows counted beyond their first join an open
        // incident.
        let mut windows = Vec::new();
        let open_categories = current.counts.keys().filter(|_| current.is_open());
        for category in open_categories {
            let storm_key = service_storm_key(&keyed, service, category);
            if let Some(window) = state.reader().read_window(&storm_key).await? {
                windows.push((category.clone(), window));
            }
        }
        let merged = with_storms(&current, &windows);
        if apply_recovery(Some(&merged), &key, now, &by) == Recovery::Nothing {
            return Ok(false);
        }
        let Some(held) = self
            .take_delivery(state, &key, now, invocation, outcome)
            .await?
        else {
            return Ok(true);
        };
        let result = async {
            let signal = RecoverySignal {
                incident_key: &incident_key,
                key: &key,
                at: now,
                by: &by,
            };
            let recovery = record_recovery(state, self.clock.as_ref(), signal, &windows).await?;
            let (Recovery::Resolves(incident) | Recovery::ResolvedBefore(incident)) = recovery
            else {
                return Ok(());
            };
            if let Some(store) = state.writer() {
                let windows: Vec<String> = incident
                    .counts
                    .keys()
                    .map(|category| service_storm_key(&keyed, service, category))
                    .collect();
                store.close_windows(&windows).await?;
            }
            outcome.decision = Decision::Notify;
            outcome
                .notes
                .push(format!("incident {} resolved: {by}", incident.id));
            let notice = resolved_notice(&incident, region);
            outcome.incident = notice.incident.clone();
            let via = Via::claimed(held.as_ref(), invocation, now);
            self.deliver(notice, at, tagged, &via, outcome).await
        }
        .await;
        if let Some(held) = held {
            let decision = outcome.decision.as_str();
            outcome.notes.extend(
                held.settle(&result, decision, outcome.message_id.as_deref())
                    .await,
            );
        }
        result.map(|()| outcome.decision == Decision::Notify)
    }
}
