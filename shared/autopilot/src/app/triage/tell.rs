//! Telling: enrich a diagnosed signal (a stopped task's service and log tail; a service event's
//! service, deployments and recently stopped tasks; nothing more for a watchdog finding), word it
//! and deliver it.

use super::watch::Site;
use super::{Decision, Diagnosed, Signal, TaskTriage, TriageOutcome};
use crate::app::claim::HeldClaim;
use crate::app::publish::Occasion;
use crate::app::{enrich::enrich, Ports};
use crate::batch::report::completion_notice;
use crate::entry::Invocation;
use crate::error::Result;
use crate::events::service::ServiceEvent;
use crate::notify::Notice;
use crate::state::StormWindow;
use crate::state::CLI_LEASE_S;
use crate::triage::report::{self, Enrichment};
use crate::triage::service_report::{
    service_notice, wants_stopped_tasks, watch_notice, ServiceContext,
};
use crate::triage::{apply_override, classify, Diagnosis};

/// How many of a service's stopped tasks a failed deployment's notification reads.
const STOPPED_TASKS_READ: u32 = 10;

/// What a delivery carries besides the notice: the claim it is made under (destinations an
/// earlier attempt reached are skipped) and the invocation's deadline.
pub(super) struct Via<'a> {
    pub held: Option<&'a HeldClaim<'a>>,
    pub deadline_s: i64,
}

impl<'a> Via<'a> {
    pub fn unclaimed(invocation: &Invocation, now: i64) -> Self {
        Self {
            held: None,
            deadline_s: invocation.deadline_epoch_s(now, CLI_LEASE_S),
        }
    }

    pub fn claimed(held: Option<&'a HeldClaim<'a>>, invocation: &Invocation, now: i64) -> Self {
        Self {
            held,
            ..Self::unclaimed(invocation, now)
        }
    }
}

impl TaskTriage {
    /// Enriches, words and delivers the notification of `diagnosed`; with `storm`, the digest
    /// of its window.
    pub(super) async fn send(
        &self,
        diagnosed: &Diagnosed<'_>,
        storm: Option<&StormWindow>,
        previous_storm: Option<u64>,
        via: &Via<'_>,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        outcome.decision = Decision::Notify;
        let diagnosis = diagnosed.diagnosis;
        let notice = match &diagnosed.signal {
            Signal::Stop { change, batch } => {
                let enrichment = match self.backend.ports() {
                    Some(ports) => {
                        let ports = &ports.in_scope(diagnosed.scope().as_ref()).await;
                        enrich(ports, change, diagnosis, self.config.log_lines).await
                    }
                    None => Enrichment::default(),
                };
                outcome.notes.extend(enrichment.missing.iter().cloned());
                match (storm, batch) {
                    (Some(window), _) => {
                        report::storm_notice(change, diagnosis, &enrichment, window)
                    }
                    (None, Some(b)) => {
                        let notice =
                            report::task_notice(change, diagnosis, &enrichment, previous_storm);
                        completion_notice(notice, change, diagnosis, b)
                    }
                    (None, None) => {
                        report::task_notice(change, diagnosis, &enrichment, previous_storm)
                    }
                }
            }
            Signal::Service(event) => {
                let context = match self.backend.ports() {
                    Some(ports) => {
                        let ports = &ports.in_scope(diagnosed.scope().as_ref()).await;
                        self.service_context(ports, event, diagnosis).await
                    }
                    None => ServiceContext::default(),
                };
                outcome.notes.extend(context.missing.iter().cloned());
                service_notice(event, diagnosis, &context, storm, previous_storm)
            }
            Signal::Watch {
                cluster,
                service,
                scope,
                ..
            } => {
                let region = scope.as_ref().map(|s| s.region.as_str());
                let region = region.or(self.region.as_deref());
                watch_notice(cluster, service, diagnosis, storm, region)
            }
        };
        let at = diagnosed.at(self.clock.now_s());
        let tagged = diagnosed.tagged_arn(self.home_scope().as_ref());
        self.deliver(notice, at, tagged.as_deref(), via, outcome)
            .await
    }

    /// Routes and delivers `notice` (about something that happened `at`), tagged with the
    /// outcome's incident; a muting rule makes the decision `muted`.
    pub(super) async fn deliver(
        &self,
        mut notice: Notice,
        at: i64,
        tagged: Option<&str>,
        via: &Via<'_>,
        outcome: &mut TriageOutcome,
    ) -> Result<()> {
        notice.incident = outcome.incident.clone();
        let occasion = Occasion {
            at,
            tagged,
            known_tags: None,
            deadline_s: via.deadline_s,
        };
        let notes = &mut outcome.notes;
        let delivered = self
            .courier
            .deliver(&self.backend, &notice, occasion, via.held, notes)
            .await;
        let delivered = delivered?;
        if delivered.routed.muted {
            outcome.decision = Decision::Muted;
        }
        outcome.message_id = delivered.message_id;
        outcome.route = Some(delivered.routed);
        Ok(())
    }

    /// The function's own account and region, when known.
    pub(super) fn home_scope(&self) -> Option<crate::ports::Scope> {
        Some(crate::ports::Scope::new(
            self.accounts.home()?.to_owned(),
            self.region.clone()?,
        ))
    }

    /// The service's state and deployments, and (for failed deployments, rollbacks and
    /// impaired starts) its recently stopped tasks diagnosed; what cannot be read is said.
    async fn service_context(
        &self,
        ports: &Ports,
        event: &ServiceEvent,
        diagnosis: &Diagnosis,
    ) -> ServiceContext {
        let mut context = ServiceContext::default();
        let (Some(cluster), Some(service)) = (event.cluster_name(), event.service_name()) else {
            context
                .missing
                .push("the event names no service, so nothing about it could be read".into());
            return context;
        };
        let stopped = async {
            if !wants_stopped_tasks(diagnosis.category) {
                return Ok(Vec::new());
            }
            ports
                .inspector
                .recent_stopped_tasks(cluster, service, STOPPED_TASKS_READ)
                .await
        };
        let (snapshot, stopped) =
            tokio::join!(ports.services.describe_service(cluster, service), stopped);
        match snapshot {
            Ok(snapshot) => context.service = snapshot,
            Err(error) => context
                .missing
                .push(format!("service context could not be fetched: {error}")),
        }
        match stopped {
            Ok(tasks) => {
                context.stopped = tasks
                    .into_iter()
                    .map(|task| {
                        let classified = classify(&task);
                        let overridden = self.config.override_for(classified.category);
                        let diagnosis = apply_override(classified, overridden);
                        (task, diagnosis)
                    })
                    .collect()
            }
            Err(error) => context
                .missing
                .push(format!("stopped tasks could not be read: {error}")),
        }
        context
    }

    /// Folds and tells one finding like an event: its key makes a finding that persists over
    /// ticks notify once.
    pub(super) async fn tell_finding(
        &self,
        cluster: &str,
        site: &Site,
        service: &str,
        key: String,
        diagnosis: Diagnosis,
        invocation: &Invocation,
    ) -> Result<TriageOutcome> {
        let category = self.config.override_for(diagnosis.category);
        let diagnosis = apply_override(diagnosis, category);
        let outcome = TriageOutcome::silent(None, None, Some(format!("{cluster}/{service}")));
        let signal = Signal::Watch {
            cluster,
            service,
            key,
            scope: site.scope.clone(),
        };
        self.conclude(signal, diagnosis, invocation, outcome).await
    }
}
