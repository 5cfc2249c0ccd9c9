//! ECS adapter: the [`ServiceReader`] (service context, awslogs settings and stopped tasks that
//! enrich a notification), [`ServiceScaler`] (the desired count `alarm-scaler` sets) and
//! [`TaskRunner`] (the RunTask/ListTasks/DescribeTasks/StopTask calls of `batch-runner`) and
//! [`TagReader`] (the tags routing rules match on) ports.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ecs::types::LogDriver;

use super::{aws_error, AwsClients};
use crate::arn::Arn;
use crate::batch::{RunFailure, RunTaskRequest, RunTaskResult, RunningTask};
use crate::domain::{AwsLogsTarget, DeploymentSnapshot, ServiceSnapshot};
use crate::error::Result;
use crate::events::ecs::{Container, StopCode, TaskDetail};
use crate::ports::{
    ServiceReader, ServiceScaler, TagReader, TaskInspector, TaskLister, TaskRunner,
};

#[async_trait]
impl TagReader for AwsClients {
    /// ListTagsForResource of a service or task ARN.
    async fn resource_tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let output = self
            .ecs()
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| aws_error("ecs", "ListTagsForResource", e))?;
        Ok(output
            .tags()
            .iter()
            .filter_map(|tag| Some((tag.key()?.to_owned(), tag.value()?.to_owned())))
            .collect())
    }
}

#[async_trait]
impl ServiceReader for AwsClients {
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ServiceSnapshot>> {
        describe_service(self.ecs(), cluster, service).await
    }

    async fn list_services(&self, cluster: &str, limit: u32) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut next: Option<String> = None;
        while (names.len() as u32) < limit {
            let output = self
                .ecs()
                .list_services()
                .cluster(cluster)
                .max_results(100)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| aws_error("ecs", "ListServices", e))?;
            names.extend(
                output
                    .service_arns()
                    .iter()
                    .map(|arn| crate::arn::last_segment(arn).to_owned()),
            );
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
        names.truncate(limit as usize);
        Ok(names)
    }

    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceSnapshot)>> {
        let output = self
            .ecs()
            .describe_services()
            .cluster(cluster)
            .set_services(Some(services.iter().take(10).cloned().collect()))
            .send()
            .await
            .map_err(|e| aws_error("ecs", "DescribeServices", e))?;
        Ok(output
            .services()
            .iter()
            .map(|found| {
                (
                    found.service_name().unwrap_or_default().to_owned(),
                    snapshot(found),
                )
            })
            .collect())
    }
}

#[async_trait]
impl TaskInspector for AwsClients {
    async fn awslogs_target(
        &self,
        task_definition: &str,
        container: &str,
    ) -> Result<Option<AwsLogsTarget>> {
        awslogs_target(self.ecs(), task_definition, container).await
    }

    async fn recent_stopped_tasks(
        &self,
        cluster: &str,
        service: &str,
        limit: u32,
    ) -> Result<Vec<TaskDetail>> {
        recent_stopped_tasks(self.ecs(), cluster, service, limit).await
    }

    async fn service_tasks(
        &self,
        cluster: &str,
        service: &str,
        limit: u32,
    ) -> Result<Vec<TaskDetail>> {
        service_tasks(
            self.ecs(),
            cluster,
            service,
            aws_sdk_ecs::types::DesiredStatus::Running,
            limit,
        )
        .await
    }
}

#[async_trait]
impl ServiceScaler for AwsClients {
    async fn set_desired_count(&self, cluster: &str, service: &str, desired: u32) -> Result<()> {
        set_desired_count(self.ecs(), cluster, service, desired).await
    }
}

#[async_trait]
impl TaskLister for AwsClients {
    async fn tasks_started_by(&self, cluster: &str, started_by: &str) -> Result<Vec<String>> {
        tasks_started_by(self.ecs(), cluster, started_by).await
    }
    async fn task_start_times(&self, cluster: &str, arns: &[String]) -> Result<Vec<RunningTask>> {
        task_start_times(self.ecs(), cluster, arns).await
    }
}

#[async_trait]
impl TaskRunner for AwsClients {
    async fn run_task(&self, request: &RunTaskRequest) -> Result<RunTaskResult> {
        run_task(self.ecs(), request).await
    }

    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<()> {
        stop_task(self.ecs(), cluster, task_arn, reason).await
    }
}

/// The service's most recently stopped tasks, newest first.
async fn recent_stopped_tasks(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    limit: u32,
) -> Result<Vec<TaskDetail>> {
    let status = aws_sdk_ecs::types::DesiredStatus::Stopped;
    let mut tasks = service_tasks(client, cluster, service, status, limit).await?;
    tasks.sort_by_key(|task| std::cmp::Reverse(task.stopped_at));
    Ok(tasks)
}

/// ListTasks (the service's tasks of one desired status, one page of at most `limit`) and
/// DescribeTasks.
async fn service_tasks(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    status: aws_sdk_ecs::types::DesiredStatus,
    limit: u32,
) -> Result<Vec<TaskDetail>> {
    let listed = client
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(status)
        .max_results(limit.clamp(1, 100) as i32)
        .send()
        .await
        .map_err(|e| aws_error("ecs", "ListTasks", e))?;
    if listed.task_arns().is_empty() {
        return Ok(Vec::new());
    }
    let output = client
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(listed.task_arns().to_vec()))
        .send()
        .await
        .map_err(|e| aws_error("ecs", "DescribeTasks", e))?;
    Ok(output.tasks().iter().map(task_detail).collect())
}

fn timestamp(at: Option<&aws_smithy_types::DateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    at.and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// A described task in the shape of a task state change's `detail`, so the same classifier
/// diagnoses it.
fn task_detail(task: &aws_sdk_ecs::types::Task) -> TaskDetail {
    let text = |value: Option<&str>| value.map(str::to_owned);
    let arn = |value: Option<&str>| value.and_then(|text| Arn::parse(text).ok());
    TaskDetail {
        task_arn: arn(task.task_arn()),
        cluster_arn: arn(task.cluster_arn()),
        task_definition_arn: arn(task.task_definition_arn()),
        group: text(task.group()),
        started_by: text(task.started_by()),
        last_status: text(task.last_status()),
        desired_status: text(task.desired_status()),
        stop_code: task
            .stop_code()
            .map(|code| StopCode::from(code.as_str().to_owned())),
        stopped_reason: text(task.stopped_reason()),
        launch_type: task.launch_type().map(|l| l.as_str().to_owned()),
        capacity_provider_name: text(task.capacity_provider_name()),
        availability_zone: text(task.availability_zone()),
        containers: task
            .containers()
            .iter()
            .map(|c| Container {
                name: text(c.name()),
                image: text(c.image()),
                last_status: text(c.last_status()),
                exit_code: c.exit_code().map(i64::from),
                reason: text(c.reason()),
                health_status: c.health_status().map(|h| h.as_str().to_owned()),
            })
            .collect(),
        created_at: timestamp(task.created_at()),
        started_at: timestamp(task.started_at()),
        stopping_at: timestamp(task.stopping_at()),
        stopped_at: timestamp(task.stopped_at()),
        version: u64::try_from(task.version()).ok(),
    }
}

/// DescribeServices for one service.
async fn describe_service(
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
    Ok(output.services().first().map(snapshot))
}

/// A described service as the library's snapshot.
fn snapshot(found: &aws_sdk_ecs::types::Service) -> ServiceSnapshot {
    let primary = found
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    let breaker = found
        .deployment_configuration()
        .and_then(|c| c.deployment_circuit_breaker());
    ServiceSnapshot {
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
        deployment_list: found
            .deployments()
            .iter()
            .map(|d| DeploymentSnapshot {
                id: d.id().unwrap_or_default().to_owned(),
                status: d.status().map(str::to_owned),
                task_definition: d.task_definition().map(str::to_owned),
                rollout_state: d.rollout_state().map(|s| s.as_str().to_owned()),
                rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
                running: d.running_count(),
                desired: d.desired_count(),
                failed_tasks: d.failed_tasks(),
            })
            .collect(),
    }
}

/// The awslogs target of `container` in a task definition, if it logs with awslogs.
async fn awslogs_target(
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
async fn set_desired_count(
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

/// Sends one RunTask call built by [`crate::batch::run_task_request`].
async fn run_task(client: &aws_sdk_ecs::Client, request: &RunTaskRequest) -> Result<RunTaskResult> {
    use aws_sdk_ecs::types::{
        AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride,
        KeyValuePair, LaunchType, NetworkConfiguration, PropagateTags, Tag, TaskOverride,
    };
    let mut call = client
        .run_task()
        .cluster(&request.cluster)
        .task_definition(&request.task_definition)
        .count(request.count as i32)
        .started_by(&request.started_by)
        .client_token(&request.client_token);
    if let Some(launch_type) = request.launch_type {
        call = call.launch_type(LaunchType::from(launch_type));
    }
    for item in &request.capacity_provider_strategy {
        let mut strategy =
            CapacityProviderStrategyItem::builder().capacity_provider(&item.capacity_provider);
        if let Some(weight) = item.weight {
            strategy = strategy.weight(weight as i32);
        }
        if let Some(base) = item.base {
            strategy = strategy.base(base as i32);
        }
        call = call.capacity_provider_strategy(strategy.build().map_err(|e| {
            crate::error::AutopilotError::invalid_config(
                "capacity_provider_strategy",
                e.to_string(),
            )
        })?);
    }
    if let Some(network) = &request.network {
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(network.subnets.clone()))
            .set_security_groups(Some(network.security_groups.clone()))
            .assign_public_ip(if network.assign_public_ip {
                AssignPublicIp::Enabled
            } else {
                AssignPublicIp::Disabled
            })
            .build()
            .map_err(|e| crate::error::AutopilotError::invalid_config("network", e.to_string()))?;
        call = call.network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        );
    }
    if !request.overrides.is_empty() {
        let mut overrides = TaskOverride::builder();
        for container in &request.overrides {
            let mut item = ContainerOverride::builder()
                .name(&container.name)
                .set_command(container.command.clone());
            for (name, value) in &container.environment {
                item = item.environment(KeyValuePair::builder().name(name).value(value).build());
            }
            if let Some(cpu) = container.cpu {
                item = item.cpu(cpu as i32);
            }
            if let Some(memory) = container.memory {
                item = item.memory(memory as i32);
            }
            overrides = overrides.container_overrides(item.build());
        }
        call = call.overrides(overrides.build());
    }
    for (key, value) in &request.tags {
        call = call.tags(Tag::builder().key(key).value(value).build());
    }
    if let Some(propagate) = request.propagate_tags {
        call = call.propagate_tags(PropagateTags::from(propagate));
    }
    let output = call
        .send()
        .await
        .map_err(|e| aws_error("ecs", "RunTask", e))?;
    Ok(RunTaskResult {
        tasks: output
            .tasks()
            .iter()
            .filter_map(|t| t.task_arn().map(str::to_owned))
            .collect(),
        failures: output
            .failures()
            .iter()
            .map(|f| RunFailure {
                arn: f.arn().map(str::to_owned),
                reason: f.reason().unwrap_or("unknown").to_owned(),
                detail: f.detail().map(str::to_owned),
            })
            .collect(),
    })
}

/// Tasks started with `started_by` that are running or about to (ListTasks, all pages).
async fn tasks_started_by(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    started_by: &str,
) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let output = client
            .list_tasks()
            .cluster(cluster)
            .started_by(started_by)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| aws_error("ecs", "ListTasks", e))?;
        arns.extend(output.task_arns().iter().cloned());
        match output.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => return Ok(arns),
        }
    }
}

/// When each task started (DescribeTasks, 100 per call).
async fn task_start_times(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<RunningTask>> {
    let mut tasks = Vec::new();
    for chunk in arns.chunks(100) {
        let output = client
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| aws_error("ecs", "DescribeTasks", e))?;
        tasks.extend(output.tasks().iter().filter_map(|task| {
            Some(RunningTask {
                task_arn: task.task_arn()?.to_owned(),
                started_at: task.started_at().or(task.created_at()).map(|t| t.secs()),
            })
        }));
    }
    Ok(tasks)
}

/// Stops one task with a reason ECS shows as its stoppedReason.
async fn stop_task(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    task_arn: &str,
    reason: &str,
) -> Result<()> {
    client
        .stop_task()
        .cluster(cluster)
        .task(task_arn)
        .reason(reason)
        .send()
        .await
        .map_err(|e| aws_error("ecs", "StopTask", e))?;
    Ok(())
}
