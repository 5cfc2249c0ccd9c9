//! Notifications about batch jobs (pure): a run that was skipped, replaced or failed to start,
//! never started, was upstream-failed or missed (from `batch-runner`), and a job task's
//! completion (from `task-triage`: job name, exit codes, duration, and from the run's record
//! which attempt it was and whether a retry follows).

use crate::arn::last_segment;
use crate::domain::Source;
use serde::Serialize;
use serde_json::json;

use super::missed::Missed;
use super::policy::RetryPolicy;
use super::record::{retry_words, Outcome, RunRecord, TaskStop, Verdict};
use super::{job_of_started_by, FailureClass, JobCatalog, RunFailure};
use crate::domain::Severity;
use crate::events::ecs::TaskStateChange;
use crate::notify::{links, Link, Notice, NoticeCategory, NoticeKind, Section};
use crate::triage::Diagnosis;

/// What `batch-runner` did with a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunAction {
    Started,
    Skipped,
    Replaced,
    Failed,
}

impl RunAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Skipped => "skipped",
            Self::Replaced => "replaced",
            Self::Failed => "failed",
        }
    }
}

/// Why a run started nothing: its previous run is still going.
pub fn skipped_reason(running: usize) -> String {
    format!(
        "{running} task(s) of the previous run are still running (overlap: skip); nothing started"
    )
}

/// Why a redelivered run request does nothing.
pub fn duplicate_reason(run_id: &str, decision: Option<&str>) -> String {
    format!(
        "duplicate delivery of run {run_id}: already handled ({})",
        decision.unwrap_or("unknown")
    )
}

/// What a run that started everything did; `replaced` counts the previous run's stopped tasks.
pub fn started_reason(
    started: usize,
    requested: u32,
    attempts: u32,
    replaced: Option<usize>,
) -> String {
    let mut reason =
        format!("started {started} of {requested} task(s) in {attempts} RunTask attempt(s)");
    if let Some(stopped) = replaced {
        reason.push_str(&format!("; stopped {stopped} task(s) of the previous run"));
    }
    reason
}

/// Why a run failed, after `attempts` calls; `first` is the first failure's reason.
pub fn failed_reason(
    class: FailureClass,
    attempts: u32,
    with_fallback: bool,
    first: &str,
) -> String {
    match class {
        FailureClass::Capacity => format!(
            "capacity unavailable after {attempts} attempt(s){}: {first}",
            if with_fallback {
                " and the fallback strategy"
            } else {
                ""
            }
        ),
        FailureClass::Configuration => {
            format!("RunTask failed for a configuration reason (not retried): {first}")
        }
    }
}

/// The facts of a run a notice is built from.
#[derive(Debug, Clone)]
pub struct RunFacts<'a> {
    pub job: &'a str,
    pub cluster: &'a str,
    pub action: RunAction,
    pub requested: u32,
    pub tasks: &'a [String],
    pub failures: &'a [RunFailure],
    pub failure_class: Option<FailureClass>,
    pub stopped: &'a [String],
    pub attempts: u32,
    pub run_id: &'a str,
    pub reason: &'a str,
    pub region: Option<&'a str>,
}

fn cluster_name(cluster: &str) -> &str {
    last_segment(cluster)
}

/// The notice for a skipped, replaced or failed run.
pub fn run_notice(facts: &RunFacts<'_>) -> Notice {
    let cluster = cluster_name(facts.cluster);
    let (severity, title) = match facts.action {
        RunAction::Failed => (
            Severity::Critical,
            format!(
                "job {} failed to start: {} of {} tasks started",
                facts.job,
                facts.tasks.len(),
                facts.requested
            ),
        ),
        RunAction::Skipped => (
            Severity::Warning,
            format!(
                "job {} skipped: previous run still going ({} tasks)",
                facts.job,
                facts.stopped.len().max(facts.tasks.len())
            ),
        ),
        RunAction::Replaced => (
            Severity::Warning,
            format!(
                "job {} replaced {} running tasks of its previous run",
                facts.job,
                facts.stopped.len()
            ),
        ),
        RunAction::Started => (
            Severity::Info,
            format!("job {} started {} tasks", facts.job, facts.tasks.len()),
        ),
    };
    let mut facts_list = vec![
        ("Job".to_owned(), facts.job.to_owned()),
        ("Cluster".to_owned(), cluster.to_owned()),
        ("Run".to_owned(), facts.run_id.to_owned()),
        (
            "Tasks started".to_owned(),
            format!("{} of {}", facts.tasks.len(), facts.requested),
        ),
        ("RunTask attempts".to_owned(), facts.attempts.to_string()),
    ];
    if let Some(class) = facts.failure_class {
        facts_list.push((
            "Failure class".to_owned(),
            match class {
                FailureClass::Capacity => "capacity (retried, then the fallback strategy)".into(),
                FailureClass::Configuration => "configuration (not retried)".to_owned(),
            },
        ));
    }
    let mut sections = Vec::new();
    if !facts.failures.is_empty() {
        sections.push(Section {
            heading: "RunTask failures".into(),
            lines: facts
                .failures
                .iter()
                .map(|f| match &f.detail {
                    Some(detail) => format!("{} ({detail})", f.reason),
                    None => f.reason.clone(),
                })
                .collect(),
        });
    }
    let task_lines = |tasks: &[String]| tasks.iter().map(|t| last_segment(t).to_owned()).collect();
    if !facts.tasks.is_empty() {
        sections.push(Section {
            heading: "Started tasks".into(),
            lines: task_lines(facts.tasks),
        });
    }
    if !facts.stopped.is_empty() {
        sections.push(Section {
            heading: match facts.action {
                RunAction::Skipped => "Still running".into(),
                _ => "Stopped".into(),
            },
            lines: task_lines(facts.stopped),
        });
    }
    let advice: Vec<String> = match (facts.action, facts.failure_class) {
        (RunAction::Failed, Some(FailureClass::Capacity)) => vec![
            "Capacity ran out in every attempt: add a fallback_capacity_provider_strategy (e.g. FARGATE beside FARGATE_SPOT) or more subnets/AZs.".into(),
            "Lambda retries this run; the tasks already started are kept and not started twice.".into(),
        ],
        (RunAction::Failed, _) => vec![
            "Fix the job in the `jobs` catalog or the task definition: a configuration failure does not go away on retry.".into(),
        ],
        (RunAction::Skipped, _) => vec![
            "The previous run is still going; set `overlap` to `replace` or `allow` if runs may overlap, or give the job a `timeout_s`.".into(),
        ],
        _ => Vec::new(),
    };
    if !advice.is_empty() {
        sections.push(Section {
            heading: "What to do".into(),
            lines: advice,
        });
    }
    let link_list: Vec<Link> = facts
        .region
        .and_then(|region| {
            Link::console("Cluster tasks", links::cluster_tasks_url(region, cluster))
        })
        .into_iter()
        .collect();
    Notice {
        job: Some(facts.job.to_owned()),
        source: Source::Batch,
        kind: NoticeKind::Job(facts.action.as_str()),
        severity,
        category: NoticeCategory::Batch,
        title,
        summary: facts.reason.to_owned(),
        region: facts.region.map(str::to_owned),
        cluster: Some(cluster.to_owned()),
        service: None,
        facts: facts_list,
        sections,
        log_heading: None,
        log_tail: Vec::new(),
        links: link_list,
        details: json!({
            "job": facts.job,
            "action": facts.action,
            "requested": facts.requested,
            "tasks": facts.tasks,
            "failures": facts.failures,
            "stopped": facts.stopped,
            "attempts": facts.attempts,
            "run": facts.run_id,
        }),
        thread_id: format!("batch-runner/{cluster}/{}", facts.job),
        incident: None,
    }
}

/// A stopped task that `batch-runner` started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTask {
    pub job: String,
    pub succeeded: bool,
    pub notify_on_success: bool,
    /// The run's record with this stop folded in, and what it says (when it has one).
    pub run: Option<RunView>,
}

/// A run's record as one of its stops leaves it, and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    pub record: RunRecord,
    pub verdict: Verdict,
    /// Attempts the run may take in all (1 + retries).
    pub attempts_allowed: u32,
}

impl RunView {
    /// Folds `stop` into `record` (idempotent: `batch-runner` may have done so already) and
    /// reads the verdict, as `batch-runner` reaches it.
    pub fn of(mut record: RunRecord, stop: TaskStop, retry: Option<&RetryPolicy>) -> Self {
        record.with_stop(stop, retry);
        Self {
            verdict: record.verdict(retry),
            attempts_allowed: 1 + retry.map_or(0, |r| r.attempts),
            record,
        }
    }
}

/// A completion's diagnosis as the run's verdict has it: a failed attempt that will be retried
/// is a warning; the final failure after retries is critical; a success after retries is told.
pub fn apply_run_verdict(mut diagnosis: Diagnosis, task: Option<&BatchTask>) -> Diagnosis {
    let Some(view) = task.and_then(|t| t.run.as_ref()) else {
        return diagnosis;
    };
    match view.verdict {
        Verdict::WillRetry { .. } => {
            diagnosis.notify = true;
            diagnosis.severity = Severity::Warning;
        }
        Verdict::Succeeded { attempts } if attempts > 1 => {
            diagnosis.notify = true;
            diagnosis.severity = Severity::Info;
        }
        Verdict::Failed { attempts, .. } if attempts > 1 => {
            diagnosis.notify = true;
            diagnosis.severity = Severity::Critical;
        }
        _ => {}
    }
    diagnosis
}

/// One line per attempt of a run: `1: exited with code 1 (general error) · app=1 · 5m 0s`.
pub fn attempt_lines(record: &RunRecord) -> Vec<String> {
    record
        .attempts
        .iter()
        .map(|attempt| {
            let Some(stop) = attempt.first_failure().or(attempt.stops.first()) else {
                return format!("{}: no task stopped", attempt.number);
            };
            let duration = attempt
                .duration_s()
                .map(|d| format!(" · {}", human_duration(d)))
                .unwrap_or_default();
            format!(
                "{}: {} · {}{duration}",
                attempt.number,
                stop.diagnosis,
                stop.exit_codes()
            )
        })
        .collect()
}

/// What `batch-runner` tells about a run beyond its tasks' completions.
#[derive(Debug, Clone, Copy)]
pub enum RunAlert<'a> {
    /// No task of the attempt was RUNNING by the start deadline.
    NeverStarted { deadline_s: u64 },
    /// A job in `after` failed for good, so this run will not start.
    UpstreamFailed { upstream: &'a str, outcome: Outcome },
    /// A window passed without a run.
    Missed { every: &'a str, missed: &'a Missed },
}

/// The notice of a [`RunAlert`] about `job`'s run `run_id` (none for a missed run).
pub fn alert_notice(
    job: &str,
    spec: &super::JobSpec,
    run_id: Option<&str>,
    alert: RunAlert<'_>,
    region: Option<&str>,
) -> Notice {
    let cluster = cluster_name(&spec.cluster);
    let (kind, severity, title, summary, advice) = match alert {
        RunAlert::NeverStarted { deadline_s } => (
            "never-started",
            Severity::Critical,
            format!("job {job} never started: no task RUNNING after {}", human_duration(deadline_s as i64)),
            format!("the run {} claimed its tasks but none reached RUNNING within expect.start_deadline_s ({deadline_s} s); they were stopped", run_id.unwrap_or("-")),
            vec![
                "Look at the cluster's capacity (Fargate or the capacity provider), image pulls and the task's placement constraints.".to_owned(),
                "Run it again by hand once fixed: batch-runner run JOB --scheduled-time T.".to_owned(),
            ],
        ),
        RunAlert::UpstreamFailed { upstream, outcome } => (
            "upstream-failed",
            Severity::Warning,
            format!("job {job} not started: {upstream} {}", outcome.as_str()),
            format!(
                "job {job} runs after {upstream}, whose run {} ended {}; this run is upstream-failed",
                run_id.unwrap_or("-"),
                outcome.as_str()
            ),
            vec![format!(
                "Fix {upstream}, then run both by hand for the same scheduled time: batch-runner run {upstream} --scheduled-time T starts {job} when it succeeds."
            )],
        ),
        RunAlert::Missed { every, missed } => (
            "missed-run",
            Severity::Critical,
            format!("job {job} missed a run"),
            super::missed::missed_reason(job, every, missed),
            vec![
                "Check the job's EventBridge schedule: is it enabled, does it still exist, does its dead-letter queue hold invocations?".to_owned(),
                "Backfill by hand: batch-runner run JOB --scheduled-time T.".to_owned(),
            ],
        ),
    };
    let mut facts = vec![
        ("Job".to_owned(), job.to_owned()),
        ("Cluster".to_owned(), cluster.to_owned()),
    ];
    if let Some(run) = run_id {
        facts.push(("Run".to_owned(), run.to_owned()));
    }
    let links: Vec<Link> = region
        .and_then(|region| {
            Link::console("Cluster tasks", links::cluster_tasks_url(region, cluster))
        })
        .into_iter()
        .collect();
    Notice {
        job: Some(job.to_owned()),
        source: Source::Batch,
        kind: NoticeKind::Job(kind),
        severity,
        category: NoticeCategory::Batch,
        title,
        summary,
        region: region.map(str::to_owned),
        cluster: Some(cluster.to_owned()),
        service: None,
        facts,
        sections: vec![Section {
            heading: "What to do".into(),
            lines: advice,
        }],
        log_heading: None,
        log_tail: Vec::new(),
        links,
        details: json!({"job": job, "run": run_id, "alert": kind}),
        thread_id: format!("batch-runner/{cluster}/{job}"),
        incident: None,
    }
}

/// The batch job of a stopped task whose `startedBy` is `batch-runner/…`, and whether it
/// succeeded (its diagnosis is `completed`).
pub fn batch_task(
    change: &TaskStateChange,
    diagnosis: &Diagnosis,
    catalog: &JobCatalog,
) -> Option<BatchTask> {
    let marker = change.detail.started_by.as_deref()?;
    let job = job_of_started_by(marker, catalog)?;
    Some(BatchTask {
        job: job.to_owned(),
        succeeded: diagnosis.category == crate::triage::Category::Completed,
        notify_on_success: catalog.get(job).is_some_and(|spec| spec.notify_on_success),
        run: None,
    })
}

/// A job's completion is always reported when it failed (a stop by a user or by the runner's
/// timeout included), at warning severity at least, and on success when the job asks for it.
pub fn apply_job_policy(mut diagnosis: Diagnosis, task: Option<&BatchTask>) -> Diagnosis {
    if let Some(task) = task {
        diagnosis.notify = !task.succeeded || task.notify_on_success;
        if !task.succeeded && diagnosis.severity == Severity::Info {
            diagnosis.severity = Severity::Warning;
        }
    }
    diagnosis
}

/// The note a job's completion leaves on the triage response: `batch job x: failed after 5m 0s`.
pub fn completion_note(change: &TaskStateChange, task: &BatchTask) -> String {
    let duration = duration_s(change)
        .map(|s| format!(" after {}", human_duration(s)))
        .unwrap_or_default();
    let result = if task.succeeded {
        "succeeded"
    } else {
        "failed"
    };
    format!("batch job {}: {result}{duration}", task.job)
}

/// Seconds from `startedAt` to `stoppedAt`, when both are known.
pub fn duration_s(change: &TaskStateChange) -> Option<i64> {
    let task = &change.detail;
    Some((task.stopped_at? - task.started_at?).num_seconds())
}

/// `1h 37m 30s`.
pub fn human_duration(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// The completion report of one job task, turned into a notice by adjusting the triage
/// notice: the job's name leads the title, and exit codes and duration are facts.
pub fn completion_notice(
    mut notice: Notice,
    change: &TaskStateChange,
    diagnosis: &Diagnosis,
    batch: &BatchTask,
) -> Notice {
    let (job, succeeded) = (batch.job.as_str(), batch.succeeded);
    let task = &change.detail;
    let duration = duration_s(change).map(human_duration);
    let exit_codes: Vec<String> = task
        .containers
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c.name.as_deref().unwrap_or("?"),
                c.exit_code
                    .map_or("none".to_owned(), |code| code.to_string())
            )
        })
        .collect();
    notice.kind = NoticeKind::JobCompleted;
    notice.job = Some(job.to_owned());
    notice.category = if succeeded {
        NoticeCategory::JobSucceeded
    } else {
        NoticeCategory::Diagnosed(diagnosis.category)
    };
    notice.title = match (succeeded, &duration) {
        (true, Some(d)) => format!("job {job} succeeded in {d}"),
        (true, None) => format!("job {job} succeeded"),
        (false, Some(d)) => format!("job {job} failed after {d}: {}", diagnosis.title),
        (false, None) => format!("job {job} failed: {}", diagnosis.title),
    };
    if succeeded {
        notice.severity = Severity::Info;
        notice.sections.retain(|s| s.heading != "What to do");
    }
    let mut facts = vec![("Job".to_owned(), job.to_owned())];
    facts.push(("Exit codes".to_owned(), exit_codes.join(", ")));
    if let Some(d) = &duration {
        facts.push(("Duration".to_owned(), d.clone()));
    }
    facts.append(&mut notice.facts);
    notice.facts = facts;
    if let serde_json::Value::Object(details) = &mut notice.details {
        details.insert(
            "job".into(),
            json!({
                "name": job,
                "succeeded": succeeded,
                "exit_codes": task.containers.iter().map(|c| json!({"container": c.name, "exit_code": c.exit_code})).collect::<Vec<_>>(),
                "duration_s": duration_s(change),
            }),
        );
    }
    if let (Some(region), Some(cluster)) = (notice.region.clone(), task.cluster_name()) {
        if let Some(task_id) = task.task_id() {
            if !notice.links.iter().any(|l| l.label == "Task") {
                if let Some(link) =
                    Link::console("Task", links::task_url(&region, cluster, task_id))
                {
                    notice.links.insert(0, link);
                }
            }
        }
    }
    notice.thread_id = format!("batch-runner/{}/{job}", task.cluster_name().unwrap_or("-"));
    if let Some(view) = &batch.run {
        with_run(&mut notice, view, job, diagnosis, duration.as_deref());
    }
    notice
}

/// The completion notice as the run's record tells it: which attempt, what comes next, and
/// every attempt once the run ended after retries.
fn with_run(
    notice: &mut Notice,
    view: &RunView,
    job: &str,
    diagnosis: &Diagnosis,
    duration: Option<&str>,
) {
    let record = &view.record;
    let attempt = record.current().map_or(1, |a| a.number);
    let of = view.attempts_allowed;
    let mut facts = vec![
        ("Run".to_owned(), record.run_id.clone()),
        ("Attempt".to_owned(), format!("{attempt} of {of}")),
    ];
    let took = duration.map(|d| format!(" after {d}")).unwrap_or_default();
    match view.verdict {
        Verdict::WillRetry {
            at,
            backoff_s,
            retries_left,
            ..
        } => {
            notice.title = format!(
                "job {job} attempt {attempt} failed{took}: {} — {}",
                diagnosis.title,
                retry_words(backoff_s, retries_left)
            );
            facts.push(("Next attempt".to_owned(), crate::domain::utc_time(at)));
        }
        Verdict::Failed { attempts, outcome } if attempts > 1 => {
            notice.title = format!(
                "job {job} {} after {attempts} attempts: {}",
                if outcome == Outcome::TimedOut {
                    "timed out"
                } else {
                    "failed"
                },
                diagnosis.title
            );
        }
        Verdict::Succeeded { attempts } if attempts > 1 => {
            notice.title = format!(
                "job {job} succeeded on attempt {attempts}{}",
                duration.map(|d| format!(" in {d}")).unwrap_or_default()
            );
        }
        Verdict::Pending { stopped, of } if of > 1 => {
            facts.push(("Tasks stopped".to_owned(), format!("{stopped} of {of}")));
        }
        _ => {}
    }
    if record.attempts.len() > 1 {
        notice.sections.insert(
            0,
            Section {
                heading: "Attempts".into(),
                lines: attempt_lines(record),
            },
        );
    }
    let at = notice
        .facts
        .iter()
        .position(|(k, _)| k == "Job")
        .map_or(0, |i| i + 1);
    for (offset, fact) in facts.into_iter().enumerate() {
        notice.facts.insert(at + offset, fact);
    }
    if let serde_json::Value::Object(details) = &mut notice.details {
        details.insert(
            "run".into(),
            json!({"id": record.run_id, "attempt": attempt, "attempts_allowed": of, "verdict": view.verdict}),
        );
    }
}
