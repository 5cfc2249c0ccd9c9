//! Wiring of each function: cold-start setup (configuration, clients) and the handlers that
//! connect pure decisions to the AWS adapters.

pub mod batch;
pub mod scaler;
pub mod triage;

use crate::aws::state_table::StateTable;
use crate::aws::{ssm, AwsClients};
use crate::config::{ConfigSource, Deployment, StackConfig, ENV_SSM, ENV_TOPIC};
use crate::entry::Mode;
use crate::error::{AutopilotError, Result};

/// What every function builds once per cold start.
#[derive(Debug, Clone)]
pub struct Setup {
    pub mode: Mode,
    pub config: StackConfig,
    pub deployment: Deployment,
    /// `None` in offline mode: no AWS call at all.
    pub clients: Option<AwsClients>,
}

impl Setup {
    /// Builds clients (unless offline) and loads and validates the configuration document.
    pub async fn init(mode: Mode) -> Result<Self> {
        let source = ConfigSource::from_env()?;
        let clients = match mode {
            Mode::Offline => None,
            Mode::Live | Mode::DryRun => Some(AwsClients::from_env().await),
        };
        let document = match source {
            ConfigSource::Inline(json) => Some(json),
            ConfigSource::SsmParameter(name) => {
                let clients = clients.as_ref().ok_or_else(|| {
                    AutopilotError::invalid_config(
                        ENV_SSM,
                        "offline mode makes no AWS call; pass the document in AUTOPILOT_CONFIG",
                    )
                })?;
                Some(
                    ssm::parameter_value(clients.ssm(), &name)
                        .await
                        .map_err(|e| AutopilotError::invalid_config(ENV_SSM, e.to_string()))?,
                )
            }
            ConfigSource::Defaults => None,
        };
        let config = match document {
            Some(json) => StackConfig::parse(&json)?,
            None => StackConfig::default(),
        };
        Ok(Self {
            mode,
            config,
            deployment: Deployment::from_env(),
            clients,
        })
    }
}

impl Setup {
    /// A live run publishes, so it needs `NOTIFY_TOPIC_ARN`.
    pub fn require_topic_when_live(&self) -> Result<()> {
        if self.mode == Mode::Live && self.deployment.topic_arn.is_none() {
            return Err(AutopilotError::invalid_config(
                ENV_TOPIC,
                "required to publish notifications",
            ));
        }
        Ok(())
    }

    /// The state table, when `STATE_TABLE` is set and the mode makes AWS calls.
    pub fn state_table(&self) -> Option<StateTable> {
        match (&self.clients, &self.deployment.state_table) {
            (Some(clients), Some(table)) => Some(StateTable::new(clients.clone(), table)),
            _ => None,
        }
    }

    /// The region the clients talk to (for console links).
    pub fn region(&self) -> Option<String> {
        self.clients
            .as_ref()
            .and_then(|c| c.sdk_config().region())
            .map(|r| r.to_string())
    }
}
