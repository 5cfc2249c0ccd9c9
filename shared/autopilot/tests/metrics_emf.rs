//! One EMF document per invocation (`entry::metrics_line`), for each kind of answer and for a
//! failure, produced from the handlers' real answers on the in-memory ports and held to the
//! Embedded Metric Format specification (`testkit::emf_problems`); and the checker itself fails
//! on documents the specification refuses.

mod common;

use autopilot::app::batch::BatchRunner;
use autopilot::app::scaler::AlarmScaler;
use autopilot::app::triage::TaskTriage;
use autopilot::config::StackConfig;
use autopilot::entry::{config_metrics_line, metrics_line, Invocation, Mode};
use autopilot::metrics::DEFAULT_NAMESPACE;
use autopilot::testkit::{emf_problems, steady_service, World};
use common::fixture;
use serde_json::{json, Value};

const T: i64 = 1_789_437_600_000;

fn checked<R: autopilot::metrics::Measured>(
    function: &str,
    result: &autopilot::Result<R>,
) -> Value {
    let line = metrics_line(DEFAULT_NAMESPACE, function, result, T, Some(0.5));
    assert!(!line.contains('\n'), "one line");
    let document: Value = serde_json::from_str(&line).unwrap();
    let problems = emf_problems(&document);
    assert!(problems.is_empty(), "{problems:?}: {document}");
    document
}

fn counts(document: &Value, names: &[&str]) -> Vec<u64> {
    names
        .iter()
        .map(|n| document[*n].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn task_triage_counts_each_decision_under_its_category() {
    let world = World::new();
    let triage = TaskTriage::new(world.setup(Mode::Live, StackConfig::default()));
    let metrics = [
        "Events",
        "Notifications",
        "Silent",
        "Duplicates",
        "Folded",
        "Failures",
    ];
    let oom = triage
        .respond(
            fixture("ecs/service-oom.json").into(),
            Invocation::default(),
        )
        .await;
    let document = checked("task-triage", &oom);
    assert_eq!(
        (
            document["Function"].as_str(),
            document["Outcome"].as_str(),
            document["Category"].as_str()
        ),
        (Some("task-triage"), Some("notify"), Some("oom"))
    );
    assert_eq!(counts(&document, &metrics), [1, 1, 0, 0, 0, 0]);
    let directive = &document["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "ECSAutopilot");
    assert_eq!(
        directive["Dimensions"],
        json!([
            ["Function"],
            ["Function", "Outcome"],
            ["Function", "Category"]
        ])
    );

    let again = triage
        .respond(
            fixture("ecs/service-oom-duplicate.json").into(),
            Invocation::default(),
        )
        .await;
    assert_eq!(
        counts(&checked("task-triage", &again), &metrics),
        [1, 0, 0, 1, 0, 0]
    );
    let scale_in = triage
        .respond(
            fixture("ecs/service-deployment-scale-in.json").into(),
            Invocation::default(),
        )
        .await;
    assert_eq!(
        counts(&checked("task-triage", &scale_in), &metrics),
        [1, 0, 1, 0, 0, 0]
    );

    let bad = triage
        .respond(
            json!({"detail-type": "ECS Task State Change", "detail": 3}).into(),
            Invocation::default(),
        )
        .await;
    let failed = checked("task-triage", &bad);
    assert_eq!(failed["Outcome"], "InvalidEvent");
    assert_eq!(counts(&failed, &metrics), [1, 0, 0, 0, 0, 1]);
    assert!(failed.get("Category").is_none());
    assert_eq!(
        failed["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn alarm_scaler_counts_a_change() {
    let world = World::new();
    world
        .ecs
        .set_service("shop", "orders-worker", steady_service(1, 1));
    let policy = json!({"scaling": {"alarms": {"orders-queue-backlog-high": {
        "cluster": "shop", "service": "orders-worker", "min": 0, "max": 10,
        "alarm_steps": [{"lower": 0, "adjustment": 2}]}}}});
    let setup = world.setup(Mode::Live, StackConfig::parse(&policy.to_string()).unwrap());
    let scaler = AlarmScaler::new(setup, None).unwrap();
    let alarm = fixture("alarms/direct-lambda-action.json");
    world.alarms.know(&alarm);
    let scaled = scaler
        .handle(alarm.clone().into(), Invocation::default())
        .await;
    let document = checked("alarm-scaler", &scaled);
    assert_eq!(document["Outcome"], "scale-out");
    let metrics = [
        "Events",
        "Notifications",
        "Duplicates",
        "ScalingActions",
        "Failures",
    ];
    assert_eq!(counts(&document, &metrics), [1, 1, 0, 1, 0]);
    let again = scaler.handle(alarm.into(), Invocation::default()).await;
    assert_eq!(
        counts(&checked("alarm-scaler", &again), &metrics),
        [1, 0, 1, 0, 0]
    );
}

#[tokio::test]
async fn batch_runner_counts_a_started_run() {
    let world = World::new();
    let config = json!({"jobs": {"invoice-export": {
        "cluster": "shop", "task_definition": "invoice-export:3", "count": 1,
        "launch_type": "FARGATE", "network": {"subnets": ["subnet-1"]}}}});
    let runner =
        BatchRunner::new(world.setup(Mode::Live, StackConfig::parse(&config.to_string()).unwrap()));
    let request = json!({"job": "invoice-export", "scheduled_time": "2026-09-15T02:00:00Z"});
    let run = runner
        .handle(request.clone().into(), Invocation::default())
        .await;
    let document = checked("batch-runner", &run);
    assert_eq!(document["Outcome"], "started");
    let metrics = [
        "Events",
        "Notifications",
        "Duplicates",
        "JobRuns",
        "Failures",
    ];
    assert_eq!(
        counts(&document, &metrics),
        [1, 0, 0, 1, 0],
        "a start is not told"
    );
    let again = runner.handle(request.into(), Invocation::default()).await;
    assert_eq!(
        counts(&checked("batch-runner", &again), &metrics),
        [1, 0, 1, 0, 0]
    );
}

#[test]
fn the_checker_refuses_what_the_specification_refuses() {
    let good = json!({"_aws": {"Timestamp": T, "CloudWatchMetrics": [{"Namespace": "N",
        "Dimensions": [["Function"]], "Metrics": [{"Name": "Events", "Unit": "Count"}]}]},
        "Function": "f", "Events": 1});
    assert!(emf_problems(&good).is_empty());
    let mut cases = Vec::new();
    for (pointer, value) in [
        ("/_aws/Timestamp", json!("now")),
        ("/_aws/CloudWatchMetrics/0/Namespace", json!("")),
        ("/_aws/CloudWatchMetrics/0/Dimensions/0/0", json!("Missing")),
        ("/_aws/CloudWatchMetrics/0/Metrics/0/Unit", json!("Stops")),
        ("/Events", json!("one")),
        ("/Function", json!(3)),
    ] {
        let mut bad = good.clone();
        *bad.pointer_mut(pointer).unwrap() = value;
        cases.push((pointer, emf_problems(&bad)));
    }
    let mut extra = good.clone();
    extra["_aws"]["CloudWatchMetrics"][0]["Extra"] = json!(1);
    cases.push(("extra member", emf_problems(&extra)));
    let mut many = good.clone();
    many["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([vec!["Function"; 31]]);
    cases.push(("31 dimensions", emf_problems(&many)));
    for (case, problems) in cases {
        assert!(!problems.is_empty(), "{case} passed");
    }
}

#[tokio::test]
async fn the_configuration_versions_and_refusals_are_in_every_document() {
    let world = World::new();
    let runner = BatchRunner::new(world.setup(Mode::Live, StackConfig::default()));
    let tick = runner
        .handle(
            fixture("schedule/eventbridge-scheduled-event.json").into(),
            Invocation::default(),
        )
        .await;
    for function in ["task-triage", "alarm-scaler", "batch-runner"] {
        let versions = "/autopilot/config/jobs@3, /autopilot/config/routes@7";
        let line = config_metrics_line(
            DEFAULT_NAMESPACE,
            function,
            &tick,
            (Some(versions), 1),
            T,
            None,
        );
        let document: Value = serde_json::from_str(&line).unwrap();
        assert!(emf_problems(&document).is_empty(), "{document}");
        assert_eq!(document["ConfigVersion"], versions, "a property");
        assert_eq!(document["ConfigRefused"], 1, "{function}: a count");
        let dimensions = document["_aws"]["CloudWatchMetrics"][0]["Dimensions"].to_string();
        assert!(!dimensions.contains("ConfigVersion"), "not a dimension");
    }
    let plain = checked("batch-runner", &tick);
    assert_eq!(plain["ConfigRefused"], 0);
    assert!(plain.get("ConfigVersion").is_none());
}
