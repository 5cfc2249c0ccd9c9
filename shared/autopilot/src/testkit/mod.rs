//! In-memory implementations of every port (feature `testkit`), for handler tests without SDK
//! mocks: a clock that moves only when told (and when slept on), a state store with the same
//! conditional semantics as the DynamoDB table, a notifier that keeps what it was given, and
//! ECS, Logs, alarm and scalable-target fakes seeded by the test. Every fake records its calls
//! in one [`Recorder`], which can also make chosen operations fail.

pub mod contract;

use crate::arn::last_segment;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::app::{Backend, Ports, Setup, Writers};
use crate::batch::record::RunRecord;
use crate::batch::{RunTaskRequest, RunTaskResult, RunningTask};
use crate::config::StackConfig;
use crate::domain::{AwsLogsTarget, ServiceSnapshot};
use crate::entry::Mode;
use crate::error::{AutopilotError, Result};
use crate::events::alarm::AlarmTransition;
use crate::events::ecs::TaskDetail;
use crate::incident::Incident;
use crate::notify::Publish;
use crate::ports::{
    AlarmReader, BacklogReader, ClaimReader, ClaimWriter, Clock, Counting, IncidentReader,
    IncidentWriter, LogReader, MetricReader, MuteReader, MuteWriter, Notifier, Reach, ReadReach,
    RecordReader, RecordWrite, RecordWriter, RetryAfter, RunWriter, ScalableTargets, ScalingReader,
    ScalingWriter, Scope, ScopedPorts, ServiceReader, ServiceScaler, StateReader, StateStore,
    StormReader, StormWriter, TagReader, TaskInspector, TaskLister, TaskRunner, WatchReader,
    WatchWriter, WebhookReply,
};
use crate::scaling::target::MetricSignal;
use crate::scaling::{ScalingMemory, TargetBounds};
use crate::state::{
    claimable, refused_claim, Claim, ClaimRecord, ClaimStatus, MutedLedger, MutedNotice, Stop,
    StormWindow,
};
use crate::trust::Accounts;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every call the fakes receive, by operation name (`Publish`, `RunTask`, `UpdateItem` …), and
/// the faults planned for them.
#[derive(Debug, Default)]
pub struct Recorder {
    calls: Mutex<Vec<&'static str>>,
    faults: Mutex<HashMap<&'static str, VecDeque<String>>>,
    always: Mutex<HashMap<&'static str, String>>,
}

impl Recorder {
    /// Records a call; fails it when a fault is planned for the operation.
    fn enter(&self, service: &'static str, operation: &'static str) -> Result<()> {
        lock(&self.calls).push(operation);
        let planned = lock(&self.faults)
            .get_mut(operation)
            .and_then(VecDeque::pop_front)
            .or_else(|| lock(&self.always).get(operation).cloned());
        match planned {
            Some(code) => Err(AutopilotError::Aws {
                service,
                operation,
                code,
                message: "injected by the testkit".into(),
            }),
            None => Ok(()),
        }
    }

    /// The next `times` calls of `operation` fail with `code`.
    pub fn fail_next(&self, operation: &'static str, code: &str, times: usize) {
        lock(&self.faults)
            .entry(operation)
            .or_default()
            .extend(std::iter::repeat_n(code.to_owned(), times));
    }

    /// Every call of `operation` fails with `code`.
    pub fn fail_always(&self, operation: &'static str, code: &str) {
        lock(&self.always).insert(operation, code.to_owned());
    }

    /// How many calls `operation` received.
    pub fn count(&self, operation: &str) -> usize {
        lock(&self.calls)
            .iter()
            .filter(|&&op| op == operation)
            .count()
    }

    /// Every call so far, in order.
    pub fn log(&self) -> Vec<&'static str> {
        lock(&self.calls).clone()
    }
}

/// A clock that stands still until told to move; sleeping moves it by the time slept.
#[derive(Debug)]
pub struct FakeClock {
    now_ms: AtomicI64,
    slept: Mutex<Vec<Duration>>,
}

impl FakeClock {
    /// A clock at `now` (epoch seconds).
    pub fn at(now: i64) -> Self {
        Self {
            now_ms: AtomicI64::new(now * 1000),
            slept: Mutex::new(Vec::new()),
        }
    }

    /// Moves the clock on.
    pub fn advance(&self, by: Duration) {
        self.now_ms
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// Every sleep so far.
    pub fn slept(&self) -> Vec<Duration> {
        lock(&self.slept).clone()
    }
}

#[async_trait]
impl Clock for FakeClock {
    fn now_s(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst).div_euclid(1000)
    }

    async fn sleep(&self, duration: Duration) {
        lock(&self.slept).push(duration);
        self.advance(duration);
    }
}

/// A claim record as the memory store keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredClaim {
    pub status: Option<ClaimStatus>,
    pub lease_until: i64,
    pub expires_at: i64,
    pub decision: Option<String>,
    pub message_id: Option<String>,
    /// Batch runs: how often resumed, and the tasks started.
    pub rounds: u32,
    pub tasks: BTreeSet<String>,
    /// The destinations that took its notification (labels, sorted).
    pub delivered: Vec<String>,
}

impl StoredClaim {
    fn record(&self) -> ClaimRecord {
        ClaimRecord {
            status: self.status,
            lease_until: self.lease_until,
            message_id: self.message_id.clone(),
            decision: self.decision.clone(),
        }
    }
}

/// The state table in memory, with the table's conditions.
#[derive(Debug)]
pub struct MemoryState {
    recorder: Arc<Recorder>,
    claims: Mutex<BTreeMap<String, StoredClaim>>,
    windows: Mutex<BTreeMap<String, StormWindow>>,
    /// Per storm key, the number each claim in flight was given (the window's `counted` map).
    counted: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    scaling: Mutex<BTreeMap<String, (ScalingMemory, u64, String)>>,
    incidents: Mutex<BTreeMap<String, (Incident, u64)>>,
    /// Run records: the record, its revision and how it was stored.
    records: Mutex<BTreeMap<String, (RunRecord, u64, RecordWrite)>>,
    /// Task ARN → record key.
    pointers: Mutex<BTreeMap<String, String>>,
    /// Missed-run watches: key → since.
    watches: Mutex<BTreeMap<String, i64>>,
    short_since: Mutex<BTreeMap<String, i64>>,
    muted: Mutex<BTreeMap<String, MutedLedger>>,
    /// (ledger, claim) pairs counted.
    muted_claims: Mutex<BTreeSet<(String, String)>>,
    /// Incident writes that another invocation wins just before ours.
    concurrent_incident_writes: Mutex<u32>,
    /// Windows that other stops open just before the next openings.
    concurrent_openings: Mutex<u32>,
    /// A change another invocation records just before the next scaling write.
    concurrent_scaling: Mutex<Option<ScalingMemory>>,
}

impl MemoryState {
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Self {
            recorder,
            claims: Mutex::default(),
            windows: Mutex::default(),
            counted: Mutex::default(),
            scaling: Mutex::default(),
            incidents: Mutex::default(),
            records: Mutex::default(),
            pointers: Mutex::default(),
            watches: Mutex::default(),
            short_since: Mutex::default(),
            muted: Mutex::default(),
            muted_claims: Mutex::default(),
            concurrent_incident_writes: Mutex::new(0),
            concurrent_openings: Mutex::new(0),
            concurrent_scaling: Mutex::new(None),
        }
    }

    /// The claim at `key`.
    pub fn claim_at(&self, key: &str) -> Option<StoredClaim> {
        lock(&self.claims).get(key).cloned()
    }

    /// Every claim key.
    pub fn claim_keys(&self) -> Vec<String> {
        lock(&self.claims).keys().cloned().collect()
    }

    /// Every muted ledger, by key.
    pub fn muted_ledgers(&self) -> BTreeMap<String, MutedLedger> {
        lock(&self.muted).clone()
    }

    /// Sets the claim at `key`.
    pub fn put_claim(&self, key: &str, claim: StoredClaim) {
        lock(&self.claims).insert(key.to_owned(), claim);
    }

    /// The storm window at `key`.
    pub fn window_at(&self, key: &str) -> Option<StormWindow> {
        lock(&self.windows).get(key).cloned()
    }

    /// Every storm window.
    pub fn windows(&self) -> BTreeMap<String, StormWindow> {
        lock(&self.windows).clone()
    }

    /// Sets the storm window at `key` (its record of numbers given empty).
    pub fn put_window(&self, key: &str, window: StormWindow) {
        lock(&self.windows).insert(key.to_owned(), window);
        lock(&self.counted).remove(key);
    }

    /// Records in the window at `storm_key` that the stop of `claim_key` was given `number`
    /// (an earlier attempt counted it).
    pub fn put_counted(&self, storm_key: &str, claim_key: &str, number: u64) {
        lock(&self.counted)
            .entry(storm_key.to_owned())
            .or_default()
            .insert(claim_key.to_owned(), number);
    }

    /// The number the window at `storm_key` records for the stop of `claim_key` (until its
    /// claim completes).
    pub fn counted_at(&self, storm_key: &str, claim_key: &str) -> Option<u64> {
        lock(&self.counted)
            .get(storm_key)
            .and_then(|numbers| numbers.get(claim_key).copied())
    }

    /// The scaling memory at `key`, its revision and its last recorded change.
    pub fn scaling_at(&self, key: &str) -> Option<(ScalingMemory, u64, String)> {
        lock(&self.scaling).get(key).cloned()
    }

    /// The next `writes` incident writes find the revision moved (another invocation wrote the
    /// same incident first).
    pub fn write_incidents_concurrently(&self, writes: u32) {
        *lock(&self.concurrent_incident_writes) += writes;
    }

    /// Sets the incident at `key` (revision 1).
    pub fn put_incident(&self, key: &str, incident: Incident) {
        lock(&self.incidents).insert(key.to_owned(), (incident, 1));
    }

    /// The run record at `key`, its revision and how it was stored.
    pub fn record_at(&self, key: &str) -> Option<(RunRecord, u64, RecordWrite)> {
        lock(&self.records).get(key).cloned()
    }

    /// Every run record, by key.
    pub fn records(&self) -> BTreeMap<String, RunRecord> {
        lock(&self.records)
            .iter()
            .map(|(key, (record, _, _))| (key.clone(), record.clone()))
            .collect()
    }

    /// The incident at `key` and its revision.
    pub fn incident_at(&self, key: &str) -> Option<(Incident, u64)> {
        lock(&self.incidents).get(key).cloned()
    }

    /// The next `openings` of a window find that another stop opened it just before (its count
    /// 1, its number recorded for no claim here).
    pub fn open_concurrently(&self, openings: u32) {
        *lock(&self.concurrent_openings) += openings;
    }

    /// The next scaling write finds that another invocation recorded `memory` first.
    pub fn scale_concurrently(&self, memory: ScalingMemory) {
        *lock(&self.concurrent_scaling) = Some(memory);
    }

    fn missing(operation: &'static str, key: &str) -> AutopilotError {
        AutopilotError::Aws {
            service: "dynamodb",
            operation,
            code: "ConditionalCheckFailedException".into(),
            message: format!("no record {key}"),
        }
    }

    fn update_claim(
        &self,
        operation: &'static str,
        key: &str,
        change: impl FnOnce(&mut StoredClaim),
    ) -> Result<StoredClaim> {
        self.recorder.enter("dynamodb", operation)?;
        let mut claims = lock(&self.claims);
        let claim = claims
            .get_mut(key)
            .ok_or_else(|| Self::missing(operation, key))?;
        change(claim);
        Ok(claim.clone())
    }
}

#[async_trait]
impl ClaimReader for MemoryState {
    async fn peek_claim(&self, key: &str, now: i64) -> Result<Claim> {
        self.recorder.enter("dynamodb", "GetItem")?;
        Ok(match lock(&self.claims).get(key) {
            None => Claim::Fresh,
            Some(claim) if claimable(&claim.record(), now) => Claim::Resumed {
                delivered: claim.delivered.clone(),
            },
            Some(claim) => refused_claim(&claim.record()),
        })
    }
}

#[async_trait]
impl ClaimWriter for MemoryState {
    async fn claim(&self, key: &str, now: i64, lease_until: i64, ttl_s: u64) -> Result<Claim> {
        self.recorder.enter("dynamodb", "UpdateItem")?;
        let mut claims = lock(&self.claims);
        let existing = claims.get(key).cloned();
        if let Some(old) = &existing {
            let takeable = match old.status {
                None | Some(ClaimStatus::Retryable) => true,
                Some(ClaimStatus::InProgress) => old.lease_until < now,
                Some(ClaimStatus::Complete) => false,
            };
            if !takeable {
                return Ok(refused_claim(&old.record()));
            }
        }
        let mut claim = existing.clone().unwrap_or_default();
        claim.status = Some(ClaimStatus::InProgress);
        claim.lease_until = lease_until;
        claim.expires_at = now.saturating_add(ttl_s as i64);
        claims.insert(key.to_owned(), claim);
        Ok(match existing {
            Some(old) => Claim::Resumed {
                delivered: old.delivered,
            },
            None => Claim::Fresh,
        })
    }

    async fn complete(&self, key: &str, decision: &str, message_id: Option<&str>) -> Result<()> {
        self.update_claim("UpdateItem", key, |claim| {
            claim.status = Some(ClaimStatus::Complete);
            claim.decision = Some(decision.to_owned());
            if let Some(id) = message_id {
                claim.message_id = Some(id.to_owned());
            }
        })
        .map(drop)
    }

    async fn release(&self, key: &str) -> Result<()> {
        self.update_claim("UpdateItem", key, |claim| {
            claim.status = Some(ClaimStatus::Retryable)
        })
        .map(drop)
    }

    async fn record_delivery(&self, key: &str, destination: &str) -> Result<()> {
        self.update_claim("UpdateItem", key, |claim| {
            if !claim.delivered.iter().any(|d| d == destination) {
                claim.delivered.push(destination.to_owned());
                claim.delivered.sort();
            }
        })
        .map(drop)
    }
}

#[async_trait]
impl StormReader for MemoryState {
    async fn read_window(&self, storm_key: &str) -> Result<Option<StormWindow>> {
        self.recorder.enter("dynamodb", "GetItem")?;
        Ok(lock(&self.windows).get(storm_key).map(stored_window))
    }
    async fn peek_count(
        &self,
        claim_key: &str,
        storm_key: &str,
    ) -> Result<(Option<StormWindow>, Option<u64>)> {
        let window = self.read_window(storm_key).await?;
        Ok((window, self.counted_at(storm_key, claim_key)))
    }
}

#[async_trait]
impl StormWriter for MemoryState {
    async fn close_windows(&self, storm_keys: &[String]) -> Result<()> {
        for key in storm_keys {
            self.recorder.enter("dynamodb", "DeleteItem")?;
            lock(&self.windows).remove(key);
            lock(&self.counted).remove(key);
        }
        Ok(())
    }

    async fn count_into_open(&self, stop: &Stop<'_>) -> Result<Counting> {
        self.recorder.enter("dynamodb", "UpdateItem")?;
        let mut windows = lock(&self.windows);
        let mut counted = lock(&self.counted);
        let Some(window) = windows.get_mut(stop.storm_key) else {
            return Ok(Counting::NotOpen(None));
        };
        let numbers = counted.entry(stop.storm_key.to_owned()).or_default();
        if let Some(&number) = numbers.get(stop.claim_key) {
            return Ok(Counting::Counted(StormWindow {
                count: number,
                ..stored_window(window)
            }));
        }
        if window.started_at <= stop.open_since() {
            return Ok(Counting::NotOpen(Some(stored_window(window))));
        }
        window.count += 1;
        window.last_at = stop.now;
        window.last_reason = Some(stop.reason.to_owned()).filter(|r| !r.is_empty());
        if !window.titles.iter().any(|t| t == stop.title) {
            window.titles.push(stop.title.to_owned());
            window.titles.sort();
        }
        numbers.insert(stop.claim_key.to_owned(), window.count);
        Ok(Counting::Counted(stored_window(window)))
    }

    async fn open_window(
        &self,
        stop: &Stop<'_>,
        replaced: Option<&StormWindow>,
        first: &StormWindow,
    ) -> Result<bool> {
        self.recorder.enter("dynamodb", "PutItem")?;
        let mut windows = lock(&self.windows);
        let mut counted = lock(&self.counted);
        let mut concurrent = lock(&self.concurrent_openings);
        if *concurrent > 0 {
            *concurrent -= 1;
            let theirs = StormWindow {
                previous_count: None,
                ..first.clone()
            };
            windows.insert(stop.storm_key.to_owned(), theirs);
            counted.remove(stop.storm_key);
            return Ok(false);
        }
        let unchanged = match (replaced, windows.get(stop.storm_key)) {
            (None, None) => true,
            (Some(read), Some(stored)) => read.started_at == stored.started_at,
            _ => false,
        };
        if !unchanged {
            return Ok(false);
        }
        windows.insert(stop.storm_key.to_owned(), stored_window(first));
        counted.insert(
            stop.storm_key.to_owned(),
            [(stop.claim_key.to_owned(), first.count)].into(),
        );
        Ok(true)
    }

    async fn forget_count(&self, claim_key: &str, storm_key: &str) -> Result<()> {
        self.recorder.enter("dynamodb", "UpdateItem")?;
        if let Some(numbers) = lock(&self.counted).get_mut(storm_key) {
            numbers.remove(claim_key);
        }
        Ok(())
    }
}

/// A window as the table gives it back: the count of the window it replaced is not stored.
fn stored_window(window: &StormWindow) -> StormWindow {
    StormWindow {
        previous_count: None,
        ..window.clone()
    }
}

#[async_trait]
impl ScalingReader for MemoryState {
    async fn scaling_memory(&self, key: &str) -> Result<(ScalingMemory, u64)> {
        self.recorder.enter("dynamodb", "GetItem")?;
        Ok(lock(&self.scaling)
            .get(key)
            .map(|(memory, revision, _)| (memory.clone(), *revision))
            .unwrap_or_default())
    }
}

#[async_trait]
impl ScalingWriter for MemoryState {
    async fn record_scaling(
        &self,
        key: &str,
        expected_revision: u64,
        memory: &ScalingMemory,
        change: &str,
    ) -> Result<bool> {
        self.recorder.enter("dynamodb", "UpdateItem")?;
        let mut scaling = lock(&self.scaling);
        if let Some(other) = lock(&self.concurrent_scaling).take() {
            let entry = scaling.entry(key.to_owned()).or_insert((
                ScalingMemory::default(),
                0,
                String::new(),
            ));
            *entry = (other, entry.1 + 1, "a concurrent invocation".into());
        }
        let revision = scaling.get(key).map_or(0, |(_, revision, _)| *revision);
        if revision != expected_revision {
            return Ok(false);
        }
        scaling.insert(
            key.to_owned(),
            (memory.clone(), expected_revision + 1, change.to_owned()),
        );
        Ok(true)
    }
}

#[async_trait]
impl RunWriter for MemoryState {
    async fn resume_run(&self, key: &str) -> Result<(u32, Vec<String>)> {
        let claim = self.update_claim("UpdateItem", key, |claim| claim.rounds += 1)?;
        Ok((claim.rounds, claim.tasks.into_iter().collect()))
    }

    async fn add_run_tasks(&self, key: &str, tasks: &[String]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        self.update_claim("UpdateItem", key, |claim| {
            claim.tasks.extend(tasks.iter().cloned())
        })
        .map(drop)
    }
}

#[async_trait]
impl RecordReader for MemoryState {
    async fn read_record(&self, key: &str) -> Result<Option<(RunRecord, u64)>> {
        self.recorder.enter("dynamodb", "GetItem")?;
        Ok(lock(&self.records)
            .get(key)
            .map(|(record, revision, _)| (record.clone(), *revision)))
    }

    async fn record_of_task(&self, task_arn: &str) -> Result<Option<String>> {
        self.recorder.enter("dynamodb", "GetItem")?;
        Ok(lock(&self.pointers).get(task_arn).cloned())
    }

    async fn runs_of(&self, job: &str, since: i64, limit: usize) -> Result<Vec<RunRecord>> {
        self.recorder.enter("dynamodb", "Query")?;
        let mut runs: Vec<RunRecord> = lock(&self.records)
            .values()
            .filter(|(record, _, _)| record.job == job && record.scheduled_at >= since)
            .map(|(record, _, _)| record.clone())
            .collect();
        runs.sort_by_key(|run| std::cmp::Reverse(run.scheduled_at));
        runs.truncate(limit);
        Ok(runs)
    }

    async fn runs_due(&self, job: &str, now: i64) -> Result<Vec<(RunRecord, u64)>> {
        self.recorder.enter("dynamodb", "Query")?;
        Ok(lock(&self.records)
            .values()
            .filter(|(record, _, write)| {
                record.job == job && write.due_at.is_some_and(|due| due <= now)
            })
            .map(|(record, revision, _)| (record.clone(), *revision))
            .collect())
    }
}

#[async_trait]
impl RecordWriter for MemoryState {
    async fn write_record(
        &self,
        key: &str,
        expected_revision: u64,
        record: &RunRecord,
        write: RecordWrite,
    ) -> Result<bool> {
        self.recorder.enter("dynamodb", "PutItem")?;
        let mut records = lock(&self.records);
        let revision = records.get(key).map_or(0, |(_, revision, _)| *revision);
        if revision != expected_revision {
            return Ok(false);
        }
        records.insert(
            key.to_owned(),
            (record.clone(), expected_revision + 1, write),
        );
        Ok(true)
    }

    async fn point_tasks(&self, key: &str, tasks: &[String], _expires_at: i64) -> Result<()> {
        for chunk in tasks.chunks(25) {
            self.recorder.enter("dynamodb", "BatchWriteItem")?;
            let mut pointers = lock(&self.pointers);
            for task in chunk {
                pointers.insert(task.clone(), key.to_owned());
            }
        }
        Ok(())
    }

    async fn watch_since(&self, key: &str, now: i64, _expires_at: i64) -> Result<i64> {
        self.recorder.enter("dynamodb", "UpdateItem")?;
        Ok(*lock(&self.watches).entry(key.to_owned()).or_insert(now))
    }
}

#[async_trait]
impl IncidentReader for MemoryState {
    async fn read_incident(&self, key: &str) -> Result<Option<(Incident, u64)>> {
        self.recorder.enter("dynamodb", "GetItem")?;
        Ok(lock(&self.incidents).get(key).cloned())
    }
}

#[async_trait]
impl IncidentWriter for MemoryState {
    async fn write_incident(
        &self,
        key: &str,
        expected_revision: u64,
        incident: &Incident,
    ) -> Result<bool> {
        self.recorder.enter("dynamodb", "PutItem")?;
        let mut incidents = lock(&self.incidents);
        {
            let mut concurrent = lock(&self.concurrent_incident_writes);
            if *concurrent > 0 {
                *concurrent -= 1;
                if let Some((_, revision)) = incidents.get_mut(key) {
                    *revision += 1;
                } else {
                    return Ok(false);
                }
            }
        }
        let revision = incidents.get(key).map_or(0, |(_, revision)| *revision);
        if revision != expected_revision {
            return Ok(false);
        }
        incidents.insert(key.to_owned(), (incident.clone(), expected_revision + 1));
        Ok(true)
    }
}

#[async_trait]
impl WatchReader for MemoryState {
    async fn short_since(&self, key: &str) -> Result<Option<i64>> {
        self.recorder.enter("dynamodb", "GetItem")?;
        Ok(lock(&self.short_since).get(key).copied())
    }
}

#[async_trait]
impl WatchWriter for MemoryState {
    async fn set_short_since(&self, key: &str, since: Option<i64>, _now: i64) -> Result<()> {
        self.recorder.enter("dynamodb", "PutItem")?;
        let mut records = lock(&self.short_since);
        match since {
            Some(at) => records.insert(key.to_owned(), at),
            None => records.remove(key),
        };
        Ok(())
    }
}

#[async_trait]
impl MuteReader for MemoryState {
    async fn muted_ledger(&self, key: &str) -> Result<Option<MutedLedger>> {
        self.recorder.enter("dynamodb", "GetItem")?;
        Ok(lock(&self.muted).get(key).cloned())
    }
}

#[async_trait]
impl MuteWriter for MemoryState {
    async fn count_muted(&self, muted: &MutedNotice<'_>) -> Result<()> {
        self.recorder.enter("dynamodb", "UpdateItem")?;
        let mut ledgers = lock(&self.muted);
        let ledger = ledgers.entry(muted.ledger_key.to_owned()).or_default();
        if let Some(claim) = muted.claim_key {
            let claims = lock(&self.muted_claims);
            if claims.contains(&(muted.ledger_key.to_owned(), claim.to_owned())) {
                return Ok(());
            }
        }
        *ledger.counts.entry(muted.category.to_owned()).or_default() += 1;
        if let Some(about) = muted.about {
            if !ledger.about.iter().any(|a| a == about) {
                ledger.about.push(about.to_owned());
                ledger.about.sort();
            }
        }
        if let Some(claim) = muted.claim_key {
            lock(&self.muted_claims).insert((muted.ledger_key.to_owned(), claim.to_owned()));
        }
        Ok(())
    }

    async fn forget_muted(&self, key: &str) -> Result<()> {
        self.recorder.enter("dynamodb", "DeleteItem")?;
        lock(&self.muted).remove(key);
        Ok(())
    }
}

/// A notifier that keeps every notification it is given: what was published to which topic
/// (`None`: the default) and what was posted to which webhook, whose answers a test may script.
#[derive(Debug)]
pub struct MemoryNotifier {
    recorder: Arc<Recorder>,
    sent: Mutex<Vec<(Option<String>, Publish)>>,
    posted: Mutex<Vec<(String, String)>>,
    /// Answers to give each webhook's next posts, in order; then 200.
    replies: Mutex<BTreeMap<String, VecDeque<WebhookReply>>>,
}

impl MemoryNotifier {
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Self {
            recorder,
            sent: Mutex::default(),
            posted: Mutex::default(),
            replies: Mutex::default(),
        }
    }

    /// Everything published, in order.
    pub fn sent(&self) -> Vec<Publish> {
        lock(&self.sent).iter().map(|(_, p)| p.clone()).collect()
    }

    /// Everything published with its topic (`None`: the default topic), in order.
    pub fn sent_to(&self) -> Vec<(Option<String>, Publish)> {
        lock(&self.sent).clone()
    }

    /// The subjects published, in order.
    pub fn subjects(&self) -> Vec<String> {
        lock(&self.sent)
            .iter()
            .map(|(_, p)| p.subject.clone())
            .collect()
    }

    /// Every webhook post that was answered 2xx, as (webhook, JSON body), in order.
    pub fn posted(&self) -> Vec<(String, String)> {
        lock(&self.posted).clone()
    }

    /// Answers the next posts to `webhook` with `status` (and `Retry-After`), in order.
    pub fn answer(&self, webhook: &str, status: u16, retry_after_s: Option<u64>) {
        lock(&self.replies)
            .entry(webhook.to_owned())
            .or_default()
            .push_back(WebhookReply {
                status,
                retry_after: retry_after_s.map(RetryAfter::Seconds),
                body: String::new(),
            });
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn publish(&self, topic: Option<&str>, publish: &Publish) -> Result<String> {
        self.recorder.enter("sns", "Publish")?;
        let mut sent = lock(&self.sent);
        sent.push((topic.map(str::to_owned), publish.clone()));
        Ok(format!("m-{}", sent.len()))
    }

    async fn post(&self, webhook: &str, body: &str) -> Result<WebhookReply> {
        self.recorder.enter("webhook", "Post")?;
        let reply = lock(&self.replies)
            .get_mut(webhook)
            .and_then(VecDeque::pop_front)
            .unwrap_or(WebhookReply {
                status: 200,
                retry_after: None,
                body: "ok".into(),
            });
        if (200..300).contains(&reply.status) {
            lock(&self.posted).push((webhook.to_owned(), body.to_owned()));
        }
        Ok(reply)
    }
}

/// A task the fake ECS knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTask {
    pub arn: String,
    pub cluster: String,
    pub started_by: String,
    pub started_at: Option<i64>,
}

/// How the fake ECS answers RunTask: started tasks and failures for a request.
pub type RunTaskScript = Box<dyn Fn(&RunTaskRequest) -> RunTaskResult + Send + Sync>;

/// ECS in memory: services, task definitions' log settings, running tasks, and RunTask answers
/// (all tasks start unless a script says otherwise; a repeated client token gets the first
/// answer again, as ECS's idempotency does).
#[derive(Default)]
pub struct FakeEcs {
    recorder: Arc<Recorder>,
    services: Mutex<HashMap<(String, String), ServiceSnapshot>>,
    log_targets: Mutex<HashMap<(String, String), AwsLogsTarget>>,
    tasks: Mutex<Vec<FakeTask>>,
    run_script: Mutex<VecDeque<RunTaskScript>>,
    answered_tokens: Mutex<HashMap<String, RunTaskResult>>,
    run_requests: Mutex<Vec<RunTaskRequest>>,
    desired_updates: Mutex<Vec<(String, String, u32)>>,
    stopped: Mutex<Vec<(String, String, String)>>,
    stopped_tasks: Mutex<HashMap<(String, String), Vec<TaskDetail>>>,
    service_tasks: Mutex<HashMap<(String, String), Vec<TaskDetail>>>,
    tags: Mutex<HashMap<String, BTreeMap<String, String>>>,
}

impl std::fmt::Debug for FakeEcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEcs").finish_non_exhaustive()
    }
}

impl FakeEcs {
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Self {
            recorder,
            ..Self::default()
        }
    }

    /// Tags the resource `arn` (a service or a task) with `tags`.
    pub fn tag(&self, arn: &str, tags: &[(&str, &str)]) {
        let tags = tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        lock(&self.tags).insert(arn.to_owned(), tags);
    }

    /// Sets what DescribeServices says of `cluster`/`service` (names or ARNs).
    pub fn set_service(&self, cluster: &str, service: &str, snapshot: ServiceSnapshot) {
        lock(&self.services).insert(
            (last_segment(cluster).into(), last_segment(service).into()),
            snapshot,
        );
    }

    /// What the service looks like now.
    pub fn service(&self, cluster: &str, service: &str) -> Option<ServiceSnapshot> {
        lock(&self.services)
            .get(&(last_segment(cluster).into(), last_segment(service).into()))
            .cloned()
    }

    /// Sets the awslogs target of `container` in `task_definition`.
    pub fn set_log_target(&self, task_definition: &str, container: &str, target: AwsLogsTarget) {
        lock(&self.log_targets).insert((task_definition.into(), container.into()), target);
    }

    /// Adds a running task.
    pub fn add_task(&self, task: FakeTask) {
        lock(&self.tasks).push(task);
    }

    /// The tasks running now.
    pub fn tasks(&self) -> Vec<FakeTask> {
        lock(&self.tasks).clone()
    }

    /// The next RunTask calls are answered by these scripts, in order (then all tasks start).
    pub fn script_run_task(&self, scripts: impl IntoIterator<Item = RunTaskScript>) {
        lock(&self.run_script).extend(scripts);
    }

    /// Every RunTask request received.
    pub fn run_requests(&self) -> Vec<RunTaskRequest> {
        lock(&self.run_requests).clone()
    }

    /// Every UpdateService call: cluster, service, desired count.
    pub fn desired_updates(&self) -> Vec<(String, String, u32)> {
        lock(&self.desired_updates).clone()
    }

    /// Sets the recently stopped tasks of `cluster`/`service`, newest first.
    pub fn set_stopped_tasks(&self, cluster: &str, service: &str, tasks: Vec<TaskDetail>) {
        lock(&self.stopped_tasks).insert(
            (last_segment(cluster).into(), last_segment(service).into()),
            tasks,
        );
    }

    /// Sets the tasks of `cluster`/`service` that should be running (started or not yet).
    pub fn set_service_tasks(&self, cluster: &str, service: &str, tasks: Vec<TaskDetail>) {
        lock(&self.service_tasks).insert(
            (last_segment(cluster).into(), last_segment(service).into()),
            tasks,
        );
    }

    /// ListTasks then (when it found any) DescribeTasks over one of the task maps.
    fn listed(
        &self,
        tasks: &Mutex<HashMap<(String, String), Vec<TaskDetail>>>,
        cluster: &str,
        service: &str,
        limit: u32,
    ) -> Result<Vec<TaskDetail>> {
        self.recorder.enter("ecs", "ListTasks")?;
        let found = lock(tasks)
            .get(&(last_segment(cluster).into(), last_segment(service).into()))
            .cloned()
            .unwrap_or_default();
        if !found.is_empty() {
            self.recorder.enter("ecs", "DescribeTasks")?;
        }
        Ok(found.into_iter().take(limit as usize).collect())
    }

    /// Every StopTask call: cluster, task, reason.
    pub fn stopped(&self) -> Vec<(String, String, String)> {
        lock(&self.stopped).clone()
    }
}

/// A script that starts `n` of the asked tasks and fails the rest with `reason`.
pub fn start_then_fail(n: u32, reason: &'static str) -> RunTaskScript {
    Box::new(move |request| {
        let started = n.min(request.count);
        RunTaskResult {
            tasks: (0..started)
                .map(|i| {
                    format!(
                        "arn:aws:ecs:us-east-1:111122223333:task/{}/{}-{i}",
                        last_segment(&request.cluster),
                        request.client_token
                    )
                })
                .collect(),
            failures: (started..request.count)
                .map(|_| crate::batch::RunFailure {
                    arn: None,
                    reason: reason.to_owned(),
                    detail: None,
                })
                .collect(),
        }
    })
}

#[async_trait]
impl TagReader for FakeEcs {
    async fn resource_tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        self.recorder.enter("ecs", "ListTagsForResource")?;
        Ok(lock(&self.tags).get(arn).cloned().unwrap_or_default())
    }
}

#[async_trait]
impl ServiceReader for FakeEcs {
    async fn list_services(&self, cluster: &str, limit: u32) -> Result<Vec<String>> {
        self.recorder.enter("ecs", "ListServices")?;
        let mut names: Vec<String> = lock(&self.services)
            .keys()
            .filter(|(c, _)| c == last_segment(cluster))
            .map(|(_, s)| s.clone())
            .collect();
        names.sort();
        names.truncate(limit as usize);
        Ok(names)
    }

    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceSnapshot)>> {
        self.recorder.enter("ecs", "DescribeServices")?;
        Ok(services
            .iter()
            .take(10)
            .filter_map(|name| Some((name.clone(), self.service(cluster, name)?)))
            .collect())
    }

    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ServiceSnapshot>> {
        self.recorder.enter("ecs", "DescribeServices")?;
        Ok(self.service(cluster, service))
    }
}

#[async_trait]
impl TaskInspector for FakeEcs {
    async fn awslogs_target(
        &self,
        task_definition: &str,
        container: &str,
    ) -> Result<Option<AwsLogsTarget>> {
        self.recorder.enter("ecs", "DescribeTaskDefinition")?;
        Ok(lock(&self.log_targets)
            .get(&(task_definition.into(), container.into()))
            .cloned())
    }

    async fn recent_stopped_tasks(
        &self,
        cluster: &str,
        service: &str,
        limit: u32,
    ) -> Result<Vec<TaskDetail>> {
        self.listed(&self.stopped_tasks, cluster, service, limit)
    }

    async fn service_tasks(
        &self,
        cluster: &str,
        service: &str,
        limit: u32,
    ) -> Result<Vec<TaskDetail>> {
        self.listed(&self.service_tasks, cluster, service, limit)
    }
}

#[async_trait]
impl ServiceScaler for FakeEcs {
    async fn set_desired_count(&self, cluster: &str, service: &str, desired: u32) -> Result<()> {
        self.recorder.enter("ecs", "UpdateService")?;
        lock(&self.desired_updates).push((cluster.into(), service.into(), desired));
        if let Some(snapshot) = lock(&self.services)
            .get_mut(&(last_segment(cluster).into(), last_segment(service).into()))
        {
            snapshot.desired = desired as i32;
        }
        Ok(())
    }
}

#[async_trait]
impl TaskLister for FakeEcs {
    async fn tasks_started_by(&self, cluster: &str, started_by: &str) -> Result<Vec<String>> {
        self.recorder.enter("ecs", "ListTasks")?;
        Ok(lock(&self.tasks)
            .iter()
            .filter(|t| t.cluster == last_segment(cluster) && t.started_by == started_by)
            .map(|t| t.arn.clone())
            .collect())
    }
    async fn task_start_times(&self, cluster: &str, arns: &[String]) -> Result<Vec<RunningTask>> {
        self.recorder.enter("ecs", "DescribeTasks")?;
        Ok(lock(&self.tasks)
            .iter()
            .filter(|t| t.cluster == last_segment(cluster) && arns.contains(&t.arn))
            .map(|t| RunningTask {
                task_arn: t.arn.clone(),
                started_at: t.started_at,
            })
            .collect())
    }
}

#[async_trait]
impl TaskRunner for FakeEcs {
    async fn run_task(&self, request: &RunTaskRequest) -> Result<RunTaskResult> {
        self.recorder.enter("ecs", "RunTask")?;
        lock(&self.run_requests).push(request.clone());
        if let Some(answer) = lock(&self.answered_tokens).get(&request.client_token) {
            return Ok(answer.clone());
        }
        let script = lock(&self.run_script).pop_front();
        let answer = match script {
            Some(script) => script(request),
            None => start_then_fail(request.count, "unused")(request),
        };
        lock(&self.answered_tokens).insert(request.client_token.clone(), answer.clone());
        lock(&self.tasks).extend(answer.tasks.iter().map(|arn| FakeTask {
            arn: arn.clone(),
            cluster: last_segment(&request.cluster).into(),
            started_by: request.started_by.clone(),
            started_at: None,
        }));
        Ok(answer)
    }

    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<()> {
        self.recorder.enter("ecs", "StopTask")?;
        lock(&self.tasks).retain(|t| t.arn != task_arn);
        lock(&self.stopped).push((cluster.into(), task_arn.into(), reason.into()));
        Ok(())
    }
}

/// Log streams in memory.
#[derive(Debug)]
pub struct FakeLogs {
    recorder: Arc<Recorder>,
    streams: Mutex<HashMap<(String, String), Vec<String>>>,
}

impl FakeLogs {
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Self {
            recorder,
            streams: Mutex::default(),
        }
    }

    /// Sets the lines of a stream.
    pub fn set_stream(&self, group: &str, stream: &str, lines: &[&str]) {
        lock(&self.streams).insert(
            (group.into(), stream.into()),
            lines.iter().map(|l| (*l).to_owned()).collect(),
        );
    }
}

#[async_trait]
impl LogReader for FakeLogs {
    async fn tail(&self, group: &str, stream: &str, lines: u32) -> Result<Vec<String>> {
        self.recorder.enter("logs", "GetLogEvents")?;
        let all = lock(&self.streams)
            .get(&(group.into(), stream.into()))
            .cloned()
            .ok_or_else(|| AutopilotError::Aws {
                service: "logs",
                operation: "GetLogEvents",
                code: "ResourceNotFoundException".into(),
                message: format!("no stream {group}/{stream}"),
            })?;
        Ok(all[all.len().saturating_sub(lines as usize)..].to_vec())
    }
}

/// Alarms in memory.
#[derive(Debug)]
pub struct FakeAlarms {
    recorder: Arc<Recorder>,
    alarms: Mutex<Vec<AlarmTransition>>,
}

impl FakeAlarms {
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Self {
            recorder,
            alarms: Mutex::default(),
        }
    }

    /// Sets the alarms DescribeAlarms knows.
    pub fn set(&self, alarms: Vec<AlarmTransition>) {
        *lock(&self.alarms) = alarms;
    }

    /// Adds the alarm an alarm event (any delivery) speaks of, in the state it gives, as
    /// DescribeAlarms would return it.
    pub fn know(&self, event: &serde_json::Value) {
        let Ok(crate::events::alarm::ScalerEvent::Transition(alarm)) =
            crate::events::alarm::parse_scaler_event(event)
        else {
            panic!("not an alarm event: {event}");
        };
        lock(&self.alarms).push(AlarmTransition {
            delivery: crate::events::alarm::Delivery::DescribeAlarms,
            account: None,
            previous_state: None,
            ..*alarm
        });
    }
}

#[async_trait]
impl AlarmReader for FakeAlarms {
    async fn current_alarms(&self, names: &[String]) -> Result<Vec<AlarmTransition>> {
        self.recorder.enter("cloudwatch", "DescribeAlarms")?;
        Ok(lock(&self.alarms)
            .iter()
            .filter(|a| names.contains(&a.alarm_name))
            .cloned()
            .collect())
    }
}

/// Scalable targets in memory, by service name.
#[derive(Debug)]
pub struct FakeTargets {
    recorder: Arc<Recorder>,
    bounds: Mutex<HashMap<(String, String), TargetBounds>>,
}

impl FakeTargets {
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Self {
            recorder,
            bounds: Mutex::default(),
        }
    }

    /// Registers a scalable target for `cluster`/`service`.
    pub fn register(&self, cluster: &str, service: &str, bounds: TargetBounds) {
        lock(&self.bounds).insert(
            (last_segment(cluster).into(), last_segment(service).into()),
            bounds,
        );
    }
}

#[async_trait]
impl ScalableTargets for FakeTargets {
    async fn service_bounds(&self, cluster: &str, service: &str) -> Result<Option<TargetBounds>> {
        self.recorder
            .enter("application-autoscaling", "DescribeScalableTargets")?;
        Ok(lock(&self.bounds)
            .get(&(last_segment(cluster).into(), last_segment(service).into()))
            .copied())
    }
}

/// A value a fake read gives, or the error code it fails with.
type Read<T> = std::result::Result<T, String>;

/// SQS backlogs and CloudWatch metric values in memory (target policies), as a test sets
/// them: a queue or metric set to fail makes its read an error, as AWS would answer it.
#[derive(Debug)]
pub struct FakeSignals {
    recorder: Arc<Recorder>,
    /// Per queue URL: (visible, in flight), or the error code its read fails with.
    backlogs: Mutex<HashMap<String, Read<(u64, u64)>>>,
    /// Per query key: the latest value, or the error code the read fails with.
    metrics: Mutex<HashMap<String, Read<f64>>>,
}

impl FakeSignals {
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Self {
            recorder,
            backlogs: Mutex::default(),
            metrics: Mutex::default(),
        }
    }

    /// The queue at `url` holds `visible` messages and `in_flight` being processed.
    pub fn set_backlog(&self, url: &str, visible: u64, in_flight: u64) {
        lock(&self.backlogs).insert(url.into(), Ok((visible, in_flight)));
    }

    /// Reading the queue at `url` fails with `code`.
    pub fn fail_backlog(&self, url: &str, code: &str) {
        lock(&self.backlogs).insert(url.into(), Err(code.into()));
    }

    /// The metric query `key` reads `value`.
    pub fn set_metric(&self, key: &str, value: f64) {
        lock(&self.metrics).insert(key.into(), Ok(value));
    }

    /// Reading the metric query `key` fails with `code` (the whole call, as GetMetricData's).
    pub fn fail_metric(&self, key: &str, code: &str) {
        lock(&self.metrics).insert(key.into(), Err(code.into()));
    }
}

fn signal_error(service: &'static str, operation: &'static str, code: &str) -> AutopilotError {
    AutopilotError::Aws {
        service,
        operation,
        code: code.to_owned(),
        message: format!("{code} (fake)"),
    }
}

#[async_trait]
impl BacklogReader for FakeSignals {
    async fn backlog(&self, url: &str, in_flight: bool) -> Result<u64> {
        self.recorder.enter("sqs", "GetQueueAttributes")?;
        match lock(&self.backlogs).get(url) {
            Some(Ok((visible, flying))) => Ok(visible + if in_flight { *flying } else { 0 }),
            Some(Err(code)) => Err(signal_error("sqs", "GetQueueAttributes", code)),
            None => Err(signal_error(
                "sqs",
                "GetQueueAttributes",
                "AWS.SimpleQueueService.NonExistentQueue",
            )),
        }
    }
}

#[async_trait]
impl MetricReader for FakeSignals {
    async fn latest_values(
        &self,
        queries: &[(String, MetricSignal)],
        _: i64,
    ) -> Result<BTreeMap<String, f64>> {
        self.recorder.enter("cloudwatch", "GetMetricData")?;
        let metrics = lock(&self.metrics);
        let mut values = BTreeMap::new();
        for (key, _) in queries {
            match metrics.get(key) {
                Some(Ok(value)) => {
                    values.insert(key.clone(), *value);
                }
                Some(Err(code)) => return Err(signal_error("cloudwatch", "GetMetricData", code)),
                None => {}
            }
        }
        Ok(values)
    }
}

/// The account every world's fixtures come from, in `us-east-1`: the functions' own.
pub const HOME_ACCOUNT: &str = "111122223333";
/// The member accounts every world's stack acts for: the first is reached through the fakes a
/// test adds with [`FakeMembers::add`], the second never (no member role answers there).
pub const MEMBER_ACCOUNTS: [&str; 2] = ["222233334444", "333344445555"];
/// An account that is neither the stack's nor a member.
pub const FOREIGN_ACCOUNT: &str = "999988887777";

/// A service at rest: ACTIVE, one completed deployment, `desired` tasks asked for and `running`
/// running (the scaler's tests' `orders-worker`).
pub fn steady_service(desired: i32, running: i32) -> ServiceSnapshot {
    ServiceSnapshot {
        status: Some("ACTIVE".into()),
        desired,
        running,
        rollout_state: Some("COMPLETED".into()),
        deployments: 1,
        ..ServiceSnapshot::default()
    }
}

/// The fixtures' `orders-api:17` container logging to `/ecs/orders-api` (prefix `ecs`) in
/// `account`, whose stopped task's stream holds `lines`.
pub fn orders_api_logs(ecs: &FakeEcs, logs: &FakeLogs, account: &str, lines: &[&str]) {
    ecs.set_log_target(
        &format!("arn:aws:ecs:us-east-1:{account}:task-definition/orders-api:17"),
        "orders-api",
        AwsLogsTarget {
            group: "/ecs/orders-api".into(),
            stream_prefix: Some("ecs".into()),
            region: None,
        },
    );
    logs.set_stream(
        "/ecs/orders-api",
        "ecs/orders-api/a1b2c3d4e5f60718293a4b5c6d7e8f90",
        lines,
    );
}

/// A member account in memory: its own ECS and Logs, recording into its own recorder.
#[derive(Debug)]
pub struct FakeMember {
    pub calls: Arc<Recorder>,
    pub ecs: Arc<FakeEcs>,
    pub logs: Arc<FakeLogs>,
    pub targets: Arc<FakeTargets>,
    pub signals: Arc<FakeSignals>,
}

/// Member accounts reached through their role, as [`crate::aws::reach::MemberRoles`] does:
/// the home account is served by the world's own ports, an added member by its fakes, any other
/// account is unreachable (no member role there).
#[derive(Debug, Default)]
pub struct FakeMembers {
    members: Mutex<BTreeMap<String, Arc<FakeMember>>>,
    /// Every scope asked for, in order.
    pub asked: Mutex<Vec<Scope>>,
}

impl FakeMembers {
    /// Adds (or gives back) the member `account`.
    pub fn add(&self, account: &str) -> Arc<FakeMember> {
        lock(&self.members)
            .entry(account.to_owned())
            .or_insert_with(|| {
                let calls = Arc::new(Recorder::default());
                Arc::new(FakeMember {
                    ecs: Arc::new(FakeEcs::new(calls.clone())),
                    logs: Arc::new(FakeLogs::new(calls.clone())),
                    targets: Arc::new(FakeTargets::new(calls.clone())),
                    signals: Arc::new(FakeSignals::new(calls.clone())),
                    calls,
                })
            })
            .clone()
    }

    /// The scopes asked for so far.
    pub fn asked(&self) -> Vec<Scope> {
        lock(&self.asked).clone()
    }
}

#[async_trait]
impl Reach for FakeMembers {
    async fn ports_in(&self, scope: &Scope) -> Option<ScopedPorts> {
        lock(&self.asked).push(scope.clone());
        if scope.account == HOME_ACCOUNT {
            return None;
        }
        let Some(member) = lock(&self.members).get(&scope.account).cloned() else {
            return Some(ScopedPorts::unreachable(
                scope,
                "no member role is configured (fake)",
            ));
        };
        Some(ScopedPorts {
            services: member.ecs.clone(),
            inspector: member.ecs.clone(),
            scaling: member.ecs.clone(),
            tasks: member.ecs.clone(),
            task_list: member.ecs.clone(),
            logs: member.logs.clone(),
            targets: member.targets.clone(),
            tags: member.ecs.clone(),
            backlog: member.signals.clone(),
            metrics: member.signals.clone(),
        })
    }
}

/// SSM parameters in memory, as a refresh reads them (`GetParametersByPath`): each put is a new
/// version of its parameter.
#[derive(Debug)]
pub struct MemoryConfig {
    calls: Arc<Recorder>,
    parts: Mutex<BTreeMap<String, (String, i64)>>,
}

impl MemoryConfig {
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Self {
            calls: recorder,
            parts: Mutex::default(),
        }
    }

    /// Writes `text` as the next version of parameter `name`.
    pub fn put(&self, name: &str, text: &str) {
        let mut parts = lock(&self.parts);
        let version = parts.get(name).map_or(1, |(_, v)| v + 1);
        parts.insert(name.to_owned(), (text.to_owned(), version));
    }

    pub fn delete(&self, name: &str) {
        lock(&self.parts).remove(name);
    }
}

#[async_trait]
impl crate::ports::ConfigReader for MemoryConfig {
    async fn parts(&self) -> Result<Vec<crate::config::refresh::Versioned>> {
        self.calls.enter("ssm", "GetParametersByPath")?;
        Ok(lock(&self.parts)
            .iter()
            .map(
                |(name, (text, version))| crate::config::refresh::Versioned {
                    part: crate::config::parts::Part {
                        name: name.clone(),
                        text: text.clone(),
                    },
                    version: *version,
                },
            )
            .collect())
    }
}

/// Every fake, sharing one recorder: build a [`Setup`] from it, run a handler, inspect.
#[derive(Debug, Clone)]
pub struct World {
    pub calls: Arc<Recorder>,
    pub clock: Arc<FakeClock>,
    pub state: Arc<MemoryState>,
    pub notifier: Arc<MemoryNotifier>,
    pub ecs: Arc<FakeEcs>,
    pub logs: Arc<FakeLogs>,
    pub alarms: Arc<FakeAlarms>,
    pub targets: Arc<FakeTargets>,
    pub signals: Arc<FakeSignals>,
    pub members: Arc<FakeMembers>,
}

/// 2026-09-15T02:00:00Z, where every world's clock starts.
pub const START: i64 = 1_789_437_600;

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        let calls = Arc::new(Recorder::default());
        Self {
            clock: Arc::new(FakeClock::at(START)),
            state: Arc::new(MemoryState::new(calls.clone())),
            notifier: Arc::new(MemoryNotifier::new(calls.clone())),
            ecs: Arc::new(FakeEcs::new(calls.clone())),
            logs: Arc::new(FakeLogs::new(calls.clone())),
            alarms: Arc::new(FakeAlarms::new(calls.clone())),
            targets: Arc::new(FakeTargets::new(calls.clone())),
            signals: Arc::new(FakeSignals::new(calls.clone())),
            members: Arc::default(),
            calls,
        }
    }

    /// The reading ports, with or without the state store.
    pub fn ports(&self, with_state: bool) -> Ports {
        Ports {
            state: with_state.then(|| self.state.clone() as Arc<dyn StateReader>),
            services: self.ecs.clone(),
            inspector: self.ecs.clone(),
            task_list: self.ecs.clone(),
            logs: self.logs.clone(),
            alarms: self.alarms.clone(),
            targets: self.targets.clone(),
            tags: self.ecs.clone(),
            backlog: self.signals.clone(),
            metrics: self.signals.clone(),
            reach: ReadReach::new(self.members.clone()),
        }
    }

    /// The writers of a live run, with or without the state store.
    pub fn writers(&self, with_state: bool) -> Writers {
        Writers {
            state: with_state.then(|| self.state.clone() as Arc<dyn StateStore>),
            scaling: self.ecs.clone(),
            tasks: self.ecs.clone(),
            notifier: self.notifier.clone(),
            reach: self.members.clone(),
        }
    }

    /// A setup for `mode` on this world's fakes, with the state store.
    pub fn setup(&self, mode: Mode, config: StackConfig) -> Setup {
        self.setup_with(mode, config, true)
    }

    /// A setup for `mode`, with or without the state store.
    pub fn setup_with(&self, mode: Mode, config: StackConfig, with_state: bool) -> Setup {
        let backend = match mode {
            Mode::Live => Backend::Live {
                ports: self.ports(with_state),
                writers: self.writers(with_state),
            },
            Mode::DryRun => Backend::DryRun(self.ports(with_state)),
            Mode::Offline => Backend::Offline,
        };
        Setup::new(
            config,
            backend,
            self.clock.clone(),
            Some("us-east-1".into()),
            Accounts::new(
                Some(HOME_ACCOUNT.into()),
                MEMBER_ACCOUNTS.map(str::to_owned),
                None,
            ),
        )
        .expect("a test's notify section is valid")
    }

    /// A live setup configured from the parts in `ssm` as they stand (which must be valid),
    /// refreshed from them as a function under Lambda is.
    pub async fn refreshed_setup(&self, ssm: Arc<MemoryConfig>) -> Setup {
        use crate::config::parts::parse_parts;
        use crate::config::refresh::Versions;
        use crate::ports::ConfigReader;
        let fetched = ssm.parts().await.expect("the parts are readable");
        let parts: Vec<_> = fetched.iter().map(|v| v.part.clone()).collect();
        let (config, _) = parse_parts(&parts).expect("the first parts are valid");
        let world = self.clone();
        let mut setup = self.setup(Mode::Live, config);
        setup.reload = Some(crate::app::live::Reload {
            reader: ssm,
            versions: Versions::of(&fetched),
            rebuild: Arc::new(move |config| Ok(world.setup(Mode::Live, config))),
        });
        setup
    }
}

/// What is wrong with `document` as a CloudWatch Embedded Metric Format document, by the
/// specification (Amazon CloudWatch User Guide, "Specification: Embedded metric format"): an
/// object whose `_aws` holds a millisecond `Timestamp` and `CloudWatchMetrics` directives; each
/// directive a `Namespace`, `Dimensions` (sets of at most 30 names, each naming a string member of
/// the root) and `Metrics` (at most 100, each naming a number or an array of at most 100 numbers at
/// the root, with a known `Unit` and a `StorageResolution` of 1 or 60), and no other members.
pub fn emf_problems(document: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    const UNITS: [&str; 27] = [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let mut problems = Vec::new();
    let Some(root) = document.as_object() else {
        return vec!["the document is not an object".into()];
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return vec!["no `_aws` object".into()];
    };
    let timestamp = aws.get("Timestamp").and_then(Value::as_i64);
    if timestamp.is_none_or(|t| t <= 0) {
        problems.push("`_aws.Timestamp` is not a positive integer of milliseconds".into());
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        problems.push("`_aws.CloudWatchMetrics` is not an array".into());
        return problems;
    };
    for (i, directive) in directives.iter().enumerate() {
        let at = format!("CloudWatchMetrics[{i}]");
        let Some(directive) = directive.as_object() else {
            problems.push(format!("{at} is not an object"));
            continue;
        };
        for key in directive.keys() {
            if !["Namespace", "Dimensions", "Metrics"].contains(&key.as_str()) {
                problems.push(format!("{at} has an unknown member `{key}`"));
            }
        }
        match directive.get("Namespace").and_then(Value::as_str) {
            Some(namespace) if (1..=255).contains(&namespace.len()) => {}
            _ => problems.push(format!(
                "{at}.Namespace is not a string of 1-255 characters"
            )),
        }
        match directive.get("Dimensions").and_then(Value::as_array) {
            None => problems.push(format!("{at}.Dimensions is not an array")),
            Some(sets) => {
                for (j, set) in sets.iter().enumerate() {
                    let Some(names) = set.as_array() else {
                        problems.push(format!("{at}.Dimensions[{j}] is not an array"));
                        continue;
                    };
                    if names.len() > 30 {
                        problems.push(format!("{at}.Dimensions[{j}] has more than 30 names"));
                    }
                    for name in names {
                        let value = name.as_str().and_then(|n| root.get(n));
                        if !value
                            .and_then(Value::as_str)
                            .is_some_and(|v| (1..=1024).contains(&v.len()))
                        {
                            problems.push(format!(
                                "{at}.Dimensions[{j}]: {name} names no string member of 1-1024 characters"
                            ));
                        }
                    }
                }
            }
        }
        match directive.get("Metrics").and_then(Value::as_array) {
            None => problems.push(format!("{at}.Metrics is not an array")),
            Some(metrics) => {
                if metrics.len() > 100 {
                    problems.push(format!("{at}.Metrics has more than 100 definitions"));
                }
                for (j, metric) in metrics.iter().enumerate() {
                    let Some(metric) = metric.as_object() else {
                        problems.push(format!("{at}.Metrics[{j}] is not an object"));
                        continue;
                    };
                    for key in metric.keys() {
                        if !["Name", "Unit", "StorageResolution"].contains(&key.as_str()) {
                            problems
                                .push(format!("{at}.Metrics[{j}] has an unknown member `{key}`"));
                        }
                    }
                    let name = metric.get("Name").and_then(Value::as_str).unwrap_or("");
                    let numeric = match root.get(name) {
                        Some(Value::Number(_)) => true,
                        Some(Value::Array(values)) => {
                            values.len() <= 100 && values.iter().all(Value::is_number)
                        }
                        _ => false,
                    };
                    if name.is_empty() || !numeric {
                        problems.push(format!(
                            "{at}.Metrics[{j}]: `{name}` names no number (or array of at most 100) at the root"
                        ));
                    }
                    if let Some(unit) = metric.get("Unit") {
                        if !unit.as_str().is_some_and(|u| UNITS.contains(&u)) {
                            problems.push(format!("{at}.Metrics[{j}]: unknown Unit {unit}"));
                        }
                    }
                    if let Some(resolution) = metric.get("StorageResolution") {
                        if !matches!(resolution.as_i64(), Some(1 | 60)) {
                            problems.push(format!(
                                "{at}.Metrics[{j}]: StorageResolution {resolution} is not 1 or 60"
                            ));
                        }
                    }
                }
            }
        }
    }
    problems
}
