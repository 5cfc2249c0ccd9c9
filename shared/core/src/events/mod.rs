//! Typed inbound events and their parsing from raw JSON, with errors that name the bad field.

pub mod alarm;
pub mod ecs;
pub mod schedule;
pub mod service;

#[cfg(test)]
mod parse_paths;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{AutopilotError, Result};

/// An EventBridge envelope around a typed `detail`, as EventBridge delivers it to a target
/// (the fields AWS documents; unknown ones are ignored, `detail-type` and `source` required).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", bound(deserialize = "T: DeserializeOwned"))]
pub struct EventBridgeEvent<T = serde_json::Value> {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub resources: Option<Vec<String>>,
    pub detail: T,
}

/// One inbound event as the JSON text it arrived as. The runtime only checks that the text is
/// JSON; each function then parses it straight into its own types, which costs a fraction of
/// building a `serde_json::Value` tree first (see `make bench`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InboundEvent(Box<RawValue>);

/// The largest event a function reads: what EventBridge, SNS and EventBridge Scheduler deliver
/// at most (256 KiB). Anything larger comes from no source the functions serve, and is refused
/// before it is parsed, so that a function with 128 MB never builds trees from megabytes.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

impl InboundEvent {
    /// The event, if it is no larger than [`MAX_EVENT_BYTES`]; else an invalid event saying
    /// how large it is.
    pub fn admitted(self) -> Result<Self> {
        let size = self.text().len();
        if size > MAX_EVENT_BYTES {
            return Err(AutopilotError::invalid_event(
                "$",
                format!(
                    "the event is {size} bytes; events from EventBridge, SNS and Scheduler are at most {MAX_EVENT_BYTES} bytes (256 KiB)"
                ),
            ));
        }
        Ok(self)
    }

    /// Checks that `text` is one JSON document.
    pub fn from_text(text: &str) -> std::result::Result<Self, serde_json::Error> {
        serde_json::from_str(text).map(Self)
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// The event as a JSON value tree, for events whose parsing wants one.
    pub fn to_value(&self) -> Result<serde_json::Value> {
        value_from_text(self.text())
    }
}

/// An event's JSON text as a value tree; text that is not JSON is an invalid event.
pub fn value_from_text(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| AutopilotError::invalid_event("$", format!("not JSON: {e}")))
}

impl From<serde_json::Value> for InboundEvent {
    fn from(value: serde_json::Value) -> Self {
        // A `Value` always serializes: its map keys are strings.
        Self(
            serde_json::value::to_raw_value(&value).unwrap_or_else(|_| {
                RawValue::from_string("null".to_owned()).expect("`null` is JSON")
            }),
        )
    }
}

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

/// Epoch seconds of an event's time at `field`: RFC 3339 (EventBridge's `time`, Scheduler's
/// scheduled time) or CloudWatch's `2026-09-15T02:00:00.000+0000` (an alarm's state
/// timestamp). A time that is neither is an invalid event naming the field: it decides which
/// muting window applies and when a run was due, so it is never guessed.
pub fn parse_time(text: &str, field: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|time| time.timestamp())
        .map_err(|_| {
            AutopilotError::invalid_event(
                field,
                format!("`{text}` is not a timestamp (RFC 3339, e.g. 2026-09-15T02:00:00Z)"),
            )
        })
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
