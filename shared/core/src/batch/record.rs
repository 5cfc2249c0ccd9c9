//! Run records (pure): one record per run of a job, keyed by its scheduled time, holding every
//! attempt's tasks and their stops, and the run's outcome. `batch-runner` is the one writer (it
//! creates the record when it starts an attempt and folds in the Task State Change events of the
//! tasks it started); `task-triage` reads the same record to word its completion report, and
//! both reach the same verdict because [`RunRecord::with_stop`] is idempotent and
//! [`RunRecord::verdict`] depends on the record alone.
//!
//! The retry stepper lives here too: an attempt whose tasks have all stopped is closed; a failed
//! one is retried when `retry.on` covers one of its failures and retries are left, after
//! `backoff_s` doubling up to `max_backoff_s` (the tick starts it: no Lambda waits).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::policy::{RetryOn, RetryPolicy};
use super::{classify_failure, FailureClass};
use crate::domain::Category;
use crate::events::ecs::TaskDetail;
use crate::triage::Diagnosis;

/// Where a run stands, and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Tasks are starting or running, or a retry is waiting for its backoff.
    Running,
    Succeeded,
    Failed,
    TimedOut,
    /// No task of the attempt was RUNNING by `expect.start_deadline_s`.
    NeverStarted,
    /// The overlap guard kept it from starting.
    Skipped,
    /// A job in its `after` failed for good.
    UpstreamFailed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed-out",
            Self::NeverStarted => "never-started",
            Self::Skipped => "skipped",
            Self::UpstreamFailed => "upstream-failed",
        }
    }

    pub fn is_final(self) -> bool {
        self != Self::Running
    }
}

/// One container's exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerExit {
    pub container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}

/// How one task of a run stopped, as its Task State Change said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStop {
    pub task: String,
    pub stopped_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    /// The triage category (`completed`, `app-exit`, `oom` …).
    pub category: String,
    /// The triage title, e.g. `exited with code 1 (general error)`.
    pub diagnosis: String,
    pub exits: Vec<ContainerExit>,
    /// Stopped by the runner at the job's `timeout_s`.
    #[serde(default)]
    pub timed_out: bool,
    /// The stop reason says capacity (placement, Fargate capacity, a busy agent).
    #[serde(default)]
    pub capacity: bool,
}

impl TaskStop {
    /// The stop of `task` as the event and its triage diagnosis tell it.
    pub fn of(task: &TaskDetail, diagnosis: &Diagnosis, at: i64) -> Option<Self> {
        let arn = task.task_arn.as_ref()?.to_string();
        let reason = task.stopped_reason.as_deref().unwrap_or_default();
        Some(Self {
            task: arn,
            stopped_at: task.stopped_at.map_or(at, |t| t.timestamp()),
            started_at: task.started_at.map(|t| t.timestamp()),
            stop_code: task.stop_code.as_ref().map(|c| c.to_string()),
            category: diagnosis.category.as_str().to_owned(),
            diagnosis: crate::domain::clip(&diagnosis.title, 256).to_owned(),
            exits: task
                .containers
                .iter()
                .map(|c| ContainerExit {
                    container: c.name.clone().unwrap_or_else(|| "?".into()),
                    exit_code: c.exit_code,
                })
                .collect(),
            timed_out: reason.starts_with(super::TIMEOUT_REASON_PREFIX),
            capacity: !reason.is_empty() && classify_failure(reason) == FailureClass::Capacity,
        })
    }

    pub fn succeeded(&self) -> bool {
        self.category == Category::Completed.as_str()
    }

    /// Whether `on` covers this stop's failure.
    pub fn covered_by(&self, on: RetryOn) -> bool {
        if self.succeeded() {
            return false;
        }
        match on {
            RetryOn::AnyNonzero => self
                .exits
                .iter()
                .any(|e| e.exit_code.is_some_and(|c| c != 0)),
            RetryOn::Exit(code) => self
                .exits
                .iter()
                .any(|e| e.exit_code == Some(i64::from(code))),
            RetryOn::SpotInterruption => self.category == Category::SpotInterruption.as_str(),
            RetryOn::Oom => self.category == Category::Oom.as_str(),
            RetryOn::Capacity => self.capacity,
            RetryOn::Timeout => self.timed_out,
        }
    }

    /// `app=1, sidecar=0`.
    pub fn exit_codes(&self) -> String {
        self.exits
            .iter()
            .map(|e| {
                format!(
                    "{}={}",
                    e.container,
                    e.exit_code.map_or("none".into(), |c| c.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One attempt of a run: one RunTask round of its own client tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first run, 2 for the first retry …
    pub number: u32,
    /// When its RunTask calls were made.
    pub requested_at: i64,
    pub tasks: Vec<String>,
    /// When the first of its tasks was seen RUNNING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_at: Option<i64>,
    #[serde(default)]
    pub stops: Vec<TaskStop>,
    /// How it ended, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

impl Attempt {
    /// The attempt's first failed stop (its diagnosis stands for the attempt).
    pub fn first_failure(&self) -> Option<&TaskStop> {
        self.stops.iter().find(|s| !s.succeeded())
    }

    /// Seconds from its first task's start to its last stop.
    pub fn duration_s(&self) -> Option<i64> {
        let start = self.stops.iter().filter_map(|s| s.started_at).min()?;
        let end = self.stops.iter().map(|s| s.stopped_at).max()?;
        Some(end - start)
    }
}

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub job: String,
    /// The run's identity: its scheduled time as the schedule gave it (or a manual id).
    pub run_id: String,
    /// The scheduled time in epoch seconds (history is ordered by it).
    pub scheduled_at: i64,
    /// Tasks per attempt.
    pub count: u32,
    pub outcome: Outcome,
    pub attempts: Vec<Attempt>,
    /// A retry waits for this time (epoch seconds); the tick starts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Why it ended without running (skipped, upstream failed) or never started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Started by `batch-runner run` rather than a schedule or a dependency.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_hand: bool,
}

/// What a change to a record means for the people told about the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Tasks of the attempt are still running: nothing to say about the run yet.
    Pending { stopped: usize, of: usize },
    /// The attempt failed and will be retried at `at`; `retries_left` counts that retry.
    WillRetry {
        attempt: u32,
        at: i64,
        backoff_s: u64,
        retries_left: u32,
    },
    /// The run failed for good (or timed out) after `attempts` attempts.
    Failed { outcome: Outcome, attempts: u32 },
    /// The run succeeded, on attempt `attempts`.
    Succeeded { attempts: u32 },
}

impl RunRecord {
    /// A run whose first attempt is being started at `now`.
    pub fn new(job: &str, run_id: &str, scheduled_at: i64, count: u32, now: i64) -> Self {
        Self {
            job: job.to_owned(),
            run_id: run_id.to_owned(),
            scheduled_at,
            count,
            outcome: Outcome::Running,
            attempts: vec![Attempt {
                number: 1,
                requested_at: now,
                tasks: Vec::new(),
                running_at: None,
                stops: Vec::new(),
                outcome: None,
            }],
            retry_at: None,
            finished_at: None,
            parameters: BTreeMap::new(),
            note: None,
            by_hand: false,
        }
    }

    /// A run that ended before starting (skipped, upstream failed), with why.
    pub fn ended(
        job: &str,
        run_id: &str,
        scheduled_at: i64,
        outcome: Outcome,
        note: String,
        now: i64,
    ) -> Self {
        Self {
            attempts: Vec::new(),
            outcome,
            finished_at: Some(now),
            note: Some(note),
            ..Self::new(job, run_id, scheduled_at, 0, now)
        }
    }

    /// The attempt being run (the latest).
    pub fn current(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    fn current_mut(&mut self) -> Option<&mut Attempt> {
        self.attempts.last_mut()
    }

    /// Retries used so far.
    pub fn retries_used(&self) -> u32 {
        (self.attempts.len() as u32).saturating_sub(1)
    }

    /// Adds tasks the current attempt's RunTask calls started; false when none was new.
    pub fn add_tasks(&mut self, tasks: &[String]) -> bool {
        let Some(attempt) = self.current_mut() else {
            return false;
        };
        let before = attempt.tasks.len();
        for task in tasks {
            if !attempt.tasks.contains(task) {
                attempt.tasks.push(task.clone());
            }
        }
        attempt.tasks.len() != before
    }

    /// Notes that `task` is RUNNING at `at`; false when nothing changed.
    pub fn with_running(&mut self, task: &str, at: i64) -> bool {
        let Some(attempt) = self
            .attempts
            .iter_mut()
            .find(|a| a.tasks.iter().any(|t| t == task))
        else {
            return false;
        };
        if attempt.running_at.is_some_and(|r| r <= at) {
            return false;
        }
        attempt.running_at = Some(at);
        true
    }

    /// Folds in one task's stop; false when it was already there or is not this run's. A stop
    /// that closes the current attempt decides the run (see [`Self::verdict`]).
    pub fn with_stop(&mut self, stop: TaskStop, retry: Option<&RetryPolicy>) -> bool {
        let Some(index) = self
            .attempts
            .iter()
            .position(|a| a.tasks.contains(&stop.task))
        else {
            return false;
        };
        let attempt = &mut self.attempts[index];
        if attempt.stops.iter().any(|s| s.task == stop.task) {
            return false;
        }
        let at = stop.stopped_at;
        if attempt.running_at.is_none() {
            attempt.running_at = stop.started_at;
        }
        attempt.stops.push(stop);
        let current = index + 1 == self.attempts.len();
        if current && self.outcome == Outcome::Running {
            self.close_attempt(retry, at);
        }
        true
    }

    /// Closes the current attempt once every task asked for has stopped: succeeded, or failed
    /// and retried when the policy covers it, or the run's final failure.
    fn close_attempt(&mut self, retry: Option<&RetryPolicy>, now: i64) {
        let count = self.count as usize;
        let retries_used = self.retries_used();
        let Some(attempt) = self.current_mut() else {
            return;
        };
        if attempt.outcome.is_some() || attempt.stops.len() < attempt.tasks.len().max(count) {
            return;
        }
        let outcome = if attempt.stops.iter().all(TaskStop::succeeded) {
            Outcome::Succeeded
        } else if attempt.stops.iter().any(|s| s.timed_out) {
            Outcome::TimedOut
        } else {
            Outcome::Failed
        };
        attempt.outcome = Some(outcome);
        let covered = retry.filter(|policy| {
            retries_used < policy.attempts
                && attempt
                    .stops
                    .iter()
                    .any(|s| policy.on.iter().any(|on| s.covered_by(*on)))
        });
        match (outcome, covered) {
            (Outcome::Succeeded, _) | (_, None) => self.finish(outcome, now),
            (_, Some(policy)) => {
                self.retry_at = Some(now + policy.backoff_before(retries_used + 1) as i64);
            }
        }
    }

    /// Ends the run at `now` without (more) tasks: skipped by the overlap guard, or failed to
    /// start for a reason retrying cannot cure; `note` says why.
    pub fn end_with(&mut self, outcome: Outcome, note: String, now: i64) {
        if let Some(attempt) = self.attempts.last_mut() {
            if attempt.tasks.is_empty() && outcome == Outcome::Skipped {
                self.attempts.pop();
            } else if attempt.outcome.is_none() {
                attempt.outcome = Some(outcome);
            }
        }
        self.note = Some(note);
        self.finish(outcome, now);
    }

    fn finish(&mut self, outcome: Outcome, now: i64) {
        self.outcome = outcome;
        self.retry_at = None;
        self.finished_at = Some(now);
    }

    /// The current attempt never had a task RUNNING within `deadline_s` of its RunTask: the run
    /// is `never-started` (no retry: what kept it from starting is for a person to see).
    /// False when that is not so.
    pub fn with_start_deadline(&mut self, deadline_s: u64, now: i64) -> bool {
        let Some(attempt) = self.current_mut() else {
            return false;
        };
        let late = now >= attempt.requested_at.saturating_add(deadline_s as i64);
        if attempt.outcome.is_some()
            || attempt.running_at.is_some()
            || !attempt.stops.is_empty()
            || !late
        {
            return false;
        }
        attempt.outcome = Some(Outcome::NeverStarted);
        self.note = Some(format!(
            "no task was RUNNING {deadline_s} s after attempt {} was started",
            attempt.number
        ));
        self.finish(Outcome::NeverStarted, now);
        true
    }

    /// Begins the next attempt at `now` (the retry is due); its number.
    pub fn begin_retry(&mut self, now: i64) -> u32 {
        let number = self.attempts.len() as u32 + 1;
        self.attempts.push(Attempt {
            number,
            requested_at: now,
            tasks: Vec::new(),
            running_at: None,
            stops: Vec::new(),
            outcome: None,
        });
        self.retry_at = None;
        number
    }

    /// When the tick must next look at the run: its retry, or the current attempt's start
    /// deadline while none of its tasks has been seen running.
    pub fn due_at(&self, start_deadline_s: Option<u64>) -> Option<i64> {
        if self.outcome != Outcome::Running {
            return None;
        }
        if let Some(at) = self.retry_at {
            return Some(at);
        }
        let attempt = self.current()?;
        let waiting =
            attempt.outcome.is_none() && attempt.running_at.is_none() && attempt.stops.is_empty();
        start_deadline_s
            .filter(|_| waiting)
            .map(|deadline| attempt.requested_at.saturating_add(deadline as i64))
    }

    /// When the record expires: `history_days` after the later of its scheduled time and `now`.
    pub fn expires_at(&self, history_days: u32, now: i64) -> i64 {
        self.scheduled_at
            .max(now)
            .saturating_add(i64::from(history_days) * 86_400)
    }

    /// A retry that could not start (its RunTask failed): the empty attempt is dropped and the
    /// retry waits until `at`, for the tick to try again.
    pub fn retry_later(&mut self, at: i64) -> bool {
        if self.outcome != Outcome::Running {
            return false;
        }
        if self
            .current()
            .is_some_and(|a| a.tasks.is_empty() && a.number > 1)
        {
            self.attempts.pop();
        }
        self.retry_at = Some(at);
        true
    }

    /// Whether a retry is due at `now`.
    pub fn retry_due(&self, now: i64) -> bool {
        self.outcome == Outcome::Running && self.retry_at.is_some_and(|at| at <= now)
    }

    /// What the record says now about the run.
    pub fn verdict(&self, retry: Option<&RetryPolicy>) -> Verdict {
        let attempts = self.attempts.len() as u32;
        match self.outcome {
            Outcome::Succeeded => return Verdict::Succeeded { attempts },
            Outcome::Running => {}
            outcome => return Verdict::Failed { outcome, attempts },
        }
        let Some(attempt) = self.current() else {
            return Verdict::Pending { stopped: 0, of: 0 };
        };
        match (self.retry_at, attempt.outcome) {
            (Some(at), Some(_)) => {
                let retries = retry.map_or(0, |p| p.attempts);
                Verdict::WillRetry {
                    attempt: attempt.number,
                    at,
                    backoff_s: retry.map_or(0, |p| p.backoff_before(attempt.number)),
                    retries_left: retries.saturating_sub(attempt.number - 1),
                }
            }
            _ => Verdict::Pending {
                stopped: attempt.stops.len(),
                of: attempt.tasks.len().max(self.count as usize),
            },
        }
    }

    /// Every exit code of the run's attempts, attempt by attempt: `1: app=1 · 2: app=0`.
    pub fn exit_codes(&self) -> String {
        self.attempts
            .iter()
            .filter(|a| !a.stops.is_empty())
            .map(|a| {
                let codes: Vec<String> = a.stops.iter().map(TaskStop::exit_codes).collect();
                format!("{}: {}", a.number, codes.join("; "))
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }

    /// From the first attempt's request to the last stop (or `now` while running).
    pub fn duration_s(&self, now: i64) -> Option<i64> {
        let first = self.attempts.first()?;
        let start = first
            .stops
            .iter()
            .filter_map(|s| s.started_at)
            .min()
            .unwrap_or(first.requested_at);
        let end = match self.outcome {
            Outcome::Running => now,
            _ => self
                .attempts
                .iter()
                .flat_map(|a| a.stops.iter().map(|s| s.stopped_at))
                .max()
                .or(self.finished_at)?,
        };
        Some(end.saturating_sub(start))
    }
}

/// `4m` / `1h 30m` / `45s`, for "will retry in …".
pub fn in_words(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// "will retry in 4m, 2 retries left" (the warning's words, and triage's).
pub fn retry_words(backoff_s: u64, retries_left: u32) -> String {
    let left = match retries_left {
        1 => "1 retry left".to_owned(),
        n => format!("{n} retries left"),
    };
    format!("will retry in {}, {left}", in_words(backoff_s))
}
