//! Incidents (pure): one open incident per (cluster, service). The service's first notifying
//! signal (a task failure or a service event) opens it; later signals fold into it (counts per
//! category, latest reasons); a recovery resolves it once. Every notification about it carries
//! its id and a status (`open`, `update`, `resolved`), so paging tools trigger and resolve on one
//! key. The store keeps the incident with a revision; the handler writes conditionally and, on
//! losing a race, reads again and re-applies (`app::incident`). A storm window's first stop is
//! written into the incident; the stops after it are counted in the window and join the
//! incident's counts when it resolves ([`with_storms`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::StormWindow;

/// How many signal keys an incident remembers, so that a redelivered signal is not counted again.
pub const REMEMBERED_SIGNALS: usize = 200;
/// How many of the latest reasons an incident keeps.
pub const LATEST_REASONS: usize = 5;

/// What a notification says about its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Open,
    Update,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Update => "update",
            Self::Resolved => "resolved",
        }
    }
}

/// The incident a notification belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentTag {
    pub id: String,
    pub status: IncidentStatus,
}

/// An incident as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable for the incident's life: `inc-<16 hex>`.
    pub id: String,
    pub cluster: String,
    pub service: String,
    pub opened_at: i64,
    pub last_signal_at: i64,
    /// Signals per category.
    pub counts: BTreeMap<String, u64>,
    /// The latest reasons, newest last.
    pub latest_reasons: Vec<String>,
    /// Keys of the signals applied, newest last (at most [`REMEMBERED_SIGNALS`]).
    pub applied: Vec<String>,
    pub resolved_at: Option<i64>,
    /// What ended it, worded for people.
    pub resolved_by: Option<String>,
    /// The key of the signal that resolved it (its retry sends the resolution again).
    pub resolved_by_key: Option<String>,
    /// Notifications a muting rule (a maintenance window) held back, per category; the stops
    /// folded behind a muted first stop are in `counts` (through its storm window).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub muted: BTreeMap<String, u64>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }

    /// Signals folded into it, all categories.
    pub fn signals(&self) -> u64 {
        self.counts.values().sum()
    }

    /// `3 oom, 1 deployment-failed`, largest first.
    pub fn counts_text(&self) -> String {
        let mut counts: Vec<(&String, &u64)> = self.counts.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let parts: Vec<String> = counts
            .iter()
            .map(|(category, n)| format!("{n} {category}"))
            .collect();
        parts.join(", ")
    }

    /// The status a notification about the signal `key` carries: the opener's is `open`.
    pub fn status_for(&self, key: &str) -> IncidentStatus {
        match (self.is_open(), self.applied.first()) {
            (false, _) => IncidentStatus::Resolved,
            (true, Some(first)) if first == key => IncidentStatus::Open,
            (true, _) => IncidentStatus::Update,
        }
    }

    /// The tag for a notification about the signal `key`.
    pub fn tag_for(&self, key: &str) -> IncidentTag {
        IncidentTag {
            id: self.id.clone(),
            status: self.status_for(key),
        }
    }
}

/// A failure signal of a service, as it folds into an incident.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// The signal's own key (its dedup claim key).
    pub key: &'a str,
    pub category: &'a str,
    pub reason: &'a str,
    /// Epoch seconds.
    pub at: i64,
}

/// What applying a failure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// It opened a new incident.
    Opened(Incident),
    /// It folded into the open incident.
    Updated(Incident),
    /// It had been applied before (a redelivery or a retry): the incident as it is.
    AlreadyApplied(Incident),
}

impl Applied {
    pub fn incident(&self) -> &Incident {
        match self {
            Self::Opened(i) | Self::Updated(i) | Self::AlreadyApplied(i) => i,
        }
    }

    /// Whether the store must be written.
    pub fn changed(&self) -> bool {
        !matches!(self, Self::AlreadyApplied(_))
    }
}

/// A stable id from the service, the instant the incident opened and the signal that opened it
/// (64-bit FNV-1a).
pub fn incident_id(cluster: &str, service: &str, opened_at: i64, opener: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = cluster
        .bytes()
        .chain([0])
        .chain(service.bytes())
        .chain([0])
        .chain(opener.bytes());
    for byte in parts.chain(opened_at.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("inc-{hash:016x}")
}

fn push_bounded(list: &mut Vec<String>, item: &str, bound: usize) {
    list.push(item.to_owned());
    let excess = list.len().saturating_sub(bound);
    list.drain(..excess);
}

/// Applies a failure of `cluster`/`service` to its incident as stored (`current`).
pub fn apply_failure(
    current: Option<&Incident>,
    failure: &Failure<'_>,
    cluster: &str,
    service: &str,
) -> Applied {
    match current {
        Some(open) if open.is_open() && open.applied.iter().any(|k| k == failure.key) => {
            Applied::AlreadyApplied(open.clone())
        }
        Some(open) if open.is_open() => {
            let mut next = open.clone();
            *next.counts.entry(failure.category.to_owned()).or_default() += 1;
            next.last_signal_at = next.last_signal_at.max(failure.at);
            if !failure.reason.is_empty() {
                push_bounded(&mut next.latest_reasons, failure.reason, LATEST_REASONS);
            }
            push_bounded(&mut next.applied, failure.key, REMEMBERED_SIGNALS);
            Applied::Updated(next)
        }
        // No incident, or only a resolved one: this failure opens a new incident.
        _ => {
            let mut counts = BTreeMap::new();
            counts.insert(failure.category.to_owned(), 1);
            Applied::Opened(Incident {
                id: incident_id(cluster, service, failure.at, failure.key),
                cluster: cluster.to_owned(),
                service: service.to_owned(),
                opened_at: failure.at,
                last_signal_at: failure.at,
                counts,
                latest_reasons: Some(failure.reason.to_owned())
                    .filter(|r| !r.is_empty())
                    .into_iter()
                    .collect(),
                applied: vec![failure.key.to_owned()],
                resolved_at: None,
                resolved_by: None,
                resolved_by_key: None,
                muted: BTreeMap::new(),
            })
        }
    }
}

/// The incident with the stops its service's storm windows (`(category, window)`) counted
/// beyond their first: a window's first stop folded into the incident itself, the rest were
/// counted only in the window, so that a storm costs one incident write. Windows that started
/// before the incident opened belong to an earlier one, and a resolved incident already holds
/// its windows' stops: both are left as they are.
pub fn with_storms(incident: &Incident, windows: &[(String, StormWindow)]) -> Incident {
    let mut merged = incident.clone();
    if !incident.is_open() {
        return merged;
    }
    for (category, window) in windows {
        if window.started_at < incident.opened_at || window.count < 2 {
            continue;
        }
        *merged.counts.entry(category.clone()).or_default() += window.count - 1;
        merged.last_signal_at = merged.last_signal_at.max(window.last_at);
    }
    merged
}

/// The open incident with one more muted notification of `category` (the signal `key`), or
/// `None` when there is nothing to write: resolved, or this signal's muting counted already (a
/// retry).
pub fn apply_muted(current: &Incident, key: &str, category: &str) -> Option<Incident> {
    let marker = format!("muted:{key}");
    if !current.is_open() || current.applied.contains(&marker) {
        return None;
    }
    let mut next = current.clone();
    *next.muted.entry(category.to_owned()).or_default() += 1;
    push_bounded(&mut next.applied, &marker, REMEMBERED_SIGNALS);
    Some(next)
}

/// `1 oom, 1 deployment-failed`: what was muted, largest first; `None` when nothing was.
pub fn muted_text(incident: &Incident) -> Option<String> {
    if incident.muted.is_empty() {
        return None;
    }
    let mut muted: Vec<(&String, &u64)> = incident.muted.iter().collect();
    muted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = muted.iter().map(|(c, n)| format!("{n} {c}")).collect();
    Some(parts.join(", "))
}

/// What a recovery signal does to the incident as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// It resolves the open incident: write this, then tell.
    Resolves(Incident),
    /// This very signal resolved it before (a retry): tell again, write nothing.
    ResolvedBefore(Incident),
    /// Nothing open, or the signal is older than the incident's latest failure.
    Nothing,
}

/// Resolves the open incident with the recovery signal `key` at `at`, worded `by`.
pub fn apply_recovery(current: Option<&Incident>, key: &str, at: i64, by: &str) -> Recovery {
    match current {
        Some(incident)
            if !incident.is_open() && incident.resolved_by_key.as_deref() == Some(key) =>
        {
            Recovery::ResolvedBefore(incident.clone())
        }
        Some(incident) if incident.is_open() && at >= incident.last_signal_at => {
            Recovery::Resolves(Incident {
                resolved_at: Some(at.max(incident.opened_at)),
                resolved_by: Some(by.to_owned()),
                resolved_by_key: Some(key.to_owned()),
                ..incident.clone()
            })
        }
        _ => Recovery::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn failure<'a>(key: &'a str, category: &'a str, at: i64) -> Failure<'a> {
        Failure {
            key,
            category,
            reason: "r",
            at,
        }
    }

    #[test]
    fn open_update_resolve_and_reopen() {
        let opened = apply_failure(None, &failure("s1", "oom", 100), "shop", "api");
        let Applied::Opened(first) = opened else {
            panic!("{opened:?}")
        };
        assert_eq!(first.status_for("s1"), IncidentStatus::Open);
        let Applied::Updated(second) = apply_failure(
            Some(&first),
            &failure("s2", "deployment-failed", 160),
            "shop",
            "api",
        ) else {
            panic!()
        };
        assert_eq!(
            (
                second.id.as_str(),
                second.signals(),
                second.status_for("s2")
            ),
            (first.id.as_str(), 2, IncidentStatus::Update)
        );
        assert_eq!(second.counts_text(), "1 deployment-failed, 1 oom");
        assert!(matches!(
            apply_failure(Some(&second), &failure("s1", "oom", 100), "shop", "api"),
            Applied::AlreadyApplied(_)
        ));
        assert_eq!(
            apply_recovery(Some(&second), "r1", 150, "steady state"),
            Recovery::Nothing,
            "older than the latest failure"
        );
        let Recovery::Resolves(resolved) = apply_recovery(Some(&second), "r1", 900, "steady state")
        else {
            panic!()
        };
        assert_eq!(
            (resolved.resolved_at, resolved.status_for("s2")),
            (Some(900), IncidentStatus::Resolved)
        );
        assert!(matches!(
            apply_recovery(Some(&resolved), "r1", 900, "x"),
            Recovery::ResolvedBefore(_)
        ));
        assert_eq!(
            apply_recovery(Some(&resolved), "r2", 950, "x"),
            Recovery::Nothing,
            "resolved once"
        );
        let Applied::Opened(again) =
            apply_failure(Some(&resolved), &failure("s3", "oom", 1000), "shop", "api")
        else {
            panic!()
        };
        assert_ne!(again.id, first.id, "a new incident, a new id");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Fail(u8, u8, i64),
        Recover(u8, i64),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        proptest::collection::vec(
            prop_oneof![
                4 => (0u8..20, 0u8..3, 0i64..50).prop_map(|(k, c, dt)| Op::Fail(k, c, dt)),
                1 => (0u8..5, 0i64..50).prop_map(|(k, dt)| Op::Recover(k, dt)),
            ],
            1..80,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// Any sequence of signals, each possibly delivered twice (a redelivery right after, or
        /// a concurrent invocation that lost the write and applied again to what won): counts
        /// are exact per incident, one opener each, ids stable, resolved exactly once.
        #[test]
        fn incidents_count_exactly_and_resolve_once(ops in ops(), duplicate_every in 1usize..5) {
            let mut stored: Option<Incident> = None;
            let mut now = 1_000;
            let mut expected: BTreeMap<String, u64> = BTreeMap::new();
            let mut seen_keys = std::collections::HashSet::new();
            let mut resolutions = 0;
            let mut ids = std::collections::HashSet::new();
            for (i, op) in ops.iter().enumerate() {
                let deliveries = if i % duplicate_every == 0 { 2 } else { 1 };
                match op {
                    Op::Fail(k, c, dt) => {
                        now += dt;
                        let key = format!("signal-{k}-{i}");
                        let category = ["oom", "app-exit", "deployment-failed"][*c as usize];
                        for _ in 0..deliveries {
                            let applied = apply_failure(stored.as_ref(), &Failure { key: &key, category, reason: "r", at: now }, "shop", "api");
                            if let Applied::Opened(incident) = &applied {
                                prop_assert!(ids.insert(incident.id.clone()) || stored.as_ref().is_some_and(|s| s.id == incident.id), "fresh id");
                                expected.clear();
                                seen_keys.clear();
                            }
                            if applied.changed() {
                                prop_assert!(seen_keys.insert(key.clone()), "applied twice: {}", key);
                                *expected.entry(category.to_owned()).or_default() += 1;
                            }
                            stored = Some(applied.incident().clone());
                        }
                        let incident = stored.as_ref().unwrap();
                        prop_assert_eq!(&incident.counts, &expected);
                        prop_assert!(incident.is_open());
                        prop_assert_eq!(incident.applied.iter().filter(|k| incident.status_for(k) == IncidentStatus::Open).count(), 1);
                    }
                    Op::Recover(k, dt) => {
                        now += dt;
                        let key = format!("recovery-{k}-{i}");
                        for _ in 0..deliveries {
                            match apply_recovery(stored.as_ref(), &key, now, "steady state") {
                                Recovery::Resolves(incident) => {
                                    resolutions += 1;
                                    prop_assert!(!incident.is_open());
                                    stored = Some(incident);
                                }
                                Recovery::ResolvedBefore(incident) => prop_assert_eq!(incident.resolved_by_key.as_deref(), Some(key.as_str())),
                                Recovery::Nothing => {}
                            }
                        }
                    }
                }
            }
            prop_assert!(resolutions <= ids.len(), "each incident resolves at most once: {} resolutions, {} incidents", resolutions, ids.len());
        }
    }
}
