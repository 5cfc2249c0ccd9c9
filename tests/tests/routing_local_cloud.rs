//! Routing and muting end to end on the local cloud, deployed from template.yaml with
//! NotificationTopicArns, WebhookParameterPath, RoutingByTags and MutingWindows: per-team
//! notifications reach two SQS-subscribed topics (by the service's `team` tag and by a rule), a
//! maintenance window mutes a service and the tick later sends its summary, and Slack and Teams
//! webhooks (URLs in SSM SecureStrings) reach a local HTTP server in their documented shapes — a
//! 429 waited out, a 500 retried without a second delivery to the topic that took it.

use std::time::Duration;

use autopilot_tests::webhooks::{slack_problems, teams_problems, WebhookServer};
use autopilot_tests::{
    binary, bootstrap_zip, crash_of_service, invoke_sync, subscribed_queue, LocalCloud,
    TriageStack, CLUSTER, SERVICE,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_mutes_and_webhooks_on_the_local_cloud() {
    let cloud = LocalCloud::start().await.expect("local cloud");
    let sns = aws_sdk_sns::Client::new(&cloud.config);
    let ssm = aws_sdk_ssm::Client::new(&cloud.config);
    let ecs = aws_sdk_ecs::Client::new(&cloud.config);

    // Two team topics, each with its own queue.
    let mut team_topics = Vec::new();
    for team in ["payments", "search"] {
        let topic = sns
            .create_topic()
            .name(format!("autopilot-{team}"))
            .send()
            .await
            .unwrap();
        let arn = topic.topic_arn().unwrap().to_owned();
        let queue = subscribed_queue(&cloud, &arn, &format!("inbox-{team}"))
            .await
            .unwrap();
        team_topics.push((arn, queue));
    }
    let [(payments, payments_queue), (search, search_queue)] = team_topics.try_into().unwrap();

    // The webhooks' URLs as SecureStrings; the Teams one carries its signature in the query.
    let hooks = WebhookServer::start().await.unwrap();
    for (name, path) in [
        ("platform-slack", "/services/T000/B000/slack".to_owned()),
        (
            "payments-teams",
            "/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=s3cr3t"
                .to_owned(),
        ),
    ] {
        ssm.put_parameter()
            .name(format!("/autopilot/webhooks/{name}"))
            .value(format!("{}{path}", hooks.base))
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
    }

    // A maintenance window that ended a minute ago.
    let now = chrono::Utc::now().timestamp();
    let rfc3339 = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc3339();
    let config = json!({"notify": {
        "webhooks": {
            "platform-slack": {"kind": "slack", "url_ssm": "/autopilot/webhooks/platform-slack"},
            "payments-teams": {"kind": "teams", "url_ssm": "/autopilot/webhooks/payments-teams"}
        },
        "routes": [
            {"name": "inventory maintenance", "service": "inventory-*", "mute": true,
             "windows": [{"start": rfc3339(now - 7200), "end": rfc3339(now - 60)}]},
            {"name": "search team", "service": "search-*", "topic": search},
            {"name": "image pulls to slack", "category": ["image-pull"], "webhook": "platform-slack"},
            {"name": "secrets to teams", "category": ["secrets"], "webhook": "payments-teams", "topic": payments}
        ],
        "route_by_tag": {"tag": "team", "topics": {"payments": payments}}
    }});
    let zip = bootstrap_zip(&binary("task-triage").unwrap()).unwrap();
    let stack = TriageStack::deploy_with(
        &cloud,
        zip,
        &config,
        &[
            ("NotificationTopicArns", format!("{payments},{search}")),
            ("WebhookParameterPath", "/autopilot/webhooks".to_owned()),
            ("RoutingByTags", "true".to_owned()),
            ("MutingWindows", "true".to_owned()),
        ],
    )
    .await
    .expect("deploy");
    // At the most verbose level the function allows: the webhook URLs must still stay out of
    // its log (the SDK's and HTTP crates' own lines are held to INFO).
    autopilot_tests::add_environment(
        &stack.lambda,
        &stack.function,
        &[("RUST_LOG", "trace".to_owned())],
    )
    .await
    .unwrap();

    // The deployed roles may publish to the team topics and read the webhook parameters.
    let processed = autopilot_tests::template::processed_template(&cloud, autopilot_tests::STACK)
        .await
        .unwrap();
    let policies = processed.to_string();
    assert!(
        policies.contains("PublishRoutedNotifications")
            && policies.contains("ReadWebhookUrls")
            && policies.contains("TagsForRouting")
    );

    // orders-api is the payments team's (by tag).
    let service_arn = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(SERVICE)
        .send()
        .await
        .unwrap()
        .services()[0]
        .service_arn()
        .unwrap()
        .to_owned();
    ecs.tag_resource()
        .resource_arn(&service_arn)
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key("team")
                .value("payments")
                .build(),
        )
        .send()
        .await
        .unwrap();

    // 1. Per team: orders-api's crash → payments (tag); search-api's crash → search (rule).
    let orders = crash_of_service(&stack, SERVICE, "0000000000000000000000000000a001").unwrap();
    let search_stop =
        crash_of_service(&stack, "search-api", "0000000000000000000000000000a002").unwrap();
    stack.put_events(&[orders, search_stop]).await.unwrap();
    let to_payments = stack
        .published_to(&cloud, &payments, &payments_queue, WAIT)
        .await
        .unwrap();
    let to_search = stack
        .published_to(&cloud, &search, &search_queue, WAIT)
        .await
        .unwrap();
    assert_eq!(to_payments.len(), 1, "{to_payments:?}");
    assert!(
        to_payments[0].subject.contains("shop/orders-api"),
        "{}",
        to_payments[0].subject
    );
    assert_eq!(to_search.len(), 1, "{to_search:?}");
    assert!(
        to_search[0].subject.contains("shop/search-api"),
        "{}",
        to_search[0].subject
    );

    // 2. Maintenance: inventory-api's stop an hour ago, inside the window, is muted; nothing is
    // sent anywhere.
    let mut during =
        crash_of_service(&stack, "inventory-api", "0000000000000000000000000000a003").unwrap();
    during["time"] = rfc3339(now - 3600).into();
    let muted = invoke_sync(&stack.lambda, &stack.function, &during)
        .await
        .unwrap();
    assert_eq!(muted["decision"], "muted", "{muted}");
    assert_eq!(muted["route"]["by"], "rule 0 (inventory maintenance)");
    // The window ended a minute ago: the next tick sends its summary, once.
    let tick = invoke_sync(&stack.lambda, &stack.function, &json!({"tick": true}))
        .await
        .unwrap();
    assert_eq!(tick["results"].as_array().map(Vec::len), Some(1), "{tick}");
    let again = invoke_sync(&stack.lambda, &stack.function, &json!({"tick": true}))
        .await
        .unwrap();
    assert_eq!(again["results"], json!([]), "{again}");

    // 3. Webhooks: an image pull failure to Slack (429 with Retry-After 1 first), a secrets
    // failure to Teams and the payments topic (Teams answers 500 first).
    hooks.answer("/services/T000/B000/slack", 429, Some(1));
    let image = stack.fixture("image-not-found").unwrap();
    let slack_outcome = invoke_sync(&stack.lambda, &stack.function, &image)
        .await
        .unwrap();
    assert_eq!(
        slack_outcome["route"]["to"],
        json!(["webhook:platform-slack"]),
        "{slack_outcome}"
    );
    assert!(
        slack_outcome["notes"]
            .to_string()
            .contains("answered 429: waited 1 s"),
        "{slack_outcome}"
    );
    let slack = hooks.accepted("/services/T000/B000/slack");
    assert_eq!(slack.len(), 1);
    assert_eq!(
        slack_problems(&slack[0]),
        Vec::<String>::new(),
        "{}",
        slack[0]
    );

    hooks.answer("/workflows/abc/triggers/manual/paths/invoke", 500, None);
    let secrets = stack.fixture("secrets-denied").unwrap();
    let failed = invoke_sync(&stack.lambda, &stack.function, &secrets)
        .await
        .unwrap_err();
    assert!(failed.contains("WebhookFailed"), "{failed}");
    // Lambda's retry of the same event: Teams now takes it; the topic is not sent to again.
    let retried = invoke_sync(&stack.lambda, &stack.function, &secrets)
        .await
        .unwrap();
    assert_eq!(retried["decision"], "notify", "{retried}");
    assert!(
        retried["notes"]
            .to_string()
            .contains("took it in an earlier attempt"),
        "{retried}"
    );
    let teams = hooks.accepted("/workflows/abc/triggers/manual/paths/invoke");
    assert_eq!(teams.len(), 1);
    assert_eq!(
        teams_problems(&teams[0]),
        Vec::<String>::new(),
        "{}",
        teams[0]
    );
    let seen = hooks.seen();
    assert!(
        seen.iter().any(|(path, _, _)| path.ends_with("sig=s3cr3t")),
        "the query arrived: {seen:?}"
    );
    let secrets_to_payments = stack
        .published_to(&cloud, &payments, &payments_queue, WAIT)
        .await
        .unwrap();
    assert_eq!(
        secrets_to_payments.len(),
        1,
        "one publish across both attempts: {secrets_to_payments:?}"
    );

    // The default topic got only the summary of the maintenance window.
    let inbox = stack.published(&cloud, WAIT).await.unwrap();
    let subjects: Vec<&str> = inbox.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["[INFO] shop/inventory-api: maintenance window ended: 1 notification(s) were muted (1 app-exit)"]
    );
    // No webhook URL reached the logs, at TRACE (their debug lines were written).
    let logs = stack.function_logs(&cloud).await.unwrap().join("\n");
    assert!(
        logs.contains("\"level\":\"DEBUG\"") || logs.contains("\"level\":\"TRACE\""),
        "the function logged at TRACE"
    );
    assert!(
        !logs.contains("s3cr3t") && !logs.contains("/services/T000"),
        "a URL was logged"
    );
}
