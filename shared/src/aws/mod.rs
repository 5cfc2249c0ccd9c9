//! Thin AWS adapters. Clients are built once per cold start from `aws_config` (which honours
//! `AWS_ENDPOINT_URL`, so the same code runs against the local cloud); each adapter turns SDK
//! types into the library's plain data and SDK errors into [`AutopilotError::Aws`].

pub mod autoscaling;
pub mod cloudwatch;
pub mod ecs;
pub mod logs;
pub mod sns;
pub mod ssm;
pub mod state_table;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::AutopilotError;

/// The SDK clients every function uses, built from one shared configuration; a function that
/// needs more builds them from [`AwsClients::sdk_config`] once per cold start.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub sdk_config: aws_config::SdkConfig,
    pub ecs: aws_sdk_ecs::Client,
    pub sns: aws_sdk_sns::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl AwsClients {
    /// Loads the shared configuration from the environment and builds every client.
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_config(&config)
    }

    /// Builds every client from one configuration.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self {
            sdk_config: config.clone(),
            ecs: aws_sdk_ecs::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
        }
    }
}

/// Converts an SDK error into [`AutopilotError::Aws`], keeping the service's error code.
pub fn aws_error<E>(service: &'static str, operation: &'static str, error: E) -> AutopilotError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = error.code().unwrap_or("Unknown").to_owned();
    let message = match error.message() {
        Some(message) => message.to_owned(),
        None => aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
    };
    AutopilotError::Aws {
        service,
        operation,
        code,
        message,
    }
}
