//! Typed inbound events and their parsing from raw JSON, with errors that name the bad field.

pub mod alarm;
pub mod ecs;
pub mod schedule;

use serde::de::DeserializeOwned;

use crate::error::{AutopilotError, Result};

/// Deserializes `value` into `T`; a type error names the JSON path (prefixed by `root`).
///
/// Plain serde first: tracking the path costs an allocation per visited key, so it runs only to
/// explain a failure.
pub fn from_value_at<T: DeserializeOwned>(value: &serde_json::Value, root: &str) -> Result<T> {
    if let Ok(parsed) = T::deserialize(value) {
        return Ok(parsed);
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let field = match path.as_str() {
            "" | "." => root.to_owned(),
            _ if root.is_empty() => path,
            _ => format!("{root}.{path}"),
        };
        AutopilotError::invalid_event(field, error.into_inner().to_string())
    })
}

/// The `detail-type` of an EventBridge envelope, or why the value is no envelope at all.
pub fn detail_type(event: &serde_json::Value) -> Result<&str> {
    let object = event.as_object().ok_or_else(|| {
        AutopilotError::invalid_event(
            "$",
            format!("expected a JSON object, got {}", json_kind(event)),
        )
    })?;
    match object.get("detail-type") {
        Some(serde_json::Value::String(kind)) => Ok(kind),
        Some(other) => Err(AutopilotError::invalid_event(
            "detail-type",
            format!("expected a string, got {}", json_kind(other)),
        )),
        None => Err(AutopilotError::invalid_event("detail-type", "missing")),
    }
}

/// A short name for a JSON value's kind, for error messages.
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
