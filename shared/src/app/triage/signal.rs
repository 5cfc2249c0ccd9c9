//! What `task-triage` tells about — a stopped task, a service event or a watchdog finding —
//! with its diagnosis, and the keys it is claimed, folded and filed under.

use crate::batch::report::BatchTask;
use crate::events::ecs::TaskStateChange;
use crate::events::service::ServiceEvent;
use crate::state;
use crate::triage::{storm_key, storm_reason, Diagnosis};

/// What is being told about: a stopped task (and its batch job) or a service event.
pub(super) enum Signal<'a> {
    Stop {
        change: &'a TaskStateChange,
        batch: Option<&'a BatchTask>,
    },
    Service(&'a ServiceEvent),
    /// What the watchdog saw of a service; `key` names this very finding.
    Watch {
        cluster: &'a str,
        service: &'a str,
        key: String,
    },
}

/// A signal with its diagnosis.
pub(super) struct Diagnosed<'a> {
    pub(super) signal: Signal<'a>,
    pub(super) diagnosis: &'a Diagnosis,
}

impl Diagnosed<'_> {
    /// The claim key of this delivery.
    pub(super) fn dedup_key(&self) -> String {
        match &self.signal {
            Signal::Stop { change, .. } => {
                let task = &change.detail;
                let arn = task.task_arn.as_deref().unwrap_or_default();
                state::dedup_key(arn, task.version, change.id.as_deref())
            }
            Signal::Service(event) => {
                let service = event.service_arn.as_deref().unwrap_or("service");
                state::dedup_key(service, None, event.id.as_deref())
            }
            Signal::Watch { key, .. } => format!("{}{key}", state::DEDUP_PREFIX),
        }
    }

    /// The (cluster, service) whose incident it belongs to; none for a standalone task.
    pub(super) fn service_of(&self) -> Option<(String, String)> {
        match &self.signal {
            Signal::Stop { change, .. } => {
                let task = &change.detail;
                let service = task.task_group().as_ref()?.service()?.to_owned();
                Some((task.cluster_name()?.to_owned(), service))
            }
            Signal::Service(event) => Some((
                event.cluster_name()?.to_owned(),
                event.service_name()?.to_owned(),
            )),
            Signal::Watch {
                cluster, service, ..
            } => Some(((*cluster).to_owned(), (*service).to_owned())),
        }
    }

    /// The storm window it counts in, and the raw reason the window keeps.
    /// What the signal says, worded for people, as an incident keeps it among its latest
    /// reasons (`orders-api: exited with code 1 (application error)`); ECS's own words stay in
    /// the storm window and the evidence.
    pub(super) fn incident_reason(&self) -> String {
        let title = &self.diagnosis.title;
        match &self.diagnosis.container {
            Some(container) => format!("{container}: {title}"),
            None => title.clone(),
        }
    }

    pub(super) fn storm(&self) -> (String, String) {
        let category = self.diagnosis.category;
        match &self.signal {
            Signal::Stop { change, .. } => (
                storm_key(&change.detail, category),
                storm_reason(&change.detail),
            ),
            Signal::Service(event) => {
                let cluster = event.cluster_name().unwrap_or("-");
                let service = event.service_name().unwrap_or("-");
                let detail = &event.detail;
                let reason = detail
                    .reason
                    .clone()
                    .unwrap_or_else(|| detail.reasons.join(", "));
                let key = state::service_storm_key(cluster, service, category.as_str());
                (key, reason)
            }
            Signal::Watch {
                cluster, service, ..
            } => {
                let key = state::service_storm_key(cluster, service, category.as_str());
                (key, self.diagnosis.title.clone())
            }
        }
    }
}
