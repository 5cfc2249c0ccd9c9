//! Target policies: their configuration and the decision's rules, by example and by property
//! over random reading histories and bounds.

use proptest::prelude::*;

use super::*;
use crate::config::StackConfig;

const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/111122223333/orders";

fn policy(min: u32, max: u32) -> TargetPolicy {
    TargetPolicy {
        cluster: "shop".into(),
        service: "orders-worker".into(),
        min,
        max,
        sqs: Some(SqsSignal {
            queues: vec![QUEUE.into()],
            count_in_flight: false,
        }),
        metric: None,
        target_per_task: 50.0,
        activation: 0.0,
        scale_to_zero_after_s: 300,
        scale_in_stabilization_s: 300,
        max_step_out: None,
        max_step_in: None,
        fallback_after: 3,
        fallback: Fallback::Hold,
        dry_run: false,
    }
}

fn limits(p: &TargetPolicy) -> ServiceLimits {
    ServiceLimits {
        min: p.min,
        max: p.max,
        stabilization_s: p.scale_in_stabilization_s,
        max_step_out: p.max_step_out,
        max_step_in: p.max_step_in,
    }
}

fn part(name: &str, recommendation: u32) -> SignalPart {
    SignalPart {
        name: name.into(),
        kind: "sqs".into(),
        value: None,
        recommendation: Some(recommendation),
        why: String::new(),
    }
}

fn config_error(document: &str) -> String {
    match StackConfig::parse(document) {
        Err(crate::error::AutopilotError::InvalidConfig { field, .. }) => field,
        other => format!("{other:?}"),
    }
}

#[test]
fn a_target_is_read_with_its_defaults_and_refused_by_the_path_of_its_field() {
    let document = |fields: &str| {
        format!(
            r#"{{"scaling": {{"targets": {{"orders": {{"cluster": "shop", "service": "orders-worker",
                "min": 0, "max": 20, "target_per_task": 50, "sqs": {{"queues": ["{QUEUE}"]}}{fields}}}}}}}}}"#
        )
    };
    let config = StackConfig::parse(&document("")).unwrap();
    let orders = &config.scaling.targets["orders"];
    assert_eq!(
        (
            orders.activation,
            orders.scale_to_zero_after_s,
            orders.scale_in_stabilization_s,
            orders.fallback_after,
            orders.fallback
        ),
        (0.0, 300, 300, 3, Fallback::Hold)
    );
    let with_limits = StackConfig::parse(&document(
        r#", "max_step_out": "50%", "max_step_in": 2, "fallback": {"count": 4}"#,
    ))
    .unwrap();
    let orders = &with_limits.scaling.targets["orders"];
    assert_eq!(orders.max_step_out, Some(StepLimit::Percent(50.0)));
    assert_eq!(orders.max_step_in, Some(StepLimit::Tasks(2)));
    assert_eq!(orders.fallback, Fallback::Count(4));

    for (fields, field) in [
        (
            r#", "target_per_task": 0"#,
            "scaling.targets.orders.target_per_task",
        ),
        (
            r#", "max_step_in": "fast""#,
            "scaling.targets.orders.max_step_in",
        ),
        (
            r#", "max_step_out": 0"#,
            "scaling.targets.orders.max_step_out",
        ),
        (
            r#", "fallback": {"count": 40}"#,
            "scaling.targets.orders.fallback",
        ),
        (
            r#", "scale_in_stabilization_s": 7200"#,
            "scaling.targets.orders.scale_in_stabilization_s",
        ),
        (
            r#", "metric": {"namespace": "AWS/SQS", "metric_name": "X"}"#,
            "scaling.targets.orders.metric",
        ),
        (r#", "activation": -1"#, "scaling.targets.orders.activation"),
    ] {
        let written = document(fields).replace(r#""target_per_task": 50, "#, "");
        let written = if fields.contains("target_per_task") {
            written
        } else {
            written.replace(r#""min": 0"#, r#""min": 0, "target_per_task": 50"#)
        };
        assert_eq!(config_error(&written), field, "{fields}");
    }
    let bad_queue = document("").replace(QUEUE, "https://example.com/orders");
    assert_eq!(
        config_error(&bad_queue),
        "scaling.targets.orders.sqs.queues[0]"
    );
    let no_signal = document("").replace(&format!(r#", "sqs": {{"queues": ["{QUEUE}"]}}"#), "");
    assert_eq!(config_error(&no_signal), "scaling.targets.orders.sqs");
}

#[test]
fn a_queue_url_names_its_region_account_and_name() {
    assert_eq!(
        queue_place(QUEUE),
        Some(QueuePlace {
            region: "us-east-1",
            account: "111122223333",
            name: "orders"
        })
    );
    for bad in [
        "https://sqs.evil.example/111122223333/orders",
        "https://sqs.us-east-1.amazonaws.com/1111/orders",
        "http://sqs.us-east-1.amazonaws.com/111122223333/orders",
        "https://sqs.us-east-1.amazonaws.com/111122223333/",
        "https://sqs.us-east-1.amazonaws.com/111122223333/a/b",
    ] {
        assert_eq!(queue_place(bad), None, "{bad}");
    }
}

#[test]
fn the_issues_example_250_messages_at_50_per_task_is_5_tasks_in_one_tick() {
    let p = policy(0, 20);
    let (recommended, why) = p.recommend(250.0, 0, 0, None, 1_000);
    assert_eq!(recommended, 5, "{why}");
    let decision = decide(
        limits(&p),
        &[part("orders", 5)],
        0,
        &Default::default(),
        1_000,
    );
    assert_eq!((decision.desired_from, decision.desired_to), (0, 5));
    assert_eq!(decision.decided_by.as_deref(), Some("orders"));
}

#[test]
fn activation_and_the_way_to_zero() {
    let mut p = policy(0, 20);
    p.activation = 10.0;
    // At zero, a backlog at or below activation stays at zero; above it leaves.
    assert_eq!(p.recommend(10.0, 0, 0, None, 0).0, 0);
    assert_eq!(p.recommend(11.0, 0, 0, None, 0).0, 1);
    // Running, a backlog below activation is still drained.
    assert_eq!(p.recommend(3.0, 1, 1, None, 0).0, 1);
    // Empty: one task until the backlog has been 0 for scale_to_zero_after_s.
    assert_eq!(p.recommend(0.0, 1, 1, Some(1_000), 1_299).0, 1);
    assert_eq!(p.recommend(0.0, 1, 1, Some(1_000), 1_300).0, 0);
    p.scale_to_zero_after_s = 0;
    assert_eq!(p.recommend(0.0, 3, 3, Some(1_000), 1_000).0, 0);
}

#[test]
fn a_per_task_metric_is_an_average_over_the_running_tasks() {
    let mut p = policy(0, 20);
    p.sqs = None;
    p.metric = Some(MetricSignal {
        namespace: Some("AWS/ECS".into()),
        metric_name: Some("CPUUtilization".into()),
        dimensions: Default::default(),
        statistic: "Average".into(),
        expression: None,
        period_s: 60,
        value_is: ValueIs::PerTask,
        account: None,
    });
    p.target_per_task = 60.0;
    // 4 tasks at 90 % → 6 tasks at 60 %.
    assert_eq!(p.recommend(90.0, 4, 4, None, 0).0, 6);
}

#[test]
fn scale_in_waits_for_the_stabilisation_window_and_a_fresh_history_starts_from_current() {
    let p = policy(0, 20);
    let l = limits(&p);
    // A fresh state: the recommendation of 2 does not scale 8 in at once.
    let d = decide(l, &[part("orders", 2)], 8, &Default::default(), 0);
    assert_eq!(d.desired_to, 8);
    assert_eq!(d.bounded_by, Some(BoundedBy::Stabilization));
    // Still inside the window.
    let d = decide(l, &[part("orders", 2)], 8, &d.history, 299);
    assert_eq!(d.desired_to, 8);
    // The window has passed: down to the highest recommendation since (2).
    let d = decide(l, &[part("orders", 2)], 8, &d.history, 301);
    assert_eq!(d.desired_to, 2);
}

#[test]
fn step_limits_in_tasks_and_percent_and_bounds_past_them() {
    let mut p = policy(0, 100);
    p.max_step_out = Some(StepLimit::Percent(50.0));
    p.max_step_in = Some(StepLimit::Tasks(1));
    p.scale_in_stabilization_s = 0;
    let l = limits(&p);
    // 50 % of 3 rounds away from zero: 2 tasks.
    let d = decide(l, &[part("q", 40)], 3, &Default::default(), 0);
    assert_eq!(
        (d.desired_to, d.bounded_by),
        (5, Some(BoundedBy::MaxStepOut))
    );
    // From zero, a percent still moves one task.
    let d = decide(l, &[part("q", 40)], 0, &Default::default(), 0);
    assert_eq!(d.desired_to, 1);
    let d = decide(l, &[part("q", 0)], 5, &Default::default(), 0);
    assert_eq!(
        (d.desired_to, d.bounded_by),
        (4, Some(BoundedBy::MaxStepIn))
    );
    // A desired count under min is corrected at once, past the step limit.
    let mut raised = l;
    raised.min = 10;
    let d = decide(raised, &[part("q", 0)], 2, &Default::default(), 0);
    assert_eq!((d.desired_to, d.bounded_by), (10, Some(BoundedBy::Min)));
}

#[test]
fn the_largest_signal_decides_and_none_is_overruled_downward() {
    let p = policy(0, 20);
    let d = decide(
        limits(&p),
        &[part("queue", 3), part("cpu", 7)],
        4,
        &Default::default(),
        0,
    );
    assert_eq!(d.desired_to, 7);
    assert_eq!(d.decided_by.as_deref(), Some("cpu"));
    let held = SignalPart {
        recommendation: None,
        ..part("queue", 0)
    };
    let d = decide(limits(&p), &[held], 4, &Default::default(), 0);
    assert_eq!((d.desired_to, d.decided_by), (4, None));
}

#[test]
fn the_history_stays_bounded_and_falling() {
    let mut history = RecommendationHistory::default();
    for (i, r) in (0..200u32).rev().enumerate() {
        history = history.with(i as i64, r, 200, 3600);
        assert!(history.0.len() <= HISTORY_LIMIT);
        assert!(history
            .0
            .windows(2)
            .all(|w| w[0].1 > w[1].1 && w[0].0 <= w[1].0));
    }
}

fn arbitrary_limits() -> impl Strategy<Value = ServiceLimits> {
    (
        0u32..20,
        0u32..40,
        prop_oneof![Just(0u64), 30u64..600],
        proptest::option::of(prop_oneof![
            (1u32..5).prop_map(StepLimit::Tasks),
            (1u32..200).prop_map(|p| StepLimit::Percent(f64::from(p)))
        ]),
        proptest::option::of(prop_oneof![
            (1u32..5).prop_map(StepLimit::Tasks),
            (1u32..200).prop_map(|p| StepLimit::Percent(f64::from(p)))
        ]),
    )
        .prop_map(|(min, span, stabilization_s, out, into)| ServiceLimits {
            min,
            max: min + span,
            stabilization_s,
            max_step_out: out,
            max_step_in: into,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Over random histories of readings (two signals, random gaps between ticks): the desired
    /// count stays in bounds once corrected; a scale-in never goes below any recommendation of
    /// the stabilisation window; no tick scales in while a signal recommends at least the
    /// current count.
    #[test]
    fn random_reading_histories_hold_the_rules(
        limits in arbitrary_limits(),
        start in 0u32..50,
        ticks in proptest::collection::vec((1i64..200, 0u32..60, 0u32..60), 1..60),
    ) {
        let mut current = start;
        let mut history = RecommendationHistory::default();
        let mut now = 1_000i64;
        let mut made: Vec<(i64, u32)> = Vec::new();
        for (gap, a, b) in ticks {
            now += gap;
            let d = decide(limits, &[part("a", a), part("b", b)], current, &history, now);
            let to = d.desired_to;
            prop_assert!(to >= limits.min && to <= limits.max, "{to} outside [{}, {}]", limits.min, limits.max);
            made.push((now, a.max(b)));
            if to < current {
                prop_assert!(
                    a.max(b) < current || current > limits.max,
                    "scaled in {current} -> {to} while a signal recommends {}", a.max(b)
                );
                let window_high = made
                    .iter()
                    .filter(|(at, _)| *at > now - limits.stabilization_s as i64 || *at == now)
                    .map(|(_, r)| *r)
                    .max()
                    .unwrap_or(0);
                // Step limits only hold a scale-in back, so the floor holds with them too.
                let floor = window_high.min(current).clamp(limits.min, limits.max);
                prop_assert!(to >= floor, "scaled in to {to} below {floor}, the window's highest");
            }
            history = d.history;
            current = to;
        }
    }

    /// A service at zero leaves it only when a value is above activation (or min asks).
    #[test]
    fn zero_is_left_only_above_activation(
        activation in 0u32..100,
        value in 0u32..200,
        min in prop_oneof![Just(0u32), 1u32..3],
    ) {
        let mut p = policy(min, 20);
        p.activation = f64::from(activation);
        let (recommended, _) = p.recommend(f64::from(value), 0, 0, None, 0);
        let d = decide(limits(&p), &[part("q", recommended)], 0, &Default::default(), 0);
        if value <= activation && min == 0 {
            prop_assert_eq!(d.desired_to, 0);
        }
        if d.desired_to > 0 && min == 0 {
            prop_assert!(value > activation);
        }
    }
}

fn targets(entries: &[(&str, TargetPolicy)]) -> TargetPolicies {
    entries
        .iter()
        .map(|(name, p)| ((*name).to_owned(), p.clone()))
        .collect()
}

#[test]
fn targets_on_one_service_meet_in_their_bounds_or_are_refused_naming_both() {
    let mut cpu = policy(2, 30);
    cpu.max_step_out = Some(StepLimit::Percent(100.0));
    cpu.scale_in_stabilization_s = 600;
    let mut queue = policy(0, 20);
    queue.max_step_out = Some(StepLimit::Tasks(3));
    let config = targets(&[("cpu", cpu.clone()), ("queue", queue.clone())]);
    let services = by_service(&config).unwrap();
    let [orders] = &services[..] else {
        panic!("one service: {services:?}")
    };
    let limits = orders.limits_at(10);
    assert_eq!(
        (limits.min, limits.max, limits.stabilization_s),
        (2, 20, 600)
    );
    // At 10 tasks, 100 % is 10 and 3 is stricter; at 2 tasks, 100 % (2) is.
    assert_eq!(limits.max_step_out, Some(StepLimit::Tasks(3)));
    assert_eq!(orders.limits_at(2).max_step_out, Some(StepLimit::Tasks(2)));
    assert_eq!(limits.max_step_in, None);

    let mut apart = policy(25, 40);
    apart.cluster = "shop".into();
    let error = by_service(&targets(&[("big", apart), ("queue", queue)])).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("scaling.targets.big.min"), "{text}");
    assert!(text.contains("scaling.targets.queue"), "{text}");
}

#[test]
fn a_failing_read_holds_then_falls_back_told_once_and_its_recovery_too() {
    let mut p = policy(0, 20);
    p.fallback_after = 2;
    p.fallback = Fallback::Count(4);
    let config = targets(&[("orders", p)]);
    let services = by_service(&config).unwrap();
    let service = &services[0];
    let mut memory = TargetMemory::default();
    let failed: BTreeMap<String, Reading> =
        [("orders".to_owned(), Reading::Failed("AccessDenied".into()))].into();
    // First failure: nothing recommended (held), nothing told.
    let (parts, events) = parts_of(service, &failed, 3, 3, &mut memory, 0);
    assert_eq!((parts[0].recommendation, events.len()), (None, 0));
    // Second: the fallback applies, told once.
    let (parts, events) = parts_of(service, &failed, 3, 3, &mut memory, 60);
    assert_eq!(parts[0].recommendation, Some(4));
    assert_eq!(
        events,
        [ReadingEvent::FallingBack {
            target: "orders".into(),
            reason: "AccessDenied".into()
        }]
    );
    // Third: still falling back, not told again.
    let (parts, events) = parts_of(service, &failed, 3, 3, &mut memory, 120);
    assert_eq!((parts[0].recommendation, events.len()), (Some(4), 0));
    // A value again: recovered, told once; the count is gone from the memory.
    let read: BTreeMap<String, Reading> = [("orders".to_owned(), Reading::Value(250.0))].into();
    let (parts, events) = parts_of(service, &read, 3, 3, &mut memory, 180);
    assert_eq!(parts[0].recommendation, Some(5));
    assert_eq!(
        events,
        [ReadingEvent::Recovered {
            target: "orders".into()
        }]
    );
    assert!(memory.failures.is_empty());
}

#[test]
fn zero_since_is_kept_while_the_value_is_zero_and_cleared_by_work() {
    let p = policy(0, 20);
    let config = targets(&[("orders", p)]);
    let services = by_service(&config).unwrap();
    let mut memory = TargetMemory::default();
    let at = |value: f64| -> BTreeMap<String, Reading> {
        [("orders".to_owned(), Reading::Value(value))].into()
    };
    let (parts, _) = parts_of(&services[0], &at(0.0), 2, 2, &mut memory, 1_000);
    assert_eq!(parts[0].recommendation, Some(1), "{}", parts[0].why);
    let (parts, _) = parts_of(&services[0], &at(0.0), 1, 1, &mut memory, 1_300);
    assert_eq!(parts[0].recommendation, Some(0), "{}", parts[0].why);
    assert_eq!(memory.zero_since["orders"], 1_000);
    let (_, _) = parts_of(&services[0], &at(12.0), 0, 0, &mut memory, 1_400);
    assert!(memory.zero_since.is_empty());
}

#[test]
fn targets_of_one_service_whose_bounds_do_not_meet_fail_the_configuration() {
    let document = format!(
        r#"{{"scaling": {{"targets": {{
            "a": {{"cluster": "shop", "service": "w", "min": 5, "max": 9, "target_per_task": 1, "sqs": {{"queues": ["{QUEUE}"]}}}},
            "b": {{"cluster": "shop", "service": "w", "min": 0, "max": 3, "target_per_task": 1, "sqs": {{"queues": ["{QUEUE}"]}}}}
        }}}}}}"#
    );
    assert_eq!(config_error(&document), "scaling.targets.a.min");
}
