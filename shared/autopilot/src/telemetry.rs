//! Logging setup: `tracing` to stderr, JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`, level from
//! `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default `info`; `target=level` directives work, without
//! the regex-based `EnvFilter` and its weight in the package).

use std::io::IsTerminal;

/// How much of a value taken from an event (an ARN, a name, a status) a log line carries: never
/// the whole of a hostile one.
pub const LOGGED_BYTES: usize = 256;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Crates whose own lines may carry request URIs and headers (a webhook URL, a signed request):
/// they log at INFO at most, whatever level is asked for.
const DEPENDENCIES: [&str; 8] = [
    "aws_smithy",
    "aws_sdk",
    "aws_config",
    "aws_runtime",
    "hyper",
    "h2",
    "rustls",
    "tower",
];

/// The filter for `level` (`info`, `trace`, `autopilot=debug,warn` …; unreadable: `info`), with
/// [`DEPENDENCIES`] held to INFO or below and no directive of the caller's reaching into them.
fn capped(level: &str) -> Targets {
    let asked: Targets = level
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    let default = asked.default_level().unwrap_or(LevelFilter::OFF);
    let dependency = |target: &str| DEPENDENCIES.iter().any(|d| target.starts_with(d));
    let own = asked
        .iter()
        .filter(|(target, _)| !dependency(target))
        .collect::<Vec<_>>();
    let cap = default.min(LevelFilter::INFO);
    Targets::new()
        .with_default(default)
        .with_targets(own)
        .with_targets(DEPENDENCIES.map(|d| (d, cap)))
}

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_ascii_lowercase()))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = capped(&level);
    let in_lambda = crate::entry::in_lambda();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let ansi = !in_lambda && !json && std::io::stderr().is_terminal();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            // The invocation's span names the configuration's versions on every line.
            .with(layer.json().with_current_span(true).with_span_list(false))
            .try_init()
    } else if in_lambda {
        registry.with(layer.without_time()).try_init()
    } else {
        registry.with(layer).try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn dependencies_log_at_info_at_most_whatever_level_is_asked() {
        for asked in [
            "trace",
            "TRACE",
            "debug",
            "aws_smithy_runtime::client=trace,trace",
        ] {
            let filter = capped(&asked.to_ascii_lowercase());
            for target in [
                "aws_smithy_runtime::client::orchestrator",
                "aws_sdk_ssm::config",
                "hyper_util::client",
                "rustls::client",
            ] {
                assert!(
                    !filter.would_enable(target, &Level::DEBUG),
                    "{asked}: {target}"
                );
                assert!(
                    filter.would_enable(target, &Level::INFO),
                    "{asked}: {target}"
                );
            }
            assert!(
                filter.would_enable("autopilot::app", &Level::DEBUG),
                "{asked}"
            );
        }
        let quiet = capped("warn");
        assert!(!quiet.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(quiet.would_enable("aws_smithy_runtime", &Level::WARN));
    }

    /// What a GetParameter of a webhook's SecureString writes to the log at `filter`: the SDK
    /// answered by a scripted endpoint with the decrypted URL.
    async fn logged_reading_a_webhook_url(filter: Targets, secret: &str) -> String {
        use aws_smithy_http_client::test_util::infallible_client_fn;
        use aws_smithy_types::body::SdkBody;
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let answer = format!(
            r#"{{"Parameter":{{"Name":"/autopilot/webhooks/ops","Type":"SecureString","Value":"https://hooks.slack.com/services/{secret}","Version":1}}}}"#
        );
        let http = infallible_client_fn(move |_request: http::Request<SdkBody>| {
            http::Response::builder()
                .status(200)
                .body(answer.clone())
                .unwrap()
        });
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .http_client(http)
            .build();
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(filter).with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false),
        );
        let _default = tracing::subscriber::set_default(subscriber);
        aws_sdk_ssm::Client::from_conf(config)
            .get_parameter()
            .name("/autopilot/webhooks/ops")
            .with_decryption(true)
            .send()
            .await
            .unwrap();
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_sdks_trace_lines_carry_a_webhook_url_and_the_cap_keeps_them_out() {
        let secret = "T0SECRET/B0SECRET/xyzSecretToken";
        // Without the cap, TRACE is enough for the SDK to write the decrypted URL.
        let uncapped = Targets::new().with_default(LevelFilter::TRACE);
        let leaked = logged_reading_a_webhook_url(uncapped, secret).await;
        assert!(leaked.contains(secret), "the counterfactual: {leaked}");
        // With it, at the highest level a function can be given.
        let logged = logged_reading_a_webhook_url(capped("trace"), secret).await;
        assert!(!logged.contains("T0SECRET"), "{logged}");
    }
}
