//! ECS "Task State Change" events: the typed `detail` and what can be derived from it
//! (cluster and service names, task id, task group kind).
//!
//! Every field is optional and unknown fields are ignored: AWS adds fields over time, and
//! `containers` can be empty. `stopCode` is an open set, so unknown values are kept as text.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::EventBridgeEvent;
use crate::arn::Arn;
use crate::error::{AutopilotError, Result};

/// The `detail-type` of ECS task state changes.
pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";
/// ECS allows at most this many containers in a task definition; an event with more is not one
/// ECS sent (and its cost would grow with it).
pub const MAX_CONTAINERS: usize = 10;

/// A whole EventBridge envelope around a task state change.
pub type TaskStateChange = EventBridgeEvent<TaskDetail>;

/// Parses an envelope whose `detail-type` is [`TASK_STATE_CHANGE`]; errors name the field.
pub fn parse_task_state_change(event: &serde_json::Value) -> Result<TaskStateChange> {
    match event.get("detail") {
        Some(serde_json::Value::Object(_)) => {}
        Some(other) => {
            return Err(AutopilotError::invalid_event(
                "detail",
                format!("expected an object, got {}", super::json_kind(other)),
            ))
        }
        None => return Err(AutopilotError::invalid_event("detail", "missing")),
    }
    let parsed: TaskStateChange = super::from_value_at(event, "")?;
    if parsed.detail.task_arn.as_deref().is_none_or(str::is_empty) {
        return Err(AutopilotError::invalid_event("detail.taskArn", "missing"));
    }
    let containers = parsed.detail.containers.len();
    if containers > MAX_CONTAINERS {
        return Err(AutopilotError::invalid_event(
            "detail.containers",
            format!("{containers} containers; ECS allows at most {MAX_CONTAINERS} per task"),
        ));
    }
    Ok(parsed)
}

/// The accounts a task state change names, with where: its envelope's `account` and its
/// task's, cluster's and task definition's ARNs (see [`crate::trust::Accounts::check`]).
pub fn accounts_named(change: &TaskStateChange) -> [(&'static str, Option<&str>); 4] {
    let detail = &change.detail;
    [
        ("account", change.account.as_deref()),
        (
            "detail.taskArn",
            detail.task_arn.as_ref().and_then(Arn::account),
        ),
        (
            "detail.clusterArn",
            detail.cluster_arn.as_ref().and_then(Arn::account),
        ),
        (
            "detail.taskDefinitionArn",
            detail.task_definition_arn.as_ref().and_then(Arn::account),
        ),
    ]
}

/// What `task-triage` was handed: a task state change, a service event (deployment state change
/// or service action), or another EventBridge event it ignores.
#[derive(Debug, Clone, PartialEq)]
pub enum TriageInput {
    TaskStateChange(Box<TaskStateChange>),
    Service(Box<super::service::ServiceEvent>),
    Other {
        event_id: Option<String>,
        detail_type: String,
    },
}

/// Parses an inbound event's JSON text.
///
/// The typed envelope is read straight from the text; only when that fails (or the event is not
/// a task state change) does [`triage_input_from_value`] run over a value tree, and its answer,
/// an error naming the field or the ignored event, is the one returned. Both paths agree on every
/// input (a property test holds them to it); the direct one is about three times cheaper.
pub fn parse_triage_input(text: &str) -> Result<TriageInput> {
    let direct = if text.trim_start().starts_with('{') {
        serde_json::from_str::<TaskStateChange>(text).ok()
    } else {
        None
    };
    if let Some(change) = direct {
        if change.detail_type == TASK_STATE_CHANGE
            && change
                .detail
                .task_arn
                .as_deref()
                .is_some_and(|arn| !arn.is_empty())
            && change.detail.containers.len() <= MAX_CONTAINERS
        {
            checked_region(change.region.as_deref())?;
            return Ok(TriageInput::TaskStateChange(Box::new(change)));
        }
    }
    triage_input_from_value(&super::value_from_text(text)?)
}

/// The envelope's `region` is where the functions read and link to: one not of AWS's shape is
/// refused rather than used.
fn checked_region(region: Option<&str>) -> Result<()> {
    match region {
        Some(region) if !crate::arn::is_aws_region(region) => Err(AutopilotError::invalid_event(
            "region",
            format!("`{}` is not an AWS region", crate::domain::clip(region, 64)),
        )),
        _ => Ok(()),
    }
}

/// The reference parse over a value tree: the `detail-type` decides, then the detail is typed
/// with errors naming the field.
pub fn triage_input_from_value(event: &serde_json::Value) -> Result<TriageInput> {
    let kind = super::detail_type(event)?;
    if super::service::is_service_event(kind) {
        let parsed = super::service::parse_service_event(event, kind)?;
        checked_region(parsed.region.as_deref())?;
        return Ok(TriageInput::Service(Box::new(parsed)));
    }
    if kind != TASK_STATE_CHANGE {
        return Ok(TriageInput::Other {
            event_id: event
                .get("id")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            detail_type: kind.to_owned(),
        });
    }
    let change = parse_task_state_change(event)?;
    checked_region(change.region.as_deref())?;
    Ok(TriageInput::TaskStateChange(Box::new(change)))
}

/// The `detail` of an ECS Task State Change event. It is read only from a JSON object (serde's
/// derive would also take an array of field values).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, remote = "Self")]
pub struct TaskDetail {
    pub task_arn: Option<Arn>,
    pub cluster_arn: Option<Arn>,
    pub task_definition_arn: Option<Arn>,
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub last_status: Option<String>,
    pub desired_status: Option<String>,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    pub launch_type: Option<String>,
    pub capacity_provider_name: Option<String>,
    pub availability_zone: Option<String>,
    pub containers: Vec<Container>,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopping_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub version: Option<u64>,
}

impl<'de> Deserialize<'de> for TaskDetail {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = TaskDetail;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<TaskDetail, A::Error> {
                TaskDetail::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(ObjectOnly)
    }
}

impl Serialize for TaskDetail {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        TaskDetail::serialize(self, serializer)
    }
}

/// One container of the task, as the event reports it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    pub name: Option<String>,
    pub image: Option<String>,
    pub last_status: Option<String>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub health_status: Option<String>,
}

/// Why ECS stopped a task. Known codes get variants; anything else is kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    SpotInterruption,
    TerminationNotice,
    Other(String),
}

impl From<String> for StopCode {
    fn from(code: String) -> Self {
        match code.as_str() {
            "TaskFailedToStart" => Self::TaskFailedToStart,
            "EssentialContainerExited" => Self::EssentialContainerExited,
            "UserInitiated" => Self::UserInitiated,
            "ServiceSchedulerInitiated" => Self::ServiceSchedulerInitiated,
            "SpotInterruption" => Self::SpotInterruption,
            "TerminationNotice" => Self::TerminationNotice,
            _ => Self::Other(code),
        }
    }
}

impl From<StopCode> for String {
    fn from(code: StopCode) -> Self {
        code.as_str().to_owned()
    }
}

impl StopCode {
    /// The code as AWS spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::TaskFailedToStart => "TaskFailedToStart",
            Self::EssentialContainerExited => "EssentialContainerExited",
            Self::UserInitiated => "UserInitiated",
            Self::ServiceSchedulerInitiated => "ServiceSchedulerInitiated",
            Self::SpotInterruption => "SpotInterruption",
            Self::TerminationNotice => "TerminationNotice",
            Self::Other(code) => code,
        }
    }
}

impl fmt::Display for StopCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What launched the task: a service, or a standalone run of a task definition family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskGroup {
    Service(String),
    Family(String),
    Other(String),
}

impl TaskGroup {
    /// Parses `service:<name>` or `family:<family>`.
    pub fn parse(group: &str) -> Self {
        if let Some(name) = group.strip_prefix("service:") {
            Self::Service(name.to_owned())
        } else if let Some(family) = group.strip_prefix("family:") {
            Self::Family(family.to_owned())
        } else {
            Self::Other(group.to_owned())
        }
    }

    /// The service name, for service tasks.
    pub fn service(&self) -> Option<&str> {
        match self {
            Self::Service(name) => Some(name),
            _ => None,
        }
    }
}

impl TaskDetail {
    /// Cluster name from `clusterArn`.
    pub fn cluster_name(&self) -> Option<&str> {
        self.cluster_arn.as_ref().map(Arn::last_segment)
    }

    /// Task id (the last segment of `taskArn`).
    pub fn task_id(&self) -> Option<&str> {
        self.task_arn.as_ref().map(Arn::last_segment)
    }

    /// The parsed `group`.
    pub fn task_group(&self) -> Option<TaskGroup> {
        self.group.as_deref().map(TaskGroup::parse)
    }

    /// `family:revision` from `taskDefinitionArn`.
    pub fn task_definition(&self) -> Option<&str> {
        self.task_definition_arn.as_ref().map(Arn::last_segment)
    }

    /// True for a task that has stopped.
    pub fn is_stopped(&self) -> bool {
        self.last_status.as_deref() == Some("STOPPED")
    }

    /// True for the Spot two-minute warning, which arrives while the task still runs.
    pub fn is_termination_notice(&self) -> bool {
        self.stop_code == Some(StopCode::TerminationNotice)
    }

    /// The container with this name.
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_stop_code_is_kept_verbatim() {
        let detail: TaskDetail =
            serde_json::from_value(json!({"stopCode": "SomethingNew", "newField": 1})).unwrap();
        assert_eq!(
            detail.stop_code,
            Some(StopCode::Other("SomethingNew".into()))
        );
        assert_eq!(detail.stop_code.unwrap().as_str(), "SomethingNew");
    }

    #[test]
    fn missing_detail_is_named() {
        let error =
            parse_task_state_change(&json!({"detail-type": TASK_STATE_CHANGE, "source": "x"}))
                .unwrap_err();
        assert!(error.to_string().contains("`detail`"), "{error}");
    }

    #[test]
    fn wrong_type_inside_detail_names_the_path() {
        let event = json!({"detail-type": TASK_STATE_CHANGE, "source": "x", "detail": {
            "taskArn": "arn:aws:ecs:us-east-1:1:task/c/t", "containers": [{"exitCode": "one"}]}});
        let error = parse_task_state_change(&event).unwrap_err();
        assert!(
            error.to_string().contains("detail.containers[0].exitCode"),
            "{error}"
        );
    }

    #[test]
    fn missing_task_arn_is_an_error() {
        let event =
            json!({"detail-type": TASK_STATE_CHANGE, "source": "x", "detail": {"containers": []}});
        assert!(parse_task_state_change(&event)
            .unwrap_err()
            .to_string()
            .contains("detail.taskArn"));
    }

    #[test]
    fn groups_parse() {
        assert_eq!(
            TaskGroup::parse("service:orders-api"),
            TaskGroup::Service("orders-api".into())
        );
        assert_eq!(
            TaskGroup::parse("family:invoice-export"),
            TaskGroup::Family("invoice-export".into())
        );
    }
}
