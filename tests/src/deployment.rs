//! The failed-deployment scene, for the demo and the local-cloud test: a deployment of
//! `orders-api:18` whose tasks crash at start (injected stops), then ECS's
//! SERVICE_TASK_START_IMPAIRED, SERVICE_DEPLOYMENT_FAILED, the rollback's IN_PROGRESS and
//! SERVICE_STEADY_STATE, one at a time. ECS's side of it (the deployments, the stopped tasks,
//! the task definition) is staged on the stack's proxy: without Docker the local cloud starts
//! every task and never fails a deployment.

use std::time::Duration;

use serde_json::{json, Value};

use crate::proxy::Staged;
use crate::{crash_of, LocalCloud, Received, Result, TriageStack, LOG_GROUP};

/// The revision that fails and the one ECS rolls back to.
pub const FAILED_REVISION: &str = "orders-api:18";
pub const ROLLED_BACK_TO: &str = "orders-api:17";
/// How many tasks of the failed revision crash.
pub const CRASHES: usize = 3;
const FAILED_DEPLOYMENT: &str = "ecs-svc/1800000000000000018";
const ROLLBACK_DEPLOYMENT: &str = "ecs-svc/1900000000000000019";
/// What the crashing tasks printed before they exited.
pub const CRASH_LOG_LINES: [&str; 3] = [
    "INFO  orders-api 1.9.0 starting",
    "INFO  loading configuration from environment",
    "ERROR missing required setting ORDERS_DB_URL; exiting with status 1",
];

fn task_id(i: usize) -> String {
    format!("c0de18{i:026x}")
}

/// The stop event of the `i`th crashed task of the failed revision.
fn crash_stop(stack: &TriageStack, i: usize) -> Result<Value> {
    let mut event = crash_of(stack, &task_id(i))?;
    event["id"] = format!("d18-stop-{i}").into();
    let detail = &mut event["detail"];
    let image = &mut detail["containers"][0]["image"];
    *image = image
        .as_str()
        .unwrap_or_default()
        .replace("orders-api:1.8.2", "orders-api:1.9.0")
        .into();
    detail["taskDefinitionArn"] = definition_arn(&stack.account, FAILED_REVISION).into();
    detail["startedBy"] = FAILED_DEPLOYMENT.into();
    Ok(event)
}

fn definition_arn(account: &str, revision: &str) -> String {
    format!("arn:aws:ecs:us-east-1:{account}:task-definition/{revision}")
}

/// An ECS task as DescribeTasks returns it: the event's detail without its timestamps (the API
/// gives epoch seconds, the event ISO text).
fn as_described(detail: &Value) -> Value {
    let mut task = detail.clone();
    if let Some(fields) = task.as_object_mut() {
        fields.retain(|key, _| !key.ends_with("At"));
    }
    task
}

/// A service event fixture under a fresh event id for this scene.
fn service_event(stack: &TriageStack, name: &str) -> Result<Value> {
    let mut event = stack.fixture(&format!("service/{name}"))?;
    event["id"] = format!("d18-{name}").into();
    Ok(event)
}

/// Stages ECS's view of the failed deployment on the proxy and seeds the crashed tasks' logs.
async fn stage(stack: &TriageStack, crashes: &[Value]) -> Result<()> {
    let account = &stack.account;
    let service = json!({
        "serviceArn": format!("arn:aws:ecs:us-east-1:{account}:service/shop/orders-api"),
        "serviceName": "orders-api",
        "clusterArn": format!("arn:aws:ecs:us-east-1:{account}:cluster/shop"),
        "status": "ACTIVE",
        "desiredCount": 3,
        "runningCount": 3,
        "pendingCount": 0,
        "launchType": "FARGATE",
        "taskDefinition": definition_arn(account, ROLLED_BACK_TO),
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": true, "rollback": true},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100
        },
        "deployments": [
            {
                "id": ROLLBACK_DEPLOYMENT,
                "status": "PRIMARY",
                "taskDefinition": definition_arn(account, ROLLED_BACK_TO),
                "desiredCount": 3, "runningCount": 3, "pendingCount": 0, "failedTasks": 0,
                "rolloutState": "IN_PROGRESS",
                "rolloutStateReason": "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1700000000000000017."
            },
            {
                "id": FAILED_DEPLOYMENT,
                "status": "ACTIVE",
                "taskDefinition": definition_arn(account, FAILED_REVISION),
                "desiredCount": 0, "runningCount": 0, "pendingCount": 0,
                "failedTasks": CRASHES,
                "rolloutState": "FAILED",
                "rolloutStateReason": "ECS deployment circuit breaker: task failed to start."
            }
        ],
        "events": []
    });
    let tasks: Vec<Value> = crashes.iter().map(|e| as_described(&e["detail"])).collect();
    let task_arns: Vec<Value> = tasks.iter().map(|t| t["taskArn"].clone()).collect();
    let staged = [
        (
            "DescribeServices",
            "orders-api",
            json!({"services": [service], "failures": []}),
        ),
        ("ListTasks", "STOPPED", json!({"taskArns": task_arns})),
        (
            "DescribeTasks",
            "c0de18",
            json!({"tasks": tasks, "failures": []}),
        ),
        (
            "DescribeTaskDefinition",
            FAILED_REVISION,
            json!({"taskDefinition": {
                "taskDefinitionArn": definition_arn(account, FAILED_REVISION),
                "family": "orders-api",
                "revision": 18,
                "containerDefinitions": [{
                    "name": "orders-api",
                    "image": format!("{account}.dkr.ecr.us-east-1.amazonaws.com/orders-api:1.9.0"),
                    "essential": true,
                    "logConfiguration": {"logDriver": "awslogs", "options": {
                        "awslogs-group": LOG_GROUP,
                        "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "ecs"
                    }}
                }]
            }}),
        ),
    ];
    for (operation, body_contains, body) in staged {
        stack.proxy.stage(Staged {
            operation: operation.into(),
            body_contains: body_contains.into(),
            status: 200,
            body,
        });
    }
    for i in 0..crashes.len() {
        stack
            .write_log(&format!("ecs/orders-api/{}", task_id(i)), &CRASH_LOG_LINES)
            .await?;
    }
    Ok(())
}

/// Runs the scene and returns the notifications in the order they arrived: the crash that
/// opens (or updates) the service's incident, then start-impaired, deployment-failed, rollback
/// and the resolution. `show` is told what each step sends.
pub async fn failed_deployment(
    cloud: &LocalCloud,
    stack: &TriageStack,
    show: &mut dyn FnMut(&str),
) -> Result<Vec<Received>> {
    let crashes: Vec<Value> = (0..CRASHES)
        .map(|i| crash_stop(stack, i))
        .collect::<Result<_>>()?;
    stage(stack, &crashes).await?;
    let mut received = Vec::new();
    let steps: [(&str, Vec<Value>); 5] = [
        (
            "orders-api:18 rolls out; its tasks exit with status 1 at start (ORDERS_DB_URL missing)",
            crashes,
        ),
        (
            "ECS: SERVICE_TASK_START_IMPAIRED",
            vec![service_event(stack, "start-impaired")?],
        ),
        (
            "ECS: SERVICE_DEPLOYMENT_FAILED (circuit breaker)",
            vec![service_event(stack, "deployment-failed")?],
        ),
        (
            "ECS: SERVICE_DEPLOYMENT_IN_PROGRESS, rolling back to orders-api:17",
            vec![service_event(stack, "deployment-rollback")?],
        ),
        (
            "ECS: SERVICE_STEADY_STATE on orders-api:17",
            vec![service_event(stack, "steady-state")?],
        ),
    ];
    for (what, events) in steps {
        show(what);
        stack.put_events(&events).await?;
        // Each step notifies once (the first crash; the other crashes fold into the
        // incident): what the function says it published, once it has handled them all.
        received.extend(stack.published(cloud, Duration::from_secs(60)).await?);
    }
    stack.proxy.clear();
    Ok(received)
}
