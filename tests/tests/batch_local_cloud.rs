//! `batch-runner` end to end on the local cloud, through the deployed Lambda: a job started with
//! its catalog settings, a duplicate delivery, an overlapping run skipped, a run replacing its
//! predecessor, the tick stopping a task over its timeout, an unknown job, and the completion
//! report `task-triage` sends when a job task ends, and a job the stack's parameters do not let
//! it start told once as a configuration warning. Each scenario is its own test on its own
//! local cloud.

use std::time::Duration;

use autopilot_tests::batch::{self, BatchStack, EXPORT_JOB, SYNC_JOB, WARM_JOB};
use autopilot_tests::{binary, bootstrap_zip, logs_of, LocalCloud, TriageStack};
use serde_json::json;

/// The SNS message a run's result says it published, if any: the runner's own account of what
/// the inbox is to receive.
fn published(result: &serde_json::Value) -> Vec<String> {
    result["message_id"]
        .as_str()
        .map(str::to_owned)
        .into_iter()
        .collect()
}

async fn runner_stack() -> (LocalCloud, TriageStack, BatchStack) {
    let (cloud, triage, runner, _) = batch::runner_stack().await.expect("runner stack");
    (cloud, triage, runner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_starts_once_skips_an_overlap_and_is_reported_when_it_ends() {
    let (cloud, triage, runner) = runner_stack().await;
    // Start: one task, marked with startedBy, carrying the catalog's overrides and tags.
    let first = runner
        .run(EXPORT_JOB, "2026-09-15T02:00:00Z")
        .await
        .unwrap();
    assert_eq!(first["action"], "started", "{first}");
    assert_eq!(first["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(first["attempts"], 1);
    assert!(first["client_token"].as_str().unwrap().len() <= 64);
    let task_arn = first["tasks"][0].as_str().unwrap().to_owned();
    assert_eq!(
        runner.running(EXPORT_JOB).await.unwrap(),
        vec![task_arn.clone()]
    );
    let task = runner.describe(&task_arn).await.unwrap();
    assert_eq!(task.started_by(), Some("batch-runner/invoice-export"));
    let environment = task
        .overrides()
        .and_then(|o| o.container_overrides().first())
        .map(|c| c.environment().to_vec())
        .unwrap_or_default();
    assert!(
        environment
            .iter()
            .any(|kv| kv.name() == Some("RUN_MODE") && kv.value() == Some("scheduled")),
        "{environment:?}"
    );

    // The same scheduled run delivered again starts nothing.
    let duplicate = runner
        .run(EXPORT_JOB, "2026-09-15T02:00:00Z")
        .await
        .unwrap();
    assert_eq!(duplicate["action"], "skipped");
    assert!(
        duplicate["reason"]
            .as_str()
            .unwrap()
            .contains("duplicate delivery"),
        "{duplicate}"
    );

    // The next run while the first is still going: skipped, and users hear about it.
    let overlapping = runner
        .run(EXPORT_JOB, "2026-09-16T02:00:00Z")
        .await
        .unwrap();
    assert_eq!(overlapping["action"], "skipped");
    assert_eq!(overlapping["previous_tasks"], json!([task_arn.clone()]));
    assert_eq!(overlapping["tasks"], json!([]));
    let skipped = triage
        .receive(&published(&overlapping), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].attributes["source"], "batch-runner");
    assert!(
        skipped[0].subject.contains("job invoice-export skipped"),
        "{}",
        skipped[0].subject
    );
    assert_eq!(runner.running(EXPORT_JOB).await.unwrap().len(), 1);

    // Completion: the export task ends with exit code 3 after 5 min; task-triage reports the job.
    let stop_event = runner.finish(&task_arn, 3, 300).await.unwrap();
    triage.put_events(&[stop_event]).await.unwrap();
    let report = triage
        .published(&cloud, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(report.len(), 1);
    let n = &report[0];
    assert_eq!(n.attributes["source"], "task-triage");
    assert_eq!(n.attributes["severity"], "critical");
    assert!(
        n.subject
            .contains("job invoice-export failed after 5m 0s: exited with code 3"),
        "{}",
        n.subject
    );
    assert_eq!(n.body["details"]["job"]["name"], EXPORT_JOB);
    assert_eq!(n.body["details"]["job"]["duration_s"], 300);
    assert_eq!(n.body["details"]["job"]["exit_codes"][0]["exit_code"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_replaces_its_predecessor_with_a_reason() {
    let (_cloud, triage, runner) = runner_stack().await;
    // Replace: the second run stops the first with a clear reason, then starts.
    let old = runner.run(SYNC_JOB, "2026-09-15T03:00:00Z").await.unwrap();
    let old_arn = old["tasks"][0].as_str().unwrap().to_owned();
    let replacing = runner.run(SYNC_JOB, "2026-09-15T04:00:00Z").await.unwrap();
    assert_eq!(replacing["action"], "replaced", "{replacing}");
    assert_eq!(replacing["previous_tasks"], json!([old_arn.clone()]));
    let new_arn = replacing["tasks"][0].as_str().unwrap().to_owned();
    let stopped = runner.describe(&old_arn).await.unwrap();
    assert_eq!(stopped.last_status(), Some("STOPPED"));
    assert_eq!(
        stopped.stopped_reason(),
        Some("batch-runner: replaced by the run 2026-09-15T04:00:00Z")
    );
    assert_eq!(runner.running(SYNC_JOB).await.unwrap(), vec![new_arn]);
    let replaced = triage
        .receive(&published(&replacing), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(replaced.len(), 1);
    assert!(
        replaced[0]
            .subject
            .contains("job ledger-sync replaced 1 running tasks"),
        "{}",
        replaced[0].subject
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tick_stops_a_task_over_its_timeout() {
    let (_cloud, _triage, runner) = runner_stack().await;
    // Another job's run, which the tick must leave alone.
    let export = runner
        .run(EXPORT_JOB, "2026-09-15T02:00:00Z")
        .await
        .unwrap();
    assert_eq!(export["action"], "started", "{export}");

    // Timeout: the tick stops a task that ran longer than its job's timeout_s (1 s).
    let warm = runner.run(WARM_JOB, "2026-09-15T05:00:00Z").await.unwrap();
    let warm_arn = warm["tasks"][0].as_str().unwrap().to_owned();
    // The tick must come 2 s after the task started (its timeout is 1 s): the wait is for the
    // clock to pass that moment, read from the task as ECS reports it.
    let started = runner.describe(&warm_arn).await.unwrap();
    let started_s = started
        .started_at()
        .or(started.created_at())
        .map(|t| t.secs())
        .expect("the task's start");
    let due = std::time::UNIX_EPOCH + Duration::from_secs((started_s + 2) as u64 + 1);
    if let Ok(left) = due.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
    let tick = runner.invoke(&json!({"tick": true})).await.unwrap();
    let stops = tick["stopped"].as_array().unwrap();
    assert_eq!(stops.len(), 1, "{tick}");
    assert_eq!(stops[0]["task"], warm_arn);
    assert!(stops[0]["ran_s"].as_i64().unwrap() >= 2);
    let timed_out = runner.describe(&warm_arn).await.unwrap();
    assert_eq!(timed_out.last_status(), Some("STOPPED"));
    assert_eq!(
        timed_out.stopped_reason(),
        Some("batch-runner: exceeded timeout of 1 s")
    );
    assert_eq!(
        runner.running(EXPORT_JOB).await.unwrap().len(),
        1,
        "other jobs untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_we_do_not_act_on_is_refused() {
    let (_cloud, _triage, runner) = runner_stack().await;
    // Input we do not act on.
    let unknown = runner.invoke(&json!({"job": "payroll"})).await.unwrap_err();
    assert!(
        unknown.contains("InvalidEvent") && unknown.contains("unknown job `payroll`"),
        "{unknown}"
    );
    let untrusted = runner
        .invoke(&json!({"job": EXPORT_JOB, "cluster": "prod"}))
        .await
        .unwrap_err();
    assert!(untrusted.contains("`cluster`"), "{untrusted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_stack_does_not_allow_is_told_once_as_a_configuration_warning() {
    let cloud = LocalCloud::start().await.expect("local cloud");
    // `reports` runs a task definition outside the stack's JobTaskDefinitionArns.
    let mut jobs = batch::jobs_config();
    let mut reports = jobs[EXPORT_JOB].clone();
    reports["task_definition"] = json!("reports");
    jobs["reports"] = reports;
    let config = json!({ "jobs": jobs });
    let triage_zip = bootstrap_zip(&binary("task-triage").unwrap()).unwrap();
    let mut triage = TriageStack::deploy(&cloud, triage_zip, &config)
        .await
        .unwrap();
    let zip = bootstrap_zip(&binary("batch-runner").unwrap()).unwrap();
    let runner = BatchStack::deploy(&cloud, &mut triage, zip, &config)
        .await
        .unwrap();

    runner.tick().await.unwrap();
    runner.tick().await.unwrap();
    let mismatches: Vec<_> = triage
        .drain_inbox(1, Duration::from_secs(2), Duration::from_secs(60))
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.body["kind"] == "config-mismatch")
        .collect();
    assert_eq!(mismatches.len(), 1, "told once: {mismatches:#?}");
    assert_eq!(mismatches[0].attributes["severity"], "warning");
    assert_eq!(mismatches[0].attributes["source"], "batch-runner");
    let told = mismatches[0].body.to_string();
    assert!(
        told.contains("jobs.reports.task_definition") && !told.contains("jobs.invoice-export"),
        "{told}"
    );
    let logs = logs_of(&cloud, &runner.function).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.contains("against the stack's parameters: jobs.reports.task_definition")),
        "a warning line: {logs:#?}"
    );
}
