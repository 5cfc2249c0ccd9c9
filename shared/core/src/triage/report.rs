//! Turning a diagnosis (and what enrichment found) into a [`Notice`]: the task notification and
//! the storm digest. Pure: the handler fetches, this module words.

use serde_json::json;

use crate::arn::Arn;
use crate::domain::Source;
use crate::domain::{AwsLogsTarget, ServiceSnapshot};
use crate::events::ecs::{TaskDetail, TaskGroup, TaskStateChange};
use crate::notify::{links, Link, Notice, NoticeCategory, NoticeKind, Section};
use crate::state::{span_text, StormWindow};
use crate::triage::Diagnosis;

/// What enrichment found (or could not find) about a stopped task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enrichment {
    pub service: Option<ServiceSnapshot>,
    pub log_target: Option<AwsLogsTarget>,
    pub log_stream: Option<String>,
    pub log_tail: Vec<String>,
    /// What could not be fetched, worded for the reader.
    pub missing: Vec<String>,
}

/// The region of an event: its `region`, else the one in the task ARN.
pub fn region_of(change: &TaskStateChange) -> Option<String> {
    change
        .region
        .clone()
        .or_else(|| {
            change
                .detail
                .task_arn
                .as_ref()
                .and_then(Arn::region)
                .map(str::to_owned)
        })
        .filter(|r| !r.is_empty())
}

/// A human name for what ran the task: `service orders-api`, `job invoice-export`.
pub fn owner_of(task: &TaskDetail) -> String {
    match task.task_group() {
        Some(TaskGroup::Service(name)) => format!("service {name}"),
        Some(TaskGroup::Family(family)) => format!("task family {family}"),
        Some(TaskGroup::Other(group)) => group,
        None => "task".to_owned(),
    }
}

fn headline(diagnosis: &Diagnosis) -> String {
    match &diagnosis.container {
        Some(container) => format!("container {container} {}", diagnosis.title),
        None => {
            let mut title = diagnosis.title.clone();
            if let Some(first) = title.get(..1) {
                title.replace_range(..1, &first.to_ascii_uppercase());
            }
            title
        }
    }
}

fn service_fact(snapshot: &ServiceSnapshot) -> String {
    let mut text = snapshot.counts_text();
    match (snapshot.circuit_breaker, snapshot.circuit_breaker_rollback) {
        (Some(true), Some(true)) => text.push_str(", circuit breaker on (rollback)"),
        (Some(true), _) => text.push_str(", circuit breaker on"),
        (Some(false), _) => text.push_str(", circuit breaker off"),
        (None, _) => {}
    }
    text
}

fn base_links(region: Option<&str>, task: &TaskDetail, enrichment: &Enrichment) -> Vec<Link> {
    let Some(region) = region else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |label: &str, url: Option<String>| out.extend(Link::console(label, url));
    if let (Some(cluster), Some(task_id)) = (task.cluster_name(), task.task_id()) {
        push("Task", links::task_url(region, cluster, task_id));
        if let Some(service) = task.task_group().as_ref().and_then(TaskGroup::service) {
            push("Service", links::service_url(region, cluster, service));
        }
    }
    if let (Some(target), Some(stream)) = (&enrichment.log_target, &enrichment.log_stream) {
        let log_region = target.region.as_deref().unwrap_or(region);
        push(
            "Logs",
            links::log_stream_url(log_region, &target.group, stream),
        );
    }
    out
}

fn task_facts(
    task: &TaskDetail,
    diagnosis: &Diagnosis,
    enrichment: &Enrichment,
) -> Vec<(String, String)> {
    let mut facts = Vec::new();
    let mut push = |key: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            facts.push((key.to_owned(), value));
        }
    };
    push("Cluster", task.cluster_name().map(str::to_owned));
    // Many accounts forward to one stack: say whose task it was.
    push(
        "Account",
        task.task_arn
            .as_ref()
            .and_then(Arn::account)
            .map(str::to_owned),
    );
    match task.task_group() {
        Some(TaskGroup::Service(name)) => {
            let context = enrichment.service.as_ref().map(service_fact);
            push(
                "Service",
                Some(match context {
                    Some(context) => format!("{name} ({context})"),
                    None => name,
                }),
            );
        }
        Some(TaskGroup::Family(family)) => push("Family", Some(family)),
        _ => {}
    }
    push("Task", task.task_id().map(str::to_owned));
    push("Task definition", task.task_definition().map(str::to_owned));
    // The log configuration's region is the task definition's text: no link to a host it names.
    let log_region = enrichment
        .log_target
        .as_ref()
        .and_then(|t| t.region.as_deref());
    push(
        "Logs link",
        log_region
            .filter(|region| links::console_region(region).is_none())
            .map(|region| {
                format!(
                    "left out: awslogs-region `{}` is not an AWS region",
                    crate::domain::clip(region, 64)
                )
            }),
    );
    push(
        "Container",
        diagnosis
            .container
            .as_ref()
            .map(|c| match diagnosis.exit_code {
                Some(code) => format!("{c} (exit code {code})"),
                None => c.clone(),
            }),
    );
    push(
        "Category",
        Some(format!("{} (rule {})", diagnosis.category, diagnosis.rule)),
    );
    push(
        "Stop code",
        task.stop_code.as_ref().map(ToString::to_string),
    );
    push(
        "Launch",
        task.capacity_provider_name
            .clone()
            .or_else(|| task.launch_type.clone()),
    );
    push("Started by", task.started_by.clone());
    push("Stopped at", task.stopped_at.map(|t| t.to_rfc3339()));
    facts
}

fn thread_id(task: &TaskDetail, diagnosis: &Diagnosis) -> String {
    format!(
        "{}/{}/{}",
        task.cluster_name().unwrap_or("-"),
        task.group.as_deref().unwrap_or("-"),
        diagnosis.category
    )
}

/// What to do about a diagnosis, and its evidence: the two sections every diagnosis notice
/// carries.
pub fn advice_sections(diagnosis: &Diagnosis) -> Vec<Section> {
    vec![
        Section {
            heading: "What to do".into(),
            lines: diagnosis.remediation.clone(),
        },
        Section {
            heading: "Evidence".into(),
            lines: diagnosis.evidence.clone(),
        },
    ]
}

/// The notification for one stopped task.
pub fn task_notice(
    change: &TaskStateChange,
    diagnosis: &Diagnosis,
    enrichment: &Enrichment,
    previous_storm: Option<u64>,
) -> Notice {
    let task = &change.detail;
    let region = region_of(change);
    let mut sections = advice_sections(diagnosis);
    let mut notes = enrichment.missing.clone();
    if let Some(count) = previous_storm {
        notes.push(format!(
            "The previous storm window for this group and category ended with {count} stops."
        ));
    }
    if !notes.is_empty() {
        sections.push(Section {
            heading: "Notes".into(),
            lines: notes,
        });
    }
    let log_heading = match (
        &diagnosis.container,
        &enrichment.log_target,
        &enrichment.log_stream,
    ) {
        (Some(container), Some(target), Some(stream)) => Some(format!(
            "Last {} log lines of {container} ({} / {stream})",
            enrichment.log_tail.len(),
            target.group
        )),
        _ => None,
    };
    Notice {
        job: None,
        source: Source::Triage,
        kind: NoticeKind::TaskStopped,
        severity: diagnosis.severity,
        category: NoticeCategory::Diagnosed(diagnosis.category),
        title: headline(diagnosis),
        summary: diagnosis.summary.clone(),
        region: region.clone(),
        cluster: task.cluster_name().map(str::to_owned),
        service: task
            .task_group()
            .as_ref()
            .and_then(TaskGroup::service)
            .map(str::to_owned),
        facts: task_facts(task, diagnosis, enrichment),
        sections,
        log_heading,
        log_tail: enrichment.log_tail.clone(),
        links: base_links(region.as_deref(), task, enrichment),
        details: json!({
            "event_id": change.id,
            "task_arn": task.task_arn,
            "task_definition_arn": task.task_definition_arn,
            "group": task.group,
            "diagnosis": diagnosis,
            "service_context": enrichment.service,
        }),
        thread_id: thread_id(task, diagnosis),
        incident: None,
    }
}

/// The digest sent when a storm window's count reaches a power of ten.
pub fn storm_notice(
    change: &TaskStateChange,
    diagnosis: &Diagnosis,
    enrichment: &Enrichment,
    window: &StormWindow,
) -> Notice {
    let task = &change.detail;
    let region = region_of(change);
    let span = span_text(window.started_at, window.last_at);
    let owner = owner_of(task);
    let cluster = task.cluster_name().unwrap_or("unknown");
    let started = chrono::DateTime::from_timestamp(window.started_at, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    let summary = format!(
        "{} tasks of {owner} in cluster {cluster} stopped with {} within {span} (window opened {started}). \
         The first stop was notified; this digest goes out at 10, 100, 1000 … stops. Latest: {}",
        window.count,
        diagnosis.category,
        diagnosis.summary
    );
    let mut latest = Vec::new();
    if let Some(reason) = &window.last_reason {
        latest.push(format!("latest reason: {reason}"));
    }
    latest.extend(window.titles.iter().map(|t| format!("seen: {t}")));
    let mut sections = vec![
        Section {
            heading: "Latest reasons".into(),
            lines: latest,
        },
        Section {
            heading: "What to do".into(),
            lines: diagnosis.remediation.clone(),
        },
    ];
    if !enrichment.missing.is_empty() {
        sections.push(Section {
            heading: "Notes".into(),
            lines: enrichment.missing.clone(),
        });
    }
    let mut facts = task_facts(task, diagnosis, enrichment);
    facts.insert(0, ("Stops in window".into(), window.count.to_string()));
    facts.insert(1, ("Time span".into(), span.clone()));
    Notice {
        job: None,
        source: Source::Triage,
        kind: NoticeKind::StormDigest,
        severity: diagnosis.severity,
        category: NoticeCategory::Diagnosed(diagnosis.category),
        title: format!("{} stops in {span}: {}", window.count, headline(diagnosis)),
        summary,
        region: region.clone(),
        cluster: task.cluster_name().map(str::to_owned),
        service: task
            .task_group()
            .as_ref()
            .and_then(TaskGroup::service)
            .map(str::to_owned),
        facts,
        sections,
        log_heading: diagnosis.container.as_ref().map(|c| {
            format!(
                "Last {} log lines of {c} in the latest task",
                enrichment.log_tail.len()
            )
        }),
        log_tail: enrichment.log_tail.clone(),
        links: base_links(region.as_deref(), task, enrichment),
        details: json!({
            "event_id": change.id,
            "task_arn": task.task_arn,
            "group": task.group,
            "diagnosis": diagnosis,
            "storm": window,
            "service_context": enrichment.service,
        }),
        thread_id: thread_id(task, diagnosis),
        incident: None,
    }
}
