//! The state port's contract (`autopilot::testkit::contract`) held against the in-memory store
//! the handler tests use; `tests/tests/state_contract_local_cloud.rs` holds the DynamoDB
//! adapter to the same scenarios.

use std::sync::Arc;

use autopilot::testkit::{contract, MemoryState, Recorder};

fn store() -> MemoryState {
    MemoryState::new(Arc::new(Recorder::default()))
}

#[tokio::test]
async fn claims() {
    contract::claims(&store(), "").await;
}

#[tokio::test]
async fn storm_windows() {
    contract::storm_windows(&store(), "").await;
}

#[tokio::test]
async fn scaling_memory() {
    contract::scaling_memory(&store(), "").await;
}

#[tokio::test]
async fn runs() {
    contract::runs(&store(), "").await;
}

#[tokio::test]
async fn run_records() {
    contract::run_records(&store(), "").await;
}

#[tokio::test]
async fn incidents() {
    contract::incidents(&store(), "").await;
}

#[tokio::test]
async fn watch_records() {
    contract::watch_records(&store(), "").await;
}

#[tokio::test]
async fn muted_ledgers() {
    contract::muted_ledgers(&store(), "").await;
}

#[tokio::test]
async fn every_scenario_has_a_test_here() {
    let here = include_str!("state_contract.rs");
    for name in contract::SCENARIOS {
        assert!(
            here.contains(&format!("contract::{name}(")),
            "scenario {name} is not run against the in-memory store"
        );
    }
}
