//! Thin AWS adapters implementing the [`crate::ports`]. Clients come from one `aws_config`
//! configuration per execution environment (which honours `AWS_ENDPOINT_URL`, so the same code
//! runs against the local cloud); each adapter turns SDK types into the library's plain data and
//! SDK errors into [`AutopilotError::Aws`]. [`AwsClients`] itself is the ECS, Logs, alarms and
//! scalable-targets port (and the tags port); [`sns::AwsNotifier`] the notifier (SNS topics, and
//! the webhooks of [`webhook::Webhooks`]); [`state_table::StateTable`] the state store.

pub mod autoscaling;
pub mod cloudwatch;
pub mod ecs;
pub mod http;
pub mod logs;
pub mod reach;
pub mod sns;
pub mod sqs;
pub mod ssm;
pub mod state_table;
pub mod webhook;

use std::sync::{Arc, OnceLock};

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::BehaviorVersion;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::AutopilotError;

/// The SDK clients the functions use, from one shared configuration. Each client is built on
/// its first use and kept for the life of the execution environment (clones share them), so a
/// function pays only for the clients its events need.
#[derive(Clone, Debug)]
pub struct AwsClients(Arc<Clients>);

#[derive(Debug)]
struct Clients {
    sdk_config: aws_config::SdkConfig,
    ecs: OnceLock<aws_sdk_ecs::Client>,
    sns: OnceLock<aws_sdk_sns::Client>,
    logs: OnceLock<aws_sdk_cloudwatchlogs::Client>,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    ssm: OnceLock<aws_sdk_ssm::Client>,
    cloudwatch: OnceLock<aws_sdk_cloudwatch::Client>,
    autoscaling: OnceLock<aws_sdk_applicationautoscaling::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
}

/// For each client: the accessor that builds it on first use, and a `with_` method that
/// supplies it ready-made (tests pass mocked clients).
macro_rules! clients {
    ($($name:ident, $with:ident: $client:ty;)*) => {
        impl AwsClients {
            $(
                pub fn $name(&self) -> &$client {
                    self.0.$name.get_or_init(|| <$client>::new(&self.0.sdk_config))
                }

                pub fn $with(self, client: $client) -> Self {
                    // A client already built stays; `with_` is for fresh sets.
                    let _ = self.0.$name.set(client);
                    self
                }
            )*
        }
    };
}

clients! {
    ecs, with_ecs: aws_sdk_ecs::Client;
    sns, with_sns: aws_sdk_sns::Client;
    logs, with_logs: aws_sdk_cloudwatchlogs::Client;
    dynamodb, with_dynamodb: aws_sdk_dynamodb::Client;
    ssm, with_ssm: aws_sdk_ssm::Client;
    cloudwatch, with_cloudwatch: aws_sdk_cloudwatch::Client;
    autoscaling, with_autoscaling: aws_sdk_applicationautoscaling::Client;
    sqs, with_sqs: aws_sdk_sqs::Client;
}

impl AwsClients {
    /// Loads the shared configuration from the environment (which honours `AWS_ENDPOINT_URL`)
    /// with the SDK's HTTPS client, its TLS set up on the first request (see [`http`]).
    ///
    /// Under Lambda the execution role's credentials and the region always arrive in
    /// environment variables, so only those providers are built: the rest of the default chains
    /// (profiles, web identity with its own STS client, ECS and IMDS endpoints) would never
    /// answer there and cost most of the init. Elsewhere (the CLI) the full chains apply.
    pub async fn from_env(in_lambda: bool) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry_config())
            .timeout_config(timeout_config());
        if let Some(client) = http::https_client_set_up_on_first_request(BehaviorVersion::latest())
        {
            loader = loader.http_client(client);
        }
        if in_lambda {
            loader = loader
                .credentials_provider(EnvironmentVariableCredentialsProvider::new())
                .region(EnvironmentVariableRegionProvider::new());
        }
        Self::from_config(loader.load().await)
    }

    /// Clients built from `config` on first use.
    pub fn from_config(config: aws_config::SdkConfig) -> Self {
        Self(Arc::new(Clients {
            sdk_config: config,
            ecs: OnceLock::new(),
            sns: OnceLock::new(),
            logs: OnceLock::new(),
            dynamodb: OnceLock::new(),
            ssm: OnceLock::new(),
            cloudwatch: OnceLock::new(),
            autoscaling: OnceLock::new(),
            sqs: OnceLock::new(),
        }))
    }

    /// The shared configuration.
    pub fn sdk_config(&self) -> &aws_config::SdkConfig {
        &self.0.sdk_config
    }
}

/// The SDK's retries, set on purpose: the standard mode (throttling and transient errors, 5xx,
/// timeouts and connection errors are retried; a throttled client backs off through its token
/// bucket) with 3 attempts and exponential backoff from 100 ms to at most 2 s. More would spend the
/// invocation's budget on one call; what still fails is returned, and Lambda retries the event
/// (claims make that safe).
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(std::time::Duration::from_millis(100))
        .with_max_backoff(std::time::Duration::from_secs(2))
}

/// Attempts per AWS call (the first and two retries).
pub const MAX_ATTEMPTS: u32 = 3;

/// The SDK's timeouts, set on purpose (its default has none): 2 s to connect, 4 s per attempt,
/// 10 s per call with its retries. The functions run for at most 30 s and make a handful of
/// calls; one hanging call must fail in time for the handler to release its claim and return
/// the error, so that Lambda retries the event.
pub fn timeout_config() -> aws_config::timeout::TimeoutConfig {
    use std::time::Duration;
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(4))
        .operation_timeout(Duration::from_secs(10))
        .build()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_built_on_first_use_and_shared_by_clones() {
        let clients = AwsClients::from_config(aws_config::SdkConfig::builder().build());
        let clone = clients.clone();
        assert!(clients.0.ecs.get().is_none());
        clients.ecs();
        assert!(clone.0.ecs.get().is_some(), "a clone sees the built client");
        assert!(clone.0.sns.get().is_none(), "other clients stay unbuilt");
    }

    #[tokio::test]
    async fn clients_retry_three_times_and_time_out_on_purpose() {
        let clients = AwsClients::from_env(true).await;
        let config = clients.sdk_config();
        let retry = config.retry_config().expect("set");
        assert_eq!(retry.max_attempts(), 3);
        assert_eq!(retry.max_backoff(), std::time::Duration::from_secs(2));
        let timeouts = config.timeout_config().expect("set");
        assert_eq!(
            (
                timeouts.connect_timeout(),
                timeouts.operation_attempt_timeout(),
                timeouts.operation_timeout()
            ),
            (
                Some(std::time::Duration::from_secs(2)),
                Some(std::time::Duration::from_secs(4)),
                Some(std::time::Duration::from_secs(10))
            )
        );
    }

    #[test]
    fn the_sdk_default_https_client_is_available_to_wrap() {
        assert!(http::https_client_set_up_on_first_request(BehaviorVersion::latest()).is_some());
    }
}
