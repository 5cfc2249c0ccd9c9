//! The state port's contract (`autopilot::testkit::contract`) held against `StateTable` on the
//! local cloud's DynamoDB: the same scenarios, and the same answers, as the in-memory store the
//! handler tests use (`shared/autopilot/tests/state_contract.rs`).

use std::sync::Arc;

use autopilot::aws::state_table::StateTable;
use autopilot::aws::AwsClients;
use autopilot::testkit::contract;
use autopilot_tests::LocalCloud;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

/// A table with the template's key schema (`pk`, a string).
async fn state_table(cloud: &LocalCloud, name: &str) -> StateTable {
    let dynamodb = aws_sdk_dynamodb::Client::new(&cloud.config);
    dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
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
