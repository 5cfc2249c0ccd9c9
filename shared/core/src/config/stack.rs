//! The configuration against the stack's template parameters (pure): what the document asks
//! for that the deployed stack does not allow — tag routing without `RoutingByTags`, muting
//! windows without `MutingWindows`, a policy's alarm that no rule delivers, a service, queue or
//! task definition outside the ARNs the functions may act on, a topic they may not publish to,
//! a webhook URL they may not read — each an error naming its path, which would otherwise fail
//! silently or at run time.

use std::collections::BTreeMap;

use super::parts::Problem;
use super::StackConfig;
use crate::arn::last_segment;
use crate::triage::watch::glob_matches;

/// Template parameters by name. A check runs only when the parameters it reads are present:
/// [`with_defaults`] fills in the template's defaults for a file that leaves some out, while
/// the functions at cold start are given the short ones (`AUTOPILOT_STACK_PARAMETERS`) and each
/// the ARN lists of its own sections (`AUTOPILOT_STACK_RESOURCES`).
pub type StackParameters = BTreeMap<String, String>;

/// The parameters the checks read.
pub const CHECKED: [&str; 11] = [
    "RoutingByTags",
    "MutingWindows",
    "NotificationTopicArns",
    "WebhookParameterPath",
    "ScaledServiceArns",
    "ScaledAlarmNames",
    "ScaledQueueArns",
    "AlarmTopicArn",
    "CreateAlarmTopic",
    "JobTaskDefinitionArns",
    "JobClusterArns",
];

/// `parameters` with the template's default (empty, `false`) for each checked one left out, as
/// CloudFormation deploys a stack without them.
pub fn with_defaults(mut parameters: StackParameters) -> StackParameters {
    for name in CHECKED {
        let default = match name {
            "RoutingByTags" | "MutingWindows" | "CreateAlarmTopic" => "false",
            _ => "",
        };
        parameters
            .entry(name.to_owned())
            .or_insert_with(|| default.to_owned());
    }
    parameters
}

fn list(parameters: &StackParameters, name: &str) -> Vec<String> {
    parameters
        .get(name)
        .map(|v| super::comma_list(v))
        .unwrap_or_default()
}

fn on(parameters: &StackParameters, name: &str) -> bool {
    parameters.get(name).is_some_and(|v| v == "true")
}

/// The resource part of an ARN (after its fifth colon), or the text itself.
fn resource(arn: &str) -> &str {
    arn.splitn(6, ':').nth(5).unwrap_or(arn)
}

/// Whether `resource_text` (`service/shop/api`) is one of the resources of `arns` (IAM's `*`
/// and `?` wildcards).
fn allowed(arns: &[String], resource_text: &str) -> bool {
    arns.iter()
        .any(|arn| glob_matches(resource(arn), resource_text))
}

/// The disagreements the function `source` tells at cold start: task-triage the routing (every
/// stack has it), alarm-scaler its scaling, batch-runner its jobs — so that each is told once,
/// and only by a function that is in the stack.
pub fn cross_check_for(
    source: crate::domain::Source,
    config: &StackConfig,
    parameters: &StackParameters,
) -> Vec<Problem> {
    use crate::domain::Source;
    let prefix = match source {
        Source::Triage => "notify.",
        Source::Scaler => "scaling.",
        Source::Batch => "jobs.",
    };
    cross_check(config, parameters)
        .into_iter()
        .filter(|p| p.path.starts_with(prefix))
        .collect()
}

/// Every disagreement between `config` and the stack deployed with `parameters`.
pub fn cross_check(config: &StackConfig, parameters: &StackParameters) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |path: String, text: String| {
        problems.push(Problem {
            part: None,
            path,
            problem: text,
        })
    };
    let given = |name: &str| parameters.contains_key(name);
    let notify = &config.notify;
    let topics = list(parameters, "NotificationTopicArns");
    let tags_off = given("RoutingByTags") && !on(parameters, "RoutingByTags");
    let check_topics = given("NotificationTopicArns");
    if notify.route_by_tag.is_some() && tags_off {
        problem(
            "notify.route_by_tag".into(),
            "needs RoutingByTags=true: without it the functions may not read tags".into(),
        );
    }
    if let Some(by_tag) = notify.route_by_tag.as_ref().filter(|_| check_topics) {
        for (value, topic) in &by_tag.topics {
            if !topics.contains(topic) {
                problem(
                    format!("notify.route_by_tag.topics.{value}"),
                    format!("{topic} is not in NotificationTopicArns: the functions may not publish to it"),
                );
            }
        }
    }
    for (i, route) in notify.routes.iter().enumerate() {
        let path = format!("notify.routes[{i}]");
        if route.tags.is_some() && tags_off {
            problem(
                format!("{path}.tags"),
                "needs RoutingByTags=true: without it the functions may not read tags".into(),
            );
        }
        if route.mute
            && route.windows.is_some()
            && given("MutingWindows")
            && !on(parameters, "MutingWindows")
        {
            problem(
                format!("{path}.windows"),
                "needs MutingWindows=true: without it no tick sends the window's summary".into(),
            );
        }
        if let Some(topic) = route.topic.as_ref().filter(|_| check_topics) {
            if !topics.contains(topic) {
                problem(
                    format!("{path}.topic"),
                    format!("{topic} is not in NotificationTopicArns: the functions may not publish to it"),
                );
            }
        }
    }
    let webhook_path = parameters
        .get("WebhookParameterPath")
        .map(|p| p.trim_end_matches('/'))
        .unwrap_or_default();
    let webhooks = notify
        .webhooks
        .iter()
        .filter(|_| given("WebhookParameterPath"));
    for (name, webhook) in webhooks {
        let readable =
            !webhook_path.is_empty() && webhook.url_ssm.starts_with(&format!("{webhook_path}/"));
        if !readable {
            problem(
                format!("notify.webhooks.{name}.url_ssm"),
                format!(
                    "{} is not under WebhookParameterPath ({}): the functions may not read it",
                    webhook.url_ssm,
                    if webhook_path.is_empty() {
                        "not set"
                    } else {
                        webhook_path
                    }
                ),
            );
        }
    }

    let services = list(parameters, "ScaledServiceArns");
    let alarms = list(parameters, "ScaledAlarmNames");
    let alarm_topic = on(parameters, "CreateAlarmTopic")
        || parameters
            .get("AlarmTopicArn")
            .is_some_and(|v| !v.is_empty());
    let scaling = &config.scaling;
    let scaled = scaling
        .alarms
        .iter()
        .map(|(name, p)| (format!("scaling.alarms.{name}"), &p.cluster, &p.service))
        .chain(
            scaling
                .targets
                .iter()
                .map(|(name, p)| (format!("scaling.targets.{name}"), &p.cluster, &p.service)),
        );
    for (path, cluster, service) in scaled.filter(|_| given("ScaledServiceArns")) {
        if services.is_empty() {
            problem(
                path,
                "alarm-scaler is not in the stack: ScaledServiceArns is empty".into(),
            );
        } else if !allowed(
            &services,
            &format!("service/{}/{service}", last_segment(cluster)),
        ) {
            problem(
                format!("{path}.service"),
                format!(
                    "{}/{service} is not in ScaledServiceArns: alarm-scaler may not scale it",
                    last_segment(cluster)
                ),
            );
        }
    }
    // A member account's alarm (`alarm_arn`) arrives through the member rules, not these.
    let alarm_rule_known = given("ScaledAlarmNames") && given("AlarmTopicArn");
    let scaler_here = !given("ScaledServiceArns") || !services.is_empty();
    for (name, _) in scaling.alarms.iter().filter(|(_, p)| p.alarm_arn.is_none()) {
        if alarm_rule_known && scaler_here && !alarms.contains(name) && !alarm_topic {
            problem(
                format!("scaling.alarms.{name}"),
                format!("alarm {name} is not in ScaledAlarmNames (and no AlarmTopicArn): its state changes never reach alarm-scaler"),
            );
        }
    }
    let queues = list(parameters, "ScaledQueueArns");
    for (name, target) in scaling.targets.iter().filter(|_| given("ScaledQueueArns")) {
        for (i, url) in target.sqs.iter().flat_map(|s| s.queues.iter()).enumerate() {
            let queue = last_segment(url);
            if !allowed(&queues, queue) {
                problem(
                    format!("scaling.targets.{name}.sqs.queues[{i}]"),
                    format!(
                        "{queue} is not in ScaledQueueArns: alarm-scaler may not read its backlog"
                    ),
                );
            }
        }
    }

    let definitions = list(parameters, "JobTaskDefinitionArns");
    let clusters = list(parameters, "JobClusterArns");
    for (name, job) in config
        .jobs
        .iter()
        .filter(|_| given("JobTaskDefinitionArns"))
    {
        let path = format!("jobs.{name}");
        if definitions.is_empty() {
            problem(
                path,
                "batch-runner is not in the stack: JobTaskDefinitionArns is empty".into(),
            );
            continue;
        }
        let definition = resource(&job.task_definition)
            .trim_start_matches("task-definition/")
            .to_owned();
        let family = definition.split(':').next().unwrap_or_default();
        let runnable = definitions.iter().any(|arn| {
            let pattern = resource(arn).trim_start_matches("task-definition/");
            let (family_pattern, revision_pattern) =
                pattern.split_once(':').unwrap_or((pattern, "*"));
            glob_matches(family_pattern, family)
                && definition
                    .split_once(':')
                    .is_none_or(|(_, revision)| glob_matches(revision_pattern, revision))
        });
        if !runnable {
            problem(
                format!("{path}.task_definition"),
                format!(
                    "{definition} is not in JobTaskDefinitionArns: batch-runner may not run it"
                ),
            );
        }
        if !clusters.is_empty()
            && !allowed(
                &clusters,
                &format!("cluster/{}", last_segment(&job.cluster)),
            )
        {
            problem(
                format!("{path}.cluster"),
                format!(
                    "{} is not in JobClusterArns: batch-runner may not run tasks there",
                    job.cluster
                ),
            );
        }
    }
    problems
}

/// The notice of a configuration the stack's parameters do not allow everything of (warning):
/// what would fail silently or at run time, each with its path.
pub fn mismatch_notice(
    source: crate::domain::Source,
    versions: &str,
    problems: &[Problem],
) -> crate::notify::Notice {
    use crate::notify::{Notice, NoticeKind, Section};
    Notice {
        title: format!(
            "configuration {versions}: {} setting(s) the stack's parameters do not allow",
            problems.len()
        ),
        summary: "these parts of the configuration will not work until the stack is deployed \
                  with the parameters they need (or the configuration changes)"
            .into(),
        facts: vec![("Configuration".to_owned(), versions.to_owned())],
        sections: vec![
            Problem::section(problems),
            Section {
                heading: "What to do".into(),
                lines: vec![
                    "Check before deploying: task-triage check-config DIR --stack-parameters FILE"
                        .into(),
                ],
            },
        ],
        details: serde_json::json!({"configuration": versions, "problems": problems}),
        ..Notice::about_configuration(
            source,
            NoticeKind::ConfigMismatch,
            crate::domain::Severity::Warning,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(document: serde_json::Value) -> StackConfig {
        StackConfig::parse(&document.to_string()).unwrap()
    }

    fn parameters(pairs: &[(&str, &str)]) -> StackParameters {
        with_defaults(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn paths(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    const PAYMENTS: &str = "arn:aws:sns:eu-west-1:111122223333:payments";

    #[test]
    fn routing_needs_its_switches_topics_and_webhook_path() {
        let document = config(json!({"notify": {
            "webhooks": {"ops": {"kind": "slack", "url_ssm": "/elsewhere/ops"}},
            "routes": [
                {"tags": {"team": "payments"}, "topic": PAYMENTS},
                {"cluster": "shop", "mute": true, "windows": [{"days": ["sun"], "from": "01:00", "to": "04:00"}]},
                {"category": ["oom"], "webhook": "ops"}
            ],
            "route_by_tag": {"tag": "team", "topics": {"search": "arn:aws:sns:eu-west-1:111122223333:search"}}
        }}));
        let problems = cross_check(&document, &parameters(&[]));
        assert_eq!(
            paths(&problems),
            [
                "notify.route_by_tag",
                "notify.route_by_tag.topics.search",
                "notify.routes[0].tags",
                "notify.routes[0].topic",
                "notify.routes[1].windows",
                "notify.webhooks.ops.url_ssm"
            ]
        );
        let fine = parameters(&[
            ("RoutingByTags", "true"),
            ("MutingWindows", "true"),
            (
                "NotificationTopicArns",
                &format!("{PAYMENTS},arn:aws:sns:eu-west-1:111122223333:search"),
            ),
            ("WebhookParameterPath", "/elsewhere"),
        ]);
        assert_eq!(cross_check(&document, &fine), []);
    }

    #[test]
    fn scaling_needs_its_services_alarms_and_queues() {
        let document = config(json!({"scaling": {
            "alarms": {"orders-high": {"cluster": "shop", "service": "orders", "min": 0, "max": 5,
                "alarm_steps": [{"lower": 0, "adjustment": 1}]}},
            "targets": {"backlog": {"cluster": "shop", "service": "worker", "min": 0, "max": 5,
                "sqs": {"queues": ["https://sqs.eu-west-1.amazonaws.com/111122223333/jobs"]}, "target_per_task": 10}}
        }}));
        assert_eq!(
            paths(&cross_check(&document, &parameters(&[]))),
            [
                "scaling.alarms.orders-high",
                "scaling.targets.backlog",
                "scaling.targets.backlog.sqs.queues[0]"
            ]
        );
        let partly = parameters(&[(
            "ScaledServiceArns",
            "arn:aws:ecs:eu-west-1:111122223333:service/shop/orders",
        )]);
        assert_eq!(
            paths(&cross_check(&document, &partly)),
            [
                "scaling.targets.backlog.service",
                "scaling.alarms.orders-high",
                "scaling.targets.backlog.sqs.queues[0]"
            ]
        );
        let fine = parameters(&[
            (
                "ScaledServiceArns",
                "arn:aws:ecs:eu-west-1:111122223333:service/shop/*",
            ),
            ("ScaledAlarmNames", "orders-high"),
            ("ScaledQueueArns", "arn:aws:sqs:eu-west-1:111122223333:jobs"),
        ]);
        assert_eq!(cross_check(&document, &fine), []);
    }

    #[test]
    fn jobs_need_their_task_definitions_and_clusters() {
        let document = config(json!({"jobs": {
            "extract": {"cluster": "data", "task_definition": "extract:12"},
            "load": {"cluster": "arn:aws:ecs:eu-west-1:111122223333:cluster/other", "task_definition": "load"}
        }}));
        assert_eq!(
            paths(&cross_check(&document, &parameters(&[]))),
            ["jobs.extract", "jobs.load"]
        );
        let given = parameters(&[
            (
                "JobTaskDefinitionArns",
                "arn:aws:ecs:eu-west-1:111122223333:task-definition/extract:*",
            ),
            (
                "JobClusterArns",
                "arn:aws:ecs:eu-west-1:111122223333:cluster/data",
            ),
        ]);
        let problems = cross_check(&document, &given);
        assert_eq!(
            paths(&problems),
            ["jobs.load.task_definition", "jobs.load.cluster"]
        );
        assert!(problems[0]
            .problem
            .contains("load is not in JobTaskDefinitionArns"));
    }

    #[test]
    fn a_parameter_not_given_is_not_checked() {
        let document = config(json!({
            "notify": {"route_by_tag": {"tag": "team", "topics": {}}},
            "jobs": {"extract": {"cluster": "data", "task_definition": "extract:12"}}
        }));
        assert_eq!(cross_check(&document, &StackParameters::new()), []);
        let switches = [("RoutingByTags".to_owned(), "false".to_owned())].into();
        assert_eq!(
            paths(&cross_check(&document, &switches)),
            ["notify.route_by_tag"]
        );
    }

    #[test]
    fn each_function_checks_its_own_sections_with_what_it_was_given() {
        use crate::domain::Source;
        let document = config(json!({
            "notify": {"route_by_tag": {"tag": "team", "topics": {}}},
            "jobs": {"extract": {"cluster": "data", "task_definition": "extract:12"}}
        }));
        // What batch-runner is given: the switches and its own ARN lists.
        let given: StackParameters = [
            ("RoutingByTags", "false"),
            (
                "JobTaskDefinitionArns",
                "arn:aws:ecs:us-east-1:1:task-definition/load:*",
            ),
            ("JobClusterArns", "arn:aws:ecs:us-east-1:1:cluster/data"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(
            paths(&cross_check_for(Source::Batch, &document, &given)),
            ["jobs.extract.task_definition"]
        );
        assert_eq!(
            paths(&cross_check_for(Source::Triage, &document, &given)),
            ["notify.route_by_tag"]
        );
        assert_eq!(cross_check_for(Source::Scaler, &document, &given), []);
    }
}
