//! Which configuration a running function holds (pure): the versions of the SSM parameters it
//! was read from, when to look at them again, and what to make of what it finds — a valid new
//! version is applied, an invalid one is refused while the last good one stays in use (each
//! refused version told once), nothing moved is nothing to do.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::json;

use super::parts::{parse_parts, Part, Problem};
use super::StackConfig;
use crate::domain::{Severity, Source};
use crate::notify::{Notice, NoticeKind, Section};

/// One part as SSM gave it: its name, text and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub part: Part,
    pub version: i64,
}

/// The versions of the parameters a configuration came from, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions(BTreeMap<String, i64>);

impl Versions {
    pub fn of(parts: &[Versioned]) -> Self {
        Self(
            parts
                .iter()
                .map(|p| (p.part.name.clone(), p.version))
                .collect(),
        )
    }

    /// The version of the part `name`.
    pub fn version_of(&self, name: &str) -> Option<i64> {
        self.0.get(name).copied()
    }
}

/// `name@14, name@3` in name order; what outcome lines and EMF documents carry.
impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, version) in &self.0 {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{name}@{version}")?;
        }
        Ok(())
    }
}

/// What a look at the parameters comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Refresh {
    /// The versions in use are still the latest (or the latest were refused already).
    Unchanged,
    /// A valid new configuration, to use from now on.
    Apply {
        config: Box<StackConfig>,
        versions: Versions,
        warnings: Vec<Problem>,
    },
    /// An invalid new configuration, refused for the first time: the last good one stays.
    Refuse {
        versions: Versions,
        problems: Vec<Problem>,
    },
}

/// A running function's view of its configuration's versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresher {
    in_use: Versions,
    /// The latest versions refused: not read again until something changes.
    refused: Option<Versions>,
    checked_at_s: i64,
    every_s: u64,
}

impl Refresher {
    /// Holding `in_use`, read at `now_s`, looking again every `every_s` seconds (0: never).
    pub fn new(in_use: Versions, now_s: i64, every_s: u64) -> Self {
        Self {
            in_use,
            refused: None,
            checked_at_s: now_s,
            every_s,
        }
    }

    pub fn in_use(&self) -> &Versions {
        &self.in_use
    }

    /// Whether it is time to look at the parameters' versions again.
    pub fn due(&self, now_s: i64) -> bool {
        self.every_s > 0 && now_s.saturating_sub(self.checked_at_s) >= self.every_s as i64
    }

    /// Notes that the parameters were looked at `now_s` but could not be read: the next look
    /// waits a full interval as well, so that an SSM outage costs one call per interval.
    pub fn unreadable(&mut self, now_s: i64) {
        self.checked_at_s = now_s;
    }

    /// Undoes the last [`Refresh::Apply`]: its configuration could not be put to use (the
    /// handler could not be built of it), so `previous` stays and the new versions count as
    /// refused.
    pub fn roll_back(&mut self, previous: Versions) {
        self.refused = Some(std::mem::replace(&mut self.in_use, previous));
    }

    /// Forgets the last refusal (it could not be told), so that the next look refuses it again.
    pub fn forget_refusal(&mut self) {
        self.refused = None;
    }

    /// Decides what the parameters read at `now_s` mean.
    pub fn consider(&mut self, fetched: &[Versioned], now_s: i64) -> Refresh {
        self.checked_at_s = now_s;
        let versions = Versions::of(fetched);
        if versions == self.in_use || self.refused.as_ref() == Some(&versions) {
            return Refresh::Unchanged;
        }
        let parts: Vec<Part> = fetched.iter().map(|v| v.part.clone()).collect();
        let outcome = if parts.is_empty() {
            Err(vec![Problem {
                part: None,
                path: "$".into(),
                problem: "no parameter left under the path".into(),
            }])
        } else {
            parse_parts(&parts)
        };
        match outcome {
            Ok((config, merged)) => {
                self.in_use = versions.clone();
                self.refused = None;
                self.every_s = config.config_refresh_s;
                Refresh::Apply {
                    config: Box::new(config),
                    versions,
                    warnings: merged.warnings,
                }
            }
            Err(problems) => {
                self.refused = Some(versions.clone());
                Refresh::Refuse { versions, problems }
            }
        }
    }
}

/// The headline of a refusal: `configuration version 14 of /autopilot/config/jobs-data
/// rejected: jobs.invoice-export.count: 0 is outside 1..=100` (the first problem's part).
pub fn refusal_title(versions: &Versions, problems: &[Problem]) -> String {
    let Some(first) = problems.first() else {
        return format!("configuration {versions} rejected");
    };
    let what = match first
        .part
        .as_deref()
        .and_then(|part| Some((part, versions.version_of(part)?)))
    {
        Some((part, version)) => format!("configuration version {version} of {part}"),
        None => format!("configuration {versions}"),
    };
    format!("{what} rejected: {}: {}", first.path, first.problem)
}

/// The critical notice of a refused configuration, from the function `source`.
pub fn refusal_notice(
    source: Source,
    versions: &Versions,
    problems: &[Problem],
    in_use: &Versions,
) -> Notice {
    let title = refusal_title(versions, problems);
    Notice {
        title,
        summary: format!(
            "the functions keep working with the last good configuration ({in_use}) until a \
             valid version is written"
        ),
        facts: vec![
            ("Refused".to_owned(), versions.to_string()),
            ("In use".to_owned(), in_use.to_string()),
        ],
        sections: vec![
            Problem::section(problems),
            Section {
                heading: "What to do".into(),
                lines: vec![
                    "Check the parts before writing them: task-triage check-config DIR".into(),
                    "Fix the parameter named above (or put back its previous version); the \
                     functions pick the next valid version up without a deployment."
                        .into(),
                ],
            },
        ],
        details: json!({"refused": versions.to_string(), "in_use": in_use.to_string(), "problems": problems}),
        ..Notice::about_configuration(source, NoticeKind::ConfigRefused, Severity::Critical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, version: i64, text: serde_json::Value) -> Versioned {
        Versioned {
            part: Part {
                name: name.into(),
                text: text.to_string(),
            },
            version,
        }
    }

    fn jobs(count: u32) -> serde_json::Value {
        json!({"jobs": {"invoice-export": {"cluster": "c", "task_definition": "t", "count": count}}})
    }

    fn good() -> Vec<Versioned> {
        vec![
            part("/ap/jobs-data", 13, jobs(1)),
            part("/ap/routes", 3, json!({"notify": {"routes": []}})),
        ]
    }

    #[test]
    fn looks_again_after_the_interval_and_never_when_it_is_zero() {
        let refresher = Refresher::new(Versions::of(&good()), 1_000, 60);
        assert!(!refresher.due(1_059));
        assert!(refresher.due(1_060));
        assert!(!Refresher::new(Versions::default(), 0, 0).due(i64::MAX));
    }

    #[test]
    fn the_same_versions_are_not_read_again() {
        let mut refresher = Refresher::new(Versions::of(&good()), 0, 60);
        assert_eq!(refresher.consider(&good(), 60), Refresh::Unchanged);
        assert!(!refresher.due(100), "the look counts as a look");
    }

    #[test]
    fn a_valid_new_version_is_applied_with_its_own_interval() {
        let mut refresher = Refresher::new(Versions::of(&good()), 0, 60);
        let mut fetched = good();
        fetched[0] = part(
            "/ap/jobs-data",
            14,
            json!({"jobs": {"invoice-export": {"cluster": "c", "task_definition": "t", "count": 2}}, "config_refresh_s": 300}),
        );
        let Refresh::Apply {
            config, versions, ..
        } = refresher.consider(&fetched, 60)
        else {
            panic!("applied")
        };
        assert_eq!(config.jobs["invoice-export"].count, 2);
        assert_eq!(versions.to_string(), "/ap/jobs-data@14, /ap/routes@3");
        assert_eq!(refresher.in_use(), &versions);
        assert!(!refresher.due(359) && refresher.due(360));
    }

    #[test]
    fn an_invalid_version_is_refused_once_and_the_good_one_kept() {
        let mut refresher = Refresher::new(Versions::of(&good()), 0, 60);
        let mut fetched = good();
        fetched[0] = part("/ap/jobs-data", 14, jobs(0));
        let Refresh::Refuse { versions, problems } = refresher.consider(&fetched, 60) else {
            panic!("refused")
        };
        assert_eq!(
            refusal_title(&versions, &problems),
            "configuration version 14 of /ap/jobs-data rejected: jobs.invoice-export.count: 0 is outside 1..=100"
        );
        assert_eq!(refresher.in_use(), &Versions::of(&good()));
        assert_eq!(refresher.consider(&fetched, 120), Refresh::Unchanged);
        // Version 15 fixes it.
        fetched[0] = part("/ap/jobs-data", 15, jobs(3));
        assert!(matches!(
            refresher.consider(&fetched, 180),
            Refresh::Apply { .. }
        ));
    }

    #[test]
    fn a_removed_part_is_a_change_and_no_part_at_all_is_refused() {
        let mut refresher = Refresher::new(Versions::of(&good()), 0, 60);
        let Refresh::Apply { config, .. } = refresher.consider(&good()[1..], 60) else {
            panic!("applied")
        };
        assert!(config.jobs.is_empty());
        let Refresh::Refuse { problems, .. } = refresher.consider(&[], 120) else {
            panic!("refused")
        };
        assert_eq!(problems[0].problem, "no parameter left under the path");
    }

    #[test]
    fn the_refusal_notice_is_critical_and_names_both_configurations() {
        let mut fetched = good();
        fetched[1] = part("/ap/routes", 4, json!({"notify": {"routes": 7}}));
        let mut refresher = Refresher::new(Versions::of(&good()), 0, 60);
        let Refresh::Refuse { versions, problems } = refresher.consider(&fetched, 60) else {
            panic!("refused")
        };
        let notice = refusal_notice(Source::Batch, &versions, &problems, refresher.in_use());
        assert_eq!(notice.severity, Severity::Critical);
        assert!(
            notice
                .title
                .starts_with("configuration version 4 of /ap/routes rejected: notify.routes"),
            "{}",
            notice.title
        );
        assert_eq!(notice.facts[1].1, "/ap/jobs-data@13, /ap/routes@3");
    }
}
