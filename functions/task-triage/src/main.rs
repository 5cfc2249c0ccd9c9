//! `task-triage`: diagnoses stopped ECS tasks and notifies through SNS. Under Lambda it serves
//! EventBridge events; elsewhere it is a CLI over event files (see `--help`).

use std::process::ExitCode;

use autopilot::app::{live::Live, triage::TaskTriage, Ports, Setup};
use autopilot::domain::Source;
use autopilot::entry::{self, CommonArgs, ConfigCommand};
use clap::Parser;

/// Diagnose stopped ECS tasks from "ECS Task State Change" events; one JSON line per event.
#[derive(Debug, Parser)]
#[command(
    name = "task-triage",
    version,
    args_conflicts_with_subcommands = true,
    mut_arg("dry_run", |arg| arg.help("Read AWS (claims, storm windows, the service, logs) but write nothing: say what would be sent")),
    mut_arg("offline", |arg| arg.help("Make no AWS call: classify and render from the event alone (no dedup, no enrichment, nothing published)"))
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<ConfigCommand>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    autopilot::telemetry::init();
    let cli = (!entry::in_lambda()).then(Cli::parse);
    if let Some(command) = cli.as_ref().and_then(|cli| cli.command.as_ref()) {
        return entry::check_config(command);
    }
    let triage = match Setup::init(cli.as_ref().map(|cli| &cli.common), Ports::for_triage)
        .await
        .and_then(|setup| Live::new(setup, Source::Triage, |setup| Ok(TaskTriage::new(setup))))
    {
        Ok(triage) => triage,
        Err(error) => return entry::fail_init(&error).await,
    };
    entry::serve(
        "task-triage",
        cli.as_ref().map(|cli| &cli.common),
        &triage,
        |triage, event, invocation| async move { triage.respond(event, invocation).await },
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
        assert!(help.contains("no dedup, no enrichment"), "{help}");
        assert!(
            help.contains("--dry-run") && help.contains("--offline"),
            "{help}"
        );
    }
}
