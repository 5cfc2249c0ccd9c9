//! The release directory deployed without the sources: `dist/` written (as `make dist` does,
//! here from the debug binaries) into a directory outside the workspace, its checksums checked
//! as a user would (`sha256sum -c SHA256SUMS`), then `packaged.yaml` deployed on the local cloud
//! from that directory alone and task-triage invoked.

use std::path::Path;

use autopilot_dist::{self as dist, Build};
use autopilot_tests::{fixtures_dir, invoke_sync, target_dir, template, LocalCloud};
use serde_json::json;

fn sha256sum_check(dir: &Path) -> std::process::Output {
    std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(dir)
        .output()
        .expect("sha256sum")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packaged_yaml_deploys_from_a_directory_without_sources() {
    let dir = std::env::temp_dir().join(format!("autopilot-dist-{}", std::process::id()));
    let files = dist::write(
        &dir,
        &[Build {
            arch: "x86_64".into(),
            dir: target_dir().join("debug"),
        }],
    )
    .expect("dist");
    for (_, binary) in dist::FUNCTIONS {
        assert!(
            files.contains(&dist::zip_name(binary, "x86_64")),
            "{files:?}"
        );
    }
    for file in [
        "packaged.yaml",
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "SHA256SUMS",
    ] {
        assert!(files.iter().any(|f| f == file), "{file}: {files:?}");
    }
    assert!(
        !dir.join("Cargo.toml").exists() && !dir.join("shared").exists(),
        "no sources"
    );
    let checked = sha256sum_check(&dir);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    // The checksums are of what is there: one changed byte is caught.
    let readme = dir.join("README.md");
    let mut text = std::fs::read(&readme).unwrap();
    text.push(b'\n');
    std::fs::write(&readme, &text).unwrap();
    assert!(!sha256sum_check(&dir).status.success());
    text.pop();
    std::fs::write(&readme, &text).unwrap();

    let cloud = LocalCloud::start().await.expect("local cloud");
    let stack = template::deploy_packaged(
        &cloud,
        "ecs-autopilot-dist",
        &dir,
        &[(
            "ConfigDocument",
            json!({"triage": {"log_lines": 3}}).to_string(),
        )],
    )
    .await
    .expect("deploy packaged.yaml");
    let function = stack.physical_id("TaskTriageFunction").unwrap();
    let topic = stack.output("NotificationTopicArn").unwrap();
    let account = topic.split(':').nth(4).unwrap().to_owned();
    let event = std::fs::read_to_string(fixtures_dir().join("ecs/user-stopped.json"))
        .unwrap()
        .replace("111122223333", &account);
    let lambda = aws_sdk_lambda::Client::new(&cloud.config);
    let answer = invoke_sync(&lambda, function, &serde_json::from_str(&event).unwrap())
        .await
        .expect("task-triage answers from the packaged zip");
    assert_eq!(answer["decision"], "silent", "{answer}");
    std::fs::remove_dir_all(&dir).unwrap();
}
