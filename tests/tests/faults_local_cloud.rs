//! Faults injected between the deployed functions and the local cloud (the harness's proxy
//! fronts their ECS, SNS and DynamoDB): nothing is lost, nothing is told twice, counts stay
//! exact, and a retried call keeps its idempotency token. Each scenario is its own test on its
//! own local cloud; "exactly" is counted once every event is handled for good (its claim
//! complete, or its record on the on-failure queue), never after a quiet period.
//!
//! (a) 200 distinct failures while 30 % of SNS Publish calls fail (503): each is notified exactly
//!     once, after the SDK's and Lambda's retries, or lands in the on-failure queue with its
//!     reason; 0 lost, 0 duplicates, counted by task.
//! (b) DynamoDB throttling 30 % of the storm counts (the window's atomic `UpdateItem`) of a crash
//!     loop: the storm window's count is exact and the digest is sent once.
//! (c) UpdateService failing on every attempt of the first scale-out invocation: the scaler gives
//!     its cooldown back and fails; Lambda's retry makes exactly one change, told once.
//! (d) RunTask whose reply comes after the SDK's attempt timeout (ECS accepted it): the SDK's
//!     retry carries the same client token (ECS answers a repeated token with the first call's
//!     tasks; the local cloud does not implement that, so the token itself is checked).

use std::collections::BTreeMap;
use std::time::Duration;

use autopilot_tests::batch::{jobs_config, BatchStack, EXPORT_JOB};
use autopilot_tests::proxy::{Fault, FaultKind, When};
use autopilot_tests::scaler::{scaling_config, ScalerStack};
use autopilot_tests::{binary, bootstrap_zip, crash_loop, LocalCloud, TriageStack};

use serde_json::{json, Value};

const FAILURES: usize = 200;
const STORM: usize = 30;
/// The start of the storm count's update expression (JSON-escaped as in the request body).
const STORM_COUNT_WRITE: &str = "SET stops = stops + :one";

/// A standalone task of family `job-<i>` exiting with code 1: each its own storm window, so each
/// is told.
fn standalone_failure(stack: &TriageStack, i: usize) -> Value {
    let mut event = stack.fixture("service-crash-exit1").unwrap();
    event["id"] = format!("fault-a-{i:04}").into();
    event["detail"]["taskArn"] =
        format!("arn:aws:ecs:us-east-1:{}:task/shop/{i:032x}", stack.account).into();
    event["detail"]["group"] = format!("family:job-{i}").into();
    event
}

/// The local cloud with the triage stack deployed (the stack every scenario builds on).
async fn triage_stack() -> (LocalCloud, TriageStack, Value) {
    let cloud = LocalCloud::start().await.expect("local cloud");
    let config = json!({"scaling": scaling_config(5), "jobs": jobs_config()});
    let zip = bootstrap_zip(&binary("task-triage").expect("task-triage binary")).unwrap();
    let stack = TriageStack::deploy(&cloud, zip, &config)
        .await
        .expect("deploy");
    (cloud, stack, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_publishes_lose_nothing_and_tell_nothing_twice() {
    let (_cloud, stack, _config) = triage_stack().await;
    let proxy = &stack.proxy;
    // (a) Publish failing 30 % of the time.
    proxy.inject(Fault {
        operation: "Publish".into(),
        body_contains: String::new(),
        kind: FaultKind::Error {
            status: 503,
            code: "ServiceUnavailable",
        },
        when: When::Rate { percent: 30 },
    });
    // Invoked asynchronously, as EventBridge invokes a function: the local cloud's own
    // EventBridge → Lambda delivery runs a function once, without Lambda's retries and on-failure
    // destination (checked in its eventbridge.py), which is what this scenario is about.
    for i in 0..FAILURES {
        stack
            .invoke_async(&standalone_failure(&stack, i))
            .await
            .unwrap();
    }
    let tasks: Vec<String> = (0..FAILURES)
        .map(|i| standalone_failure(&stack, i)["detail"]["taskArn"].to_string())
        .map(|quoted| quoted.trim_matches('"').to_owned())
        .collect();
    let settled = stack
        .settled(&tasks, Duration::from_secs(240))
        .await
        .unwrap();
    let (message_ids, failed) = (settled.message_ids(), settled.parked);
    // Every event is over (told or parked): what it published is in the inbox or on its way;
    // the ids the claims kept are read, with anything else that arrived meanwhile.
    let inbox = stack
        .receive(&message_ids, Duration::from_secs(60))
        .await
        .unwrap();
    // Counted by the stopped task (one per event).
    let mut told: BTreeMap<String, usize> = BTreeMap::new();
    for notification in &inbox {
        let task = notification.body["details"]["task_arn"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        *told.entry(task).or_default() += 1;
    }
    let parked: Vec<&str> = failed
        .iter()
        .filter_map(|record| record["requestPayload"]["detail"]["taskArn"].as_str())
        .collect();
    assert!(
        parked.iter().all(|task| !told.contains_key(*task)),
        "an event both told and parked"
    );
    let duplicates: Vec<_> = told.iter().filter(|(_, n)| **n > 1).collect();
    let injected = proxy.injected("Publish");
    println!(
        "(a) {FAILURES} failures, {injected} Publish calls failed: {} told, {} on the failure queue, {} duplicates",
        told.len(),
        failed.len(),
        duplicates.len()
    );
    assert!(duplicates.is_empty(), "told twice: {duplicates:?}");
    assert_eq!(told.len() + failed.len(), FAILURES, "none lost");
    assert_eq!(
        inbox.len(),
        message_ids.len(),
        "the inbox holds what the claims say was published, nothing else"
    );
    assert!(
        injected >= FAILURES / 5,
        "about 30 % of {} Publish calls failed: {injected}",
        proxy.calls("Publish").0 + injected
    );
    for record in &failed {
        let text = record.to_string();
        assert!(
            text.contains("ServiceUnavailable"),
            "with its reason: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_storm_count_stays_exact() {
    let (_cloud, stack, _config) = triage_stack().await;
    let proxy = &stack.proxy;
    // (b) The storm count throttled 30 % of the time.
    proxy.inject(Fault {
        operation: "UpdateItem".into(),
        body_contains: STORM_COUNT_WRITE.into(),
        kind: FaultKind::Error {
            status: 400,
            code: "ThrottlingException",
        },
        when: When::Rate { percent: 30 },
    });
    let stops = crash_loop(&stack, STORM).unwrap();
    let crashed: Vec<String> = stops
        .iter()
        .map(|stop| stop["detail"]["taskArn"].as_str().unwrap().to_owned())
        .collect();
    for stop in &stops {
        stack.invoke_async(stop).await.unwrap();
    }
    // Every stop handled for good (retries over): nothing counts into the window after this.
    let settled = stack
        .settled(&crashed, Duration::from_secs(180))
        .await
        .unwrap();
    let (message_ids, parked) = (settled.message_ids(), settled.parked);
    assert!(parked.is_empty(), "a stop gave up: {parked:?}");
    let storm = stack
        .receive(&message_ids, Duration::from_secs(60))
        .await
        .unwrap();
    let injected = proxy.injected("UpdateItem");
    let window = stack
        .state_items()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i["pk"] == "storm#shop#service:orders-api#app-exit")
        .expect("the storm window");
    println!(
        "(b) {STORM} stops, {injected} storm counts throttled: window count {}, {} notifications",
        window["stops"],
        storm.len()
    );
    assert!(injected > 0, "some storm counts were throttled");
    assert_eq!(window["stops"], STORM.to_string(), "the count is exact");
    let kinds: Vec<&str> = storm
        .iter()
        .map(|n| n.body["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(kinds.len(), 2, "the first stop and one digest: {kinds:?}");
    assert_eq!(storm.len(), message_ids.len(), "nothing else arrived");
    assert!(kinds.contains(&"storm-digest"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_scale_out_changes_the_service_once_on_retry() {
    let (cloud, mut stack, config) = triage_stack().await;
    // (c) UpdateService failing on all three attempts of the first invocation.
    let scaler_zip = bootstrap_zip(&binary("alarm-scaler").expect("alarm-scaler binary")).unwrap();
    let scaler = ScalerStack::deploy(&cloud, &mut stack, scaler_zip, &config)
        .await
        .expect("deploy scaler");
    let proxy = &stack.proxy;
    proxy.inject(Fault {
        operation: "UpdateService".into(),
        body_contains: String::new(),
        kind: FaultKind::Error {
            status: 503,
            code: "ServiceUnavailable",
        },
        when: When::Calls(vec![1, 2, 3]),
    });
    let alarm = scaler.alarm_fixture("eventbridge-alarm", None).unwrap();
    scaler.invoke_async(&alarm).await.unwrap();
    assert_eq!(
        scaler
            .wait_for_desired(3, Duration::from_secs(60))
            .await
            .unwrap(),
        3
    );
    let told = scaler
        .published(&cloud, &stack, "scale-out", 1, Duration::from_secs(30))
        .await
        .unwrap();
    println!(
        "(c) UpdateService: {} failed, {} reached ECS; desired 0 -> 3; {} notification(s)",
        proxy.injected("UpdateService"),
        proxy.calls("UpdateService").0,
        told.len()
    );
    assert_eq!(proxy.injected("UpdateService"), 3);
    assert_eq!(proxy.calls("UpdateService").0, 1, "exactly one change");
    assert_eq!(told.len(), 1, "told once");
    assert!(
        told[0].subject.contains("scaled out 0 -> 3"),
        "{}",
        told[0].subject
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_run_task_reply_keeps_its_client_token() {
    let (cloud, mut stack, config) = triage_stack().await;
    // (d) RunTask accepted by ECS, its reply later than the SDK's 4 s attempt timeout.
    let runner_zip = bootstrap_zip(&binary("batch-runner").expect("batch-runner binary")).unwrap();
    let runner = BatchStack::deploy(&cloud, &mut stack, runner_zip, &config)
        .await
        .expect("deploy runner");
    let proxy = &stack.proxy;
    proxy.record("RunTask");
    proxy.inject(Fault {
        operation: "RunTask".into(),
        body_contains: String::new(),
        kind: FaultKind::LateReply(Duration::from_secs(6)),
        when: When::Calls(vec![1]),
    });
    let run = runner
        .run(EXPORT_JOB, "2026-09-16T02:00:00Z")
        .await
        .unwrap();
    let bodies = proxy.bodies("RunTask");
    let tokens: Vec<String> = bodies
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["clientToken"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    println!(
        "(d) RunTask sent {} times (first reply held 6 s), client tokens {tokens:?}; outcome {}",
        bodies.len(),
        run["action"]
    );
    assert_eq!(run["action"], "started", "{run}");
    assert!(bodies.len() >= 2, "the SDK retried the timed-out attempt");
    assert!(!tokens[0].is_empty());
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "one client token for every attempt: {tokens:?}"
    );
    assert_eq!(run["client_token"], tokens[0].as_str());
}
