//! Diagnosis of ECS service events (pure): `detail.eventName` decides the category; placement
//! and configuration failures are explained from their reasons with the [`SERVICE_REASON_RULES`]
//! table, as task stops are from theirs. An unseen reason keeps its raw text as evidence.
//!
//! | eventName | category | default |
//! |---|---|---|
//! | SERVICE_DEPLOYMENT_FAILED | deployment-failed | notify, critical |
//! | SERVICE_DEPLOYMENT_IN_PROGRESS that rolls back | rollback | notify, warning |
//! | other SERVICE_DEPLOYMENT_IN_PROGRESS, SERVICE_DEPLOYMENT_COMPLETED | deployment-progress | silent |
//! | SERVICE_TASK_START_IMPAIRED | start-impaired | notify, critical |
//! | SERVICE_TASK_PLACEMENT_FAILURE | placement-failure | notify, critical |
//! | SERVICE_TASK_CONFIGURATION_FAILURE | configuration-failure | notify, critical |
//! | ECS_OPERATION_THROTTLED, SERVICE_DISCOVERY_OPERATION_THROTTLED | throttled | notify, warning |
//! | SERVICE_DISCOVERY_INSTANCE_UNHEALTHY, VPC_LATTICE_TARGET_UNHEALTHY | unhealthy-targets | notify, warning |
//! | SERVICE_DAEMON_PLACEMENT_CONSTRAINT_VIOLATED | daemon-placement | notify, warning |
//! | SERVICE_HEALTH_UNKNOWN | unknown | notify, warning |
//! | SERVICE_STEADY_STATE, TASKSET_STEADY_STATE, CAPACITY_PROVIDER_STEADY_STATE | steady-state | silent |
//! | SERVICE_DESIRED_COUNT_UPDATED / TASKS_STOPPED | desired-count / tasks-stopped | silent |
//! | any other | unknown | notify (warning) when `eventType` is WARN or ERROR, else silent |

use super::rules::Rule;
use super::{Category, Diagnosis};
use crate::domain::Severity;
use crate::events::service::ServiceEvent;

/// What one event name means: its category, a title and what to do.
struct EventRule {
    names: &'static [&'static str],
    category: Category,
    title: &'static str,
    remediation: &'static [&'static str],
}

static EVENT_RULES: &[EventRule] = &[
    EventRule {
        names: &["SERVICE_DEPLOYMENT_FAILED"],
        category: Category::DeploymentFailed,
        title: "deployment failed",
        remediation: &[
            "Read the stopped tasks of the new deployment below: their diagnosis is why the circuit breaker (or a deployment alarm) tripped.",
            "Fix the task definition or image, then deploy again; the service keeps running the revision it rolled back to, if rollback is on.",
        ],
    },
    EventRule {
        names: &["SERVICE_TASK_START_IMPAIRED"],
        category: Category::StartImpaired,
        title: "tasks cannot start consistently",
        remediation: &[
            "The service keeps launching tasks that stop before they are healthy; the stopped tasks below say why.",
            "Check the image, secrets, health check grace period and that the tasks can reach their dependencies.",
        ],
    },
    EventRule {
        names: &["SERVICE_TASK_PLACEMENT_FAILURE"],
        category: Category::PlacementFailure,
        title: "tasks cannot be placed",
        remediation: &["ECS could not find room for the service's tasks; see the reasons below."],
    },
    EventRule {
        names: &["SERVICE_TASK_CONFIGURATION_FAILURE"],
        category: Category::ConfigurationFailure,
        title: "tasks cannot be launched as configured",
        remediation: &["ECS rejected the service's task configuration before placing it; see the reason below."],
    },
    EventRule {
        names: &["ECS_OPERATION_THROTTLED", "SERVICE_DISCOVERY_OPERATION_THROTTLED"],
        category: Category::Throttled,
        title: "ECS or Cloud Map throttled the service's operations",
        remediation: &[
            "Too many API calls in this account and Region: spread deployments out, or ask for a quota increase.",
        ],
    },
    EventRule {
        names: &["SERVICE_DISCOVERY_INSTANCE_UNHEALTHY", "VPC_LATTICE_TARGET_UNHEALTHY"],
        category: Category::UnhealthyTargets,
        title: "registered targets are unhealthy",
        remediation: &[
            "Tasks are registered but fail their Cloud Map / VPC Lattice health checks: check the health check path and port, and security groups.",
        ],
    },
    EventRule {
        names: &["SERVICE_DAEMON_PLACEMENT_CONSTRAINT_VIOLATED"],
        category: Category::DaemonPlacement,
        title: "daemon tasks violate their placement constraints",
        remediation: &["A daemon task runs on an instance its constraints no longer allow: check instance attributes and the constraints."],
    },
    EventRule {
        names: &["SERVICE_HEALTH_UNKNOWN"],
        category: Category::Unknown,
        title: "service health is unknown",
        remediation: &["ECS could not determine the service's health; look at the service's events in the console."],
    },
    EventRule {
        names: &["SERVICE_STEADY_STATE", "TASKSET_STEADY_STATE", "CAPACITY_PROVIDER_STEADY_STATE"],
        category: Category::SteadyState,
        title: "reached a steady state",
        remediation: &[],
    },
    EventRule {
        names: &["SERVICE_DESIRED_COUNT_UPDATED"],
        category: Category::DesiredCount,
        title: "desired count updated by the scheduler",
        remediation: &[],
    },
    EventRule {
        names: &["TASKS_STOPPED"],
        category: Category::TasksStopped,
        title: "the service stopped running tasks",
        remediation: &[],
    },
    EventRule {
        names: &["SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_COMPLETED"],
        category: Category::DeploymentProgress,
        title: "deployment progress",
        remediation: &[],
    },
];

/// Placement and configuration failure reasons, most specific first (lower-case phrases).
pub static SERVICE_REASON_RULES: &[Rule] = &[
    Rule {
        id: "placement-memory",
        category: Category::PlacementFailure,
        when: &[&["resource:memory"]],
        title: "no container instance has enough free memory",
        remediation: &[
            "Add capacity: let the capacity provider's managed scaling (or the Auto Scaling group) grow, or use larger instances.",
            "Or lower the task's memory reservation; check that no placement constraint rules out the instances that have room.",
        ],
        example: "RESOURCE:MEMORY",
    },
    Rule {
        id: "placement-cpu",
        category: Category::PlacementFailure,
        when: &[&["resource:cpu"]],
        title: "no container instance has enough free CPU",
        remediation: &["Add capacity or larger instances, or lower the task's CPU units."],
        example: "RESOURCE:CPU",
    },
    Rule {
        id: "placement-eni",
        category: Category::PlacementFailure,
        when: &[&["resource:eni"]],
        title: "no container instance has a free network interface (awsvpc)",
        remediation: &[
            "Each awsvpc task needs an ENI: turn on ENI trunking (awsvpcTrunking) or use instance types with more ENIs.",
        ],
        example: "RESOURCE:ENI",
    },
    Rule {
        id: "placement-ports",
        category: Category::PlacementFailure,
        when: &[&["resource:ports"]],
        title: "the host port is already taken on every instance",
        remediation: &["Use dynamic host ports (hostPort 0) or the awsvpc network mode, or add instances."],
        example: "RESOURCE:PORTS_TCP",
    },
    Rule {
        id: "placement-gpu",
        category: Category::PlacementFailure,
        when: &[&["resource:gpu"]],
        title: "no container instance has a free GPU",
        remediation: &["Add GPU instances to the capacity provider, or lower the task's GPU count."],
        example: "RESOURCE:GPU",
    },
    Rule {
        id: "placement-attribute",
        category: Category::PlacementFailure,
        when: &[&["attribute"], &["memberof"], &["placement constraint"]],
        title: "no container instance matches the placement constraints or required attributes",
        remediation: &[
            "Compare the task's requirements (cpu architecture, platform, constraints such as memberOf) with the instances' attributes.",
        ],
        example: "ATTRIBUTE",
    },
    Rule {
        id: "placement-no-instances",
        category: Category::PlacementFailure,
        when: &[&["no container instances"], &["capacity provider", "no capacity"]],
        title: "the capacity provider has no container instances",
        remediation: &[
            "Turn on managed scaling for the capacity provider (or raise the Auto Scaling group's minimum) so instances exist to place on.",
        ],
        example: "No Container Instances were found in your capacity provider",
    },
    Rule {
        id: "placement-fargate-capacity",
        category: Category::PlacementFailure,
        when: &[&["capacity is unavailable"], &["insufficient capacity"]],
        title: "Fargate (Spot) has no capacity right now",
        remediation: &[
            "Add a FARGATE entry (with weight or base) beside FARGATE_SPOT in the capacity provider strategy, or more subnets in other Availability Zones.",
        ],
        example: "Capacity is unavailable at this time. Please try again later or in a different availability zone",
    },
    Rule {
        id: "configuration-role",
        category: Category::ConfigurationFailure,
        when: &[&["unable to assume"], &["assume role"], &["not authorized to perform"], &["accessdenied"]],
        title: "a role cannot be assumed or lacks a permission",
        remediation: &[
            "Check the trust policy of the task and execution roles (ecs-tasks.amazonaws.com) and that the caller may iam:PassRole them.",
        ],
        example: "ECS was unable to assume the role 'arn:aws:iam::111122223333:role/orders-task' that was provided for this task.",
    },
    Rule {
        id: "configuration-arn",
        category: Category::ConfigurationFailure,
        when: &[&["invalid arn"], &["malformed"], &["arn", "invalid"]],
        title: "an ARN in the configuration is malformed",
        remediation: &["Check the ARNs in the task definition (roles, secrets, log group) and in the service (target groups)."],
        example: "Invalid ARN: arn:aws:secretsmanager:us-east-1:111122223333:secret is malformed",
    },
    Rule {
        id: "configuration-network",
        category: Category::ConfigurationFailure,
        when: &[&["subnet", "not"], &["security group", "not"]],
        title: "a subnet or security group of the service does not exist",
        remediation: &["Update the service's network configuration to subnets and security groups that exist in its VPC."],
        example: "The subnet ID 'subnet-0123' does not exist",
    },
];

fn lookup(name: &str) -> Option<&'static EventRule> {
    EVENT_RULES.iter().find(|rule| rule.names.contains(&name))
}

/// Whether a deployment-in-progress reason says the deployment is rolling back (the circuit
/// breaker's or a deployment alarm's wording, with or without a final period).
pub fn is_rollback(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    lower.contains("rolling back") || (lower.contains("rollback") && lower.contains("deploymentid"))
}

/// The first service-reason rule that matches `reason`.
pub fn match_service_reason(reason: &str) -> Option<&'static Rule> {
    let lower = reason.to_ascii_lowercase();
    SERVICE_REASON_RULES
        .iter()
        .find(|rule| rule.matches(&lower))
}

/// Diagnoses one service event (before configured overrides).
pub fn classify_service_event(event: &ServiceEvent) -> Diagnosis {
    let detail = &event.detail;
    let name = detail.event_name.as_str();
    let reasons: Vec<&str> = detail
        .reason
        .iter()
        .map(String::as_str)
        .chain(detail.reasons.iter().map(String::as_str))
        .collect();
    let rollback =
        name == "SERVICE_DEPLOYMENT_IN_PROGRESS" && reasons.iter().any(|r| is_rollback(r));
    let (category, title, mut remediation, rule) = match (rollback, lookup(name)) {
        (true, _) => (
            Category::Rollback,
            "deployment is rolling back",
            vec!["The new deployment failed its circuit breaker or alarms and ECS is returning to the last completed one; the stopped tasks below say why.".to_owned()],
            "event:rollback".to_owned(),
        ),
        (false, Some(found)) => (found.category, found.title, found.remediation.iter().map(|s| (*s).to_owned()).collect(), format!("event:{name}")),
        (false, None) => (Category::Unknown, "unrecognised service event", Vec::new(), "event:unknown".to_owned()),
    };
    let (mut notify, mut severity) = category.default_policy();
    if category == Category::Unknown && lookup(name).is_none() {
        notify = event.is_warning_or_error();
        severity = if notify {
            Severity::Warning
        } else {
            Severity::Info
        };
    }
    let mut evidence = vec![format!("eventName: {name}")];
    evidence.extend(
        detail
            .event_type
            .as_ref()
            .map(|t| format!("eventType: {t}")),
    );
    evidence.extend(
        detail
            .deployment_id
            .as_ref()
            .map(|d| format!("deploymentId: {d}")),
    );
    let mut explained = Vec::new();
    for reason in &reasons {
        evidence.push(format!("reason: {reason}"));
        if matches!(
            category,
            Category::PlacementFailure | Category::ConfigurationFailure
        ) {
            match match_service_reason(reason) {
                Some(rule) => explained.push(rule),
                None => evidence.push(format!(
                    "unrecognised reason, shown as ECS gave it: {reason}"
                )),
            }
        }
    }
    evidence.extend(
        detail
            .capacity_provider_arns
            .iter()
            .map(|arn| format!("capacity provider: {}", crate::arn::last_segment(arn))),
    );
    for rule in &explained {
        remediation.extend(rule.remediation.iter().map(|s| (*s).to_owned()));
    }
    let title = match explained.first() {
        Some(rule) => format!("{title}: {}", rule.title),
        None => title.to_owned(),
    };
    let service = event.service_name().unwrap_or("the service");
    let cluster = event.cluster_name().unwrap_or("its cluster");
    let summary = match detail.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(reason) => {
            format!("Service {service} in cluster {cluster}: {title}. ECS says: {reason}")
        }
        None => format!("Service {service} in cluster {cluster}: {title}."),
    };
    Diagnosis {
        category,
        severity,
        notify,
        rule: match explained.first() {
            Some(reason) => format!("{rule}/{}", reason.id),
            None => rule,
        },
        title,
        summary,
        container: None,
        exit_code: None,
        evidence,
        remediation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::service::{parse_service_event, DEPLOYMENT_STATE_CHANGE, SERVICE_ACTION};
    use serde_json::json;

    fn event(name: &str, event_type: &str, reason: Option<&str>, reasons: &[&str]) -> ServiceEvent {
        let mut detail = json!({"eventType": event_type, "eventName": name, "reasons": reasons,
            "clusterArn": "arn:aws:ecs:us-east-1:111122223333:cluster/shop"});
        if let Some(reason) = reason {
            detail["reason"] = reason.into();
        }
        let kind = if name.starts_with("SERVICE_DEPLOYMENT") {
            DEPLOYMENT_STATE_CHANGE
        } else {
            SERVICE_ACTION
        };
        let envelope = json!({"id": "e", "detail-type": kind, "region": "us-east-1",
            "resources": ["arn:aws:ecs:us-east-1:111122223333:service/shop/orders-api"], "detail": detail});
        parse_service_event(&envelope, kind).unwrap()
    }

    /// An event name, its type and reason, and the expected (category, notify, severity).
    type Row<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        (Category, bool, Severity),
    );

    fn verdict(name: &str, event_type: &str, reason: Option<&str>) -> (Category, bool, Severity) {
        let d = classify_service_event(&event(name, event_type, reason, &[]));
        (d.category, d.notify, d.severity)
    }

    #[test]
    fn every_row_of_the_table() {
        use Category::*;
        use Severity::*;
        let rows: &[Row] = &[
            ("SERVICE_DEPLOYMENT_FAILED", "ERROR", Some("ECS deployment circuit breaker: task failed to start."), (DeploymentFailed, true, Critical)),
            ("SERVICE_DEPLOYMENT_IN_PROGRESS", "INFO", Some("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/17."), (Rollback, true, Warning)),
            ("SERVICE_DEPLOYMENT_IN_PROGRESS", "INFO", Some("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/17"), (Rollback, true, Warning)),
            ("SERVICE_DEPLOYMENT_IN_PROGRESS", "INFO", Some("ECS deployment alarms: rolling back to deploymentId ecs-svc/17 because alarm(s) orders-5xx were triggered."), (Rollback, true, Warning)),
            ("SERVICE_DEPLOYMENT_IN_PROGRESS", "INFO", Some("ECS deployment ecs-svc/18 in progress."), (DeploymentProgress, false, Info)),
            ("SERVICE_DEPLOYMENT_COMPLETED", "INFO", Some("ECS deployment ecs-svc/18 completed."), (DeploymentProgress, false, Info)),
            ("SERVICE_TASK_START_IMPAIRED", "WARN", None, (StartImpaired, true, Critical)),
            ("SERVICE_TASK_PLACEMENT_FAILURE", "ERROR", None, (PlacementFailure, true, Critical)),
            ("SERVICE_TASK_CONFIGURATION_FAILURE", "ERROR", Some("ECS was unable to assume the role"), (ConfigurationFailure, true, Critical)),
            ("ECS_OPERATION_THROTTLED", "WARN", None, (Throttled, true, Warning)),
            ("SERVICE_DISCOVERY_OPERATION_THROTTLED", "WARN", None, (Throttled, true, Warning)),
            ("SERVICE_DISCOVERY_INSTANCE_UNHEALTHY", "WARN", None, (UnhealthyTargets, true, Warning)),
            ("VPC_LATTICE_TARGET_UNHEALTHY", "WARN", None, (UnhealthyTargets, true, Warning)),
            ("SERVICE_DAEMON_PLACEMENT_CONSTRAINT_VIOLATED", "ERROR", None, (DaemonPlacement, true, Warning)),
            ("SERVICE_HEALTH_UNKNOWN", "WARN", None, (Unknown, true, Warning)),
            ("SERVICE_STEADY_STATE", "INFO", None, (SteadyState, false, Info)),
            ("TASKSET_STEADY_STATE", "INFO", None, (SteadyState, false, Info)),
            ("CAPACITY_PROVIDER_STEADY_STATE", "INFO", None, (SteadyState, false, Info)),
            ("SERVICE_DESIRED_COUNT_UPDATED", "INFO", None, (DesiredCount, false, Info)),
            ("TASKS_STOPPED", "INFO", None, (TasksStopped, false, Info)),
            ("SOMETHING_NEW", "WARN", None, (Unknown, true, Warning)),
            ("SOMETHING_NEW", "ERROR", None, (Unknown, true, Warning)),
            ("SOMETHING_NEW", "INFO", None, (Unknown, false, Info)),
        ];
        for (name, event_type, reason, expected) in rows {
            assert_eq!(
                &verdict(name, event_type, *reason),
                expected,
                "{name} {event_type} {reason:?}"
            );
        }
    }

    #[test]
    fn every_reason_rule_classifies_its_own_example() {
        for rule in SERVICE_REASON_RULES {
            let found = match_service_reason(rule.example).map(|r| r.id);
            assert_eq!(
                found,
                Some(rule.id),
                "example of {} is taken by {found:?}",
                rule.id
            );
        }
    }

    #[test]
    fn placement_reasons_are_explained_and_unseen_ones_kept() {
        let memory = classify_service_event(&event(
            "SERVICE_TASK_PLACEMENT_FAILURE",
            "ERROR",
            None,
            &["RESOURCE:MEMORY"],
        ));
        assert_eq!(
            memory.rule,
            "event:SERVICE_TASK_PLACEMENT_FAILURE/placement-memory"
        );
        assert!(
            memory.title.contains("enough free memory"),
            "{}",
            memory.title
        );
        assert!(
            memory
                .remediation
                .iter()
                .any(|r| r.contains("managed scaling")),
            "{:?}",
            memory.remediation
        );
        let odd = classify_service_event(&event(
            "SERVICE_TASK_PLACEMENT_FAILURE",
            "ERROR",
            None,
            &["RESOURCE:QUANTUM"],
        ));
        assert!(
            odd.evidence
                .iter()
                .any(|e| e == "unrecognised reason, shown as ECS gave it: RESOURCE:QUANTUM"),
            "{:?}",
            odd.evidence
        );
        let role = classify_service_event(&event(
            "SERVICE_TASK_CONFIGURATION_FAILURE",
            "ERROR",
            Some("ECS was unable to assume the role 'arn:aws:iam::1:role/x'"),
            &[],
        ));
        assert_eq!(
            role.rule,
            "event:SERVICE_TASK_CONFIGURATION_FAILURE/configuration-role"
        );
        assert!(
            role.summary.contains("orders-api") && role.summary.contains("shop"),
            "{}",
            role.summary
        );
    }
}
