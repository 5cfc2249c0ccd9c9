//! Tests of the scaling arithmetic and safety rules: examples for each rule and property tests
//! (100 000 cases) for bounds, monotonicity and step selection.

use proptest::prelude::*;

use super::*;
use crate::config::StackConfig;
use crate::error::AutopilotError;

fn policy() -> ScalingPolicy {
    serde_json::from_value(serde_json::json!({
        "cluster": "shop", "service": "orders-worker", "min": 0, "max": 10,
        "alarm_steps": [
            {"lower": 0, "upper": 100, "adjustment": 1},
            {"lower": 100, "upper": 500, "adjustment": 3},
            {"lower": 500, "adjustment": 5}
        ],
        "ok_steps": [{"upper": 0, "adjustment": -1}],
        "repeat_while_alarm": true
    }))
    .unwrap()
}

fn input(policy: &ScalingPolicy, state: AlarmState, desired: u32) -> ScalingInput<'_> {
    ScalingInput {
        policy,
        state,
        trigger: Trigger::Transition,
        metric_value: Some(412.0),
        threshold: Some(100.0),
        service: ServiceObservation {
            desired,
            running: desired,
            deployment_in_progress: false,
        },
        target_bounds: None,
        memory: ScalingMemory::default(),
        now: 1_000_000,
    }
}

#[test]
fn alarm_takes_the_step_its_delta_falls_in() {
    let p = policy();
    let d = decide(&input(&p, AlarmState::Alarm, 2));
    assert_eq!((d.action, d.from, d.to), (Action::ScaleOut, 2, 5));
    assert_eq!(d.step.unwrap().index, 1);
    assert_eq!(d.step.unwrap().metric_delta, Some(312.0));
    assert!(d.reason.contains("step 1"), "{}", d.reason);
}

#[test]
fn scale_from_zero_works_with_and_without_a_value() {
    let p = policy();
    let d = decide(&input(&p, AlarmState::Alarm, 0));
    assert_eq!((d.action, d.to), (Action::ScaleOut, 3));
    let mut no_value = input(&p, AlarmState::Alarm, 0);
    no_value.metric_value = None;
    let d = decide(&no_value);
    assert_eq!((d.action, d.to), (Action::ScaleOut, 1));
    assert!(d.step.unwrap().assumed_at_threshold);
    assert!(d.reason.contains("no metric value"), "{}", d.reason);
}

#[test]
fn percent_from_zero_starts_one_task() {
    assert_eq!(apply_adjustment(AdjustmentType::Percent, 50, 0, None), 1);
    assert_eq!(apply_adjustment(AdjustmentType::Percent, 50, 1, None), 2);
    assert_eq!(apply_adjustment(AdjustmentType::Percent, 50, 5, None), 7);
    assert_eq!(apply_adjustment(AdjustmentType::Percent, 50, 5, Some(4)), 9);
    assert_eq!(apply_adjustment(AdjustmentType::Percent, -50, 5, None), 3);
    assert_eq!(apply_adjustment(AdjustmentType::Percent, -10, 3, None), 2);
    assert_eq!(
        apply_adjustment(AdjustmentType::Percent, -10, 3, Some(2)),
        1
    );
    assert_eq!(apply_adjustment(AdjustmentType::Exact, 7, 3, None), 7);
    assert_eq!(apply_adjustment(AdjustmentType::Change, -2, 3, None), 1);
}

#[test]
fn clamps_to_the_policy_and_scalable_target_bounds() {
    let p = policy();
    let mut i = input(&p, AlarmState::Alarm, 8);
    let d = decide(&i);
    assert_eq!((d.to, d.clamped_by), (10, Some(ClampedBy::PolicyMax)));
    i.target_bounds = Some(TargetBounds { min: 1, max: 9 });
    let d = decide(&i);
    assert_eq!(
        (d.to, d.clamped_by),
        (9, Some(ClampedBy::ScalableTargetMax))
    );
    i.service.desired = 9;
    let d = decide(&i);
    assert_eq!((d.action, d.refusal), (Action::None, Some(Refusal::AtMax)));
    assert!(d.reason.contains("at max (9"), "{}", d.reason);
    assert!(d.refusal.unwrap().worth_notifying());
    i.target_bounds = Some(TargetBounds { min: 11, max: 20 });
    assert_eq!(decide(&i).refusal, Some(Refusal::BoundsConflict));
}

#[test]
fn insufficient_data_never_scales() {
    let p = policy();
    let d = decide(&input(&p, AlarmState::InsufficientData, 3));
    assert_eq!(
        (d.action, d.refusal),
        (Action::None, Some(Refusal::InsufficientData))
    );
}

#[test]
fn ok_scales_in_only_with_ok_steps_and_not_during_a_deployment() {
    let mut p = policy();
    let mut i = input(&p, AlarmState::Ok, 4);
    i.metric_value = Some(12.0);
    let d = decide(&i);
    assert_eq!((d.action, d.to), (Action::ScaleIn, 3));
    i.service.deployment_in_progress = true;
    assert_eq!(decide(&i).refusal, Some(Refusal::DeploymentInProgress));
    p.ok_steps.clear();
    let mut i = input(&p, AlarmState::Ok, 4);
    i.metric_value = Some(12.0);
    assert_eq!(decide(&i).refusal, Some(Refusal::NoOkSteps));
}

#[test]
fn ok_without_a_value_uses_the_step_ending_at_the_threshold() {
    let mut p = policy();
    p.ok_steps = vec![
        Step {
            lower: None,
            upper: Some(-50.0),
            adjustment: -3,
        },
        Step {
            lower: Some(-50.0),
            upper: Some(0.0),
            adjustment: -1,
        },
    ];
    let mut i = input(&p, AlarmState::Ok, 6);
    i.metric_value = None;
    assert_eq!(decide(&i).to, 5);
    i.metric_value = Some(10.0);
    assert_eq!(decide(&i).to, 3, "delta −90 takes the open step");
}

#[test]
fn cooldowns_per_direction() {
    let p = policy();
    let mut i = input(&p, AlarmState::Alarm, 2);
    i.memory.last_scale_out_at = Some(i.now - 30);
    let d = decide(&i);
    assert_eq!(d.refusal, Some(Refusal::Cooldown));
    assert!(d.reason.contains("30 s left"), "{}", d.reason);
    // A scale-out may interrupt a scale-in cooldown …
    i.memory = ScalingMemory {
        last_scale_out_at: None,
        last_scale_in_at: Some(i.now - 10),
        ..Default::default()
    };
    assert_eq!(decide(&i).action, Action::ScaleOut);
    // … but a scale-in may not interrupt a scale-out cooldown.
    let mut i = input(&p, AlarmState::Ok, 4);
    i.metric_value = Some(12.0);
    i.memory.last_scale_out_at = Some(i.now - 30);
    assert_eq!(decide(&i).refusal, Some(Refusal::Cooldown));
    i.memory = ScalingMemory {
        last_scale_out_at: None,
        last_scale_in_at: Some(i.now - 299),
        ..Default::default()
    };
    assert_eq!(decide(&i).refusal, Some(Refusal::Cooldown));
    i.memory.last_scale_in_at = Some(i.now - 300);
    assert_eq!(decide(&i).action, Action::ScaleIn);
}

#[test]
fn ticks_repeat_only_alarm_steps_and_wait_for_capacity() {
    let mut p = policy();
    let mut i = input(&p, AlarmState::Alarm, 4);
    i.trigger = Trigger::Tick;
    i.memory.last_scale_out_at = Some(i.now - 90);
    assert_eq!(decide(&i).action, Action::ScaleOut);
    i.service.running = 2;
    assert_eq!(decide(&i).refusal, Some(Refusal::AwaitingCapacity));
    i.memory.last_scale_out_at = Some(i.now - 120);
    assert_eq!(
        decide(&i).action,
        Action::ScaleOut,
        "two cooldowns have passed"
    );
    i.state = AlarmState::Ok;
    assert_eq!(decide(&i).refusal, Some(Refusal::NotInAlarm));
    p.repeat_while_alarm = false;
    let mut i = input(&p, AlarmState::Alarm, 4);
    i.trigger = Trigger::Tick;
    assert_eq!(decide(&i).refusal, Some(Refusal::RepeatDisabled));
}

#[test]
fn exact_never_moves_against_the_direction() {
    let mut p = policy();
    p.adjustment_type = AdjustmentType::Exact;
    p.alarm_steps = vec![Step {
        lower: Some(0.0),
        upper: None,
        adjustment: 5,
    }];
    p.ok_steps = vec![Step {
        lower: None,
        upper: Some(0.0),
        adjustment: 6,
    }];
    let d = decide(&input(&p, AlarmState::Alarm, 8));
    assert_eq!((d.action, d.to), (Action::None, 8));
    let mut i = input(&p, AlarmState::Ok, 3);
    i.metric_value = Some(1.0);
    assert_eq!(decide(&i).action, Action::None);
}

#[test]
fn no_step_covers_a_delta_below_the_first_step() {
    let p = policy();
    let mut i = input(&p, AlarmState::Alarm, 2);
    i.metric_value = Some(50.0);
    assert_eq!(decide(&i).refusal, Some(Refusal::NoStepCovers));
}

fn config_error(document: serde_json::Value) -> (String, String) {
    match StackConfig::parse(&document.to_string()) {
        Err(AutopilotError::InvalidConfig { field, problem }) => (field, problem),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn bad_policies_name_the_alarm_and_field() {
    let base = serde_json::to_value(policy()).unwrap();
    let with = |patch: serde_json::Value| {
        let mut p = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            p[k] = v.clone();
        }
        serde_json::json!({"scaling": {"alarms": {"orders-backlog": p}}})
    };
    let cases = [
        (
            serde_json::json!({"min": 11}),
            "scaling.alarms.orders-backlog.min",
        ),
        (
            serde_json::json!({"alarm_steps": [{"lower": 0, "upper": 100, "adjustment": 1}, {"lower": 50, "adjustment": 2}]}),
            "scaling.alarms.orders-backlog.alarm_steps[1].lower",
        ),
        (
            serde_json::json!({"alarm_steps": [{"lower": 0, "upper": 100, "adjustment": 1}, {"lower": 150, "adjustment": 2}]}),
            "scaling.alarms.orders-backlog.alarm_steps[1].lower",
        ),
        (
            serde_json::json!({"alarm_steps": [{"lower": 0, "adjustment": -1}]}),
            "scaling.alarms.orders-backlog.alarm_steps[0].adjustment",
        ),
        (
            serde_json::json!({"ok_steps": [{"upper": 0, "adjustment": 1}]}),
            "scaling.alarms.orders-backlog.ok_steps[0].adjustment",
        ),
        (
            serde_json::json!({"alarm_steps": []}),
            "scaling.alarms.orders-backlog.alarm_steps",
        ),
        (
            serde_json::json!({"cluster": null}),
            "scaling.alarms.orders-backlog.cluster",
        ),
        (
            serde_json::json!({"min_adjustment_magnitude": 2}),
            "scaling.alarms.orders-backlog.min_adjustment_magnitude",
        ),
        (
            serde_json::json!({"adjustment_type": "double"}),
            "scaling.alarms.orders-backlog.adjustment_type",
        ),
        (
            serde_json::json!({"cooldown": 5}),
            "scaling.alarms.orders-backlog.cooldown",
        ),
        (
            serde_json::json!({"scale_in_cooldown_s": 100000}),
            "scaling.alarms.orders-backlog.scale_in_cooldown_s",
        ),
    ];
    for (patch, field) in cases {
        let (got, problem) = config_error(with(patch.clone()));
        assert_eq!(got, field, "patch {patch}: {problem}");
    }
}

#[test]
fn a_policy_in_the_earlier_shape_is_refused_naming_its_new_place() {
    let earlier = r#"{"scaling": {"cpu-high": {"cluster": "shop", "service": "orders-worker", "min": 1, "max": 4, "alarm_steps": [{"lower": 0, "adjustment": 1}]}}}"#;
    match StackConfig::parse(earlier) {
        Err(AutopilotError::InvalidConfig { field, problem }) => {
            assert_eq!(field, "scaling.cpu-high");
            assert!(
                problem.contains("move `cpu-high` to scaling.alarms.cpu-high"),
                "{problem}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A field inside the new place is still named by its whole path.
    let bad = r#"{"scaling": {"alarms": {"cpu-high": {"cluster": "shop", "service": "orders-worker", "min": "one", "max": 4, "alarm_steps": []}}}}"#;
    match StackConfig::parse(bad) {
        Err(AutopilotError::InvalidConfig { field, .. }) => {
            assert_eq!(field, "scaling.alarms.cpu-high.min")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults_apply() {
    let config = StackConfig::parse(
        r#"{"scaling": {"alarms": {"cpu-high": {"cluster": "shop", "service": "orders-worker", "min": 1, "max": 4, "alarm_steps": [{"lower": 0, "adjustment": 1}]}}}}"#,
    )
    .unwrap();
    let p = &config.scaling.alarms["cpu-high"];
    assert_eq!((p.scale_out_cooldown_s, p.scale_in_cooldown_s), (60, 300));
    assert_eq!(p.adjustment_type, AdjustmentType::Change);
    assert!(!p.repeat_while_alarm && !p.dry_run);
    assert_eq!(
        (p.cluster.as_str(), p.service.as_str()),
        ("shop", "orders-worker")
    );
}

/// A valid random policy: contiguous steps from a random start.
fn arb_policy() -> impl Strategy<Value = ScalingPolicy> {
    (
        0u32..20,
        0u32..30,
        prop::sample::select(vec![
            AdjustmentType::Change,
            AdjustmentType::Percent,
            AdjustmentType::Exact,
        ]),
        prop::collection::vec((1u32..200, 1i64..20), 1..5),
        prop::collection::vec((1u32..200, 1i64..20), 0..4),
        prop::option::of(1u32..5),
        any::<bool>(),
        (0u64..2_000, 0u64..2_000),
    )
        .prop_map(
            |(min, span, kind, out, inn, magnitude, open_first, (out_cooldown, in_cooldown))| {
                let mut lower = if open_first { None } else { Some(0.0) };
                let mut alarm_steps = Vec::new();
                for (i, (width, adjustment)) in out.iter().enumerate() {
                    let start = lower.unwrap_or(0.0);
                    let upper = (i + 1 < out.len()).then(|| start + f64::from(*width));
                    alarm_steps.push(Step {
                        lower,
                        upper,
                        adjustment: *adjustment,
                    });
                    lower = upper;
                }
                let mut upper = Some(0.0);
                let mut ok_steps = Vec::new();
                for (i, (width, adjustment)) in inn.iter().enumerate() {
                    let end = upper.unwrap_or(0.0);
                    let lower = (i + 1 < inn.len()).then(|| end - f64::from(*width));
                    let adjustment = if kind == AdjustmentType::Exact {
                        *adjustment
                    } else {
                        -adjustment
                    };
                    ok_steps.push(Step {
                        lower,
                        upper,
                        adjustment,
                    });
                    upper = lower;
                }
                ok_steps.reverse();
                ScalingPolicy {
                    cluster: "shop".into(),
                    service: "orders-worker".into(),
                    alarm_arn: None,
                    min,
                    max: min + span,
                    alarm_steps,
                    ok_steps,
                    adjustment_type: kind,
                    min_adjustment_magnitude: magnitude.filter(|_| kind == AdjustmentType::Percent),
                    scale_out_cooldown_s: out_cooldown,
                    scale_in_cooldown_s: in_cooldown,
                    repeat_while_alarm: true,
                    dry_run: false,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100_000))]

    /// Bounds and monotonicity over random valid policies, states and observations.
    #[test]
    fn decisions_respect_bounds_and_direction(
        policy in arb_policy(),
        state in prop::sample::select(vec![AlarmState::Alarm, AlarmState::Ok, AlarmState::InsufficientData]),
        tick in any::<bool>(),
        desired in 0u32..60,
        running in 0u32..60,
        deploying in any::<bool>(),
        value in prop::option::of(-1000.0f64..1000.0),
        threshold in -500.0f64..500.0,
        target in prop::option::of((0u32..30, 0u32..40)),
        since_out in prop::option::of(0i64..3000),
        since_in in prop::option::of(0i64..3000),
    ) {
        prop_assert!(policy.validate("scaling.alarms.p").is_ok(), "generator made an invalid policy");
        let now = 10_000;
        let input = ScalingInput {
            policy: &policy,
            state,
            trigger: if tick { Trigger::Tick } else { Trigger::Transition },
            metric_value: value.map(|v| v + threshold),
            threshold: Some(threshold),
            service: ServiceObservation { desired, running, deployment_in_progress: deploying },
            target_bounds: target.map(|(min, max)| TargetBounds { min, max }),
            memory: ScalingMemory {
                last_scale_out_at: since_out.map(|s| now - s),
                last_scale_in_at: since_in.map(|s| now - s),
                ..Default::default()
            },
            now,
        };
        let d = decide(&input);
        prop_assert_eq!(d.from, desired);
        let (min, _, max, _) = effective_bounds(&policy, input.target_bounds);
        match d.action {
            Action::None => prop_assert_eq!(d.to, desired),
            Action::Ignored => prop_assert!(false, "a decision never ignores"),
            Action::ScaleOut => {
                prop_assert!(d.to > desired);
                prop_assert!(d.to >= min && d.to <= max, "{} outside [{min}, {max}]", d.to);
                prop_assert_eq!(state, AlarmState::Alarm);
                prop_assert!(since_out.is_none_or(|s| s >= policy.scale_out_cooldown_s as i64));
            }
            Action::ScaleIn => {
                prop_assert!(d.to < desired);
                prop_assert!(d.to >= min && d.to <= max, "{} outside [{min}, {max}]", d.to);
                prop_assert_eq!(state, AlarmState::Ok);
                prop_assert!(!deploying && !tick);
                prop_assert!(since_out.is_none_or(|s| s >= policy.scale_out_cooldown_s as i64));
                prop_assert!(since_in.is_none_or(|s| s >= policy.scale_in_cooldown_s as i64));
            }
        }
        if state == AlarmState::InsufficientData {
            prop_assert_eq!(d.action, Action::None);
        }
    }

    /// Exactly one step covers any delta inside a policy's contiguous range, and it is the one
    /// whose bounds hold the delta.
    #[test]
    fn step_selection_is_unique(policy in arb_policy(), delta in -1000.0f64..1000.0) {
        let steps = &policy.alarm_steps;
        let covering = steps.iter().filter(|s| s.contains(delta, delta < 0.0)).count();
        prop_assert!(covering <= 1);
        if let Some((_, step)) = select_step(steps, Some(delta), true) {
            prop_assert!(step.lower.is_none_or(|l| l <= delta));
            prop_assert!(step.upper.is_none_or(|u| u >= delta));
        } else {
            let first = steps[0].lower.unwrap_or(f64::NEG_INFINITY);
            prop_assert!(delta <= first, "delta {delta} above the first lower bound {first} is uncovered");
        }
    }

    /// A larger metric value never picks a smaller scale-out adjustment when adjustments grow.
    #[test]
    fn larger_breach_never_scales_less(a in 0.0f64..1000.0, b in 0.0f64..1000.0, threshold in -500.0f64..500.0, desired in 0u32..20) {
        let p = policy();
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let mut i = input(&p, AlarmState::Alarm, desired);
        i.threshold = Some(threshold);
        i.metric_value = Some(threshold + low);
        let to_low = decide(&i).to;
        i.metric_value = Some(threshold + high);
        let to_high = decide(&i).to;
        prop_assert!(to_high >= to_low);
    }
}

/// An alarm's change keeps what the service's target policies remember (one item per service).
#[test]
fn an_alarm_change_keeps_the_target_policies_memory() {
    let p = policy();
    let mut i = input(&p, AlarmState::Alarm, 2);
    i.metric_value = Some(150.0);
    i.memory
        .targets
        .zero_since
        .insert("orders".into(), i.now - 60);
    let d = decide(&i);
    assert_eq!(d.action, Action::ScaleOut);
    let next = d.memory_after(i.memory.clone(), i.now);
    assert_eq!(next.last_scale_out_at, Some(i.now));
    assert_eq!(next.targets, i.memory.targets);
}

#[test]
fn a_scale_in_goes_no_lower_than_the_services_target_policies_recommend() {
    let mut p = policy();
    p.ok_steps[0].adjustment = -3;
    let with_targets = |at: i64, recommended: u32| {
        let mut input = input(&p, AlarmState::Ok, 5);
        input.metric_value = Some(10.0);
        input.memory.targets.history = target::RecommendationHistory(vec![(at, recommended)]);
        decide(&input)
    };
    let now = 1_000_000;
    // The step asks for 2; the queue's latest tick recommended 3.
    let held = with_targets(now - 60, 3);
    assert_eq!((held.action, held.to), (Action::ScaleIn, 3));
    assert!(
        held.reason.contains("target policies recommend 3"),
        "{}",
        held.reason
    );
    // They recommend the current count: no scale-in, named.
    let refused = with_targets(now - 60, 5);
    assert_eq!(refused.action, Action::None);
    assert_eq!(refused.refusal, Some(Refusal::TargetHolds));
    // A recommendation older than three ticks holds nothing (the targets may be gone).
    let stale = with_targets(now - target::FRESH_RECOMMENDATION_S - 1, 5);
    assert_eq!((stale.action, stale.to), (Action::ScaleIn, 2));
    // Scale-out is never held back by them.
    let mut out = input(&p, AlarmState::Alarm, 5);
    out.memory.targets.history = target::RecommendationHistory(vec![(now - 60, 1)]);
    assert_eq!(decide(&out).to, 8);
}
