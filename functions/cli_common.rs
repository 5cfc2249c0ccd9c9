//! What every function's CLI answers alike — `--version` and `check-config` — checked once here
//! and included by each function's `tests/cli.rs` with its own binary.

use std::path::Path;
use std::process::{Command, Output};

fn run(bin: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .unwrap()
}

/// `<name> --version` prints the workspace's version.
pub fn answers_the_workspaces_version(bin: &str, name: &str) {
    let output = run(bin, &["--version".as_ref()]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("{name} {}", autopilot::VERSION)
    );
}

/// `check-config DIR` names a job defined in two parts by both, and passes once one is gone.
pub fn check_config_names_a_conflict_by_both_parts(bin: &str, name: &str) {
    let dir = std::env::temp_dir().join(format!("check-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let job = r#"{"jobs": {"nightly": {"cluster": "c", "task_definition": "t"}}}"#;
    for part in ["a-jobs.json", "b-jobs.json"] {
        std::fs::write(dir.join(part), job).unwrap();
    }
    let check = |path: &Path| run(bin, &["check-config".as_ref(), path.as_os_str()]);
    let refused = check(&dir);
    assert!(!refused.status.success());
    assert_eq!(
        String::from_utf8_lossy(&refused.stdout).trim(),
        "error: b-jobs.json: jobs.nightly: also defined in a-jobs.json: a name belongs to one part"
    );
    std::fs::remove_file(dir.join("b-jobs.json")).unwrap();
    let fine = check(&dir);
    assert!(fine.status.success(), "{fine:?}");
    assert!(String::from_utf8_lossy(&fine.stdout).starts_with("ok: 1 part(s); 1 job(s)"));
    std::fs::remove_dir_all(&dir).unwrap();
}
