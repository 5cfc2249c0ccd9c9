//! A configuration in SSM parts on the local cloud, deployed from template.yaml with
//! `ConfigParameterName` naming a path: the parts merged, a new valid version picked up by the
//! running function (no cold start: it logs the version applied), an invalid one refused with
//! one critical notification while the function keeps working on the last good one; a version
//! the stack's parameters do not allow told once as a warning.

use std::time::Duration;

use autopilot_tests::{binary, bootstrap_zip, LocalCloud, Received, TriageStack};
use serde_json::{json, Value};

const PATH: &str = "/autopilot/config/";
const TRIAGE_PART: &str = "/autopilot/config/10-triage";
const ROUTES_PART: &str = "/autopilot/config/20-routes";

async fn put(ssm: &aws_sdk_ssm::Client, name: &str, value: &Value) {
    ssm.put_parameter()
        .name(name)
        .value(value.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutParameter {name}: {e:?}"));
}

/// The `ConfigVersion` of the function's EMF documents, oldest first, once `expected` are there.
async fn versions(cloud: &LocalCloud, stack: &TriageStack, expected: usize) -> Vec<(String, u64)> {
    stack
        .emf_documents(cloud, expected, Duration::from_secs(60))
        .await
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["ConfigVersion"].as_str().unwrap_or("-").to_owned(),
                d["ConfigRefused"].as_u64().unwrap_or(99),
            )
        })
        .collect()
}

/// Sends the fixture `name` through EventBridge; what the function published for it.
async fn tell(cloud: &LocalCloud, stack: &TriageStack, name: &str) -> Vec<Received> {
    stack
        .put_events(&[stack.fixture(name).unwrap()])
        .await
        .unwrap();
    stack
        .published(cloud, Duration::from_secs(60))
        .await
        .unwrap()
}

/// The refresh interval (1 s in these parts) is over: the next invocation looks again.
async fn interval_passes() {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_merged_refreshed_and_a_bad_version_is_refused_once() {
    let cloud = LocalCloud::start().await.expect("local cloud");
    let ssm = aws_sdk_ssm::Client::new(&cloud.config);
    put(
        &ssm,
        TRIAGE_PART,
        &json!({"triage": {"log_lines": 3}, "config_refresh_s": 1}),
    )
    .await;
    put(&ssm, ROUTES_PART, &json!({"notify": {"routes": []}})).await;
    let zip = bootstrap_zip(&binary("task-triage").expect("task-triage binary")).expect("package");
    let stack = TriageStack::deploy_with(
        &cloud,
        zip,
        &json!({}),
        &[("ConfigParameterName", PATH.to_owned())],
    )
    .await
    .expect("deploy");

    // The template gives the functions the parameters the configuration is held to.
    let environment = aws_sdk_lambda::Client::new(&cloud.config)
        .get_function_configuration()
        .function_name(&stack.function)
        .send()
        .await
        .unwrap();
    let variables = environment.environment().unwrap().variables().unwrap();
    let parameters: Value = serde_json::from_str(&variables["AUTOPILOT_STACK_PARAMETERS"]).unwrap();
    assert_eq!(parameters["RoutingByTags"], "false");
    assert_eq!(parameters["NotificationTopicArns"], "");

    // Version 1 of both parts: an OOM is critical.
    let told = tell(&cloud, &stack, "service-oom").await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].attributes["severity"], "critical");
    assert_eq!(told[0].body["log_tail"].as_array().unwrap().len(), 3);
    let v1 = "/autopilot/config/10-triage@1, /autopilot/config/20-routes@1";
    assert_eq!(versions(&cloud, &stack, 1).await, [(v1.to_owned(), 0)]);

    // Version 2 of the triage part makes an app exit a warning; the running function applies it.
    put(
        &ssm,
        TRIAGE_PART,
        &json!({"triage": {"log_lines": 3, "categories": {"app-exit": {"severity": "warning"}}}, "config_refresh_s": 1}),
    )
    .await;
    interval_passes().await;
    let told = tell(&cloud, &stack, "service-crash-exit1").await;
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0].attributes["category"], "app-exit");
    assert_eq!(told[0].attributes["severity"], "warning");
    let v2 = "/autopilot/config/10-triage@2, /autopilot/config/20-routes@1";
    assert_eq!(versions(&cloud, &stack, 2).await[1], (v2.to_owned(), 0));
    let logs = stack.function_logs(&cloud).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.contains(&format!("configuration {v2} applied"))),
        "applied by the running function, not a cold start: {logs:#?}"
    );

    // Version 2 of the routes part is invalid: refused once, the function keeps version 2.
    put(&ssm, ROUTES_PART, &json!({"notify": {"routes": 7}})).await;
    interval_passes().await;
    let told = tell(&cloud, &stack, "user-stopped").await;
    assert_eq!(told.len(), 1, "the refusal only: {told:#?}");
    assert_eq!(told[0].attributes["severity"], "critical");
    assert_eq!(told[0].body["kind"], "config-refused");
    assert!(
        told[0].body["title"].as_str().unwrap().starts_with(
            "configuration version 2 of /autopilot/config/20-routes rejected: notify.routes"
        ),
        "{}",
        told[0].body["title"]
    );
    assert_eq!(versions(&cloud, &stack, 3).await[2], (v2.to_owned(), 1));

    // Later looks neither tell it again nor stop the function: the OOM's redelivery is still
    // a duplicate, on version 2.
    interval_passes().await;
    let told = tell(&cloud, &stack, "service-oom-duplicate").await;
    assert!(told.is_empty(), "{told:#?}");
    assert_eq!(versions(&cloud, &stack, 4).await[3], (v2.to_owned(), 0));
    let outcomes = stack
        .outcomes(&cloud, 4, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(outcomes.count("duplicate"), 1, "{outcomes:?}");
    assert!(outcomes.failed_attempts.is_empty(), "{outcomes:?}");

    // Version 3 of the routes part routes by tag, which the stack (RoutingByTags=false) does
    // not allow: applied, and the disagreement told once as a warning.
    put(
        &ssm,
        ROUTES_PART,
        &json!({"notify": {"routes": [], "route_by_tag": {"tag": "team", "topics": {}}}}),
    )
    .await;
    interval_passes().await;
    let told = tell(&cloud, &stack, "user-stopped").await;
    assert_eq!(told.len(), 1, "the disagreement only: {told:#?}");
    assert_eq!(told[0].body["kind"], "config-mismatch");
    assert_eq!(told[0].attributes["severity"], "warning");
    assert!(
        told[0].body.to_string().contains(
            "notify.route_by_tag: needs RoutingByTags=true: without it the functions may not read tags"
        ),
        "{}",
        told[0].body
    );
    let v3 = "/autopilot/config/10-triage@2, /autopilot/config/20-routes@3";
    assert_eq!(versions(&cloud, &stack, 5).await[4], (v3.to_owned(), 0));
    let told = tell(&cloud, &stack, "user-stopped").await;
    assert!(told.is_empty(), "told once per version: {told:#?}");
}
