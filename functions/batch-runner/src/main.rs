//! `batch-runner`: starts named batch jobs from the catalog with ECS RunTask (overlap guard,
//! idempotent starts, capacity retries, fallback strategy), follows their tasks into run
//! records (retries, dependencies, missed runs) and stops jobs over their timeout on a tick.
//! Under Lambda it serves those events; elsewhere it is a CLI over event files, plus `run`
//! (by hand, backfills) and `history`.

use std::process::ExitCode;

use autopilot::app::batch::{commands, BatchRunner};
use autopilot::app::{live::Live, Ports, Setup};
use autopilot::domain::Source;
use autopilot::entry::{self, CommonArgs, ConfigCommand, Format};
use clap::{Parser, Subcommand};

/// Run batch jobs named by `{"job": …}` events; `--dry-run` prints the RunTask requests.
#[derive(Debug, Parser)]
#[command(
    name = "batch-runner",
    version,
    args_conflicts_with_subcommands = true,
    mut_arg("dry_run", |arg| arg.help("Read ECS and the job's runs (the overlap guard) but start nothing: print the RunTask requests")),
    mut_arg("offline", |arg| arg.help("Make no AWS call: plan the RunTask requests from the catalog alone (no overlap guard, nothing started)"))
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a run of JOB exactly as its schedule would (same claim, tokens, overlap guard and
    /// record): a run by hand or a backfill.
    Run {
        job: String,
        /// The run's scheduled time (RFC 3339 or a date); now when not given.
        #[arg(long)]
        scheduled_time: Option<String>,
        /// A value for one of the job's declared parameters.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Print the RunTask requests; start nothing.
        #[arg(long, conflicts_with = "offline")]
        dry_run: bool,
        /// Make no AWS call: plan the requests from the catalog alone.
        #[arg(long)]
        offline: bool,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// The recorded runs of JOB (every job when none): scheduled time, attempts, duration,
    /// outcome, exit codes.
    History {
        job: Option<String>,
        /// Only runs scheduled at or after this date (or RFC 3339 time).
        #[arg(long)]
        since: Option<String>,
        /// One JSON line per run instead of a table.
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Config(ConfigCommand),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    autopilot::telemetry::init();
    let cli = (!entry::in_lambda()).then(Cli::parse);
    if let Some(Command::Config(command)) = cli.as_ref().and_then(|cli| cli.command.as_ref()) {
        return entry::check_config(command);
    }
    let common = cli.as_ref().map(|cli| match &cli.command {
        Some(Command::Run {
            dry_run,
            offline,
            format,
            ..
        }) => CommonArgs::for_command(*dry_run, *offline, *format),
        Some(Command::History { .. }) => CommonArgs::for_command(true, false, Format::Json),
        Some(Command::Config(_)) => CommonArgs::for_command(false, true, Format::Json),
        None => cli.common.clone(),
    });
    let live = match Setup::init(common.as_ref(), Ports::for_runner)
        .await
        .and_then(|setup| Live::new(setup, Source::Batch, |setup| Ok(BatchRunner::new(setup))))
    {
        Ok(live) => live,
        Err(error) => return entry::fail_init(&error).await,
    };
    match cli.and_then(|cli| cli.command) {
        Some(Command::Run {
            job,
            scheduled_time,
            set,
            format,
            ..
        }) => {
            let runner = live.current().await.app;
            commands::run(&runner, &job, scheduled_time.as_deref(), &set, format).await
        }
        Some(Command::History { job, since, json }) => {
            let runner = live.current().await.app;
            commands::history(&runner, job.as_deref(), since.as_deref(), json).await
        }
        Some(Command::Config(command)) => entry::check_config(&command),
        None => {
            entry::serve(
                "batch-runner",
                common.as_ref(),
                &live,
                |runner, event, invocation| async move { runner.handle(event, invocation).await },
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn help_describes_this_functions_own_modes_and_commands() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("nothing started"), "{help}");
        assert!(
            help.contains("--dry-run") && help.contains("--offline"),
            "{help}"
        );
        assert!(help.contains("history") && help.contains("run"), "{help}");
    }
}
