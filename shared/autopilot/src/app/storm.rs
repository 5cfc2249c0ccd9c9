//! Counting a stop into its storm window exactly once: count it into the open window with one
//! atomic increment (no read, no contention); when no window is open, open the next one with the
//! pure [`Stop::opened`], conditionally on replacing exactly the window read, and when another
//! stop opened it first, count into theirs.

use super::contend::{retry_contended, Attempt, Contended};
use super::State;
use crate::error::Result;
use crate::ports::{Clock, Counting, StormReader, StormWriter};
use crate::state::{window_open, Stop, StormWindow, COUNT_ATTEMPTS};

/// Counts `stop` when the state is written, else projects the count (dry-run).
pub async fn count(state: State<'_>, clock: &dyn Clock, stop: Stop<'_>) -> Result<StormWindow> {
    match state {
        State::Write(store) => count_stop_once(store, clock, stop).await,
        State::Read(reader) => project_count(reader, stop).await,
    }
}

/// Counts `stop` and gives its window with this stop's number as the count. A retried delivery
/// that counted before gets its recorded number back; nothing is counted twice.
pub async fn count_stop_once(
    store: &dyn StormWriter,
    clock: &dyn Clock,
    stop: Stop<'_>,
) -> Result<StormWindow> {
    let resource = format!("storm window {}", stop.storm_key);
    let contended = Contended {
        attempts: COUNT_ATTEMPTS,
        contender: stop.claim_key,
        resource: &resource,
    };
    retry_contended(clock, contended, async |_| {
        let stored = match store.count_into_open(&stop).await? {
            Counting::Counted(window) => return Ok(Attempt::Done(window)),
            Counting::NotOpen(stored) => stored,
        };
        let still_open = stored
            .as_ref()
            .is_some_and(|w| window_open(w.started_at, stop.now, stop.window_s));
        if !still_open {
            let first = stop.opened(stored.as_ref());
            if store.open_window(&stop, stored.as_ref(), &first).await? {
                return Ok(Attempt::Done(first));
            }
        }
        // Another stop opened the window between the two calls: count into theirs.
        Ok(Attempt::Lost)
    })
    .await
}

/// What counting `stop` would give, without writing (for `--dry-run`): the number it was given
/// if it counted before, else the open window advanced by one or a new window.
pub async fn project_count(store: &dyn StormReader, stop: Stop<'_>) -> Result<StormWindow> {
    let (stored, counted) = store.peek_count(stop.claim_key, stop.storm_key).await?;
    Ok(match (stored, counted) {
        (Some(window), Some(count)) => StormWindow { count, ..window },
        (stored, _) => crate::state::advance_window(
            stored.as_ref(),
            stop.now,
            stop.window_s,
            stop.title,
            stop.reason,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::FakeClock;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A window that some other stop replaces every time this one tries to open it.
    #[derive(Debug, Default)]
    struct AlwaysBeaten {
        openings: AtomicU32,
    }

    #[async_trait]
    impl StormWriter for AlwaysBeaten {
        async fn count_into_open(&self, _: &Stop<'_>) -> Result<Counting> {
            Ok(Counting::NotOpen(None))
        }
        async fn open_window(
            &self,
            _: &Stop<'_>,
            _: Option<&StormWindow>,
            _: &StormWindow,
        ) -> Result<bool> {
            self.openings.fetch_add(1, Ordering::SeqCst);
            Ok(false)
        }
        async fn forget_count(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn close_windows(&self, _: &[String]) -> Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_window_never_won_is_a_contention_error_after_its_attempts() {
        let store = AlwaysBeaten::default();
        let clock = FakeClock::at(1_000);
        let stop = Stop {
            claim_key: "dedup#k",
            storm_key: "storm#s",
            now: 1_000,
            window_s: 600,
            title: "t",
            reason: "r",
        };
        let error = count_stop_once(&store, &clock, stop).await.unwrap_err();
        assert_eq!(error.error_type(), "Contention");
        assert!(error.to_string().contains("storm#s"), "{error}");
        assert_eq!(store.openings.load(Ordering::SeqCst), COUNT_ATTEMPTS);
        assert_eq!(clock.slept().len(), COUNT_ATTEMPTS as usize);
    }
}
