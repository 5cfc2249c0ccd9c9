//! Missed runs (`jobs.<job>.expect.every`, pure): whether a job has gone a whole window without
//! a run — its schedule disabled, deleted or failing to invoke — checked on the tick from the
//! job's latest run and the time the runner began watching it.
//!
//! `rate(N unit)`: the job must have a run every N; the windows are counted from its latest run
//! (or from when watching began), and each one that passes, `grace_s` late, is one missed run.
//! `cron(…)`: the job must have a run at each instant the expression names; an instant is missed
//! once it is `grace_s` past and the latest run is older than it (less `grace_s`, for a schedule
//! that fires a little early).

use jiff::tz::TimeZone;
use serde::Serialize;

use crate::scaling::schedule::Cron;

/// How far back a cron's instants are looked for (a year and a day covers yearly jobs).
const CRON_HORIZON_S: i64 = 367 * 86_400;

/// A parsed `expect.every`.
#[derive(Debug, Clone)]
pub enum Every {
    Rate { period_s: i64 },
    Cron { cron: Box<Cron>, tz: TimeZone },
}

impl Every {
    /// Reads `rate(N minute|minutes|hour|hours|day|days)` or `cron(…)` (read in `timezone`,
    /// UTC when none is given).
    pub fn parse(text: &str, timezone: Option<&str>) -> Result<Self, String> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix("rate(").and_then(|t| t.strip_suffix(')')) {
            if timezone.is_some() {
                return Err("a rate has no time zone; timezone applies to cron(…)".into());
            }
            let (count, unit) = inner
                .trim()
                .split_once(' ')
                .ok_or_else(|| format!("`{text}`: expected rate(N unit), e.g. rate(1 day)"))?;
            let count: i64 = count
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{text}`: `{count}` is not a positive number"))?;
            let unit_s = match unit.trim() {
                "minute" | "minutes" => 60,
                "hour" | "hours" => 3600,
                "day" | "days" => 86_400,
                other => {
                    return Err(format!(
                        "`{text}`: unit `{other}` is not minute(s), hour(s) or day(s)"
                    ))
                }
            };
            if (count == 1) == unit.trim().ends_with('s') {
                return Err(format!(
                    "`{text}`: say `1 {}` and `N {}s`, as EventBridge does",
                    unit.trim().trim_end_matches('s'),
                    unit.trim().trim_end_matches('s')
                ));
            }
            let period_s = count
                .checked_mul(unit_s)
                .filter(|p| *p <= CRON_HORIZON_S)
                .ok_or_else(|| format!("`{text}`: at most a year"))?;
            return Ok(Self::Rate { period_s });
        }
        if text.starts_with("cron(") {
            let cron = Cron::parse(text)?;
            let zone = timezone.unwrap_or("UTC");
            let tz = TimeZone::get(zone)
                .map_err(|_| format!("timezone `{zone}` is not an IANA time zone"))?;
            return Ok(Self::Cron {
                cron: Box::new(cron),
                tz,
            });
        }
        Err(format!(
            "`{text}` is neither rate(N unit) nor cron(minutes hours day-of-month month day-of-week year)"
        ))
    }
}

/// A window that passed without a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Missed {
    /// When the run was due (epoch seconds): the key of its one notification.
    pub due_at: i64,
    /// The latest run's scheduled time, if the job has one.
    pub last_run: Option<i64>,
    /// Windows passed without a run (a rate's count since the latest run; 1 for a cron instant).
    pub windows: u64,
}

/// Whether the job has missed a run at `now`: `last_run` is its latest run's scheduled time,
/// `watching_since` when the runner first checked it (nothing before counts as missed).
pub fn missed(
    every: &Every,
    grace_s: i64,
    last_run: Option<i64>,
    watching_since: i64,
    now: i64,
) -> Option<Missed> {
    let latest = now.checked_sub(grace_s)?;
    match every {
        Every::Rate { period_s } => {
            let since = last_run.map_or(watching_since, |run| run.max(watching_since));
            let windows = latest.checked_sub(since)?.div_euclid(*period_s);
            (windows >= 1).then(|| Missed {
                due_at: since + windows * period_s,
                last_run,
                windows: windows as u64,
            })
        }
        Every::Cron { cron, tz } => {
            let due = cron.last_fire(tz, latest, CRON_HORIZON_S)?;
            let ran = last_run.is_some_and(|run| run >= due - grace_s);
            (due >= watching_since && !ran).then_some(Missed {
                due_at: due,
                last_run,
                windows: 1,
            })
        }
    }
}

/// The notice's wording of a missed run.
pub fn missed_reason(job: &str, every: &str, missed: &Missed) -> String {
    let due = crate::domain::utc_time(missed.due_at);
    let last = missed.last_run.map_or("no run recorded".to_owned(), |at| {
        format!(
            "the latest run was scheduled for {}",
            crate::domain::utc_time(at)
        )
    });
    if missed.windows > 1 {
        format!(
            "job {job} should run {every}; {} windows have passed without a run (due {due}); {last}",
            missed.windows
        )
    } else {
        format!("job {job} should run {every}; no run for {due}; {last}")
    }
}
