//! `task-triage` end to end on the local cloud, deployed from template.yaml: EventBridge PutEvents →
//! Lambda → SNS → SQS.
//! Each independent scenario is its own test on its own local cloud; a service's stops, storm
//! and incidents are one test, since each step builds on the state the one before left.

use std::time::Duration;

use autopilot_tests::{
    binary, bootstrap_zip, crash_loop, create_function, deployment, invoke_sync, rule_matches,
    template, LocalCloud, TriageStack, OOM_LOG_LINES, STACK,
};
use serde_json::json;

const STORM: usize = 12;

/// The local cloud with task-triage deployed from template.yaml (log tails of 3 lines), and the
/// function's package for the extra functions a scenario creates.
async fn triage_stack() -> (LocalCloud, TriageStack, Vec<u8>) {
    let cloud = LocalCloud::start().await.expect("local cloud");
    let zip = bootstrap_zip(&binary("task-triage").expect("task-triage binary")).expect("package");
    let stack = TriageStack::deploy(&cloud, zip.clone(), &json!({"triage": {"log_lines": 3}}))
        .await
        .expect("deploy");
    (cloud, stack, zip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployed_template_holds_its_promises() {
    let (cloud, stack, _zip) = triage_stack().await;
    // The deployed template.yaml: no role writes on any resource; the async invoke
    // configuration; the rules' own patterns (with source aws.ecs) against the fixtures.
    let processed = template::processed_template(&cloud, STACK).await.unwrap();
    let roles = processed["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::IAM::Role")
        .count();
    assert!(roles >= 1, "the SAM transform made the function's role");
    assert_eq!(
        template::security_findings(&processed),
        Vec::<String>::new()
    );
    // The function's log group keeps its lines for LogRetentionDays (default 30), not forever.
    let group = stack.stack.physical_id("TaskTriageLogGroup").unwrap();
    let groups = aws_sdk_cloudwatchlogs::Client::new(&cloud.config)
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .unwrap();
    let retention: Vec<Option<i32>> = groups
        .log_groups()
        .iter()
        .filter(|g| g.log_group_name() == Some(group))
        .map(|g| g.retention_in_days())
        .collect();
    assert_eq!(retention, [Some(30)], "{groups:?}");
    // The dashboard renders to JSON with its widgets; the failure queue's alarm tells the topic.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&cloud.config);
    let dashboard = cloudwatch
        .get_dashboard()
        .dashboard_name(stack.stack.output("DashboardName").unwrap())
        .send()
        .await
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(dashboard.dashboard_body().unwrap_or_default()).expect("JSON body");
    let titles: Vec<&str> = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["properties"]["title"].as_str())
        .collect();
    assert_eq!(titles.len(), 7, "{titles:?}");
    assert!(body
        .to_string()
        .contains("{ECSAutopilot,Function,Category}"));
    let alarm_name = stack.stack.physical_id("TriageFailuresAlarm").unwrap();
    let alarms = cloudwatch
        .describe_alarms()
        .alarm_names(alarm_name)
        .send()
        .await
        .unwrap();
    let [alarm] = alarms.metric_alarms() else {
        panic!("the failure queue's alarm: {alarms:?}")
    };
    assert_eq!(
        (alarm.namespace(), alarm.metric_name()),
        (Some("AWS/SQS"), Some("ApproximateNumberOfMessagesVisible"))
    );
    assert_eq!(
        alarm.alarm_actions(),
        std::slice::from_ref(&stack.topic_arn)
    );
    let invoke = stack
        .lambda
        .get_function_event_invoke_config()
        .function_name(&stack.function)
        .qualifier("$LATEST")
        .send()
        .await
        .unwrap();
    assert_eq!(invoke.maximum_retry_attempts(), Some(2));
    assert_eq!(invoke.maximum_event_age_in_seconds(), Some(21600));
    let on_failure = invoke
        .destination_config()
        .and_then(|d| d.on_failure())
        .and_then(|f| f.destination())
        .unwrap_or_default();
    let failure_queue = stack.failures_url.rsplit('/').next().unwrap();
    assert!(
        on_failure.ends_with(&format!(":{failure_queue}")),
        "{on_failure}"
    );
    let running = {
        let mut e = stack.fixture("service-oom").unwrap();
        e["detail"]["lastStatus"] = "RUNNING".into();
        e["detail"]["desiredStatus"] = "RUNNING".into();
        e["detail"].as_object_mut().unwrap().remove("stopCode");
        e
    };
    let cases = [
        (
            "TaskTriageFunctionTaskStopped",
            stack.fixture("service-oom").unwrap(),
            true,
        ),
        (
            "TaskTriageFunctionTaskStopped",
            stack.fixture("spot-termination-notice").unwrap(),
            true,
        ),
        ("TaskTriageFunctionTaskStopped", running, false),
        (
            "TaskTriageFunctionTaskStopped",
            stack.fixture("service/deployment-failed").unwrap(),
            false,
        ),
        (
            "TaskTriageFunctionServiceEvents",
            stack.fixture("service/deployment-failed").unwrap(),
            true,
        ),
        (
            "TaskTriageFunctionServiceEvents",
            stack.fixture("service/throttled").unwrap(),
            true,
        ),
        (
            "TaskTriageFunctionServiceEvents",
            stack.fixture("service-oom").unwrap(),
            false,
        ),
    ];
    for (rule, event, expected) in cases {
        let name = stack.stack.physical_id(rule).unwrap();
        let result = rule_matches(&stack.events, name, &event).await.unwrap();
        assert_eq!(
            result, expected,
            "{rule} on {} {}",
            event["detail-type"], event["detail"]["lastStatus"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_services_stops_storm_and_incidents_are_told_once_each() {
    let (cloud, stack, _zip) = triage_stack().await;
    // OOM: the notification names the category, the container and carries the log tail.
    stack
        .put_events(&[stack.fixture("service-oom").unwrap()])
        .await
        .unwrap();
    let oom = stack
        .published(&cloud, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(oom.len(), 1, "one OOM notification");
    let n = &oom[0];
    assert_eq!(n.attributes["severity"], "critical");
    assert_eq!(n.attributes["category"], "oom");
    assert_eq!(n.attributes["cluster"], "shop");
    assert_eq!(n.attributes["service"], "orders-api");
    assert_eq!(n.attributes["source"], "task-triage");
    assert!(
        n.subject
            .starts_with("[CRITICAL] shop/orders-api: container orders-api killed"),
        "{}",
        n.subject
    );
    assert!(n.subject.len() <= 99);
    assert_eq!(n.body["schema_version"], 1);
    assert_eq!(n.body["details"]["diagnosis"]["exit_code"], 137);
    let tail: Vec<&str> = n.body["log_tail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        tail,
        OOM_LOG_LINES[2..],
        "the last 3 log lines, oldest first"
    );
    assert_eq!(n.body["details"]["service_context"]["desired"], 3);
    assert_eq!(
        n.body["details"]["service_context"]["circuit_breaker"],
        true
    );
    assert!(n.body["links"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["label"] == "Logs"));

    // A redelivery of the same task and version is a duplicate; a deployment stop is silent.
    stack
        .put_events(&[
            stack.fixture("service-oom-duplicate").unwrap(),
            stack.fixture("service-deployment-scale-in").unwrap(),
        ])
        .await
        .unwrap();

    // Storm: the first stop notifies, the 10th sends a digest, the rest are counted exactly.
    stack
        .put_events(&crash_loop(&stack, STORM).unwrap())
        .await
        .unwrap();
    // A ceiling, not a wait: 14 invocations at once on a loaded two-core runner.
    let storm = stack
        .published(&cloud, Duration::from_secs(180))
        .await
        .unwrap();
    assert_eq!(
        storm.len(),
        2,
        "first stop + digest at 10: {:#?}",
        storm.iter().map(|n| &n.subject).collect::<Vec<_>>()
    );
    let digest = storm
        .iter()
        .find(|n| n.body["kind"] == "storm-digest")
        .expect("a digest");
    assert_eq!(digest.body["details"]["storm"]["count"], 10);
    assert!(digest.subject.contains("10 stops"), "{}", digest.subject);
    assert!(storm
        .iter()
        .any(|n| n.body["kind"] == "task-stopped" && n.attributes["category"] == "app-exit"));

    let outcomes = stack
        .outcomes(&cloud, 3 + STORM, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(outcomes.count("notify"), 3, "{outcomes:?}");
    assert_eq!(outcomes.count("duplicate"), 1, "{outcomes:?}");
    assert_eq!(outcomes.count("silent"), 1, "{outcomes:?}");
    assert_eq!(outcomes.count("folded"), STORM - 2, "{outcomes:?}");
    // One EMF document per invocation in the function's log, by the specification, counting
    // what the outcome lines say.
    let emf = stack
        .emf_documents(&cloud, 3 + STORM, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(emf.len() >= 3 + STORM, "{} EMF documents", emf.len());
    for document in &emf {
        let problems = autopilot::testkit::emf_problems(document);
        assert!(problems.is_empty(), "{problems:?}: {document}");
    }
    let sum = |metric: &str| -> u64 { emf.iter().filter_map(|d| d[metric].as_u64()).sum() };
    assert_eq!(sum("Notifications"), outcomes.count("notify") as u64);
    assert_eq!(sum("Folded"), outcomes.count("folded") as u64);
    assert_eq!(sum("Duplicates"), outcomes.count("duplicate") as u64);
    let items = stack.state_items().await.unwrap();
    let storm_item = items
        .iter()
        .find(|i| i["pk"] == "storm#shop#service:orders-api#app-exit")
        .expect("storm window item");
    assert_eq!(storm_item["stops"], STORM.to_string(), "counts are exact");

    // Service events through their own rule: a failed deployment is told (joined with what
    // ECS says of the service) as an update of the incident the OOM above opened for
    // shop/orders-api; then a steady state resolves that incident with one `resolved`
    // notification under the same id.
    stack
        .put_events(&[stack.fixture("service/deployment-failed").unwrap()])
        .await
        .unwrap();
    let failed = stack
        .published(&cloud, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "the failed deployment");
    let failed = &failed[0];
    assert_eq!(failed.attributes["category"], "deployment-failed");
    assert_eq!(failed.attributes["severity"], "critical");
    assert_eq!(failed.attributes["status"], "update");
    let incident = failed.attributes["incident_id"].clone();
    assert!(incident.starts_with("inc-"), "{incident}");
    assert!(
        failed
            .subject
            .starts_with("[CRITICAL] shop/orders-api: deployment of"),
        "{}",
        failed.subject
    );
    assert_eq!(
        failed.body["details"]["event"]["eventName"],
        "SERVICE_DEPLOYMENT_FAILED"
    );
    assert_eq!(failed.body["incident"]["id"], incident.as_str());
    assert!(
        failed.body["details"]["what_failed"]
            .as_str()
            .is_some_and(|line| line.contains(" failed: ")),
        "{}",
        failed.body["details"]
    );
    stack
        .put_events(&[stack.fixture("service/steady-state").unwrap()])
        .await
        .unwrap();
    let resolved = stack
        .published(&cloud, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(resolved.len(), 1, "one resolution");
    assert_eq!(resolved[0].attributes["status"], "resolved");
    assert_eq!(resolved[0].attributes["incident_id"], incident);
    assert!(
        resolved[0].subject.contains("resolved after"),
        "{}",
        resolved[0].subject
    );

    // The failed-deployment scene: a crash of orders-api:18 opens a new incident (the one above
    // is resolved; the crash counts into the app-exit storm window, yet is told), ECS's events
    // update it with the deployment joined from ECS (staged on the proxy), the steady state
    // resolves it: one id throughout.
    let scene = deployment::failed_deployment(&cloud, &stack, &mut |_| {})
        .await
        .unwrap();
    let statuses: Vec<(&str, &str)> = scene
        .iter()
        .map(|n| {
            (
                n.attributes["status"].as_str(),
                n.attributes["category"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("open", "app-exit"),
            ("update", "start-impaired"),
            ("update", "deployment-failed"),
            ("update", "rollback"),
            ("resolved", "resolved"),
        ],
        "{:#?}",
        scene.iter().map(|n| &n.subject).collect::<Vec<_>>()
    );
    let scene_incident = &scene[0].attributes["incident_id"];
    assert_ne!(scene_incident, &incident, "a new incident");
    assert!(scene
        .iter()
        .all(|n| &n.attributes["incident_id"] == scene_incident));
    let crash_tail = scene[0].body["log_tail"].as_array().unwrap();
    assert_eq!(
        crash_tail.last().and_then(|l| l.as_str()),
        deployment::CRASH_LOG_LINES.last().copied(),
        "the crashed task's log tail"
    );
    let expected = format!(
        "[CRITICAL] shop/orders-api: deployment of {} failed: {n} of {n} new tasks:",
        deployment::FAILED_REVISION,
        n = deployment::CRASHES
    );
    assert!(
        scene[2].subject.starts_with(&expected),
        "{}",
        scene[2].subject
    );
    assert!(
        scene[2].body["details"]["what_failed"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!(
                "(app-exit) — rolled back to {}",
                deployment::ROLLED_BACK_TO
            )),
        "{}",
        scene[2].body["details"]
    );
    assert!(
        scene[4].subject.contains("resolved after"),
        "{}",
        scene[4].subject
    );
    assert_eq!(
        stack.proxy.calls("DescribeTasks").1,
        3,
        "start-impaired, deployment-failed and rollback joined the stopped tasks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_is_parked_with_its_reason() {
    let (cloud, stack, _zip) = triage_stack().await;
    // Malformed: the error names the field and the event reaches the on-failure destination.
    let malformed = json!({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": {"taskArn": "arn:aws:ecs:us-east-1:1:task/shop/x", "containers": [{"exitCode": "one"}]}});
    stack.invoke_async(&malformed).await.unwrap();
    let failures = stack
        .drain_failures(1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(failures.len(), 1, "malformed event on the failure queue");
    let failure = failures[0].to_string();
    assert!(failure.contains("InvalidEvent"), "{failure}");
    assert!(
        failure.contains("detail.containers[0].exitCode"),
        "{failure}"
    );
    let after_malformed = stack
        .published(&cloud, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        after_malformed.is_empty(),
        "nothing else was published: {:#?}",
        after_malformed
            .iter()
            .map(|n| &n.subject)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_tells_a_degraded_service_once() {
    let (_cloud, stack, zip) = triage_stack().await;
    // The watchdog through the deployed function against the local cloud's ECS: a service
    // at 2 desired with no task running is degraded (critical at 0 running), told once; the
    // second tick finds it again and says nothing new. orders-api runs at its desired count.
    stack
        .stage_service_without_tasks("payments-worker", 2)
        .await
        .unwrap();
    create_function(
        &stack.lambda,
        "task-triage-watchdog",
        &stack.account,
        zip.clone(),
        stack.function_environment(
            &json!({"triage": {"watch": {"clusters": ["shop"], "stuck_after_s": 0}}}),
        ),
        30,
    )
    .await
    .unwrap();
    let tick_event = json!({"tick": true});
    let tick = || invoke_sync(&stack.lambda, "task-triage-watchdog", &tick_event);
    let first = tick().await.unwrap();
    let told = |response: &serde_json::Value| {
        response["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["decision"] == "notify")
            .map(|r| {
                r["diagnosis"]["category"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(first["checked"], 2, "{first}");
    assert_eq!(told(&first), ["service-degraded"], "{first}");
    // The watchdog's own account of what it published: the message ids in its results.
    let published = |response: &serde_json::Value| -> Vec<String> {
        response["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["message_id"].as_str().map(str::to_owned))
            .collect()
    };
    let degraded = stack
        .receive(&published(&first), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(degraded.len(), 1);
    let degraded = &degraded[0];
    assert_eq!(degraded.attributes["category"], "service-degraded");
    assert_eq!(degraded.attributes["severity"], "critical");
    assert_eq!(degraded.attributes["service"], "payments-worker");
    assert_eq!(degraded.attributes["status"], "open");
    assert!(degraded.subject.contains("0 of 2"), "{}", degraded.subject);
    let second = tick().await.unwrap();
    assert_eq!(second["checked"], 2, "{second}");
    assert!(told(&second).is_empty(), "no repeat: {second}");
    assert!(
        published(&second).is_empty(),
        "the second tick sends nothing: {second}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_fails_init_naming_the_field() {
    let (_cloud, stack, zip) = triage_stack().await;
    // A bad configuration fails init, reported to the Runtime API: the invocation's error
    // carries its type and names the field.
    create_function(
        &stack.lambda,
        "task-triage-bad-config",
        &stack.account,
        zip,
        stack.function_environment(&json!({"triage": {"log_lines": 3, "colour": "blue"}})),
        10,
    )
    .await
    .unwrap();
    let error = invoke_sync(
        &stack.lambda,
        "task-triage-bad-config",
        &stack.fixture("service-oom").unwrap(),
    )
    .await
    .expect_err("init fails");
    // The local cloud relays a report to /runtime/init/error as `init error: {…}`; without one
    // it would only say that the bootstrap exited during init.
    assert!(error.contains("init error"), "{error}");
    assert!(error.contains("InvalidConfig"), "{error}");
    assert!(error.contains("triage.colour"), "{error}");
}
