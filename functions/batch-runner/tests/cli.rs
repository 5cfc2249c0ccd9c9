//! The `batch-runner` binary's own commands (`--offline`, no AWS call): `run JOB` plans a run
//! by hand with `--set` parameters in the job's command, refuses an undeclared or malformed
//! value naming it, and `history` says it needs the state table.

#[path = "../../cli_common.rs"]
mod cli_common;

use std::process::{Command, Output};

const CONFIG: &str = r#"{"jobs": {
    "extract": {"cluster": "data", "task_definition": "etl:1"},
    "load": {"cluster": "data", "task_definition": "etl:1", "after": ["extract"]},
    "export": {
        "cluster": "data", "task_definition": "export:4",
        "parameters": {"month": {"pattern": "^[0-9]{4}-[0-9]{2}$", "default": "last"}},
        "overrides": [{"name": "app", "command": ["export", "--month", "{month}"]}]
    }
}}"#;

fn batch_runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_batch-runner"))
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AUTOPILOT_CONFIG_SSM")
        .env_remove("STATE_TABLE")
        .env("AUTOPILOT_CONFIG", CONFIG)
        .output()
        .unwrap()
}

fn line(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn run_by_hand_plans_the_run_with_its_parameters() {
    let output = batch_runner(&[
        "run",
        "export",
        "--scheduled-time",
        "2026-11-01",
        "--set",
        "month=2026-09",
        "--offline",
    ]);
    assert!(output.status.success(), "{output:?}");
    let planned = line(&output);
    assert_eq!(planned["job"], "export");
    assert_eq!(
        planned["requests"][0]["overrides"][0]["command"],
        serde_json::json!(["export", "--month", "2026-09"]),
        "{planned}"
    );
    // The default: the month before the scheduled time.
    let output = batch_runner(&[
        "run",
        "export",
        "--scheduled-time",
        "2026-11-01",
        "--offline",
    ]);
    assert_eq!(
        line(&output)["requests"][0]["overrides"][0]["command"][2],
        "2026-10"
    );
    // A job that runs after another may be started by hand.
    let output = batch_runner(&["run", "load", "--offline"]);
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn run_by_hand_refuses_what_the_job_does_not_declare() {
    for (set, field) in [
        ("month=October", "parameters.month"),
        ("region=eu", "parameters.region"),
    ] {
        let output = batch_runner(&["run", "export", "--set", set, "--offline"]);
        assert!(!output.status.success());
        let error = line(&output);
        assert_eq!(error["error"]["error_type"], "InvalidEvent", "{error}");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(field),
            "{error}"
        );
    }
    let output = batch_runner(&["run", "export", "--set", "month", "--offline"]);
    assert_eq!(line(&output)["error"]["error_type"], "Usage");
}

#[test]
fn history_needs_the_state_table() {
    let output = batch_runner(&["history", "extract"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("STATE_TABLE"), "{stderr}");
}

#[test]
fn version_is_the_workspaces() {
    cli_common::answers_the_workspaces_version(env!("CARGO_BIN_EXE_batch-runner"), "batch-runner");
}

#[test]
fn check_config_names_every_problem_by_part_and_path() {
    cli_common::check_config_names_a_conflict_by_both_parts(
        env!("CARGO_BIN_EXE_batch-runner"),
        "batch-runner",
    );
}
