//! The tick's target policies: read every signal (one GetQueueAttributes per queue, one
//! GetMetricData per 500 queries of an account), observe the services (DescribeServices per 10
//! of a cluster), read the alarms of alarm policies on those services (one DescribeAlarms), find
//! each service's open schedules, and for each service decide (pure, [`decide_tick`]), record
//! its scaling memory under the revision it read (deciding again after losing a race with another
//! invocation or an alarm), UpdateService, and tell a change, a signal failing for good and its
//! recovery.
//! Offline, the readings and the service are the ones the command line assumes.

use std::collections::BTreeMap;

use futures_util::future::join_all;

use super::{admitted, AlarmScaler, OFFLINE_SERVICE_USAGE, RECORD_ATTEMPTS};
use crate::app::contend::{retry_contended, Attempt, Contended};
use crate::app::publish::Occasion;
use crate::app::Ports;
use crate::arn::Arn;
use crate::domain::service_arn;
use crate::entry::{Invocation, Mode};
use crate::error::{AutopilotError, Result};
use crate::keys::memory_key;
use crate::ports::Scope;
use crate::scaling::report::{signal_notice, tick_notice, Target};
use crate::scaling::schedule::{bounds_at, ScheduledBounds};
use crate::scaling::target::{
    by_service, queue_place, MetricSignal, Reading, ServiceTargets, TargetPolicies,
};
use crate::scaling::tick::{decide_tick, AlarmSignal, ServiceTick, TickDecision, TickInput};
use crate::scaling::{ScalingMemory, ServiceObservation};
use crate::state::CLI_LEASE_S;
use crate::trust::Accounts;

/// Services one DescribeServices call takes.
const SERVICES_PER_CALL: usize = 10;

/// Every target's queues and metric are in an account the stack acts for, and its cluster too:
/// anything else is refused at cold start, naming the field.
pub(super) fn admitted_targets(targets: &TargetPolicies, accounts: &Accounts) -> Result<()> {
    for (name, target) in targets {
        let cluster = Arn::parse(&target.cluster).ok();
        let mut named: Vec<(String, Option<&str>)> =
            vec![("cluster".into(), cluster.as_ref().and_then(|c| c.account()))];
        if let Some(sqs) = &target.sqs {
            for (i, url) in sqs.queues.iter().enumerate() {
                let account = queue_place(url).map(|place| place.account);
                named.push((format!("sqs.queues[{i}]"), account));
            }
        }
        if let Some(metric) = &target.metric {
            named.push(("metric.account".into(), metric.account.as_deref()));
        }
        let named = named
            .iter()
            .map(|(field, account)| (field.as_str(), *account));
        admitted(&format!("scaling.targets.{name}"), named, accounts)?;
    }
    Ok(())
}

/// What one tick read: every target's reading, one service's alarm policies and open schedules.
#[derive(Clone, Copy)]
struct Signals<'a> {
    readings: &'a BTreeMap<String, Reading>,
    alarms: &'a [AlarmSignal],
    /// The bounds of the service's open schedules.
    scheduled: &'a ScheduledBounds,
}

/// What the command line assumes offline, where nothing is read.
#[derive(Debug, Clone, Default)]
pub struct Assumed {
    /// The service's counts (`--assume-desired` …).
    pub service: Option<ServiceObservation>,
    /// An `sqs` target's backlog by the target's name (`--assume-backlog NAME=N`).
    pub backlogs: BTreeMap<String, f64>,
    /// A `metric` target's value by the target's name (`--assume-metric NAME=V`).
    pub metrics: BTreeMap<String, f64>,
}

impl From<Option<ServiceObservation>> for Assumed {
    fn from(service: Option<ServiceObservation>) -> Self {
        Self {
            service,
            ..Self::default()
        }
    }
}

impl Assumed {
    /// Each assumed reading names a target of its kind: a typo is a usage error, not a reading
    /// silently unused.
    pub(super) fn check(&self, targets: &TargetPolicies) -> Result<()> {
        for (flag, kind, names) in [
            ("--assume-backlog", "sqs", &self.backlogs),
            ("--assume-metric", "metric", &self.metrics),
        ] {
            for name in names.keys() {
                match targets.get(name) {
                    Some(target) if target.kind() == kind => {}
                    Some(target) => {
                        return Err(AutopilotError::Usage(format!(
                            "{flag} {name}=…: target `{name}` reads {}, not {kind}",
                            target.kind()
                        )))
                    }
                    None => {
                        return Err(AutopilotError::Usage(format!(
                            "{flag} {name}=…: there is no target policy `{name}` \
                             (scaling.targets)"
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    fn reading(&self, name: &str) -> Option<f64> {
        self.backlogs.get(name).or(self.metrics.get(name)).copied()
    }
}

impl AlarmScaler {
    /// Sizes every service of a target policy; a service that fails is noted and the others go
    /// on, and the first failure is returned after all were tried (so that it is retried).
    pub(super) async fn tick_targets(
        &self,
        invocation: &Invocation,
        notes: &mut Vec<String>,
    ) -> (Vec<ServiceTick>, Option<AutopilotError>) {
        let services = match by_service(&self.targets) {
            Ok(services) => services,
            Err(error) => return (Vec::new(), Some(error)),
        };
        if services.is_empty() {
            return (Vec::new(), None);
        }
        let now = self.clock.now_s();
        let readings = self.read_signals(&services, now).await;
        let observed = self.observe_services(&services).await;
        let alarms = self.alarm_signals(&services).await;
        let (mut ticks, mut first_error) = (Vec::new(), None);
        for ((service, observed), alarms) in services.iter().zip(observed).zip(alarms) {
            let dry_run = self.backend.mode() != Mode::Live || service.dry_run();
            let mut tick = ServiceTick::pending(service.cluster, service.service, dry_run);
            let result = match observed {
                Ok(observed) => {
                    let scheduled = bounds_at(
                        self.schedules
                            .iter()
                            .filter(|(c, s, _)| c == service.cluster && s == service.service)
                            .map(|(_, _, schedule)| schedule),
                        now,
                    );
                    let signals = Signals {
                        readings: &readings,
                        alarms: &alarms,
                        scheduled: &scheduled,
                    };
                    self.size(service, signals, observed, invocation, &mut tick)
                        .await
                }
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                tracing::error!(
                    service = tick.service,
                    error_type = error.error_type(),
                    "tick failed for a service: {error}"
                );
                notes.push(format!("{}: {error}", tick.service));
                tick.reason = error.to_string();
                first_error.get_or_insert(error);
            } else {
                tracing::info!(
                    service = tick.service,
                    action = tick.action.as_str(),
                    from = tick.desired_from,
                    to = tick.desired_to,
                    reason = tick.reason,
                    "outcome"
                );
            }
            ticks.push(tick);
        }
        (ticks, first_error)
    }

    /// Every target's reading: a failed read is a reading too (counted towards its fallback).
    async fn read_signals(
        &self,
        services: &[ServiceTargets<'_>],
        now: i64,
    ) -> BTreeMap<String, Reading> {
        let targets = services.iter().flat_map(|s| s.targets.iter().copied());
        let Some(ports) = self.backend.ports() else {
            return targets
                .map(|(name, target)| {
                    let reading = match self.assumed.reading(name) {
                        Some(value) => Reading::Value(value),
                        None => Reading::Failed(format!(
                            "offline: pass --assume-{} {name}=N",
                            if target.sqs.is_some() {
                                "backlog"
                            } else {
                                "metric"
                            }
                        )),
                    };
                    (name.to_owned(), reading)
                })
                .collect();
        };
        let mut backlogs = Vec::new();
        let mut metrics: BTreeMap<Option<&str>, Vec<(String, MetricSignal)>> = BTreeMap::new();
        for (name, target) in targets {
            if let Some(sqs) = &target.sqs {
                backlogs.push(async move {
                    let reads = sqs
                        .queues
                        .iter()
                        .map(|url| self.queue_backlog(ports, url, sqs.count_in_flight));
                    let mut total = 0u64;
                    for read in join_all(reads).await {
                        match read {
                            Ok(backlog) => total = total.saturating_add(backlog),
                            Err(reason) => return (name.to_owned(), Reading::Failed(reason)),
                        }
                    }
                    (name.to_owned(), Reading::Value(total as f64))
                });
            }
            if let Some(metric) = &target.metric {
                metrics
                    .entry(metric.account.as_deref())
                    .or_default()
                    .push((name.to_owned(), metric.clone()));
            }
        }
        let metric_reads = metrics.into_iter().map(|(account, queries)| async move {
            let scope = account.and_then(|account| {
                let region = self.region.as_deref()?;
                Some(Scope::new(account, region))
            });
            let ports = ports.in_scope(scope.as_ref()).await;
            let read = ports.metrics.latest_values(&queries, now).await;
            queries
                .into_iter()
                .map(|(name, query)| {
                    let reading = match &read {
                        Ok(values) => match values.get(&name) {
                            Some(value) => Reading::Value(*value),
                            None => Reading::Failed(format!(
                                "no datapoint in the last {} s",
                                query.look_back_s()
                            )),
                        },
                        Err(error) => Reading::Failed(error.to_string()),
                    };
                    (name, reading)
                })
                .collect::<Vec<_>>()
        });
        let (backlogs, metrics) = tokio::join!(join_all(backlogs), join_all(metric_reads));
        backlogs
            .into_iter()
            .chain(metrics.into_iter().flatten())
            .collect()
    }

    /// Per service, the alarm policies that name it too, with their alarms' states (one
    /// DescribeAlarms for all): an alarm in ALARM holds the count the targets would lower.
    async fn alarm_signals(&self, services: &[ServiceTargets<'_>]) -> Vec<Vec<AlarmSignal>> {
        let named: Vec<Vec<&String>> = services
            .iter()
            .map(|s| {
                self.policies
                    .iter()
                    .filter(|(_, p)| p.cluster == s.cluster && p.service == s.service)
                    .map(|(name, _)| name)
                    .collect()
            })
            .collect();
        let all: Vec<String> = named.iter().flatten().map(|n| (*n).clone()).collect();
        let read = match (all.is_empty(), self.backend.ports()) {
            (true, _) => Ok(Vec::new()),
            (false, None) => Err("offline: the alarm is not read".to_owned()),
            (false, Some(ports)) => ports
                .alarms
                .current_alarms(&all)
                .await
                .map_err(|e| e.to_string()),
        };
        named
            .iter()
            .map(|names| {
                names
                    .iter()
                    .map(|name| {
                        let bound = self.policies.get(*name).and_then(|p| p.alarm_arn.as_ref());
                        let found = match &read {
                            Ok(alarms) => alarms
                                .iter()
                                .find(|a| {
                                    &a.alarm_name == *name
                                        && bound.is_none_or(|b| a.alarm_arn.as_ref() == Some(b))
                                })
                                .ok_or_else(|| {
                                    "DescribeAlarms here does not know it (another account's or \
                                     region's alarm is not read on the tick)"
                                        .to_owned()
                                }),
                            Err(error) => Err(error.clone()),
                        };
                        AlarmSignal {
                            name: (*name).clone(),
                            state: found.as_ref().ok().map(|a| a.state),
                            unread: found.err(),
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// One queue's backlog, read where the queue lives (a member's through its role).
    async fn queue_backlog(
        &self,
        ports: &Ports,
        url: &str,
        in_flight: bool,
    ) -> std::result::Result<u64, String> {
        let place = queue_place(url).ok_or_else(|| format!("`{url}` is not a queue URL"))?;
        let scope = Scope::new(place.account, place.region);
        let ports = ports.in_scope(Some(&scope)).await;
        ports
            .backlog
            .backlog(url, in_flight)
            .await
            .map_err(|error| format!("queue {}: {error}", place.name))
    }

    /// Each service as observed: DescribeServices for up to 10 services of a cluster a call;
    /// a service ECS does not know (or that is not active) names its policy.
    async fn observe_services(
        &self,
        services: &[ServiceTargets<'_>],
    ) -> Vec<Result<ServiceObservation>> {
        let not_found = |service: &ServiceTargets<'_>| AutopilotError::ServiceNotFound {
            cluster: service.cluster.to_owned(),
            service: service.service.to_owned(),
            field: format!(
                "scaling.targets.{}.service",
                service.targets.first().map_or("", |(name, _)| *name)
            ),
        };
        let Some(ports) = self.backend.ports() else {
            return services
                .iter()
                .map(|_| {
                    self.assumed
                        .service
                        .ok_or_else(|| AutopilotError::Usage(OFFLINE_SERVICE_USAGE.into()))
                })
                .collect();
        };
        let mut by_cluster: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for service in services {
            by_cluster
                .entry(service.cluster)
                .or_default()
                .push(service.service);
        }
        let calls = by_cluster.iter().flat_map(|(cluster, names)| {
            names
                .chunks(SERVICES_PER_CALL)
                .map(move |chunk| async move {
                    let ports = ports.in_scope(Scope::of_arn(cluster).as_ref()).await;
                    let names: Vec<String> = chunk.iter().map(|n| (*n).to_owned()).collect();
                    (
                        *cluster,
                        ports.services.describe_services(cluster, &names).await,
                    )
                })
        });
        let described = join_all(calls).await;
        services
            .iter()
            .map(|service| {
                let mut failed = None;
                for (cluster, answer) in &described {
                    if *cluster != service.cluster {
                        continue;
                    }
                    match answer {
                        Ok(found) => {
                            if let Some((_, snapshot)) =
                                found.iter().find(|(name, _)| name == service.service)
                            {
                                return match snapshot.is_active() {
                                    true => Ok(ServiceObservation::of(snapshot)),
                                    false => Err(not_found(service)),
                                };
                            }
                        }
                        Err(error) => failed = Some(error),
                    }
                }
                // One failed call answers for each of its services: each gets the same error.
                match failed {
                    Some(AutopilotError::Aws {
                        service,
                        operation,
                        code,
                        message,
                    }) => Err(AutopilotError::Aws {
                        service,
                        operation,
                        code: code.clone(),
                        message: message.clone(),
                    }),
                    Some(other) => Err(AutopilotError::Aws {
                        service: "ecs",
                        operation: "DescribeServices",
                        code: other.error_type().to_owned(),
                        message: other.to_string(),
                    }),
                    None => Err(not_found(service)),
                }
            })
            .collect()
    }

    /// Decides one service, records its memory, applies the change and tells.
    async fn size(
        &self,
        service: &ServiceTargets<'_>,
        signals: Signals<'_>,
        observed: ServiceObservation,
        invocation: &Invocation,
        tick: &mut ServiceTick,
    ) -> Result<()> {
        let (cluster, name) = (service.cluster, service.service);
        let key = memory_key(cluster, name);
        let resource = format!("scaling memory {key}");
        let contended = Contended {
            attempts: RECORD_ATTEMPTS,
            contender: &key,
            resource: &resource,
        };
        let mut observed = Some(observed);
        let decided = retry_contended(self.clock.as_ref(), contended, async |attempt| {
            // The first attempt uses the batch's observation; one that lost a race reads again.
            let observed = match observed.take() {
                Some(observed) => observed,
                None => self.observe_again(service).await?,
            };
            let (memory, revision) = match self.backend.state() {
                Some(state) => state.scaling_memory(&key).await?,
                None => (ScalingMemory::default(), 0),
            };
            let decided = decide_tick(&TickInput {
                service,
                readings: signals.readings,
                observed,
                memory: &memory,
                alarms: signals.alarms,
                scheduled: signals.scheduled,
                now: self.clock.now_s(),
            });
            let acting = self
                .backend
                .writers()
                .and_then(|writers| Some((writers, writers.state.as_deref()?)))
                .filter(|_| !tick.dry_run);
            let Some((writers, state)) = acting else {
                return Ok(Attempt::Done(decided));
            };
            let change = decided.change_text();
            if !state
                .record_scaling(&key, revision, &decided.memory, &change)
                .await?
            {
                let attempt = attempt + 1;
                tick.notes.push(format!(
                    "attempt {attempt}: another invocation scaled {cluster}/{name} first; decided again"
                ));
                return Ok(Attempt::Lost);
            }
            if !decided.changes() {
                return Ok(Attempt::Done(decided));
            }
            let writers = writers.in_scope(Scope::of_arn(cluster).as_ref()).await;
            let to = decided.decision.desired_to;
            if let Err(error) = writers.scaling.set_desired_count(cluster, name, to).await {
                // Only the change times go back: the readings' memory is still true.
                let reverted = ScalingMemory {
                    last_scale_out_at: memory.last_scale_out_at,
                    last_scale_in_at: memory.last_scale_in_at,
                    ..decided.memory.clone()
                };
                let undo = "reverted: UpdateService failed";
                if let Err(revert) = state.record_scaling(&key, revision + 1, &reverted, undo).await
                {
                    tracing::warn!("could not revert the scaling memory of {key}: {revert}");
                }
                return Err(error);
            }
            Ok(Attempt::Done(decided))
        })
        .await?;
        tick.record(&decided);
        self.tell(service, &decided, invocation, tick).await
    }

    async fn observe_again(&self, service: &ServiceTargets<'_>) -> Result<ServiceObservation> {
        let one = std::slice::from_ref(service);
        self.observe_services(one)
            .await
            .pop()
            .unwrap_or_else(|| Err(AutopilotError::Usage("no service observed".into())))
    }

    /// A change, and each signal failing for good or recovering, is told.
    async fn tell(
        &self,
        service: &ServiceTargets<'_>,
        decided: &TickDecision,
        invocation: &Invocation,
        tick: &mut ServiceTick,
    ) -> Result<()> {
        let (cluster, name) = (service.cluster, service.service);
        let cluster_arn = Arn::parse(cluster).ok();
        let region = cluster_arn.as_ref().and_then(Arn::region);
        let target = Target {
            cluster,
            service: name,
            region: region.or(self.region.as_deref()),
        };
        let mut notices = Vec::new();
        if decided.changes() {
            notices.push(tick_notice(target, decided, service.dry_run()));
        }
        for event in &decided.events {
            let fallback = service.fallback_of(event.target()).unwrap_or_default();
            notices.push(signal_notice(target, event, fallback));
        }
        let now = self.clock.now_s();
        // A plain cluster name is in the stack's own account and region.
        let home = match (self.accounts.home(), self.region.as_deref()) {
            (Some(account), Some(region)) => {
                Arn::parse(&format!("arn:aws:ecs:{region}:{account}:cluster/{cluster}")).ok()
            }
            _ => None,
        };
        let service_arn = service_arn(cluster, name, home.as_ref());
        for notice in notices {
            let occasion = Occasion {
                at: now,
                tagged: service_arn.as_deref(),
                known_tags: None,
                deadline_s: invocation.deadline_epoch_s(now, CLI_LEASE_S),
            };
            match self
                .courier
                .deliver(&self.backend, &notice, occasion, None, &mut tick.notes)
                .await
            {
                Ok(delivered) => {
                    tick.message_ids.extend(delivered.message_id);
                    tick.routes.push(delivered.routed);
                }
                // The service was changed and that is recorded; the error that reaches the
                // on-failure destination says so.
                Err(error) if decided.changes() && !tick.dry_run => {
                    let d = &decided.decision;
                    let action = format!(
                        "{cluster}/{name} was scaled {} -> {}",
                        d.desired_from, d.desired_to
                    );
                    return Err(AutopilotError::NotificationLost {
                        action,
                        cause: error.to_string(),
                    });
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}
