//! Orchestration of each function: cold-start [`Setup`] (configuration, the [`Backend`] of
//! ports), and handlers that read the event, ask the pure core for decisions and carry them out
//! through the ports. Shared steps live here once: taking and settling a claim ([`claim`]),
//! delivering a notice ([`publish`]) and counting a stop into its storm window ([`storm`]).
//!
//! A new event source is a parser in [`crate::events`], a decision in the pure core and a
//! handler (or a branch of one) here; a new destination is a [`crate::ports::Notifier`].

pub mod batch;
pub mod claim;
pub mod contend;
pub mod enrich;
pub mod incident;
pub mod live;
pub mod publish;
pub mod scaler;
pub mod storm;
pub mod triage;
pub mod webhook;

use std::sync::Arc;

use crate::aws::reach::{MemberRoles, ScopedWiring};
use crate::aws::sns::{AwsNotifier, SnsNotifier};
use crate::aws::state_table::StateTable;
use crate::aws::webhook::Webhooks;
use crate::aws::{ssm, AwsClients};
use crate::config::{ConfigSource, Deployment, NotifyConfig, StackConfig, ENV_SSM, ENV_TOPIC};
use crate::entry::{in_lambda, CommonArgs, Mode};
use crate::error::{AutopilotError, Result};
use crate::ports::{
    AlarmReader, BacklogReader, Clock, LogReader, MetricReader, Notifier, Reach, ReadReach,
    ScalableTargets, Scope, ScopedPorts, ServiceReader, ServiceScaler, StateReader, StateStore,
    SystemClock, TagReader, TaskInspector, TaskLister, TaskRunner, Unavailable,
};
use crate::trust::Accounts;
use publish::Courier;

/// The ports a function reads through: readers only, in every mode that calls out (live and
/// dry-run). Nothing here can write; writes go through [`Writers`], which only a live
/// [`Backend`] has.
#[derive(Debug, Clone)]
pub struct Ports {
    /// The state table, when `STATE_TABLE` is set.
    pub state: Option<Arc<dyn StateReader>>,
    pub services: Arc<dyn ServiceReader>,
    pub inspector: Arc<dyn TaskInspector>,
    pub task_list: Arc<dyn TaskLister>,
    pub logs: Arc<dyn LogReader>,
    pub alarms: Arc<dyn AlarmReader>,
    pub targets: Arc<dyn ScalableTargets>,
    /// ECS resources' tags (routing rules that match on them).
    pub tags: Arc<dyn TagReader>,
    /// SQS backlogs and CloudWatch metrics (target policies).
    pub backlog: Arc<dyn BacklogReader>,
    pub metrics: Arc<dyn MetricReader>,
    /// The reading ports of other accounts and regions (see [`Ports::in_scope`]).
    pub reach: ReadReach,
}

/// What a live function writes through: the state table, ECS's writes and the notifier.
#[derive(Debug, Clone)]
pub struct Writers {
    /// The state table, when `STATE_TABLE` is set.
    pub state: Option<Arc<dyn StateStore>>,
    pub scaling: Arc<dyn ServiceScaler>,
    pub tasks: Arc<dyn TaskRunner>,
    pub notifier: Arc<dyn Notifier>,
    /// The writing ports of other accounts and regions (see [`Writers::in_scope`]).
    pub reach: Arc<dyn Reach>,
}

/// How a function wires its AWS ports from the clients and the deployment's settings. Each
/// function names only the ports it uses ([`Ports::for_triage`] …), so its binary links only
/// those operations' SDK code; the others are [`Unavailable`].
pub type AwsPorts = fn(&AwsClients, &Deployment) -> Wired;

/// What a function's wiring gives: its readers and the writers a live run adds.
#[derive(Debug, Clone)]
pub struct Wired {
    pub ports: Ports,
    /// The writers, without the notifier (a live [`Backend`] adds it).
    pub state: Option<Arc<dyn StateStore>>,
    pub scaling: Arc<dyn ServiceScaler>,
    pub tasks: Arc<dyn TaskRunner>,
    pub reach: Arc<dyn Reach>,
}

impl Wired {
    /// The writers of a live run that notifies through `notifier`.
    pub fn writers(&self, notifier: Arc<dyn Notifier>) -> Writers {
        Writers {
            state: self.state.clone(),
            scaling: self.scaling.clone(),
            tasks: self.tasks.clone(),
            notifier,
            reach: self.reach.clone(),
        }
    }
}

impl Ports {
    /// The ports reading where a resource lives: the reading ports of `scope` when it is
    /// another account or region than the function's own, else these.
    pub async fn in_scope(&self, scope: Option<&Scope>) -> Ports {
        let Some(scope) = scope else {
            return self.clone();
        };
        match self.reach.readers_in(scope).await {
            Some(scoped) => Ports {
                services: scoped.services,
                inspector: scoped.inspector,
                task_list: scoped.task_list,
                logs: scoped.logs,
                targets: scoped.targets,
                tags: scoped.tags,
                backlog: scoped.backlog,
                metrics: scoped.metrics,
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// `task-triage`: services, tasks and task definitions (context, stopped tasks), logs.
    pub fn for_triage(clients: &AwsClients, deployment: &Deployment) -> Wired {
        fn scoped(clients: &AwsClients) -> ScopedPorts {
            ScopedPorts {
                services: Arc::new(clients.clone()),
                inspector: Arc::new(clients.clone()),
                logs: Arc::new(clients.clone()),
                tags: Arc::new(clients.clone()),
                ..ScopedPorts::unwired()
            }
        }
        on_aws(clients, deployment, "task-triage", scoped)
    }

    /// `alarm-scaler`: services, their desired count, alarms, scalable targets, and the SQS
    /// backlogs and CloudWatch metrics of target policies.
    pub fn for_scaler(clients: &AwsClients, deployment: &Deployment) -> Wired {
        fn scoped(clients: &AwsClients) -> ScopedPorts {
            ScopedPorts {
                services: Arc::new(clients.clone()),
                scaling: Arc::new(clients.clone()),
                targets: Arc::new(clients.clone()),
                tags: Arc::new(clients.clone()),
                backlog: Arc::new(clients.clone()),
                metrics: Arc::new(clients.clone()),
                ..ScopedPorts::unwired()
            }
        }
        let mut wired = on_aws(clients, deployment, "alarm-scaler", scoped);
        wired.ports.alarms = Arc::new(clients.clone());
        wired
    }

    /// `batch-runner`: standalone tasks.
    pub fn for_runner(clients: &AwsClients, deployment: &Deployment) -> Wired {
        fn scoped(clients: &AwsClients) -> ScopedPorts {
            ScopedPorts {
                tasks: Arc::new(clients.clone()),
                task_list: Arc::new(clients.clone()),
                tags: Arc::new(clients.clone()),
                ..ScopedPorts::unwired()
            }
        }
        on_aws(clients, deployment, "batch-runner", scoped)
    }
}

/// The ports `wire` names on `clients`, the same ones in every scope the deployment reaches,
/// and the state table.
fn on_aws(
    clients: &AwsClients,
    deployment: &Deployment,
    function: &str,
    wire: ScopedWiring,
) -> Wired {
    let scoped = wire(clients);
    let state = deployment
        .state_table
        .as_deref()
        .map(|table| Arc::new(StateTable::new(clients.clone(), table)));
    let reach: Arc<dyn Reach> = Arc::new(MemberRoles::new(
        clients.clone(),
        deployment.accounts(),
        deployment.member_role.clone(),
        function,
        wire,
    ));
    Wired {
        ports: Ports {
            state: state.clone().map(|s| s as Arc<dyn StateReader>),
            services: scoped.services,
            inspector: scoped.inspector,
            task_list: scoped.task_list,
            logs: scoped.logs,
            alarms: Arc::new(Unavailable),
            targets: scoped.targets,
            tags: scoped.tags,
            backlog: scoped.backlog,
            metrics: scoped.metrics,
            reach: ReadReach::new(reach.clone()),
        },
        state: state.map(|s| s as Arc<dyn StateStore>),
        scaling: scoped.scaling,
        tasks: scoped.tasks,
        reach,
    }
}

impl Writers {
    /// The writers acting where a resource lives: those of `scope` when it is another account
    /// or region than the function's own, else these.
    pub async fn in_scope(&self, scope: Option<&Scope>) -> Writers {
        let Some(scope) = scope else {
            return self.clone();
        };
        match self.reach.ports_in(scope).await {
            Some(scoped) => Writers {
                scaling: scoped.scaling,
                tasks: scoped.tasks,
                ..self.clone()
            },
            None => self.clone(),
        }
    }
}

/// The state table as a mode may use it: written (live) or only read (dry-run).
#[derive(Debug, Clone, Copy)]
pub enum State<'a> {
    Write(&'a dyn StateStore),
    Read(&'a dyn StateReader),
}

impl<'a> State<'a> {
    /// What reading sees, in either mode.
    pub fn reader(self) -> &'a dyn StateReader {
        match self {
            Self::Write(store) => store,
            Self::Read(reader) => reader,
        }
    }

    /// The store to write, when live.
    pub fn writer(self) -> Option<&'a dyn StateStore> {
        match self {
            Self::Write(store) => Some(store),
            Self::Read(_) => None,
        }
    }
}

/// How much a function may do, with the ports that mode has and no others: only `Live` has
/// [`Writers`], so code that writes must hold them, and a dry run cannot reach a write.
///
/// What a dry run holds has no write to call. Its state table is a [`StateReader`], which has
/// no claim (nor any other write):
///
/// ```compile_fail,E0599
/// use autopilot::app::Backend;
/// use autopilot::ports::*;
///
/// async fn claim_in_a_dry_run(backend: &Backend) {
///     let state = backend.state().unwrap();
///     state.claim("dedup#task", 0, 60, 3600).await.unwrap();
/// }
/// ```
///
/// its [`Ports`] have no UpdateService:
///
/// ```compile_fail,E0609
/// use autopilot::app::Backend;
///
/// async fn scale_in_a_dry_run(backend: &Backend) {
///     let ports = backend.ports().unwrap();
///     ports.scaling.set_desired_count("shop", "api", 3).await.unwrap();
/// }
/// ```
///
/// nor RunTask, in its own account or through another's role:
///
/// ```compile_fail,E0609
/// use autopilot::app::Backend;
/// use autopilot::ports::Scope;
///
/// async fn run_elsewhere_in_a_dry_run(backend: &Backend, scope: &Scope) {
///     let ports = backend.ports().unwrap().in_scope(Some(scope)).await;
///     let _ = &ports.tasks;
/// }
/// ```
///
/// and writing goes through the writers, which only a live backend has:
///
/// ```no_run
/// use autopilot::app::Backend;
/// use autopilot::ports::*;
///
/// async fn scale(backend: &Backend) {
///     if let Some(writers) = backend.writers() {
///         writers.scaling.set_desired_count("shop", "api", 3).await.unwrap();
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub enum Backend {
    /// Reads through `ports`, writes and notifies through `writers`.
    Live { ports: Ports, writers: Writers },
    /// Reads, writes nothing.
    DryRun(Ports),
    /// No call outside the process at all.
    Offline,
}

impl Backend {
    pub fn mode(&self) -> Mode {
        match self {
            Self::Live { .. } => Mode::Live,
            Self::DryRun(_) => Mode::DryRun,
            Self::Offline => Mode::Offline,
        }
    }

    /// The ports to read through (live and dry-run).
    pub fn ports(&self) -> Option<&Ports> {
        match self {
            Self::Live { ports, .. } | Self::DryRun(ports) => Some(ports),
            Self::Offline => None,
        }
    }

    /// The state table to read, when the mode reads and `STATE_TABLE` is set.
    pub fn state(&self) -> Option<&dyn StateReader> {
        self.ports()?.state.as_deref()
    }

    /// The state table as this mode may use it, when it has one.
    pub fn state_access(&self) -> Option<State<'_>> {
        match self {
            Self::Live { writers, .. } => writers.state.as_deref().map(State::Write),
            Self::DryRun(ports) => ports.state.as_deref().map(State::Read),
            Self::Offline => None,
        }
    }

    /// The writers of a live backend.
    pub fn writers(&self) -> Option<&Writers> {
        match self {
            Self::Live { writers, .. } => Some(writers),
            _ => None,
        }
    }

    /// The state table to write, on a live backend with one: what acting once needs.
    pub fn live_state(&self) -> Option<&dyn StateStore> {
        self.writers()?.state.as_deref()
    }

    /// The AWS adapters for `mode`, wired by `wire`; a live run publishes, so it needs
    /// `NOTIFY_TOPIC_ARN`, and posts to the webhooks of `notify`.
    pub fn aws(
        mode: Mode,
        clients: Option<&AwsClients>,
        deployment: &Deployment,
        wire: AwsPorts,
        notify: &NotifyConfig,
    ) -> Result<Self> {
        let Some(clients) = clients.filter(|_| mode != Mode::Offline) else {
            return Ok(Self::Offline);
        };
        let wired = wire(clients, deployment);
        if mode == Mode::DryRun {
            return Ok(Self::DryRun(wired.ports));
        }
        let topic = deployment.topic_arn.as_deref().ok_or_else(|| {
            AutopilotError::invalid_config(ENV_TOPIC, "required to publish notifications")
        })?;
        let webhooks = notify
            .webhooks
            .iter()
            .map(|(name, spec)| (name.clone(), spec.url_ssm.clone()))
            .collect();
        let writers = wired.writers(Arc::new(AwsNotifier {
            topics: SnsNotifier::new(clients.clone(), topic),
            webhooks: Webhooks::new(clients.clone(), webhooks),
        }));
        Ok(Self::Live {
            ports: wired.ports,
            writers,
        })
    }
}

/// What every function builds once per cold start.
#[derive(Debug, Clone)]
pub struct Setup {
    pub config: StackConfig,
    /// Routes and delivers notices (`notify`).
    pub courier: Courier,
    pub backend: Backend,
    pub clock: Arc<dyn Clock>,
    /// The region the functions run in (for console links when an event names none).
    pub region: Option<String>,
    /// The account they run in (`AUTOPILOT_ACCOUNT_ID`), when known, and its members: an event
    /// of any other account is ignored.
    pub accounts: Accounts,
    /// Where a live function's configuration is looked at again (SSM), and how it is rebuilt.
    pub reload: Option<live::Reload>,
    /// The stack's template parameters the configuration is checked against (under Lambda).
    pub stack_parameters: Option<crate::config::stack::StackParameters>,
}

impl Setup {
    /// Loads and validates the configuration document and builds the AWS backend for the mode
    /// the command line asks for (none: live, under Lambda) with the ports `wire` names (no
    /// client at all offline); deliveries show what the command line asks to see.
    pub async fn init(cli: Option<&CommonArgs>, wire: AwsPorts) -> Result<Self> {
        let mode = cli.map_or(Mode::Live, CommonArgs::mode);
        let presentation = cli.map(CommonArgs::presentation).unwrap_or_default();
        let mut setup = Self::init_for(mode, wire).await?;
        setup.courier = setup.courier.presenting(presentation);
        Ok(setup)
    }

    async fn init_for(mode: Mode, wire: AwsPorts) -> Result<Self> {
        let source = ConfigSource::from_lookup(crate::env::var)?;
        let clients = match mode {
            Mode::Offline => None,
            Mode::Live | Mode::DryRun => Some(AwsClients::from_env(in_lambda()).await),
        };
        let mut read_from = None;
        let config = match source {
            ConfigSource::Inline(json) => StackConfig::parse(&json)?,
            ConfigSource::SsmParameter(name) => {
                let clients = clients.as_ref().ok_or_else(|| {
                    AutopilotError::invalid_config(
                        ENV_SSM,
                        "offline mode makes no AWS call; pass the document in AUTOPILOT_CONFIG",
                    )
                })?;
                let by_path = name.ends_with('/');
                let reader = ssm::SsmConfig {
                    client: clients.ssm().clone(),
                    name,
                };
                let (config, versions) = first_configuration(&reader, by_path).await?;
                read_from = Some((reader, versions));
                config
            }
            ConfigSource::Defaults => StackConfig::default(),
        };
        let deployment = Deployment::from_lookup(crate::env::var)?;
        let region = clients
            .as_ref()
            .and_then(|c| c.sdk_config().region())
            .map(|r| r.to_string());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let rebuild: live::Rebuild = {
            let (clients, region, clock) = (clients.clone(), region.clone(), clock.clone());
            Arc::new(move |config: StackConfig| {
                let backend =
                    Backend::aws(mode, clients.as_ref(), &deployment, wire, &config.notify)?;
                Self::new(
                    config,
                    backend,
                    clock.clone(),
                    region.clone(),
                    deployment.accounts(),
                )
            })
        };
        let mut setup = rebuild(config)?;
        // Only a function serving events lives long enough to see a new version.
        if mode == Mode::Live {
            setup.stack_parameters = stack_parameters();
            setup.reload = read_from.map(|(reader, versions)| live::Reload {
                reader: Arc::new(reader),
                versions,
                rebuild,
            });
        }
        Ok(setup)
    }

    /// A setup from its parts; the courier is built from the configuration's `notify`.
    pub fn new(
        config: StackConfig,
        backend: Backend,
        clock: Arc<dyn Clock>,
        region: Option<String>,
        accounts: Accounts,
    ) -> Result<Self> {
        let courier = Courier::new(&config.notify, clock.clone())?;
        Ok(Self {
            config,
            courier,
            backend,
            clock,
            region,
            accounts,
            reload: None,
            stack_parameters: None,
        })
    }
}

/// The configuration at cold start from SSM (one parameter, or the parts under a path) and the
/// versions it was read from; every problem of the parts in the error, the first naming its
/// part and path.
async fn first_configuration(
    reader: &dyn crate::ports::ConfigReader,
    by_path: bool,
) -> Result<(StackConfig, crate::config::refresh::Versions)> {
    use crate::config::parts::parse_parts;
    use crate::config::refresh::Versions;
    let fetched = reader
        .parts()
        .await
        .map_err(|e| AutopilotError::invalid_config(ENV_SSM, e.to_string()))?;
    let versions = Versions::of(&fetched);
    let parts: Vec<_> = fetched.into_iter().map(|v| v.part).collect();
    match parts.as_slice() {
        [] => Err(AutopilotError::invalid_config(
            ENV_SSM,
            "no parameter under the path: write at least one part",
        )),
        // One document: its errors exactly as they always were (field and problem).
        [one] if !by_path => Ok((StackConfig::parse(&one.text)?, versions)),
        _ => match parse_parts(&parts) {
            Ok((config, merged)) => {
                for warning in merged.warnings {
                    tracing::warn!("configuration: {warning}");
                }
                Ok((config, versions))
            }
            Err(problems) => {
                let first = &problems[0];
                let more = match problems.len() - 1 {
                    0 => String::new(),
                    n => format!(" (and {n} more: check-config lists them)"),
                };
                let problem = match &first.part {
                    Some(part) => format!("{} (in {part}){more}", first.problem),
                    None => format!("{}{more}", first.problem),
                };
                Err(AutopilotError::invalid_config(first.path.clone(), problem))
            }
        },
    }
}

/// The template parameters the stack gave the function (`AUTOPILOT_STACK_PARAMETERS`, and the
/// ARN lists of its own sections in `AUTOPILOT_STACK_RESOURCES`), if any; unreadable ones are
/// logged and not checked against.
fn stack_parameters() -> Option<crate::config::stack::StackParameters> {
    use crate::config::{ENV_STACK_PARAMETERS, ENV_STACK_RESOURCES};
    let mut parameters = crate::config::stack::StackParameters::new();
    for name in [ENV_STACK_PARAMETERS, ENV_STACK_RESOURCES] {
        let Some(text) = crate::env::var(name) else {
            continue;
        };
        match crate::stack_file::from_json(&text) {
            Ok(given) => parameters.extend(given),
            Err(error) => {
                tracing::warn!(
                    "{name}: {error}; the configuration is not checked against the stack"
                );
                return None;
            }
        }
    }
    Some(parameters).filter(|p| !p.is_empty())
}
