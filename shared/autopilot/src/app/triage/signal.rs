//! What `task-triage` tells about — a stopped task, a service event or a watchdog finding —
//! with its diagnosis, and the keys it is claimed, folded and filed under.

use crate::batch::report::BatchTask;
use crate::domain;
use crate::events::ecs::TaskStateChange;
use crate::events::service::ServiceEvent;
use crate::keys;
use crate::ports::Scope;
use crate::triage::{storm_reason, Diagnosis};

/// The ARN of a watched service: `cluster` is a name or an ARN.
pub(super) fn watched_service_arn(scope: &Scope, cluster: &str, service: &str) -> Option<String> {
    let name = crate::arn::last_segment(cluster);
    let Scope { account, region } = scope;
    Some(format!(
        "arn:aws:ecs:{region}:{account}:service/{name}/{service}"
    ))
}

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
        /// The watched cluster's account and region, when its ARN names them.
        scope: Option<Scope>,
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
                keys::dedup_key(arn, task.version, change.id.as_deref())
            }
            Signal::Service(event) => {
                let service = event.service_arn.as_deref().unwrap_or("service");
                keys::dedup_key(service, None, event.id.as_deref())
            }
            Signal::Watch { key, .. } => keys::claim_key(key),
        }
    }

    /// The account it comes from, when it says (a watchdog finding: the watched cluster's).
    pub(super) fn account(&self) -> Option<&str> {
        match &self.signal {
            Signal::Stop { change, .. } => change.account.as_deref(),
            Signal::Service(event) => event.account.as_deref(),
            Signal::Watch { scope, .. } => scope.as_ref().map(|scope| scope.account.as_str()),
        }
    }

    /// Where its ECS and Logs reads go: the account and region it comes from.
    pub(super) fn scope(&self) -> Option<Scope> {
        match &self.signal {
            Signal::Stop { change, .. } => Scope::of_event(
                change.account.as_deref(),
                change.region.as_deref(),
                change.detail.task_arn.as_deref(),
            ),
            Signal::Service(event) => Scope::of_event(
                event.account.as_deref(),
                event.region.as_deref(),
                event.service_arn.as_deref(),
            ),
            Signal::Watch { scope, .. } => scope.clone(),
        }
    }

    /// When it happened (epoch s): the event's `time` (parsed with the event), else `now` (a
    /// watchdog finding is the tick's, an event without a time arrives now). Routing windows
    /// are evaluated at this time.
    pub(super) fn at(&self, now: i64) -> i64 {
        let time = match &self.signal {
            Signal::Stop { change, .. } => change.time.map(|t| t.timestamp()),
            Signal::Service(event) => event.at,
            Signal::Watch { .. } => None,
        };
        time.unwrap_or(now)
    }

    /// The ARN whose tags routing rules read: the service's (a service's task, a service event,
    /// a watchdog finding: in the watched cluster's account and region, else `home`'s) or, for
    /// a standalone task, the task's.
    pub(super) fn tagged_arn(&self, home: Option<&Scope>) -> Option<String> {
        match &self.signal {
            Signal::Stop { change, .. } => {
                let task = &change.detail;
                match (self.service_of(), task.cluster_arn.as_deref()) {
                    (Some((_, service)), Some(cluster_arn)) => {
                        domain::service_arn(cluster_arn, &service, None)
                    }
                    (Some(_), None) => None,
                    (None, _) => task.task_arn.as_deref().map(str::to_owned),
                }
            }
            Signal::Service(event) => event.service_arn.as_deref().map(str::to_owned),
            Signal::Watch {
                cluster,
                service,
                scope,
                ..
            } => watched_service_arn(scope.as_ref().or(home)?, cluster, service),
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

    /// The storm window it counts in (its cluster keyed for the account, see
    /// [`keys::keyed_cluster`]), and the raw reason the window keeps.
    pub(super) fn storm(&self, home: Option<&str>) -> (String, String) {
        let category = self.diagnosis.category;
        let keyed = |cluster: &str| keys::keyed_cluster(cluster, self.account(), home);
        match &self.signal {
            Signal::Stop { change, batch } => {
                let task = &change.detail;
                let cluster = keyed(task.cluster_name().unwrap_or("-"));
                // A job's tasks storm by job, and by attempt when the run is recorded: jobs
                // sharing a task definition do not fold into each other, and each attempt of a
                // retried run is told.
                let job_group = batch.map(|b| match &b.run {
                    Some(view) => format!(
                        "job:{}#{}#a{}",
                        b.job,
                        view.record.run_id,
                        view.record.current().map_or(1, |a| a.number)
                    ),
                    None => format!("job:{}", b.job),
                });
                let group = job_group
                    .as_deref()
                    .unwrap_or(task.group.as_deref().unwrap_or("-"));
                let key = keys::storm_key(&cluster, group, category.as_str());
                (key, storm_reason(task))
            }
            Signal::Service(event) => {
                let cluster = &keyed(event.cluster_name().unwrap_or("-"));
                let service = event.service_name().unwrap_or("-");
                let detail = &event.detail;
                let reason = detail
                    .reason
                    .clone()
                    .unwrap_or_else(|| detail.reasons.join(", "));
                let key = keys::service_storm_key(cluster, service, category.as_str());
                (key, reason)
            }
            Signal::Watch {
                cluster, service, ..
            } => {
                let key = keys::service_storm_key(&keyed(cluster), service, category.as_str());
                (key, self.diagnosis.title.clone())
            }
        }
    }
}
