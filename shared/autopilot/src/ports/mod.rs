//! The ports: the narrow traits the handlers in [`crate::app`] depend on for everything outside
//! the process. The AWS adapters in [`crate::aws`] implement them for real; [`crate::testkit`]
//! (feature `testkit`) implements them in memory for tests. Each port speaks the library's plain
//! types, never SDK types, so a handler cannot tell which implementation it talks to.
//!
//! Loops that decide (how to advance a storm window, when to retry a RunTask call) stay in the
//! pure modules; a port performs one call and reports what happened.
//!
//! Reading and writing are separate traits: each store has a reader (`ClaimReader`,
//! `StormReader` …, together [`StateReader`]) and a writer (`ClaimWriter` …, together with the
//! readers [`StateStore`]); ECS reads ([`TaskLister`], [`ServiceReader`]) are apart from ECS
//! writes ([`TaskRunner`], [`ServiceScaler`]). `--dry-run` is handed readers only (see
//! [`crate::app::Backend`]), so a write from a dry run does not compile.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::batch::record::RunRecord;
use crate::batch::{RunTaskRequest, RunTaskResult, RunningTask};
use crate::domain::{AwsLogsTarget, ServiceSnapshot};
use crate::error::Result;
use crate::events::alarm::AlarmTransition;
use crate::events::ecs::TaskDetail;
use crate::incident::Incident;
use crate::notify::Publish;
use crate::scaling::target::MetricSignal;
use crate::scaling::{ScalingMemory, TargetBounds};
use crate::state::{Claim, MutedLedger, MutedNotice, Stop, StormWindow};

/// Time, passed in: handlers never read the system clock themselves.
#[async_trait]
pub trait Clock: Send + Sync + Debug {
    /// Now, in epoch seconds.
    fn now_s(&self) -> i64;
    /// Waits (backoff between attempts, contention pauses).
    async fn sleep(&self, duration: Duration);
}

/// Claims, read: what taking a claim would find.
#[async_trait]
pub trait ClaimReader: Send + Sync + Debug {
    /// What a claim would find, without writing (for `--dry-run`).
    async fn peek_claim(&self, key: &str, now: i64) -> Result<Claim>;
}

/// Claims: an event, a transition or a run is worked on by one invocation at a time and acted
/// on once (see [`crate::state`] for the semantics).
#[async_trait]
pub trait ClaimWriter: Send + Sync + Debug {
    /// Takes the claim at `key` until `lease_until`, or says why not.
    async fn claim(&self, key: &str, now: i64, lease_until: i64, ttl_s: u64) -> Result<Claim>;
    /// Marks a claimed item handled, with the decision and message it led to.
    async fn complete(&self, key: &str, decision: &str, message_id: Option<&str>) -> Result<()>;
    /// Gives a claim back after a failure so that the retry can take it at once.
    async fn release(&self, key: &str) -> Result<()>;
    /// Records on the claim at `key` that `destination` (a [`crate::routing::Destination`]
    /// label) took its notification, so that a retry does not send there again.
    async fn record_delivery(&self, key: &str, destination: &str) -> Result<()>;
}

/// What counting a stop into its open storm window found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counting {
    /// Counted: the window as it is now, its `count` the number this stop was given (or, for a
    /// retried delivery that counted before, the number it was given then).
    Counted(StormWindow),
    /// Not counted: no window is open for the stop; the window stored (closed, or opened by
    /// another stop just now), if any.
    NotOpen(Option<StormWindow>),
}

/// Storm windows, read.
#[async_trait]
pub trait StormReader: Send + Sync + Debug {
    /// The window at `storm_key` as stored.
    async fn read_window(&self, storm_key: &str) -> Result<Option<StormWindow>>;
    /// The window at `storm_key` and the number it gave the stop of `claim_key`, if it counted
    /// it; writes nothing (for `--dry-run`).
    async fn peek_count(
        &self,
        claim_key: &str,
        storm_key: &str,
    ) -> Result<(Option<StormWindow>, Option<u64>)>;
}

/// Storm windows: exact counts of stops per (cluster, group, category).
#[async_trait]
pub trait StormWriter: Send + Sync + Debug {
    /// Counts `stop` into its window if one is open (started after [`Stop::open_since`]): one
    /// atomic increment that records the number under the claim, so that concurrent stops never
    /// contend and a retried delivery gets its number back instead of counting again.
    async fn count_into_open(&self, stop: &Stop<'_>) -> Result<Counting>;
    /// Stores `first` (the stop's new window, count 1) at the stop's key in place of exactly
    /// the window `replaced` read (none: no window stored); false when another stop replaced
    /// it first.
    async fn open_window(
        &self,
        stop: &Stop<'_>,
        replaced: Option<&StormWindow>,
        first: &StormWindow,
    ) -> Result<bool>;
    /// Drops the window's record of the number given to the stop of `claim_key`, once its claim
    /// is complete (a duplicate stops at the claim).
    async fn forget_count(&self, claim_key: &str, storm_key: &str) -> Result<()>;
    /// Closes the windows at `storm_keys`: the incident they were counted in resolved, so the
    /// service's next failure of each category starts a new window and is told. A stop
    /// counting at the same time finds its window gone and starts the new one.
    async fn close_windows(&self, storm_keys: &[String]) -> Result<()>;
}

/// `alarm-scaler`'s per-service memory of its last changes, read.
#[async_trait]
pub trait ScalingReader: Send + Sync + Debug {
    /// The memory at `key` and its revision (0 when nothing was recorded yet).
    async fn scaling_memory(&self, key: &str) -> Result<(ScalingMemory, u64)>;
}

/// `alarm-scaler`'s per-service memory of its last changes, with a revision for conditional
/// writes.
#[async_trait]
pub trait ScalingWriter: Send + Sync + Debug {
    /// Records `memory` if the stored revision is still `expected_revision`; false when another
    /// invocation changed it first.
    async fn record_scaling(
        &self,
        key: &str,
        expected_revision: u64,
        memory: &ScalingMemory,
        change: &str,
    ) -> Result<bool>;
}

/// `batch-runner`'s record of a claimed run.
#[async_trait]
pub trait RunWriter: Send + Sync + Debug {
    /// Counts one more resumption of the run at `key`; gives the round and the tasks already
    /// started.
    async fn resume_run(&self, key: &str) -> Result<(u32, Vec<String>)>;
    /// Adds started tasks to the run at `key`.
    async fn add_run_tasks(&self, key: &str, tasks: &[String]) -> Result<()>;
}

/// `batch-runner`'s run records, read: by key, by one of their tasks, and by job (history, the
/// latest run, the runs the tick must look at). `task-triage` reads them to word its reports.
#[async_trait]
pub trait RecordReader: Send + Sync + Debug {
    /// The record at `key` and its revision.
    async fn read_record(&self, key: &str) -> Result<Option<(RunRecord, u64)>>;
    /// The key of the record one of whose attempts started `task_arn`.
    async fn record_of_task(&self, task_arn: &str) -> Result<Option<String>>;
    /// Runs of `job` scheduled at or after `since` (epoch s), newest first, at most `limit`.
    async fn runs_of(&self, job: &str, since: i64, limit: usize) -> Result<Vec<RunRecord>>;
    /// Runs of `job` the tick must act on by `now` (a retry due, a start deadline passed),
    /// each with its revision.
    async fn runs_due(&self, job: &str, now: i64) -> Result<Vec<(RunRecord, u64)>>;
}

/// How a run record is stored besides its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordWrite {
    /// When the tick must next look at the run (indexed; none once nothing is pending).
    pub due_at: Option<i64>,
    /// When the record expires (`history_days` after the run).
    pub expires_at: i64,
}

/// `batch-runner`'s run records, written under the revision read.
#[async_trait]
pub trait RecordWriter: Send + Sync + Debug {
    /// Writes `record` at `key` if the stored revision is still `expected_revision` (0: none
    /// stored); false when another invocation wrote first.
    async fn write_record(
        &self,
        key: &str,
        expected_revision: u64,
        record: &RunRecord,
        write: RecordWrite,
    ) -> Result<bool>;
    /// Points each of `tasks` at the record at `key` (for their Task State Change events).
    async fn point_tasks(&self, key: &str, tasks: &[String], expires_at: i64) -> Result<()>;
    /// Since when the tick has watched the key's job for missed runs: the first call's `now`,
    /// kept (and its expiry moved to `expires_at`) on every later call.
    async fn watch_since(&self, key: &str, now: i64, expires_at: i64) -> Result<i64>;
}

/// Incidents, one per service, read.
#[async_trait]
pub trait IncidentReader: Send + Sync + Debug {
    /// The incident at `key` and its revision.
    async fn read_incident(&self, key: &str) -> Result<Option<(Incident, u64)>>;
}

/// Incidents, one per service, with a revision for conditional writes.
#[async_trait]
pub trait IncidentWriter: Send + Sync + Debug {
    /// Writes `incident` if the stored revision is still `expected_revision` (0: none stored);
    /// false when another invocation wrote first.
    async fn write_incident(
        &self,
        key: &str,
        expected_revision: u64,
        incident: &Incident,
    ) -> Result<bool>;
}

/// The watchdog's memory, read: since when a service has run short of its desired count.
#[async_trait]
pub trait WatchReader: Send + Sync + Debug {
    async fn short_since(&self, key: &str) -> Result<Option<i64>>;
}

/// The watchdog's memory, written.
#[async_trait]
pub trait WatchWriter: Send + Sync + Debug {
    /// Records (or, with `None`, forgets) when the service went short; `now` dates the record
    /// (it expires a day after it was last written).
    async fn set_short_since(&self, key: &str, since: Option<i64>, now: i64) -> Result<()>;
}

/// Ledgers of muted notifications, read.
#[async_trait]
pub trait MuteReader: Send + Sync + Debug {
    /// The ledger at `key`, if anything was held back.
    async fn muted_ledger(&self, key: &str) -> Result<Option<MutedLedger>>;
}

/// Ledgers of muted notifications, one per muting rule and occurrence of its window.
#[async_trait]
pub trait MuteWriter: Send + Sync + Debug {
    /// Counts `muted` in its ledger, once per claim; the ledger expires `ttl_s` after `until`
    /// (the window's end) if never summarised.
    async fn count_muted(&self, muted: &MutedNotice<'_>) -> Result<()>;
    /// Drops the ledger at `key` once summarised.
    async fn forget_muted(&self, key: &str) -> Result<()>;
}

/// The state table, read: every reader above in one place (what `--dry-run` is given).
pub trait StateReader:
    ClaimReader + StormReader + ScalingReader + RecordReader + IncidentReader + WatchReader + MuteReader
{
}
impl<T> StateReader for T where
    T: ClaimReader
        + StormReader
        + ScalingReader
        + RecordReader
        + IncidentReader
        + WatchReader
        + MuteReader
{
}

/// The state table, read and written: every store above in one place (what a live run is
/// given).
pub trait StateStore:
    StateReader
    + ClaimWriter
    + StormWriter
    + ScalingWriter
    + RunWriter
    + RecordWriter
    + IncidentWriter
    + WatchWriter
    + MuteWriter
{
}
impl<T> StateStore for T where
    T: StateReader
        + ClaimWriter
        + StormWriter
        + ScalingWriter
        + RunWriter
        + RecordWriter
        + IncidentWriter
        + WatchWriter
        + MuteWriter
{
}

/// Where notifications go: SNS topics and incoming webhooks.
#[async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// Publishes one rendered notification to `topic` (`None`: the default topic,
    /// `NOTIFY_TOPIC_ARN`); gives its message id.
    async fn publish(&self, topic: Option<&str>, publish: &Publish) -> Result<String>;
    /// Posts a JSON `body` once to the named webhook of `notify.webhooks`; gives its answer
    /// (retrying is the caller's decision).
    async fn post(&self, webhook: &str, body: &str) -> Result<WebhookReply>;
}

/// A `Retry-After` header (RFC 9110 §10.2.3): a delay, or a time to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    /// Epoch seconds.
    At(i64),
}

impl RetryAfter {
    /// Delta-seconds or an HTTP date; `None` for anything else.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        if let Ok(seconds) = header.parse::<u64>() {
            return Some(Self::Seconds(seconds));
        }
        let at = chrono::DateTime::parse_from_rfc2822(header).ok()?;
        Some(Self::At(at.timestamp()))
    }

    /// The seconds to wait from `now` (none once its time has passed).
    pub fn seconds_from(self, now: i64) -> u64 {
        match self {
            Self::Seconds(seconds) => seconds,
            Self::At(at) => u64::try_from(at.saturating_sub(now)).unwrap_or(0),
        }
    }
}

/// What a webhook answered to one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReply {
    pub status: u16,
    /// `Retry-After`, when the answer carried one that reads.
    pub retry_after: Option<RetryAfter>,
    /// The start of the body, for error messages (never the URL).
    pub body: String,
}

/// The configuration's parts as they stand now (SSM: one parameter, or every parameter under a
/// path), with their versions, so that a running function can tell a new version.
#[async_trait]
pub trait ConfigReader: Send + Sync + Debug {
    async fn parts(&self) -> Result<Vec<crate::config::refresh::Versioned>>;
}

/// Tags of ECS resources (`ListTagsForResource`), for routing rules that match on them.
#[async_trait]
pub trait TagReader: Send + Sync + Debug {
    /// The tags of a service or task, by its ARN.
    async fn resource_tags(&self, arn: &str) -> Result<BTreeMap<String, String>>;
}

/// What the functions read of ECS services.
#[async_trait]
pub trait ServiceReader: Send + Sync + Debug {
    /// DescribeServices for one service; `None` when ECS does not know it.
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ServiceSnapshot>>;
    /// The cluster's service names (ListServices, at most `limit`).
    async fn list_services(&self, cluster: &str, limit: u32) -> Result<Vec<String>>;
    /// DescribeServices for up to 10 services: each found one by name.
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceSnapshot)>>;
}

/// What `task-triage` reads of tasks and task definitions to explain a failure.
#[async_trait]
pub trait TaskInspector: Send + Sync + Debug {
    /// The awslogs target of `container` in a task definition, if it logs with awslogs.
    async fn awslogs_target(
        &self,
        task_definition: &str,
        container: &str,
    ) -> Result<Option<AwsLogsTarget>>;
    /// The service's most recently stopped tasks (at most `limit`), as task details.
    async fn recent_stopped_tasks(
        &self,
        cluster: &str,
        service: &str,
        limit: u32,
    ) -> Result<Vec<TaskDetail>>;
    /// The service's tasks that should be running (started or on their way), at most `limit`.
    async fn service_tasks(
        &self,
        cluster: &str,
        service: &str,
        limit: u32,
    ) -> Result<Vec<TaskDetail>>;
}

/// Changing a service's desired count (`alarm-scaler`).
#[async_trait]
pub trait ServiceScaler: Send + Sync + Debug {
    /// Sets a service's desired count, and nothing else.
    async fn set_desired_count(&self, cluster: &str, service: &str, desired: u32) -> Result<()>;
}

/// Finding standalone tasks (`batch-runner`'s overlap guard and timeouts).
#[async_trait]
pub trait TaskLister: Send + Sync + Debug {
    /// Tasks started with `started_by` that are running or about to.
    async fn tasks_started_by(&self, cluster: &str, started_by: &str) -> Result<Vec<String>>;
    /// When each task started.
    async fn task_start_times(&self, cluster: &str, arns: &[String]) -> Result<Vec<RunningTask>>;
}

/// Starting and stopping standalone tasks (`batch-runner`).
#[async_trait]
pub trait TaskRunner: Send + Sync + Debug {
    /// One RunTask call.
    async fn run_task(&self, request: &RunTaskRequest) -> Result<RunTaskResult>;
    /// Stops one task with a reason ECS shows as its stoppedReason.
    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<()>;
}

/// Container logs.
#[async_trait]
pub trait LogReader: Send + Sync + Debug {
    /// The last `lines` events of a stream, oldest first.
    async fn tail(&self, group: &str, stream: &str, lines: u32) -> Result<Vec<String>>;
}

/// CloudWatch alarms, read on `alarm-scaler`'s tick.
#[async_trait]
pub trait AlarmReader: Send + Sync + Debug {
    /// The current state of each named alarm that exists (unknown names are left out).
    async fn current_alarms(&self, names: &[String]) -> Result<Vec<AlarmTransition>>;
}

/// Application Auto Scaling scalable targets.
#[async_trait]
pub trait ScalableTargets: Send + Sync + Debug {
    /// The registered scalable target's bounds for an ECS service, if one is registered.
    async fn service_bounds(&self, cluster: &str, service: &str) -> Result<Option<TargetBounds>>;
}

/// The work waiting in SQS queues (`alarm-scaler`'s target policies).
#[async_trait]
pub trait BacklogReader: Send + Sync + Debug {
    /// The messages waiting in the queue at `url`: the visible ones, and with `in_flight` those
    /// being processed too (`ApproximateNumberOfMessagesNotVisible`).
    async fn backlog(&self, url: &str, in_flight: bool) -> Result<u64>;
}

/// CloudWatch metric values (`alarm-scaler`'s target policies).
#[async_trait]
pub trait MetricReader: Send + Sync + Debug {
    /// The latest datapoint of each query, by its key, looking back a few of its periods from
    /// `now_s`; a query with no datapoint there is left out.
    async fn latest_values(
        &self,
        queries: &[(String, MetricSignal)],
        now_s: i64,
    ) -> Result<BTreeMap<String, f64>>;
}

/// The account and region a resource lives in: where the calls about it must go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl Scope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            region: region.into(),
        }
    }

    /// The scope an ARN names (`arn:aws:ecs:eu-west-1:222233334444:cluster/shop`), if it
    /// names both an account and a region; a plain name has none.
    pub fn of_arn(name_or_arn: &str) -> Option<Self> {
        let arn = crate::arn::Arn::parse(name_or_arn).ok()?;
        let (account, region) = (arn.account()?, arn.region()?);
        crate::arn::is_account_id(account).then(|| Self::new(account, region))
    }

    /// The scope of an event: its `account` and `region`, else those of `arn` (a resource it
    /// names).
    pub fn of_event(
        account: Option<&str>,
        region: Option<&str>,
        arn: Option<&str>,
    ) -> Option<Self> {
        match (account, region) {
            (Some(account), Some(region)) if !account.is_empty() && !region.is_empty() => {
                Some(Self::new(account, region))
            }
            _ => arn.and_then(Self::of_arn),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "account {} in {}", self.account, self.region)
    }
}

/// The ports that act on one account's and region's services, tasks and logs (ECS, Logs and
/// the scalable targets of Application Auto Scaling).
#[derive(Debug, Clone)]
pub struct ScopedPorts {
    pub services: std::sync::Arc<dyn ServiceReader>,
    pub inspector: std::sync::Arc<dyn TaskInspector>,
    pub scaling: std::sync::Arc<dyn ServiceScaler>,
    pub tasks: std::sync::Arc<dyn TaskRunner>,
    pub task_list: std::sync::Arc<dyn TaskLister>,
    pub logs: std::sync::Arc<dyn LogReader>,
    pub targets: std::sync::Arc<dyn ScalableTargets>,
    pub tags: std::sync::Arc<dyn TagReader>,
    pub backlog: std::sync::Arc<dyn BacklogReader>,
    pub metrics: std::sync::Arc<dyn MetricReader>,
}

/// The reading ports of one account and region: [`ScopedPorts`] without its writers.
#[derive(Debug, Clone)]
pub struct ScopedReaders {
    pub services: std::sync::Arc<dyn ServiceReader>,
    pub inspector: std::sync::Arc<dyn TaskInspector>,
    pub task_list: std::sync::Arc<dyn TaskLister>,
    pub logs: std::sync::Arc<dyn LogReader>,
    pub targets: std::sync::Arc<dyn ScalableTargets>,
    pub tags: std::sync::Arc<dyn TagReader>,
    pub backlog: std::sync::Arc<dyn BacklogReader>,
    pub metrics: std::sync::Arc<dyn MetricReader>,
}

impl From<ScopedPorts> for ScopedReaders {
    fn from(ports: ScopedPorts) -> Self {
        Self {
            services: ports.services,
            inspector: ports.inspector,
            task_list: ports.task_list,
            logs: ports.logs,
            targets: ports.targets,
            tags: ports.tags,
            backlog: ports.backlog,
            metrics: ports.metrics,
        }
    }
}

impl ScopedPorts {
    /// Every port [`Unavailable`]: the base a function's wiring fills in.
    pub fn unwired() -> Self {
        let port = std::sync::Arc::new(Unavailable);
        Self {
            services: port.clone(),
            inspector: port.clone(),
            scaling: port.clone(),
            tasks: port.clone(),
            task_list: port.clone(),
            logs: port.clone(),
            targets: port.clone(),
            tags: port.clone(),
            backlog: port.clone(),
            metrics: port,
        }
    }

    /// Ports whose every call fails with `reason` (an account the function cannot reach).
    pub fn unreachable(scope: &Scope, reason: impl Into<String>) -> Self {
        let port = std::sync::Arc::new(Unreachable {
            scope: scope.clone(),
            reason: reason.into(),
        });
        Self {
            services: port.clone(),
            inspector: port.clone(),
            scaling: port.clone(),
            tasks: port.clone(),
            task_list: port.clone(),
            logs: port.clone(),
            targets: port.clone(),
            tags: port.clone(),
            backlog: port.clone(),
            metrics: port,
        }
    }
}

/// Reaching the accounts and regions the events come from (many-account layouts: a member
/// account's ECS and logs are read, and its services scaled, through a role assumed there).
#[async_trait]
pub trait Reach: Send + Sync + Debug {
    /// The ports acting in `scope`; `None` when it is the function's own account and region (its
    /// own ports serve). An account it cannot reach gets [`ScopedPorts::unreachable`] ports,
    /// so each call says why.
    async fn ports_in(&self, scope: &Scope) -> Option<ScopedPorts>;
}

/// [`Reach`] for reading only: the reading ports of another account or region, with no way to
/// its writers (the reach it wraps is private to this module). What dry-run ports hold.
#[derive(Debug, Clone)]
pub struct ReadReach(std::sync::Arc<dyn Reach>);

impl ReadReach {
    pub fn new(reach: std::sync::Arc<dyn Reach>) -> Self {
        Self(reach)
    }

    /// The reading ports of `scope`; `None` when the function's own serve.
    pub async fn readers_in(&self, scope: &Scope) -> Option<ScopedReaders> {
        self.0.ports_in(scope).await.map(ScopedReaders::from)
    }
}

/// Only the function's own account and region: every scope is served by its own ports.
#[derive(Debug, Clone, Copy, Default)]
pub struct HomeOnly;

#[async_trait]
impl Reach for HomeOnly {
    async fn ports_in(&self, _: &Scope) -> Option<ScopedPorts> {
        None
    }
}

/// The ports of an account or region the function cannot reach: every call is an error saying
/// which and why.
#[derive(Debug, Clone)]
struct Unreachable {
    scope: Scope,
    reason: String,
}

impl Unreachable {
    fn fail<T>(&self) -> Result<T> {
        Err(crate::error::AutopilotError::Unreachable {
            account: self.scope.account.clone(),
            region: self.scope.region.clone(),
            reason: self.reason.clone(),
        })
    }
}

#[async_trait]
impl ServiceReader for Unreachable {
    async fn describe_service(&self, _: &str, _: &str) -> Result<Option<ServiceSnapshot>> {
        self.fail()
    }
    async fn list_services(&self, _: &str, _: u32) -> Result<Vec<String>> {
        self.fail()
    }
    async fn describe_services(
        &self,
        _: &str,
        _: &[String],
    ) -> Result<Vec<(String, ServiceSnapshot)>> {
        self.fail()
    }
}

#[async_trait]
impl TaskInspector for Unreachable {
    async fn awslogs_target(&self, _: &str, _: &str) -> Result<Option<AwsLogsTarget>> {
        self.fail()
    }
    async fn recent_stopped_tasks(&self, _: &str, _: &str, _: u32) -> Result<Vec<TaskDetail>> {
        self.fail()
    }
    async fn service_tasks(&self, _: &str, _: &str, _: u32) -> Result<Vec<TaskDetail>> {
        self.fail()
    }
}

#[async_trait]
impl ServiceScaler for Unreachable {
    async fn set_desired_count(&self, _: &str, _: &str, _: u32) -> Result<()> {
        self.fail()
    }
}

#[async_trait]
impl TaskLister for Unreachable {
    async fn tasks_started_by(&self, _: &str, _: &str) -> Result<Vec<String>> {
        self.fail()
    }
    async fn task_start_times(&self, _: &str, _: &[String]) -> Result<Vec<RunningTask>> {
        self.fail()
    }
}

#[async_trait]
impl TaskRunner for Unreachable {
    async fn run_task(&self, _: &RunTaskRequest) -> Result<RunTaskResult> {
        self.fail()
    }
    async fn stop_task(&self, _: &str, _: &str, _: &str) -> Result<()> {
        self.fail()
    }
}

#[async_trait]
impl LogReader for Unreachable {
    async fn tail(&self, _: &str, _: &str, _: u32) -> Result<Vec<String>> {
        self.fail()
    }
}

#[async_trait]
impl ScalableTargets for Unreachable {
    async fn service_bounds(&self, _: &str, _: &str) -> Result<Option<TargetBounds>> {
        self.fail()
    }
}

#[async_trait]
impl TagReader for Unreachable {
    async fn resource_tags(&self, _: &str) -> Result<BTreeMap<String, String>> {
        self.fail()
    }
}

#[async_trait]
impl BacklogReader for Unreachable {
    async fn backlog(&self, _: &str, _: bool) -> Result<u64> {
        self.fail()
    }
}

#[async_trait]
impl MetricReader for Unreachable {
    async fn latest_values(
        &self,
        _: &[(String, MetricSignal)],
        _: i64,
    ) -> Result<BTreeMap<String, f64>> {
        self.fail()
    }
}

/// The system clock and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now_s(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A clock stopped at one instant (the CLI's `--now`): decisions are made as at that time;
/// waits pass in real time.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

#[async_trait]
impl Clock for FixedClock {
    fn now_s(&self) -> i64 {
        self.0
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A port a function does not use: every call is an error naming the operation. Each function
/// builds only the AWS ports it needs (so its binary links only their SDK code) and this in the
/// place of the others.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unavailable;

fn unavailable<T>(operation: &'static str) -> Result<T> {
    Err(crate::error::AutopilotError::PortNotWired { operation })
}

#[async_trait]
impl ServiceReader for Unavailable {
    async fn describe_service(&self, _: &str, _: &str) -> Result<Option<ServiceSnapshot>> {
        unavailable("DescribeServices")
    }
    async fn list_services(&self, _: &str, _: u32) -> Result<Vec<String>> {
        unavailable("ListServices")
    }
    async fn describe_services(
        &self,
        _: &str,
        _: &[String],
    ) -> Result<Vec<(String, ServiceSnapshot)>> {
        unavailable("DescribeServices")
    }
}

#[async_trait]
impl TaskInspector for Unavailable {
    async fn awslogs_target(&self, _: &str, _: &str) -> Result<Option<AwsLogsTarget>> {
        unavailable("DescribeTaskDefinition")
    }
    async fn recent_stopped_tasks(&self, _: &str, _: &str, _: u32) -> Result<Vec<TaskDetail>> {
        unavailable("ListTasks")
    }
    async fn service_tasks(&self, _: &str, _: &str, _: u32) -> Result<Vec<TaskDetail>> {
        unavailable("ListTasks")
    }
}

#[async_trait]
impl ServiceScaler for Unavailable {
    async fn set_desired_count(&self, _: &str, _: &str, _: u32) -> Result<()> {
        unavailable("UpdateService")
    }
}

#[async_trait]
impl TaskLister for Unavailable {
    async fn tasks_started_by(&self, _: &str, _: &str) -> Result<Vec<String>> {
        unavailable("ListTasks")
    }
    async fn task_start_times(&self, _: &str, _: &[String]) -> Result<Vec<RunningTask>> {
        unavailable("DescribeTasks")
    }
}

#[async_trait]
impl TaskRunner for Unavailable {
    async fn run_task(&self, _: &RunTaskRequest) -> Result<RunTaskResult> {
        unavailable("RunTask")
    }
    async fn stop_task(&self, _: &str, _: &str, _: &str) -> Result<()> {
        unavailable("StopTask")
    }
}

#[async_trait]
impl LogReader for Unavailable {
    async fn tail(&self, _: &str, _: &str, _: u32) -> Result<Vec<String>> {
        unavailable("GetLogEvents")
    }
}

#[async_trait]
impl AlarmReader for Unavailable {
    async fn current_alarms(&self, _: &[String]) -> Result<Vec<AlarmTransition>> {
        unavailable("DescribeAlarms")
    }
}

#[async_trait]
impl ScalableTargets for Unavailable {
    async fn service_bounds(&self, _: &str, _: &str) -> Result<Option<TargetBounds>> {
        unavailable("DescribeScalableTargets")
    }
}

#[async_trait]
impl TagReader for Unavailable {
    async fn resource_tags(&self, _: &str) -> Result<BTreeMap<String, String>> {
        unavailable("ListTagsForResource")
    }
}

#[async_trait]
impl BacklogReader for Unavailable {
    async fn backlog(&self, _: &str, _: bool) -> Result<u64> {
        unavailable("GetQueueAttributes")
    }
}

#[async_trait]
impl MetricReader for Unavailable {
    async fn latest_values(
        &self,
        _: &[(String, MetricSignal)],
        _: i64,
    ) -> Result<BTreeMap<String, f64>> {
        unavailable("GetMetricData")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unwired_port_names_the_operation_and_never_panics() {
        let error = Unavailable
            .set_desired_count("c", "s", 1)
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "PortNotWired");
        assert_eq!(
            error.to_string(),
            "UpdateService is not wired in this function"
        );
        let error = Unavailable.current_alarms(&[]).await.unwrap_err();
        assert!(error.to_string().starts_with("DescribeAlarms"), "{error}");
    }
}
