//! `task-triage`: diagnoses stopped ECS tasks and notifies through SNS. Under Lambda it serves
//! EventBridge events; elsewhere it is a CLI over event files (see `--help`).

use std::process::ExitCode;

use autopilot::app::{triage::TaskTriage, Ports, Setup};
use autopilot::entry::{self, CommonArgs, Mode};
use clap::Parser;

/// Diagnose stopped ECS tasks from "ECS Task State Change" events; one JSON line per event.
#[derive(Debug, Parser)]
#[command(name = "task-triage", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    autopilot::telemetry::init();
    let cli = (!entry::in_lambda()).then(Cli::parse);
    let mode = cli.as_ref().map_or(Mode::Live, |cli| cli.common.mode());
    let triage = match Setup::init(mode, Ports::for_triage)
        .await
        .map(TaskTriage::new)
    {
        Ok(triage) => triage,
        Err(error) => return entry::fail_init(&error).await,
    };
    entry::serve(
        "task-triage",
        cli.as_ref().map(|cli| &cli.common),
        |event, invocation| triage.respond(event, invocation),
    )
    .await
}
