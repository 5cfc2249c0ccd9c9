//! The state port's contract (`autopilot::testkit::contract`) held against `StateTable` on the
//! local cloud's DynamoDB: the same scenarios, and the same answers, as the in-memory store the
//! handler tests use (`shared/autopilot/tests/state_contract.rs`).

use std::sync::Arc;

use autopilot::aws::state_table::attr;
use autopilot::aws::state_table::StateTable;
use autopilot::aws::AwsClients;
use autopilot::testkit::contract;
use autopilot_tests::LocalCloud;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .unwrap()
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

/// An index of run records, as the template declares it.
fn index(name: &str, hash: &str, range: &str) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash))
        .key_schema(key(range, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .unwrap()
}

/// A table with the template's key schema (`pk`, a string) and its two indexes of run records.
async fn state_table(cloud: &LocalCloud, name: &str) -> StateTable {
    let dynamodb = aws_sdk_dynamodb::Client::new(&cloud.config);
    dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(attr::PK, ScalarAttributeType::S))
        .attribute_definitions(attribute(attr::RUN_JOB, ScalarAttributeType::S))
        .attribute_definitions(attribute(attr::SCHEDULED_AT, ScalarAttributeType::N))
        .attribute_definitions(attribute(attr::DUE_JOB, ScalarAttributeType::S))
        .attribute_definitions(attribute(attr::DUE_AT, ScalarAttributeType::N))
        .key_schema(key(attr::PK, KeyType::Hash))
        .global_secondary_indexes(index(attr::RUNS_INDEX, attr::RUN_JOB, attr::SCHEDULED_AT))
        .global_secondary_indexes(index(attr::DUE_INDEX, attr::DUE_JOB, attr::DUE_AT))
        .send()
        .await
        .expect("CreateTable");
    StateTable::new(AwsClients::from_config(cloud.config.clone()), name)
}

/// Every scenario against one table, each under its own key prefix and in its own task, so
/// that one failing names itself and the others still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamodb_state_table_keeps_the_state_contract() {
    let cloud = LocalCloud::start().await.expect("local cloud");
    let table = Arc::new(state_table(&cloud, "autopilot-contract").await);
    let mut failed = Vec::new();
    for name in contract::SCENARIOS {
        let table = table.clone();
        let run = tokio::spawn(async move {
            contract::run(name, table.as_ref(), &format!("{name}/")).await;
        });
        if run.await.is_err() {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "StateTable broke the contract in {failed:?} (each panic is printed above)"
    );
}
