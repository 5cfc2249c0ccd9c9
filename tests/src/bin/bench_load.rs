//! `make bench-load`: a burst of mixed events through the deployed `task-triage` (release build)
//! on the local cloud — distinct failures, a crash-loop storm, normal stops, redeliveries — put
//! in at once as asynchronous invocations (as EventBridge invokes), then: every event processed,
//! the decisions and notifications exactly as expected, the handler's duration (p50/p99, from
//! each invocation's EMF document) and the AWS calls per event (counted at the harness's proxy).
//! A benchmark: it prints figures and exits non-zero if a count is off; it asserts no timing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use autopilot_tests::{binary, bootstrap_zip, crash_of, LocalCloud, Result, TriageStack, SERVICE};
use serde_json::{json, Value};

/// Distinct failures (each its own standalone task family: each told).
const FAILURES: usize = 500;
/// Stops of one service in one storm window: the first and the 10th, 100th and 1000th told.
const STORM: usize = 1000;
/// Normal stops (deployment scale-ins): silent.
const SILENT: usize = 300;
/// Redeliveries of failures already sent: duplicates.
const REDELIVERED: usize = 200;

fn failure(stack: &TriageStack, i: usize) -> Result<Value> {
    let mut event = stack.fixture("service-crash-exit1")?;
    event["id"] = format!("load-failure-{i}").into();
    event["detail"]["taskArn"] =
        format!("arn:aws:ecs:us-east-1:{}:task/shop/{i:032x}", stack.account).into();
    event["detail"]["group"] = format!("family:load-job-{i}").into();
    Ok(event)
}

fn scale_in(stack: &TriageStack, i: usize) -> Result<Value> {
    let mut event = stack.fixture("service-deployment-scale-in")?;
    event["id"] = format!("load-silent-{i}").into();
    event["detail"]["taskArn"] = format!(
        "arn:aws:ecs:us-east-1:{}:task/shop/5{i:031x}",
        stack.account
    )
    .into();
    Ok(event)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn run() -> Result<()> {
    let cloud = LocalCloud::start().await?;
    let zip = bootstrap_zip(&binary("task-triage")?)?;
    let config = json!({"triage": {"log_lines": 5, "storm_window_s": 3600}});
    let stack = TriageStack::deploy(&cloud, zip, &config).await?;
    let mut events = Vec::new();
    for i in 0..FAILURES {
        events.push(failure(&stack, i)?);
    }
    for i in 0..STORM {
        events.push(crash_of(&stack, &format!("10ad{i:028x}"))?);
    }
    for i in 0..SILENT {
        events.push(scale_in(&stack, i)?);
    }
    // Redeliveries come after their originals in the burst (the same event again).
    for i in 0..REDELIVERED {
        events.push(failure(&stack, i)?);
    }
    let total = events.len();
    let digests = [10, 100, 1000].iter().filter(|n| **n <= STORM).count();
    let expected_notify = FAILURES + 1 + digests;
    println!(
        "burst: {total} events ({FAILURES} distinct failures, a storm of {STORM} stops of {SERVICE}, {SILENT} normal stops, {REDELIVERED} redeliveries)"
    );

    let started = Instant::now();
    for event in &events {
        stack.invoke_async(event).await?;
    }
    let put_in = started.elapsed();
    // Attempts that failed (a claim another invocation holds, a contended write) are retried by
    // Lambda: wait for a decision per event, or until nothing new was decided for a minute (the
    // rest went to the on-failure queue after Lambda's retries).
    let deadline = Instant::now() + Duration::from_secs(900);
    let (mut decided, mut last_progress) = (0, Instant::now());
    let outcomes = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcomes = stack.outcomes(&cloud, total, left).await?;
        let now_decided = outcomes.decisions.values().sum::<usize>();
        if now_decided > decided {
            (decided, last_progress) = (now_decided, Instant::now());
        }
        let stalled = last_progress.elapsed() >= Duration::from_secs(60);
        if decided >= total || stalled || Instant::now() >= deadline {
            break outcomes;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let processed = started.elapsed();
    let inbox = stack
        .drain_inbox(
            expected_notify,
            Duration::from_secs(5),
            Duration::from_secs(300),
        )
        .await?;
    println!(
        "put in {:.1} s; all outcomes logged after {:.1} s; {} notifications in the inbox",
        put_in.as_secs_f64(),
        processed.as_secs_f64(),
        inbox.len()
    );

    let failed_events = stack
        .drain_failures(total - decided.min(total), Duration::from_secs(10))
        .await?;
    let logs = stack.function_logs(&cloud).await?;
    let mut handler_ms: Vec<f64> = logs
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|doc| doc.get("HandlerMs").and_then(Value::as_f64))
        .collect();
    handler_ms.sort_by(f64::total_cmp);
    let mut reported_ms: Vec<f64> = logs
        .iter()
        .filter_map(|line| line.strip_prefix("REPORT RequestId: "))
        .filter_map(|rest| rest.split("Duration: ").nth(1))
        .filter_map(|d| d.split(' ').next()?.parse().ok())
        .collect();
    reported_ms.sort_by(f64::total_cmp);

    let mut calls: BTreeMap<&str, usize> = BTreeMap::new();
    for operation in [
        "DescribeServices",
        "DescribeTaskDefinition",
        "ListTasks",
        "DescribeTasks",
        "GetLogEvents",
        "Publish",
        "PutItem",
        "UpdateItem",
        "GetItem",
        "DeleteItem",
    ] {
        let (forwarded, staged) = stack.proxy.calls(operation);
        if forwarded + staged > 0 {
            calls.insert(operation, forwarded + staged);
        }
    }
    let all_calls: usize = calls.values().sum();

    println!("\n| measure | value |\n|---|---|");
    println!("| events | {total} |");
    for (decision, n) in &outcomes.decisions {
        println!("| decision `{decision}` | {n} |");
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for attempt in &outcomes.failed_attempts {
        let reason = if attempt.contains("is being processed by another invocation") {
            "claim held by another invocation"
        } else {
            let reason = attempt.split(" changed under").next().unwrap_or(attempt);
            reason.trim_start_matches("invocation failed: ")
        };
        *reasons.entry(reason.to_owned()).or_default() += 1;
    }
    println!(
        "| failed attempts (retried by Lambda) | {}{} |",
        outcomes.failed_attempts.len(),
        if reasons.is_empty() {
            String::new()
        } else {
            let listed: Vec<String> = reasons
                .iter()
                .map(|(reason, n)| format!("{n}× {reason}"))
                .collect();
            format!(" ({})", listed.join("; "))
        }
    );
    println!(
        "| events in the on-failure queue after Lambda's retries | {} |",
        failed_events.len()
    );
    println!(
        "| handler duration p50 / p99 / max (EMF `HandlerMs`, {} invocations) | {:.1} / {:.1} / {:.1} ms |",
        handler_ms.len(),
        percentile(&handler_ms, 50.0),
        percentile(&handler_ms, 99.0),
        handler_ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "| invocation duration p50 / p99 (the local cloud's REPORT lines) | {:.0} / {:.0} ms |",
        percentile(&reported_ms, 50.0),
        percentile(&reported_ms, 99.0)
    );
    println!(
        "| AWS calls (ECS, Logs, SNS, DynamoDB) per event | {:.2} ({all_calls} in all: {}) |",
        all_calls as f64 / total as f64,
        calls
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut wrong = Vec::new();
    let expect = |decision: &str, n: usize, wrong: &mut Vec<String>| {
        if outcomes.count(decision) != n {
            wrong.push(format!(
                "{decision}: {} (expected {n})",
                outcomes.count(decision)
            ));
        }
    };
    expect("notify", expected_notify, &mut wrong);
    expect("folded", STORM - 1 - digests, &mut wrong);
    expect("silent", SILENT, &mut wrong);
    expect("duplicate", REDELIVERED, &mut wrong);
    if !failed_events.is_empty() {
        wrong.push(format!(
            "{} events in the on-failure queue",
            failed_events.len()
        ));
    }
    if inbox.len() != expected_notify {
        wrong.push(format!(
            "inbox: {} (expected {expected_notify})",
            inbox.len()
        ));
    }
    let window = stack
        .state_items()
        .await?
        .into_iter()
        .find(|item| item["pk"] == "storm#shop#service:orders-api#app-exit")
        .map(|item| item["stops"].clone());
    if window.as_deref() != Some(&STORM.to_string()) {
        wrong.push(format!("storm window: {window:?} (expected {STORM})"));
    }
    if !wrong.is_empty() {
        return Err(format!("counts off: {}", wrong.join("; ")));
    }
    println!("\ncounts exact: {expected_notify} told, {} folded, {SILENT} silent, {REDELIVERED} duplicates, storm window {STORM}", STORM - 1 - digests);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-load: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
