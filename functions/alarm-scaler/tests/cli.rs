//! The `alarm-scaler` binary as a CLI (`--offline`, no AWS call): `--format payload` gives, per
//! alarm, each destination's exact body (the Slack JSON as posted, the SNS subject, message and
//! attributes), named by the alarm; an alarm of a foreign account is ignored offline too; and a
//! target policy is tried on a tick with assumed readings and an assumed time.

#[path = "../../cli_common.rs"]
mod cli_common;

use std::process::Command;

const CONFIG: &str = r#"{
    "notify": {
        "webhooks": {"ops-slack": {"kind": "slack", "url_ssm": "/autopilot/webhooks/ops"}},
        "routes": [{"name": "scaling", "category": ["scaling"], "webhook": "ops-slack", "also_default": true}]
    },
    "scaling": {"alarms": {"orders-queue-backlog-high": {
        "cluster": "shop", "service": "orders-worker", "min": 0, "max": 6,
        "alarm_steps": [{"lower": 0, "adjustment": 2}]
    }}}
}"#;

#[test]
fn format_payload_gives_each_destination_the_exact_body_named_by_the_alarm() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/alarms/eventbridge-alarm.json"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_alarm-scaler"))
        .args([
            "--offline",
            "--assume-desired",
            "0",
            "--format",
            "payload",
            fixture,
        ])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AUTOPILOT_CONFIG_SSM")
        .env_remove("AUTOPILOT_ACCOUNT_ID")
        .env("AUTOPILOT_CONFIG", CONFIG)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let to: Vec<&str> = lines.iter().map(|l| l["to"].as_str().unwrap()).collect();
    assert_eq!(to, ["webhook:ops-slack", "default"], "{stdout}");
    for line in &lines {
        assert_eq!(line["alarm"], "orders-queue-backlog-high", "{line}");
    }
    let slack = &lines[0]["body"];
    assert_eq!(slack["blocks"][0]["type"], "header", "{slack}");
    // As posted: Slack's mrkdwn gets `>` as an entity.
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .contains("scaled out 0 -&gt; 2"),
        "{slack}"
    );
    let topic = &lines[1]["body"];
    assert!(
        topic["subject"]
            .as_str()
            .unwrap()
            .contains("scaled out 0 -> 2"),
        "{topic}"
    );
    assert_eq!(topic["attributes"]["service"], "orders-worker");
    assert_eq!(topic["attributes"]["source"], "alarm-scaler");
}

/// The review's reproduction: an alarm event of account 999988887777 scaled shop/orders-worker
/// 1 -> 3 offline. With the stack's account known, it is ignored, naming the account.
#[test]
fn offline_an_alarm_of_a_foreign_account_is_ignored_naming_it() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/alarms/eventbridge-alarm.json"
    );
    let foreign = std::fs::read_to_string(fixture)
        .unwrap()
        .replace("111122223333", "999988887777");
    let mut child = Command::new(env!("CARGO_BIN_EXE_alarm-scaler"))
        .args(["--offline", "--assume-desired", "1"])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AUTOPILOT_CONFIG_SSM")
        .env("AUTOPILOT_ACCOUNT_ID", "111122223333")
        .env("AUTOPILOT_CONFIG", CONFIG)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(foreign.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["action"], "ignored", "{stdout}");
    assert_eq!(result["foreign"]["account"], "999988887777", "{stdout}");
    assert_eq!(
        result["to"],
        serde_json::Value::Null,
        "nothing scaled: {stdout}"
    );
}

const TARGETS: &str = r#"{"scaling": {"targets": {"orders": {
    "cluster": "shop", "service": "orders-worker", "min": 0, "max": 20, "target_per_task": 50,
    "scale_to_zero_after_s": 600,
    "sqs": {"queues": ["https://sqs.us-east-1.amazonaws.com/111122223333/orders"]}}}}}"#;

fn offline_tick(args: &[&str]) -> (bool, String) {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/schedule/eventbridge-scheduled-event.json"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_alarm-scaler"))
        .arg("--offline")
        .args(args)
        .arg(fixture)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AUTOPILOT_CONFIG_SSM")
        .env_remove("AUTOPILOT_ACCOUNT_ID")
        .env("AUTOPILOT_CONFIG", TARGETS)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8(output.stdout).unwrap();
    (output.status.success(), stdout + &stderr)
}

#[test]
fn offline_a_target_policy_is_tried_on_a_tick_with_assumed_readings() {
    let (ok, out) = offline_tick(&[
        "--assume-desired",
        "0",
        "--assume-backlog",
        "orders=250",
        "--now",
        "2026-12-04T09:00:00Z",
    ]);
    assert!(ok, "{out}");
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let service = &line["services"][0];
    assert_eq!(service["service"], "shop/orders-worker", "{line}");
    assert_eq!(service["signals"][0]["recommendation"], 5, "{line}");
    assert_eq!(
        (
            service["desired_from"].clone(),
            service["desired_to"].clone()
        ),
        (0.into(), 5.into()),
        "{line}"
    );
    assert_eq!(service["action"], "scale-out", "{line}");
    assert_eq!(service["dry_run"], true, "{line}");

    // Empty, at 3 tasks: at least one task until the queue has been empty 600 s, and the
    // stabilisation window keeps 3 for now.
    let (ok, out) = offline_tick(&["--assume-desired", "3", "--assume-backlog", "orders=0"]);
    assert!(ok, "{out}");
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let service = &line["services"][0];
    assert_eq!(service["signals"][0]["recommendation"], 1, "{line}");
    assert_eq!(service["desired_to"], 3, "{line}");
    assert_eq!(service["bounded_by"], "stabilization", "{line}");
}

#[test]
fn offline_a_misnamed_or_malformed_assumed_reading_is_a_usage_error() {
    for (args, says) in [
        (
            &["--assume-desired", "0", "--assume-backlog", "order=250"][..],
            "no target policy `order`",
        ),
        (
            &["--assume-desired", "0", "--assume-metric", "orders=250"][..],
            "reads sqs, not metric",
        ),
        (
            &["--assume-desired", "0", "--assume-backlog", "orders"][..],
            "is not NAME=NUMBER",
        ),
        (
            &["--assume-desired", "0", "--now", "yesterday"][..],
            "neither RFC 3339",
        ),
    ] {
        let (ok, out) = offline_tick(args);
        assert!(!ok, "{args:?}: {out}");
        assert!(out.contains(says), "{args:?}: {out}");
    }
}

#[test]
fn version_is_the_workspaces() {
    cli_common::answers_the_workspaces_version(env!("CARGO_BIN_EXE_alarm-scaler"), "alarm-scaler");
}

#[test]
fn check_config_names_every_problem_by_part_and_path() {
    cli_common::check_config_names_a_conflict_by_both_parts(
        env!("CARGO_BIN_EXE_alarm-scaler"),
        "alarm-scaler",
    );
}
