//! What a job asks of its runs beyond starting them (`jobs.<job>.retry`, `.after`, `.expect`,
//! `.history_days`, `.parameters`): the types, their validation by path, and the pure rules
//! over them — which stops a retry covers and how long to back off, the order jobs depend on
//! each other (cycles refused), and the values a run's parameters take.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::catalog::{JobCatalog, JobSpec};
use crate::error::{AutopilotError, Result};

/// Retries after the first run, at most.
pub const MAX_RETRIES: u32 = 10;
/// The longest backoff between attempts (a day).
pub const MAX_BACKOFF_S: u64 = 24 * 3600;
/// The shortest start deadline: a task's image pull and placement need a minute.
pub const MIN_START_DEADLINE_S: u64 = 60;
/// Run records are kept 1–3650 days.
pub const HISTORY_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;
/// The default `history_days`.
pub const DEFAULT_HISTORY_DAYS: u32 = 35;

/// A kind of failed stop a retry covers (`retry.on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RetryOn {
    /// Any essential container exited with a code other than 0.
    AnyNonzero,
    /// A container exited with this code (`exit:137`).
    Exit(i32),
    /// Fargate Spot or an EC2 Spot instance was reclaimed.
    SpotInterruption,
    /// The task could not be placed or started for capacity.
    Capacity,
    /// A container was killed for running out of memory.
    Oom,
    /// The runner stopped the task at the job's `timeout_s`.
    Timeout,
}

impl RetryOn {
    /// Reads `any-nonzero`, `exit:N`, `spot-interruption`, `capacity`, `oom` or `timeout`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        Ok(match text {
            "any-nonzero" => Self::AnyNonzero,
            "spot-interruption" => Self::SpotInterruption,
            "capacity" => Self::Capacity,
            "oom" => Self::Oom,
            "timeout" => Self::Timeout,
            other => match other.strip_prefix("exit:").map(str::parse::<i32>) {
                Some(Ok(code)) => Self::Exit(code),
                _ => {
                    return Err(format!(
                        "`{other}` is not one of any-nonzero, exit:N (e.g. exit:137), \
                         spot-interruption, capacity, oom, timeout"
                    ))
                }
            },
        })
    }

    pub fn label(self) -> String {
        match self {
            Self::AnyNonzero => "any-nonzero".into(),
            Self::Exit(code) => format!("exit:{code}"),
            Self::SpotInterruption => "spot-interruption".into(),
            Self::Capacity => "capacity".into(),
            Self::Oom => "oom".into(),
            Self::Timeout => "timeout".into(),
        }
    }
}

impl Serialize for RetryOn {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.label())
    }
}

impl<'de> Deserialize<'de> for RetryOn {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn default_backoff_s() -> u64 {
    60
}

fn default_max_backoff_s() -> u64 {
    3600
}

pub(super) fn default_history_days() -> u32 {
    DEFAULT_HISTORY_DAYS
}

/// `jobs.<job>.retry`: failed runs are started again, each attempt a new RunTask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first run (0 = none), at most [`MAX_RETRIES`].
    pub attempts: u32,
    /// Which failures are retried; the others fail the run at once.
    pub on: Vec<RetryOn>,
    /// The first backoff; each next one doubles, up to `max_backoff_s`.
    #[serde(default = "default_backoff_s")]
    pub backoff_s: u64,
    #[serde(default = "default_max_backoff_s")]
    pub max_backoff_s: u64,
}

impl RetryPolicy {
    /// The wait before retry `retry` (1 = the first retry): `backoff_s`, doubling, capped.
    pub fn backoff_before(&self, retry: u32) -> u64 {
        let doublings = retry.saturating_sub(1).min(40);
        self.backoff_s
            .saturating_mul(1u64 << doublings)
            .min(self.max_backoff_s)
    }
}

/// `jobs.<job>.expect`: what should have happened, checked on the tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// A claimed attempt with no task RUNNING this long after RunTask is `never-started`.
    #[serde(default)]
    pub start_deadline_s: Option<u64>,
    /// `rate(1 day)` or `cron(0 2 * * ? *)`: the job must have a run at least this often.
    #[serde(default)]
    pub every: Option<String>,
    /// The time zone a cron `every` is read in.
    #[serde(default)]
    pub timezone: Option<String>,
    /// How late a run may be before it counts as missed (default 300 s).
    #[serde(default)]
    pub grace_s: Option<u64>,
}

/// The default lateness allowed before a run counts as missed.
pub const DEFAULT_GRACE_S: u64 = 300;

/// `jobs.<job>.parameters.<name>`: a value the job's command and environment use as `{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// A regular expression every value must match (anchor it with `^…$`).
    pub pattern: String,
    /// The value when none is given: a literal, or one taken from the run's scheduled time
    /// (see [`DERIVED_DEFAULTS`]).
    #[serde(default)]
    pub default: Option<String>,
}

/// Defaults computed from a run's scheduled time (UTC).
pub const DERIVED_DEFAULTS: [(&str, &str); 5] = [
    ("scheduled-date", "the scheduled day, 2026-11-03"),
    ("previous-date", "the day before, 2026-11-02"),
    ("scheduled-month", "the scheduled month, 2026-11"),
    ("previous-month", "the month before, 2026-10"),
    ("last", "the month before (as previous-month)"),
];

/// The value of a derived default at `scheduled_at` (epoch seconds), if `name` is one.
pub fn derived_default(name: &str, scheduled_at: i64) -> Option<String> {
    let day = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::from_second(scheduled_at).ok()?)
        .date();
    let month = |date: jiff::civil::Date| date.strftime("%Y-%m").to_string();
    Some(match name {
        "scheduled-date" => day.strftime("%Y-%m-%d").to_string(),
        "previous-date" => day.yesterday().ok()?.strftime("%Y-%m-%d").to_string(),
        "scheduled-month" => month(day),
        "previous-month" | "last" => month(day.first_of_month().yesterday().ok()?),
        _ => return None,
    })
}

fn compile(pattern: &str) -> std::result::Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(pattern).map_err(|e| format!("not a regular expression: {e}"))
}

/// Checks what a job asks of its runs; `at` is its path. Dependencies are checked over the
/// catalog by [`dependency_order`].
pub fn validate(spec: &JobSpec, at: &str) -> Result<()> {
    let bad = |field: &str, problem: String| {
        Err(AutopilotError::invalid_config(
            format!("{at}.{field}"),
            problem,
        ))
    };
    if let Some(retry) = &spec.retry {
        if retry.attempts > MAX_RETRIES {
            return bad(
                "retry.attempts",
                format!("{} is more than {MAX_RETRIES} retries", retry.attempts),
            );
        }
        if retry.on.is_empty() && retry.attempts > 0 {
            return bad(
                "retry.on",
                "name the failures to retry: any-nonzero, exit:N, spot-interruption, capacity, oom or timeout".into(),
            );
        }
        if retry.backoff_s == 0 || retry.backoff_s > MAX_BACKOFF_S {
            return bad(
                "retry.backoff_s",
                format!("{} is outside 1..={MAX_BACKOFF_S}", retry.backoff_s),
            );
        }
        if retry.max_backoff_s < retry.backoff_s || retry.max_backoff_s > MAX_BACKOFF_S {
            return bad(
                "retry.max_backoff_s",
                format!(
                    "{} must be at least backoff_s ({}) and at most {MAX_BACKOFF_S}",
                    retry.max_backoff_s, retry.backoff_s
                ),
            );
        }
        if retry.on.contains(&RetryOn::Timeout) && spec.timeout_s.is_none() {
            return bad(
                "retry.on",
                "`timeout` needs the job's timeout_s: without it the runner stops nothing".into(),
            );
        }
    }
    if !HISTORY_DAYS.contains(&spec.history_days) {
        return bad(
            "history_days",
            format!("{} is outside 1..=3650", spec.history_days),
        );
    }
    if let Some(expect) = &spec.expect {
        if let Some(deadline) = expect.start_deadline_s {
            if deadline < MIN_START_DEADLINE_S {
                return bad(
                    "expect.start_deadline_s",
                    format!("{deadline} is less than {MIN_START_DEADLINE_S}"),
                );
            }
        }
        if let Some(every) = &expect.every {
            if let Err(problem) = super::missed::Every::parse(every, expect.timezone.as_deref()) {
                return bad("expect.every", problem);
            }
        } else if expect.timezone.is_some() || expect.grace_s.is_some() {
            return bad(
                "expect.every",
                "timezone and grace_s qualify `every`, which is missing".into(),
            );
        }
    }
    for (name, parameter) in &spec.parameters {
        let field = format!("parameters.{name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad(&field, "names are letters, digits, `-` or `_`".into());
        }
        let regex = match compile(&parameter.pattern) {
            Ok(regex) => regex,
            Err(problem) => return bad(&format!("{field}.pattern"), problem),
        };
        if let Some(default) = &parameter.default {
            // A derived default is checked on a sample date; a literal as it is.
            let sample = derived_default(default, 1_762_135_200).unwrap_or_else(|| default.clone());
            if !regex.is_match(&sample) {
                return bad(
                    &format!("{field}.default"),
                    format!(
                        "`{sample}` does not match the pattern {}",
                        parameter.pattern
                    ),
                );
            }
        }
    }
    Ok(())
}

/// The catalog's jobs in an order where every job comes after those it names in `after`;
/// an unknown name or a cycle is `InvalidConfig` naming `jobs.<job>.after`.
pub fn dependency_order(catalog: &JobCatalog) -> Result<Vec<&str>> {
    for (name, spec) in catalog {
        let mut seen = BTreeSet::new();
        for (index, upstream) in spec.after.iter().enumerate() {
            let at = format!("jobs.{name}.after[{index}]");
            if !catalog.contains_key(upstream) {
                return Err(AutopilotError::invalid_config(
                    at,
                    format!("no job `{upstream}` in the catalog"),
                ));
            }
            if upstream == name {
                return Err(AutopilotError::invalid_config(
                    at,
                    "a job cannot run after itself",
                ));
            }
            if !seen.insert(upstream) {
                return Err(AutopilotError::invalid_config(
                    at,
                    format!("`{upstream}` is named twice"),
                ));
            }
        }
    }
    // Kahn's algorithm, in name order among the ready, so the order is stable.
    let mut waiting: BTreeMap<&str, usize> = catalog
        .iter()
        .map(|(name, spec)| (name.as_str(), spec.after.len()))
        .collect();
    let mut order = Vec::with_capacity(catalog.len());
    loop {
        let ready: Vec<&str> = waiting
            .iter()
            .filter(|(_, count)| **count == 0)
            .map(|(name, _)| *name)
            .collect();
        if ready.is_empty() {
            break;
        }
        for name in ready {
            waiting.remove(name);
            order.push(name);
            for (downstream, count) in waiting.iter_mut() {
                if catalog[*downstream].after.iter().any(|u| u == name) {
                    *count -= 1;
                }
            }
        }
    }
    if let Some((stuck, _)) = waiting.iter().next() {
        let cycle: Vec<&str> = waiting.keys().copied().collect();
        return Err(AutopilotError::invalid_config(
            format!("jobs.{stuck}.after"),
            format!("a cycle of dependencies among {}", cycle.join(", ")),
        ));
    }
    Ok(order)
}

/// The jobs that name `job` in their `after`, in name order.
pub fn dependents<'a>(catalog: &'a JobCatalog, job: &str) -> Vec<&'a str> {
    catalog
        .iter()
        .filter(|(_, spec)| spec.after.iter().any(|u| u == job))
        .map(|(name, _)| name.as_str())
        .collect()
}

/// The values of a run's parameters: those given (`--set`, the schedule's input), else each
/// default; an undeclared name, a value not matching its pattern or a parameter with neither
/// value nor default is an error naming `parameters.<name>`.
pub fn resolve_parameters(
    spec: &JobSpec,
    given: &BTreeMap<String, String>,
    scheduled_at: i64,
) -> Result<BTreeMap<String, String>> {
    let bad = |name: &str, problem: String| {
        AutopilotError::invalid_event(format!("parameters.{name}"), problem)
    };
    if let Some(name) = given.keys().find(|n| !spec.parameters.contains_key(*n)) {
        let declared: Vec<&str> = spec.parameters.keys().map(String::as_str).collect();
        let declared = if declared.is_empty() {
            "none".to_owned()
        } else {
            declared.join(", ")
        };
        return Err(bad(
            name,
            format!("not declared by the job; it declares: {declared}"),
        ));
    }
    let mut values = BTreeMap::new();
    for (name, parameter) in &spec.parameters {
        let value = match (given.get(name), &parameter.default) {
            (Some(value), _) => value.clone(),
            (None, Some(default)) => {
                derived_default(default, scheduled_at).unwrap_or_else(|| default.clone())
            }
            (None, None) => return Err(bad(name, "no value given and no default".into())),
        };
        let regex = compile(&parameter.pattern).map_err(|problem| bad(name, problem))?;
        if !regex.is_match(&value) {
            return Err(bad(
                name,
                format!(
                    "`{}` does not match {}",
                    crate::domain::clip(&value, 64),
                    parameter.pattern
                ),
            ));
        }
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// `text` with each `{name}` of a declared parameter replaced by its value; other braces stay.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// Written as a string in the configuration (see its `Deserialize`).
impl schemars::JsonSchema for RetryOn {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RetryOn".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^(any-nonzero|exit:-?[0-9]+|spot-interruption|capacity|oom|timeout)$"})
    }
}
