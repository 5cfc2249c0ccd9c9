//! The `task-triage` binary as a CLI (`--offline`, no AWS call): an event over the size any
//! source delivers (here 1 MiB) is refused with a named error before it is parsed, and the
//! events beside it in the same run are still answered.

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
