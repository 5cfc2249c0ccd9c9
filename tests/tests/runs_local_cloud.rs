//! `batch-runner`'s run records end to end on the local cloud: a job failing with exit 1 is
//! retried by the tick after its backoff and succeeds, the job that runs after it starts only
//! then, `task-triage` tells the failed attempt and the success after the retry, and the
//! history is read back through the CLI; a run with no task RUNNING by its start deadline is
//! flagged by the tick. The stops are injected (the local cloud runs no containers).

use std::time::Duration;

use autopilot_tests::batch::{self, BatchStack, EXTRACT_JOB, LOAD_JOB, STUCK_JOB};
use autopilot_tests::{LocalCloud, TriageStack};
use serde_json::{json, Value};

const RUN: &str = "2026-11-03T02:00:00Z";

async fn runner_stack() -> (LocalCloud, TriageStack, BatchStack, Value) {
    batch::runner_stack().await.expect("runner stack")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_is_retried_and_what_runs_after_it_starts_once_it_succeeded() {
    let (cloud, triage, runner, config) = runner_stack().await;
    let first = runner.run(EXTRACT_JOB, RUN).await.unwrap();
    assert_eq!(first["action"], "started", "{first}");
    let task = first["tasks"][0].as_str().unwrap().to_owned();
    assert!(
        runner
            .invoke(&json!({"job": LOAD_JOB, "scheduled_time": RUN}))
            .await
            .unwrap_err()
            .contains("runs after extract"),
        "a dependent job has no schedule of its own"
    );

    // Attempt 1 exits 1: task-triage tells it as a warning with the retry to come.
    let stop = runner.finish(&task, 1, 60).await.unwrap();
    triage.put_events(&[stop]).await.unwrap();
    let told = triage
        .published(&cloud, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].attributes["severity"], "warning");
    assert!(
        told[0].body["title"]
            .as_str()
            .unwrap()
            .contains("will retry in 1s, 1 retry left"),
        "{}",
        told[0].body
    );
    assert!(
        runner.running(LOAD_JOB).await.unwrap().is_empty(),
        "load waits"
    );

    // The tick starts attempt 2 with its own token once the stop is recorded.
    let second = runner.next_retry(Duration::from_secs(30)).await.unwrap();
    assert_eq!(second["action"], "started", "{second}");
    assert_ne!(second["client_token"], first["client_token"]);
    let retry_task = second["tasks"][0].as_str().unwrap().to_owned();

    // Attempt 2 succeeds: load starts for the same scheduled time; triage says so.
    let stop = runner.finish(&retry_task, 0, 30).await.unwrap();
    triage.put_events(&[stop]).await.unwrap();
    let load = runner
        .started(LOAD_JOB, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(load.len(), 1);
    let told = triage
        .published(&cloud, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(told.len(), 1);
    assert!(
        told[0].body["title"]
            .as_str()
            .unwrap()
            .contains("job extract succeeded on attempt 2"),
        "{}",
        told[0].body
    );

    // The history, through the CLI.
    let history = runner
        .history(&cloud, &triage.table, &config, None)
        .unwrap();
    let extract = history
        .iter()
        .find(|r| r["job"] == EXTRACT_JOB)
        .expect("extract's run");
    assert_eq!(
        (extract["attempts"].as_u64(), extract["outcome"].as_str()),
        (Some(2), Some("succeeded"))
    );
    assert_eq!(extract["scheduled"], RUN);
    assert!(
        extract["exit_codes"]
            .as_str()
            .unwrap()
            .contains("1: invoice-export=1"),
        "{extract}"
    );
    let load_run = history
        .iter()
        .find(|r| r["job"] == LOAD_JOB)
        .expect("load's run");
    assert_eq!(load_run["outcome"], "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_no_task_running_by_its_deadline_is_flagged_by_the_tick() {
    let (_cloud, triage, runner, _config) = runner_stack().await;
    let run = runner.run(STUCK_JOB, RUN).await.unwrap();
    let task = run["tasks"][0].as_str().unwrap().to_owned();
    // No RUNNING event arrives (the local cloud emits none): after the 60 s deadline, the tick
    // ends the run, stops its task and tells it.
    let early = runner.tick().await.unwrap();
    assert!(early.get("alerted").is_none(), "{early}");
    tokio::time::sleep(Duration::from_secs(61)).await;
    // The stack's own minute tick may get there first: whichever tick takes the run's claim
    // tells it, and ours then finds nothing left to tell.
    let tick = runner.tick().await.unwrap();
    let ours = tick["alerted"].as_array().cloned().unwrap_or_default();
    assert!(ours.len() <= 1, "{tick}");
    if let Some(alert) = ours.first() {
        assert_eq!(alert["alert"], "never-started");
    }
    let received: Vec<_> = triage
        .drain_inbox(1, Duration::from_secs(2), Duration::from_secs(60))
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.subject.contains("never started"))
        .collect();
    assert_eq!(received.len(), 1, "told once");
    assert!(
        received[0].subject.contains("job stuck never started"),
        "{}",
        received[0].subject
    );
    assert_eq!(received[0].attributes["severity"], "critical");
    let stopped = runner.describe(&task).await.unwrap();
    assert_eq!(stopped.last_status(), Some("STOPPED"));
    let again = runner.tick().await.unwrap();
    assert!(again.get("alerted").is_none(), "told once: {again}");
}
