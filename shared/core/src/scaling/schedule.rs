//! Scheduled bounds (`scaling.schedules.<name>`): a `cron(…)` expression in the EventBridge /
//! Application Auto Scaling dialect and an IANA time zone start a window of `duration_s` in
//! which a service's `min` and/or `max` are overridden, as a scheduled action sets a scalable
//! target's capacity. The tick asks which windows are open now ([`Schedule::opened_at`], [`bounds_at`]).
//!
//! The dialect: six fields, `minutes hours day-of-month month day-of-week year`; lists (`,`),
//! ranges (`-`), steps (`/`) and `*`; month names `JAN`–`DEC`, day names `SUN`–`SAT` (1 = SUN);
//! exactly one of the day fields is `?`; in day-of-month `L` (the last day) and `nW` (the
//! weekday nearest the n-th); in day-of-week `nL` (the last such day of the month) and `n#k`
//! (the k-th such day). A start that falls in a daylight-saving gap happens at the first instant
//! after the gap; one in a fold (the repeated hour) at its first occurrence.

use std::collections::BTreeMap;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{AutopilotError, Result};

/// Schedules keyed by name.
pub type Schedules = BTreeMap<String, SchedulePolicy>;

/// The longest window a schedule may open, in seconds (a week).
pub const MAX_DURATION_S: u64 = 7 * 24 * 3600;

fn utc() -> String {
    "UTC".to_owned()
}

/// One scheduled override of a service's bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulePolicy {
    pub cluster: String,
    pub service: String,
    /// `cron(minutes hours day-of-month month day-of-week year)`.
    pub cron: String,
    /// The IANA time zone the expression is read in.
    #[serde(default = "utc")]
    pub timezone: String,
    /// How long each window stays open, in seconds.
    pub duration_s: u64,
    #[serde(default)]
    pub min: Option<u32>,
    #[serde(default)]
    pub max: Option<u32>,
}

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: Days,
    months: u16,
    /// Years 1970–2199, a bit each.
    years: [u64; 4],
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Days {
    /// Days of the month (bit n = day n).
    OfMonth(u32),
    LastOfMonth,
    /// The weekday nearest this day of the month, within the month.
    NearestWeekday(u8),
    /// Days of the week (bit 0 = Sunday).
    OfWeek(u8),
    /// The last such weekday of the month (0 = Sunday).
    LastWeekday(u8),
    /// The n-th such weekday of the month.
    NthWeekday(u8, u8),
}

const FIRST_YEAR: i16 = 1970;
const LAST_YEAR: i16 = 2199;
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Reads one field's list into the values it allows (within `low..=high`).
fn values(
    field: &str,
    what: &str,
    low: u32,
    high: u32,
    names: &[&str],
) -> Result<Vec<u32>, String> {
    let number = |text: &str| -> Result<u32, String> {
        let upper = text.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            return Ok(low + i as u32);
        }
        text.parse::<u32>()
            .ok()
            .filter(|n| (low..=high).contains(n))
            .ok_or_else(|| format!("{what}: `{text}` is not in {low}–{high}"))
    };
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step = step
                    .parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what}: step `{step}` is not a positive number"))?;
                (range, step)
            }
            None => (item, 1),
        };
        let (from, to) = match range {
            "*" => (low, high),
            _ => match range.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None if item.contains('/') => (number(range)?, high),
                None => (number(range)?, number(range)?),
            },
        };
        if from > to {
            return Err(format!("{what}: range `{range}` runs backwards"));
        }
        out.extend((from..=to).step_by(step as usize));
    }
    Ok(out)
}

fn bits(values: &[u32], base: u32) -> u64 {
    values.iter().fold(0, |acc, v| acc | 1 << (v - base))
}

impl Cron {
    /// Parses `cron(…)`; the error says which field is wrong and why.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let inner = expression
            .trim()
            .strip_prefix("cron(")
            .and_then(|rest| rest.strip_suffix(')'))
            .ok_or_else(|| {
                format!(
                    "`{expression}` is not cron(minutes hours day-of-month month day-of-week year)"
                )
            })?;
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields[..] else {
            return Err(format!(
                "`{expression}` has {} fields, not 6 (minutes hours day-of-month month day-of-week year)",
                fields.len()
            ));
        };
        let days = match (dom == "?", dow == "?") {
            (true, false) => Self::week_days(dow)?,
            (false, true) => Self::month_days(dom)?,
            _ => {
                return Err(
                    "give day-of-month or day-of-week, and `?` in the other (one `?`)".into(),
                )
            }
        };
        let years = values(year, "year", FIRST_YEAR as u32, LAST_YEAR as u32, &[])?;
        let mut year_bits = [0u64; 4];
        for y in years {
            let i = (y - FIRST_YEAR as u32) as usize;
            year_bits[i / 64] |= 1 << (i % 64);
        }
        Ok(Self {
            minutes: bits(&values(minutes, "minutes", 0, 59, &[])?, 0),
            hours: bits(&values(hours, "hours", 0, 23, &[])?, 0) as u32,
            days,
            months: bits(&values(month, "month", 1, 12, &MONTHS)?, 1) as u16,
            years: year_bits,
        })
    }

    fn month_days(field: &str) -> Result<Days, String> {
        if field == "L" {
            return Ok(Days::LastOfMonth);
        }
        if let Some(day) = field.strip_suffix('W') {
            let day = values(day, "day-of-month", 1, 31, &[])?;
            return match day[..] {
                [day] => Ok(Days::NearestWeekday(day as u8)),
                _ => Err(format!("day-of-month: `{field}`: W takes one day")),
            };
        }
        Ok(Days::OfMonth(
            bits(&values(field, "day-of-month", 1, 31, &[])?, 0) as u32,
        ))
    }

    fn week_days(field: &str) -> Result<Days, String> {
        let one = |text: &str| -> Result<u8, String> {
            match values(text, "day-of-week", 1, 7, &DAYS)?[..] {
                [day] => Ok(day as u8 - 1),
                _ => Err(format!("day-of-week: `{field}` takes one day")),
            }
        };
        if let Some(day) = field.strip_suffix('L') {
            return Ok(Days::LastWeekday(one(day)?));
        }
        if let Some((day, n)) = field.split_once('#') {
            let n = n
                .parse::<u8>()
                .ok()
                .filter(|n| (1..=5).contains(n))
                .ok_or_else(|| format!("day-of-week: `{field}`: # takes 1–5"))?;
            return Ok(Days::NthWeekday(one(day)?, n));
        }
        Ok(Days::OfWeek(
            bits(&values(field, "day-of-week", 1, 7, &DAYS)?, 1) as u8,
        ))
    }

    /// Whether the expression fires on `date` (at some of its hours and minutes).
    pub fn on(&self, date: Date) -> bool {
        let year = date.year();
        if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
            return false;
        }
        let i = (year - FIRST_YEAR) as usize;
        if self.years[i / 64] & (1 << (i % 64)) == 0 || self.months & (1 << (date.month() - 1)) == 0
        {
            return false;
        }
        let day = date.day() as u8;
        let last = date.last_of_month().day() as u8;
        let weekday = date.weekday().to_sunday_zero_offset() as u8;
        match self.days {
            Days::OfMonth(set) => set & (1 << day) != 0,
            Days::LastOfMonth => day == last,
            Days::NearestWeekday(wanted) => {
                let wanted = wanted.min(last);
                let target = date
                    .first_of_month()
                    .checked_add(jiff::Span::new().days(i64::from(wanted) - 1))
                    .ok();
                let nearest = target.map(|t| match t.weekday() {
                    Weekday::Saturday if wanted == 1 => t.tomorrow().and_then(|d| d.tomorrow()),
                    Weekday::Saturday => t.yesterday(),
                    Weekday::Sunday if wanted == last => t.yesterday().and_then(|d| d.yesterday()),
                    Weekday::Sunday => t.tomorrow(),
                    _ => Ok(t),
                });
                nearest.and_then(|d| d.ok()) == Some(date)
            }
            Days::OfWeek(set) => set & (1 << weekday) != 0,
            Days::LastWeekday(wanted) => weekday == wanted && day + 7 > last,
            Days::NthWeekday(wanted, n) => weekday == wanted && (day - 1) / 7 + 1 == n,
        }
    }

    /// The latest instant at or before `at` (epoch seconds) the expression fires at in `tz`,
    /// looking back at most `horizon_s`.
    pub fn last_fire(&self, tz: &TimeZone, at: i64, horizon_s: i64) -> Option<i64> {
        let earliest = at.saturating_sub(horizon_s);
        let mut day = tz
            .to_datetime(Timestamp::from_second(at).ok()?)
            .date()
            .tomorrow()
            .ok()?;
        let first = tz
            .to_datetime(Timestamp::from_second(earliest).ok()?)
            .date()
            .yesterday()
            .ok()?;
        let mut best: Option<i64> = None;
        while day >= first {
            if self.on(day) {
                for (h, m) in self.times() {
                    let Some(start) = start_instant(tz, day.at(h, m, 0, 0)) else {
                        continue;
                    };
                    let start = start.as_second();
                    if (earliest..=at).contains(&start) {
                        best = best.max(Some(start));
                    }
                }
            }
            // A day earlier than the best by two cannot beat it, gaps and folds included.
            if best.is_some_and(|b| {
                start_instant(tz, day.at(0, 0, 0, 0))
                    .is_some_and(|midnight| midnight.as_second() < b - 2 * 86_400)
            }) {
                break;
            }
            day = day.yesterday().ok()?;
        }
        best
    }

    /// The local times of `date` it fires at, earliest first.
    fn times(&self) -> impl Iterator<Item = (i8, i8)> + '_ {
        (0..24i8)
            .filter(|h| self.hours & (1u32 << *h) != 0)
            .flat_map(|h| {
                (0..60i8)
                    .filter(|m| self.minutes & (1u64 << *m) != 0)
                    .map(move |m| (h, m))
            })
    }
}

/// When a local start time happens in `tz`: a time in a gap at the first instant after it, a
/// time in a fold at its first occurrence.
pub fn start_instant(tz: &TimeZone, local: DateTime) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(local).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local).ok(),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(local).ok(),
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the later offset, the time is before the transition: the next
            // transition is the gap's end.
            let early = after.to_timestamp(local).ok()?;
            tz.following(early).next().map(|t| t.timestamp())
        }
    }
}

/// A parsed, validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub cron: Cron,
    pub tz: TimeZone,
    pub duration_s: u64,
    pub min: Option<u32>,
    pub max: Option<u32>,
}

impl Schedule {
    /// The start of the window open at `now` (epoch seconds), if one is.
    pub fn opened_at(&self, now: i64) -> Option<i64> {
        let now_ts = Timestamp::from_second(now).ok()?;
        let earliest = now.saturating_sub(self.duration_s as i64);
        let first = self.tz.to_datetime(Timestamp::from_second(earliest).ok()?);
        let last = self.tz.to_datetime(now_ts);
        // A day on each side covers starts moved by a gap or a fold.
        let mut day = first.date().yesterday().ok()?;
        let end = last.date().tomorrow().ok()?;
        let mut opened = None;
        while day <= end {
            if self.cron.on(day) {
                for (h, m) in self.cron.times() {
                    let Some(start) = start_instant(&self.tz, day.at(h, m, 0, 0)) else {
                        continue;
                    };
                    let start = start.as_second();
                    if start <= now && now < start.saturating_add(self.duration_s as i64) {
                        opened = opened.max(Some(start));
                    }
                }
            }
            day = day.tomorrow().ok()?;
        }
        opened
    }
}

/// Validates every schedule and parses it; errors name `scaling.schedules.<name>.<field>`.
pub fn parse_all(schedules: &Schedules) -> Result<Vec<(String, String, Schedule)>> {
    let mut parsed = Vec::new();
    for (name, schedule) in schedules {
        let at = format!("scaling.schedules.{name}");
        let bad = |field: &str, problem: String| {
            AutopilotError::invalid_config(format!("{at}.{field}"), problem)
        };
        if schedule.cluster.trim().is_empty() || schedule.service.trim().is_empty() {
            return Err(bad("service", "name the cluster and the service".into()));
        }
        let cron = Cron::parse(&schedule.cron).map_err(|problem| bad("cron", problem))?;
        let tz = TimeZone::get(&schedule.timezone).map_err(|_| {
            bad(
                "timezone",
                format!("`{}` is not an IANA time zone", schedule.timezone),
            )
        })?;
        if !(60..=MAX_DURATION_S).contains(&schedule.duration_s) {
            return Err(bad(
                "duration_s",
                format!("{} is not in 60–{MAX_DURATION_S}", schedule.duration_s),
            ));
        }
        match (schedule.min, schedule.max) {
            (None, None) => return Err(bad("min", "give min, max or both".into())),
            (Some(min), Some(max)) if min > max => {
                return Err(bad("min", format!("{min} is more than max {max}")))
            }
            (_, Some(max)) if max > crate::scaling::policy::MAX_DESIRED => {
                return Err(bad(
                    "max",
                    format!("{max} is more than {}", crate::scaling::policy::MAX_DESIRED),
                ))
            }
            _ => {}
        }
        parsed.push((
            schedule.cluster.clone(),
            schedule.service.clone(),
            Schedule {
                name: name.clone(),
                cron,
                tz,
                duration_s: schedule.duration_s,
                min: schedule.min,
                max: schedule.max,
            },
        ));
    }
    Ok(parsed)
}

/// The bounds the open schedules of one service set at `now`: the highest `min` and the lowest
/// `max` among them, each with the schedule that set it; a `min` above that `max` is lowered to
/// it, with a note.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduledBounds {
    pub min: Option<(u32, String)>,
    pub max: Option<(u32, String)>,
    pub notes: Vec<String>,
}

/// The open windows' bounds among `schedules` (those of one service) at `now`.
pub fn bounds_at<'a>(
    schedules: impl IntoIterator<Item = &'a Schedule>,
    now: i64,
) -> ScheduledBounds {
    let mut bounds = ScheduledBounds::default();
    for schedule in schedules {
        if schedule.opened_at(now).is_none() {
            continue;
        }
        if let Some(min) = schedule.min {
            if bounds.min.as_ref().is_none_or(|(m, _)| min > *m) {
                bounds.min = Some((min, schedule.name.clone()));
            }
        }
        if let Some(max) = schedule.max {
            if bounds.max.as_ref().is_none_or(|(m, _)| max < *m) {
                bounds.max = Some((max, schedule.name.clone()));
            }
        }
    }
    if let (Some((min, min_by)), Some((max, max_by))) = (&bounds.min, &bounds.max) {
        if min > max {
            bounds.notes.push(format!(
                "schedule {min_by} sets min {min} above {max_by}'s max {max}: min lowered to {max}"
            ));
            bounds.min = Some((*max, max_by.clone()));
        }
    }
    bounds
}

#[cfg(test)]
mod tests;
