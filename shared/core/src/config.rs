//! The stack's one JSON configuration document: its types, defaults, validation and loading.
//!
//! The document comes from `AUTOPILOT_CONFIG` (inline JSON) or from the SSM parameter named by
//! `AUTOPILOT_CONFIG_SSM`; with neither, every default applies. Unknown keys are errors and every
//! error names the JSON path of the offending field. Section `scaling` is typed in
//! [`crate::scaling::policy`] and `jobs` in [`crate::batch::catalog`].

pub mod parts;
pub mod refresh;
pub mod schema;
pub mod stack;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::arn::is_account_id;
use crate::batch::catalog::{self as job_catalog, JobCatalog};
use crate::domain::HttpsFormat;
use crate::error::{AutopilotError, Result};
use crate::routing::{RouteByTagSpec, RouteSpec, Router, WebhookSpec};
use crate::scaling::policy::{self as scaling_policy, ScalingConfig};
use crate::triage::watch::{IncidentsConfig, WatchConfig};
use crate::triage::{Category, CategoryOverride};

/// Environment variable holding the configuration document inline.
pub const ENV_INLINE: &str = "AUTOPILOT_CONFIG";
/// Environment variable naming an SSM parameter that holds the configuration document.
pub const ENV_SSM: &str = "AUTOPILOT_CONFIG_SSM";
/// Environment variable with the template parameters the configuration is checked against at
/// cold start (a JSON object; see [`stack`]).
pub const ENV_STACK_PARAMETERS: &str = "AUTOPILOT_STACK_PARAMETERS";
/// Environment variable with the template's ARN lists a function's own sections are checked
/// against (alarm-scaler: services and queues; batch-runner: task definitions and clusters).
pub const ENV_STACK_RESOURCES: &str = "AUTOPILOT_STACK_RESOURCES";
/// Environment variable with the SNS topic notifications go to.
pub const ENV_TOPIC: &str = "NOTIFY_TOPIC_ARN";
/// Environment variable with the DynamoDB state table.
pub const ENV_STATE_TABLE: &str = "STATE_TABLE";
/// Environment variable with the account the functions run in (the template sets it), which
/// tells a member account's events from the central account's own.
pub const ENV_HOME_ACCOUNT: &str = "AUTOPILOT_ACCOUNT_ID";
/// Environment variable naming the role a function assumes in member accounts, after its path
/// (`ecs-autopilot/ecs-autopilot-member-read`: `member-template.yaml` creates one role per
/// function); unset: member accounts are not reached.
pub const ENV_MEMBER_ROLE: &str = "MEMBER_ROLE_NAME";
/// Environment variable listing the member accounts (comma-separated 12-digit ids) whose events
/// the stack acts on; the template sets it from `MemberAccountIds`.
pub const ENV_MEMBER_ACCOUNTS: &str = "MEMBER_ACCOUNT_IDS";
/// Environment variable with the organisation whose accounts are members when no list is given
/// (the template's `MemberOrganizationId`).
pub const ENV_MEMBER_ORGANIZATION: &str = "MEMBER_ORGANIZATION_ID";

/// How often, by default, a function re-reads the SSM parameters' versions (seconds).
pub const DEFAULT_REFRESH_S: u64 = 60;

/// The whole configuration document.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    #[serde(default)]
    pub triage: TriageConfig,
    /// How notifications are delivered (every function).
    #[serde(default)]
    pub notify: NotifyConfig,
    /// Step-scaling policies of `alarm-scaler`, keyed by alarm name.
    #[serde(default)]
    pub scaling: ScalingConfig,
    /// Batch job catalog of `batch-runner`, keyed by job name.
    #[serde(default)]
    pub jobs: JobCatalog,
    /// At most how often (seconds) a function looks for new versions of the SSM parameters
    /// it was configured from; 0: at cold start only.
    #[serde(default = "default_refresh_s")]
    pub config_refresh_s: u64,
    /// The JSON Schema an editor checks the document with (`config.schema.json`); ignored.
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
}

/// The key naming a document's JSON Schema.
pub const SCHEMA_KEY: &str = "$schema";

fn default_refresh_s() -> u64 {
    DEFAULT_REFRESH_S
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            triage: TriageConfig::default(),
            notify: NotifyConfig::default(),
            scaling: ScalingConfig::default(),
            jobs: JobCatalog::default(),
            config_refresh_s: DEFAULT_REFRESH_S,
            schema: None,
        }
    }
}

/// Section `triage`: how stopped tasks are diagnosed, folded and reported.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TriageConfig {
    /// How many of the failed container's last log lines go into a notification (0–500).
    pub log_lines: u32,
    /// Window in seconds over which stops of one (cluster, group, category) fold into a storm.
    pub storm_window_s: u64,
    /// How long a delivered event's dedup record lives, in seconds.
    pub dedup_ttl_s: u64,
    /// Moved to `notify.https_format`; present only to say so.
    #[serde(skip_serializing)]
    pub https_format: Option<serde_json::Value>,
    /// Per-category overrides of whether to notify and at which severity, keyed by category
    /// identifier (`health-check`); names are checked by [`StackConfig::validate`].
    pub categories: BTreeMap<String, CategoryOverride>,
    /// The watchdog's clusters and thresholds.
    pub watch: WatchConfig,
    /// How incidents end.
    pub incidents: IncidentsConfig,
}

impl TriageConfig {
    /// The override for a category, if the document has one.
    pub fn override_for(&self, category: Category) -> Option<&CategoryOverride> {
        self.categories.get(category.as_str())
    }
}

impl Default for TriageConfig {
    fn default() -> Self {
        Self {
            log_lines: 20,
            storm_window_s: 30 * 60,
            dedup_ttl_s: 24 * 60 * 60,
            https_format: None,
            categories: BTreeMap::new(),
            watch: WatchConfig::default(),
            incidents: IncidentsConfig::default(),
        }
    }
}

/// Section `notify`: how every function's notifications are delivered and where they go
/// (see [`crate::routing`] for the rules).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// What the `https` protocol of the SNS message carries.
    pub https_format: HttpsFormat,
    /// Ordered routing rules: the first that matches decides.
    pub routes: Vec<RouteSpec>,
    /// Per-team topics keyed by one tag's value, for notices no rule matched.
    pub route_by_tag: Option<RouteByTagSpec>,
    /// Named Slack and Teams incoming webhooks the rules may name.
    pub webhooks: BTreeMap<String, WebhookSpec>,
    /// How long a service's or task's tags are kept before they are read again (seconds).
    pub tags_ttl_s: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            https_format: HttpsFormat::default(),
            routes: Vec::new(),
            route_by_tag: None,
            webhooks: BTreeMap::new(),
            tags_ttl_s: 300,
        }
    }
}

impl NotifyConfig {
    /// The validated rules; errors name the path (`notify.routes[2].windows[0].tz`).
    pub fn router(&self) -> Result<Router> {
        let names: Vec<&str> = self.webhooks.keys().map(String::as_str).collect();
        Router::new(&self.routes, self.route_by_tag.as_ref(), &names)
    }

    /// Webhook names and parameter paths, and the tag cache's lifetime.
    fn validate(&self) -> Result<()> {
        for (name, webhook) in &self.webhooks {
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
            if !name_ok {
                return Err(AutopilotError::invalid_config(
                    format!("notify.webhooks.{name}"),
                    "a webhook's name is 1-64 of letters, digits, - and _",
                ));
            }
            let path = &webhook.url_ssm;
            let path_ok = path.starts_with('/')
                && path.len() > 1
                && path.len() <= 1011
                && path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c));
            if !path_ok {
                return Err(AutopilotError::invalid_config(
                    format!("notify.webhooks.{name}.url_ssm"),
                    format!("`{path}` is not an SSM parameter path (/autopilot/webhooks/{name})"),
                ));
            }
        }
        if !(10..=86_400).contains(&self.tags_ttl_s) {
            return Err(AutopilotError::invalid_config(
                "notify.tags_ttl_s",
                format!("{} is outside 10..=86400 seconds", self.tags_ttl_s),
            ));
        }
        self.router().map(drop)
    }
}

/// Values from the environment that sit beside the document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    pub topic_arn: Option<String>,
    pub state_table: Option<String>,
    /// The account the functions run in; unknown: every event counts as the own account's.
    pub home_account: Option<String>,
    /// The role assumed in member accounts.
    pub member_role: Option<String>,
    /// The member accounts whose events the stack acts on.
    pub member_accounts: Vec<String>,
    /// The organisation whose accounts are members when `member_accounts` is empty.
    pub member_organization: Option<String>,
}

impl Deployment {
    /// Reads `NOTIFY_TOPIC_ARN`, `STATE_TABLE`, `AUTOPILOT_ACCOUNT_ID`, `MEMBER_ROLE_NAME`,
    /// `MEMBER_ACCOUNT_IDS` and `MEMBER_ORGANIZATION_ID` through `read` (the process environment,
    /// in the functions; empty values count as unset) and checks all but the first two, and the
    /// metrics namespace.
    pub fn from_lookup(read: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let read = |name: &str| read(name).filter(|value| !value.trim().is_empty());
        let deployment = Self {
            topic_arn: read(ENV_TOPIC),
            state_table: read(ENV_STATE_TABLE),
            home_account: read(ENV_HOME_ACCOUNT),
            member_role: read(ENV_MEMBER_ROLE),
            member_accounts: read(ENV_MEMBER_ACCOUNTS)
                .map(|list| comma_list(&list))
                .unwrap_or_default(),
            member_organization: read(ENV_MEMBER_ORGANIZATION),
        };
        deployment.validate()?;
        crate::metrics::namespace_from(read(crate::metrics::ENV_NAMESPACE).as_deref()).map_err(
            |problem| AutopilotError::invalid_config(crate::metrics::ENV_NAMESPACE, problem),
        )?;
        Ok(deployment)
    }

    /// The accounts the stack acts for.
    pub fn accounts(&self) -> crate::trust::Accounts {
        crate::trust::Accounts::new(
            self.home_account.clone(),
            self.member_accounts.iter().cloned(),
            self.member_organization.clone(),
        )
    }

    /// An account id is 12 digits; an organisation id is `o-` and 10–32 lowercase letters or
    /// digits; a role name is what IAM allows (1–64 of letters, digits and `+=,.@_-`); members
    /// and a member role need the home account to tell members apart.
    pub fn validate(&self) -> Result<()> {
        if let Some(account) = &self.home_account {
            if !is_account_id(account) {
                return Err(AutopilotError::invalid_config(
                    ENV_HOME_ACCOUNT,
                    format!("`{account}` is not a 12-digit account id"),
                ));
            }
        }
        if let Some(member) = self.member_accounts.iter().find(|id| !is_account_id(id)) {
            return Err(AutopilotError::invalid_config(
                ENV_MEMBER_ACCOUNTS,
                format!("`{member}` is not a 12-digit account id"),
            ));
        }
        if let Some(organization) = &self.member_organization {
            let id = organization.strip_prefix("o-").unwrap_or_default();
            let valid = (10..=32).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !valid {
                return Err(AutopilotError::invalid_config(
                    ENV_MEMBER_ORGANIZATION,
                    format!("`{organization}` is not an organisation id (o- and 10-32 of a-z 0-9)"),
                ));
            }
        }
        let members = !self.member_accounts.is_empty() || self.member_organization.is_some();
        if members && self.home_account.is_none() {
            let variable = if self.member_accounts.is_empty() {
                ENV_MEMBER_ORGANIZATION
            } else {
                ENV_MEMBER_ACCOUNTS
            };
            return Err(AutopilotError::invalid_config(
                variable,
                format!("needs {ENV_HOME_ACCOUNT} to tell member accounts from this one"),
            ));
        }
        if let Some(role) = &self.member_role {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
            let word = |w: &str| !w.is_empty() && w.chars().all(allowed);
            let (path, name) = match role.rsplit_once('/') {
                Some((path, name)) => (Some(path), name),
                None => (None, role.as_str()),
            };
            let path_ok = path.is_none_or(|path| path.split('/').all(word));
            if name.len() > 64 || !word(name) || !path_ok {
                return Err(AutopilotError::invalid_config(
                    ENV_MEMBER_ROLE,
                    format!(
                        "`{role}` is not an IAM role name (1-64 of A-Z a-z 0-9 +=,.@_-), \
                         optionally after a path (ecs-autopilot/ecs-autopilot-member-read)"
                    ),
                ));
            }
            if self.home_account.is_none() {
                return Err(AutopilotError::invalid_config(
                    ENV_MEMBER_ROLE,
                    format!("needs {ENV_HOME_ACCOUNT} to tell member accounts from this one"),
                ));
            }
        }
        Ok(())
    }
}

/// The items of a comma-separated list (a CloudFormation `CommaDelimitedList` as an environment
/// variable or parameter value), trimmed, empty ones dropped.
pub fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Where the document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    Inline(String),
    SsmParameter(String),
    Defaults,
}

impl ConfigSource {
    /// Picks the source from `read` (the process environment, in the functions); setting both
    /// variables is an error.
    pub fn from_lookup(read: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let inline = read(ENV_INLINE).filter(|v| !v.trim().is_empty());
        let ssm = read(ENV_SSM).filter(|v| !v.trim().is_empty());
        match (inline, ssm) {
            (Some(_), Some(_)) => Err(AutopilotError::invalid_config(
                "$",
                format!("set either {ENV_INLINE} or {ENV_SSM}, not both"),
            )),
            (Some(json), None) => Ok(Self::Inline(json)),
            (None, Some(name)) => Ok(Self::SsmParameter(name)),
            (None, None) => Ok(Self::Defaults),
        }
    }
}

impl StackConfig {
    /// Parses and validates a document. Errors name the JSON path (`triage.log_lines`).
    pub fn parse(document: &str) -> Result<Self> {
        let deserializer = &mut serde_json::Deserializer::from_str(document);
        let config: Self = serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let path = error.path().to_string();
            let field = if path.is_empty() || path == "." {
                "$".to_owned()
            } else {
                path
            };
            AutopilotError::invalid_config(field, error.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Range checks that types alone do not express.
    pub fn validate(&self) -> Result<()> {
        if self.config_refresh_s > 86_400 {
            return Err(AutopilotError::invalid_config(
                "config_refresh_s",
                format!("{} is more than a day (86400)", self.config_refresh_s),
            ));
        }
        let triage = &self.triage;
        if triage.https_format.is_some() {
            return Err(AutopilotError::invalid_config(
                "triage.https_format",
                "moved: set notify.https_format instead (every function reads it)",
            ));
        }
        if triage.log_lines > 500 {
            return Err(AutopilotError::invalid_config(
                "triage.log_lines",
                format!("{} is more than 500", triage.log_lines),
            ));
        }
        if !(60..=7 * 24 * 3600).contains(&triage.storm_window_s) {
            return Err(AutopilotError::invalid_config(
                "triage.storm_window_s",
                format!("{} is outside 60..=604800 seconds", triage.storm_window_s),
            ));
        }
        if !(3600..=30 * 24 * 3600).contains(&triage.dedup_ttl_s) {
            return Err(AutopilotError::invalid_config(
                "triage.dedup_ttl_s",
                format!(
                    "{} is outside 3600..=2592000 seconds (EventBridge redelivers for up to 24 h)",
                    triage.dedup_ttl_s
                ),
            ));
        }
        for name in triage.categories.keys() {
            if !Category::ALL.iter().any(|c| c.as_str() == name) {
                let known: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
                return Err(AutopilotError::invalid_config(
                    format!("triage.categories.{name}"),
                    format!("unknown category; expected one of {}", known.join(", ")),
                ));
            }
        }
        let watch = &triage.watch;
        for (field, value, range) in [
            (
                "triage.watch.stuck_after_s",
                watch.stuck_after_s,
                0..=86_400,
            ),
            (
                "triage.watch.pending_after_s",
                watch.pending_after_s,
                0..=86_400,
            ),
            (
                "triage.watch.max_services",
                u64::from(watch.max_services),
                1..=1_000,
            ),
            (
                "triage.incidents.resolve_after_s",
                triage.incidents.resolve_after_s,
                0..=86_400,
            ),
        ] {
            if !range.contains(&value) {
                let (low, high) = (range.start(), range.end());
                return Err(AutopilotError::invalid_config(
                    field,
                    format!("{value} is outside {low}..={high}"),
                ));
            }
        }
        for (i, cluster) in watch.clusters.iter().enumerate() {
            if cluster.name().is_empty() {
                return Err(AutopilotError::invalid_config(
                    format!("triage.watch.clusters[{i}]"),
                    "names no cluster",
                ));
            }
        }
        self.notify.validate()?;
        scaling_policy::validate(&self.scaling)?;
        job_catalog::validate(&self.jobs)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{HttpsFormat, Severity};

    #[test]
    fn the_member_role_and_home_account_are_checked_naming_the_variable() {
        let deployment = |account: Option<&str>, role: Option<&str>| Deployment {
            home_account: account.map(str::to_owned),
            member_role: role.map(str::to_owned),
            ..Deployment::default()
        };
        let problem = |d: Deployment| match d.validate() {
            Err(AutopilotError::InvalidConfig { field, problem }) => format!("{field}: {problem}"),
            other => format!("{other:?}"),
        };
        assert!(
            deployment(Some("111122223333"), Some("ecs-autopilot-member"))
                .validate()
                .is_ok()
        );
        assert!(deployment(None, None).validate().is_ok());
        assert_eq!(
            problem(deployment(Some("1111"), None)),
            "AUTOPILOT_ACCOUNT_ID: `1111` is not a 12-digit account id"
        );
        assert!(deployment(
            Some("111122223333"),
            Some("ecs-autopilot/ecs-autopilot-member-read")
        )
        .validate()
        .is_ok());
        for bad in [
            "role//slash",
            "/leading",
            "trailing/",
            "sp ace/name",
            "path/sp ace",
        ] {
            assert!(
                problem(deployment(Some("111122223333"), Some(bad))).starts_with(&format!(
                    "MEMBER_ROLE_NAME: `{bad}` is not an IAM role name"
                )),
                "{bad}"
            );
        }
        assert_eq!(
            problem(deployment(None, Some("ecs-autopilot-member"))),
            "MEMBER_ROLE_NAME: needs AUTOPILOT_ACCOUNT_ID to tell member accounts from this one"
        );
    }

    #[test]
    fn member_accounts_and_the_organisation_are_read_and_checked_naming_the_variable() {
        let read = |vars: &'static [(&'static str, &'static str)]| {
            Deployment::from_lookup(move |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        let both = read(&[
            (ENV_HOME_ACCOUNT, "111122223333"),
            (ENV_MEMBER_ACCOUNTS, " 444455556666, 777788889999 ,"),
            (ENV_MEMBER_ORGANIZATION, "o-a1b2c3d4e5"),
        ])
        .unwrap();
        assert_eq!(both.member_accounts, ["444455556666", "777788889999"]);
        assert!(both.accounts().admits("777788889999"));
        assert!(!both.accounts().admits("999988887777"));
        let problem = |result: Result<Deployment>| match result {
            Err(AutopilotError::InvalidConfig { field, problem }) => format!("{field}: {problem}"),
            other => format!("{other:?}"),
        };
        assert_eq!(
            problem(read(&[
                (ENV_HOME_ACCOUNT, "111122223333"),
                (ENV_MEMBER_ACCOUNTS, "444455556666,12345")
            ])),
            "MEMBER_ACCOUNT_IDS: `12345` is not a 12-digit account id"
        );
        assert_eq!(
            problem(read(&[
                (ENV_HOME_ACCOUNT, "111122223333"),
                (ENV_MEMBER_ORGANIZATION, "org-1")
            ])),
            "MEMBER_ORGANIZATION_ID: `org-1` is not an organisation id (o- and 10-32 of a-z 0-9)"
        );
        assert_eq!(
            problem(read(&[(ENV_MEMBER_ACCOUNTS, "444455556666")])),
            "MEMBER_ACCOUNT_IDS: needs AUTOPILOT_ACCOUNT_ID to tell member accounts from this one"
        );
    }

    fn field_of(result: Result<StackConfig>) -> String {
        match result {
            Err(AutopilotError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn empty_document_takes_defaults() {
        let config = StackConfig::parse("{}").unwrap();
        assert_eq!(config, StackConfig::default());
        assert_eq!(config.triage.log_lines, 20);
        assert_eq!(config.triage.storm_window_s, 1800);
    }

    #[test]
    fn full_triage_section_parses() {
        let config = StackConfig::parse(
            r#"{"triage": {"log_lines": 50, "storm_window_s": 600,
                "categories": {"health-check": {"notify": false}, "oom": {"severity": "warning"}}},
                "notify": {"https_format": "chatbot"}, "scaling": {}, "jobs": {}}"#,
        )
        .unwrap();
        assert_eq!(config.notify.https_format, HttpsFormat::Chatbot);
        assert_eq!(
            config
                .triage
                .override_for(Category::HealthCheck)
                .unwrap()
                .notify,
            Some(false)
        );
        assert_eq!(
            config.triage.override_for(Category::Oom).unwrap().severity,
            Some(Severity::Warning)
        );
        assert!(config.triage.override_for(Category::AppExit).is_none());
    }

    #[test]
    fn unknown_key_names_its_path() {
        assert_eq!(
            field_of(StackConfig::parse(r#"{"triage": {"log_line": 5}}"#)),
            "triage.log_line"
        );
        assert_eq!(field_of(StackConfig::parse(r#"{"triag": {}}"#)), "triag");
    }

    #[test]
    fn wrong_type_names_its_path() {
        assert_eq!(
            field_of(StackConfig::parse(r#"{"triage": {"log_lines": "many"}}"#)),
            "triage.log_lines"
        );
        assert_eq!(
            field_of(StackConfig::parse(
                r#"{"triage": {"categories": {"oom": {"severity": "loud"}}}}"#
            )),
            "triage.categories.oom.severity"
        );
        assert_eq!(
            field_of(StackConfig::parse(
                r#"{"triage": {"categories": {"oops": {}}}}"#
            )),
            "triage.categories.oops"
        );
    }

    #[test]
    fn out_of_range_names_its_path() {
        assert_eq!(
            field_of(StackConfig::parse(r#"{"triage": {"log_lines": 501}}"#)),
            "triage.log_lines"
        );
        assert_eq!(
            field_of(StackConfig::parse(r#"{"triage": {"storm_window_s": 5}}"#)),
            "triage.storm_window_s"
        );
    }

    #[test]
    fn the_old_https_format_place_names_the_new_one() {
        let result = StackConfig::parse(r#"{"triage": {"https_format": "chatbot"}}"#);
        assert_eq!(
            field_of(StackConfig::parse(
                r#"{"triage": {"https_format": "chatbot"}}"#
            )),
            "triage.https_format"
        );
        let message = result.unwrap_err().to_string();
        assert!(message.contains("notify.https_format"), "{message}");
        assert_eq!(
            field_of(StackConfig::parse(
                r#"{"notify": {"https_format": "html"}}"#
            )),
            "notify.https_format"
        );
    }

    #[test]
    fn not_json_is_an_error_at_the_root() {
        assert_eq!(field_of(StackConfig::parse("not json")), "$");
    }
}
