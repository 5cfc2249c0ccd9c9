//! When a routing rule applies: weekly windows on a time zone's wall clock and absolute windows
//! between two instants (pure; the instant is passed in, the time zone database is bundled).
//!
//! A weekly window opens on each of its `days` at `from` (local wall-clock time, inclusive) and
//! closes at `to` (exclusive); `to` before `from` crosses midnight into the next day, `from` =
//! `to` is refused. Being wall-clock based, a window in a DST gap lasts less real time and one
//! over a repeated hour more: 01:00–04:00 on the spring-forward Sunday in Berlin is two real
//! hours, on the fall-back Sunday four. An absolute window includes `start` and excludes `end`.

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;

/// A window as written in the configuration document (one flat object; which fields are set
/// decides its kind).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Weekly: the days a window opens (`mon` … `sun`, or full English names).
    pub days: Option<Vec<String>>,
    /// Weekly: opening time, `HH:MM` (inclusive).
    pub from: Option<String>,
    /// Weekly: closing time, `HH:MM` (exclusive; before `from`: the next day).
    pub to: Option<String>,
    /// Weekly: an IANA time zone (`Europe/Berlin`); default `UTC`.
    pub tz: Option<String>,
    /// Absolute: RFC 3339 instant the window opens (inclusive).
    pub start: Option<String>,
    /// Absolute: RFC 3339 instant the window closes (exclusive).
    pub end: Option<String>,
}

/// A validated window.
#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    Weekly {
        days: Vec<Weekday>,
        from: Time,
        to: Time,
        tz: TimeZone,
    },
    Absolute {
        start: Timestamp,
        end: Timestamp,
    },
}

/// What is wrong with a window, and under which of its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowProblem {
    /// The field of the window object (`tz`, `from` …), empty for the object as a whole.
    pub field: &'static str,
    pub problem: String,
}

fn problem(field: &'static str, problem: impl Into<String>) -> WindowProblem {
    WindowProblem {
        field,
        problem: problem.into(),
    }
}

impl Window {
    /// Validates a window as written.
    pub fn from_spec(spec: &WindowSpec) -> Result<Self, WindowProblem> {
        let weekly = spec.days.is_some() || spec.from.is_some() || spec.to.is_some();
        let absolute = spec.start.is_some() || spec.end.is_some();
        match (weekly, absolute) {
            (true, true) => Err(problem(
                "",
                "either weekly (days, from, to, tz) or absolute (start, end), not both",
            )),
            (false, false) => Err(problem(
                "",
                "empty window: give days, from and to (weekly) or start and end (absolute)",
            )),
            (false, true) => {
                if spec.tz.is_some() {
                    return Err(problem(
                        "tz",
                        "an absolute window's instants carry their own offset",
                    ));
                }
                let start = instant(spec.start.as_deref(), "start")?;
                let end = instant(spec.end.as_deref(), "end")?;
                if end <= start {
                    return Err(problem(
                        "end",
                        format!("{} is not after start {}", rfc3339(end), rfc3339(start)),
                    ));
                }
                Ok(Self::Absolute { start, end })
            }
            (true, false) => {
                let days = spec
                    .days
                    .as_deref()
                    .ok_or_else(|| problem("days", "missing: the days the window opens"))?;
                if days.is_empty() {
                    return Err(problem("days", "empty: name at least one day"));
                }
                let days = days
                    .iter()
                    .map(|day| {
                        weekday(day).ok_or_else(|| {
                            problem("days", format!("`{day}` is not a day (mon … sun)"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let from = wall_clock(spec.from.as_deref(), "from")?;
                let to = wall_clock(spec.to.as_deref(), "to")?;
                if from == to {
                    return Err(problem(
                        "to",
                        format!(
                            "equals from ({}): a window of no time or of the whole day is ambiguous",
                            spec.from.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                let name = spec.tz.as_deref().unwrap_or("UTC");
                let tz = TimeZone::get(name).map_err(|_| {
                    problem(
                        "tz",
                        format!("`{name}` is not an IANA time zone (e.g. Europe/Berlin)"),
                    )
                })?;
                Ok(Self::Weekly { days, from, to, tz })
            }
        }
    }

    /// Whether the window holds the instant `at`.
    pub fn contains(&self, at: Timestamp) -> bool {
        match self {
            Self::Absolute { start, end } => *start <= at && at < *end,
            Self::Weekly { days, from, to, tz } => {
                let local = tz.to_datetime(at);
                let (day, time) = (local.weekday(), local.time());
                if from < to {
                    days.contains(&day) && *from <= time && time < *to
                } else {
                    (days.contains(&day) && *from <= time)
                        || (days.contains(&day.previous()) && time < *to)
                }
            }
        }
    }
}

impl Window {
    /// When the occurrence holding `at` ends (exclusive), if one holds it.
    pub fn end_of_occurrence(&self, at: Timestamp) -> Option<Timestamp> {
        if !self.contains(at) {
            return None;
        }
        match self {
            Self::Absolute { end, .. } => Some(*end),
            Self::Weekly { days, from, to, tz } => {
                let local = tz.to_datetime(at);
                let (date, time) = (local.date(), local.time());
                // The occurrence opened today (it ends today, or tomorrow when it crosses
                // midnight), or yesterday and crosses midnight into today.
                let end_date = if from < to {
                    date
                } else if days.contains(&date.weekday()) && *from <= time {
                    date.tomorrow().ok()?
                } else {
                    date
                };
                tz.to_timestamp(end_date.to_datetime(*to)).ok()
            }
        }
    }

    /// When the latest occurrence that ended at or before `now` ended.
    pub fn last_end_at_or_before(&self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Self::Absolute { end, .. } => (*end <= now).then_some(*end),
            Self::Weekly { days, from, to, tz } => {
                let today = tz.to_datetime(now).date();
                let mut latest = None;
                for back in 0..=8 {
                    let Ok(opened) = today.checked_sub(jiff::Span::new().days(back)) else {
                        continue;
                    };
                    if !days.contains(&opened.weekday()) {
                        continue;
                    }
                    let end_date = if from < to {
                        Some(opened)
                    } else {
                        opened.tomorrow().ok()
                    };
                    let end = end_date.and_then(|d| tz.to_timestamp(d.to_datetime(*to)).ok());
                    if let Some(end) = end.filter(|end| *end <= now) {
                        latest = latest.max(Some(end));
                    }
                }
                latest
            }
        }
    }
}

/// An RFC 3339 instant. Parsed with chrono, which the functions link anyway: jiff's own parser
/// and printer would add their code to every binary for two fields of the configuration.
fn instant(text: Option<&str>, field: &'static str) -> Result<Timestamp, WindowProblem> {
    let text = text.ok_or_else(|| problem(field, "missing"))?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|at| Timestamp::new(at.timestamp(), at.timestamp_subsec_nanos() as i32).ok())
        .ok_or_else(|| {
            problem(
                field,
                format!("`{text}` is not an RFC 3339 instant (e.g. 2026-12-24T18:00:00Z)"),
            )
        })
}

/// `at` as RFC 3339 in UTC, for explanations and errors.
pub fn rfc3339(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp(at.as_second(), at.subsec_nanosecond().unsigned_abs())
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| at.as_second().to_string())
}

/// A wall-clock time written `HH:MM` (00:00 … 23:59).
fn wall_clock(text: Option<&str>, field: &'static str) -> Result<Time, WindowProblem> {
    let text = text.ok_or_else(|| problem(field, "missing: a time HH:MM"))?;
    let two_digits = |digits: &[u8]| match digits {
        [tens @ b'0'..=b'9', ones @ b'0'..=b'9'] => Some((tens - b'0') * 10 + (ones - b'0')),
        _ => None,
    };
    let time = match text.as_bytes() {
        [hour @ .., b':', _, _] if hour.len() == 2 => two_digits(hour)
            .zip(two_digits(&text.as_bytes()[3..]))
            .and_then(|(hour, minute)| Time::new(hour as i8, minute as i8, 0, 0).ok()),
        _ => None,
    };
    time.ok_or_else(|| {
        problem(
            field,
            format!("`{text}` is not a time HH:MM (00:00 … 23:59)"),
        )
    })
}

fn weekday(name: &str) -> Option<Weekday> {
    let day = match name.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return None,
    };
    Some(day)
}
