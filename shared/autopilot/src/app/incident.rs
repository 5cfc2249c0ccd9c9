//! Folding a service's signals into its incident, and resolving it, exactly once under
//! redelivery and concurrency: read the incident, apply the signal with the pure
//! [`crate::incident`] functions, write conditionally on the revision read, and on losing the race
//! pause and read again.

use super::contend::{retry_contended, Attempt, Contended};
use super::State;
use crate::error::Result;
use crate::incident::{
    apply_failure, apply_muted, apply_recovery, with_storms, Applied, Failure, Recovery,
};
use crate::ports::{Clock, StateStore};
use crate::state::StormWindow;

/// Attempts at the conditional write before the event fails as contended.
pub const WRITE_ATTEMPTS: u32 = 20;

/// The service an incident belongs to and its store key.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub key: &'a str,
    pub cluster: &'a str,
    pub service: &'a str,
}

/// Folds `failure` into the service's incident (opening one if none is open); on a state that
/// is only read (dry-run) tells what it would do.
pub async fn record_failure(
    state: State<'_>,
    clock: &dyn Clock,
    target: Target<'_>,
    failure: Failure<'_>,
) -> Result<Applied> {
    let resource = contended(target.key);
    retry_contended(clock, contention(failure.key, &resource), async |_| {
        let (current, revision) = split(state.reader().read_incident(target.key).await?);
        let applied = apply_failure(current.as_ref(), &failure, target.cluster, target.service);
        let Some(store) = state.writer().filter(|_| applied.changed()) else {
            return Ok(Attempt::Done(applied));
        };
        let written = store
            .write_incident(target.key, revision, applied.incident())
            .await?;
        Ok(Attempt::written(written, applied))
    })
    .await
}

/// A recovery of the service whose incident is at `incident_key`: the signal's key, when it
/// came (epoch seconds) and what ended the incident, worded for people.
#[derive(Debug, Clone, Copy)]
pub struct RecoverySignal<'a> {
    pub incident_key: &'a str,
    pub key: &'a str,
    pub at: i64,
    pub by: &'a str,
}

/// Resolves the service's open incident with `signal`, its counts joined by the stops its storm
/// windows (`(category, window)`) counted ([`with_storms`]).
pub async fn record_recovery(
    state: State<'_>,
    clock: &dyn Clock,
    signal: RecoverySignal<'_>,
    windows: &[(String, StormWindow)],
) -> Result<Recovery> {
    let RecoverySignal {
        incident_key,
        key,
        at,
        by,
    } = signal;
    let resource = contended(incident_key);
    retry_contended(clock, contention(key, &resource), async |_| {
        let (current, revision) = split(state.reader().read_incident(incident_key).await?);
        let current = current.map(|incident| with_storms(&incident, windows));
        let recovery = apply_recovery(current.as_ref(), key, at, by);
        let (Recovery::Resolves(resolved), Some(store)) = (&recovery, state.writer()) else {
            return Ok(Attempt::Done(recovery));
        };
        let written = store
            .write_incident(incident_key, revision, resolved)
            .await?;
        Ok(Attempt::written(written, recovery))
    })
    .await
}

/// Counts a notification about the incident at `incident_key` that a muting rule held back
/// (the signal `key`, of `category`), once.
pub async fn record_muted(
    store: &dyn StateStore,
    clock: &dyn Clock,
    incident_key: &str,
    key: &str,
    category: &str,
) -> Result<()> {
    let resource = contended(incident_key);
    retry_contended(clock, contention(key, &resource), async |_| {
        let Some((current, revision)) = store.read_incident(incident_key).await? else {
            return Ok(Attempt::Done(()));
        };
        let Some(next) = apply_muted(&current, key, category) else {
            return Ok(Attempt::Done(()));
        };
        let written = store.write_incident(incident_key, revision, &next).await?;
        Ok(Attempt::written(written, ()))
    })
    .await
}

fn split<T>(stored: Option<(T, u64)>) -> (Option<T>, u64) {
    match stored {
        Some((value, revision)) => (Some(value), revision),
        None => (None, 0),
    }
}

/// How an incident's write is retried: the signal's key parts the contenders.
fn contention<'a>(contender: &'a str, resource: &'a str) -> Contended<'a> {
    Contended {
        attempts: WRITE_ATTEMPTS,
        contender,
        resource,
    }
}

fn contended(key: &str) -> String {
    format!("incident {key}")
}
