//! The HTTPS client every SDK client shares: the SDK's own default (rustls with aws-lc, proxy
//! settings from the environment), except that the TLS connector — and with it the trust store
//! read from the system's certificate files — is built on the first request instead of at each
//! client's construction.
//!
//! The SDK builds a throwaway connector in `validate_base_client_config` for every client it
//! constructs, so that certificates load during init. A function here builds several clients
//! and most events (silent task stops, ignored events, ticks with nothing to do) make no AWS
//! call at all; those environments never need the trust store, and the ones that do build it
//! once, on their first call.

use aws_smithy_runtime::client::defaults::default_http_client_plugin_v2;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::config_bag::ConfigBag;

/// The SDK's default HTTPS client, with its TLS setup left to the first request; `None` when
/// this build has no default client (it always has one: `default-https-client` is enabled).
pub fn https_client_set_up_on_first_request(
    behavior_version: BehaviorVersion,
) -> Option<SharedHttpClient> {
    let plugin = default_http_client_plugin_v2(behavior_version)?;
    let components = plugin.runtime_components(&RuntimeComponentsBuilder::new("autopilot"));
    let sdk_default = components.http_client()?;
    Some(SetUpOnFirstRequest(sdk_default).into_shared())
}

/// Delegates every request to the SDK's client; skips only its eager connector build.
#[derive(Debug)]
struct SetUpOnFirstRequest(SharedHttpClient);

impl HttpClient for SetUpOnFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        _components: &RuntimeComponentsBuilder,
        _config: &ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        config: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(components, config)
    }
}
