//! Wiring of each function: cold-start setup (configuration, clients) and the handlers that
//! connect pure decisions to the AWS adapters.

pub mod batch;
pub mod scaler;
pub mod triage;

use crate::aws::{ssm, AwsClients};
use crate::config::{ConfigSource, Deployment, StackConfig, ENV_SSM};
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
                    ssm::parameter_value(&clients.ssm, &name)
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
