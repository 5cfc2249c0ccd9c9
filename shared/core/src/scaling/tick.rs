//! One service's decision on the tick (pure): its target policies' readings, the service as
//! observed, its scaling memory and the time → the part each signal played, the desired count
//! and the memory to keep. [`ServiceTick`] is what the tick answers for the service.
//!
//! Beyond [`target::decide`]: no scale-in while a deployment is in progress (as the alarm
//! path), unless the count is above the bounds; an alarm policy on the same service whose alarm
//! is in ALARM holds the current count (its own steps scale out; no target scales in under it);
//! a change is remembered as the service's last scale-out or scale-in, so the cooldowns of alarm
//! policies on the same service count it; the recommendation history keeps the targets' own
//! recommendations (the alarm path scales in no lower than the latest, see
//! [`crate::scaling::decide`]); and what is remembered of targets no longer configured is
//! dropped.

use std::collections::BTreeMap;

use serde::Serialize;

use super::schedule::ScheduledBounds;
use super::target::{
    self, parts_of, BoundedBy, Reading, ReadingEvent, ServiceLimits, ServiceTargets, SignalPart,
    TargetDecision,
};
use super::{Action, ScalingMemory, ServiceObservation};
use crate::domain::AlarmState;

/// An alarm policy on a service of target policies, with its alarm's state as the tick read it
/// (`None`: not read).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSignal {
    pub name: String,
    pub state: Option<AlarmState>,
    /// Why it was not read, when it was not.
    pub unread: Option<String>,
}

impl AlarmSignal {
    /// Its part: in ALARM it holds `current` (never less); otherwise no part in the size.
    fn part(&self, current: u32) -> SignalPart {
        let (recommendation, why) = match (self.state, &self.unread) {
            (Some(AlarmState::Alarm), _) => (
                Some(current),
                "in ALARM: holds the current count (its steps scale out)".to_owned(),
            ),
            (Some(state), _) => (None, format!("{}: no part in the size", state.as_str())),
            (None, unread) => (
                None,
                unread.clone().unwrap_or_else(|| "not read".to_owned()),
            ),
        };
        SignalPart {
            name: self.name.clone(),
            kind: "alarm".into(),
            value: None,
            recommendation,
            why,
        }
    }
}

/// Everything one service's tick looks at.
#[derive(Debug, Clone)]
pub struct TickInput<'a> {
    pub service: &'a ServiceTargets<'a>,
    /// Each target's reading, by the target's name (a missing one is a failed read).
    pub readings: &'a BTreeMap<String, Reading>,
    pub observed: ServiceObservation,
    pub memory: &'a ScalingMemory,
    /// The alarm policies on the same service.
    pub alarms: &'a [AlarmSignal],
    /// The bounds its open schedules set.
    pub scheduled: &'a ScheduledBounds,
    /// Epoch seconds.
    pub now: i64,
}

/// The tick's decision for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct TickDecision {
    pub signals: Vec<SignalPart>,
    /// Reads that began to fail for good, or recovered: told once each.
    pub events: Vec<ReadingEvent>,
    pub decision: TargetDecision,
    pub limits: ServiceLimits,
    pub action: Action,
    /// The scaling memory to record (written every tick: the history moves with time).
    pub memory: ScalingMemory,
    /// What the answer should say besides (schedules whose bounds crossed).
    pub notes: Vec<String>,
}

impl TickDecision {
    pub fn changes(&self) -> bool {
        self.action.changes()
    }

    /// How the record names it: `scale-out 0 -> 5 by orders-backlog`, or `tick: 3 held`.
    pub fn change_text(&self) -> String {
        let d = &self.decision;
        match self.action {
            Action::ScaleOut | Action::ScaleIn => format!(
                "{} {} -> {} by {}",
                self.action.as_str(),
                d.desired_from,
                d.desired_to,
                d.decided_by.as_deref().unwrap_or("bounds")
            ),
            _ => format!("tick: {} held", d.desired_to),
        }
    }
}

/// Decides one service's tick (see the module's rules).
pub fn decide_tick(input: &TickInput<'_>) -> TickDecision {
    let (now, current) = (input.now, input.observed.desired);
    let mut memory = input.memory.clone();
    let names: Vec<&str> = input.service.targets.iter().map(|(n, _)| *n).collect();
    memory
        .targets
        .zero_since
        .retain(|name, _| names.contains(&name.as_str()));
    memory
        .targets
        .failures
        .retain(|name, _| names.contains(&name.as_str()));
    let (mut signals, events) = parts_of(
        input.service,
        input.readings,
        input.observed.running,
        current,
        &mut memory.targets,
        now,
    );
    let mut limits = input.service.limits_at(current);
    let mut notes = input.scheduled.notes.clone();
    // An open schedule's bounds replace the policies' (as a scheduled action's capacity).
    let scheduled_min = input.scheduled.min.as_ref().map(|(min, _)| *min);
    let scheduled_max = input.scheduled.max.as_ref().map(|(max, _)| *max);
    limits.max = scheduled_max.unwrap_or(limits.max);
    limits.min = scheduled_min.unwrap_or(limits.min);
    if limits.min > limits.max {
        notes.push(format!(
            "min {} is above max {}: min lowered to it",
            limits.min, limits.max
        ));
        limits.min = limits.max;
    }
    // The history keeps what the targets recommend; an alarm's hold applies while it lasts.
    let targets_recommend = signals.iter().filter_map(|s| s.recommendation).max();
    let history = match targets_recommend {
        Some(recommended) => {
            memory
                .targets
                .history
                .with(now, recommended, current, limits.stabilization_s)
        }
        None => memory.targets.history.clone(),
    };
    signals.extend(input.alarms.iter().map(|alarm| alarm.part(current)));
    let mut decision = target::decide(limits, &signals, current, &memory.targets.history, now);
    decision.history = history;
    let by_schedule = match decision.bounded_by {
        Some(BoundedBy::Min) if scheduled_min == Some(limits.min) => input.scheduled.min.as_ref(),
        Some(BoundedBy::Max) if scheduled_max == Some(limits.max) => input.scheduled.max.as_ref(),
        _ => None,
    };
    if let Some((bound, name)) = by_schedule {
        decision.reason = format!("{}; schedule {name} sets {bound}", decision.reason);
        decision.bounded_by = Some(BoundedBy::Schedule(name.clone()));
    }
    // While a deployment is in progress only a count above max comes down (to max).
    let held = current.min(limits.max);
    if input.observed.deployment_in_progress && decision.desired_to < held {
        decision.reason = format!(
            "{}; scale-in to {} held at {held}: a deployment is in progress",
            decision.reason, decision.desired_to
        );
        decision.desired_to = held;
        decision.bounded_by = Some(match held < current {
            true => BoundedBy::Max,
            false => BoundedBy::Deployment,
        });
    }
    memory.targets.history = decision.history.clone();
    let action = match decision.desired_to.cmp(&current) {
        std::cmp::Ordering::Greater => Action::ScaleOut,
        std::cmp::Ordering::Less => Action::ScaleIn,
        std::cmp::Ordering::Equal => Action::None,
    };
    match action {
        Action::ScaleOut => memory.last_scale_out_at = Some(now),
        Action::ScaleIn => memory.last_scale_in_at = Some(now),
        Action::None | Action::Ignored => {}
    }
    TickDecision {
        signals,
        events,
        decision,
        limits,
        action,
        memory,
        notes,
    }
}

/// What the tick answers for one service (and the CLI's line shows).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceTick {
    /// `cluster/service`.
    pub service: String,
    pub signals: Vec<SignalPart>,
    pub desired_from: Option<u32>,
    pub desired_to: Option<u32>,
    /// The signal whose recommendation decided.
    pub decided_by: Option<String>,
    pub bounded_by: Option<BoundedBy>,
    pub action: Action,
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<ReadingEvent>,
    /// True when the service was not changed because of `--dry-run`, `--offline` or a
    /// policy's `dry_run`.
    pub dry_run: bool,
    /// The notices' message ids (a change, a read failing for good or recovering).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub message_ids: Vec<String>,
    /// Where each notice went (or would go).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<crate::domain::Routed>,
    pub notes: Vec<String>,
}

impl ServiceTick {
    /// The answer before anything is decided.
    pub fn pending(cluster: &str, service: &str, dry_run: bool) -> Self {
        Self {
            service: format!("{cluster}/{service}"),
            signals: Vec::new(),
            desired_from: None,
            desired_to: None,
            decided_by: None,
            bounded_by: None,
            action: Action::None,
            reason: String::new(),
            events: Vec::new(),
            dry_run,
            message_ids: Vec::new(),
            routes: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Takes what the decision says.
    pub fn record(&mut self, decided: &TickDecision) {
        let d = &decided.decision;
        self.signals = decided.signals.clone();
        self.desired_from = Some(d.desired_from);
        self.desired_to = Some(d.desired_to);
        self.decided_by = d.decided_by.clone();
        self.bounded_by = d.bounded_by.clone();
        self.action = decided.action;
        self.reason = d.reason.clone();
        self.events = decided.events.clone();
        self.notes.extend(decided.notes.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaling::target::{by_service, Fallback, SqsSignal, TargetPolicies, TargetPolicy};

    fn targets(stabilization_s: u64) -> TargetPolicies {
        let policy = TargetPolicy {
            cluster: "shop".into(),
            service: "orders-worker".into(),
            min: 0,
            max: 20,
            sqs: Some(SqsSignal {
                queues: vec!["https://sqs.us-east-1.amazonaws.com/111122223333/orders".into()],
                count_in_flight: false,
            }),
            metric: None,
            target_per_task: 50.0,
            activation: 0.0,
            scale_to_zero_after_s: 300,
            scale_in_stabilization_s: stabilization_s,
            max_step_out: None,
            max_step_in: None,
            fallback_after: 3,
            fallback: Fallback::Hold,
            dry_run: false,
        };
        [("orders".to_owned(), policy)].into()
    }

    fn tick(
        targets: &TargetPolicies,
        value: f64,
        observed: ServiceObservation,
        memory: &ScalingMemory,
        now: i64,
    ) -> TickDecision {
        tick_with_alarm(targets, value, observed, memory, None, now)
    }

    fn tick_with_alarm(
        targets: &TargetPolicies,
        value: f64,
        observed: ServiceObservation,
        memory: &ScalingMemory,
        alarm: Option<AlarmState>,
        now: i64,
    ) -> TickDecision {
        let services = by_service(targets).unwrap();
        let readings = [("orders".to_owned(), Reading::Value(value))].into();
        let alarms: Vec<AlarmSignal> = alarm
            .map(|state| AlarmSignal {
                name: "orders-backlog-high".into(),
                state: Some(state),
                unread: None,
            })
            .into_iter()
            .collect();
        decide_tick(&TickInput {
            service: &services[0],
            readings: &readings,
            observed,
            memory,
            alarms: &alarms,
            scheduled: &ScheduledBounds::default(),
            now,
        })
    }

    #[test]
    fn an_open_schedule_raising_min_scales_out_at_once_and_is_named() {
        let services_targets = {
            let mut t = targets(300);
            let policy = t.get_mut("orders").unwrap();
            policy.max_step_out = Some(target::StepLimit::Tasks(1));
            t
        };
        let services = by_service(&services_targets).unwrap();
        let readings = [("orders".to_owned(), Reading::Value(0.0))].into();
        let scheduled = ScheduledBounds {
            min: Some((6, "business-hours".into())),
            max: None,
            notes: Vec::new(),
        };
        let decided = decide_tick(&TickInput {
            service: &services[0],
            readings: &readings,
            observed: at(1),
            memory: &ScalingMemory::default(),
            alarms: &[],
            scheduled: &scheduled,
            now: 1000,
        });
        // Past the step limit (1) and whatever the queue says: 6 at once.
        assert_eq!(decided.decision.desired_to, 6);
        assert_eq!(
            decided.decision.bounded_by,
            Some(BoundedBy::Schedule("business-hours".into()))
        );
        assert!(decided
            .decision
            .reason
            .contains("schedule business-hours sets 6"));
        // The notice names the schedule that bounded it.
        let target = crate::scaling::report::Target {
            cluster: "shop",
            service: "orders-worker",
            region: None,
        };
        let notice = crate::scaling::report::tick_notice(target, &decided, false);
        let bounded = notice.facts.iter().find(|(k, _)| k == "Bounded by");
        assert_eq!(
            bounded.map(|(_, v)| v.as_str()),
            Some("schedule business-hours")
        );
        // A schedule's max below its min: min lowered to it, said.
        let crossed = ScheduledBounds {
            min: None,
            max: Some((3, "night".into())),
            notes: Vec::new(),
        };
        let mut with_min = services_targets.clone();
        with_min.get_mut("orders").unwrap().min = 5;
        let services = by_service(&with_min).unwrap();
        let decided = decide_tick(&TickInput {
            service: &services[0],
            readings: &readings,
            observed: at(8),
            memory: &ScalingMemory::default(),
            alarms: &[],
            scheduled: &crossed,
            now: 1000,
        });
        assert_eq!(decided.decision.desired_to, 3);
        assert_eq!(
            decided.decision.bounded_by,
            Some(BoundedBy::Schedule("night".into()))
        );
        assert!(decided.notes[0].contains("min lowered"), "{decided:?}");
    }

    #[test]
    fn an_alarm_in_alarm_holds_the_count_and_scales_out_only_through_its_steps() {
        // The alarm's steps took the service to 8; the queue asks for 2: held at 8, named.
        let held = tick_with_alarm(
            &targets(0),
            100.0,
            at(8),
            &ScalingMemory::default(),
            Some(AlarmState::Alarm),
            1000,
        );
        assert_eq!(held.decision.desired_to, 8);
        assert_eq!(
            held.decision.decided_by.as_deref(),
            Some("orders-backlog-high")
        );
        let alarm = held.signals.iter().find(|s| s.kind == "alarm").unwrap();
        assert_eq!(alarm.recommendation, Some(8));
        // The history keeps the target's own recommendation, not the alarm's hold.
        assert_eq!(held.memory.targets.history.0.last(), Some(&(1000, 2)));
        // The queue asks for more than the alarm holds: the queue decides.
        let out = tick_with_alarm(
            &targets(0),
            600.0,
            at(8),
            &ScalingMemory::default(),
            Some(AlarmState::Alarm),
            1000,
        );
        assert_eq!(out.decision.desired_to, 12);
        assert_eq!(out.decision.decided_by.as_deref(), Some("orders"));
        // Back to OK: the alarm has no part, and the queue's 2 applies (no window here).
        let ok = tick_with_alarm(
            &targets(0),
            100.0,
            at(8),
            &ScalingMemory::default(),
            Some(AlarmState::Ok),
            1000,
        );
        assert_eq!(ok.decision.desired_to, 2);
    }

    fn at(desired: u32) -> ServiceObservation {
        ServiceObservation {
            desired,
            running: desired,
            deployment_in_progress: false,
        }
    }

    #[test]
    fn a_change_is_remembered_as_the_services_last_scale_out_for_alarm_cooldowns() {
        let decided = tick(&targets(300), 250.0, at(0), &ScalingMemory::default(), 1000);
        assert_eq!(decided.action, Action::ScaleOut);
        assert_eq!(decided.decision.desired_to, 5);
        assert_eq!(decided.memory.last_scale_out_at, Some(1000));
        assert_eq!(decided.memory.last_scale_in_at, None);
        assert_eq!(decided.change_text(), "scale-out 0 -> 5 by orders");
    }

    #[test]
    fn no_scale_in_while_a_deployment_is_in_progress_unless_above_the_bounds() {
        let deploying = ServiceObservation {
            deployment_in_progress: true,
            ..at(5)
        };
        let decided = tick(
            &targets(0),
            50.0,
            deploying,
            &ScalingMemory::default(),
            1000,
        );
        assert_eq!(decided.decision.desired_to, 5);
        assert_eq!(decided.decision.bounded_by, Some(BoundedBy::Deployment));
        assert_eq!(decided.action, Action::None);
        assert!(
            decided.decision.reason.contains("deployment"),
            "{decided:?}"
        );
        assert_eq!(decided.change_text(), "tick: 5 held");

        let above_max = ServiceObservation {
            deployment_in_progress: true,
            ..at(30)
        };
        let decided = tick(
            &targets(0),
            50.0,
            above_max,
            &ScalingMemory::default(),
            1000,
        );
        assert_eq!(decided.decision.desired_to, 20);
        assert_eq!(decided.decision.bounded_by, Some(BoundedBy::Max));
        assert_eq!(decided.memory.last_scale_in_at, Some(1000));
    }

    #[test]
    fn what_is_remembered_of_a_target_no_longer_configured_is_dropped() {
        let mut memory = ScalingMemory::default();
        memory.targets.zero_since.insert("gone".into(), 10);
        memory.targets.failures.insert("gone".into(), 2);
        let decided = tick(&targets(300), 0.0, at(1), &memory, 1000);
        assert_eq!(
            decided.memory.targets.zero_since,
            [("orders".to_owned(), 1000)].into()
        );
        assert!(decided.memory.targets.failures.is_empty());
    }

    #[test]
    fn the_answer_takes_each_signals_part_and_the_decision() {
        let decided = tick(&targets(300), 250.0, at(0), &ScalingMemory::default(), 1000);
        let mut answer = ServiceTick::pending("shop", "orders-worker", false);
        answer.record(&decided);
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["service"], "shop/orders-worker");
        assert_eq!(json["signals"][0]["name"], "orders");
        assert_eq!(json["signals"][0]["value"], 250.0);
        assert_eq!(json["signals"][0]["recommendation"], 5);
        assert_eq!(
            (json["desired_from"].clone(), json["desired_to"].clone()),
            (0.into(), 5.into())
        );
        assert_eq!(json["action"], "scale-out");
        assert_eq!(json["decided_by"], "orders");
    }
}
