//! DynamoDB adapter implementing the state ports (the readers and writers that make up
//! [`StateStore`](crate::ports::StateStore)): conditional claims for duplicate suppression;
//! storm windows counted by one atomic increment that records each stop's number under its
//! claim; `alarm-scaler`'s per-service scaling memory and incidents with a revision for
//! conditional writes; `batch-runner`'s run records; watch records and muted ledgers. Table:
//! hash key `pk` (S), TTL attribute `expires_at` (N); every attribute is named in [`attr`].
//! What it answers is held to `testkit::contract` on the local cloud.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, ReturnValue, WriteRequest};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::aws_error;
use crate::batch::record::RunRecord;
use crate::error::{AutopilotError, Result};
use crate::incident::Incident;
use crate::keys::counted_key;
use crate::ports::{
    ClaimReader, ClaimWriter, Counting, IncidentReader, IncidentWriter, MuteReader, MuteWriter,
    RecordReader, RecordWrite, RecordWriter, RunWriter, ScalingReader, ScalingWriter, StormReader,
    StormWriter, WatchReader, WatchWriter,
};
use crate::scaling::ScalingMemory;
use crate::state::{
    claimable, refused_claim, Claim, ClaimRecord, ClaimStatus, MutedLedger, MutedNotice, Stop,
    StormWindow,
};

type Item = HashMap<String, AttributeValue>;

/// The table's attribute names, each spelled once (the template names `PK` and `EXPIRES_AT`).
pub mod attr {
    pub const PK: &str = "pk";
    pub const STATUS: &str = "status";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const MESSAGE_ID: &str = "message_id";
    pub const DECISION: &str = "decision";
    pub const DELIVERED: &str = "delivered";
    pub const STOPS: &str = "stops";
    pub const STARTED_AT: &str = "started_at";
    pub const LAST_AT: &str = "last_at";
    pub const TITLES: &str = "titles";
    pub const LAST_REASON: &str = "last_reason";
    pub const REVISION: &str = "revision";
    pub const LAST_CHANGE: &str = "last_change";
    pub const LAST_SCALE_OUT_AT: &str = "last_scale_out_at";
    pub const LAST_SCALE_IN_AT: &str = "last_scale_in_at";
    /// The target policies' memory of a service, as JSON.
    pub const TARGETS: &str = "targets";
    pub const ROUNDS: &str = "rounds";
    pub const TASKS: &str = "tasks";
    pub const INCIDENT: &str = "incident";
    pub const MUTED_UNTIL: &str = "muted_until";
    pub const ABOUT: &str = "about";
    pub const CLAIMS: &str = "claims";
    pub const SHORT_SINCE: &str = "short_since";
    /// A run record, as JSON.
    pub const RECORD: &str = "record";
    /// A run record's job and scheduled time: the keys of [`RUNS_INDEX`].
    pub const RUN_JOB: &str = "run_job";
    pub const SCHEDULED_AT: &str = "scheduled_at";
    /// A run record the tick must look at: its job and when (the keys of [`DUE_INDEX`]).
    pub const DUE_JOB: &str = "due_job";
    pub const DUE_AT: &str = "due_at";
    /// A task pointer's record key.
    pub const RECORD_KEY: &str = "record_key";
    /// Since when a job has been watched for missed runs.
    pub const WATCH_SINCE: &str = "watch_since";
    /// The index of run records by job and scheduled time (history, the latest run).
    pub const RUNS_INDEX: &str = "runs";
    /// The sparse index of run records by job and the time the tick must look at them.
    pub const DUE_INDEX: &str = "due";
    /// The window's map from a [`counted_key`](crate::keys::counted_key) to the number its
    /// stop was given.
    pub const COUNTED: &str = "counted";
    /// Prefix of a muted ledger's per-category counts (`c:oom`).
    pub const MUTED_COUNT: &str = "c:";
}
use attr::*;

/// The state table; its DynamoDB client is built on the first call.
#[derive(Clone, Debug)]
pub struct StateTable {
    clients: super::AwsClients,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn claim_record(item: &Item) -> ClaimRecord {
    ClaimRecord {
        status: get_s(item, STATUS).as_deref().and_then(ClaimStatus::parse),
        lease_until: get_n(item, LEASE_UNTIL).unwrap_or_default(),
        message_id: get_s(item, MESSAGE_ID),
        decision: get_s(item, DECISION),
    }
}

fn storm_window(item: &Item) -> StormWindow {
    let mut titles: Vec<String> = item
        .get(TITLES)
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    titles.sort();
    StormWindow {
        count: get_n(item, STOPS).unwrap_or_default(),
        started_at: get_n(item, STARTED_AT).unwrap_or_default(),
        last_at: get_n(item, LAST_AT).unwrap_or_default(),
        titles,
        last_reason: get_s(item, LAST_REASON).filter(|r| !r.is_empty()),
        previous_count: None,
    }
}

impl StateTable {
    pub fn new(clients: super::AwsClients, table: impl Into<String>) -> Self {
        Self {
            clients,
            table: table.into(),
        }
    }

    fn client(&self) -> &aws_sdk_dynamodb::Client {
        self.clients.dynamodb()
    }

    /// One `DeleteItem` of the item at `key`.
    async fn delete(&self, key: &str) -> Result<()> {
        self.client()
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(key))
            .send()
            .await
            .map_err(|e| aws_error("dynamodb", "DeleteItem", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Item>> {
        let output = self
            .client()
            .get_item()
            .table_name(&self.table)
            .key(PK, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_error("dynamodb", "GetItem", e))?;
        Ok(output.item)
    }

    /// Updates fields of an existing claim record. The record must exist: an update on a
    /// missing key would otherwise create a claim without status or `expires_at`, one that
    /// never expires (e.g. after TTL removed the original).
    async fn set_claim_fields(
        &self,
        key: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<()> {
        let mut request = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(key))
            .update_expression(expression)
            .condition_expression(format!("attribute_exists({PK})"));
        if expression.contains("#status") {
            request = request.expression_attribute_names("#status", STATUS);
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        request
            .send()
            .await
            .map_err(|e| aws_error("dynamodb", "UpdateItem", e))?;
        Ok(())
    }
}

#[async_trait]
impl ClaimReader for StateTable {
    /// What a claim would find, without writing (for `--dry-run`).
    async fn peek_claim(&self, key: &str, now: i64) -> Result<Claim> {
        Ok(match self.get(key).await? {
            None => Claim::Fresh,
            Some(item) => {
                let record = claim_record(&item);
                if claimable(&record, now) {
                    Claim::Resumed {
                        delivered: delivered_to(&item),
                    }
                } else {
                    refused_claim(&record)
                }
            }
        })
    }
}

#[async_trait]
impl ClaimWriter for StateTable {
    /// Claims an event for processing until `lease_until` (see [`crate::state`] for the semantics).
    async fn claim(&self, key: &str, now: i64, lease_until: i64, ttl_s: u64) -> Result<Claim> {
        let result = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(key))
            .update_expression(format!(
                "SET #status = :in_progress, {LEASE_UNTIL} = :lease, {EXPIRES_AT} = :expires"
            ))
            .condition_expression(format!(
                "attribute_not_exists({PK}) OR #status = :retryable \
                 OR (#status = :in_progress AND {LEASE_UNTIL} < :now)"
            ))
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":in_progress", s(ClaimStatus::InProgress.as_str()))
            .expression_attribute_values(":retryable", s(ClaimStatus::Retryable.as_str()))
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":expires", n(now.saturating_add(ttl_s as i64)))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match conditional("UpdateItem", result)? {
            Some(output) => Ok(match output.attributes {
                Some(old) if !old.is_empty() => Claim::Resumed {
                    delivered: delivered_to(&old),
                },
                _ => Claim::Fresh,
            }),
            None => {
                let record = self
                    .get(key)
                    .await?
                    .map(|item| claim_record(&item))
                    .unwrap_or_default();
                Ok(refused_claim(&record))
            }
        }
    }

    /// Marks a claimed event handled.
    async fn complete(&self, key: &str, decision: &str, message_id: Option<&str>) -> Result<()> {
        let mut values = vec![
            (":complete", s(ClaimStatus::Complete.as_str())),
            (":decision", s(decision)),
        ];
        let expression = match message_id {
            Some(id) => {
                values.push((":message_id", s(id)));
                format!(
                    "SET #status = :complete, {DECISION} = :decision, {MESSAGE_ID} = :message_id"
                )
            }
            None => format!("SET #status = :complete, {DECISION} = :decision"),
        };
        self.set_claim_fields(key, &expression, values).await
    }

    /// Gives a claim back after a failure so that the retry can take it at once.
    async fn release(&self, key: &str) -> Result<()> {
        self.set_claim_fields(
            key,
            "SET #status = :retryable",
            vec![(":retryable", s(ClaimStatus::Retryable.as_str()))],
        )
        .await
    }

    /// `ADD delivered :destination` (a string set).
    async fn record_delivery(&self, key: &str, destination: &str) -> Result<()> {
        self.set_claim_fields(
            key,
            &format!("ADD {DELIVERED} :destination"),
            vec![(
                ":destination",
                AttributeValue::Ss(vec![destination.to_owned()]),
            )],
        )
        .await
    }
}

/// The destinations a claim's earlier attempts delivered to.
fn delivered_to(item: &Item) -> Vec<String> {
    let mut delivered = item
        .get(DELIVERED)
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    delivered.sort();
    delivered
}

/// The number the window item records for the claim whose [`counted_key`] is `counted`.
fn counted_number(item: &Item, counted: &str) -> Option<u64> {
    item.get(COUNTED)
        .and_then(|map| map.as_m().ok())
        .and_then(|numbers| numbers.get(counted))
        .and_then(|number| number.as_n().ok())
        .and_then(|number| number.parse().ok())
}

#[async_trait]
impl StormReader for StateTable {
    async fn read_window(&self, storm_key: &str) -> Result<Option<StormWindow>> {
        Ok(self.get(storm_key).await?.map(|item| storm_window(&item)))
    }
    async fn peek_count(
        &self,
        claim_key: &str,
        storm_key: &str,
    ) -> Result<(Option<StormWindow>, Option<u64>)> {
        let item = self.get(storm_key).await?;
        let counted = counted_key(claim_key);
        Ok((
            item.as_ref().map(storm_window),
            item.as_ref()
                .and_then(|item| counted_number(item, &counted)),
        ))
    }
}

#[async_trait]
impl StormWriter for StateTable {
    /// One `UpdateItem`: `stops + 1` into the open window, the same number under the claim's
    /// [`counted_key`], conditional on the window being open and the claim not counted. When
    /// the condition fails, one `GetItem` says why: counted before (its number), or no open
    /// window.
    async fn count_into_open(&self, stop: &Stop<'_>) -> Result<Counting> {
        let counted = counted_key(stop.claim_key);
        let result = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(stop.storm_key))
            .update_expression(format!(
                "SET {STOPS} = {STOPS} + :one, #counted.#claim = {STOPS} + :one, \
                     {LAST_AT} = :now, {LAST_REASON} = :reason, {EXPIRES_AT} = :expires \
                     ADD {TITLES} :title"
            ))
            .condition_expression(format!(
                "{STARTED_AT} > :open_since AND attribute_not_exists(#counted.#claim)"
            ))
            .expression_attribute_names("#counted", COUNTED)
            .expression_attribute_names("#claim", &counted)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(stop.now))
            .expression_attribute_values(":reason", s(stop.reason))
            .expression_attribute_values(":expires", n(stop.expires_at()))
            .expression_attribute_values(":title", AttributeValue::Ss(vec![stop.title.to_owned()]))
            .expression_attribute_values(":open_since", n(stop.open_since()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        if let Some(output) = conditional("UpdateItem", result)? {
            let item = output.attributes.unwrap_or_default();
            return Ok(Counting::Counted(storm_window(&item)));
        }
        let Some(item) = self.get(stop.storm_key).await? else {
            return Ok(Counting::NotOpen(None));
        };
        let stored = storm_window(&item);
        Ok(match counted_number(&item, &counted) {
            Some(number) => Counting::Counted(StormWindow {
                count: number,
                ..stored
            }),
            None => Counting::NotOpen(Some(stored)),
        })
    }

    /// One `PutItem` of the new window with the stop's number (1) recorded, conditional on
    /// replacing exactly the window read (its `started_at`), or on there being none.
    async fn open_window(
        &self,
        stop: &Stop<'_>,
        replaced: Option<&StormWindow>,
        first: &StormWindow,
    ) -> Result<bool> {
        let numbers = HashMap::from([(counted_key(stop.claim_key), n(first.count))]);
        let put = self
            .client()
            .put_item()
            .table_name(&self.table)
            .item(PK, s(stop.storm_key))
            .item(STOPS, n(first.count))
            .item(STARTED_AT, n(first.started_at))
            .item(LAST_AT, n(first.last_at))
            .item(TITLES, AttributeValue::Ss(first.titles.clone()))
            .item(
                LAST_REASON,
                s(first.last_reason.clone().unwrap_or_default()),
            )
            .item(COUNTED, AttributeValue::M(numbers))
            .item(EXPIRES_AT, n(stop.expires_at()));
        let put = match replaced {
            Some(closed) => put
                .condition_expression(format!("{STARTED_AT} = :started"))
                .expression_attribute_values(":started", n(closed.started_at)),
            None => put.condition_expression(format!("attribute_not_exists({PK})")),
        };
        Ok(conditional("PutItem", put.send().await)?.is_some())
    }

    /// One `UpdateItem` removing the claim's entry, if the window still has it.
    async fn forget_count(&self, claim_key: &str, storm_key: &str) -> Result<()> {
        let result = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(storm_key))
            .update_expression("REMOVE #counted.#claim")
            .condition_expression("attribute_exists(#counted.#claim)")
            .expression_attribute_names("#counted", COUNTED)
            .expression_attribute_names("#claim", counted_key(claim_key))
            .send()
            .await;
        nothing_to_change_if_refused(result)
    }

    /// One `DeleteItem` per window.
    async fn close_windows(&self, storm_keys: &[String]) -> Result<()> {
        for key in storm_keys {
            self.delete(key).await?;
        }
        Ok(())
    }
}

/// The condition of a revisioned write: the item is still at `expected` (0: there is none).
fn revision_is(expected: u64) -> String {
    if expected == 0 {
        format!("attribute_not_exists({PK}) OR {REVISION} = :expected")
    } else {
        format!("{REVISION} = :expected")
    }
}

/// An `UpdateItem` whose condition not holding means there was nothing to change.
fn nothing_to_change_if_refused<T>(
    result: std::result::Result<T, SdkError<UpdateItemError, HttpResponse>>,
) -> Result<()> {
    conditional("UpdateItem", result).map(drop)
}

/// A DynamoDB error that can say its request's condition refused it.
trait Refusal {
    fn condition_refused(&self) -> bool;
}

impl Refusal for UpdateItemError {
    fn condition_refused(&self) -> bool {
        matches!(self, Self::ConditionalCheckFailedException(_))
    }
}

impl Refusal for PutItemError {
    fn condition_refused(&self) -> bool {
        matches!(self, Self::ConditionalCheckFailedException(_))
    }
}

/// A conditional write's outcome: its output when written, `None` when its condition refused
/// it, any other failure as the `operation`'s AWS error.
fn conditional<T, E>(
    operation: &'static str,
    result: std::result::Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>>
where
    E: Refusal + ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(error) if error.as_service_error().is_some_and(E::condition_refused) => Ok(None),
        Err(error) => Err(aws_error("dynamodb", operation, error)),
    }
}

#[async_trait]
impl ScalingReader for StateTable {
    /// A service's scaling memory and its revision (0 when nothing was recorded yet).
    async fn scaling_memory(&self, key: &str) -> Result<(ScalingMemory, u64)> {
        Ok(match self.get(key).await? {
            None => (ScalingMemory::default(), 0),
            Some(item) => {
                let targets = match get_s(&item, TARGETS) {
                    None => Default::default(),
                    Some(text) => serde_json::from_str(&text).map_err(|e| AutopilotError::Aws {
                        service: "dynamodb",
                        operation: "GetItem",
                        code: "UnreadableScalingMemory".into(),
                        message: format!("{key}: {e}"),
                    })?,
                };
                (
                    ScalingMemory {
                        last_scale_out_at: get_n(&item, LAST_SCALE_OUT_AT),
                        last_scale_in_at: get_n(&item, LAST_SCALE_IN_AT),
                        targets,
                    },
                    get_n(&item, REVISION).unwrap_or_default(),
                )
            }
        })
    }
}

#[async_trait]
impl ScalingWriter for StateTable {
    /// Records a scaling change if the memory is still at `expected_revision`; false when
    /// another invocation changed it first (the caller re-reads and decides again).
    async fn record_scaling(
        &self,
        key: &str,
        expected_revision: u64,
        memory: &ScalingMemory,
        change: &str,
    ) -> Result<bool> {
        let mut set = vec![
            format!("{REVISION} = :next"),
            format!("{LAST_CHANGE} = :change"),
        ];
        let mut remove = Vec::new();
        let mut request = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(key))
            .condition_expression(revision_is(expected_revision))
            .expression_attribute_values(":expected", n(expected_revision))
            .expression_attribute_values(":next", n(expected_revision + 1))
            .expression_attribute_values(":change", s(change));
        for (name, placeholder, value) in [
            (LAST_SCALE_OUT_AT, ":out", memory.last_scale_out_at),
            (LAST_SCALE_IN_AT, ":in", memory.last_scale_in_at),
        ] {
            match value {
                Some(at) => {
                    set.push(format!("{name} = {placeholder}"));
                    request = request.expression_attribute_values(placeholder, n(at));
                }
                None => remove.push(name),
            }
        }
        if memory.targets.is_empty() {
            remove.push(TARGETS);
        } else {
            let text = serde_json::to_string(&memory.targets).map_err(|e| AutopilotError::Aws {
                service: "dynamodb",
                operation: "UpdateItem",
                code: "UnwritableScalingMemory".into(),
                message: format!("{key}: {e}"),
            })?;
            set.push(format!("{TARGETS} = :targets"));
            request = request.expression_attribute_values(":targets", s(text));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let result = request.update_expression(expression).send().await;
        Ok(conditional("UpdateItem", result)?.is_some())
    }
}

#[async_trait]
impl RunWriter for StateTable {
    /// Resuming a batch run after a failed invocation: counts the round (it goes into the
    /// client tokens of calls not yet made) and returns it with the tasks already started.
    async fn resume_run(&self, key: &str) -> Result<(u32, Vec<String>)> {
        let output = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(key))
            .update_expression(format!("ADD {ROUNDS} :one"))
            .condition_expression(format!("attribute_exists({PK})"))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| aws_error("dynamodb", "UpdateItem", e))?;
        let item = output.attributes.unwrap_or_default();
        let mut tasks = item
            .get(TASKS)
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        tasks.sort();
        Ok((get_n(&item, ROUNDS).unwrap_or(1), tasks))
    }

    /// Adds started task ARNs to a claimed batch run, so a resumed run starts only the rest.
    async fn add_run_tasks(&self, key: &str, tasks: &[String]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        self.set_claim_fields(
            key,
            &format!("ADD {TASKS} :tasks"),
            vec![(":tasks", AttributeValue::Ss(tasks.to_vec()))],
        )
        .await
    }
}

fn run_record(operation: &'static str, item: &Item) -> Result<(RunRecord, u64)> {
    let text = get_s(item, RECORD).unwrap_or_default();
    let record = serde_json::from_str(&text).map_err(|e| AutopilotError::Aws {
        service: "dynamodb",
        operation,
        code: "UnreadableRunRecord".into(),
        message: format!("{}: {e}", get_s(item, PK).unwrap_or_default()),
    })?;
    Ok((record, get_n(item, REVISION).unwrap_or_default()))
}

impl StateTable {
    /// Every item a query of `index` for `job` finds (all pages, or until `limit` items).
    async fn query_records(
        &self,
        index: &str,
        condition: String,
        values: Vec<(&str, AttributeValue)>,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<(RunRecord, u64)>> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client()
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(&condition)
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start.take());
            for (name, value) in &values {
                query = query.expression_attribute_values(*name, value.clone());
            }
            if let Some(limit) = limit {
                query = query.limit((limit - found.len()).clamp(1, 1000) as i32);
            }
            let output = query
                .send()
                .await
                .map_err(|e| aws_error("dynamodb", "Query", e))?;
            for item in output.items.unwrap_or_default() {
                found.push(run_record("Query", &item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|limit| found.len() >= limit) {
                return Ok(found);
            }
        }
    }
}

#[async_trait]
impl RecordReader for StateTable {
    async fn read_record(&self, key: &str) -> Result<Option<(RunRecord, u64)>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(item) => run_record("GetItem", &item).map(Some),
        }
    }

    async fn record_of_task(&self, task_arn: &str) -> Result<Option<String>> {
        let key = crate::keys::task_pointer_key(task_arn);
        Ok(self
            .get(&key)
            .await?
            .and_then(|item| get_s(&item, RECORD_KEY)))
    }

    /// One Query of the `runs` index per page, newest first.
    async fn runs_of(&self, job: &str, since: i64, limit: usize) -> Result<Vec<RunRecord>> {
        let condition = format!("{RUN_JOB} = :job AND {SCHEDULED_AT} >= :since");
        let values = vec![(":job", s(job)), (":since", n(since))];
        let found = self
            .query_records(RUNS_INDEX, condition, values, true, Some(limit))
            .await?;
        Ok(found.into_iter().map(|(record, _)| record).collect())
    }

    /// One Query of the sparse `due` index per page.
    async fn runs_due(&self, job: &str, now: i64) -> Result<Vec<(RunRecord, u64)>> {
        let condition = format!("{DUE_JOB} = :job AND {DUE_AT} <= :now");
        let values = vec![(":job", s(job)), (":now", n(now))];
        self.query_records(DUE_INDEX, condition, values, false, None)
            .await
    }
}

#[async_trait]
impl RecordWriter for StateTable {
    /// One conditional PutItem; the index keys are written beside the JSON (`due_*` only while
    /// something is pending, so the `due` index holds only those runs).
    async fn write_record(
        &self,
        key: &str,
        expected_revision: u64,
        record: &RunRecord,
        write: RecordWrite,
    ) -> Result<bool> {
        let text = serde_json::to_string(record).map_err(|e| AutopilotError::Aws {
            service: "dynamodb",
            operation: "PutItem",
            code: "UnwritableRunRecord".into(),
            message: format!("{key}: {e}"),
        })?;
        let mut put = self
            .client()
            .put_item()
            .table_name(&self.table)
            .item(PK, s(key))
            .item(RECORD, s(text))
            .item(RUN_JOB, s(&record.job))
            .item(SCHEDULED_AT, n(record.scheduled_at))
            .item(REVISION, n(expected_revision + 1))
            .item(EXPIRES_AT, n(write.expires_at))
            .condition_expression(revision_is(expected_revision))
            .expression_attribute_values(":expected", n(expected_revision));
        if let Some(due) = write.due_at {
            put = put.item(DUE_JOB, s(&record.job)).item(DUE_AT, n(due));
        }
        Ok(conditional("PutItem", put.send().await)?.is_some())
    }

    /// One BatchWriteItem per 25 tasks; unprocessed items are sent again.
    async fn point_tasks(&self, key: &str, tasks: &[String], expires_at: i64) -> Result<()> {
        for chunk in tasks.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|task| {
                    let put = PutRequest::builder()
                        .item(PK, s(crate::keys::task_pointer_key(task)))
                        .item(RECORD_KEY, s(key))
                        .item(EXPIRES_AT, n(expires_at))
                        .build()
                        .map_err(|e| AutopilotError::Aws {
                            service: "dynamodb",
                            operation: "BatchWriteItem",
                            code: "InvalidRequest".into(),
                            message: e.to_string(),
                        })?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<_>>()?;
            for _ in 0..5 {
                let output = self
                    .client()
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| aws_error("dynamodb", "BatchWriteItem", e))?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut items| items.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
            }
            if !requests.is_empty() {
                return Err(AutopilotError::Aws {
                    service: "dynamodb",
                    operation: "BatchWriteItem",
                    code: "Unprocessed".into(),
                    message: format!("{} task pointers left unwritten", requests.len()),
                });
            }
        }
        Ok(())
    }

    /// One UpdateItem: `watch_since` is set only if absent; the expiry moves on each call.
    async fn watch_since(&self, key: &str, now: i64, expires_at: i64) -> Result<i64> {
        let output = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(key))
            .update_expression(format!(
                "SET {WATCH_SINCE} = if_not_exists({WATCH_SINCE}, :now), {EXPIRES_AT} = :expires"
            ))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":expires", n(expires_at))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| aws_error("dynamodb", "UpdateItem", e))?;
        Ok(output
            .attributes
            .and_then(|item| get_n(&item, WATCH_SINCE))
            .unwrap_or(now))
    }
}

/// How long an incident record outlives its latest signal.
const INCIDENT_TTL_S: i64 = 30 * 24 * 3600;

#[async_trait]
impl IncidentReader for StateTable {
    async fn read_incident(&self, key: &str) -> Result<Option<(Incident, u64)>> {
        let Some(item) = self.get(key).await? else {
            return Ok(None);
        };
        let text = get_s(&item, INCIDENT).unwrap_or_default();
        let incident = serde_json::from_str(&text).map_err(|e| AutopilotError::Aws {
            service: "dynamodb",
            operation: "GetItem",
            code: "UnreadableIncident".into(),
            message: format!("{key}: {e}"),
        })?;
        Ok(Some((incident, get_n(&item, REVISION).unwrap_or_default())))
    }
}

#[async_trait]
impl IncidentWriter for StateTable {
    async fn write_incident(
        &self,
        key: &str,
        expected_revision: u64,
        incident: &Incident,
    ) -> Result<bool> {
        let text = serde_json::to_string(incident).map_err(|e| AutopilotError::Aws {
            service: "dynamodb",
            operation: "PutItem",
            code: "UnwritableIncident".into(),
            message: format!("{key}: {e}"),
        })?;
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .item(PK, s(key))
            .item(INCIDENT, s(text))
            .item(REVISION, n(expected_revision + 1))
            .item(
                EXPIRES_AT,
                n(incident.last_signal_at.saturating_add(INCIDENT_TTL_S)),
            )
            .condition_expression(revision_is(expected_revision))
            .expression_attribute_values(":expected", n(expected_revision))
            .send()
            .await;
        Ok(conditional("PutItem", result)?.is_some())
    }
}

#[async_trait]
impl MuteReader for StateTable {
    async fn muted_ledger(&self, key: &str) -> Result<Option<MutedLedger>> {
        Ok(self.get(key).await?.map(|item| {
            let counts = item
                .iter()
                .filter_map(|(name, value)| {
                    let category = name.strip_prefix(MUTED_COUNT)?;
                    Some((category.to_owned(), value.as_n().ok()?.parse().ok()?))
                })
                .collect();
            let mut about = item
                .get(ABOUT)
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            about.sort();
            MutedLedger { counts, about }
        }))
    }
}

#[async_trait]
impl MuteWriter for StateTable {
    /// One `UpdateItem`: `ADD c:<category> 1` (with `about` and the claim in string sets), the
    /// window's end and expiry; conditional on the claim not being in the ledger yet, so that a
    /// retried delivery finds it counted.
    async fn count_muted(&self, muted: &MutedNotice<'_>) -> Result<()> {
        let mut adds = vec!["#count :one".to_owned()];
        let expires = muted.until.saturating_add(muted.ttl_s as i64);
        let mut request = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key(PK, s(muted.ledger_key))
            .expression_attribute_names("#count", format!("{MUTED_COUNT}{}", muted.category))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":until", n(muted.until))
            .expression_attribute_values(":expires", n(expires));
        if let Some(about) = muted.about {
            adds.push(format!("{ABOUT} :about"));
            request = request
                .expression_attribute_values(":about", AttributeValue::Ss(vec![about.to_owned()]));
        }
        if let Some(claim) = muted.claim_key {
            adds.push(format!("{CLAIMS} :claims"));
            request = request
                .condition_expression(format!("NOT contains({CLAIMS}, :claim)"))
                .expression_attribute_values(":claims", AttributeValue::Ss(vec![claim.to_owned()]))
                .expression_attribute_values(":claim", s(claim));
        }
        let expression = format!(
            "ADD {} SET {MUTED_UNTIL} = :until, {EXPIRES_AT} = :expires",
            adds.join(", ")
        );
        nothing_to_change_if_refused(request.update_expression(expression).send().await)
    }

    async fn forget_muted(&self, key: &str) -> Result<()> {
        self.delete(key).await
    }
}

#[async_trait]
impl WatchReader for StateTable {
    async fn short_since(&self, key: &str) -> Result<Option<i64>> {
        Ok(self
            .get(key)
            .await?
            .and_then(|item| get_n(&item, SHORT_SINCE)))
    }
}

#[async_trait]
impl WatchWriter for StateTable {
    /// One PutItem: the record with `short_since`, or without it (kept a day, then expired).
    async fn set_short_since(&self, key: &str, since: Option<i64>, now: i64) -> Result<()> {
        let mut put = self
            .client()
            .put_item()
            .table_name(&self.table)
            .item(PK, s(key))
            .item(EXPIRES_AT, n(now.saturating_add(INCIDENT_TTL_S)));
        if let Some(since) = since {
            put = put.item(SHORT_SINCE, n(since));
        }
        put.send()
            .await
            .map_err(|e| aws_error("dynamodb", "PutItem", e))?;
        Ok(())
    }
}
