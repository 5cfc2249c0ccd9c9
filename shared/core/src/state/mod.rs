//! Duplicate suppression and storm folding: decisions and the storm-window arithmetic (pure;
//! the keys are [`crate::keys`]'). The stores behind them are ports (claims and storm windows,
//! read and written), implemented on DynamoDB by the `aws::state_table` adapter.
//!
//! Duplicates: EventBridge delivers at least once and a redelivery carries the same task ARN and
//! `detail.version`, so those two make the key. A claim is `IN_PROGRESS` while an invocation works
//! on the event, `COMPLETE` once it is handled, and `RETRYABLE` after a failed publish so that the
//! retry is not blocked (as Powertools idempotency does).
//!
//! Storms: stops of one (cluster, group, category) within a window fold together. The first stop
//! notifies; later ones are counted exactly and a digest goes out at 10, 100, 1000 … stops. A
//! stop is counted by one atomic increment of its open window that also records, in the window,
//! the number it was given under [`counted_key`](crate::keys::counted_key) of its claim: concurrent stops never contend,
//! and a retried delivery finds its number instead of counting again. The record is dropped once
//! the claim completes.

use std::collections::BTreeMap;

use serde::Serialize;

/// How long a claim holds past the invocation's deadline before another invocation may take it
/// over: a crashed invocation's retry must find the claim expired.
pub const CLAIM_LEASE_MARGIN_S: i64 = 30;
/// Lease used outside Lambda, where there is no deadline.
pub const CLI_LEASE_S: u64 = 300;

/// State of a dedup claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimStatus {
    InProgress,
    Complete,
    Retryable,
}

impl ClaimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Complete => "COMPLETE",
            Self::Retryable => "RETRYABLE",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "IN_PROGRESS" => Some(Self::InProgress),
            "COMPLETE" => Some(Self::Complete),
            "RETRYABLE" => Some(Self::Retryable),
            _ => None,
        }
    }
}

/// A dedup record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimRecord {
    pub status: Option<ClaimStatus>,
    pub lease_until: i64,
    pub message_id: Option<String>,
    pub decision: Option<String>,
}

/// What trying to claim an event found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First delivery: go ahead.
    Fresh,
    /// A retry of a delivery that failed (or whose invocation died): go ahead (a stop it counted
    /// keeps its number: see [`counted_key`](crate::keys::counted_key)); `delivered` names the destinations that took its
    /// notification before it failed.
    Resumed { delivered: Vec<String> },
    /// Already handled.
    Duplicate {
        decision: Option<String>,
        message_id: Option<String>,
    },
    /// Another invocation holds the claim right now.
    InProgress,
}

/// Whether an existing record may be taken over by a new claim at `now` (epoch seconds).
pub fn claimable(record: &ClaimRecord, now: i64) -> bool {
    match record.status {
        None | Some(ClaimStatus::Retryable) => true,
        Some(ClaimStatus::InProgress) => record.lease_until < now,
        Some(ClaimStatus::Complete) => false,
    }
}

/// What a refused claim means.
pub fn refused_claim(record: &ClaimRecord) -> Claim {
    match record.status {
        Some(ClaimStatus::Complete) => Claim::Duplicate {
            decision: record.decision.clone(),
            message_id: record.message_id.clone(),
        },
        _ => Claim::InProgress,
    }
}

/// One stop to count into its storm window.
#[derive(Debug, Clone, Copy)]
pub struct Stop<'a> {
    /// The claim of the delivery: the window records the stop's number under it.
    pub claim_key: &'a str,
    pub storm_key: &'a str,
    /// Epoch seconds.
    pub now: i64,
    pub window_s: u64,
    pub title: &'a str,
    pub reason: &'a str,
}

impl Stop<'_> {
    /// The window this stop opens in place of `closed` (none stored, or no longer open).
    pub fn opened(&self, closed: Option<&StormWindow>) -> StormWindow {
        advance_window(closed, self.now, self.window_s, self.title, self.reason)
    }

    /// Until when a window it counts into is kept.
    pub fn expires_at(&self) -> i64 {
        window_expires_at(self.now, self.window_s)
    }

    /// Windows that started after this instant are still open for the stop.
    pub fn open_since(&self) -> i64 {
        self.now
            .saturating_sub(i64::try_from(self.window_s).unwrap_or(i64::MAX))
    }
}

/// A storm window as stored, after counting a stop in it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct StormWindow {
    /// Stops counted in this window, this one included.
    pub count: u64,
    /// Epoch seconds of the window's first and latest stop.
    pub started_at: i64,
    pub last_at: i64,
    /// Distinct diagnosis titles seen in the window.
    pub titles: Vec<String>,
    /// The latest raw reason.
    pub last_reason: Option<String>,
    /// Count of the window this one replaced, when it had more than one stop.
    pub previous_count: Option<u64>,
}

/// What to do with a stop, given its position in its storm window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fold {
    /// First stop of a window: notify normally.
    First,
    /// The count reached a power of ten: send a digest.
    Digest,
    /// Counted, not notified.
    Folded,
}

/// The fold decision for the `count`-th stop of a window.
pub fn fold_for(count: u64) -> Fold {
    match count {
        0 | 1 => Fold::First,
        n if is_power_of_ten(n) => Fold::Digest,
        _ => Fold::Folded,
    }
}

fn is_power_of_ten(mut n: u64) -> bool {
    if n < 10 {
        return false;
    }
    while n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

/// The window after counting one more stop at `now`: the open window `current` with its count,
/// latest time and reason advanced and `title` added, or, when no window is open, a new one
/// counting from 1 that remembers the count of the closed one it replaces. The state store and
/// `--dry-run`'s projection both count with this.
pub fn advance_window(
    current: Option<&StormWindow>,
    now: i64,
    window_s: u64,
    title: &str,
    reason: &str,
) -> StormWindow {
    let reason = Some(reason.to_owned()).filter(|r| !r.is_empty());
    match current {
        Some(open) if window_open(open.started_at, now, window_s) => {
            let mut titles = open.titles.clone();
            if !titles.iter().any(|t| t == title) {
                titles.push(title.to_owned());
                titles.sort();
            }
            StormWindow {
                count: open.count + 1,
                started_at: open.started_at,
                last_at: now,
                titles,
                last_reason: reason,
                previous_count: open.previous_count,
            }
        }
        closed => StormWindow {
            count: 1,
            started_at: now,
            last_at: now,
            titles: vec![title.to_owned()],
            last_reason: reason,
            previous_count: closed.map(|w| w.count).filter(|&count| count > 1),
        },
    }
}

/// How long a window's record is kept after its latest stop.
pub fn window_expires_at(now: i64, window_s: u64) -> i64 {
    now.saturating_add(i64::try_from(window_s).unwrap_or(i64::MAX))
        .saturating_add(24 * 3600)
}

/// How often counting a stop tries again when it finds no open window and another stop opens
/// one at the same moment (counting into an open window never contends).
pub const COUNT_ATTEMPTS: u32 = 40;

/// Longest pause between two attempts at a contended write.
pub const MAX_CONTENTION_PAUSE_MS: u64 = 500;

/// The pause before attempt `attempt + 1` at a contended write: "full jitter" under a ceiling
/// that doubles from 5 ms with each attempt up to [`MAX_CONTENTION_PAUSE_MS`], spread by
/// `contender` (the claim's key) so that contenders part. Within [`COUNT_ATTEMPTS`] the pauses
/// add up to at most ~17 s, inside the function's 30 s timeout.
pub fn contention_pause(attempt: u32, contender: &str) -> std::time::Duration {
    let hash = crate::domain::fnv1a(&[contender, &attempt.to_string()]);
    std::time::Duration::from_millis(hash % contention_ceiling_ms(attempt) + 1)
}

/// The longest pause before attempt `attempt + 1`: 5 ms, doubling with each attempt, at most
/// [`MAX_CONTENTION_PAUSE_MS`].
pub fn contention_ceiling_ms(attempt: u32) -> u64 {
    (5u64 << attempt.min(10)).min(MAX_CONTENTION_PAUSE_MS)
}

/// Whether a window that started at `started_at` still covers `now`.
pub fn window_open(started_at: i64, now: i64, window_s: u64) -> bool {
    now < started_at.saturating_add(i64::try_from(window_s).unwrap_or(i64::MAX))
}

/// `4 min 10 s`-style duration between two epoch-second instants.
pub fn span_text(from: i64, to: i64) -> String {
    let seconds = (to - from).max(0);
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digests_go_out_at_powers_of_ten() {
        let digests: Vec<u64> = (1..=10_000)
            .filter(|&n| fold_for(n) == Fold::Digest)
            .collect();
        assert_eq!(digests, [10, 100, 1000, 10_000]);
        assert_eq!(fold_for(1), Fold::First);
        assert_eq!(fold_for(2), Fold::Folded);
        assert_eq!(fold_for(50), Fold::Folded);
    }

    #[test]
    fn a_storm_of_fifty_notifies_twice() {
        let notified = (1..=50).filter(|&n| fold_for(n) != Fold::Folded).count();
        assert_eq!(notified, 2);
    }

    #[test]
    fn claims_follow_powertools_semantics() {
        let now = 1_000;
        let record = |status, lease_until| ClaimRecord {
            status: Some(status),
            lease_until,
            ..ClaimRecord::default()
        };
        assert!(claimable(&ClaimRecord::default(), now));
        assert!(
            claimable(&record(ClaimStatus::Retryable, now + 100), now),
            "a failed publish does not block the retry"
        );
        assert!(!claimable(&record(ClaimStatus::InProgress, now + 100), now));
        assert!(
            claimable(&record(ClaimStatus::InProgress, now - 1), now),
            "a dead invocation's lease expires"
        );
        assert!(!claimable(&record(ClaimStatus::Complete, 0), now));
        assert_eq!(
            refused_claim(&record(ClaimStatus::InProgress, now + 1)),
            Claim::InProgress
        );
        assert!(matches!(
            refused_claim(&record(ClaimStatus::Complete, 0)),
            Claim::Duplicate { .. }
        ));
    }

    #[test]
    fn spans_read_well() {
        assert_eq!(span_text(0, 42), "42 s");
        assert_eq!(span_text(0, 250), "4 min 10 s");
        assert_eq!(span_text(0, 7_500), "2 h 5 min");
    }

    #[test]
    fn contended_counting_pauses_fit_inside_the_functions_timeout() {
        let ceilings: Vec<u64> = (0..8).map(contention_ceiling_ms).collect();
        assert_eq!(ceilings, [5, 10, 20, 40, 80, 160, 320, 500]);
        let worst_ms: u64 = (0..COUNT_ATTEMPTS).map(contention_ceiling_ms).sum();
        assert!(
            worst_ms <= 20_000,
            "{worst_ms} ms of pauses; the function has 30 s"
        );
    }

    proptest! {
        #[test]
        fn exactly_one_first_and_log10_digests(n in 1u64..200_000) {
            let firsts: Vec<u64> = (1..=n).filter(|&c| fold_for(c) == Fold::First).collect();
            prop_assert_eq!(firsts, vec![1]);
            let digests = (1..=n).filter(|&c| fold_for(c) == Fold::Digest).count() as u32;
            prop_assert_eq!(digests, n.ilog10());
        }

        #[test]
        fn advancing_counts_every_stop_once_and_reopens_after_the_window(
            gaps in proptest::collection::vec(0i64..400, 1..60),
            window in 60u64..1_000,
        ) {
            let mut now = 1_000_000;
            let mut window_state: Option<StormWindow> = None;
            let mut in_window = 0u64;
            let mut started = now;
            for (i, gap) in gaps.iter().enumerate() {
                now += gap;
                let next = advance_window(window_state.as_ref(), now, window, &format!("t{}", i % 3), "r");
                if now < started + window as i64 && window_state.is_some() {
                    in_window += 1;
                    prop_assert_eq!(next.started_at, started);
                    prop_assert_eq!(next.previous_count, window_state.as_ref().unwrap().previous_count);
                } else {
                    prop_assert_eq!(next.previous_count, window_state.as_ref().map(|w| w.count).filter(|&c| c > 1));
                    in_window = 1;
                    started = now;
                }
                prop_assert_eq!(next.count, in_window);
                prop_assert_eq!(next.last_at, now);
                prop_assert!(next.titles.windows(2).all(|w| w[0] < w[1]), "titles sorted and distinct");
                window_state = Some(next);
            }
        }

        #[test]
        fn contention_pauses_double_up_to_their_cap(attempt in 0u32..100, key in ".{0,40}") {
            let pause = contention_pause(attempt, &key).as_millis();
            prop_assert!(pause >= 1, "{pause}");
            let ceiling = u128::from(contention_ceiling_ms(attempt));
            prop_assert!(pause <= ceiling, "{pause} > {ceiling}");
        }

        #[test]
        fn window_is_half_open(started in 0i64..1_000_000, offset in 0i64..10_000, window in 60u64..5_000) {
            prop_assert_eq!(window_open(started, started + offset, window), offset < window as i64);
        }
    }
}

/// One notification a muting window held back, to count in its ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutedNotice<'a> {
    /// The ledger: the muting rule and the end of its window's occurrence.
    pub ledger_key: &'a str,
    pub category: &'a str,
    /// The `cluster/service` (or `cluster`) it is about.
    pub about: Option<&'a str>,
    /// The end of the window's occurrence (epoch s); the ledger expires `ttl_s` after it.
    pub until: i64,
    pub ttl_s: u64,
    /// The claim it was delivered under: a retry of that delivery is not counted again.
    pub claim_key: Option<&'a str>,
}

/// What a muting window held back, kept until it is summarised once the window ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MutedLedger {
    /// Notifications held back, per category.
    pub counts: BTreeMap<String, u64>,
    /// The `cluster/service` (or `cluster`) they were about.
    pub about: Vec<String>,
}
