//! `batch-runner`: starts named batch jobs from the catalog with ECS RunTask (overlap guard,
//! idempotent starts, capacity retries, fallback strategy) and stops jobs over their timeout on
//! a tick. Under Lambda it serves schedule events; elsewhere it is a CLI over event files.

use std::process::ExitCode;

use autopilot::app::{batch::BatchRunner, Ports, Setup};
use autopilot::entry::{self, CommonArgs};
use clap::Parser;

/// Run batch jobs named by `{"job": …}` events; `--dry-run` prints the RunTask requests.
#[derive(Debug, Parser)]
#[command(
    name = "batch-runner",
    version,
    mut_arg("dry_run", |arg| arg.help("Read ECS and the job's runs (the overlap guard) but start nothing: print the RunTask requests")),
    mut_arg("offline", |arg| arg.help("Make no AWS call: plan the RunTask requests from the catalog alone (no overlap guard, nothing started)"))
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    autopilot::telemetry::init();
    let cli = (!entry::in_lambda()).then(Cli::parse);
    let runner = match Setup::init(cli.as_ref().map(|cli| &cli.common), Ports::for_runner)
        .await
        .map(BatchRunner::new)
    {
        Ok(runner) => runner,
        Err(error) => return entry::fail_init(&error).await,
    };
    entry::serve(
        "batch-runner",
        cli.as_ref().map(|cli| &cli.common),
        |event, invocation| runner.handle(event, invocation),
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
        assert!(help.contains("nothing started"), "{help}");
        assert!(
            help.contains("--dry-run") && help.contains("--offline"),
            "{help}"
        );
    }
}
