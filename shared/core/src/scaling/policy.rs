//! Section `scaling` of the configuration document: `scaling.alarms`, one step-scaling policy
//! per alarm name, its defaults and its validation (a bad policy fails cold start naming the
//! alarm and the field). A policy written directly under `scaling` (the earlier shape) is
//! refused naming the place it moved to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::arn::Arn;
use crate::error::{AutopilotError, Result};

/// Step-scaling policies keyed by CloudWatch alarm name.
pub type AlarmPolicies = BTreeMap<String, ScalingPolicy>;

/// Section `scaling`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(default, deny_unknown_fields)]
pub struct ScalingConfig {
    /// `scaling.alarms`: step scaling on CloudWatch alarms.
    pub alarms: AlarmPolicies,
    /// `scaling.targets`: services sized by the work waiting, read on the tick.
    pub targets: crate::scaling::target::TargetPolicies,
    /// `scaling.schedules`: windows overriding a service's bounds.
    pub schedules: crate::scaling::schedule::Schedules,
}

/// The keys of section `scaling`.
const SECTIONS: &[&str] = &["alarms", "targets", "schedules"];

impl<'de> Deserialize<'de> for ScalingConfig {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Sections;
        /// Fails inside the value of `key`, so that the error's path names it.
        struct Moved(String);
        impl<'de> serde::de::DeserializeSeed<'de> for Moved {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                _: D,
            ) -> std::result::Result<(), D::Error> {
                Err(serde::de::Error::custom(format!(
                    "alarm policies live under scaling.alarms now: move `{0}` to scaling.alarms.{0} \
                     (the sections of scaling are {1})",
                    self.0,
                    SECTIONS.join(", ")
                )))
            }
        }
        impl<'de> serde::de::Visitor<'de> for Sections {
            type Value = ScalingConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "an object with {}", SECTIONS.join(", "))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<ScalingConfig, A::Error> {
                let mut config = ScalingConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "alarms" => config.alarms = map.next_value()?,
                        "targets" => config.targets = map.next_value()?,
                        "schedules" => config.schedules = map.next_value()?,
                        _ => map.next_value_seed(Moved(key))?,
                    }
                }
                Ok(config)
            }
        }
        deserializer.deserialize_map(Sections)
    }
}

/// How a step's `adjustment` changes the desired count (as in Application Auto Scaling).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AdjustmentType {
    /// Add `adjustment` tasks (negative removes).
    #[default]
    Change,
    /// Add `adjustment` percent of the current desired count.
    Percent,
    /// Set the desired count to `adjustment`.
    Exact,
}

impl AdjustmentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Change => "change",
            Self::Percent => "percent",
            Self::Exact => "exact",
        }
    }
}

/// One step: applies when `metric value − threshold` lies in `[lower, upper)` (above the
/// threshold) or `(lower, upper]` (below it); a missing bound is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub lower: Option<f64>,
    #[serde(default)]
    pub upper: Option<f64>,
    pub adjustment: i64,
}

impl Step {
    /// Whether `delta` falls in this step; `upper_inclusive` picks the bound semantics used
    /// below the threshold.
    pub fn contains(&self, delta: f64, upper_inclusive: bool) -> bool {
        let lower = self.lower.unwrap_or(f64::NEG_INFINITY);
        let upper = self.upper.unwrap_or(f64::INFINITY);
        if upper_inclusive {
            lower < delta && delta <= upper
        } else {
            lower <= delta && delta < upper
        }
    }
}

fn default_scale_out_cooldown_s() -> u64 {
    60
}

fn default_scale_in_cooldown_s() -> u64 {
    300
}

/// The policy for one alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingPolicy {
    /// Target cluster: its name, or its ARN for a member account's (or another region's)
    /// cluster. Required: whoever shapes an alarm's dimensions does not pick the service.
    pub cluster: String,
    /// Target service.
    pub service: String,
    /// The alarm the policy binds: by default the alarm of the policy's name in the stack's own
    /// account and region; a member's (or another region's) alarm is named by its ARN here.
    #[serde(default)]
    pub alarm_arn: Option<Arn>,
    pub min: u32,
    pub max: u32,
    /// Steps applied while the alarm is in ALARM (scale-out).
    pub alarm_steps: Vec<Step>,
    /// Steps applied when the alarm returns to OK (scale-in); none means OK does nothing.
    #[serde(default)]
    pub ok_steps: Vec<Step>,
    #[serde(default)]
    pub adjustment_type: AdjustmentType,
    /// With `percent`: the smallest change in tasks a step makes.
    #[serde(default)]
    pub min_adjustment_magnitude: Option<u32>,
    #[serde(default = "default_scale_out_cooldown_s")]
    pub scale_out_cooldown_s: u64,
    #[serde(default = "default_scale_in_cooldown_s")]
    pub scale_in_cooldown_s: u64,
    /// Repeat the ALARM step on every tick while the alarm stays in ALARM.
    #[serde(default)]
    pub repeat_while_alarm: bool,
    /// Decide and report, but never change the service.
    #[serde(default)]
    pub dry_run: bool,
}

/// Largest desired count a policy may name (ECS's per-service task quota is far below it).
pub const MAX_DESIRED: u32 = 100_000;
/// Longest cooldown accepted, in seconds.
pub const MAX_COOLDOWN_S: u64 = 24 * 3600;

/// Validates every policy; errors name `scaling.alarms.<alarm>.<field>`.
pub fn validate(config: &ScalingConfig) -> Result<()> {
    for (alarm, policy) in &config.alarms {
        let at = format!("scaling.alarms.{alarm}");
        policy.validate(&at)?;
        if let Some(arn) = &policy.alarm_arn {
            let expected = format!("alarm:{alarm}");
            if arn.service() != "cloudwatch" || arn.resource() != expected {
                return Err(AutopilotError::invalid_config(
                    format!("{at}.alarm_arn"),
                    format!("`{arn}` is not the ARN of a CloudWatch alarm named `{alarm}`"),
                ));
            }
        }
    }
    crate::scaling::target::validate(&config.targets)?;
    for (cluster, service, schedule) in crate::scaling::schedule::parse_all(&config.schedules)? {
        let sized = config
            .targets
            .values()
            .any(|t| t.cluster == cluster && t.service == service);
        if !sized {
            return Err(AutopilotError::invalid_config(
                format!("scaling.schedules.{}.service", schedule.name),
                format!(
                    "no target policy sizes {cluster}/{service}: schedules bound the services \
                     of scaling.targets (applied on the tick)"
                ),
            ));
        }
    }
    Ok(())
}

impl ScalingPolicy {
    /// Why `alarm` is not the alarm this policy binds, if it is not: the one named by
    /// `alarm_arn`, else the one of its name in the stack's account (`home_account`) and region
    /// (`home_region`), as far as those are known. An alarm's ARN names both; without one, the
    /// account its delivery names stands in.
    pub fn unbound(
        &self,
        alarm: &crate::events::alarm::AlarmTransition,
        home_account: Option<&str>,
        home_region: Option<&str>,
    ) -> Option<String> {
        let name = &alarm.alarm_name;
        if let Some(bound) = &self.alarm_arn {
            return match &alarm.alarm_arn {
                Some(arn) if arn == bound => None,
                Some(arn) => Some(format!(
                    "alarm {} is not the one the policy binds ({bound})",
                    crate::domain::clip(arn, 256)
                )),
                None => Some(format!(
                    "the event does not say which alarm `{name}` it is; the policy binds {bound}"
                )),
            };
        }
        let arn = alarm.alarm_arn.as_ref();
        let account = arn.and_then(Arn::account).or(alarm.account.as_deref());
        let region = arn.and_then(Arn::region);
        if let (Some(home), Some(account)) = (home_account, account) {
            if account != home {
                return Some(format!(
                    "alarm `{name}` of account {account} is not this stack's (bind another account's alarm with alarm_arn)"
                ));
            }
        }
        if let (Some(home), Some(region)) = (home_region, region) {
            if region != home {
                return Some(format!(
                    "alarm `{name}` in {region} is not in this stack's region {home} (bind another region's alarm with alarm_arn)"
                ));
            }
        }
        None
    }
}

/// What every scaling policy (alarm or target) at `at` must have: a cluster and service named,
/// and `min` ≤ `max` ≤ [`MAX_DESIRED`].
pub(crate) fn check_service_and_bounds(
    at: &str,
    cluster: &str,
    service: &str,
    min: u32,
    max: u32,
) -> Result<()> {
    let bad = |field: &str, problem: String| {
        Err(AutopilotError::invalid_config(
            format!("{at}.{field}"),
            problem,
        ))
    };
    for (field, value) in [("cluster", cluster), ("service", service)] {
        if value.trim().is_empty() {
            return bad(field, "must not be empty".into());
        }
    }
    if max > MAX_DESIRED {
        return bad("max", format!("{max} is more than {MAX_DESIRED}"));
    }
    if min > max {
        return bad("min", format!("{min} is more than max ({max})"));
    }
    Ok(())
}

impl ScalingPolicy {
    /// Checks the policy; `at` is its JSON path.
    pub fn validate(&self, at: &str) -> Result<()> {
        let bad = |field: &str, problem: String| {
            Err(AutopilotError::invalid_config(
                format!("{at}.{field}"),
                problem,
            ))
        };
        check_service_and_bounds(at, &self.cluster, &self.service, self.min, self.max)?;
        for (field, value) in [
            ("scale_out_cooldown_s", self.scale_out_cooldown_s),
            ("scale_in_cooldown_s", self.scale_in_cooldown_s),
        ] {
            if value > MAX_COOLDOWN_S {
                return bad(
                    field,
                    format!("{value} is more than {MAX_COOLDOWN_S} seconds"),
                );
            }
        }
        if self.min_adjustment_magnitude.is_some()
            && self.adjustment_type != AdjustmentType::Percent
        {
            return bad(
                "min_adjustment_magnitude",
                "only applies with adjustment_type `percent`".into(),
            );
        }
        if self.alarm_steps.is_empty() {
            return bad("alarm_steps", "needs at least one step".into());
        }
        self.validate_steps(at, "alarm_steps", &self.alarm_steps, true)?;
        self.validate_steps(at, "ok_steps", &self.ok_steps, false)
    }

    fn validate_steps(&self, at: &str, field: &str, steps: &[Step], scale_out: bool) -> Result<()> {
        let bad = |index: usize, part: &str, problem: String| {
            Err(AutopilotError::invalid_config(
                format!("{at}.{field}[{index}].{part}"),
                problem,
            ))
        };
        let last = steps.len().saturating_sub(1);
        for (index, step) in steps.iter().enumerate() {
            for (part, bound) in [("lower", step.lower), ("upper", step.upper)] {
                if bound.is_some_and(|b| !b.is_finite()) {
                    return bad(index, part, "must be a finite number".into());
                }
            }
            if step.lower.is_none() && index != 0 {
                return bad(
                    index,
                    "lower",
                    "only the first step may leave its lower bound open".into(),
                );
            }
            if step.upper.is_none() && index != last {
                return bad(
                    index,
                    "upper",
                    "only the last step may leave its upper bound open".into(),
                );
            }
            if let (Some(lower), Some(upper)) = (step.lower, step.upper) {
                if lower >= upper {
                    return bad(
                        index,
                        "upper",
                        format!("{upper} is not above lower ({lower})"),
                    );
                }
            }
            if index > 0 {
                let previous_upper = steps[index - 1].upper.unwrap_or(f64::INFINITY);
                let lower = step.lower.unwrap_or(f64::NEG_INFINITY);
                if lower < previous_upper {
                    return bad(
                        index,
                        "lower",
                        format!("{lower} overlaps the previous step (which ends at {previous_upper}); list steps in ascending order"),
                    );
                }
                if lower > previous_upper {
                    return bad(
                        index,
                        "lower",
                        format!(
                            "leaves a gap after the previous step (which ends at {previous_upper})"
                        ),
                    );
                }
            }
            let adjustment = step.adjustment;
            let ok = match (self.adjustment_type, scale_out) {
                (AdjustmentType::Exact, _) => (0..=i64::from(MAX_DESIRED)).contains(&adjustment),
                (_, true) => adjustment > 0,
                (_, false) => adjustment < 0,
            };
            if !ok {
                let expected = match (self.adjustment_type, scale_out) {
                    (AdjustmentType::Exact, _) => {
                        format!("an exact desired count in 0..={MAX_DESIRED}")
                    }
                    (_, true) => "positive: ALARM steps scale out".into(),
                    (_, false) => "negative: OK steps scale in".into(),
                };
                return bad(
                    index,
                    "adjustment",
                    format!("{adjustment} is not {expected}"),
                );
            }
            if self.adjustment_type == AdjustmentType::Percent && adjustment.abs() > 10_000 {
                return bad(
                    index,
                    "adjustment",
                    format!("{adjustment}% is beyond ±10000%"),
                );
            }
        }
        Ok(())
    }

    /// The steps for a direction.
    pub fn steps(&self, scale_out: bool) -> &[Step] {
        if scale_out {
            &self.alarm_steps
        } else {
            &self.ok_steps
        }
    }
}
