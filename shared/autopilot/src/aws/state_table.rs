//! DynamoDB adapter implementing the state ports ([`ClaimStore`], [`StormStore`],
//! [`ScalingStore`], [`RunStore`], [`IncidentStore`], [`WatchStore`]): conditional claims for
//! duplicate suppression; storm windows counted by one atomic increment that records each
//! stop's number under its claim;
//! `alarm-scaler`'s per-service scaling memory with a revision for conditional writes;
//! `batch-runner`'s run records. Table: hash key `pk` (S), TTL attribute `expires_at` (N).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::aws_error;
use crate::error::Result;
use crate::incident::Incident;
use crate::ports::{
    ClaimReader, ClaimWriter, Counting, IncidentReader, IncidentWriter, MuteReader, MuteWriter,
    RunWriter, ScalingReader, ScalingWriter, StormReader, StormWriter, WatchReader, WatchWriter,
};
use crate::scaling::ScalingMemory;
use crate::state::{
    claimable, counted_key, refused_claim, window_open, Claim, ClaimRecord, ClaimStatus,
    MutedLedger, MutedNotice, Stop, StormWindow,
};

type Item = HashMap<String, AttributeValue>;

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
        status: get_s(item, "status")
            .as_deref()
            .and_then(ClaimStatus::parse),
        lease_until: get_n(item, "lease_until").unwrap_or_default(),
        message_id: get_s(item, "message_id"),
        decision: get_s(item, "decision"),
    }
}

fn storm_window(item: &Item) -> StormWindow {
    let mut titles: Vec<String> = item
        .get("titles")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    titles.sort();
    StormWindow {
        count: get_n(item, "stops").unwrap_or_default(),
        started_at: get_n(item, "started_at").unwrap_or_default(),
        last_at: get_n(item, "last_at").unwrap_or_default(),
        titles,
        last_reason: get_s(item, "last_reason").filter(|r| !r.is_empty()),
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
            .key("pk", s(key))
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
            .key("pk", s(key))
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
            .key("pk", s(key))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        if expression.contains("#status") {
            request = request.expression_attribute_names("#status", "status");
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
            .key("pk", s(key))
            .update_expression("SET #status = :in_progress, lease_until = :lease, expires_at = :expires")
            .condition_expression(
                "attribute_not_exists(pk) OR #status = :retryable OR (#status = :in_progress AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(ClaimStatus::InProgress.as_str()))
            .expression_attribute_values(":retryable", s(ClaimStatus::Retryable.as_str()))
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":expires", n(now.saturating_add(ttl_s as i64)))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(match output.attributes {
                Some(old) if !old.is_empty() => Claim::Resumed {
                    delivered: delivered_to(&old),
                },
                _ => Claim::Fresh,
            }),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                let record = self
                    .get(key)
                    .await?
                    .map(|item| claim_record(&item))
                    .unwrap_or_default();
                Ok(refused_claim(&record))
            }
            Err(error) => Err(aws_error("dynamodb", "UpdateItem", error)),
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
                "SET #status = :complete, decision = :decision, message_id = :message_id"
            }
            None => "SET #status = :complete, decision = :decision",
        };
        self.set_claim_fields(key, expression, values).await
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
            "ADD delivered :destination",
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
        .get("delivered")
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

/// The attribute of a window item that maps a [`counted_key`] to the number its stop was given.
const COUNTED: &str = "counted";

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
    /// the condition fails, one `GetItem` says why: counted before (its number), no open window,
    /// or a window an earlier version wrote without the `counted` map (given one, then counted).
    async fn count_into_open(&self, stop: &Stop<'_>) -> Result<Counting> {
        let counted = counted_key(stop.claim_key);
        for _ in 0..2 {
            let result = self
                .client()
                .update_item()
                .table_name(&self.table)
                .key("pk", s(stop.storm_key))
                .update_expression(
                    "SET stops = stops + :one, #counted.#claim = stops + :one, last_at = :now, \
                     last_reason = :reason, expires_at = :expires ADD titles :title",
                )
                .condition_expression(
                    "started_at > :open_since AND attribute_exists(#counted) \
                     AND attribute_not_exists(#counted.#claim)",
                )
                .expression_attribute_names("#counted", COUNTED)
                .expression_attribute_names("#claim", &counted)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", n(stop.now))
                .expression_attribute_values(":reason", s(stop.reason))
                .expression_attribute_values(":expires", n(stop.expires_at()))
                .expression_attribute_values(
                    ":title",
                    AttributeValue::Ss(vec![stop.title.to_owned()]),
                )
                .expression_attribute_values(":open_since", n(stop.open_since()))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            let error = match result {
                Ok(output) => {
                    let item = output.attributes.unwrap_or_default();
                    return Ok(Counting::Counted(storm_window(&item)));
                }
                Err(error) => error,
            };
            if !matches!(
                error.as_service_error(),
                Some(UpdateItemError::ConditionalCheckFailedException(_))
            ) {
                return Err(aws_error("dynamodb", "UpdateItem", error));
            }
            let Some(item) = self.get(stop.storm_key).await? else {
                return Ok(Counting::NotOpen(None));
            };
            let stored = storm_window(&item);
            if let Some(number) = counted_number(&item, &counted) {
                return Ok(Counting::Counted(StormWindow {
                    count: number,
                    ..stored
                }));
            }
            if item.contains_key(COUNTED)
                || !window_open(stored.started_at, stop.now, stop.window_s)
            {
                return Ok(Counting::NotOpen(Some(stored)));
            }
            self.give_counted_map(stop.storm_key).await?;
        }
        Ok(Counting::NotOpen(self.read_window(stop.storm_key).await?))
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
            .item("pk", s(stop.storm_key))
            .item("stops", n(first.count))
            .item("started_at", n(first.started_at))
            .item("last_at", n(first.last_at))
            .item("titles", AttributeValue::Ss(first.titles.clone()))
            .item(
                "last_reason",
                s(first.last_reason.clone().unwrap_or_default()),
            )
            .item(COUNTED, AttributeValue::M(numbers))
            .item("expires_at", n(stop.expires_at()));
        let put = match replaced {
            Some(closed) => put
                .condition_expression("started_at = :started")
                .expression_attribute_values(":started", n(closed.started_at)),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(aws_error("dynamodb", "PutItem", error)),
        }
    }

    /// One `UpdateItem` removing the claim's entry, if the window still has it.
    async fn forget_count(&self, claim_key: &str, storm_key: &str) -> Result<()> {
        let result = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key("pk", s(storm_key))
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

impl StateTable {
    /// Gives a window an earlier version wrote (without the `counted` map) an empty one.
    async fn give_counted_map(&self, storm_key: &str) -> Result<()> {
        let result = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key("pk", s(storm_key))
            .update_expression("SET #counted = :empty")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(#counted)")
            .expression_attribute_names("#counted", COUNTED)
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .send()
            .await;
        nothing_to_change_if_refused(result)
    }
}

/// An `UpdateItem` whose condition not holding means there was nothing to change.
fn nothing_to_change_if_refused<T>(
    result: std::result::Result<T, aws_sdk_dynamodb::error::SdkError<UpdateItemError>>,
) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(error)
            if matches!(
                error.as_service_error(),
                Some(UpdateItemError::ConditionalCheckFailedException(_))
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(aws_error("dynamodb", "UpdateItem", error)),
    }
}

#[async_trait]
impl ScalingReader for StateTable {
    /// A service's scaling memory and its revision (0 when nothing was recorded yet).
    async fn scaling_memory(&self, key: &str) -> Result<(ScalingMemory, u64)> {
        Ok(match self.get(key).await? {
            None => (ScalingMemory::default(), 0),
            Some(item) => (
                ScalingMemory {
                    last_scale_out_at: get_n(&item, "last_scale_out_at"),
                    last_scale_in_at: get_n(&item, "last_scale_in_at"),
                },
                get_n(&item, "revision").unwrap_or_default(),
            ),
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
        let condition = if expected_revision == 0 {
            "attribute_not_exists(pk) OR revision = :expected"
        } else {
            "revision = :expected"
        };
        let mut set = vec!["revision = :next", "last_change = :change"];
        let mut remove = Vec::new();
        let mut request = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .condition_expression(condition)
            .expression_attribute_values(":expected", n(expected_revision))
            .expression_attribute_values(":next", n(expected_revision + 1))
            .expression_attribute_values(":change", s(change));
        for (name, value) in [
            ("last_scale_out_at", memory.last_scale_out_at),
            ("last_scale_in_at", memory.last_scale_in_at),
        ] {
            match value {
                Some(at) => {
                    set.push(match name {
                        "last_scale_out_at" => "last_scale_out_at = :out",
                        _ => "last_scale_in_at = :in",
                    });
                    let placeholder = if name == "last_scale_out_at" {
                        ":out"
                    } else {
                        ":in"
                    };
                    request = request.expression_attribute_values(placeholder, n(at));
                }
                None => remove.push(name),
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        match request.update_expression(expression).send().await {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(aws_error("dynamodb", "UpdateItem", error)),
        }
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
            .key("pk", s(key))
            .update_expression("ADD rounds :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| aws_error("dynamodb", "UpdateItem", e))?;
        let item = output.attributes.unwrap_or_default();
        let tasks = item
            .get("tasks")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        Ok((get_n(&item, "rounds").unwrap_or(1), tasks))
    }

    /// Adds started task ARNs to a claimed batch run, so a resumed run starts only the rest.
    async fn add_run_tasks(&self, key: &str, tasks: &[String]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        self.set_claim_fields(
            key,
            "ADD tasks :tasks",
            vec![(":tasks", AttributeValue::Ss(tasks.to_vec()))],
        )
        .await
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
        let text = get_s(&item, "incident").unwrap_or_default();
        let incident =
            serde_json::from_str(&text).map_err(|e| crate::error::AutopilotError::Aws {
                service: "dynamodb",
                operation: "GetItem",
                code: "UnreadableIncident".into(),
                message: format!("{key}: {e}"),
            })?;
        Ok(Some((
            incident,
            get_n(&item, "revision").unwrap_or_default(),
        )))
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
        let condition = if expected_revision == 0 {
            "attribute_not_exists(pk) OR revision = :expected"
        } else {
            "revision = :expected"
        };
        let text = serde_json::to_string(incident).unwrap_or_default();
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("incident", s(text))
            .item("revision", n(expected_revision + 1))
            .item(
                "expires_at",
                n(incident.last_signal_at.saturating_add(INCIDENT_TTL_S)),
            )
            .condition_expression(condition)
            .expression_attribute_values(":expected", n(expected_revision))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(aws_error("dynamodb", "PutItem", error)),
        }
    }
}

/// Attribute prefix of a muted ledger's per-category counts (`c:oom`).
const MUTED_COUNT: &str = "c:";

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
                .get("about")
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
        let mut adds = vec!["#count :one"];
        let expires = muted.until.saturating_add(muted.ttl_s as i64);
        let mut request = self
            .client()
            .update_item()
            .table_name(&self.table)
            .key("pk", s(muted.ledger_key))
            .expression_attribute_names("#count", format!("{MUTED_COUNT}{}", muted.category))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":until", n(muted.until))
            .expression_attribute_values(":expires", n(expires));
        if let Some(about) = muted.about {
            adds.push("about :about");
            request = request
                .expression_attribute_values(":about", AttributeValue::Ss(vec![about.to_owned()]));
        }
        if let Some(claim) = muted.claim_key {
            adds.push("claims :claims");
            request = request
                .condition_expression("NOT contains(claims, :claim)")
                .expression_attribute_values(":claims", AttributeValue::Ss(vec![claim.to_owned()]))
                .expression_attribute_values(":claim", s(claim));
        }
        let expression = format!(
            "ADD {} SET muted_until = :until, expires_at = :expires",
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
            .and_then(|item| get_n(&item, "short_since")))
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
            .item("pk", s(key))
            .item("expires_at", n(now.saturating_add(INCIDENT_TTL_S)));
        if let Some(since) = since {
            put = put.item("short_since", n(since));
        }
        put.send()
            .await
            .map_err(|e| aws_error("dynamodb", "PutItem", e))?;
        Ok(())
    }
}
