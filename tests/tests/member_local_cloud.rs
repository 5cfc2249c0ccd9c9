//! The many-account layout on the local cloud: `member-template.yaml` deployed in a second
//! account (ministack keeps accounts apart by an access key id of 12 digits) — its forwarding
//! rule's own pattern against the fixtures, its target (the central bus, through the forwarding
//! role), the role the central functions assume. ministack does not deliver to an event bus of
//! another account ("event bus … not found" in the sender's account), so the forwarding itself
//! is not exercised here; nor is the central stack's bus policy (ministack's CloudFormation has
//! no AWS::Events::EventBusPolicy; cfn-lint checks it).

use autopilot_tests::{fixtures_dir, rule_matches, template, LocalCloud};
use serde_json::Value;

const MEMBER: &str = "222233334444";
const CENTRAL: &str = "000000000000";

fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_account_forwards_to_the_central_bus() {
    let cloud = LocalCloud::start().await.expect("local cloud");
    let member_config = cloud.config_for_account(MEMBER);
    let central_bus = format!("arn:aws:events:us-east-1:{CENTRAL}:event-bus/default");
    let member = template::deploy_file(
        &cloud,
        &member_config,
        "member-template.yaml",
        "autopilot-member",
        vec![],
        &[
            ("CentralEventBusArn", central_bus.clone()),
            ("CentralAccountId", CENTRAL.to_owned()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        member.output("RoleArn").unwrap(),
        format!("arn:aws:iam::{MEMBER}:role/ecs-autopilot-member")
    );
    for left_out in ["ScalingPolicy", "JobsPolicy", "ForwardAlarmStateChanges"] {
        assert!(
            !member.resources.contains_key(left_out),
            "{left_out} without scaled services or jobs"
        );
    }

    let events = aws_sdk_eventbridge::Client::new(&member_config);
    let rule = member.physical_id("ForwardEcsEvents").unwrap();
    let targets = events
        .list_targets_by_rule()
        .rule(rule)
        .send()
        .await
        .unwrap();
    let [target] = targets.targets() else {
        panic!("one target: {targets:?}")
    };
    assert_eq!(target.arn(), central_bus);
    let forwarding_role = member.physical_id("ForwardingRole").unwrap();
    assert!(
        target
            .role_arn()
            .is_some_and(|arn| arn.ends_with(&format!("role/{forwarding_role}"))),
        "{target:?}"
    );
    let mut running = fixture("ecs/service-oom");
    running["detail"]["lastStatus"] = "RUNNING".into();
    running["detail"]
        .as_object_mut()
        .unwrap()
        .remove("stopCode");
    let cases = [
        ("STOPPED", fixture("ecs/service-oom"), true),
        (
            "TerminationNotice",
            fixture("ecs/spot-termination-notice"),
            true,
        ),
        (
            "deployment failed",
            fixture("service/deployment-failed"),
            true,
        ),
        ("service action", fixture("service/throttled"), true),
        ("RUNNING", running, false),
        ("alarm", fixture("alarms/eventbridge-alarm"), false),
    ];
    for (what, event, expected) in cases {
        let result = rule_matches(&events, rule, &event).await.unwrap();
        assert_eq!(result, expected, "{what}");
    }
}
