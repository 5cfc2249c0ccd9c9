//! Enrichment of a task-stop notification: the service's state and the failed container's log
//! tail, read through the ECS and Logs ports at once. A failed read becomes a line saying what
//! could not be read; it never blocks the notification.

use super::Ports;
use crate::events::ecs::{TaskGroup, TaskStateChange};
use crate::triage::report::Enrichment;
use crate::triage::Diagnosis;

/// Service context and log tail of `change` (up to `log_lines` lines).
pub async fn enrich(
    ports: &Ports,
    change: &TaskStateChange,
    diagnosis: &Diagnosis,
    log_lines: u32,
) -> Enrichment {
    let mut enrichment = Enrichment::default();
    let task = &change.detail;
    let service = async {
        let (Some(cluster), Some(TaskGroup::Service(name))) =
            (task.cluster_arn.as_deref(), task.task_group())
        else {
            return Ok(None);
        };
        ports.services.describe_service(cluster, &name).await
    };
    let log_tail = async {
        let (Some(container), Some(definition), Some(task_id)) = (
            diagnosis.container.as_deref(),
            task.task_definition_arn.as_deref(),
            task.task_id(),
        ) else {
            return Ok(None);
        };
        if log_lines == 0 {
            return Ok(None);
        }
        let Some(target) = ports
            .inspector
            .awslogs_target(definition, container)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Err(format!("container {container} does not log with awslogs"));
        };
        let Some(stream) = target.stream_for(container, task_id) else {
            return Err(format!(
                "container {container} has no awslogs-stream-prefix, so its stream cannot be named"
            ));
        };
        let lines = ports
            .logs
            .tail(&target.group, &stream, log_lines)
            .await
            .map_err(|e| e.to_string());
        Ok(Some((target, stream, lines)))
    };
    let (service, log_tail) = tokio::join!(service, log_tail);
    match service {
        Ok(snapshot) => enrichment.service = snapshot,
        Err(error) => enrichment
            .missing
            .push(format!("service context could not be fetched: {error}")),
    }
    match log_tail {
        Ok(Some((target, stream, lines))) => {
            match lines {
                Ok(lines) => enrichment.log_tail = lines,
                Err(error) => enrichment
                    .missing
                    .push(format!("log tail could not be fetched: {error}")),
            }
            enrichment.log_target = Some(target);
            enrichment.log_stream = Some(stream);
        }
        Ok(None) => {}
        Err(error) => enrichment
            .missing
            .push(format!("log tail could not be fetched: {error}")),
    }
    enrichment
}
