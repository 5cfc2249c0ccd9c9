//! DynamoDB adapter for [`crate::state`]: conditional claims for duplicate suppression and an
//! atomic counter per storm window; `alarm-scaler`'s per-service scaling memory with a revision
//! for conditional writes. Table: hash key `pk` (S), TTL attribute `expires_at` (N).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::aws_error;
use crate::error::Result;
use crate::scaling::ScalingMemory;
use crate::state::{claimable, refused_claim, Claim, ClaimRecord, ClaimStatus, StormWindow};

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

    /// Claims an event for processing until `lease_until` (see [`crate::state`] for the semantics).
    pub async fn claim(&self, key: &str, now: i64, lease_until: i64, ttl_s: u64) -> Result<Claim> {
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
    pub async fn peek_claim(&self, key: &str, now: i64) -> Result<Claim> {
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

    /// Counts a redelivery of an already handled event on its record (an operational signal).
    pub async fn count_redelivery(&self, key: &str) -> Result<()> {
        self.set_claim_fields(key, "ADD redeliveries :one", vec![(":one", n(1))])
            .await
    }

    /// Keeps the storm count given to a claimed event, so a retry reuses it.
    pub async fn record_storm_count(&self, key: &str, count: u64) -> Result<()> {
        self.set_claim_fields(key, "SET storm_count = :count", vec![(":count", n(count))])
            .await
    }

    /// Marks a claimed event handled.
    pub async fn complete(
        &self,
        key: &str,
        decision: &str,
        message_id: Option<&str>,
    ) -> Result<()> {
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
    pub async fn release(&self, key: &str) -> Result<()> {
        self.set_claim_fields(
            key,
            "SET #status = :retryable",
            vec![(":retryable", s(ClaimStatus::Retryable.as_str()))],
        )
        .await
    }

    /// Counts one stop in its storm window (opening a new window when the last one closed).
    pub async fn count_stop(
        &self,
        key: &str,
        now: i64,
        window_s: u64,
        title: &str,
        reason: &str,
    ) -> Result<StormWindow> {
        let cutoff = now - window_s as i64;
        let expires = now + window_s as i64 + 24 * 3600;
        for _ in 0..5 {
            let added = self
                .client()
                .update_item()
                .table_name(&self.table)
                .key("pk", s(key))
                .update_expression("ADD stops :one, titles :title SET last_at = :now, last_reason = :reason, expires_at = :expires")
                .condition_expression("attribute_exists(pk) AND started_at > :cutoff")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":title", AttributeValue::Ss(vec![title.to_owned()]))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":reason", s(reason))
                .expression_attribute_values(":expires", n(expires))
                .expression_attribute_values(":cutoff", n(cutoff))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match added {
                Ok(output) => return Ok(storm_window(&output.attributes.unwrap_or_default())),
                Err(error)
                    if matches!(
                        error.as_service_error(),
                        Some(UpdateItemError::ConditionalCheckFailedException(_))
                    ) => {}
                Err(error) => return Err(aws_error("dynamodb", "UpdateItem", error)),
            }
            let opened = self
                .client()
                .put_item()
                .table_name(&self.table)
                .item("pk", s(key))
                .item("stops", n(1))
                .item("started_at", n(now))
                .item("last_at", n(now))
                .item("titles", AttributeValue::Ss(vec![title.to_owned()]))
                .item("last_reason", s(reason))
                .item("expires_at", n(expires))
                .condition_expression("attribute_not_exists(pk) OR started_at <= :cutoff")
                .expression_attribute_values(":cutoff", n(cutoff))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match opened {
                Ok(output) => {
                    let previous = output
                        .attributes
                        .map(|old| storm_window(&old).count)
                        .filter(|&c| c > 1);
                    return Ok(StormWindow {
                        count: 1,
                        started_at: now,
                        last_at: now,
                        titles: vec![title.to_owned()],
                        last_reason: Some(reason.to_owned()).filter(|r| !r.is_empty()),
                        previous_count: previous,
                    });
                }
                // Another invocation opened the window first: count into it.
                Err(error)
                    if matches!(
                        error.as_service_error(),
                        Some(PutItemError::ConditionalCheckFailedException(_))
                    ) => {}
                Err(error) => return Err(aws_error("dynamodb", "PutItem", error)),
            }
        }
        Err(crate::error::AutopilotError::Aws {
            service: "dynamodb",
            operation: "UpdateItem",
            code: "ContendedStormWindow".into(),
            message: format!("could not count a stop in {key} after 5 attempts"),
        })
    }

    /// The window as it is, without counting (for `--dry-run` and resumed events).
    pub async fn peek_storm(&self, key: &str) -> Result<Option<StormWindow>> {
        Ok(self.get(key).await?.map(|item| storm_window(&item)))
    }

    /// A service's scaling memory and its revision (0 when nothing was recorded yet).
    pub async fn scaling_memory(&self, key: &str) -> Result<(ScalingMemory, u64)> {
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
    pub async fn record_scaling(
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

    /// Resuming a batch run after a failed invocation: counts the round (it goes into the
    /// client tokens of calls not yet made) and returns it with the tasks already started.
    pub async fn resume_run(&self, key: &str) -> Result<(u32, Vec<String>)> {
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
    pub async fn add_run_tasks(&self, key: &str, tasks: &[String]) -> Result<()> {
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
