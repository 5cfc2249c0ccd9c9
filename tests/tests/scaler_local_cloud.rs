//! `alarm-scaler` end to end on the local cloud: PutMetricData → alarm → the stack's own alarm
//! topic (open to the stack's CloudWatch alarms only) → Lambda →
//! UpdateService → notification in the inbox; then duplicate and concurrent deliveries of
//! alarm events invoked directly, bad input, states that must not scale, and a forged SNS alarm
//! message (acted on as DescribeAlarms returns the alarm). Each scenario is
//! its own test on its own local cloud, the worker service starting at zero.

use std::time::Duration;

use autopilot_tests::scaler::{
    scaling_config, ScalerStack, ALARM_PERIOD_S, DEMO_ALARM, FIXTURE_ALARM,
};
use autopilot_tests::{LocalCloud, TriageStack};
use serde_json::{json, Value};

/// The policies' scale-out and scale-in cooldowns.
const COOLDOWN_S: u64 = 5;

/// The local cloud with the triage stack and alarm-scaler deployed (cooldowns of 5 s); the
/// triage stack is kept for its inbox.
async fn scaler_stack() -> (LocalCloud, TriageStack, ScalerStack) {
    ScalerStack::on_local_cloud(|_| json!({"scaling": scaling_config(COOLDOWN_S)}))
        .await
        .expect("deploy the scaler on the local cloud")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_scales_out_from_zero_and_back_in() {
    let (cloud, triage, scaler) = scaler_stack().await;
    assert_eq!(
        scaler.desired().await.unwrap(),
        0,
        "the worker starts at zero"
    );
    // The stack's own alarm topic: CloudWatch alarms of the stack's account publish to it, and
    // nobody else (its policy as SNS returns it).
    let sns = aws_sdk_sns::Client::new(&cloud.config);
    let attributes = sns
        .get_topic_attributes()
        .topic_arn(&scaler.alarms_topic_arn)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(
        attributes
            .attributes()
            .and_then(|a| a.get("Policy"))
            .expect("a topic policy"),
    )
    .unwrap();
    let statements = autopilot_tests::statements_of(&policy);
    assert_eq!(
        statements,
        [json!({
            "Sid": "CloudWatchAlarmsOfTheStacksAccounts",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": scaler.alarms_topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": [triage.account]}},
        })],
        "{policy}"
    );

    // Scale from zero through the real alarm path. The local cloud's alarm message carries no
    // datapoints, so the step at the threshold (+2) applies, and the result says so.
    scaler.put_backlog(412.0).await.unwrap();
    assert_eq!(scaler.alarm_state().await.unwrap(), "ALARM");
    assert_eq!(
        scaler
            .wait_for_desired(2, Duration::from_secs(30))
            .await
            .unwrap(),
        2,
        "scaled out from zero"
    );
    let out = scaler
        .published(&cloud, &triage, "scale-out", 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(out.len(), 1, "one notification for the scale-out");
    assert_eq!(out[0].attributes["source"], "alarm-scaler");
    assert_eq!(out[0].attributes["category"], "scaling");
    assert_eq!(out[0].attributes["service"], "orders-worker");
    assert!(
        out[0].subject.contains("scaled out 0 -> 2"),
        "{}",
        out[0].subject
    );
    assert_eq!(out[0].body["details"]["decision"]["to"], 2);
    assert_eq!(
        out[0].body["details"]["decision"]["step"]["assumed_at_threshold"],
        true
    );

    // A scale-in waits out the scale-out cooldown, counted from the scale-out the scaling memory
    // recorded (a slow first invocation can make it late): the OK transition must come after.
    let memory = triage
        .state_items()
        .await
        .unwrap()
        .into_iter()
        .find(|item| item["pk"] == "scaler#service#shop#orders-worker")
        .expect("the scaling memory");
    let out_at: u64 = memory["last_scale_out_at"].parse().unwrap();
    let due = std::time::UNIX_EPOCH + Duration::from_secs(out_at + COOLDOWN_S + 1);
    if let Ok(left) = due.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
    // Back to OK once the high datapoint has left the alarm's period (its statistic is the
    // maximum): a low datapoint a second until the local cloud says OK; then one step in.
    let low_since = std::time::Instant::now();
    loop {
        scaler.put_backlog(3.0).await.unwrap();
        if scaler.alarm_state().await.unwrap() == "OK" {
            break;
        }
        assert!(
            low_since.elapsed() < Duration::from_secs(3 * ALARM_PERIOD_S as u64),
            "the alarm stayed in ALARM for three periods of low datapoints"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        scaler
            .wait_for_desired(1, Duration::from_secs(30))
            .await
            .unwrap(),
        1,
        "scaled in by one step"
    );
    let scaled_in = scaler
        .published(&cloud, &triage, "scale-in", 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(scaled_in.len(), 1);
    assert!(
        scaled_in[0].subject.contains("scaled in 2 -> 1"),
        "{}",
        scaled_in[0].subject
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_concurrent_deliveries_change_the_service_once() {
    let (_cloud, _triage, scaler) = scaler_stack().await;
    // Duplicate and concurrent deliveries for one service: the same transition twice, and a
    // different alarm event for the same service at the same moment. One change only.
    let eventbridge = scaler.alarm_fixture("eventbridge-alarm", None).unwrap();
    let action = scaler
        .alarm_fixture("direct-lambda-action", Some("2026-09-14T12:00:38.000+0000"))
        .unwrap();
    let (a, b, c) = tokio::join!(
        scaler.invoke(&eventbridge),
        scaler.invoke(&eventbridge),
        scaler.invoke(&action)
    );
    let results = [a, b, c];
    let actions: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(body) => body["action"].as_str().unwrap_or("?").to_owned(),
            Err(error) => format!("error: {error}"),
        })
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "scale-out").count(),
        1,
        "exactly one change: {actions:?} {results:?}"
    );
    assert!(
        actions
            .iter()
            .all(|a| a == "scale-out" || a == "none" || a.contains("InProgressElsewhere")),
        "{actions:?}"
    );
    assert_eq!(
        scaler.desired().await.unwrap(),
        3,
        "0 + 3 (metric 412, threshold 100)"
    );
    let again = scaler.invoke(&eventbridge).await.unwrap();
    assert_eq!(again["action"], "none");
    assert!(
        again["reason"]
            .as_str()
            .unwrap()
            .contains("duplicate delivery"),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_and_inputs_that_must_not_scale_do_not() {
    let (_cloud, _triage, scaler) = scaler_stack().await;
    // States and inputs that must not scale.
    let mut insufficient = scaler
        .alarm_fixture("eventbridge-alarm", Some("2026-09-14T12:10:00.000+0000"))
        .unwrap();
    insufficient["detail"]["state"]["value"] = json!("INSUFFICIENT_DATA");
    let response = scaler.invoke(&insufficient).await.unwrap();
    assert_eq!(response["action"], "none");
    assert_eq!(response["reason"], "INSUFFICIENT_DATA never scales");
    let mut unknown = scaler.alarm_fixture("eventbridge-alarm", None).unwrap();
    unknown["detail"]["alarmName"] = json!("someone-elses-alarm");
    let response = scaler.invoke(&unknown).await.unwrap();
    assert_eq!(response["action"], "none");
    assert!(response["reason"]
        .as_str()
        .unwrap()
        .contains("no scaling policy"));
    let malformed = scaler.invoke(&json!({"hello": "world"})).await.unwrap_err();
    assert!(malformed.contains("InvalidEvent"), "{malformed}");
    let bad_state: Value = {
        let mut event = scaler.alarm_fixture("eventbridge-alarm", None).unwrap();
        event["detail"]["state"]["value"] = json!(7);
        event
    };
    let error = scaler.invoke(&bad_state).await.unwrap_err();
    assert!(error.contains("detail.state.value"), "{error}");
    // A forged SNS alarm message: the demo alarm "in ALARM", while the local cloud's alarm has
    // no data. The scaler acts on the alarm as DescribeAlarms returns it.
    let forged: Value = {
        let text = scaler
            .alarm_fixture("sns-classic", None)
            .unwrap()
            .to_string()
            .replace(FIXTURE_ALARM, DEMO_ALARM);
        serde_json::from_str(&text).unwrap()
    };
    let response = scaler.invoke(&forged).await.unwrap();
    assert_eq!(response["action"], "none", "{response}");
    assert_eq!(response["reason"], "INSUFFICIENT_DATA never scales");
    assert!(
        response["notes"].as_array().unwrap().contains(&json!(
            "the message says ALARM, DescribeAlarms says INSUFFICIENT_DATA: acting on INSUFFICIENT_DATA"
        )),
        "{response}"
    );
    assert_eq!(
        scaler.desired().await.unwrap(),
        0,
        "nothing changed the service"
    );
}
