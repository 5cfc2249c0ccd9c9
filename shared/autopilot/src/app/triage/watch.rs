//! The watchdog's tick: for each watched cluster, ListServices and DescribeServices in batches of
//! 10; for a service short of its desired count, since when (the state table remembers) and its
//! tasks that never reached RUNNING (ListTasks + DescribeTasks, only for such services); for a
//! service at its desired count, whether its open incident is over. Findings go through the same
//! folding as events (each finding has its own key, so one degradation notifies once); the
//! decisions are pure ([`crate::triage::watch`]).
//!
//! Cost of a tick over N watched services, S of them short: ⌈N/100⌉ ListServices, ⌈N/10⌉
//! DescribeServices, N GetItem (the short-since record) plus N − S GetItem (the incident), and for
//! each short service ListTasks + DescribeTasks; writes only when something changes. At most
//! `triage.watch.max_services` services per tick (a note says when the cap is reached).

use super::resolve::Recovered;
use super::signal::watched_service_arn;
use super::{TaskTriage, TriageOutcome, TriageResponse};
use crate::app::{Ports, State};
use crate::domain::ServiceSnapshot;
use crate::entry::Invocation;
use crate::error::Result;
use crate::keys::{self, incident_key, keyed_cluster, watch_key};
use crate::ports::Scope;
use crate::state::span_text;
use crate::triage::watch::{
    degraded, degraded_diagnosis, resolvable, stuck_diagnosis, stuck_tasks,
};

/// Tasks read per short service.
const TASKS_READ: u32 = 100;

/// Where a watched cluster lives: its account and region (from its ARN), and its name as state
/// keys carry it.
pub(super) struct Site {
    pub(super) scope: Option<Scope>,
    pub(super) keyed: String,
}

impl Site {
    fn account(&self) -> Option<&str> {
        self.scope.as_ref().map(|scope| scope.account.as_str())
    }

    fn region(&self) -> Option<&str> {
        self.scope.as_ref().map(|scope| scope.region.as_str())
    }
}

impl TaskTriage {
    /// One tick: the summaries of muting windows that ended, then the watched clusters.
    pub(super) async fn watch(&self, invocation: &Invocation) -> Result<TriageResponse> {
        let mut summaries = Vec::new();
        self.summarise_mutes(invocation, &mut summaries).await?;
        let mut response = self.watch_services(invocation).await?;
        if let TriageResponse::Tick { results, .. } = &mut response {
            summaries.append(results);
            *results = summaries;
        }
        Ok(response)
    }

    /// One tick over the watched clusters.
    async fn watch_services(&self, invocation: &Invocation) -> Result<TriageResponse> {
        let (mut checked, mut results, mut notes) = (0, Vec::new(), Vec::new());
        let watch = &self.config.watch;
        let (ports, state) = match (self.backend.ports(), self.backend.state_access()) {
            _ if watch.clusters.is_empty() => {
                notes.push("no cluster in triage.watch.clusters: nothing to watch".into());
                return Ok(TriageResponse::Tick {
                    tick: true,
                    checked,
                    results,
                    notes,
                });
            }
            (Some(ports), Some(state)) => (ports, state),
            (None, _) => {
                notes.push("offline: the watchdog needs ECS; nothing checked".into());
                return Ok(TriageResponse::Tick {
                    tick: true,
                    checked,
                    results,
                    notes,
                });
            }
            (Some(_), None) => {
                notes.push(
                    "no STATE_TABLE: the watchdog needs it to know since when a service is short"
                        .into(),
                );
                return Ok(TriageResponse::Tick {
                    tick: true,
                    checked,
                    results,
                    notes,
                });
            }
        };
        let mut budget = watch.max_services;
        let mut first_error = None;
        for cluster in &watch.clusters {
            let scope = Scope::of_arn(cluster.id());
            let account = scope.as_ref().map(|scope| scope.account.as_str());
            let site = Site {
                keyed: keyed_cluster(cluster.name(), account, self.accounts.home()),
                scope: scope.clone(),
            };
            let ports = &ports.in_scope(scope.as_ref()).await;
            if budget == 0 {
                notes.push(format!(
                    "cap of {} services per tick reached before cluster {}",
                    watch.max_services,
                    cluster.name()
                ));
                break;
            }
            let names: Vec<String> = ports
                .services
                .list_services(cluster.name(), budget)
                .await?
                .into_iter()
                .filter(|n| cluster.watches(n))
                .collect();
            budget = budget.saturating_sub(names.len() as u32);
            for chunk in names.chunks(10) {
                for (service, snapshot) in ports
                    .services
                    .describe_services(cluster.name(), chunk)
                    .await?
                {
                    if !snapshot.is_active() {
                        continue;
                    }
                    checked += 1;
                    if let Err(error) = self
                        .watch_service(
                            ports,
                            state,
                            cluster.name(),
                            &site,
                            &service,
                            &snapshot,
                            invocation,
                            &mut results,
                        )
                        .await
                    {
                        tracing::error!(
                            service,
                            error_type = error.error_type(),
                            "watchdog failed for a service: {error}"
                        );
                        notes.push(format!("{}/{service}: {error}", cluster.name()));
                        first_error.get_or_insert(error);
                    }
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(TriageResponse::Tick {
                tick: true,
                checked,
                results,
                notes,
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn watch_service(
        &self,
        ports: &Ports,
        state: State<'_>,
        cluster: &str,
        site: &Site,
        service: &str,
        snapshot: &ServiceSnapshot,
        invocation: &Invocation,
        results: &mut Vec<TriageOutcome>,
    ) -> Result<()> {
        let (now, watch, reader) = (self.clock.now_s(), &self.config.watch, state.reader());
        let watch_key = watch_key(&site.keyed, service);
        let (desired, running) = (snapshot.desired, snapshot.running);
        if running >= desired {
            if let Some(store) = state.writer() {
                if store.short_since(&watch_key).await?.is_some() {
                    store.set_short_since(&watch_key, None, now).await?;
                }
            }
            let Some((incident, _)) = reader
                .read_incident(&incident_key(&site.keyed, service))
                .await?
            else {
                return Ok(());
            };
            if !resolvable(
                &incident,
                desired,
                running,
                now,
                self.config.incidents.resolve_after_s,
            ) {
                return Ok(());
            }
            let by = format!(
                "{running} of {desired} tasks running with no new failure for {}",
                span_text(incident.last_signal_at, now)
            );
            let key = keys::claim_key(&format!("{watch_key}#recovered#{}", incident.id));
            let mut outcome =
                TriageOutcome::silent(None, None, Some(format!("{cluster}/{service}")));
            let home = self.home_scope();
            let scope = site.scope.as_ref().or(home.as_ref());
            let tagged = scope.and_then(|scope| watched_service_arn(scope, cluster, service));
            let recovery = Recovered {
                cluster,
                account: site.account(),
                service,
                key: &key,
                by: &by,
                region: site.region().or(self.region.as_deref()),
                at: now,
                tagged: tagged.as_deref(),
            };
            if self
                .resolve_incident(recovery, invocation, &mut outcome)
                .await?
            {
                results.push(outcome);
            }
            return Ok(());
        }
        let since = match reader.short_since(&watch_key).await? {
            Some(since) => since,
            None => {
                if let Some(store) = state.writer() {
                    store.set_short_since(&watch_key, Some(now), now).await?;
                }
                now
            }
        };
        if let Some(severity) = degraded(desired, running, since, now, watch.stuck_after_s) {
            let mut diagnosis =
                degraded_diagnosis(cluster, service, desired, running, since, now, severity);
            diagnosis.severity = severity;
            let key = format!("{watch_key}#service-degraded#{since}");
            results.push(
                self.tell_finding(cluster, site, service, key, diagnosis, invocation)
                    .await?,
            );
        }
        let tasks = ports
            .inspector
            .service_tasks(cluster, service, TASKS_READ)
            .await?;
        let stuck = stuck_tasks(&tasks, now, watch.pending_after_s);
        if let Some(oldest) = stuck.first() {
            let key = format!(
                "{watch_key}#stuck-pending#{}",
                oldest.task_arn.as_deref().unwrap_or("-")
            );
            let diagnosis = stuck_diagnosis(cluster, service, &stuck, now);
            results.push(
                self.tell_finding(cluster, site, service, key, diagnosis, invocation)
                    .await?,
            );
        }
        Ok(())
    }
}
