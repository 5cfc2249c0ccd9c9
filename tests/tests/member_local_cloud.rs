//! The many-account layout on the local cloud: the central stack deployed for one member, then
//! `member-template.yaml` in that member account (ministack keeps accounts apart by an access
//! key id of 12 digits, and an assumed role's session acts in the role's account) with the
//! central task-triage role's ARN from the central stack's outputs — its forwarding rule's own
//! pattern against the fixtures, its target (the central bus, through the forwarding role), its
//! read role trusting exactly that central role; the central rules' `account` filter; and a
//! member's stop enriched through the member's read role (the role ARN the function assumed is
//! the member stack's): the member's service and log tail, not the central account's
//! same-named ones; the same stop from an account that is not a member is ignored
//! (`MEMBER_ACCOUNT_IDS`, from the stack's MemberAccountIds). ministack checks no trust policy
//! without its AUTH mode, so the trust document is checked as deployed. ministack does not deliver to an event bus of
//! another account ("event bus … not found" in the sender's account), so the forwarding itself
//! is not exercised here; nor is the central stack's bus policy (ministack's CloudFormation has
//! no AWS::Events::EventBusPolicy; cfn-lint checks it).

use std::time::Duration;

use autopilot_tests::{
    binary, bootstrap_zip, fixtures_dir, invoke_sync, rule_matches, seed_ecs, template,
    write_log_with, LocalCloud, TriageStack, LOG_GROUP, OOM_TASK_ID, SERVICE,
};
use serde_json::{json, Value};

const MEMBER: &str = "222233334444";
/// Neither the central account nor a member.
const FOREIGN: &str = "999988887777";
const CENTRAL: &str = "000000000000";

fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_account_forwards_to_the_central_bus_and_is_read_through_its_role() {
    let cloud = LocalCloud::start().await.expect("local cloud");
    let member_config = cloud.config_for_account(MEMBER);
    let central_bus = format!("arn:aws:events:us-east-1:{CENTRAL}:event-bus/default");

    let zip = bootstrap_zip(&binary("task-triage").unwrap()).unwrap();
    let stack = TriageStack::deploy_with(
        &cloud,
        zip,
        &json!({"triage": {"log_lines": 2}}),
        &[("MemberAccountIds", MEMBER.to_owned())],
    )
    .await
    .expect("central stack");
    assert_eq!(stack.account, CENTRAL);
    let triage_role = stack.stack.output("TriageRoleArn").unwrap().to_owned();
    assert!(
        triage_role.starts_with(&format!("arn:aws:iam::{CENTRAL}:role/ecs-autopilot/")),
        "the central role's fixed path: {triage_role}"
    );

    let member = template::deploy_file(
        &cloud,
        &member_config,
        "member-template.yaml",
        "autopilot-member",
        vec![],
        &[
            ("CentralEventBusArn", central_bus.clone()),
            ("CentralTriageRoleArn", triage_role.clone()),
        ],
    )
    .await
    .unwrap();
    let read_role = member.output("ReadRoleArn").unwrap().to_owned();
    assert_eq!(
        read_role,
        format!("arn:aws:iam::{MEMBER}:role/ecs-autopilot/ecs-autopilot-member-read")
    );
    for left_out in ["ScaleRole", "JobsRole", "ForwardAlarmStateChanges"] {
        assert!(
            !member.resources.contains_key(left_out),
            "{left_out} without scaled services or jobs"
        );
    }
    // The read role trusts the central task-triage role and nothing else of that account.
    let iam = aws_sdk_iam::Client::new(&member_config);
    let role = iam
        .get_role()
        .role_name("ecs-autopilot-member-read")
        .send()
        .await
        .unwrap();
    let trust = role.role().unwrap().assume_role_policy_document().unwrap();
    let trust: Value = serde_json::from_str(&urlencoding::decode(trust).unwrap()).unwrap();
    let trusted = autopilot_tests::statements_of(&trust);
    assert_eq!(
        trusted,
        [json!({
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{CENTRAL}:root")},
            "Action": "sts:AssumeRole",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": triage_role}},
        })],
        "{trust}"
    );

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

    // The member's own orders-api (desired 5) and its log stream; the central account has a
    // service of the same name (desired 3) and a stream of the same name with other lines.
    let member_ecs = aws_sdk_ecs::Client::new(&member_config);
    let member_logs = aws_sdk_cloudwatchlogs::Client::new(&member_config);
    let member_task_definition = seed_ecs(&member_ecs).await.unwrap();
    member_ecs
        .update_service()
        .cluster("shop")
        .service(SERVICE)
        .desired_count(5)
        .send()
        .await
        .unwrap();
    member_logs
        .create_log_group()
        .log_group_name(LOG_GROUP)
        .send()
        .await
        .unwrap();
    let member_lines = [
        "member: loading catalog",
        "member: java.lang.OutOfMemoryError",
    ];
    write_log_with(
        &member_logs,
        &format!("ecs/{SERVICE}/{OOM_TASK_ID}"),
        &member_lines,
    )
    .await
    .unwrap();

    assert_eq!(
        stack.stack.not_deployed,
        [
            "MemberAccountsMayPutEvents",
            "MemberOrganizationMayPutEvents"
        ],
        "the bus policies are beyond the local cloud (cfn-lint checks them)"
    );
    let environment = stack
        .lambda
        .get_function_configuration()
        .function_name(&stack.function)
        .send()
        .await
        .unwrap();
    let variables = environment
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            variables.get("AUTOPILOT_ACCOUNT_ID").map(String::as_str),
            variables.get("MEMBER_ROLE_NAME").map(String::as_str),
            variables.get("MEMBER_ACCOUNT_IDS").map(String::as_str),
        ),
        (
            Some(CENTRAL),
            Some("ecs-autopilot/ecs-autopilot-member-read"),
            Some(MEMBER)
        )
    );
    let processed = template::processed_template(&cloud, "autopilot")
        .await
        .unwrap();
    // Each function's role may assume its own member role (by path and name), in the member
    // accounts only.
    fn statements<'a>(node: &'a Value, sid: &str, found: &mut Vec<&'a Value>) {
        match node {
            Value::Object(map) => {
                if map.get("Sid").and_then(Value::as_str) == Some(sid) {
                    found.push(node);
                }
                map.values().for_each(|v| statements(v, sid, found));
            }
            Value::Array(items) => items.iter().for_each(|v| statements(v, sid, found)),
            _ => {}
        }
    }
    for (role, suffix) in [
        ("TaskTriageFunctionRole", "read"),
        ("AlarmScalerFunctionRole", "scale"),
        ("BatchRunnerFunctionRole", "jobs"),
    ] {
        let mut assume = Vec::new();
        statements(
            &processed["Resources"][role],
            "AssumeMemberRole",
            &mut assume,
        );
        let [statement] = &assume[..] else {
            panic!("{role}: one AssumeMemberRole statement: {assume:?}")
        };
        assert_eq!(statement["Action"], "sts:AssumeRole");
        assert_eq!(
            statement["Resource"]["Fn::Sub"],
            format!(
                "arn:${{AWS::Partition}}:iam::*:role/ecs-autopilot/${{MemberRoleName}}-{suffix}"
            ),
            "{role}"
        );
        assert_eq!(
            statement["Condition"]["Fn::If"][1],
            json!({"StringEquals": {"aws:ResourceAccount": {"Ref": "MemberAccountIds"}}}),
            "{statement}"
        );
    }
    // The central rules take the stack's own account and its member only.
    let central_events = &stack.events;
    let stop_rule = stack
        .stack
        .physical_id("TaskTriageFunctionTaskStopped")
        .unwrap();
    let rule = central_events
        .describe_rule()
        .name(stop_rule)
        .send()
        .await
        .unwrap();
    let pattern: Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
    assert_eq!(pattern["account"], json!([CENTRAL, MEMBER]), "{pattern}");

    let text = std::fs::read_to_string(fixtures_dir().join("ecs/service-oom.json"))
        .unwrap()
        .replace("111122223333", MEMBER)
        .replace(
            "task-definition/orders-api:17",
            &format!("task-definition/{member_task_definition}"),
        );
    let stop: Value = serde_json::from_str(&text).unwrap();
    let outcome = invoke_sync(&stack.lambda, &stack.function, &stop)
        .await
        .expect("invoke");
    assert_eq!(outcome["decision"], "notify", "{outcome}");
    assert_eq!(outcome["notes"], json!([]), "nothing missing: {outcome}");
    let assumed: Vec<String> = stack
        .function_logs(&cloud)
        .await
        .unwrap()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|record| record["fields"]["message"] == "assuming a member role")
        .map(|record| {
            record["fields"]["role_arn"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    assert_eq!(
        assumed,
        std::slice::from_ref(&read_role),
        "the member stack's read role"
    );
    let inbox = stack
        .published(&cloud, Duration::from_secs(20))
        .await
        .unwrap();
    let [notification] = &inbox[..] else {
        panic!("one notification: {inbox:?}")
    };
    let body = &notification.body;
    assert_eq!(body["details"]["service_context"]["desired"], 5, "{body}");
    let tail: Vec<&str> = body["log_tail"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        tail, member_lines,
        "the member's stream, not the central one"
    );
    assert!(
        notification.subject.contains("orders-api"),
        "{}",
        notification.subject
    );
    assert!(
        body.to_string().contains(MEMBER),
        "names the account: {body}"
    );

    // The same stop from an account that is not a member: ignored, nothing told.
    let foreign: Value = serde_json::from_str(&text.replace(MEMBER, FOREIGN)).unwrap();
    let outcome = invoke_sync(&stack.lambda, &stack.function, &foreign)
        .await
        .expect("invoke");
    assert_eq!(outcome["decision"], "ignored", "{outcome}");
    assert_eq!(outcome["foreign"]["account"], FOREIGN, "{outcome}");
    assert!(outcome.get("message_id").is_none(), "{outcome}");
    let told = stack
        .published(&cloud, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(told.is_empty(), "nothing told: {told:?}");
}
