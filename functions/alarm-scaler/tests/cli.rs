//! The `alarm-scaler` binary as a CLI (`--offline`, no AWS call): `--format payload` gives, per
//! alarm, each destination's exact body (the Slack JSON as posted, the SNS subject, message and
//! attributes), named by the alarm; and an alarm of a foreign account is ignored offline too.

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
