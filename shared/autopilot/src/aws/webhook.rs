//! Incoming webhooks (Slack, Teams) over the SDK's own HTTP stack: each named webhook's URL is
//! read from its SSM SecureString on first use (once per cold start, never logged), and posts go
//! through a smithy [`Operation`] on the HTTPS client the SDK clients share — no second HTTP or
//! TLS stack is linked. Every answer is handed back (status, `Retry-After`, the body's start);
//! deciding what it means is [`crate::app::webhook`]'s.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime::client::orchestrator::operation::Operation;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, OrchestratorError};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::timeout::TimeoutConfig;
use tokio::sync::OnceCell;

use super::{ssm, AwsClients};
use crate::error::{AutopilotError, Result};
use crate::ports::{RetryAfter, WebhookReply};

/// Characters of an answer's body kept for errors.
const BODY_KEPT: usize = 200;

/// A webhook answers no modelled error: every status is a [`WebhookReply`].
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
pub struct NoModelledError;

type Post = Operation<String, WebhookReply, NoModelledError>;

/// The named webhooks of `notify.webhooks`, with their URLs read on first use.
#[derive(Debug)]
pub struct Webhooks {
    clients: AwsClients,
    /// Name → SSM parameter holding the URL.
    parameters: BTreeMap<String, String>,
    posts: Mutex<BTreeMap<String, Arc<OnceCell<Post>>>>,
}

impl Webhooks {
    pub fn new(clients: AwsClients, parameters: BTreeMap<String, String>) -> Self {
        Self {
            clients,
            parameters,
            posts: Mutex::default(),
        }
    }

    /// POSTs `body` (JSON) to the webhook `name` once.
    pub async fn post(&self, name: &str, body: &str) -> Result<WebhookReply> {
        let parameter = self.parameters.get(name).ok_or_else(|| {
            AutopilotError::invalid_config(format!("notify.webhooks.{name}"), "not configured")
        })?;
        let cell = {
            let mut posts = self.posts.lock().unwrap_or_else(|p| p.into_inner());
            posts.entry(name.to_owned()).or_default().clone()
        };
        let post = cell
            .get_or_try_init(|| async {
                let url = ssm::parameter_value(self.clients.ssm(), parameter)
                    .await
                    .map_err(|error| AutopilotError::Webhook {
                        name: name.to_owned(),
                        problem: format!("its URL could not be read from {parameter}: {error}"),
                    })?;
                operation(&self.clients, name, url.trim())
            })
            .await?;
        post.invoke(body.to_owned())
            .await
            .map_err(|error| AutopilotError::Webhook {
                name: name.to_owned(),
                problem: match error.raw_response() {
                    Some(response) => format!("HTTP {}", response.status().as_u16()),
                    None => format!("not reached: {}", error_chain(&error)),
                },
            })
    }
}

/// The error and its sources on one line (the URL is not among them: only the host is).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The POST of one webhook URL: the endpoint is its scheme and host, each request its path and
/// query (the SDK's endpoint handling drops an endpoint's query, and Teams' URLs carry their
/// signature there).
fn operation(clients: &AwsClients, name: &str, url: &str) -> Result<Post> {
    let refused = |problem: &str| AutopilotError::Webhook {
        name: name.to_owned(),
        problem: format!("its URL {problem}"),
    };
    let uri: http::Uri = url.parse().map_err(|_| refused("is not a URL"))?;
    let scheme = uri.scheme_str().ok_or_else(|| refused("has no scheme"))?;
    let authority = uri.authority().ok_or_else(|| refused("has no host"))?;
    if scheme != "https" && !is_loopback(authority.host()) {
        return Err(refused("is not https"));
    }
    let endpoint = format!("{scheme}://{authority}");
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let http_client = clients
        .sdk_config()
        .http_client()
        .ok_or_else(|| refused("cannot be reached: this build has no HTTP client"))?;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(std::time::Duration::from_secs(10))
        .build();
    Ok(Operation::builder()
        .service_name("webhook")
        .operation_name("Post")
        .http_client(http_client)
        .endpoint_url(&endpoint)
        .no_auth()
        .no_retry()
        .timeout_config(timeouts)
        .serializer(move |body: String| {
            let mut request = HttpRequest::new(SdkBody::from(body));
            request.set_uri(path_and_query.as_str())?;
            request.set_method("POST")?;
            request
                .headers_mut()
                .insert("content-type", "application/json");
            Ok(request)
        })
        .deserializer::<WebhookReply, NoModelledError>(|response| {
            let header = response.headers().get("retry-after");
            let body = response.body().bytes().unwrap_or_default();
            let body: String = String::from_utf8_lossy(body)
                .chars()
                .take(BODY_KEPT)
                .collect();
            Ok::<_, OrchestratorError<NoModelledError>>(WebhookReply {
                status: response.status().as_u16(),
                retry_after: header.and_then(RetryAfter::parse),
                body: body.trim().to_owned(),
            })
        })
        .build())
}

/// Plain HTTP is allowed to this machine only (tests' local servers).
fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1" || host == "[::1]"
}
