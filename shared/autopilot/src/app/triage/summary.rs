//! Summaries of muting windows, on the watchdog's tick: for each muting rule with windows, the
//! ledger of each window's latest occurrence that has ended is read; when it held notifications
//! back, one summary is sent — claimed once, routed at the window's end, when the rule no longer
//! mutes — and the ledger is dropped.

use jiff::Timestamp;

use super::{Decision, TaskTriage, TriageOutcome, Via};
use crate::app::publish::MUTED_LEDGER_TTL_S;
use crate::entry::Invocation;
use crate::error::Result;
use crate::keys::{mute_ledger_key, summary_claim_key};
use crate::routing::summary::muted_summary_notice;
use crate::routing::window;

impl TaskTriage {
    /// Sends the summary of every muting window that ended with notifications held back.
    pub(super) async fn summarise_mutes(
        &self,
        invocation: &Invocation,
        results: &mut Vec<TriageOutcome>,
    ) -> Result<()> {
        let Some(state) = self.backend.state_access() else {
            return Ok(());
        };
        let now = self.clock.now_s();
        let Ok(now_at) = Timestamp::from_second(now) else {
            return Ok(());
        };
        for (index, label, windows) in self.courier.router().muting_windows() {
            for ended in windows
                .iter()
                .filter_map(|w| w.last_end_at_or_before(now_at))
            {
                let end = ended.as_second();
                if now.saturating_sub(end) > MUTED_LEDGER_TTL_S as i64 {
                    continue;
                }
                let key = mute_ledger_key(index, end);
                let Some(ledger) = state.reader().muted_ledger(&key).await? else {
                    continue;
                };
                let mut outcome = TriageOutcome::silent(None, None, None);
                let claim_key = summary_claim_key(&key);
                let Some(held) = self
                    .take_delivery(state, &claim_key, now, invocation, &mut outcome)
                    .await?
                else {
                    // Summarised before; the ledger outlived it.
                    if let Some(store) = state.writer() {
                        store.forget_muted(&key).await?;
                    }
                    continue;
                };
                let notice = muted_summary_notice(&label, &window::rfc3339(ended), &ledger);
                outcome.decision = Decision::Notify;
                outcome.notes.push(format!("summary of {key}"));
                let via = Via::claimed(held.as_ref(), invocation, now);
                let result = self.deliver(notice, end, None, &via, &mut outcome).await;
                if let Some(held) = held {
                    let message_id = outcome.message_id.clone();
                    let unsettled = held.settle(&result, "notify", message_id.as_deref()).await;
                    outcome.notes.extend(unsettled);
                }
                result?;
                if let Some(store) = state.writer() {
                    store.forget_muted(&key).await?;
                }
                results.push(outcome);
            }
        }
        Ok(())
    }
}
