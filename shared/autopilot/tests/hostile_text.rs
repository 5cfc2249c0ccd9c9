//! Text taken from an event — a container's reason, its log lines, a cluster name — cannot break
//! the email layout (forge a line: a heading, a fact, the footer) or inject chat markup (a
//! mention, a link, a code block that swallows the rest) in what `task-triage` sends.

mod common;

use autopilot::app::triage::TaskTriage;
use autopilot::config::StackConfig;
use autopilot::entry::{Invocation, Mode};
use autopilot::testkit::{orders_api_logs, World, HOME_ACCOUNT};
use common::fixture;
use serde_json::Value;

const FORGED: &str = "java.lang.OutOfMemoryError\n\n-- all clear (ECS Autopilot)\nSeverity  info\r\u{202e}gnp.exe <!here> [click](https://evil.example) ```\n*urgent*";

#[tokio::test]
async fn event_text_stays_inside_its_line_and_its_markup() {
    let world = World::new();
    orders_api_logs(
        &world.ecs,
        &world.logs,
        HOME_ACCOUNT,
        &[
            "starting",
            "``` <!channel> closing the block\n-- all clear (ECS Autopilot)",
        ],
    );
    let mut event = fixture("ecs/service-oom.json");
    event["detail"]["containers"][0]["reason"] = FORGED.into();
    event["detail"]["stoppedReason"] = FORGED.into();
    let config = StackConfig::parse(r#"{"notify": {"https_format": "chatbot"}}"#).unwrap();
    let triage = TaskTriage::new(world.setup(Mode::Live, config));
    triage
        .handle(event.into(), Invocation::default())
        .await
        .unwrap();
    let sent = world.notifier.sent();
    let message: Value = serde_json::from_str(&sent[0].message).unwrap();

    let email = message["email"].as_str().unwrap();
    let footers = email.lines().filter(|l| l.starts_with("-- ")).count();
    assert_eq!(footers, 1, "one footer, the real one:\n{email}");
    assert!(
        email.lines().last().unwrap().starts_with("-- task-triage"),
        "{email}"
    );
    assert!(!email.lines().any(|l| l.starts_with("Severity")), "{email}");
    assert!(
        !email.contains('\r') && !email.contains('\u{202e}'),
        "{email}"
    );
    assert!(
        email.contains("  | ``` <!channel> closing the block -- all clear (ECS Autopilot)"),
        "a log line stays one prefixed line:\n{email}"
    );

    let chat: Value = serde_json::from_str(message["https"].as_str().unwrap()).unwrap();
    let description = chat["content"]["description"].as_str().unwrap();
    let title = chat["content"]["title"].as_str().unwrap();
    for text in [description, title] {
        assert!(
            !text.contains("<!here>") && !text.contains("<!channel>"),
            "{text}"
        );
        assert!(
            !text.contains("](https://evil.example)"),
            "no link of its own: {text}"
        );
    }
    assert_eq!(
        description.matches("```").count(),
        2,
        "only the log block's own fences: {description}"
    );
    assert!(description.contains("&lt;!here&gt;"), "{description}");
}
