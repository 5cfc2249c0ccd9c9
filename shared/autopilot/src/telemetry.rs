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
            .with(layer.json().with_current_span(false).with_span_list(false))
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
}
