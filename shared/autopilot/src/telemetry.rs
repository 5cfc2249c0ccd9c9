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

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_ascii_lowercase()))
        .unwrap_or_else(|_| "info".to_owned());
    let filter: Targets = level
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
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
