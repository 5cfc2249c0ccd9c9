//! Section `jobs` of the configuration document: the batch job catalog of `batch-runner`, keyed by
//! job name, validated at cold start against ECS's limits (startedBy ≤ 36 characters after
//! shortening, container overrides ≤ 8 KiB, tag rules, network limits).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::policy;
use crate::error::{AutopilotError, Result};

/// Jobs keyed by name.
pub type JobCatalog = BTreeMap<String, JobSpec>;

/// What to do when a job's previous run is still going.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Start nothing and say so.
    #[default]
    Skip,
    /// Start alongside the running tasks.
    Allow,
    /// Stop the running tasks, then start.
    Replace,
}

/// ECS launch types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LaunchType {
    Fargate,
    Ec2,
    External,
}

impl LaunchType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fargate => "FARGATE",
            Self::Ec2 => "EC2",
            Self::External => "EXTERNAL",
        }
    }
}

/// One item of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityProviderItem {
    pub capacity_provider: String,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub base: Option<u32>,
}

/// awsvpc network settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
}

/// Overrides for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerOverride {
    /// The container's name in the task definition.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
}

/// Tag propagation of RunTask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PropagateTags {
    TaskDefinition,
    Service,
    None,
}

impl PropagateTags {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TaskDefinition => "TASK_DEFINITION",
            Self::Service => "SERVICE",
            Self::None => "NONE",
        }
    }
}

fn one() -> u32 {
    1
}

/// One batch job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub cluster: String,
    /// `family`, `family:revision` or a task definition ARN.
    pub task_definition: String,
    /// Tasks per run, 1–100 (RunTask starts at most 10 per call; larger runs are split).
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub launch_type: Option<LaunchType>,
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderItem>,
    /// Tried once the primary placement keeps failing for capacity.
    #[serde(default)]
    pub fallback_capacity_provider_strategy: Vec<CapacityProviderItem>,
    #[serde(default)]
    pub network: Option<Network>,
    #[serde(default)]
    pub overrides: Vec<ContainerOverride>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub propagate_tags: Option<PropagateTags>,
    #[serde(default)]
    pub overlap: Overlap,
    /// Stop tasks of this job running longer than this (checked on the tick).
    #[serde(default)]
    pub timeout_s: Option<u64>,
    #[serde(default)]
    pub notify_on_success: bool,
    /// Failed runs started again (see [`policy::RetryPolicy`]).
    #[serde(default)]
    pub retry: Option<policy::RetryPolicy>,
    /// Jobs whose run for the same scheduled time must succeed first; a job with `after` has
    /// no schedule of its own.
    #[serde(default)]
    pub after: Vec<String>,
    /// Start deadline and the window the job must run within, checked on the tick.
    #[serde(default)]
    pub expect: Option<policy::Expect>,
    /// Days run records are kept (1–3650).
    #[serde(default = "policy::default_history_days")]
    pub history_days: u32,
    /// Named values the command and environment use as `{name}`.
    #[serde(default)]
    pub parameters: BTreeMap<String, policy::Parameter>,
}

/// RunTask's limit on the container overrides document.
pub const MAX_OVERRIDES_BYTES: usize = 8 * 1024;
/// Tasks per run.
pub const MAX_COUNT: u32 = 100;

/// The job `name` of the catalog; an unknown name is an error on the event's `job` that lists
/// the catalog.
pub fn job<'a>(catalog: &'a JobCatalog, name: &str) -> Result<&'a JobSpec> {
    catalog.get(name).ok_or_else(|| {
        let known: Vec<&str> = catalog.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "no jobs".to_owned()
        } else {
            known.join(", ")
        };
        AutopilotError::invalid_event(
            "job",
            format!("unknown job `{name}`; the catalog has: {known}"),
        )
    })
}

/// Validates every job; errors name `jobs.<job>.<field>`.
pub fn validate(catalog: &JobCatalog) -> Result<()> {
    for (name, job) in catalog {
        let at = format!("jobs.{name}");
        if name.is_empty()
            || name.len() > 128
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(AutopilotError::invalid_config(
                at,
                "job names are 1–128 letters, digits, `-` or `_`",
            ));
        }
        job.validate(&at)?;
        policy::validate(job, &at)?;
    }
    policy::dependency_order(catalog)?;
    Ok(())
}

impl JobSpec {
    /// The job with each declared `{name}` in its container commands and environment replaced
    /// by the run's value (the values were checked against their patterns).
    pub fn with_parameters(&self, values: &BTreeMap<String, String>) -> Self {
        let mut spec = self.clone();
        if values.is_empty() {
            return spec;
        }
        for container in &mut spec.overrides {
            if let Some(command) = &mut container.command {
                for part in command.iter_mut() {
                    *part = policy::substitute(part, values);
                }
            }
            for value in container.environment.values_mut() {
                *value = policy::substitute(value, values);
            }
        }
        spec
    }

    /// Checks one job; `at` is its JSON path.
    pub fn validate(&self, at: &str) -> Result<()> {
        let bad = |field: &str, problem: String| {
            Err(AutopilotError::invalid_config(
                format!("{at}.{field}"),
                problem,
            ))
        };
        if self.cluster.trim().is_empty() {
            return bad("cluster", "must not be empty".into());
        }
        if self.task_definition.trim().is_empty() || self.task_definition.contains(' ') {
            return bad(
                "task_definition",
                "expected family, family:revision or a task definition ARN".into(),
            );
        }
        if !(1..=MAX_COUNT).contains(&self.count) {
            return bad(
                "count",
                format!("{} is outside 1..={MAX_COUNT}", self.count),
            );
        }
        if self.launch_type.is_some() && !self.capacity_provider_strategy.is_empty() {
            return bad(
                "capacity_provider_strategy",
                "give launch_type or capacity_provider_strategy, not both".into(),
            );
        }
        for (field, strategy) in [
            (
                "capacity_provider_strategy",
                &self.capacity_provider_strategy,
            ),
            (
                "fallback_capacity_provider_strategy",
                &self.fallback_capacity_provider_strategy,
            ),
        ] {
            if strategy.len() > 20 {
                return bad(field, "at most 20 capacity providers".into());
            }
            if strategy.iter().filter(|i| i.base.unwrap_or(0) > 0).count() > 1 {
                return bad(field, "only one capacity provider may have a base".into());
            }
            for (index, item) in strategy.iter().enumerate() {
                if item.capacity_provider.trim().is_empty() {
                    return bad(
                        &format!("{field}[{index}].capacity_provider"),
                        "must not be empty".into(),
                    );
                }
                if item.weight.is_some_and(|w| w > 1000) {
                    return bad(&format!("{field}[{index}].weight"), "at most 1000".into());
                }
                if item.base.is_some_and(|b| b > 100_000) {
                    return bad(&format!("{field}[{index}].base"), "at most 100000".into());
                }
            }
        }
        if let Some(network) = &self.network {
            if network.subnets.is_empty() || network.subnets.len() > 16 {
                return bad("network.subnets", "needs 1–16 subnets".into());
            }
            if network.security_groups.len() > 5 {
                return bad("network.security_groups", "at most 5".into());
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, container) in self.overrides.iter().enumerate() {
            if container.name.trim().is_empty() {
                return bad(
                    &format!("overrides[{index}].name"),
                    "must not be empty".into(),
                );
            }
            if !seen.insert(&container.name) {
                return bad(
                    &format!("overrides[{index}].name"),
                    format!("container {} is overridden twice", container.name),
                );
            }
        }
        let overrides_size = serde_json::to_string(&self.overrides)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if overrides_size > MAX_OVERRIDES_BYTES {
            return bad(
                "overrides",
                format!("{overrides_size} bytes of overrides; RunTask accepts at most {MAX_OVERRIDES_BYTES}"),
            );
        }
        if self.tags.len() > 50 {
            return bad("tags", format!("{} tags; ECS allows 50", self.tags.len()));
        }
        for (key, value) in &self.tags {
            if key.is_empty() || key.chars().count() > 128 {
                return bad(&format!("tags.{key}"), "keys are 1–128 characters".into());
            }
            if key.to_ascii_lowercase().starts_with("aws:") {
                return bad(&format!("tags.{key}"), "the aws: prefix is reserved".into());
            }
            if value.chars().count() > 256 {
                return bad(
                    &format!("tags.{key}"),
                    "values are at most 256 characters".into(),
                );
            }
            let allowed = |c: char| c.is_alphanumeric() || " +-=._:/@".contains(c);
            if !key.chars().all(allowed) || !value.chars().all(allowed) {
                return bad(
                    &format!("tags.{key}"),
                    "tags use letters, digits, spaces and + - = . _ : / @".into(),
                );
            }
        }
        if self.timeout_s == Some(0) {
            return bad("timeout_s", "must be positive".into());
        }
        Ok(())
    }
}
