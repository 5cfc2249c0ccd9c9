//! The claim lifecycle every handler shares: take the claim on a piece of work (an event, an
//! alarm transition, a batch run), do the work, then mark it complete with its decision or
//! release it so that Lambda's retry can take it at once.

use super::State;
use crate::entry::Invocation;
use crate::error::{AutopilotError, Result};
use crate::ports::ClaimWriter;
use crate::state::{Claim, CLAIM_LEASE_MARGIN_S, CLI_LEASE_S};

/// A claim this invocation holds; [`settle`](HeldClaim::settle) it when the work is done.
#[derive(Debug)]
pub struct HeldClaim<'a> {
    store: &'a dyn ClaimWriter,
    pub key: String,
    /// The destinations that took the notification in an earlier attempt (labels).
    pub delivered: Vec<String>,
}

/// What taking a claim found.
#[derive(Debug)]
pub enum Taken<'a> {
    /// First delivery: go ahead.
    Fresh(HeldClaim<'a>),
    /// A retry of a delivery that did not complete: go ahead.
    Resumed(HeldClaim<'a>),
    /// Already handled: do nothing.
    Duplicate {
        decision: Option<String>,
        message_id: Option<String>,
    },
}

/// Takes the claim at `key` until the invocation's deadline plus a margin. Another invocation
/// holding it is [`AutopilotError::InProgressElsewhere`], so that Lambda retries later.
pub async fn take<'a>(
    store: &'a dyn ClaimWriter,
    key: String,
    now: i64,
    invocation: &Invocation,
    ttl_s: u64,
) -> Result<Taken<'a>> {
    let lease_until = invocation.deadline_epoch_s(now, CLI_LEASE_S) + CLAIM_LEASE_MARGIN_S;
    Ok(match store.claim(&key, now, lease_until, ttl_s).await? {
        Claim::Fresh => Taken::Fresh(HeldClaim {
            store,
            key,
            delivered: Vec::new(),
        }),
        Claim::Resumed { delivered } => Taken::Resumed(HeldClaim {
            store,
            key,
            delivered,
        }),
        Claim::Duplicate {
            decision,
            message_id,
        } => Taken::Duplicate {
            decision,
            message_id,
        },
        Claim::InProgress => return Err(AutopilotError::InProgressElsewhere { key }),
    })
}

/// What a delivery may do, on a live backend (the claim is taken) or a dry-run (it is only
/// looked at).
#[derive(Debug)]
pub enum Access<'a> {
    /// Go ahead: `held` when live.
    Go { held: Option<HeldClaim<'a>> },
    /// Already handled: do nothing.
    Duplicate {
        decision: Option<String>,
        message_id: Option<String>,
    },
}

const RETRY_NOTE: &str = "retry of an earlier delivery that did not complete";

/// Takes the claim at `key` when the state is written, else looks at it; notes say when this
/// is a retry (or, in a dry-run, that another invocation holds it).
pub async fn access<'a>(
    state: State<'a>,
    key: &str,
    now: i64,
    invocation: &Invocation,
    ttl_s: u64,
    notes: &mut Vec<String>,
) -> Result<Access<'a>> {
    let store = match state {
        State::Read(reader) => reader,
        State::Write(store) => {
            return Ok(
                match take(store, key.to_owned(), now, invocation, ttl_s).await? {
                    Taken::Fresh(held) => Access::Go { held: Some(held) },
                    Taken::Resumed(held) => {
                        notes.push(RETRY_NOTE.into());
                        Access::Go { held: Some(held) }
                    }
                    Taken::Duplicate {
                        decision,
                        message_id,
                    } => Access::Duplicate {
                        decision,
                        message_id,
                    },
                },
            )
        }
    };
    Ok(match store.peek_claim(key, now).await? {
        Claim::Duplicate {
            decision,
            message_id,
        } => Access::Duplicate {
            decision,
            message_id,
        },
        Claim::InProgress => {
            notes.push("another invocation is handling this delivery right now".into());
            Access::Go { held: None }
        }
        Claim::Fresh => Access::Go { held: None },
        Claim::Resumed { .. } => {
            notes.push(RETRY_NOTE.into());
            Access::Go { held: None }
        }
    })
}

impl HeldClaim<'_> {
    /// Records that `destination` took the notification (see
    /// [`ClaimWriter::record_delivery`]).
    pub async fn record_delivery(&self, destination: &str) -> Result<()> {
        self.store.record_delivery(&self.key, destination).await
    }

    /// Completes the claim with `decision` (and the message it sent) when the work succeeded,
    /// releases it when it failed. A failure to record either is logged and, for a completed
    /// claim, returned as a note: the work itself is done.
    pub async fn settle<T>(
        self,
        work: &Result<T>,
        decision: &str,
        message_id: Option<&str>,
    ) -> Option<String> {
        let key = &self.key;
        match work {
            Ok(_) => match self.store.complete(key, decision, message_id).await {
                Ok(()) => None,
                Err(error) => {
                    tracing::warn!("could not mark {key} complete: {error}");
                    Some(format!("could not record completion: {error}"))
                }
            },
            Err(_) => {
                if let Err(error) = self.store.release(key).await {
                    tracing::warn!("could not release {key}: {error}");
                }
                None
            }
        }
    }
}

/// The note of a duplicate delivery: `already handled (notify, message m-1)`.
pub fn duplicate_note(decision: Option<&str>, message_id: Option<&str>) -> String {
    format!(
        "already handled ({}{})",
        decision.unwrap_or("unknown decision"),
        message_id
            .map(|id| format!(", message {id}"))
            .unwrap_or_default()
    )
}
