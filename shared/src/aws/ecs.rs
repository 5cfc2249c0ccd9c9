//! ECS adapter: the service context and awslogs settings used to enrich a notification.

use aws_sdk_ecs::types::LogDriver;
use serde::Serialize;

use super::aws_error;
use crate::error::Result;

/// What a notification says about the service a task belonged to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ServiceSnapshot {
    pub status: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// Rollout state of the primary deployment (`IN_PROGRESS`, `COMPLETED`, `FAILED`).
    pub rollout_state: Option<String>,
    /// Whether the deployment circuit breaker is on, and with rollback.
    pub circuit_breaker: Option<bool>,
    pub circuit_breaker_rollback: Option<bool>,
    pub deployments: usize,
}

/// Where a container's awslogs output goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsLogsTarget {
    pub group: String,
    pub stream_prefix: Option<String>,
    pub region: Option<String>,
}

impl AwsLogsTarget {
    /// The stream of one task's container: `prefix/container/task-id`.
    pub fn stream_for(&self, container: &str, task_id: &str) -> Option<String> {
        self.stream_prefix
            .as_ref()
            .map(|prefix| format!("{prefix}/{container}/{task_id}"))
    }
}

/// DescribeServices for one service.
pub async fn describe_service(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<Option<ServiceSnapshot>> {
    let output = client
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|e| aws_error("ecs", "DescribeServices", e))?;
    let Some(found) = output.services().first() else {
        return Ok(None);
    };
    let primary = found
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    let breaker = found
        .deployment_configuration()
        .and_then(|c| c.deployment_circuit_breaker());
    Ok(Some(ServiceSnapshot {
        status: found.status().map(str::to_owned),
        desired: found.desired_count(),
        running: found.running_count(),
        pending: found.pending_count(),
        rollout_state: primary
            .and_then(|d| d.rollout_state())
            .map(|s| s.as_str().to_owned()),
        circuit_breaker: breaker.map(|b| b.enable()),
        circuit_breaker_rollback: breaker.map(|b| b.rollback()),
        deployments: found.deployments().len(),
    }))
}

/// The awslogs target of `container` in a task definition, if it logs with awslogs.
pub async fn awslogs_target(
    client: &aws_sdk_ecs::Client,
    task_definition: &str,
    container: &str,
) -> Result<Option<AwsLogsTarget>> {
    let output = client
        .describe_task_definition()
        .task_definition(task_definition)
        .send()
        .await
        .map_err(|e| aws_error("ecs", "DescribeTaskDefinition", e))?;
    let definition = output.task_definition().and_then(|td| {
        td.container_definitions()
            .iter()
            .find(|c| c.name() == Some(container))
    });
    let Some(log) = definition.and_then(|c| c.log_configuration()) else {
        return Ok(None);
    };
    if log.log_driver() != &LogDriver::Awslogs {
        return Ok(None);
    }
    let options = log.options();
    let option = |key: &str| options.and_then(|o| o.get(key)).cloned();
    Ok(option("awslogs-group").map(|group| AwsLogsTarget {
        group,
        stream_prefix: option("awslogs-stream-prefix"),
        region: option("awslogs-region"),
    }))
}

/// Sets a service's desired count, and nothing else.
pub async fn set_desired_count(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    desired: u32,
) -> Result<()> {
    client
        .update_service()
        .cluster(cluster)
        .service(service)
        .desired_count(desired.min(i32::MAX as u32) as i32)
        .send()
        .await
        .map_err(|e| aws_error("ecs", "UpdateService", e))?;
    Ok(())
}
