//! Step-scaling decisions for `alarm-scaler` (pure, no I/O): alarm state + policy + observed
//! service + scaling memory + clock → one [`ScalingDecision`].
//!
//! Safety rules, in the order they are checked:
//! - INSUFFICIENT_DATA never scales; OK scales in only when the policy has `ok_steps`.
//! - A tick repeats only the ALARM step, only with `repeat_while_alarm`, and waits while
//!   running < desired (the last step has not materialised) unless two cooldowns have passed.
//! - No scale-in while a deployment is in progress.
//! - Bounds are the policy's [min, max] intersected with the Application Auto Scaling scalable
//!   target's, when one is registered; the result never leaves them.
//! - Cooldowns per direction: a scale-out may interrupt a scale-in cooldown; a scale-in waits for
//!   both its own cooldown and the scale-out cooldown.
//! - A scale-out never lowers desired; a scale-in never raises it.

pub mod outcome;
pub mod policy;
pub mod report;
pub mod schedule;
pub mod target;
pub mod tick;

#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::domain::{AlarmState, ServiceSnapshot};
pub use policy::{AdjustmentType, AlarmPolicies, ScalingConfig, ScalingPolicy, Step};

/// What woke the scaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// An alarm state transition (EventBridge, alarm action or SNS).
    Transition,
    /// The periodic tick re-reading an alarm that is still in its state.
    Tick,
}

/// The service as observed (or assumed, offline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct ServiceObservation {
    pub desired: u32,
    pub running: u32,
    pub deployment_in_progress: bool,
}

impl ServiceObservation {
    /// What the scaler sees of a service: its counts, and whether a deployment is in progress
    /// (the primary rollout is `IN_PROGRESS`, or more than one deployment exists), which blocks
    /// scale-in.
    pub fn of(snapshot: &ServiceSnapshot) -> Self {
        Self {
            desired: snapshot.desired.max(0) as u32,
            running: snapshot.running.max(0) as u32,
            deployment_in_progress: snapshot.rollout_state.as_deref() == Some("IN_PROGRESS")
                || snapshot.deployments > 1,
        }
    }
}

/// Bounds of a registered Application Auto Scaling scalable target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TargetBounds {
    pub min: u32,
    pub max: u32,
}

/// What the scaler keeps per service: when it last scaled it (epoch seconds), for the
/// cooldowns of every signal of the service, and what its target policies remember.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ScalingMemory {
    pub last_scale_out_at: Option<i64>,
    pub last_scale_in_at: Option<i64>,
    pub targets: target::TargetMemory,
}

impl ScalingMemory {
    fn last_change_at(&self) -> Option<i64> {
        self.last_scale_out_at.max(self.last_scale_in_at)
    }
}

/// Everything a decision looks at.
#[derive(Debug, Clone)]
pub struct ScalingInput<'a> {
    pub policy: &'a ScalingPolicy,
    pub state: AlarmState,
    pub trigger: Trigger,
    /// The metric value the alarm evaluated, when the event carries one.
    pub metric_value: Option<f64>,
    pub threshold: Option<f64>,
    pub service: ServiceObservation,
    pub target_bounds: Option<TargetBounds>,
    pub memory: ScalingMemory,
    /// Epoch seconds.
    pub now: i64,
}

/// The direction of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    ScaleOut,
    ScaleIn,
    None,
    /// The alarm is not one the stack acts for (another account): nothing looked at.
    Ignored,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScaleOut => "scale-out",
            Self::ScaleIn => "scale-in",
            Self::None => "none",
            Self::Ignored => "ignored",
        }
    }

    /// Whether it changes a desired count.
    pub fn changes(self) -> bool {
        matches!(self, Self::ScaleOut | Self::ScaleIn)
    }
}

/// Which bound limited the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClampedBy {
    PolicyMin,
    PolicyMax,
    ScalableTargetMin,
    ScalableTargetMax,
}

impl ClampedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PolicyMin => "policy-min",
            Self::PolicyMax => "policy-max",
            Self::ScalableTargetMin => "scalable-target-min",
            Self::ScalableTargetMax => "scalable-target-max",
        }
    }
}

/// The step that applied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChosenStep {
    /// Index in `alarm_steps` or `ok_steps`.
    pub index: usize,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub adjustment: i64,
    pub adjustment_type: AdjustmentType,
    /// `metric value − threshold`, when both were known.
    pub metric_delta: Option<f64>,
    /// True when the event carried no usable value and the step at the threshold was used.
    pub assumed_at_threshold: bool,
}

/// Why nothing changed, when that is worth naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    InsufficientData,
    NoOkSteps,
    NotInAlarm,
    RepeatDisabled,
    AwaitingCapacity,
    DeploymentInProgress,
    BoundsConflict,
    AtMax,
    AtMin,
    Cooldown,
    NoStepCovers,
    /// A target policy on the same service recommends more than the scale-in would leave.
    TargetHolds,
}

impl Refusal {
    /// Whether users should hear about it (on a transition; ticks never notify refusals).
    pub fn worth_notifying(self) -> bool {
        matches!(
            self,
            Self::AtMax | Self::BoundsConflict | Self::NoStepCovers
        )
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingDecision {
    pub action: Action,
    pub from: u32,
    pub to: u32,
    pub reason: String,
    pub step: Option<ChosenStep>,
    pub clamped_by: Option<ClampedBy>,
    pub refusal: Option<Refusal>,
}

impl ScalingDecision {
    fn none(from: u32, refusal: Option<Refusal>, reason: String) -> Self {
        Self {
            action: Action::None,
            from,
            to: from,
            reason,
            step: None,
            clamped_by: None,
            refusal,
        }
    }

    pub fn changes(&self) -> bool {
        self.action.changes()
    }

    /// Whether users hear about it: any change, and on a transition (never on a tick) a
    /// refusal worth naming.
    pub fn worth_telling(&self, trigger: Trigger) -> bool {
        self.changes()
            || (trigger == Trigger::Transition
                && self.refusal.is_some_and(Refusal::worth_notifying))
    }

    /// The scaling memory once this change is made at `now`.
    pub fn memory_after(&self, memory: ScalingMemory, now: i64) -> ScalingMemory {
        match self.action {
            Action::ScaleOut => ScalingMemory {
                last_scale_out_at: Some(now),
                ..memory
            },
            Action::ScaleIn => ScalingMemory {
                last_scale_in_at: Some(now),
                ..memory
            },
            Action::None | Action::Ignored => memory,
        }
    }

    /// How the change is recorded: `scale-out 2 -> 4 by <alarm>`.
    pub fn change_text(&self, alarm: &str) -> String {
        format!(
            "{} {} -> {} by {alarm}",
            self.action.as_str(),
            self.from,
            self.to
        )
    }
}

/// How long a transition claim is kept (alarm deliveries are retried for at most a day).
pub const TRANSITION_TTL_S: u64 = 2 * 24 * 3600;

/// The service a policy scales: its own `cluster` and `service`, never the alarm's dimensions
/// (whoever shapes an alarm would pick the service).
pub fn scaled_service(policy: &ScalingPolicy) -> (&str, &str) {
    (&policy.cluster, &policy.service)
}

/// The alarms a tick re-reads: those whose policies repeat while in ALARM.
pub fn repeating_alarms(policies: &AlarmPolicies) -> Vec<String> {
    policies
        .iter()
        .filter(|(_, policy)| policy.repeat_while_alarm)
        .map(|(name, _)| name.clone())
        .collect()
}

/// The effective bounds: policy ∩ scalable target, with the bound that set each side.
fn effective_bounds(
    policy: &ScalingPolicy,
    target: Option<TargetBounds>,
) -> (u32, ClampedBy, u32, ClampedBy) {
    let mut min = (policy.min, ClampedBy::PolicyMin);
    let mut max = (policy.max, ClampedBy::PolicyMax);
    if let Some(target) = target {
        if target.min > min.0 {
            min = (target.min, ClampedBy::ScalableTargetMin);
        }
        if target.max < max.0 {
            max = (target.max, ClampedBy::ScalableTargetMax);
        }
    }
    (min.0, min.1, max.0, max.1)
}

/// The step whose range holds `delta` (see [`Step::contains`]); with no delta, the step at the
/// threshold: the one starting at 0 above it (ALARM) or ending at 0 below it (OK).
pub fn select_step(steps: &[Step], delta: Option<f64>, scale_out: bool) -> Option<(usize, &Step)> {
    let (value, upper_inclusive) = match delta {
        Some(delta) => (delta, delta < 0.0 || (delta == 0.0 && !scale_out)),
        None => (0.0, !scale_out),
    };
    steps
        .iter()
        .enumerate()
        .find(|(_, step)| step.contains(value, upper_inclusive))
}

/// The raw desired count a step asks for (before bounds), as Application Auto Scaling computes
/// it: `percent` rounds toward zero beyond ±1, to ±1 within it, honours
/// `min_adjustment_magnitude`, and from zero tasks adds at least one.
pub fn apply_adjustment(
    adjustment_type: AdjustmentType,
    adjustment: i64,
    current: u32,
    min_adjustment_magnitude: Option<u32>,
) -> i64 {
    let current = i64::from(current);
    match adjustment_type {
        AdjustmentType::Change => current.saturating_add(adjustment),
        AdjustmentType::Exact => adjustment,
        AdjustmentType::Percent => {
            let exact = current as f64 * adjustment as f64 / 100.0;
            let mut change = if exact >= 1.0 {
                exact.floor() as i64
            } else if exact <= -1.0 {
                exact.ceil() as i64
            } else if exact > 0.0 {
                1
            } else if exact < 0.0 {
                -1
            } else if adjustment > 0 {
                // From zero tasks a percentage is zero; scaling from zero must still start one.
                1
            } else {
                0
            };
            if let Some(magnitude) = min_adjustment_magnitude {
                let magnitude = i64::from(magnitude);
                if change != 0 && change.abs() < magnitude {
                    change = change.signum() * magnitude;
                } else if change == 0 && adjustment < 0 && current > 0 {
                    change = -magnitude;
                }
            }
            current.saturating_add(change)
        }
    }
}

fn within_cooldown(last: Option<i64>, cooldown_s: u64, now: i64) -> Option<i64> {
    let last = last?;
    let until = last.saturating_add(cooldown_s as i64);
    (now < until).then_some(until - now)
}

/// Decides one step for one alarm.
pub fn decide(input: &ScalingInput<'_>) -> ScalingDecision {
    let policy = input.policy;
    let current = input.service.desired;
    let scale_out = match input.state {
        AlarmState::InsufficientData => {
            return ScalingDecision::none(
                current,
                Some(Refusal::InsufficientData),
                "INSUFFICIENT_DATA never scales".into(),
            )
        }
        AlarmState::Alarm => true,
        AlarmState::Ok => false,
    };
    if input.trigger == Trigger::Tick {
        if !scale_out {
            return ScalingDecision::none(
                current,
                Some(Refusal::NotInAlarm),
                "not in ALARM: ticks only repeat ALARM steps".into(),
            );
        }
        if !policy.repeat_while_alarm {
            return ScalingDecision::none(
                current,
                Some(Refusal::RepeatDisabled),
                "still in ALARM, but the policy does not repeat_while_alarm".into(),
            );
        }
        let since_change = input
            .memory
            .last_change_at()
            .map(|at| input.now.saturating_sub(at));
        let patience = policy.scale_out_cooldown_s.saturating_mul(2) as i64;
        if input.service.running < input.service.desired
            && since_change.is_some_and(|s| s < patience)
        {
            return ScalingDecision::none(
                current,
                Some(Refusal::AwaitingCapacity),
                format!(
                    "waiting for the last step to materialise: {} running of {} desired",
                    input.service.running, input.service.desired
                ),
            );
        }
    }
    if !scale_out && policy.ok_steps.is_empty() {
        return ScalingDecision::none(
            current,
            Some(Refusal::NoOkSteps),
            "OK: the policy has no ok_steps, so it does not scale in".into(),
        );
    }
    if !scale_out && input.service.deployment_in_progress {
        return ScalingDecision::none(
            current,
            Some(Refusal::DeploymentInProgress),
            "no scale-in while a deployment is in progress".into(),
        );
    }
    let (min, min_by, max, max_by) = effective_bounds(policy, input.target_bounds);
    if min > max {
        return ScalingDecision::none(
            current,
            Some(Refusal::BoundsConflict),
            format!(
                "policy bounds [{}, {}] and the scalable target's do not overlap (effective min {min} > max {max})",
                policy.min, policy.max
            ),
        );
    }
    if scale_out && current >= max {
        return ScalingDecision::none(
            current,
            Some(Refusal::AtMax),
            format!("at max ({max}, {}) while still in ALARM", max_by.as_str()),
        );
    }
    if !scale_out && current <= min {
        return ScalingDecision::none(
            current,
            Some(Refusal::AtMin),
            format!("at min ({min}, {})", min_by.as_str()),
        );
    }
    let cooldown = if scale_out {
        within_cooldown(
            input.memory.last_scale_out_at,
            policy.scale_out_cooldown_s,
            input.now,
        )
        .map(|left| format!("scale-out cooldown: {left} s left"))
    } else {
        within_cooldown(
            input.memory.last_scale_out_at,
            policy.scale_out_cooldown_s,
            input.now,
        )
        .map(|left| format!("scale-out cooldown blocks scale-in: {left} s left"))
        .or_else(|| {
            within_cooldown(
                input.memory.last_scale_in_at,
                policy.scale_in_cooldown_s,
                input.now,
            )
            .map(|left| format!("scale-in cooldown: {left} s left"))
        })
    };
    if let Some(reason) = cooldown {
        return ScalingDecision::none(current, Some(Refusal::Cooldown), reason);
    }
    let delta = match (input.metric_value, input.threshold) {
        (Some(value), Some(threshold)) if (value - threshold).is_finite() => {
            Some(value - threshold)
        }
        _ => None,
    };
    let steps = policy.steps(scale_out);
    let Some((index, step)) = select_step(steps, delta, scale_out) else {
        let what = delta.map_or("the threshold".to_owned(), |d| format!("metric delta {d}"));
        return ScalingDecision::none(
            current,
            Some(Refusal::NoStepCovers),
            format!("no step covers {what}"),
        );
    };
    let chosen = ChosenStep {
        index,
        lower: step.lower,
        upper: step.upper,
        adjustment: step.adjustment,
        adjustment_type: policy.adjustment_type,
        metric_delta: delta,
        assumed_at_threshold: delta.is_none(),
    };
    let raw = apply_adjustment(
        policy.adjustment_type,
        step.adjustment,
        current,
        policy.min_adjustment_magnitude,
    );
    let (mut target, clamped_by) = if raw > i64::from(max) {
        (max, Some(max_by))
    } else if raw < i64::from(min) {
        (min, Some(min_by))
    } else {
        (raw as u32, None)
    };
    // Several signals on one service: a scale-in goes no lower than what its target policies
    // recommended at their latest tick (no signal is overruled downward).
    let held_by_targets = match input.memory.targets.latest_recommendation(input.now) {
        Some(recommended) if !scale_out && recommended > target => {
            target = recommended.min(current).min(max);
            Some(recommended)
        }
        _ => None,
    };
    let moves = if scale_out {
        target > current
    } else {
        target < current
    };
    let value_note = match (delta, input.metric_value) {
        (Some(delta), Some(value)) => format!("metric {value} ({delta:+} from threshold)"),
        _ => "no metric value in the event; used the step at the threshold".to_owned(),
    };
    if let (false, Some(recommended)) = (moves, held_by_targets) {
        return ScalingDecision {
            step: Some(chosen),
            ..ScalingDecision::none(
                current,
                Some(Refusal::TargetHolds),
                format!(
                    "{value_note}: step {index} asks for {raw}, but the service's target policies \
                     recommend {recommended}: no scale-in below it"
                ),
            )
        };
    }
    if !moves {
        let direction = if scale_out { "scale-out" } else { "scale-in" };
        return ScalingDecision {
            reason: format!(
                "{value_note}: step {index} asks for {raw}, which would not {direction} from {current}"
            ),
            step: Some(chosen),
            clamped_by,
            ..ScalingDecision::none(current, None, String::new())
        };
    }
    let clamp_note = match held_by_targets {
        Some(recommended) => {
            format!(", held at {target}: the service's target policies recommend {recommended}")
        }
        None => clamped_by
            .map(|by| format!(", clamped to {target} by {}", by.as_str()))
            .unwrap_or_default(),
    };
    ScalingDecision {
        action: if scale_out {
            Action::ScaleOut
        } else {
            Action::ScaleIn
        },
        from: current,
        to: target,
        reason: format!(
            "{} {}: {value_note}; step {index} ({} {:+}){clamp_note}",
            input.state.as_str(),
            match input.trigger {
                Trigger::Transition => "transition",
                Trigger::Tick => "still in ALARM (tick)",
            },
            policy.adjustment_type.as_str(),
            step.adjustment
        ),
        step: Some(chosen),
        clamped_by,
        refusal: None,
    }
}
