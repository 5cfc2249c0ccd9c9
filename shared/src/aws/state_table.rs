//! DynamoDB adapter implementing the state ports ([`ClaimStore`], [`StormStore`],
//! [`ScalingStore`], [`RunStore`]): conditional claims for duplicate suppression; a storm
//! window's count and the claim's record of it written in one conditional transaction;
//! `alarm-scaler`'s per-service scaling memory with a revision for conditional writes;
//! `batch-runner`'s run records. Table: hash key `pk` (S), TTL attribute `expires_at` (N).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};

use super::aws_error;
use crate::error::Result;
use crate::incident::Incident;
use crate::ports::{
    ClaimStore, CountWrite, IncidentStore, RunStore, ScalingStore, StormStore, WatchStore,
};
use crate::scaling::ScalingMemory;
use crate::state::{claimable, refused_claim, Claim, ClaimRecord, ClaimStatus, StormWindow};

type Item = HashMap<String, AttributeValue>;

/// A request the SDK's builder refused (a missing required field: a bug here, not input).
fn build_error(operation: &'static str, error: BuildError) -> crate::error::AutopilotError {
    crate::error::AutopilotError::Aws {
        service: "dynamodb",
        operation,
        code: "InvalidRequest".into(),
        message: error.to_string(),
    }
}

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
        storm_count: get_n(item, "storm_count"),
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

    /// The number the claim at `claim_key` recorded when it counted its stop.
    async fn recorded_count(&self, claim_key: &str) -> Result<u64> {
        Ok(self
            .get(claim_key)
            .await?
            .and_then(|item| get_n(&item, "storm_count"))
            .unwrap_or_default())
    }
}

#[async_trait]
impl ClaimStore for StateTable {
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
                    storm_count: claim_record(&old).storm_count,
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

    /// What a claim would find, without writing (for `--dry-run`).
    async fn peek_claim(&self, key: &str, now: i64) -> Result<Claim> {
        Ok(match self.get(key).await? {
            None => Claim::Fresh,
            Some(item) => {
                let record = claim_record(&item);
                if claimable(&record, now) {
                    Claim::Resumed {
                        storm_count: record.storm_count,
                    }
                } else {
                    refused_claim(&record)
                }
            }
        })
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
}

#[async_trait]
impl StormStore for StateTable {
    async fn read_window(&self, storm_key: &str) -> Result<Option<StormWindow>> {
        Ok(self.get(storm_key).await?.map(|item| storm_window(&item)))
    }

    /// One `DeleteItem` per window.
    async fn close_windows(&self, storm_keys: &[String]) -> Result<()> {
        for key in storm_keys {
            self.client()
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(key))
                .send()
                .await
                .map_err(|e| aws_error("dynamodb", "DeleteItem", e))?;
        }
        Ok(())
    }

    /// One `TransactWriteItems`: the window (an update conditional on the count and start read,
    /// or a put of a new window conditional on replacing exactly the closed one read, or on
    /// there being none) and the claim's `storm_count` (conditional on the claim existing
    /// without one).
    async fn write_count(
        &self,
        claim_key: &str,
        storm_key: &str,
        seen: Option<&StormWindow>,
        next: &StormWindow,
        expires_at: i64,
    ) -> Result<CountWrite> {
        let titles = AttributeValue::Ss(next.titles.clone());
        let reason = s(next.last_reason.clone().unwrap_or_default());
        let storm_write = match seen {
            Some(open) if next.started_at == open.started_at && next.count == open.count + 1 => {
                let update = Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(storm_key))
                    .update_expression(
                        "SET stops = :next, last_at = :now, last_reason = :reason, titles = :titles, expires_at = :expires",
                    )
                    .condition_expression("stops = :seen AND started_at = :started")
                    .expression_attribute_values(":next", n(next.count))
                    .expression_attribute_values(":seen", n(open.count))
                    .expression_attribute_values(":started", n(open.started_at))
                    .expression_attribute_values(":now", n(next.last_at))
                    .expression_attribute_values(":reason", reason)
                    .expression_attribute_values(":titles", titles)
                    .expression_attribute_values(":expires", n(expires_at))
                    .build()
                    .map_err(|e| build_error("TransactWriteItems", e))?;
                TransactWriteItem::builder().update(update).build()
            }
            replaced => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(storm_key))
                    .item("stops", n(next.count))
                    .item("started_at", n(next.started_at))
                    .item("last_at", n(next.last_at))
                    .item("titles", titles)
                    .item("last_reason", reason)
                    .item("expires_at", n(expires_at));
                let put = match replaced {
                    // Replace exactly the closed window that was read.
                    Some(closed) => put
                        .condition_expression("started_at = :started")
                        .expression_attribute_values(":started", n(closed.started_at)),
                    None => put.condition_expression("attribute_not_exists(pk)"),
                }
                .build()
                .map_err(|e| build_error("TransactWriteItems", e))?;
                TransactWriteItem::builder().put(put).build()
            }
        };
        let claim_record = Update::builder()
            .table_name(&self.table)
            .key("pk", s(claim_key))
            .update_expression("SET storm_count = :count")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(storm_count)")
            .expression_attribute_values(":count", n(next.count))
            .build()
            .map_err(|e| build_error("TransactWriteItems", e))?;
        let written = self
            .client()
            .transact_write_items()
            .transact_items(storm_write)
            .transact_items(TransactWriteItem::builder().update(claim_record).build())
            .send()
            .await;
        let reasons = match written {
            Ok(_) => return Ok(CountWrite::Written),
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => {
                    canceled.cancellation_reasons().to_vec()
                }
                _ => return Err(aws_error("dynamodb", "TransactWriteItems", error)),
            },
        };
        let failed =
            |i: usize| reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
        if failed(1) {
            return Ok(CountWrite::CountedBefore(
                self.recorded_count(claim_key).await?,
            ));
        }
        // Another stop took this number (or the window changed, or a conflicting transaction).
        Ok(CountWrite::Contended)
    }
}

#[async_trait]
impl ScalingStore for StateTable {
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
impl RunStore for StateTable {
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
impl IncidentStore for StateTable {
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

#[async_trait]
impl WatchStore for StateTable {
    async fn short_since(&self, key: &str) -> Result<Option<i64>> {
        Ok(self
            .get(key)
            .await?
            .and_then(|item| get_n(&item, "short_since")))
    }

    /// One PutItem: the record with `short_since`, or without it (kept a day, then expired).
    async fn set_short_since(&self, key: &str, since: Option<i64>) -> Result<()> {
        let now = chrono::Utc::now().timestamp();
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
