//! ECS service events: `ECS Deployment State Change` and `ECS Service Action`, both keyed on
//! `detail.eventName` (AWS lists the deployment event names under both detail-types). Fields are
//! optional and unknown fields ignored, except `eventName`, without which nothing can be said.

use serde::{Deserialize, Serialize};

use crate::arn::Arn;
use crate::error::{AutopilotError, Result};

/// The `detail-type` of deployment state changes.
pub const DEPLOYMENT_STATE_CHANGE: &str = "ECS Deployment State Change";
/// The `detail-type` of service actions.
pub const SERVICE_ACTION: &str = "ECS Service Action";

/// Whether `detail_type` is one of the service event types.
pub fn is_service_event(detail_type: &str) -> bool {
    detail_type == DEPLOYMENT_STATE_CHANGE || detail_type == SERVICE_ACTION
}

/// The `detail` of a service event.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceEventDetail {
    /// `INFO`, `WARN` or `ERROR`.
    pub event_type: Option<String>,
    pub event_name: String,
    pub deployment_id: Option<String>,
    pub reason: Option<String>,
    /// Placement failures list their reasons (`RESOURCE:MEMORY` …).
    pub reasons: Vec<String>,
    pub cluster_arn: Option<Arn>,
    pub capacity_provider_arns: Vec<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// Service discovery / VPC Lattice events name the tasks concerned.
    pub task_arns: Vec<String>,
    pub target_arns: Vec<String>,
}

/// A service event as `task-triage` reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceEvent {
    pub id: Option<String>,
    pub detail_type: String,
    pub time: Option<String>,
    /// `time` in epoch seconds (parsed with the event: a malformed time is refused).
    #[serde(skip)]
    pub at: Option<i64>,
    pub region: Option<String>,
    pub account: Option<String>,
    /// The service's ARN (the event's first resource).
    pub service_arn: Option<Arn>,
    pub detail: ServiceEventDetail,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
}

/// Parses a service event envelope (its `detail-type` already read); errors name the field.
pub fn parse_service_event(event: &serde_json::Value, detail_type: &str) -> Result<ServiceEvent> {
    let detail = match event.get("detail") {
        Some(detail @ serde_json::Value::Object(_)) => detail,
        Some(other) => {
            let kind = super::json_kind(other);
            return Err(AutopilotError::invalid_event(
                "detail",
                format!("expected an object, got {kind}"),
            ));
        }
        None => return Err(AutopilotError::invalid_event("detail", "missing")),
    };
    if detail
        .get("eventName")
        .is_none_or(|name| name.as_str().is_none_or(str::is_empty))
    {
        let problem = match detail.get("eventName") {
            Some(serde_json::Value::String(_)) | None => "missing".to_owned(),
            Some(other) => format!("expected a string, got {}", super::json_kind(other)),
        };
        return Err(AutopilotError::invalid_event("detail.eventName", problem));
    }
    let envelope: Envelope = super::from_value_at(event, "")?;
    let detail: ServiceEventDetail = super::from_value_at(detail, "detail")?;
    let service_arn = match envelope
        .resources
        .iter()
        .position(|r| r.contains(":service/"))
    {
        Some(at) => Some(Arn::parse(&envelope.resources[at]).map_err(|e| {
            AutopilotError::invalid_event(format!("resources[{at}]"), e.to_string())
        })?),
        None => None,
    };
    let at = match envelope.time.as_deref() {
        Some(time) => Some(super::parse_time(time, "time")?),
        None => None,
    };
    Ok(ServiceEvent {
        id: envelope.id,
        detail_type: detail_type.to_owned(),
        time: envelope.time,
        at,
        region: envelope.region,
        account: envelope.account,
        service_arn,
        detail,
    })
}

impl ServiceEvent {
    /// The accounts the event names, with where: its envelope's `account`, the service's ARN
    /// and the cluster's (see [`crate::trust::Accounts::check`]).
    pub fn accounts_named(&self) -> [(&'static str, Option<&str>); 3] {
        [
            ("account", self.account.as_deref()),
            (
                "resources[0]",
                self.service_arn.as_ref().and_then(Arn::account),
            ),
            (
                "detail.clusterArn",
                self.detail.cluster_arn.as_ref().and_then(Arn::account),
            ),
        ]
    }

    /// The service's name: the last segment of its ARN.
    pub fn service_name(&self) -> Option<&str> {
        self.service_arn.as_ref().map(Arn::last_segment)
    }

    /// The cluster's name: from `detail.clusterArn`, else from a `service/<cluster>/<name>` ARN.
    pub fn cluster_name(&self) -> Option<&str> {
        if let Some(cluster) = &self.detail.cluster_arn {
            return Some(cluster.last_segment());
        }
        let path = self
            .service_arn
            .as_ref()?
            .resource()
            .strip_prefix("service/")?;
        path.split_once('/').map(|(cluster, _)| cluster)
    }

    /// The region: the event's, else the service ARN's.
    pub fn region(&self) -> Option<&str> {
        self.region
            .as_deref()
            .filter(|r| !r.is_empty())
            .or_else(|| self.service_arn.as_ref().and_then(Arn::region))
    }

    /// Whether the event type says something is wrong (`WARN`, `ERROR`).
    pub fn is_warning_or_error(&self) -> bool {
        matches!(self.detail.event_type.as_deref(), Some("WARN" | "ERROR"))
    }

    /// The deployment a rollback returns to: `… rolling back to deploymentId ecs-svc/123.`
    pub fn rolled_back_to(&self) -> Option<&str> {
        let reason = self.detail.reason.as_deref()?;
        let at = reason.find("deploymentId")?;
        reason[at + "deploymentId".len()..]
            .split_whitespace()
            .next()
            .map(|id| id.trim_end_matches(['.', ',', ')']))
            .filter(|id| !id.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(detail: serde_json::Value) -> serde_json::Value {
        json!({"version": "0", "id": "e-1", "detail-type": SERVICE_ACTION, "source": "aws.ecs",
            "account": "111122223333", "time": "2026-09-14T12:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:ecs:us-east-1:111122223333:service/shop/orders-api"], "detail": detail})
    }

    #[test]
    fn names_come_from_the_arns() {
        let parsed = parse_service_event(
            &event(json!({"eventName": "SERVICE_STEADY_STATE"})),
            SERVICE_ACTION,
        )
        .unwrap();
        assert_eq!(
            (parsed.cluster_name(), parsed.service_name()),
            (Some("shop"), Some("orders-api"))
        );
        assert_eq!(parsed.region(), Some("us-east-1"));
        let mut old_arn =
            event(json!({"eventName": "X", "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/prod"}));
        old_arn["resources"] = json!(["arn:aws:ecs:us-east-1:1:service/orders-api"]);
        let parsed = parse_service_event(&old_arn, SERVICE_ACTION).unwrap();
        assert_eq!(
            (parsed.cluster_name(), parsed.service_name()),
            (Some("prod"), Some("orders-api"))
        );
    }

    #[test]
    fn a_missing_or_mistyped_event_name_is_named() {
        for detail in [json!({}), json!({"eventName": ""}), json!({"eventName": 7})] {
            let error = parse_service_event(&event(detail), SERVICE_ACTION).unwrap_err();
            assert!(error.to_string().contains("detail.eventName"), "{error}");
        }
        let error = parse_service_event(
            &event(json!({"eventName": "X", "reasons": "RESOURCE:CPU"})),
            SERVICE_ACTION,
        )
        .unwrap_err();
        assert!(error.to_string().contains("detail.reasons"), "{error}");
    }

    #[test]
    fn the_rollback_target_is_read_from_the_reason() {
        let mut e = parse_service_event(&event(json!({"eventName": "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "reason": "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/6629184995452776901."})), DEPLOYMENT_STATE_CHANGE).unwrap();
        assert_eq!(e.rolled_back_to(), Some("ecs-svc/6629184995452776901"));
        e.detail.reason = Some("ECS deployment ecs-svc/1 in progress.".into());
        assert_eq!(e.rolled_back_to(), None);
    }
}
