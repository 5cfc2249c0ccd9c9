//! Turning a service event's diagnosis into a [`Notice`] (pure). A failed deployment, a rollback
//! or tasks that cannot start are joined with what failed: the deployment's task definition, the
//! revision rolled back to, and the diagnosis of the service's recently stopped tasks, e.g.
//! "deployment of orders-api:18 failed: 5 of 5 new tasks: killed for memory (oom) — rolled back
//! to orders-api:17".

use crate::arn::last_segment;
use crate::domain::Source;
use std::collections::BTreeMap;

use serde_json::json;

use super::report::advice_sections;
use super::{Category, Diagnosis};
use crate::domain::ServiceSnapshot;
use crate::events::ecs::TaskDetail;
use crate::events::service::ServiceEvent;
use crate::incident::{Incident, IncidentStatus, IncidentTag};
use crate::notify::{links, Link, Notice, NoticeCategory, NoticeKind, Section};
use crate::state::{span_text, StormWindow};

/// What enrichment found (or could not find) about the service of a service event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceContext {
    pub service: Option<ServiceSnapshot>,
    /// The service's most recently stopped tasks, with their diagnoses.
    pub stopped: Vec<(TaskDetail, Diagnosis)>,
    /// What could not be fetched, worded for the reader.
    pub missing: Vec<String>,
}

/// Whether a category's notification is joined with the deployment and its stopped tasks.
pub fn wants_stopped_tasks(category: Category) -> bool {
    matches!(
        category,
        Category::DeploymentFailed | Category::Rollback | Category::StartImpaired
    )
}

/// The task definition of the deployment that failed (or, for impaired starts, the primary
/// one) and, for a failed deployment or a rollback, the one rolled back to, read from the
/// service's deployments.
pub fn deployment_revisions(
    event: &ServiceEvent,
    category: Category,
    service: Option<&ServiceSnapshot>,
) -> (Option<String>, Option<String>) {
    let Some(service) = service else {
        return (None, None);
    };
    let deployments = &service.deployment_list;
    let definition = |id: &str| {
        service
            .deployment(id)
            .and_then(|d| d.task_definition.clone())
    };
    let primary = |other_than: Option<&String>| {
        deployments
            .iter()
            .find(|d| {
                d.status.as_deref() == Some("PRIMARY") && d.task_definition.as_ref() != other_than
            })
            .and_then(|d| d.task_definition.clone())
    };
    let named_target = event.rolled_back_to().and_then(definition);
    let failed = match event.detail.event_name.as_str() {
        "SERVICE_DEPLOYMENT_FAILED" => event.detail.deployment_id.as_deref().and_then(definition),
        _ => None,
    }
    .or_else(|| {
        deployments
            .iter()
            .find(|d| d.rollout_state.as_deref() == Some("FAILED"))
            .and_then(|d| d.task_definition.clone())
    })
    .or_else(|| primary(named_target.as_ref()));
    let rolled_back_to = match category {
        Category::DeploymentFailed | Category::Rollback => {
            named_target.or_else(|| failed.as_ref().and_then(|f| primary(Some(f))))
        }
        _ => None,
    };
    (failed, rolled_back_to)
}

/// One line saying what failed: the deployment, what its tasks died of, and where it went back.
pub fn failure_summary(
    event: &ServiceEvent,
    diagnosis: &Diagnosis,
    context: &ServiceContext,
) -> Option<String> {
    if !wants_stopped_tasks(diagnosis.category) {
        return None;
    }
    let (failed, rolled_back_to) =
        deployment_revisions(event, diagnosis.category, context.service.as_ref());
    let of_failed: Vec<&(TaskDetail, Diagnosis)> = context
        .stopped
        .iter()
        .filter(|(task, _)| {
            failed.is_none() || task.task_definition_arn.as_deref() == failed.as_deref()
        })
        .collect();
    let mut by_cause: BTreeMap<(Category, &str), usize> = BTreeMap::new();
    for (_, stop) in &of_failed {
        *by_cause
            .entry((stop.category, stop.title.as_str()))
            .or_default() += 1;
    }
    let tasks = match by_cause.iter().max_by_key(|(_, count)| **count) {
        Some(((category, title), count)) => {
            format!(
                "{count} of {} new tasks: {title} ({category})",
                of_failed.len()
            )
        }
        None => "no stopped task of it could be read".to_owned(),
    };
    let what = match diagnosis.category {
        Category::DeploymentFailed => "failed",
        Category::Rollback => "is rolling back",
        _ => "cannot start its tasks",
    };
    let revision = failed.as_deref().map(last_segment).unwrap_or("the service");
    let mut line = format!("deployment of {revision} {what}: {tasks}");
    if let Some(target) = rolled_back_to.as_deref() {
        line.push_str(&format!(" — rolled back to {}", last_segment(target)));
    }
    Some(line)
}

/// The notification for a service event; with `storm`, the digest of a window of them.
pub fn service_notice(
    event: &ServiceEvent,
    diagnosis: &Diagnosis,
    context: &ServiceContext,
    storm: Option<&StormWindow>,
    previous_storm: Option<u64>,
) -> Notice {
    let service = event.service_name().map(str::to_owned);
    let cluster = event.cluster_name().map(str::to_owned);
    let region = event.region().map(str::to_owned);
    let joined = failure_summary(event, diagnosis, context);
    let headline = format!(
        "{}: {}",
        service.as_deref().unwrap_or("service"),
        diagnosis.title
    );
    let title = match (storm, &joined) {
        (Some(window), _) => format!(
            "{} times in {}: {headline}",
            window.count,
            span_text(window.started_at, window.last_at)
        ),
        (None, Some(line)) => line.clone(),
        (None, None) => headline,
    };
    let mut facts = Vec::new();
    if let Some(window) = storm {
        facts.push(("Events in window".to_owned(), window.count.to_string()));
    }
    facts.extend(cluster.clone().map(|c| ("Cluster".to_owned(), c)));
    facts.extend(event.account.clone().map(|a| ("Account".to_owned(), a)));
    let service_line = match (&service, context.service.as_ref()) {
        (Some(name), Some(snapshot)) => Some(format!("{name} ({})", snapshot.counts_text())),
        (name, _) => name.clone(),
    };
    facts.extend(service_line.map(|s| ("Service".to_owned(), s)));
    facts.push(("Event".to_owned(), event.detail.event_name.clone()));
    facts.push((
        "Category".to_owned(),
        format!("{} (rule {})", diagnosis.category, diagnosis.rule),
    ));
    facts.extend(
        event
            .detail
            .deployment_id
            .clone()
            .map(|d| ("Deployment".to_owned(), d)),
    );
    let mut sections = Vec::new();
    if let Some(line) = &joined {
        sections.push(Section {
            heading: "What failed".into(),
            lines: vec![line.clone()],
        });
    }
    if !context.stopped.is_empty() {
        let lines = context
            .stopped
            .iter()
            .map(|(task, stop)| {
                format!(
                    "{} ({}): {}",
                    task.task_id().unwrap_or("?"),
                    task.task_definition().unwrap_or("?"),
                    stop.summary
                )
            })
            .collect();
        sections.push(Section {
            heading: "Recently stopped tasks".into(),
            lines,
        });
    }
    sections.extend(advice_sections(diagnosis));
    let mut notes = context.missing.clone();
    if let Some(count) = previous_storm {
        notes.push(format!(
            "The previous window of these events for this service ended with {count}."
        ));
    }
    if !notes.is_empty() {
        sections.push(Section {
            heading: "Notes".into(),
            lines: notes,
        });
    }
    let links = match (&region, &cluster, &service) {
        (Some(region), Some(cluster), Some(service)) => {
            Link::console("Service", links::service_url(region, cluster, service))
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    };
    Notice {
        job: None,
        source: Source::Triage,
        kind: if storm.is_some() {
            NoticeKind::ServiceEventDigest
        } else {
            NoticeKind::ServiceEvent
        },
        severity: diagnosis.severity,
        category: NoticeCategory::Diagnosed(diagnosis.category),
        title,
        summary: match &joined {
            Some(line) => format!("{} {line}.", diagnosis.summary),
            None => diagnosis.summary.clone(),
        },
        region,
        cluster: cluster.clone(),
        service: service.clone(),
        facts,
        sections,
        log_heading: None,
        log_tail: Vec::new(),
        links,
        details: json!({
            "event_id": event.id,
            "detail_type": event.detail_type,
            "service_arn": event.service_arn,
            "event": event.detail,
            "diagnosis": diagnosis,
            "what_failed": joined,
            "service_context": context.service,
            "storm": storm,
        }),
        thread_id: format!(
            "{}/service:{}/{}",
            cluster.as_deref().unwrap_or("-"),
            service.as_deref().unwrap_or("-"),
            diagnosis.category
        ),
        incident: None,
    }
}

/// The notification of a watchdog finding (a service short of its desired count, tasks stuck
/// before RUNNING); with `storm`, the digest of a window of them.
pub fn watch_notice(
    cluster: &str,
    service: &str,
    diagnosis: &Diagnosis,
    storm: Option<&StormWindow>,
    region: Option<&str>,
) -> Notice {
    let links = region
        .and_then(|region| Link::console("Service", links::service_url(region, cluster, service)))
        .into_iter()
        .collect();
    let mut facts = vec![
        ("Cluster".to_owned(), cluster.to_owned()),
        ("Service".to_owned(), service.to_owned()),
        (
            "Category".to_owned(),
            format!("{} (rule {})", diagnosis.category, diagnosis.rule),
        ),
    ];
    if let Some(window) = storm {
        facts.insert(
            0,
            ("Findings in window".to_owned(), window.count.to_string()),
        );
    }
    Notice {
        job: None,
        source: Source::Triage,
        kind: NoticeKind::Watchdog,
        severity: diagnosis.severity,
        category: NoticeCategory::Diagnosed(diagnosis.category),
        title: diagnosis.title.clone(),
        summary: diagnosis.summary.clone(),
        region: region.map(str::to_owned),
        cluster: Some(cluster.to_owned()),
        service: Some(service.to_owned()),
        facts,
        sections: advice_sections(diagnosis),
        log_heading: None,
        log_tail: Vec::new(),
        links,
        details: json!({"diagnosis": diagnosis, "storm": storm}),
        thread_id: format!("{cluster}/service:{service}/{}", diagnosis.category),
        incident: None,
    }
}

/// The one notification that says a service's incident is over: how long it lasted, what it
/// held and what ended it.
pub fn resolved_notice(incident: &Incident, region: Option<&str>) -> Notice {
    let resolved_at = incident.resolved_at.unwrap_or(incident.last_signal_at);
    let lasted = span_text(incident.opened_at, resolved_at);
    let by = incident.resolved_by.as_deref().unwrap_or("recovery");
    let counts = incident.counts_text();
    let at = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    };
    let mut facts = vec![
        ("Cluster".to_owned(), incident.cluster.clone()),
        ("Service".to_owned(), incident.service.clone()),
        ("Incident".to_owned(), incident.id.clone()),
        ("Duration".to_owned(), lasted.clone()),
        ("Opened".to_owned(), at(incident.opened_at)),
        ("Resolved".to_owned(), at(resolved_at)),
        ("Signals".to_owned(), counts.clone()),
    ];
    let muted = crate::incident::muted_text(incident);
    if let Some(muted) = &muted {
        facts.push(("Muted".to_owned(), muted.clone()));
    }
    facts.push(("Ended by".to_owned(), by.to_owned()));
    let links = region
        .and_then(|region| {
            let url = links::service_url(region, &incident.cluster, &incident.service);
            Link::console("Service", url)
        })
        .into_iter()
        .collect();
    Notice {
        job: None,
        source: Source::Triage,
        kind: NoticeKind::IncidentResolved,
        severity: crate::domain::Severity::Info,
        category: NoticeCategory::Resolved,
        title: format!("resolved after {lasted}: {counts}"),
        summary: format!(
            "The incident of service {} in cluster {} is resolved after {lasted} ({by}). It held {} signal(s): {counts}.{}",
            incident.service,
            incident.cluster,
            incident.signals(),
            muted
                .map(|m| format!(" Muted during a maintenance window: {m} notification(s), sent nowhere until now."))
                .unwrap_or_default()
        ),
        region: region.map(str::to_owned),
        cluster: Some(incident.cluster.clone()),
        service: Some(incident.service.clone()),
        facts,
        sections: vec![Section { heading: "Latest reasons".into(), lines: incident.latest_reasons.clone() }],
        log_heading: None,
        log_tail: Vec::new(),
        links,
        details: json!({"incident": incident}),
        thread_id: format!("{}/service:{}/incident", incident.cluster, incident.service),
        incident: Some(IncidentTag { id: incident.id.clone(), status: IncidentStatus::Resolved }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeploymentSnapshot;
    use crate::events::service::{parse_service_event, DEPLOYMENT_STATE_CHANGE};
    use crate::triage::service::classify_service_event;

    const TD: &str = "arn:aws:ecs:us-east-1:111122223333:task-definition/orders-api";

    fn deployment(id: &str, status: &str, revision: u32, rollout: &str) -> DeploymentSnapshot {
        DeploymentSnapshot {
            id: id.into(),
            status: Some(status.into()),
            task_definition: Some(format!("{TD}:{revision}")),
            rollout_state: Some(rollout.into()),
            ..DeploymentSnapshot::default()
        }
    }

    fn event(name: &str, deployment_id: &str, reason: &str) -> ServiceEvent {
        let envelope = serde_json::json!({"id": "e", "detail-type": DEPLOYMENT_STATE_CHANGE, "region": "us-east-1",
            "resources": ["arn:aws:ecs:us-east-1:111122223333:service/shop/orders-api"],
            "detail": {"eventType": "ERROR", "eventName": name, "deploymentId": deployment_id, "reason": reason}});
        parse_service_event(&envelope, DEPLOYMENT_STATE_CHANGE).unwrap()
    }

    fn oom_task(revision: u32, id: &str) -> (TaskDetail, Diagnosis) {
        let task: TaskDetail = serde_json::from_value(serde_json::json!({
            "taskArn": format!("arn:aws:ecs:us-east-1:111122223333:task/shop/{id}"),
            "taskDefinitionArn": format!("{TD}:{revision}"), "lastStatus": "STOPPED",
            "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
            "containers": [{"name": "orders-api", "exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}]
        }))
        .unwrap();
        let diagnosis = crate::triage::classify(&task);
        (task, diagnosis)
    }

    fn failed_context() -> ServiceContext {
        ServiceContext {
            service: Some(ServiceSnapshot {
                deployment_list: vec![
                    deployment("ecs-svc/19", "PRIMARY", 17, "IN_PROGRESS"),
                    deployment("ecs-svc/18", "ACTIVE", 18, "FAILED"),
                    deployment("ecs-svc/17", "INACTIVE", 17, "COMPLETED"),
                ],
                ..ServiceSnapshot::default()
            }),
            stopped: (0..5)
                .map(|i| oom_task(18, &format!("t{i}")))
                .chain([oom_task(17, "old")])
                .collect(),
            missing: Vec::new(),
        }
    }

    #[test]
    fn a_failed_deployment_names_its_revision_its_tasks_cause_and_the_rollback() {
        let failed = event(
            "SERVICE_DEPLOYMENT_FAILED",
            "ecs-svc/18",
            "ECS deployment circuit breaker: task failed to start.",
        );
        let diagnosis = classify_service_event(&failed);
        let line = failure_summary(&failed, &diagnosis, &failed_context()).unwrap();
        assert!(
            line.starts_with("deployment of orders-api:18 failed: 5 of 5 new tasks: "),
            "{line}"
        );
        assert!(
            line.contains("(oom)") && line.ends_with(" — rolled back to orders-api:17"),
            "{line}"
        );
        let notice = service_notice(&failed, &diagnosis, &failed_context(), None, None);
        assert!(
            notice.title.contains("deployment of orders-api:18 failed"),
            "{}",
            notice.title
        );
        assert_eq!(notice.category.as_str(), "deployment-failed");
    }

    #[test]
    fn a_rollback_reads_its_target_from_the_reason() {
        let rollback = event(
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            "ecs-svc/19",
            "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/17.",
        );
        let diagnosis = classify_service_event(&rollback);
        assert_eq!(diagnosis.category, Category::Rollback);
        let line = failure_summary(&rollback, &diagnosis, &failed_context()).unwrap();
        assert!(
            line.starts_with("deployment of orders-api:18 is rolling back: 5 of 5"),
            "{line}"
        );
        assert!(line.ends_with("rolled back to orders-api:17"), "{line}");
    }

    #[test]
    fn without_context_it_still_says_what_it_can() {
        let failed = event("SERVICE_DEPLOYMENT_FAILED", "ecs-svc/18", "x");
        let diagnosis = classify_service_event(&failed);
        let line = failure_summary(&failed, &diagnosis, &ServiceContext::default()).unwrap();
        assert_eq!(
            line,
            "deployment of the service failed: no stopped task of it could be read"
        );
        let steady = event("SERVICE_STEADY_STATE", "-", "");
        assert_eq!(
            failure_summary(&steady, &classify_service_event(&steady), &failed_context()),
            None
        );
    }
}
