//! `alarm-scaler`: step-scales an ECS service's desired count from CloudWatch alarm state changes
//! (EventBridge, direct alarm action, SNS), and on its periodic tick sizes services by the work
//! waiting (target policies). Under Lambda it serves those events; elsewhere it is a CLI over
//! event files (see `--help`).

use std::process::ExitCode;
use std::sync::Arc;

use autopilot::app::scaler::{AlarmScaler, Assumed};
use autopilot::app::{live::Live, Ports, Setup};
use autopilot::domain::Source;
use autopilot::entry::{self, CommonArgs, ConfigCommand};
use autopilot::ports::FixedClock;
use autopilot::scaling::ServiceObservation;
use clap::Parser;

/// Decide (and apply) scaling for alarm events and ticks; one JSON line per event.
#[derive(Debug, Parser)]
#[command(
    name = "alarm-scaler",
    version,
    args_conflicts_with_subcommands = true,
    mut_arg("dry_run", |arg| arg.help("Read the service, its signals and its scaling memory but change nothing: say what would be scaled")),
    mut_arg("offline", |arg| arg.help("Make no AWS call: decide from the event and the --assume-* values alone (nothing scaled, nothing published)"))
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<ConfigCommand>,
    /// With --offline: the service's current desired count.
    #[arg(long, requires = "offline")]
    assume_desired: Option<u32>,
    /// With --offline: the service's running count (defaults to the desired count).
    #[arg(long, requires = "assume_desired")]
    assume_running: Option<u32>,
    /// With --offline: a deployment is in progress (blocks scale-in).
    #[arg(long, requires = "assume_desired")]
    assume_deploying: bool,
    /// With --offline: the backlog an sqs target policy reads on a tick (repeatable).
    #[arg(long, value_name = "TARGET=N", value_parser = entry::name_and_number, requires = "offline")]
    assume_backlog: Vec<(String, f64)>,
    /// With --offline: the value a metric target policy reads on a tick (repeatable).
    #[arg(long, value_name = "TARGET=V", value_parser = entry::name_and_number, requires = "offline")]
    assume_metric: Vec<(String, f64)>,
    /// With --offline: decide as at this instant (RFC 3339 or epoch seconds), not now.
    #[arg(long, value_parser = entry::instant, requires = "offline")]
    now: Option<i64>,
}

impl Cli {
    fn assumed(&self) -> Assumed {
        Assumed {
            service: self.assume_desired.map(|desired| ServiceObservation {
                desired,
                running: self.assume_running.unwrap_or(desired),
                deployment_in_progress: self.assume_deploying,
            }),
            backlogs: self.assume_backlog.iter().cloned().collect(),
            metrics: self.assume_metric.iter().cloned().collect(),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    autopilot::telemetry::init();
    let cli = (!entry::in_lambda()).then(Cli::parse);
    if let Some(command) = cli.as_ref().and_then(|cli| cli.command.as_ref()) {
        return entry::check_config(command);
    }
    let assumed = cli.as_ref().map(Cli::assumed).unwrap_or_default();
    let now = cli.as_ref().and_then(|cli| cli.now);
    let scaler = match Setup::init(cli.as_ref().map(|cli| &cli.common), Ports::for_scaler)
        .await
        .and_then(|mut setup| {
            if let Some(now) = now {
                setup.clock = Arc::new(FixedClock(now));
            }
            Live::new(setup, Source::Scaler, move |setup| {
                AlarmScaler::new(setup, assumed.clone())
            })
        }) {
        Ok(scaler) => scaler,
        Err(error) => return entry::fail_init(&error).await,
    };
    entry::serve(
        "alarm-scaler",
        cli.as_ref().map(|cli| &cli.common),
        &scaler,
        |scaler, event, invocation| async move { scaler.handle(event, invocation).await },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn help_describes_this_functions_own_modes() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("nothing scaled"), "{help}");
        assert!(
            help.contains("--dry-run") && help.contains("--offline"),
            "{help}"
        );
        assert!(help.contains("--assume-backlog <TARGET=N>"), "{help}");
    }
}
