//! The `task-triage` binary as a CLI (`--offline`, no AWS call): `--explain-route`, `--format
//! text` and `--format payload` over routing rules, a bad route failing init by its path, and an event over the size any
//! source delivers (here 1 MiB) is refused with a named error before it is parsed, and the
//! events beside it in the same run are still answered.

#[path = "../../cli_common.rs"]
mod cli_common;

use std::process::Command;

fn oom_with_reason_of(bytes: usize) -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/ecs/service-oom.json"
    );
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["detail"]["stoppedReason"] = "é".repeat(bytes / 2).into();
    event
}

#[test]
fn a_one_mebibyte_event_is_refused_by_name_and_the_next_is_answered() {
    let dir = std::env::temp_dir().join(format!("task-triage-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (huge, fine) = (dir.join("huge.json"), dir.join("fine.json"));
    std::fs::write(&huge, oom_with_reason_of(1024 * 1024).to_string()).unwrap();
    std::fs::write(&fine, oom_with_reason_of(200 * 1024).to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_task-triage"))
        .arg("--offline")
        .arg(&huge)
        .arg(&fine)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AUTOPILOT_CONFIG")
        .env_remove("AUTOPILOT_CONFIG_SSM")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(!output.status.success(), "a refused event fails the run");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let error = &lines[0]["error"];
    assert_eq!(error["error_type"], "InvalidEvent", "{stdout}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message
            .contains("bytes; events from EventBridge, SNS and Scheduler are at most 262144 bytes"),
        "{message}"
    );
    assert_eq!(lines[1]["decision"], "notify", "{stdout}");
}

const ROUTES: &str = r#"{"notify": {"routes": [
    {"name": "search deploys", "category": ["deployment-failed"], "topic": "arn:aws:sns:us-east-1:111122223333:search"},
    {"name": "orders oom", "service": "orders-*", "category": ["oom"], "severity": "critical",
     "topic": "arn:aws:sns:us-east-1:111122223333:payments", "also_default": true}
]}}"#;

fn fixture(path: &str) -> String {
    format!("{}/../../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn offline(args: &[&str], config: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_task-triage"))
        .arg("--offline")
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AUTOPILOT_CONFIG_SSM")
        .env("AUTOPILOT_CONFIG", config)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn explain_route_says_which_rule_matched_and_why_and_sends_nothing() {
    let oom = fixture("ecs/service-oom.json");
    let (ok, stdout) = offline(&["--explain-route", &oom], ROUTES);
    assert!(ok, "{stdout}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let route = &line["route"];
    assert_eq!(route["by"], "rule 1 (orders oom)");
    assert_eq!(
        route["to"],
        serde_json::json!(["arn:aws:sns:us-east-1:111122223333:payments", "default"])
    );
    assert_eq!(
        route["why"],
        serde_json::json!([
            "rule 0 (search deploys): no (category oom is not one of deployment-failed)",
            "rule 1 (orders oom): matches (service orders-*, category oom)"
        ])
    );
    // In prose.
    let (ok, text) = offline(&["--explain-route", "--format", "text", &oom], ROUTES);
    assert!(ok, "{text}");
    assert!(
        text.contains(
            "route: rule 1 (orders oom) → arn:aws:sns:us-east-1:111122223333:payments, default"
        ),
        "{text}"
    );
    assert!(text.contains("why: rule 0 (search deploys): no"), "{text}");
}

#[test]
fn format_text_shows_the_notification_a_person_would_receive() {
    let oom = fixture("ecs/service-oom.json");
    let stopped = fixture("ecs/user-stopped.json");
    let (ok, text) = offline(&["--format", "text", &oom, &stopped], ROUTES);
    assert!(ok, "{text}");
    assert!(
        text.contains("│ [CRITICAL] container orders-api killed for exceeding its memory limit"),
        "{text}"
    );
    assert!(text.contains("│ What to do"), "{text}");
    assert!(
        text.contains("silent · user-stop") && text.contains("silent decisions are never routed"),
        "{text}"
    );
    assert!(!text.trim_start().starts_with('{'), "not JSON: {text}");
}

#[test]
fn a_bad_route_fails_init_naming_its_path() {
    let config = r#"{"notify": {"routes": [{"cluster": "shop", "windows": [{"days": ["mon"], "from": "09:00", "to": "09:00"}], "mute": true}]}}"#;
    let output = Command::new(env!("CARGO_BIN_EXE_task-triage"))
        .arg("--offline")
        .arg(fixture("ecs/service-oom.json"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AUTOPILOT_CONFIG_SSM")
        .env("AUTOPILOT_CONFIG", config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("notify.routes[0].windows[0].to"),
        "{stderr}"
    );
}

#[test]
fn format_payload_gives_each_destination_the_exact_body_it_would_receive() {
    let config = r#"{"notify": {
        "webhooks": {"ops-slack": {"kind": "slack", "url_ssm": "/autopilot/webhooks/ops"},
                     "ops-teams": {"kind": "teams", "url_ssm": "/autopilot/webhooks/teams"}},
        "routes": [{"name": "oom", "category": ["oom"], "webhook": "ops-slack", "also_default": true},
                   {"name": "stops", "webhook": "ops-teams"}]}}"#;
    let oom = fixture("ecs/service-oom.json");
    let stopped = fixture("ecs/user-stopped.json");
    let (ok, stdout) = offline(&["--format", "payload", &oom, &stopped], config);
    assert!(ok, "{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // The OOM to Slack and the default topic; the user's stop is silent, so nothing.
    let to: Vec<&str> = lines.iter().map(|l| l["to"].as_str().unwrap()).collect();
    assert_eq!(to, ["webhook:ops-slack", "default"]);
    for line in &lines {
        assert_eq!(line["event_id"], "6f0e2b1c-a1b2-4c1d-8e2f-4b5c6d7e8f90");
    }
    let slack = &lines[0]["body"];
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert!(slack["text"].as_str().unwrap().starts_with("[CRITICAL]"));
    let topic = &lines[1]["body"];
    assert!(topic["subject"]
        .as_str()
        .unwrap()
        .starts_with("[CRITICAL] shop/orders-api"));
    assert_eq!(topic["attributes"]["category"], "oom");
    assert!(topic["message"]["default"].is_string());
}

#[test]
fn version_is_the_workspaces() {
    cli_common::answers_the_workspaces_version(env!("CARGO_BIN_EXE_task-triage"), "task-triage");
}

#[test]
fn check_config_names_every_problem_by_part_and_path() {
    cli_common::check_config_names_a_conflict_by_both_parts(
        env!("CARGO_BIN_EXE_task-triage"),
        "task-triage",
    );
}

#[test]
fn check_config_holds_the_examples_to_the_stack_parameters() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let check = |parameters: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_task-triage"))
            .args([
                "check-config",
                &format!("{root}/examples/config"),
                "--stack-parameters",
            ])
            .arg(parameters)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .unwrap()
    };
    let fine = check(&format!("{root}/examples/stack-parameters.json"));
    assert!(fine.status.success(), "{fine:?}");
    // samconfig.toml sets only the architecture: nothing the examples need is allowed.
    let refused = check(&format!("{root}/samconfig.toml"));
    assert!(!refused.status.success());
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(
        stdout.contains(
            "error: stack parameters: 40-jobs-data.json: jobs.extract: batch-runner is not in the stack: JobTaskDefinitionArns is empty"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "error: stack parameters: 10-platform.json: notify.webhooks.platform-slack.url_ssm"
        ),
        "{stdout}"
    );
}
