//! Counting a stop into its storm window exactly once: read the window, advance it with the
//! pure [`advance_window`], write it conditionally together with the claim's record of the
//! number, and on contention pause and read again.

use crate::error::{AutopilotError, Result};
use crate::ports::{Clock, CountWrite, StormStore};
use crate::state::{
    advance_window, contention_pause, window_expires_at, StormWindow, COUNT_ATTEMPTS,
};

/// One stop to count.
#[derive(Debug, Clone, Copy)]
pub struct Stop<'a> {
    /// The claim of the delivery, which records the number it was given.
    pub claim_key: &'a str,
    pub storm_key: &'a str,
    pub now: i64,
    pub window_s: u64,
    pub title: &'a str,
    pub reason: &'a str,
}

/// Counts `stop` and gives its window with this stop's number as the count. A retried delivery
/// that counted before gets its recorded number back; nothing is counted twice.
pub async fn count_stop_once(
    store: &dyn StormStore,
    clock: &dyn Clock,
    stop: Stop<'_>,
) -> Result<StormWindow> {
    let expires_at = window_expires_at(stop.now, stop.window_s);
    for attempt in 0..COUNT_ATTEMPTS {
        let seen = store.read_window(stop.storm_key).await?;
        let next = advance_window(
            seen.as_ref(),
            stop.now,
            stop.window_s,
            stop.title,
            stop.reason,
        );
        match store
            .write_count(
                stop.claim_key,
                stop.storm_key,
                seen.as_ref(),
                &next,
                expires_at,
            )
            .await?
        {
            CountWrite::Written => return Ok(next),
            CountWrite::CountedBefore(count) => {
                let window = store.read_window(stop.storm_key).await?;
                return Ok(StormWindow {
                    count,
                    ..window.unwrap_or_default()
                });
            }
            CountWrite::Contended => clock.sleep(contention_pause(attempt, stop.claim_key)).await,
        }
    }
    Err(AutopilotError::Contention {
        resource: format!("storm window {}", stop.storm_key),
        attempts: COUNT_ATTEMPTS,
    })
}
