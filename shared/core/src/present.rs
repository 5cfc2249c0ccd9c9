//! The CLI for people (pure): what each delivery shows besides where it went
//! ([`Presentation`]), and `--format text`, which turns an answer into what a person would read
//! — the verdict, the route in prose (with `--explain-route`, why each rule did or did not
//! apply) and each notification as rendered, boxed per destination. Each answer type says what it
//! shows through [`Present`]; nothing is read back from its JSON.

use std::fmt::Write;

use crate::batch::outcome::{RunAlerted, RunOutcome, RunnerResponse, TimeoutStop};
use crate::domain::Routed;
use crate::scaling::outcome::{ScalerResponse, ScalingOutcome};
use crate::scaling::tick::ServiceTick;
use crate::triage::outcome::{Decision, TriageOutcome};

/// What the CLI wants to see of each delivery besides where it went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presentation {
    /// Why each rule did or did not apply (`--explain-route`).
    pub explain: bool,
    /// The rendered notification (`--format text`).
    pub render: bool,
    /// Each destination's exact body (`--format payload`).
    pub payload: bool,
}

/// An answer as a person reads it.
pub trait Present {
    fn shown(&self) -> Shown<'_>;
}

/// What a person reads of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown<'a> {
    /// The first line after the label: `notify · oom: killed for memory`, `tick, 2 finding(s)`.
    pub headline: String,
    pub route: Routing<'a>,
    pub notes: &'a [String],
    /// A tick's findings, each shown under its own label.
    pub findings: Vec<Shown<'a>>,
    /// What the answer is about, as `--format payload` names it: `("event_id", …)`,
    /// `("alarm", …)` or `("job", …)`.
    pub about: Option<(&'static str, &'a str)>,
}

/// Where an answer's notification went, as far as a person needs to know.
#[derive(Debug, Clone, PartialEq)]
pub enum Routing<'a> {
    Sent(&'a Routed),
    /// Decisions of this kind (`silent`, `ignored`) are never routed.
    NeverRouted(&'static str),
    /// Something was decided, and there was nothing to tell.
    NothingToTell,
    /// Nothing to say about a route (a redelivery, a folded signal, a tick).
    Unsaid,
}

impl<'a> Shown<'a> {
    /// One decision: its verdict, what it was about (when anything), where it went.
    pub fn decision(
        verdict: &str,
        about: Option<String>,
        route: Routing<'a>,
        notes: &'a [String],
    ) -> Self {
        let about = about
            .filter(|about| !about.is_empty())
            .map(|about| format!(" · {about}"))
            .unwrap_or_default();
        Self {
            headline: format!("{verdict}{about}"),
            route,
            notes,
            findings: Vec::new(),
            about: None,
        }
    }

    /// What a scaler or runner did and why: its route when it has one, else nothing to tell.
    pub fn action(
        verdict: &str,
        reason: &str,
        route: Option<&'a Routed>,
        notes: &'a [String],
    ) -> Self {
        let route = route.map_or(Routing::NothingToTell, Routing::Sent);
        Self::decision(verdict, Some(reason.to_owned()), route, notes)
    }

    /// A tick: what it did in a few words, and each finding.
    pub fn tick(headline: String, findings: Vec<Shown<'a>>, notes: &'a [String]) -> Self {
        Self {
            headline,
            route: Routing::Unsaid,
            notes,
            findings,
            about: None,
        }
    }
}

/// `--format payload`: for each destination of the answer (and of each of a tick's findings),
/// one JSON line with what it is about, the destination and the exact body it would receive.
pub fn payload_lines(answer: &impl Present) -> Vec<String> {
    fn walk(shown: &Shown<'_>, lines: &mut Vec<String>) {
        if let Routing::Sent(routed) = &shown.route {
            let json = |value: serde_json::Value| value.to_string();
            let about = shown
                .about
                .map(|(key, value)| format!("{}:{},", json(key.into()), json(value.into())));
            for payload in &routed.payloads {
                // In this order: what it is about, where it goes, what it receives.
                lines.push(format!(
                    "{{{}\"to\":{},\"body\":{}}}",
                    about.as_deref().unwrap_or_default(),
                    json(payload.to.clone().into()),
                    payload.body
                ));
            }
        }
        for finding in &shown.findings {
            walk(finding, lines);
        }
    }
    let mut lines = Vec::new();
    walk(&answer.shown(), &mut lines);
    lines
}

/// One answer as text for people, ending with a blank line.
pub fn as_text(label: &str, answer: &impl Present) -> String {
    let mut out = String::new();
    shown(&mut out, label, &answer.shown());
    out.push('\n');
    out
}

/// An event that failed, as text for people, ending with a blank line.
pub fn failure_as_text(label: &str, error_type: &str, message: &str) -> String {
    format!("── {label}: failed ({error_type}): {message}\n\n")
}

fn shown(out: &mut String, label: &str, shown: &Shown<'_>) {
    let _ = writeln!(out, "── {label}: {}", shown.headline);
    match &shown.route {
        Routing::Sent(routed) => route(out, routed),
        Routing::NeverRouted(decision) => {
            let _ = writeln!(
                out,
                "   route: none ({decision} decisions are never routed)"
            );
        }
        Routing::NothingToTell => {
            let _ = writeln!(out, "   route: none (nothing to tell)");
        }
        Routing::Unsaid => {}
    }
    for note in shown.notes {
        let _ = writeln!(out, "   note: {note}");
    }
    for (i, finding) in shown.findings.iter().enumerate() {
        self::shown(out, &format!("{label} finding {i}"), finding);
    }
}

fn route(out: &mut String, route: &Routed) {
    if route.muted {
        let _ = writeln!(
            out,
            "   route: muted by {}: sent nowhere, counted in the incident",
            route.by
        );
    } else {
        let _ = writeln!(out, "   route: {} → {}", route.by, route.to.join(", "));
    }
    for (i, reason) in route.why.iter().enumerate() {
        let lead = if i == 0 { "   why:" } else { "       " };
        let _ = writeln!(out, "{lead} {reason}");
    }
    if let Some(rendered) = &route.rendered {
        let to = if route.to.is_empty() {
            "nobody (muted)".to_owned()
        } else {
            route.to.join(", ")
        };
        let _ = writeln!(out, "   ┌─ to {to}");
        for line in rendered.lines() {
            let _ = writeln!(out, "   │ {line}");
        }
        let _ = writeln!(out, "   └─");
    }
}

impl Present for TriageOutcome {
    fn shown(&self) -> Shown<'_> {
        let about = self
            .diagnosis
            .as_ref()
            .map(|d| format!("{}: {}", d.category, d.title));
        let route = match (self.decision, &self.route) {
            (_, Some(routed)) => Routing::Sent(routed),
            (Decision::Silent | Decision::Ignored, None) => {
                Routing::NeverRouted(self.decision.as_str())
            }
            (Decision::Duplicate | Decision::Folded, None) => Routing::Unsaid,
            (Decision::Notify | Decision::Muted, None) => Routing::NothingToTell,
        };
        Shown {
            about: self.event_id.as_deref().map(|id| ("event_id", id)),
            ..Shown::decision(self.decision.as_str(), about, route, &self.notes)
        }
    }
}

impl Present for ScalingOutcome {
    fn shown(&self) -> Shown<'_> {
        Shown {
            about: Some(("alarm", &self.alarm)),
            ..Shown::action(
                self.action.as_str(),
                &self.reason,
                self.route.as_ref(),
                &self.notes,
            )
        }
    }
}

impl Present for ServiceTick {
    fn shown(&self) -> Shown<'_> {
        Shown {
            about: Some(("service", &self.service)),
            ..Shown::action(
                self.action.as_str(),
                &self.reason,
                self.routes.first(),
                &self.notes,
            )
        }
    }
}

impl Present for ScalerResponse {
    fn shown(&self) -> Shown<'_> {
        match self {
            Self::One(outcome) => outcome.shown(),
            Self::Tick {
                results,
                services,
                notes,
                ..
            } => Shown::tick(
                format!(
                    "tick, {} alarm(s) re-read, {} service(s) sized by their signals",
                    results.len(),
                    services.len()
                ),
                results
                    .iter()
                    .map(Present::shown)
                    .chain(services.iter().map(Present::shown))
                    .collect(),
                notes,
            ),
        }
    }
}

impl Present for RunOutcome {
    fn shown(&self) -> Shown<'_> {
        Shown {
            about: Some(("job", &self.job)),
            ..Shown::action(
                self.action.as_str(),
                &self.reason,
                self.route.as_ref(),
                &self.notes,
            )
        }
    }
}

impl Present for TimeoutStop {
    fn shown(&self) -> Shown<'_> {
        // `stopped` is false when the run only looked (`--dry-run`, `--offline`).
        let verdict = if self.stopped {
            "stopped"
        } else {
            "would stop"
        };
        let about = format!(
            "{}: task {} ran {} s, past its timeout",
            self.job, self.task, self.ran_s
        );
        Shown::decision(verdict, Some(about), Routing::Unsaid, &[])
    }
}

impl Present for RunAlerted {
    fn shown(&self) -> Shown<'_> {
        let route = match (&self.route, self.duplicate) {
            (_, true) => Routing::Unsaid,
            (Some(routed), false) => Routing::Sent(routed),
            (None, false) => Routing::NothingToTell,
        };
        Shown {
            about: Some(("job", &self.job)),
            ..Shown::decision(self.alert, Some(self.reason.clone()), route, &[])
        }
    }
}

impl Present for RunnerResponse {
    fn shown(&self) -> Shown<'_> {
        match self {
            Self::Run(outcome) => outcome.shown(),
            Self::Ignored { action, reason, .. } => Shown::decision(
                action,
                Some(reason.clone()),
                Routing::NeverRouted(action),
                &[],
            ),
            Self::Task(followed) => Shown::tick(
                format!(
                    "task {} {}: run {} {}",
                    crate::arn::last_segment(&followed.task),
                    followed.status,
                    followed.run.as_deref().unwrap_or("unknown"),
                    followed.outcome.map_or("not recorded", |o| o.as_str())
                ),
                followed
                    .started
                    .iter()
                    .map(Present::shown)
                    .chain(followed.upstream_failed.iter().map(Present::shown))
                    .collect(),
                &followed.notes,
            ),
            Self::Tick {
                stopped,
                retried,
                alerted,
                notes,
                ..
            } => Shown::tick(
                format!(
                    "tick, {} task(s) past their timeout, {} retr{} started, {} alert(s)",
                    stopped.len(),
                    retried.len(),
                    if retried.len() == 1 { "y" } else { "ies" },
                    alerted.len()
                ),
                stopped
                    .iter()
                    .map(Present::shown)
                    .chain(retried.iter().map(Present::shown))
                    .chain(alerted.iter().map(Present::shown))
                    .collect(),
                notes,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::catalog::JobSpec;
    use crate::domain::{Category, Severity};
    use crate::triage::Diagnosis;

    fn diagnosed(decision: Decision, category: Category, title: &str) -> TriageOutcome {
        let mut outcome = TriageOutcome::silent(Some("e-1".into()), None, None);
        outcome.decision = decision;
        outcome.diagnosis = Some(Diagnosis {
            category,
            severity: Severity::Critical,
            notify: decision == Decision::Notify,
            rule: "test".into(),
            title: title.into(),
            summary: String::new(),
            container: None,
            exit_code: None,
            evidence: Vec::new(),
            remediation: Vec::new(),
        });
        outcome
    }

    fn routed(by: &str, to: &[&str]) -> Routed {
        Routed {
            by: by.into(),
            to: to.iter().map(|to| (*to).to_owned()).collect(),
            muted: false,
            why: Vec::new(),
            rendered: None,
            payloads: Vec::new(),
        }
    }

    #[test]
    fn an_explained_route_reads_as_prose_and_boxes_each_destination() {
        let mut outcome = diagnosed(Decision::Notify, Category::Oom, "killed for memory");
        outcome.route = Some(Routed {
            why: vec![
                "rule 0: no (category oom is not one of rollback)".into(),
                "rule 1 (orders oom): matches (category oom)".into(),
            ],
            rendered: Some("[CRITICAL] shop/orders-api: killed for memory\n\nbody".into()),
            ..routed(
                "rule 1 (orders oom)",
                &["arn:aws:sns:us-east-1:111122223333:payments", "default"],
            )
        });
        outcome.notes = vec!["dry-run: not sent".into()];
        assert_eq!(
            as_text("oom.json", &outcome),
            "── oom.json: notify · oom: killed for memory\n\
             \x20  route: rule 1 (orders oom) → arn:aws:sns:us-east-1:111122223333:payments, default\n\
             \x20  why: rule 0: no (category oom is not one of rollback)\n\
             \x20       rule 1 (orders oom): matches (category oom)\n\
             \x20  ┌─ to arn:aws:sns:us-east-1:111122223333:payments, default\n\
             \x20  │ [CRITICAL] shop/orders-api: killed for memory\n\
             \x20  │ \n\
             \x20  │ body\n\
             \x20  └─\n\
             \x20  note: dry-run: not sent\n\n"
        );
    }

    #[test]
    fn muted_silent_duplicate_and_failed_lines() {
        let mut muted = TriageOutcome::silent(None, None, None);
        muted.decision = Decision::Muted;
        muted.route = Some(Routed {
            muted: true,
            ..routed("rule 0 (maintenance)", &[])
        });
        assert!(as_text("a", &muted).contains("muted by rule 0 (maintenance): sent nowhere"));

        let silent = diagnosed(Decision::Silent, Category::Completed, "exited 0");
        assert_eq!(
            as_text("b", &silent),
            "── b: silent · completed: exited 0\n   route: none (silent decisions are never routed)\n\n"
        );

        let duplicate = TriageOutcome {
            decision: Decision::Duplicate,
            ..TriageOutcome::silent(None, None, None)
        };
        assert_eq!(as_text("d", &duplicate), "── d: duplicate\n\n");

        assert_eq!(
            failure_as_text("c", "InvalidEvent", "invalid event at `detail`: missing"),
            "── c: failed (InvalidEvent): invalid event at `detail`: missing\n\n"
        );
    }

    #[test]
    fn a_run_with_nothing_to_tell_and_a_tick_with_its_findings() {
        let spec: JobSpec = serde_json::from_value(serde_json::json!({
            "cluster": "batch", "task_definition": "nightly:3"
        }))
        .expect("a job");
        let mut started = RunOutcome::new("nightly", "r-1", &spec);
        started.reason = "started 1 of 1 task(s)".into();
        assert_eq!(
            as_text("run", &RunnerResponse::Run(Box::new(started))),
            "── run: started · started 1 of 1 task(s)\n   route: none (nothing to tell)\n\n"
        );

        let tick = RunnerResponse::Tick {
            tick: true,
            stopped: vec![TimeoutStop {
                job: "nightly".into(),
                task: "t-1".into(),
                ran_s: 4000,
                stopped: false,
            }],
            retried: Vec::new(),
            alerted: Vec::new(),
            notes: vec!["dry-run: nothing stopped".into()],
        };
        assert_eq!(
            as_text("tick", &tick),
            "── tick: tick, 1 task(s) past their timeout, 0 retries started, 0 alert(s)\n\
             \x20  note: dry-run: nothing stopped\n\
             ── tick finding 0: would stop · nightly: task t-1 ran 4000 s, past its timeout\n\n"
        );
    }
}
