//! Tests of the classifier: every rule's example, the fixture events, exit codes, properties.

use super::*;
use crate::events::ecs::parse_task_state_change;
use proptest::prelude::*;

fn fixture(name: &str) -> TaskDetail {
    let path = format!(
        "{}/../../tests/fixtures/ecs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_task_state_change(&serde_json::from_str(&text).unwrap())
        .unwrap()
        .detail
}

fn stopped(reason: &str, code: Option<StopCode>) -> TaskDetail {
    TaskDetail {
        task_arn: Some(
            "arn:aws:ecs:us-east-1:111122223333:task/shop/0123"
                .parse()
                .unwrap(),
        ),
        cluster_arn: Some(
            "arn:aws:ecs:us-east-1:111122223333:cluster/shop"
                .parse()
                .unwrap(),
        ),
        group: Some("service:orders-api".into()),
        last_status: Some("STOPPED".into()),
        stopped_reason: Some(reason.into()),
        stop_code: code,
        ..TaskDetail::default()
    }
}

#[test]
fn every_rule_example_is_classified_by_its_own_rule_as_stopped_reason() {
    for rule in rules::REASON_RULES {
        let diagnosis = classify(&stopped(rule.example, None));
        assert_eq!(
            diagnosis.rule, rule.id,
            "stoppedReason example of {} went to {}",
            rule.id, diagnosis.rule
        );
        assert_eq!(diagnosis.category, rule.category);
    }
}

#[test]
fn every_rule_example_is_classified_by_its_own_rule_as_container_reason() {
    for rule in rules::REASON_RULES {
        let mut task = stopped(
            "Essential container in task exited",
            Some(StopCode::EssentialContainerExited),
        );
        task.containers = vec![Container {
            name: Some("app".into()),
            reason: Some(rule.example.into()),
            exit_code: Some(1),
            ..Container::default()
        }];
        let diagnosis = classify(&task);
        assert_eq!(
            diagnosis.rule, rule.id,
            "container reason example of {}",
            rule.id
        );
        assert_eq!(diagnosis.container.as_deref(), Some("app"));
    }
}

#[test]
fn rule_ids_are_unique_and_non_silent_rules_have_remediation() {
    let mut ids: Vec<_> = rules::REASON_RULES.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len());
    for rule in rules::REASON_RULES {
        let (notify, _) = rule.category.default_policy();
        assert_eq!(notify, !rule.remediation.is_empty(), "{}", rule.id);
    }
}

#[test]
fn matching_ignores_case_and_rewording_around_stable_phrases() {
    let diagnosis = classify(&stopped(
        "cannotpullcontainererror: ref pull has been retried 3 time(s): Not Found",
        None,
    ));
    assert_eq!(diagnosis.category, Category::ImagePull);
    let diagnosis = classify(&stopped(
        "Task failed ELB health checks in (target-group arn:…) after 3 attempts",
        None,
    ));
    assert_eq!(diagnosis.category, Category::HealthCheck);
}

#[test]
fn fixtures_classify_as_expected() {
    let expected = [
        (
            "service-oom",
            Category::Oom,
            Some("orders-api"),
            Some(137),
            true,
        ),
        (
            "service-oom-duplicate",
            Category::Oom,
            Some("orders-api"),
            Some(137),
            true,
        ),
        (
            "service-crash-exit1",
            Category::AppExit,
            Some("orders-api"),
            Some(1),
            true,
        ),
        (
            "service-deployment-scale-in",
            Category::Deployment,
            Some("orders-api"),
            Some(137),
            false,
        ),
        ("user-stopped", Category::UserStop, None, None, false),
        ("image-not-found", Category::ImagePull, None, None, true),
        ("secrets-denied", Category::Secrets, None, None, true),
        ("network-eni-timeout", Category::Network, None, None, true),
        (
            "elb-health-check",
            Category::HealthCheck,
            Some("orders-api"),
            Some(143),
            true,
        ),
        (
            "spot-termination-notice",
            Category::SpotInterruption,
            None,
            None,
            true,
        ),
        (
            "batch-succeeded",
            Category::Completed,
            Some("invoice-export"),
            Some(0),
            false,
        ),
        (
            "batch-failed",
            Category::AppExit,
            Some("invoice-export"),
            Some(3),
            true,
        ),
    ];
    for (name, category, container, exit_code, notify) in expected {
        let diagnosis = classify(&fixture(name));
        assert_eq!(diagnosis.category, category, "{name}: {diagnosis:?}");
        assert_eq!(diagnosis.container.as_deref(), container, "{name}");
        assert_eq!(diagnosis.exit_code, exit_code, "{name}");
        assert_eq!(diagnosis.notify, notify, "{name}");
        assert!(!diagnosis.evidence.is_empty(), "{name}");
    }
}

#[test]
fn exit_137_is_oom_only_with_an_out_of_memory_reason() {
    let mut task = stopped(
        "Essential container in task exited",
        Some(StopCode::EssentialContainerExited),
    );
    task.containers = vec![Container {
        name: Some("api".into()),
        exit_code: Some(137),
        ..Container::default()
    }];
    let diagnosis = classify(&task);
    assert_eq!(diagnosis.category, Category::AppExit);
    assert!(diagnosis.title.contains("SIGKILL"), "{}", diagnosis.title);

    task.containers[0].reason =
        Some("OutOfMemoryError: Container killed due to memory usage".into());
    assert_eq!(classify(&task).category, Category::Oom);
}

#[test]
fn the_exiting_container_is_preferred_over_those_ecs_stopped() {
    let mut task = stopped(
        "Essential container in task exited",
        Some(StopCode::EssentialContainerExited),
    );
    task.containers = vec![
        Container {
            name: Some("sidecar".into()),
            exit_code: Some(143),
            ..Container::default()
        },
        Container {
            name: Some("envoy".into()),
            exit_code: Some(137),
            ..Container::default()
        },
        Container {
            name: Some("api".into()),
            exit_code: Some(139),
            ..Container::default()
        },
    ];
    let diagnosis = classify(&task);
    assert_eq!(diagnosis.container.as_deref(), Some("api"));
    assert!(diagnosis.title.contains("SIGSEGV"));
}

#[test]
fn common_exit_codes_are_explained() {
    for (code, phrase) in [
        (1, "application error"),
        (2, "invalid arguments"),
        (126, "not executable"),
        (127, "not found"),
        (134, "SIGABRT"),
        (139, "SIGSEGV"),
        (143, "SIGTERM"),
        (130, "signal 2"),
        (42, "non-zero"),
    ] {
        let (meaning, remediation) = explain_exit_code(code);
        assert!(meaning.contains(phrase), "{code}: {meaning}");
        assert!(!remediation.is_empty());
    }
}

#[test]
fn a_user_reason_is_free_text_and_not_matched() {
    let diagnosis = classify(&stopped(
        "stopping for maintenance window",
        Some(StopCode::UserInitiated),
    ));
    assert_eq!(diagnosis.category, Category::UserStop);
    assert!(!diagnosis.notify);
}

#[test]
fn a_service_container_exiting_zero_is_an_app_exit() {
    let mut task = stopped(
        "Essential container in task exited",
        Some(StopCode::EssentialContainerExited),
    );
    task.containers = vec![Container {
        name: Some("api".into()),
        exit_code: Some(0),
        ..Container::default()
    }];
    assert_eq!(classify(&task).category, Category::AppExit);
    task.group = Some("family:nightly".into());
    assert_eq!(classify(&task).category, Category::Completed);
}

#[test]
fn unhealthy_container_without_reason_is_a_health_check_failure() {
    let mut task = stopped(
        "Task stopped by scheduler",
        Some(StopCode::ServiceSchedulerInitiated),
    );
    task.containers = vec![Container {
        name: Some("api".into()),
        health_status: Some("UNHEALTHY".into()),
        ..Container::default()
    }];
    assert_eq!(classify(&task).category, Category::HealthCheck);
}

#[test]
fn unrecognised_reasons_are_unknown_with_evidence() {
    let diagnosis = classify(&stopped(
        "The flux capacitor overheated",
        Some(StopCode::Other("NewCode".into())),
    ));
    assert_eq!(diagnosis.category, Category::Unknown);
    assert!(diagnosis.notify);
    assert!(diagnosis
        .evidence
        .iter()
        .any(|e| e.contains("flux capacitor")));
    assert!(diagnosis.evidence.iter().any(|e| e == "stopCode: NewCode"));
}

#[test]
fn stop_code_fallbacks() {
    assert_eq!(
        classify(&stopped("Something odd", Some(StopCode::TaskFailedToStart))).category,
        Category::StartFailure
    );
    assert_eq!(
        classify(&stopped("Something odd", Some(StopCode::SpotInterruption))).category,
        Category::SpotInterruption
    );
    assert_eq!(
        classify(&stopped(
            "Something odd",
            Some(StopCode::ServiceSchedulerInitiated)
        ))
        .category,
        Category::Unknown
    );
}

fn arb_container() -> impl Strategy<Value = Container> {
    (
        proptest::option::of("[a-z]{1,8}"),
        proptest::option::of(prop_oneof![
            Just(0i64),
            Just(1),
            Just(137),
            Just(143),
            any::<i64>()
        ]),
        proptest::option::of(prop_oneof![
            ".{0,40}",
            proptest::sample::select(
                rules::REASON_RULES
                    .iter()
                    .map(|r| r.example.to_owned())
                    .collect::<Vec<_>>()
            ),
        ]),
        proptest::option::of(prop_oneof![
            Just("HEALTHY".to_owned()),
            Just("UNHEALTHY".to_owned())
        ]),
    )
        .prop_map(|(name, exit_code, reason, health_status)| Container {
            name,
            exit_code,
            reason,
            health_status,
            ..Container::default()
        })
}

fn arb_task() -> impl Strategy<Value = TaskDetail> {
    (
        proptest::collection::vec(arb_container(), 0..4),
        proptest::option::of(".{0,60}"),
        proptest::option::of(prop_oneof![
            Just("EssentialContainerExited".to_owned()),
            Just("UserInitiated".to_owned()),
            Just("TaskFailedToStart".to_owned()),
            Just("ServiceSchedulerInitiated".to_owned()),
            Just("SpotInterruption".to_owned()),
            "[A-Za-z]{0,12}",
        ]),
        proptest::option::of(prop_oneof![
            Just("service:api".to_owned()),
            Just("family:job".to_owned()),
            ".{0,12}"
        ]),
    )
        .prop_map(
            |(containers, stopped_reason, stop_code, group)| TaskDetail {
                containers,
                stopped_reason,
                stop_code: stop_code.map(StopCode::from),
                group,
                task_arn: Some("arn:aws:ecs:eu-west-1:1:task/c/t".parse().unwrap()),
                ..TaskDetail::default()
            },
        )
}

proptest! {
    #[test]
    fn classify_is_total_and_consistent(task in arb_task()) {
        let diagnosis = classify(&task);
        let (notify, severity) = diagnosis.category.default_policy();
        prop_assert_eq!(diagnosis.notify, notify);
        prop_assert_eq!(diagnosis.severity, severity);
        prop_assert!(!diagnosis.title.is_empty());
        prop_assert!(!diagnosis.summary.is_empty());
        if let Some(name) = &diagnosis.container {
            prop_assert!(task.container(name).is_some());
        }
        // An OutOfMemory container reason always wins.
        if task.containers.iter().any(|c| c.reason.as_deref().is_some_and(|r| r.starts_with("OutOfMemoryError"))) {
            prop_assert_eq!(diagnosis.category, Category::Oom);
        }
    }

    #[test]
    fn case_does_not_change_the_category(task in arb_task()) {
        let mut upper = task.clone();
        upper.stopped_reason = upper.stopped_reason.map(|r| r.to_ascii_uppercase());
        for c in &mut upper.containers { c.reason = c.reason.as_ref().map(|r| r.to_ascii_uppercase()); }
        prop_assert_eq!(classify(&task).category, classify(&upper).category);
    }
}
