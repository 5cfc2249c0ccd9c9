//! Helpers the handler tests share: fixtures by name and the world's usual seeding.

#![allow(dead_code)]

use autopilot::events::InboundEvent;

/// A fixture from `tests/fixtures/<path>` as an event.
pub fn fixture(path: &str) -> serde_json::Value {
    let path = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
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
