//! Writing run records: every change is read → change (pure, [`RunRecord`]'s methods) → write
//! under the revision read, retried when another invocation wrote first (two tasks of a run
//! stopping together), with the record's index keys (`due_at`) and expiry from its job.

use super::BatchRunner;
use crate::app::contend::{retry_contended, Attempt, Contended};
use crate::batch::record::RunRecord;
use crate::batch::JobSpec;
use crate::error::Result;
use crate::ports::{RecordWrite, StateStore};

/// Writes of one record lost to other invocations before the event fails (and is retried).
const RECORD_ATTEMPTS: u32 = 6;

/// How a record is stored: when the tick must look at it, when it expires.
pub(super) fn stored(record: &RunRecord, spec: &JobSpec, now: i64) -> RecordWrite {
    RecordWrite {
        due_at: record.due_at(spec.expect.as_ref().and_then(|e| e.start_deadline_s)),
        expires_at: record.expires_at(spec.history_days, now),
    }
}

impl BatchRunner {
    /// Applies `change` to the record at `key` (none stored: to `absent()`, or nothing when
    /// that gives none) and writes it when `change` says it changed; the record as stored
    /// after, if there is one.
    pub(super) async fn change_record(
        &self,
        state: &dyn StateStore,
        key: &str,
        spec: &JobSpec,
        absent: impl Fn() -> Option<RunRecord>,
        mut change: impl FnMut(&mut RunRecord) -> bool,
    ) -> Result<Option<(RunRecord, bool)>> {
        let contended = Contended {
            attempts: RECORD_ATTEMPTS,
            contender: key,
            resource: key,
        };
        retry_contended(self.clock.as_ref(), contended, async |_| {
            let (mut record, revision, fresh) = match state.read_record(key).await? {
                Some((record, revision)) => (record, revision, false),
                None => match absent() {
                    Some(record) => (record, 0, true),
                    None => return Ok(Attempt::Done(None)),
                },
            };
            let changed = change(&mut record) || fresh;
            if !changed {
                return Ok(Attempt::Done(Some((record, false))));
            }
            let now = self.clock.now_s();
            let written = state
                .write_record(key, revision, &record, stored(&record, spec, now))
                .await?;
            Ok(Attempt::written(written, Some((record, true))))
        })
        .await
    }
}
