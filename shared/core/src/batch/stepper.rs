//! The RunTask attempt stepper (pure, time passed in): for one run, which call to send next,
//! when to back off, when to move to the fallback strategy and when to give up. The handler
//! asks [`RunStepper::next_step`], performs what it says (a RunTask call, a wait) and feeds each
//! call's result back with [`RunStepper::record`]; the stepper never does I/O.
//!
//! Rules: a run's remaining tasks are split into calls of ≤ 10; each call is attempted up to
//! [`MAX_ATTEMPTS`] times while every failure is a capacity failure and the backoff plus a
//! reserve fits before the deadline; then, once, with the fallback strategy; a configuration
//! failure ends the run at once (no blind retries). Tasks started by earlier attempts are kept:
//! a retry asks only for the rest.

use super::{
    backoff_s, classify_failure, retry_fits, run_task_request, split, FailureClass, JobSpec,
    Placement, RunFailure, RunTaskRequest, RunTaskResult,
};

/// RunTask attempts per call and placement.
pub const MAX_ATTEMPTS: u32 = 5;

/// What the handler does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStep {
    /// Send this RunTask call, then [`RunStepper::record`] its result.
    Call(Box<RunTaskRequest>),
    /// Wait this many seconds, then ask again.
    Wait(u64),
    /// The run is over.
    Done(RunEnd),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every task asked for was started.
    AllStarted,
    /// A failure that retrying cannot cure.
    Configuration,
    /// Capacity never came, within the attempts, the fallback and the time budget.
    CapacityExhausted,
}

impl RunEnd {
    /// The failure class of a run that did not start everything.
    pub fn failure_class(self) -> Option<FailureClass> {
        match self {
            Self::AllStarted => None,
            Self::Configuration => Some(FailureClass::Configuration),
            Self::CapacityExhausted => Some(FailureClass::Capacity),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Ready to send the current call's next attempt.
    Ready,
    /// A call was handed out and its result is awaited.
    Awaiting(Box<RunTaskRequest>),
    /// Back off this long before the next attempt.
    Waiting(u64),
    Finished(RunEnd),
}

/// The attempt loop of one run.
#[derive(Debug, Clone)]
pub struct RunStepper<'a> {
    job: &'a str,
    spec: &'a JobSpec,
    run_id: &'a str,
    round: u32,
    /// Epoch seconds by which the run must have reported.
    deadline: i64,
    calls: Vec<u32>,
    call: usize,
    need: u32,
    placement: Placement,
    attempt: u32,
    phase: Phase,
    /// Tasks started, those of earlier rounds included.
    pub tasks: Vec<String>,
    /// The latest call's failures.
    pub failures: Vec<RunFailure>,
    /// RunTask calls sent in this round.
    pub attempts: u32,
    /// What happened on the way (retries, the move to the fallback).
    pub notes: Vec<String>,
}

impl<'a> RunStepper<'a> {
    /// A run of `spec.count` tasks of which `started` are already running (a resumed run).
    pub fn new(
        job: &'a str,
        spec: &'a JobSpec,
        run_id: &'a str,
        round: u32,
        started: Vec<String>,
        deadline: i64,
    ) -> Self {
        let already = started.len().min(spec.count as usize) as u32;
        let calls = split(spec.count - already);
        Self {
            job,
            spec,
            run_id,
            round,
            deadline,
            need: calls.first().copied().unwrap_or_default(),
            phase: if calls.is_empty() {
                Phase::Finished(RunEnd::AllStarted)
            } else {
                Phase::Ready
            },
            calls,
            call: 0,
            placement: Placement::Primary,
            attempt: 0,
            tasks: started,
            failures: Vec::new(),
            attempts: 0,
            notes: Vec::new(),
        }
    }

    /// The first attempt of every call, as `--dry-run` prints them.
    pub fn planned_requests(&self) -> Vec<RunTaskRequest> {
        self.calls
            .iter()
            .enumerate()
            .map(|(call, &count)| self.request(call, 1, count, Placement::Primary))
            .collect()
    }

    fn request(
        &self,
        call: usize,
        attempt: u32,
        count: u32,
        placement: Placement,
    ) -> RunTaskRequest {
        run_task_request(
            self.job,
            self.spec,
            self.run_id,
            self.round,
            call,
            attempt,
            count,
            placement,
        )
    }

    /// What to do next.
    pub fn next_step(&mut self) -> RunStep {
        match &self.phase {
            Phase::Finished(end) => RunStep::Done(*end),
            Phase::Awaiting(request) => RunStep::Call(request.clone()),
            Phase::Waiting(seconds) => {
                let seconds = *seconds;
                self.phase = Phase::Ready;
                RunStep::Wait(seconds)
            }
            Phase::Ready => {
                self.attempt += 1;
                self.attempts += 1;
                let request =
                    Box::new(self.request(self.call, self.attempt, self.need, self.placement));
                self.phase = Phase::Awaiting(request.clone());
                RunStep::Call(request)
            }
        }
    }

    /// Takes the result of the call [`next_step`](Self::next_step) handed out, at `now` (epoch seconds).
    pub fn record(&mut self, result: RunTaskResult, now: i64) {
        if !matches!(self.phase, Phase::Awaiting(_)) {
            return;
        }
        let started = (result.tasks.len() as u32).min(self.need);
        self.need -= started;
        self.tasks.extend(result.tasks);
        if self.need == 0 {
            self.call += 1;
            self.placement = Placement::Primary;
            self.attempt = 0;
            self.phase = match self.calls.get(self.call) {
                Some(&count) => {
                    self.need = count;
                    Phase::Ready
                }
                None => {
                    self.failures.clear();
                    Phase::Finished(RunEnd::AllStarted)
                }
            };
            return;
        }
        self.failures = if result.failures.is_empty() {
            vec![RunFailure {
                arn: None,
                reason: "RunTask started fewer tasks than asked and gave no failure".into(),
                detail: None,
            }]
        } else {
            result.failures
        };
        let capacity_only = self
            .failures
            .iter()
            .all(|f| classify_failure(&f.reason) == FailureClass::Capacity);
        if !capacity_only {
            self.phase = Phase::Finished(RunEnd::Configuration);
            return;
        }
        let remaining_s = self.deadline - now;
        if self.attempt < MAX_ATTEMPTS && retry_fits(self.attempt + 1, remaining_s) {
            let wait = backoff_s(self.attempt + 1);
            self.notes.push(format!(
                "call {} attempt {}: {} (capacity); retrying in {wait} s",
                self.call, self.attempt, self.failures[0].reason
            ));
            self.phase = Phase::Waiting(wait);
            return;
        }
        if self.placement == Placement::Primary
            && !self.spec.fallback_capacity_provider_strategy.is_empty()
            && retry_fits(2, remaining_s)
        {
            self.notes.push(format!(
                "call {}: capacity still unavailable after {} attempt(s); trying the fallback strategy",
                self.call, self.attempt
            ));
            self.placement = Placement::Fallback;
            self.attempt = 0;
            self.phase = Phase::Ready;
            return;
        }
        self.phase = Phase::Finished(RunEnd::CapacityExhausted);
    }
}
