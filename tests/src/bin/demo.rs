//! `make demo`: the main job end to end on a local cloud. Starts ministack, deploys
//! `task-triage` behind an EventBridge rule, sends fixture stops (an OOM kill, a deployment
//! scale-in, a duplicate delivery, an image-pull failure, a crash-loop storm of 50 stops),
//! prints the notifications that reached the SQS inbox through SNS, and a summary. Then the
//! incident scene: the service recovers (its incident resolves), then a deployment of
//! orders-api:18 crashes, is failed by the circuit breaker and rolled back, under one new
//! incident id. Then the scaling scene: an alarm on a custom metric trips through PutMetricData,
//! its SNS action reaches `alarm-scaler`, which scales a service up from zero tasks and back in
//! when the alarm clears; and a target policy sizes a worker by its SQS queue on the tick (250
//! messages → 5 tasks from zero in one tick; drained → held by the stabilisation window, then
//! 0). Then the routing scene: the payments team's service (tagged
//! `team=payments`) notifies its own topic, and a service in its maintenance window is muted,
//! its summary sent once the window is over. Then the batch scenes: a job's run, an overlap
//! skipped and its completion report; and runs that finish — `extract` exits 1, is retried by
//! the tick after its backoff and succeeds, `load` runs after it, and the history is printed.

use std::process::ExitCode;
use std::time::Duration;

use autopilot_tests::batch::{jobs_config, BatchStack, EXPORT_JOB, EXTRACT_JOB, LOAD_JOB};
use autopilot_tests::deployment;
use autopilot_tests::scaler::{
    scaling_config, targets_config, ScalerStack, ALARM_PERIOD_S, DEMO_ALARM, QUEUE_NAME,
    QUEUE_WORKER, WORKER,
};
use autopilot_tests::{
    binary, bootstrap_zip, crash_loop, crash_of_service, drain_queue, subscribed_queue, LocalCloud,
    Received, Result, TriageStack,
};
use serde_json::json;

const STORM: usize = 50;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn print_notification(n: &Received) {
    let b = &n.body;
    println!("┌─ {}", n.subject);
    println!(
        "│ attributes: {}",
        n.attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("│ {}", b["summary"].as_str().unwrap_or_default());
    for (key, value) in b["facts"].as_object().into_iter().flatten() {
        println!("│   {key:<16} {}", value.as_str().unwrap_or_default());
    }
    for section in b["sections"].as_array().into_iter().flatten() {
        let lines = section["lines"].as_array().cloned().unwrap_or_default();
        if lines.is_empty() {
            continue;
        }
        println!("│ {}", section["heading"].as_str().unwrap_or_default());
        for line in lines.iter().take(3) {
            println!("│   - {}", line.as_str().unwrap_or_default());
        }
    }
    let tail = b["log_tail"].as_array().cloned().unwrap_or_default();
    if !tail.is_empty() {
        println!("│ last {} log lines:", tail.len());
        for line in &tail {
            println!("│   | {}", line.as_str().unwrap_or_default());
        }
    }
    for link in b["links"].as_array().into_iter().flatten() {
        println!(
            "│ {}: {}",
            link["label"].as_str().unwrap_or_default(),
            link["url"].as_str().unwrap_or_default()
        );
    }
    println!("└─");
}

/// The one configuration document of the demo stack (every function reads it): `payments`
/// routes the payments team to its own topic by tag, and inventory's maintenance window (two
/// hours that ended a minute before the demo started) mutes it.
fn stack_config(payments: &str, window: (&str, &str), account: &str) -> serde_json::Value {
    json!({
        "triage": {"log_lines": 20, "storm_window_s": 1800},
        "notify": {
            "routes": [{"name": "inventory maintenance", "cluster": "shop", "service": "inventory-*",
                        "mute": true, "windows": [{"start": window.0, "end": window.1}]}],
            "route_by_tag": {"tag": "team", "topics": {"payments": payments}}
        },
        "scaling": {
            "alarms": scaling_config(5)["alarms"],
            "targets": {"orders-backlog": targets_config(account, TARGET_WINDOW_S)["orders-backlog"]},
        },
        "jobs": jobs_config(),
    })
}

/// The demo's target policy: scale-in stabilised over this many seconds, and zero after the
/// queue has been empty this long.
const TARGET_WINDOW_S: u64 = 10;

/// Epoch seconds as RFC 3339.
fn rfc3339(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

async fn run() -> Result<()> {
    println!("== ECS Autopilot demo: task-triage on a local cloud ==");
    let cloud = LocalCloud::start().await?;
    println!("local cloud (ministack) ready at {}", cloud.endpoint);
    let zip = bootstrap_zip(&binary("task-triage")?)?;
    println!("deployment package: {} KiB", zip.len() / 1024);
    // The payments team's own topic, with its own queue.
    let sns = aws_sdk_sns::Client::new(&cloud.config);
    let payments = sns
        .create_topic()
        .name("autopilot-payments")
        .send()
        .await
        .map_err(|e| format!("CreateTopic: {e}"))?
        .topic_arn()
        .unwrap_or_default()
        .to_owned();
    let payments_inbox = subscribed_queue(&cloud, &payments, "inbox-payments").await?;
    let started = chrono::Utc::now().timestamp();
    let window = (rfc3339(started - 7200), rfc3339(started - 60));
    // The local cloud's account, as its topic's ARN says.
    let account = payments.split(':').nth(4).unwrap_or_default().to_owned();
    let config = stack_config(&payments, (&window.0, &window.1), &account);
    let parameters = [
        ("NotificationTopicArns", payments.clone()),
        ("RoutingByTags", "true".to_owned()),
        ("MutingWindows", "true".to_owned()),
    ];
    let mut stack = TriageStack::deploy_with(&cloud, zip, &config, &parameters).await?;
    println!("deployed: SNS topic → SQS inbox, DynamoDB state table, ECS cluster shop / service orders-api, Lambda task-triage from template.yaml (stack {})", autopilot_tests::STACK);

    // Every stop delivered (a duplicate delivery twice), and how many notifications they make.
    let mut delivered: Vec<serde_json::Value> = Vec::new();
    let mut expected = 0usize;
    let scene = |name: &str, what: &str| println!("\n-- {name}: {what}");

    scene(
        "OOM",
        "orders-api killed for memory (exit 137, OutOfMemoryError)",
    );
    let oom = vec![stack.fixture("service-oom")?];
    stack.put_events(&oom).await?;
    delivered.extend(oom);
    expected += 1;
    let mut received = stack
        .drain_inbox(
            expected,
            Duration::from_millis(500),
            Duration::from_secs(60),
        )
        .await?;

    scene(
        "deployment",
        "a task replaced by a deployment scale-in (normal: stays silent)",
    );
    let scale_in = vec![stack.fixture("service-deployment-scale-in")?];
    let scale_in_task = scale_in[0]["detail"]["taskArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    stack.put_events(&scale_in).await?;
    delivered.extend(scale_in);

    scene(
        "duplicate",
        "the OOM event delivered again under another event id (EventBridge is at-least-once)",
    );
    let duplicate = vec![stack.fixture("service-oom-duplicate")?];
    stack.put_events(&duplicate).await?;
    delivered.extend(duplicate);

    scene(
        "image pull",
        "a deployment of tag 1.9.0 that was never pushed",
    );
    let image = vec![stack.fixture("image-not-found")?];
    stack.put_events(&image).await?;
    delivered.extend(image);
    expected += 1;

    scene(
        "storm",
        &format!("a crash loop: {STORM} tasks of orders-api exit with code 1"),
    );
    let storm = crash_loop(&stack, STORM)?;
    stack.put_events(&storm).await?;
    delivered.extend(storm);
    expected += 2;

    received.extend(
        stack
            .drain_inbox(
                expected - received.len(),
                Duration::from_secs(5),
                Duration::from_secs(120),
            )
            .await?,
    );
    println!(
        "\n== {} notifications reached the inbox ==\n",
        received.len()
    );
    for notification in &received {
        print_notification(notification);
    }

    // Counted once every told or folded stop is handled for good (its claim complete in the
    // state table, or its event on the on-failure queue), never after a quiet period. The
    // silent scale-in and the duplicate delivery leave no claim: their decisions are read from
    // the function's outcome lines.
    let mut stops: Vec<String> = delivered
        .iter()
        .filter_map(|event| event["detail"]["taskArn"].as_str())
        .filter(|task| *task != scale_in_task)
        .map(str::to_owned)
        .collect();
    stops.sort();
    stops.dedup();
    let settled = stack.settled(&stops, Duration::from_secs(120)).await?;
    // The local cloud writes an invocation's log lines a moment after its result.
    let outcomes = stack
        .outcomes_until(
            &cloud,
            |o| o.count("silent") >= 1 && o.count("duplicate") >= 1,
            Duration::from_secs(60),
        )
        .await?;
    let items = stack.state_items().await?;
    let storms: Vec<(&String, &str)> = items
        .iter()
        .filter(|item| item.get("pk").is_some_and(|pk| pk.starts_with("storm#")))
        .map(|item| {
            (
                &item["pk"],
                item.get("stops").map(String::as_str).unwrap_or("?"),
            )
        })
        .collect();
    let storm_counted = storms.iter().any(|(pk, stops)| {
        *pk == "storm#shop#service:orders-api#app-exit" && *stops == STORM.to_string()
    });
    println!("\n== summary (from the state table's claims, one per told or folded stop) ==");
    println!("events in:             {}", delivered.len());
    println!(
        "notifications out:     {} (claims say notify: {})",
        received.len(),
        settled.count("notify")
    );
    println!(
        "silent (normal stops): {} (no claim: from the function's outcome lines)",
        outcomes.count("silent")
    );
    println!(
        "duplicates:            {} (a second delivery of a claimed stop, from the function's outcome lines)",
        outcomes.count("duplicate")
    );
    println!("folded into storms:    {}", settled.count("folded"));
    println!("on-failure queue:      {}", settled.parked.len());
    for (pk, stops) in &storms {
        println!("storm window:          {pk} = {stops} stops");
    }
    let ok = received.len() == 4
        && settled.count("notify") == 4
        && outcomes.count("silent") == 1
        && settled.count("folded") == STORM - 2
        && outcomes.count("duplicate") == 1
        && storm_counted
        && settled.parked.is_empty();
    if !ok {
        for line in stack
            .function_logs(&cloud)
            .await
            .unwrap_or_default()
            .iter()
            .rev()
            .take(40)
            .rev()
        {
            eprintln!("function log: {line}");
        }
        return Err(format!(
            "unexpected outcome: {} notifications, claims notify {} folded {}, outcome lines {:?}, {} failures (ministack log: {})",
            received.len(),
            settled.count("notify"),
            settled.count("folded"),
            outcomes,
            settled.parked.len(),
            cloud.log_path.display()
        ));
    }
    routing_scene(&cloud, &stack, &payments_inbox, started).await?;
    deployment_scene(&cloud, &stack).await?;
    let scaler = scaling_scene(&cloud, &mut stack, &config).await?;
    targets_scene(&stack, &scaler).await?;
    let runner = batch_scene(&cloud, &mut stack, &config).await?;
    runs_scene(&cloud, &stack, &runner, &config).await?;
    println!("\nall as expected; stopping the local cloud.");
    Ok(())
}

/// Routing: payments-api (tagged `team=payments`) notifies the payments topic, not the default
/// one; inventory-api's crash during its maintenance window is muted, and the tick after the
/// window sends the window's summary to the default topic.
async fn routing_scene(
    cloud: &LocalCloud,
    stack: &TriageStack,
    payments_inbox: &str,
    started: i64,
) -> Result<()> {
    println!(
        "
== routing: the right team, the right channel, nothing lost during maintenance =="
    );
    println!(
        "
-- payments-api (tag team=payments) crashes: route_by_tag sends it to the payments topic"
    );
    let created = stack
        .ecs
        .create_service()
        .cluster(autopilot_tests::CLUSTER)
        .service_name("payments-api")
        .task_definition(&stack.task_definition)
        .desired_count(0)
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("team")
                .value("payments")
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("CreateService: {e}"))?;
    let arn = created
        .service()
        .and_then(|s| s.service_arn())
        .unwrap_or_default();
    println!("(service {arn} tagged team=payments)");
    stack
        .put_events(&[crash_of_service(
            stack,
            "payments-api",
            "00000000000000000000000000demo01",
        )?])
        .await?;
    let to_payments = drain_queue(
        cloud,
        payments_inbox,
        1,
        Duration::from_secs(1),
        Duration::from_secs(60),
    )
    .await?;
    for notification in &to_payments {
        print_notification(notification);
    }
    let to_default = stack
        .drain_inbox(0, Duration::from_secs(2), Duration::from_secs(3))
        .await?;

    println!(
        "
-- inventory-api crashes at {} inside its maintenance window ({} → {}): muted",
        rfc3339(started - 3600),
        rfc3339(started - 7200),
        rfc3339(started - 60)
    );
    let mut during = crash_of_service(stack, "inventory-api", "00000000000000000000000000demo02")?;
    during["time"] = rfc3339(started - 3600).into();
    let muted = autopilot_tests::invoke_sync(&stack.lambda, &stack.function, &during).await?;
    println!(
        "decision: {} ({})",
        muted["decision"].as_str().unwrap_or("?"),
        muted["route"]["by"].as_str().unwrap_or("?")
    );
    println!(
        "
-- the tick after the window: its summary goes where such a notice would go (the default topic)"
    );
    let tick = autopilot_tests::invoke_sync(&stack.lambda, &stack.function, &json!({"tick": true}))
        .await?;
    let summary = stack
        .drain_inbox(1, Duration::from_millis(500), Duration::from_secs(60))
        .await?;
    for notification in &summary {
        print_notification(notification);
    }
    let ok = to_payments.len() == 1
        && to_payments[0].subject.contains("shop/payments-api")
        && to_default.is_empty()
        && muted["decision"] == "muted"
        && tick["results"].as_array().map(Vec::len) == Some(1)
        && summary.len() == 1
        && summary[0]
            .subject
            .contains("maintenance window ended: 1 notification(s) were muted");
    println!(
        "payments topic: {}, default topic: {} (payments-api), muted: {}, summaries: {}",
        to_payments.len(),
        to_default.len(),
        muted["decision"],
        summary.len()
    );
    match ok {
        true => Ok(()),
        false => Err(format!("unexpected routing: payments {:?}, default {:?}, muted {muted}, tick {tick}, summary {:?}",
            to_payments.iter().map(|n| &n.subject).collect::<Vec<_>>(),
            to_default.iter().map(|n| &n.subject).collect::<Vec<_>>(),
            summary.iter().map(|n| &n.subject).collect::<Vec<_>>())),
    }
}

/// The service recovers (its incident resolves), then a deployment of orders-api:18 fails and
/// is rolled back: open → updates → resolved under one new incident id.
async fn deployment_scene(cloud: &LocalCloud, stack: &TriageStack) -> Result<()> {
    println!("\n== incidents: orders-api recovers, then a deployment fails and is rolled back ==");
    println!("\n-- recovery: ECS reports SERVICE_STEADY_STATE for orders-api");
    let mut steady = stack.fixture("service/steady-state")?;
    steady["id"] = "demo-recovery".into();
    stack.put_events(&[steady]).await?;
    let resolved = stack
        .drain_inbox(1, Duration::from_millis(500), Duration::from_secs(60))
        .await?;
    for notification in &resolved {
        print_notification(notification);
    }
    println!(
        "(ECS's side of the failed deployment — deployments, stopped tasks — is staged on the \
         harness's proxy: without Docker the local cloud never fails a deployment)"
    );
    let received = deployment::failed_deployment(cloud, stack, &mut |what| {
        println!("\n-- deployment: {what}")
    })
    .await?;
    println!(
        "\n== {} notifications of the deployment ==\n",
        received.len()
    );
    for notification in &received {
        print_notification(notification);
    }
    let incident = received
        .first()
        .map(|n| n.attributes.get("incident_id").cloned().unwrap_or_default())
        .unwrap_or_default();
    let statuses: Vec<&str> = received
        .iter()
        .map(|n| {
            n.attributes
                .get("status")
                .map(String::as_str)
                .unwrap_or("?")
        })
        .collect();
    println!("incident {incident}: {}", statuses.join(" → "));
    let one_incident = received
        .iter()
        .all(|n| n.attributes.get("incident_id") == Some(&incident));
    let rolled_back = received.iter().any(|n| {
        n.body["details"]["what_failed"]
            .as_str()
            .is_some_and(|line| {
                line.starts_with(&format!(
                    "deployment of {} failed",
                    deployment::FAILED_REVISION
                )) && line.ends_with(&format!("rolled back to {}", deployment::ROLLED_BACK_TO))
            })
    });
    let ok = resolved.len() == 1
        && resolved[0].attributes.get("status").map(String::as_str) == Some("resolved")
        && statuses == ["open", "update", "update", "update", "resolved"]
        && one_incident
        && rolled_back;
    match ok {
        true => Ok(()),
        false => Err(format!(
            "unexpected incident sequence: recovery {:?}, deployment {statuses:?} (one id: {one_incident}, rolled back named: {rolled_back})",
            resolved.iter().map(|n| &n.subject).collect::<Vec<_>>()
        )),
    }
}

/// PutMetricData → alarm → SNS → `alarm-scaler` → UpdateService, out from zero and back in.
async fn scaling_scene(
    cloud: &LocalCloud,
    stack: &mut TriageStack,
    config: &serde_json::Value,
) -> Result<ScalerStack> {
    println!("\n== scaling: alarm `{DEMO_ALARM}` drives shop/{WORKER} (starts at 0 tasks) ==");
    let zip = bootstrap_zip(&binary("alarm-scaler")?)?;
    let scaler = ScalerStack::deploy(cloud, stack, zip, config).await?;
    println!("desired count before: {}", scaler.desired().await?);
    println!("PutMetricData OrdersBacklog = 412 (threshold 100)");
    scaler.put_backlog(412.0).await?;
    println!("alarm state: {}", scaler.alarm_state().await?);
    let out = scaler.wait_for_desired(2, Duration::from_secs(30)).await?;
    println!("desired count after the ALARM: {out}");
    let scaled_out = stack
        .drain_inbox(1, Duration::from_millis(300), Duration::from_secs(30))
        .await?;
    scaled_out.iter().for_each(print_notification);
    println!(
        "waiting {} s for the datapoint to leave the alarm's period …",
        ALARM_PERIOD_S + 1
    );
    tokio::time::sleep(Duration::from_secs(ALARM_PERIOD_S as u64 + 1)).await;
    println!("PutMetricData OrdersBacklog = 3");
    scaler.put_backlog(3.0).await?;
    println!("alarm state: {}", scaler.alarm_state().await?);
    let back = scaler.wait_for_desired(1, Duration::from_secs(30)).await?;
    println!("desired count after the OK: {back}");
    let scaled_in = stack
        .drain_inbox(1, Duration::from_millis(300), Duration::from_secs(30))
        .await?;
    scaled_in.iter().for_each(print_notification);
    println!("\n== scaling summary ==");
    println!("alarm transitions in:  2 (ALARM, OK)");
    println!("desired count:         0 -> {out} -> {back}");
    println!(
        "notifications out:     {}",
        scaled_out.len() + scaled_in.len()
    );
    if out != 2 || back != 1 || scaled_out.len() != 1 || scaled_in.len() != 1 {
        return Err(format!(
            "unexpected scaling outcome: 0 -> {out} -> {back}, {} + {} notifications (ministack log: {})",
            scaled_out.len(),
            scaled_in.len(),
            cloud.log_path.display()
        ));
    }
    Ok(scaler)
}

/// A target policy sizes shop/orders-queue-worker by its queue on the scaler's tick: 250
/// messages at 50 a task → 5 tasks in one tick, from zero; drained → held by the stabilisation
/// window, then 1, then 0 once the queue has been empty long enough.
async fn targets_scene(stack: &TriageStack, scaler: &ScalerStack) -> Result<()> {
    println!(
        "\n== scaling by the work waiting: queue `{QUEUE_NAME}` sizes shop/{QUEUE_WORKER} (50 messages a task, starts at 0) =="
    );
    let show = |tick: &serde_json::Value| {
        let signal = &tick["signals"][0];
        println!(
            "  tick: backlog {} → recommends {}; desired {} -> {} ({}){}",
            signal["value"],
            signal["recommendation"],
            tick["desired_from"],
            tick["desired_to"],
            tick["reason"].as_str().unwrap_or_default(),
            tick["bounded_by"]
                .as_str()
                .map(|b| format!(", bounded by {b}"))
                .unwrap_or_default()
        );
    };
    println!("SendMessageBatch: 250 messages");
    scaler.send_messages(250).await?;
    let out = scaler.tick_for(QUEUE_WORKER).await?;
    show(&out);
    let scaled_out = stack
        .drain_inbox(1, Duration::from_millis(300), Duration::from_secs(30))
        .await?;
    scaled_out.iter().for_each(print_notification);
    println!("the workers drain the queue (PurgeQueue):");
    scaler.purge_queue().await?;
    let held = scaler.tick_for(QUEUE_WORKER).await?;
    show(&held);
    println!("ticking every 2 s until the window ({TARGET_WINDOW_S} s) and the wait before zero ({TARGET_WINDOW_S} s) have passed …");
    let mut path = vec![out["desired_to"].as_i64().unwrap_or(-1)];
    let started = std::time::Instant::now();
    while path.last() != Some(&0) && started.elapsed() < Duration::from_secs(90) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let tick = scaler.tick_for(QUEUE_WORKER).await?;
        let to = tick["desired_to"].as_i64().unwrap_or(-1);
        if path.last() != Some(&to) {
            show(&tick);
            path.push(to);
        }
    }
    let scaled_in = stack
        .drain_inbox(
            path.len() - 1,
            Duration::from_millis(300),
            Duration::from_secs(30),
        )
        .await?;
    scaled_in.iter().for_each(print_notification);
    let desired = scaler.desired_of(QUEUE_WORKER).await?;
    let path_text = std::iter::once("0".to_owned())
        .chain(path.iter().map(i64::to_string))
        .collect::<Vec<_>>()
        .join(" -> ");
    println!("\n== scaling by the work waiting: summary ==");
    println!("messages in:           250, then drained");
    println!("desired count:         {path_text} (DescribeServices now: {desired})");
    println!(
        "held by the window:    {}",
        held["bounded_by"] == "stabilization"
    );
    println!(
        "notifications out:     {}",
        scaled_out.len() + scaled_in.len()
    );
    let ok = out["desired_to"] == 5
        && held["desired_to"] == 5
        && held["bounded_by"] == "stabilization"
        && path.first() == Some(&5)
        && path.last() == Some(&0)
        && desired == 0
        && scaled_out.len() == 1
        && scaled_in.len() == path.len() - 1;
    match ok {
        true => Ok(()),
        false => Err(format!(
            "unexpected sizing: {path_text}, held {held}, {} + {} notifications",
            scaled_out.len(),
            scaled_in.len()
        )),
    }
}

/// A scheduled job run, the next run skipped as overlapping, and the completion report when the
/// job's task ends with an exit code.
async fn batch_scene(
    cloud: &LocalCloud,
    stack: &mut TriageStack,
    config: &serde_json::Value,
) -> Result<BatchStack> {
    println!("\n== batch: job `{EXPORT_JOB}` (overlap: skip) through batch-runner ==");
    let zip = bootstrap_zip(&binary("batch-runner")?)?;
    let runner = BatchStack::deploy(cloud, stack, zip, config).await?;
    println!("schedule fires: {{\"job\": \"{EXPORT_JOB}\", \"scheduled_time\": \"2026-09-15T02:00:00Z\"}}");
    let first = runner.run(EXPORT_JOB, "2026-09-15T02:00:00Z").await?;
    println!("  {first}");
    let task = first["tasks"][0]
        .as_str()
        .ok_or("the first run started no task")?
        .to_owned();
    println!("next day, the previous run is still going:");
    let second = runner.run(EXPORT_JOB, "2026-09-16T02:00:00Z").await?;
    println!("  {second}");
    let skipped = stack
        .drain_inbox(1, Duration::from_millis(300), Duration::from_secs(30))
        .await?;
    skipped.iter().for_each(print_notification);
    println!("the job's container exits with code 3 after 1h 37m; ECS emits the stop event (injected: the local cloud runs no containers):");
    stack
        .put_events(&[runner.finish(&task, 3, 5_850).await?])
        .await?;
    let report = stack
        .drain_inbox(1, Duration::from_millis(300), Duration::from_secs(30))
        .await?;
    report.iter().for_each(print_notification);
    println!("\n== batch summary ==");
    println!("runs requested:        2 (started: 1, skipped as overlapping: 1)");
    println!(
        "notifications out:     {} (skip) + {} (completion report)",
        skipped.len(),
        report.len()
    );
    let ok = first["action"] == "started"
        && second["action"] == "skipped"
        && skipped.len() == 1
        && report.len() == 1
        && report[0]
            .subject
            .contains("job invoice-export failed after 1h 37m 30s");
    if !ok {
        return Err(format!(
            "unexpected batch outcome: {first} / {second}, {} + {} notifications",
            skipped.len(),
            report.len()
        ));
    }
    Ok(runner)
}

/// Runs that finish: `extract` exits 1, is retried by the tick after its backoff and succeeds;
/// `load` (after `extract`) starts then; the history is printed from the state table.
async fn runs_scene(
    cloud: &LocalCloud,
    stack: &TriageStack,
    runner: &BatchStack,
    config: &serde_json::Value,
) -> Result<()> {
    const RUN: &str = "2026-11-03T02:00:00Z";
    println!("\n== runs that finish: `{EXTRACT_JOB}` (retry on exit:1, backoff 1 s) and `{LOAD_JOB}` (after {EXTRACT_JOB}) ==");
    let first = runner.run(EXTRACT_JOB, RUN).await?;
    println!("schedule fires for {RUN}: {}", first["reason"]);
    let task = first["tasks"][0]
        .as_str()
        .ok_or("extract started no task")?
        .to_owned();
    println!("attempt 1 exits with code 1 after 4m 10s (stop event injected):");
    stack
        .put_events(&[runner.finish(&task, 1, 250).await?])
        .await?;
    let warned = stack
        .drain_inbox(1, Duration::from_millis(300), Duration::from_secs(30))
        .await?;
    warned.iter().for_each(print_notification);
    let second = runner.next_retry(Duration::from_secs(30)).await?;
    println!(
        "the tick after the backoff starts attempt 2: {}",
        second["reason"]
    );
    let retry_task = second["tasks"][0]
        .as_str()
        .ok_or("attempt 2 started no task")?
        .to_owned();
    println!("attempt 2 succeeds after 3m 20s:");
    stack
        .put_events(&[runner.finish(&retry_task, 0, 200).await?])
        .await?;
    let succeeded = stack
        .drain_inbox(1, Duration::from_millis(300), Duration::from_secs(30))
        .await?;
    succeeded.iter().for_each(print_notification);
    let load = runner.started(LOAD_JOB, Duration::from_secs(60)).await?;
    println!("{LOAD_JOB} starts for the same scheduled time: {}", load[0]);
    println!("it succeeds after 1m 0s:");
    stack
        .put_events(&[runner.finish(&load[0], 0, 60).await?])
        .await?;
    let started = std::time::Instant::now();
    let history = loop {
        let rows = runner.history(cloud, &stack.table, config, Some(LOAD_JOB))?;
        if rows.first().is_some_and(|r| r["outcome"] == "succeeded")
            || started.elapsed() > Duration::from_secs(60)
        {
            break runner.history_table(cloud, &stack.table, config)?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("\n$ batch-runner history");
    print!("{history}");
    let extract_line = history
        .lines()
        .find(|l| l.contains(&format!(" {EXTRACT_JOB} ")))
        .unwrap_or_default()
        .to_owned();
    let load_line = history
        .lines()
        .find(|l| l.contains(&format!(" {LOAD_JOB} ")))
        .unwrap_or_default()
        .to_owned();
    let ok = warned.len() == 1
        && warned[0].attributes["severity"] == "warning"
        && succeeded.len() == 1
        && succeeded[0].subject.contains("succeeded on attempt 2")
        && extract_line.contains("succeeded")
        && extract_line.contains("  2  ")
        && load_line.contains("succeeded");
    if !ok {
        return Err(format!(
            "unexpected runs outcome: {} warning(s), {} success notice(s), history:\n{history}",
            warned.len(),
            succeeded.len()
        ));
    }
    Ok(())
}
