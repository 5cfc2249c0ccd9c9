//! Helpers the handler tests share: fixtures by name and the world's usual seeding.

#![allow(dead_code)]

use autopilot::domain::ServiceSnapshot;
use autopilot::events::InboundEvent;
use autopilot::testkit::{orders_api_logs, World, HOME_ACCOUNT};

/// A world whose ECS knows the OOM fixture's service (3 desired, 2 running) and whose Logs hold
/// `lines` in its task's stream.
pub fn orders_api_world(lines: &[&str]) -> World {
    let world = World::new();
    world.ecs.set_service(
        "shop",
        "orders-api",
        ServiceSnapshot {
            status: Some("ACTIVE".into()),
            desired: 3,
            running: 2,
            ..ServiceSnapshot::default()
        },
    );
    orders_api_logs(&world.ecs, &world.logs, HOME_ACCOUNT, lines);
    world
}

/// A fixture from `tests/fixtures/<path>` as an event.
pub fn fixture(path: &str) -> serde_json::Value {
    let path = format!("{}/../../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture as the runtime hands it to a handler.
pub fn event(path: &str) -> InboundEvent {
    fixture(path).into()
}

/// Asserts that some note contains `text`, showing the notes when none does.
pub fn assert_noted(notes: &[String], text: &str) {
    assert!(
        notes.iter().any(|n| n.contains(text)),
        "no note contains {text:?}: {notes:?}"
    );
}
