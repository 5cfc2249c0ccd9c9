//! The notifications of `alarm-scaler` (pure): an alarm's change or a refusal that matters (what
//! the alarm said, the metric value, desired from → to, the step and the clamp); a target
//! policy's change on the tick (each signal's reading and recommendation, what bounded it); a
//! signal whose reads fail for good, and its recovery.

use crate::arn::last_segment;
use crate::domain::Source;
use serde_json::json;

use super::target::{Fallback, ReadingEvent, SignalPart};
use super::tick::TickDecision;
use super::{Action, Refusal, ScalingDecision, Trigger};
use crate::domain::Severity;
use crate::events::alarm::AlarmTransition;
use crate::notify::{links, Link, Notice, NoticeCategory, NoticeKind, Section};

/// The service a decision is about.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    pub region: Option<&'a str>,
}

/// Builds the notice; `would` marks a policy in `dry_run` (nothing was changed).
pub fn scaling_notice(
    alarm: &AlarmTransition,
    trigger: Trigger,
    target: Target<'_>,
    decision: &ScalingDecision,
    would: bool,
) -> Notice {
    let cluster = last_segment(target.cluster);
    let service = last_segment(target.service);
    let (kind, severity, title) = match decision.action {
        Action::ScaleOut | Action::ScaleIn => {
            let verb = match (decision.action, would) {
                (Action::ScaleOut, false) => "scaled out",
                (Action::ScaleOut, true) => "would scale out (dry run)",
                (_, false) => "scaled in",
                (_, true) => "would scale in (dry run)",
            };
            (
                NoticeKind::Scaled { dry_run: would },
                Severity::Info,
                format!(
                    "{verb} {} -> {} ({} {})",
                    decision.from,
                    decision.to,
                    alarm.alarm_name,
                    alarm.state.as_str()
                ),
            )
        }
        Action::None | Action::Ignored => (
            NoticeKind::ScalingRefused,
            Severity::Warning,
            format!("not scaled: {} ({})", decision.reason, alarm.alarm_name),
        ),
    };
    let mut facts = vec![
        ("Alarm".to_owned(), alarm.alarm_name.clone()),
        (
            "State".to_owned(),
            match alarm.previous_state {
                Some(previous) => format!("{} -> {}", previous.as_str(), alarm.state.as_str()),
                None => alarm.state.as_str().to_owned(),
            },
        ),
        (
            "Trigger".to_owned(),
            match trigger {
                Trigger::Transition => "alarm state change".to_owned(),
                Trigger::Tick => "still in ALARM (periodic re-check)".to_owned(),
            },
        ),
        (
            "Metric value".to_owned(),
            alarm
                .metric_value
                .map_or("not in the event".to_owned(), |v| v.to_string()),
        ),
    ];
    if let Some(threshold) = alarm.threshold {
        facts.push(("Threshold".to_owned(), threshold.to_string()));
    }
    facts.push(("Service".to_owned(), format!("{cluster}/{service}")));
    facts.push((
        "Desired".to_owned(),
        format!("{} -> {}", decision.from, decision.to),
    ));
    if let Some(step) = &decision.step {
        let bound = |b: Option<f64>, open: &str| b.map_or(open.to_owned(), |v| v.to_string());
        facts.push((
            "Step".to_owned(),
            format!(
                "#{} [{}, {}] {} {:+}{}",
                step.index,
                bound(step.lower, "-inf"),
                bound(step.upper, "+inf"),
                step.adjustment_type.as_str(),
                step.adjustment,
                if step.assumed_at_threshold {
                    " (no metric value: step at the threshold)"
                } else {
                    ""
                }
            ),
        ));
    }
    if let Some(clamp) = decision.clamped_by {
        facts.push(("Clamped by".to_owned(), clamp.as_str().to_owned()));
    }
    let mut links = service_links(target, cluster, service);
    if let Some(region) = target.region {
        links.extend(Link::console(
            "Alarm",
            links::alarm_url(region, &alarm.alarm_name),
        ));
    }
    let mut sections = Vec::new();
    if let Some(reason) = &alarm.reason {
        sections.push(Section {
            heading: "Alarm reason".into(),
            lines: vec![reason.clone()],
        });
    }
    let advice: &[&str] = match decision.refusal {
        Some(Refusal::AtMax) => &[
            "Raise the policy's max (and the scalable target's MaxCapacity, if one is registered) if the service needs more tasks.",
            "Check why demand stays above the threshold: a stuck consumer or a slow downstream dependency.",
        ],
        Some(Refusal::BoundsConflict) => &[
            "Make the policy's [min, max] overlap the scalable target's MinCapacity/MaxCapacity (RegisterScalableTarget).",
        ],
        Some(Refusal::NoStepCovers) => &[
            "Add a step whose range covers this metric value (steps are relative to the threshold and must leave no gap).",
        ],
        _ => &[],
    };
    if !advice.is_empty() {
        sections.push(Section {
            heading: "What to do".into(),
            lines: advice.iter().map(|line| (*line).to_owned()).collect(),
        });
    }
    Notice {
        job: None,
        source: Source::Scaler,
        kind,
        severity,
        category: NoticeCategory::Scaling,
        title,
        summary: decision.reason.clone(),
        region: target.region.map(str::to_owned),
        cluster: Some(cluster.to_owned()),
        service: Some(service.to_owned()),
        facts,
        sections,
        log_heading: None,
        log_tail: Vec::new(),
        links,
        details: json!({
            "alarm": alarm.alarm_name,
            "state": alarm.state,
            "trigger": trigger,
            "metric_value": alarm.metric_value,
            "threshold": alarm.threshold,
            "decision": decision,
            "dry_run": would,
        }),
        thread_id: format!("alarm-scaler/{cluster}/{service}"),
        incident: None,
    }
}

fn service_links(target: Target<'_>, cluster: &str, service: &str) -> Vec<Link> {
    target
        .region
        .into_iter()
        .flat_map(|region| Link::console("Service", links::service_url(region, cluster, service)))
        .collect()
}

fn signal_line(part: &SignalPart) -> String {
    let value = part.value.map_or("not read".to_owned(), |v| v.to_string());
    let recommends = part
        .recommendation
        .map_or("nothing".to_owned(), |r| match r {
            1 => "1 task".to_owned(),
            r => format!("{r} tasks"),
        });
    format!(
        "{} ({}): {value} → recommends {recommends}: {}",
        part.name, part.kind, part.why
    )
}

/// A service the tick changed (or, with `would`, would have) from its target policies' signals.
pub fn tick_notice(target: Target<'_>, decided: &TickDecision, would: bool) -> Notice {
    let (cluster, service) = (last_segment(target.cluster), last_segment(target.service));
    let d = &decided.decision;
    let verb = match (decided.action, would) {
        (Action::ScaleOut, false) => "scaled out",
        (Action::ScaleOut, true) => "would scale out (dry run)",
        (_, false) => "scaled in",
        (_, true) => "would scale in (dry run)",
    };
    let by = d.decided_by.as_deref().unwrap_or("its bounds");
    let mut facts = vec![
        ("Service".to_owned(), format!("{cluster}/{service}")),
        (
            "Desired".to_owned(),
            format!("{} -> {}", d.desired_from, d.desired_to),
        ),
        ("Decided by".to_owned(), by.to_owned()),
        (
            "Bounds".to_owned(),
            format!("[{}, {}]", decided.limits.min, decided.limits.max),
        ),
    ];
    if let Some(bounded) = &d.bounded_by {
        facts.push(("Bounded by".to_owned(), bounded.describe()));
    }
    Notice {
        job: None,
        source: Source::Scaler,
        kind: NoticeKind::Scaled { dry_run: would },
        severity: Severity::Info,
        category: NoticeCategory::Scaling,
        title: format!("{verb} {} -> {} ({by})", d.desired_from, d.desired_to),
        summary: d.reason.clone(),
        region: target.region.map(str::to_owned),
        cluster: Some(cluster.to_owned()),
        service: Some(service.to_owned()),
        facts,
        sections: vec![Section {
            heading: "Signals".into(),
            lines: decided.signals.iter().map(signal_line).collect(),
        }],
        log_heading: None,
        log_tail: Vec::new(),
        links: service_links(target, cluster, service),
        details: json!({
            "decision": d,
            "signals": decided.signals,
            "dry_run": would,
        }),
        thread_id: format!("alarm-scaler/{cluster}/{service}"),
        incident: None,
    }
}

/// A target's signal whose reads have failed `fallback_after` times in a row (its `fallback`
/// now applies), or that is read again after that.
pub fn signal_notice(target: Target<'_>, event: &ReadingEvent, fallback: Fallback) -> Notice {
    let (cluster, service) = (last_segment(target.cluster), last_segment(target.service));
    let fallback = match fallback {
        Fallback::Hold => "the service's count is held".to_owned(),
        Fallback::Count(n) => format!("the service goes to {n} tasks"),
    };
    let (severity, title, summary, advice) = match event {
        ReadingEvent::FallingBack { target: name, reason } => (
            Severity::Warning,
            format!("cannot read the signal of {name}: {fallback}"),
            format!("{name}: {reason}"),
            vec![
                "Check that the queue or metric exists and that the scaler's role (or the member's scale role) may read it.".to_owned(),
                "Until a read succeeds the service is not sized by this signal.".to_owned(),
            ],
        ),
        ReadingEvent::Recovered { target: name } => (
            Severity::Info,
            format!("the signal of {name} is read again"),
            format!("{name} is read again: it sizes the service from this tick"),
            Vec::new(),
        ),
    };
    let sections = match advice.is_empty() {
        true => Vec::new(),
        false => vec![Section {
            heading: "What to do".into(),
            lines: advice,
        }],
    };
    Notice {
        job: None,
        source: Source::Scaler,
        kind: NoticeKind::ScalingSignal,
        severity,
        category: NoticeCategory::Scaling,
        title,
        summary,
        region: target.region.map(str::to_owned),
        cluster: Some(cluster.to_owned()),
        service: Some(service.to_owned()),
        facts: vec![("Service".to_owned(), format!("{cluster}/{service}"))],
        sections,
        log_heading: None,
        log_tail: Vec::new(),
        links: service_links(target, cluster, service),
        details: json!({ "event": event }),
        thread_id: format!("alarm-scaler/{cluster}/{service}"),
        incident: None,
    }
}
