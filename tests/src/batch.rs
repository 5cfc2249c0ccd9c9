//! Local-cloud harness for `batch-runner`: the job task definitions, and `batch-runner` enabled
//! on the deployed [`TriageStack`] (an update of the stack); helpers to invoke it, read a job's tasks, and
//! build the "ECS Task State Change" event ECS would emit when a job task ends (the local cloud
//! runs no containers and emits no `aws.ecs` events, so the stop is injected).

use serde_json::{json, Value};

use crate::{Result, TriageStack, CLUSTER};

/// Jobs of the catalog deployed: one per overlap behaviour, one with a timeout; a job retried
/// on exit 1 and one that runs after it; one with a start deadline.
pub const EXPORT_JOB: &str = "invoice-export";
pub const SYNC_JOB: &str = "ledger-sync";
pub const WARM_JOB: &str = "cache-warm";
pub const EXTRACT_JOB: &str = "extract";
pub const LOAD_JOB: &str = "load";
pub const STUCK_JOB: &str = "stuck";

/// The `jobs` section deployed (also given to `task-triage`: one document for the stack).
pub fn jobs_config() -> Value {
    let job = |family: &str, overlap: &str| {
        json!({
            "cluster": CLUSTER, "task_definition": family, "count": 1,
            "launch_type": "FARGATE",
            "network": {"subnets": ["subnet-0a1b2c3d"], "security_groups": ["sg-0a1b2c3d"]},
            "overrides": [{"name": family, "environment": {"RUN_MODE": "scheduled"}}],
            "tags": {"team": "billing"},
            "overlap": overlap
        })
    };
    let mut warm = job(WARM_JOB, "allow");
    warm["timeout_s"] = json!(1);
    let mut extract = job(EXPORT_JOB, "skip");
    extract["retry"] = json!({"attempts": 1, "on": ["exit:1"], "backoff_s": 1});
    let mut load = job(EXPORT_JOB, "skip");
    load["after"] = json!([EXTRACT_JOB]);
    let mut stuck = job(EXPORT_JOB, "skip");
    stuck["expect"] = json!({"start_deadline_s": 60});
    json!({
        EXPORT_JOB: job(EXPORT_JOB, "skip"),
        SYNC_JOB: job(SYNC_JOB, "replace"),
        WARM_JOB: warm,
        EXTRACT_JOB: extract,
        LOAD_JOB: load,
        STUCK_JOB: stuck,
    })
}

/// The local cloud with the triage stack (whose inbox the runner's notifications reach) and
/// batch-runner deployed with the test catalog; the configuration document both read.
pub async fn runner_stack() -> Result<(crate::LocalCloud, TriageStack, BatchStack, Value)> {
    let cloud = crate::LocalCloud::start().await?;
    let config = json!({"jobs": jobs_config()});
    let triage_zip = crate::bootstrap_zip(&crate::binary("task-triage")?)?;
    let mut triage = TriageStack::deploy(&cloud, triage_zip, &config).await?;
    let zip = crate::bootstrap_zip(&crate::binary("batch-runner")?)?;
    let runner = BatchStack::deploy(&cloud, &mut triage, zip, &config).await?;
    Ok((cloud, triage, runner, config))
}

/// The deployed runner.
pub struct BatchStack {
    /// The deployed batch-runner function's name.
    pub function: String,
    pub ecs: aws_sdk_ecs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub account: String,
}

impl BatchStack {
    /// Registers the jobs' task definitions and deploys the Lambda.
    pub async fn deploy(
        cloud: &crate::LocalCloud,
        triage: &mut TriageStack,
        bootstrap_zip: Vec<u8>,
        config_document: &Value,
    ) -> Result<Self> {
        use aws_sdk_ecs::types::*;
        let ecs = aws_sdk_ecs::Client::new(&cloud.config);
        let lambda = aws_sdk_lambda::Client::new(&cloud.config);
        for family in [EXPORT_JOB, SYNC_JOB, WARM_JOB] {
            sdk!(
                "RegisterTaskDefinition",
                ecs.register_task_definition()
                    .family(family)
                    .network_mode(NetworkMode::Awsvpc)
                    .requires_compatibilities(Compatibility::Fargate)
                    .cpu("256")
                    .memory("512")
                    .container_definitions(
                        ContainerDefinition::builder()
                            .name(family)
                            .image(format!(
                                "111122223333.dkr.ecr.us-east-1.amazonaws.com/{family}:2.1.0"
                            ))
                            .essential(true)
                            .build()
                    )
                    .send()
            )?;
        }
        let account = &triage.account;
        let definitions = [EXPORT_JOB, SYNC_JOB, WARM_JOB]
            .map(|family| format!("arn:aws:ecs:us-east-1:{account}:task-definition/{family}:*"))
            .join(",");
        let function = triage
            .enable(
                cloud,
                "BatchRunnerFunction",
                bootstrap_zip,
                &[
                    ("JobTaskDefinitionArns", definitions),
                    (
                        "JobClusterArns",
                        format!("arn:aws:ecs:us-east-1:{account}:cluster/{CLUSTER}"),
                    ),
                    ("ConfigDocument", config_document.to_string()),
                ],
            )
            .await?;
        Ok(Self {
            function,
            ecs,
            lambda,
            account: triage.account.clone(),
        })
    }

    /// Invokes the function synchronously; an error names the function error.
    pub async fn invoke(&self, payload: &Value) -> Result<Value> {
        crate::invoke_sync(&self.lambda, &self.function, payload).await
    }

    /// Runs `job` as its schedule would at `scheduled_time`.
    pub async fn run(&self, job: &str, scheduled_time: &str) -> Result<Value> {
        self.invoke(&json!({"job": job, "scheduled_time": scheduled_time}))
            .await
    }

    /// The tick, as its schedule sends it.
    pub async fn tick(&self) -> Result<Value> {
        self.invoke(&json!({"tick": true})).await
    }

    /// `batch-runner history [job] --json` run on this machine against the local cloud's
    /// state table (the CLI a person would use), one JSON value per run.
    pub fn history(
        &self,
        cloud: &crate::LocalCloud,
        table: &str,
        config_document: &Value,
        job: Option<&str>,
    ) -> Result<Vec<Value>> {
        let mut args = vec!["history"];
        args.extend(job);
        args.push("--json");
        history_cli(cloud, table, config_document, &args)?
            .lines()
            .map(|line| serde_json::from_str(line).map_err(|e| format!("{line}: {e}")))
            .collect()
    }

    /// `batch-runner history` as a person reads it: the table.
    pub fn history_table(
        &self,
        cloud: &crate::LocalCloud,
        table: &str,
        config_document: &Value,
    ) -> Result<String> {
        history_cli(cloud, table, config_document, &["history"])
    }

    /// Ticks until one starts a retry (a stop event reaches the runner through EventBridge,
    /// asynchronously): that retry's run; an error with the last tick after `timeout`.
    pub async fn next_retry(&self, timeout: std::time::Duration) -> Result<Value> {
        let started = std::time::Instant::now();
        loop {
            let tick = self.tick().await?;
            if let Some(run) = tick["retried"].as_array().and_then(|r| r.first()) {
                return Ok(run.clone());
            }
            if started.elapsed() > timeout {
                return Err(format!("no retry started within {timeout:?}: {tick}"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// Waits until `job` has a running task: its tasks; an error after `timeout`.
    pub async fn started(&self, job: &str, timeout: std::time::Duration) -> Result<Vec<String>> {
        let started = std::time::Instant::now();
        loop {
            let tasks = self.running(job).await?;
            if !tasks.is_empty() {
                return Ok(tasks);
            }
            if started.elapsed() > timeout {
                return Err(format!("{job} did not start within {timeout:?}"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// Running (or pending) tasks started by the runner for `job`.
    pub async fn running(&self, job: &str) -> Result<Vec<String>> {
        let output = sdk!(
            "ListTasks",
            self.ecs
                .list_tasks()
                .cluster(CLUSTER)
                .started_by(autopilot::batch::started_by(job))
                .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
                .send()
        )?;
        Ok(output.task_arns().to_vec())
    }

    /// One task as DescribeTasks shows it.
    pub async fn describe(&self, task_arn: &str) -> Result<aws_sdk_ecs::types::Task> {
        let output = sdk!(
            "DescribeTasks",
            self.ecs
                .describe_tasks()
                .cluster(CLUSTER)
                .tasks(task_arn)
                .send()
        )?;
        output
            .tasks()
            .first()
            .cloned()
            .ok_or_else(|| format!("task {task_arn} not found"))
    }

    /// Stops a task as its container ending would, and returns the "ECS Task State Change"
    /// event ECS would emit, built from DescribeTasks with the container's `exit_code`.
    pub async fn finish(&self, task_arn: &str, exit_code: i32, ran_s: i64) -> Result<Value> {
        sdk!(
            "StopTask",
            self.ecs
                .stop_task()
                .cluster(CLUSTER)
                .task(task_arn)
                .reason("Essential container in task exited")
                .send()
        )?;
        let task = self.describe(task_arn).await?;
        // RunTask without `group` gets `family:<family>` on ECS (the local cloud leaves it empty).
        let group = match task.group() {
            Some(group) if !group.is_empty() => group.to_owned(),
            _ => {
                let family = task
                    .task_definition_arn()
                    .and_then(|arn| arn.rsplit('/').next())
                    .and_then(|name| name.split(':').next())
                    .unwrap_or_default();
                format!("family:{family}")
            }
        };
        let stopped_at = chrono::Utc::now();
        let started_at = stopped_at - chrono::Duration::seconds(ran_s);
        let containers: Vec<Value> = task
            .containers()
            .iter()
            .map(|c| {
                json!({
                    "containerArn": c.container_arn(),
                    "name": c.name(),
                    "lastStatus": "STOPPED",
                    "exitCode": exit_code,
                    "taskArn": task_arn,
                })
            })
            .collect();
        Ok(json!({
            "version": "0",
            "id": format!("finish-{}", task_arn.rsplit('/').next().unwrap_or_default()),
            "detail-type": "ECS Task State Change",
            "source": "aws.ecs",
            "account": self.account,
            "time": stopped_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": "us-east-1",
            "resources": [task_arn],
            "detail": {
                "taskArn": task_arn,
                "clusterArn": task.cluster_arn(),
                "taskDefinitionArn": task.task_definition_arn(),
                "group": group,
                "startedBy": task.started_by(),
                "launchType": "FARGATE",
                "lastStatus": "STOPPED",
                "desiredStatus": "STOPPED",
                "stopCode": "EssentialContainerExited",
                "stoppedReason": "Essential container in task exited",
                "createdAt": started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "startedAt": started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "stoppedAt": stopped_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "containers": containers,
                "version": 5
            }
        }))
    }
}

/// Runs the `batch-runner` binary with `args` against the local cloud's state table; its
/// standard output.
fn history_cli(
    cloud: &crate::LocalCloud,
    table: &str,
    config_document: &Value,
    args: &[&str],
) -> Result<String> {
    let binary = crate::binary("batch-runner")?;
    let output = std::process::Command::new(&binary)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &cloud.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("STATE_TABLE", table)
        .env("AUTOPILOT_CONFIG", config_document.to_string())
        .output()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "batch-runner {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
