//! Tests of batch planning: startedBy and tokens, splitting, overlap, retry classes, backoff,
//! timeouts, RunTask requests, and catalog validation.

use proptest::prelude::*;

use super::*;
use crate::config::StackConfig;
use crate::error::AutopilotError;

fn job() -> JobSpec {
    serde_json::from_value(serde_json::json!({
        "cluster": "shop", "task_definition": "invoice-export:3", "count": 23,
        "capacity_provider_strategy": [{"capacity_provider": "FARGATE_SPOT", "weight": 1}],
        "fallback_capacity_provider_strategy": [{"capacity_provider": "FARGATE", "weight": 1}],
        "network": {"subnets": ["subnet-1"], "security_groups": ["sg-1"]},
        "overrides": [{"name": "invoice-export", "command": ["export", "--month", "last"], "environment": {"MODE": "full"}}],
        "tags": {"team": "billing"}, "propagate_tags": "TASK_DEFINITION",
        "overlap": "skip", "timeout_s": 3600
    }))
    .unwrap()
}

#[test]
fn started_by_fits_ecs_and_maps_back() {
    assert_eq!(started_by("invoice-export"), "batch-runner/invoice-export");
    let long = "nightly-reconciliation-of-every-ledger-in-every-region";
    let marker = started_by(long);
    assert!(marker.len() <= MAX_STARTED_BY, "{marker}");
    assert!(marker.starts_with("batch-runner/nightly-reco"), "{marker}");
    assert_eq!(marker, started_by(long), "deterministic");
    assert_ne!(marker, started_by(&format!("{long}-2")));
    let mut catalog = JobCatalog::new();
    catalog.insert(long.to_owned(), job());
    assert_eq!(job_of_started_by(&marker, &catalog), Some(long));
    assert_eq!(
        job_of_started_by("batch-runner/adhoc", &catalog),
        Some("adhoc")
    );
    assert_eq!(job_of_started_by("ecs-svc/123", &catalog), None);
}

#[test]
fn tokens_identify_the_run_and_stay_within_64_ascii() {
    let a = client_token("invoice-export", "2026-09-15T02:00:00Z", 0, 0, 1);
    assert_eq!(
        a,
        client_token("invoice-export", "2026-09-15T02:00:00Z", 0, 0, 1)
    );
    assert_ne!(
        a,
        client_token("invoice-export", "2026-09-16T02:00:00Z", 0, 0, 1)
    );
    assert_ne!(
        a,
        client_token("invoice-export", "2026-09-15T02:00:00Z", 0, 1, 1)
    );
    assert_ne!(
        a,
        client_token("invoice-export", "2026-09-15T02:00:00Z", 0, 0, 2)
    );
    assert_ne!(
        a,
        client_token("invoice-export", "2026-09-15T02:00:00Z", 1, 0, 1),
        "a resumed round sends new tokens"
    );
    assert_ne!(
        a,
        client_token("invoice-export", "2026-09-15T02:00:00Z", 1, 0, 1)
    );
    assert_eq!(run_token("invoice-export", "2026-09-15T02:00:00Z"), a);
}

#[test]
fn runs_split_into_calls_of_at_most_ten() {
    assert_eq!(split(1), vec![1]);
    assert_eq!(split(10), vec![10]);
    assert_eq!(split(23), vec![10, 10, 3]);
    assert_eq!(split(100).len(), 10);
}

#[test]
fn overlap_policies() {
    let running = vec!["arn:task/1".to_owned()];
    assert_eq!(overlap_decision(Overlap::Skip, &[]), OverlapDecision::Start);
    assert_eq!(
        overlap_decision(Overlap::Skip, &running),
        OverlapDecision::Skip(running.clone())
    );
    assert_eq!(
        overlap_decision(Overlap::Replace, &running),
        OverlapDecision::Replace(running.clone())
    );
    assert_eq!(
        overlap_decision(Overlap::Allow, &running),
        OverlapDecision::Start
    );
}

#[test]
fn failure_reasons_are_classed() {
    for capacity in [
        "Capacity is unavailable at this time. Please try again later or in a different availability zone",
        "RESOURCE:CPU",
        "RESOURCE:MEMORY",
        "RESOURCE:ENI",
        "AGENT",
    ] {
        assert_eq!(classify_failure(capacity), FailureClass::Capacity, "{capacity}");
    }
    for configuration in [
        "MISSING",
        "ATTRIBUTE",
        "InvalidParameterException: subnet not found",
        "something new",
    ] {
        assert_eq!(
            classify_failure(configuration),
            FailureClass::Configuration,
            "{configuration}"
        );
    }
}

#[test]
fn backoff_grows_and_respects_the_budget() {
    assert_eq!(
        (2..=7).map(backoff_s).collect::<Vec<_>>(),
        vec![1, 2, 4, 8, 15, 15]
    );
    assert!(retry_fits(2, 6));
    assert!(!retry_fits(2, 5));
    assert!(!retry_fits(5, 12));
}

#[test]
fn timeouts_pick_tasks_that_ran_too_long() {
    let tasks = vec![
        RunningTask {
            task_arn: "old".into(),
            started_at: Some(0),
        },
        RunningTask {
            task_arn: "new".into(),
            started_at: Some(3_000),
        },
        RunningTask {
            task_arn: "pending".into(),
            started_at: None,
        },
    ];
    assert_eq!(
        timed_out(&tasks, 3_600, 4_000),
        vec![("old".to_owned(), 4_000)]
    );
    assert_eq!(
        timeout_reason(3600),
        "batch-runner: exceeded timeout of 3600 s"
    );
}

#[test]
fn requests_carry_the_catalog_and_switch_placement() {
    let spec = job();
    let primary = run_task_request("invoice-export", &spec, "t", 0, 2, 1, 3, Placement::Primary);
    assert_eq!(primary.count, 3);
    assert_eq!(primary.started_by, "batch-runner/invoice-export");
    assert_eq!(
        primary.capacity_provider_strategy[0].capacity_provider,
        "FARGATE_SPOT"
    );
    assert_eq!(primary.propagate_tags, Some("TASK_DEFINITION"));
    let fallback = run_task_request(
        "invoice-export",
        &spec,
        "t",
        0,
        2,
        1,
        3,
        Placement::Fallback,
    );
    assert_eq!(
        fallback.capacity_provider_strategy[0].capacity_provider,
        "FARGATE"
    );
    assert_ne!(primary.client_token, fallback.client_token);
}

fn config_field(jobs: serde_json::Value) -> String {
    match StackConfig::parse(&serde_json::json!({ "jobs": jobs }).to_string()) {
        Err(AutopilotError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn bad_jobs_name_the_job_and_field() {
    let base = serde_json::to_value(job()).unwrap();
    let with = |patch: serde_json::Value| {
        let mut spec = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            spec[k] = v.clone();
        }
        serde_json::json!({ "invoice-export": spec })
    };
    let cases = [
        (serde_json::json!({"count": 0}), "jobs.invoice-export.count"),
        (
            serde_json::json!({"count": 101}),
            "jobs.invoice-export.count",
        ),
        (
            serde_json::json!({"launch_type": "FARGATE"}),
            "jobs.invoice-export.capacity_provider_strategy",
        ),
        (
            serde_json::json!({"launch_type": "LAMBDA"}),
            "jobs.invoice-export.launch_type",
        ),
        (
            serde_json::json!({"overlap": "queue"}),
            "jobs.invoice-export.overlap",
        ),
        (
            serde_json::json!({"tags": {"aws:team": "x"}}),
            "jobs.invoice-export.tags.aws:team",
        ),
        (
            serde_json::json!({"network": {"subnets": []}}),
            "jobs.invoice-export.network.subnets",
        ),
        (
            serde_json::json!({"overrides": [{"name": "a", "command": ["x".repeat(9000)]}]}),
            "jobs.invoice-export.overrides",
        ),
        (
            serde_json::json!({"overrides": [{"name": "a"}, {"name": "a"}]}),
            "jobs.invoice-export.overrides[1].name",
        ),
        (
            serde_json::json!({"image": "x"}),
            "jobs.invoice-export.image",
        ),
        (
            serde_json::json!({"timeout_s": 0}),
            "jobs.invoice-export.timeout_s",
        ),
    ];
    for (patch, field) in cases {
        assert_eq!(config_field(with(patch.clone())), field, "patch {patch}");
    }
    assert_eq!(
        config_field(serde_json::json!({"bad name": base})),
        "jobs.bad name"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn started_by_and_tokens_always_fit(job in "[A-Za-z0-9_-]{1,128}", run in ".{0,80}", round in 0u32..50, call in 0usize..10, attempt in 1u32..200) {
        prop_assert!(started_by(&job).len() <= MAX_STARTED_BY);
        let token = client_token(&job, &run, round, call, attempt);
        prop_assert!(token.len() <= MAX_CLIENT_TOKEN);
        prop_assert!(token.is_ascii());
    }

    #[test]
    fn tokens_of_distinct_calls_never_collide(
        job in "[A-Za-z0-9_-]{1,128}",
        run in ".{0,80}",
        a in (0u32..1000, 0usize..10, 1u32..200),
        b in (0u32..1000, 0usize..10, 1u32..200),
    ) {
        let (ta, tb) = (client_token(&job, &run, a.0, a.1, a.2), client_token(&job, &run, b.0, b.1, b.2));
        prop_assert_eq!(ta == tb, a == b, "{} vs {}", ta, tb);
    }

    #[test]
    fn split_covers_the_count_exactly(count in 1u32..=100) {
        let calls = split(count);
        prop_assert_eq!(calls.iter().sum::<u32>(), count);
        prop_assert!(calls.iter().all(|&c| (1..=MAX_TASKS_PER_CALL).contains(&c)));
    }
}

/// A scripted RunTask answer: how many of the asked tasks start, and the failure reason of the
/// rest (capacity or configuration).
#[derive(Debug, Clone)]
struct Answer {
    start: u32,
    capacity: bool,
}

fn answers() -> impl Strategy<Value = Vec<Answer>> {
    proptest::collection::vec(
        (0u32..12, proptest::bool::weighted(0.85))
            .prop_map(|(start, capacity)| Answer { start, capacity }),
        0..80,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    /// The stepper, driven with arbitrary answers and clocks, keeps every rule of the loop.
    #[test]
    fn the_run_stepper_keeps_its_rules(
        count in 1u32..=40,
        already in 0u32..=45,
        fallback in proptest::bool::ANY,
        budget in 0i64..200,
        answers in answers(),
        call_s in 0i64..4,
    ) {
        use super::stepper::{RunEnd, RunStep, RunStepper, MAX_ATTEMPTS};
        let mut spec = job();
        spec.count = count;
        if !fallback {
            spec.fallback_capacity_provider_strategy.clear();
        }
        let started: Vec<String> = (0..already).map(|i| format!("old-{i}")).collect();
        let mut now = 1_000_000i64;
        let deadline = now + budget;
        let mut stepper = RunStepper::new("invoice-export", &spec, "run-1", 0, started, deadline);
        let mut tokens = std::collections::HashSet::new();
        let mut answers = answers.into_iter();
        let mut steps = 0;
        let mut per_call_placement: std::collections::HashMap<(usize, bool), u32> = Default::default();
        let mut last_config_failure = false;
        let end = loop {
            steps += 1;
            prop_assert!(steps < 1_000, "the stepper ends");
            match stepper.next_step() {
                RunStep::Call(request) => {
                    prop_assert!(!last_config_failure);
                    prop_assert!((1..=MAX_TASKS_PER_CALL).contains(&request.count));
                    prop_assert!(tokens.insert(request.client_token.clone()), "token reused: {}", request.client_token);
                    let call: usize = request.client_token.rsplit_once('c').unwrap().1.split('a').next().unwrap().parse().unwrap();
                    let on_fallback = request.capacity_provider_strategy.iter().any(|s| s.capacity_provider == "FARGATE")
                        && !request.capacity_provider_strategy.iter().any(|s| s.capacity_provider == "FARGATE_SPOT");
                    let attempts = per_call_placement.entry((call, on_fallback)).or_default();
                    *attempts += 1;
                    prop_assert!(*attempts <= MAX_ATTEMPTS);
                    prop_assert!(!on_fallback || fallback);
                    let answer = answers.next().unwrap_or(Answer { start: request.count, capacity: true });
                    let start = answer.start.min(request.count) as usize;
                    let tasks: Vec<String> = (0..start).map(|i| format!("{}-{i}", request.client_token)).collect();
                    let failures = if start < request.count as usize {
                        vec![RunFailure { arn: None, reason: if answer.capacity { "Capacity is unavailable at this time".into() } else { "MISSING".into() }, detail: None }]
                    } else {
                        Vec::new()
                    };
                    last_config_failure = start < request.count as usize && !answer.capacity;
                    now += call_s;
                    stepper.record(RunTaskResult { tasks, failures }, now);
                }
                RunStep::Wait(seconds) => {
                    prop_assert!(now + seconds as i64 + 5 <= deadline, "waits only within the budget");
                    now += seconds as i64;
                }
                RunStep::Done(end) => break end,
            }
        };
        let wanted = count.saturating_sub(already) as usize;
        let new_tasks = stepper.tasks.len() - already as usize;
        prop_assert!(new_tasks <= wanted, "never more than asked: {} of {}", new_tasks, wanted);
        match end {
            RunEnd::AllStarted => {
                prop_assert_eq!(new_tasks, wanted);
                prop_assert!(stepper.failures.is_empty());
            }
            RunEnd::Configuration => prop_assert!(last_config_failure),
            RunEnd::CapacityExhausted => prop_assert!(new_tasks < wanted && !stepper.failures.is_empty()),
        }
        prop_assert_eq!(stepper.attempts as usize, tokens.len());
        prop_assert_eq!(stepper.next_step(), RunStep::Done(end), "a finished run stays finished");
    }
}

#[test]
fn the_stepper_retries_capacity_then_falls_back_then_gives_up() {
    use super::stepper::{RunEnd, RunStep, RunStepper};
    let mut spec = job();
    spec.count = 1;
    let capacity = || RunTaskResult {
        tasks: Vec::new(),
        failures: vec![RunFailure {
            arn: None,
            reason: "Capacity is unavailable at this time".into(),
            detail: None,
        }],
    };
    let mut stepper = RunStepper::new("invoice-export", &spec, "run-1", 0, Vec::new(), 1_000);
    let mut waits = Vec::new();
    let mut placements = Vec::new();
    let mut now = 0;
    let end = loop {
        match stepper.next_step() {
            RunStep::Call(request) => {
                placements.push(
                    request.capacity_provider_strategy[0]
                        .capacity_provider
                        .clone(),
                );
                stepper.record(capacity(), now);
            }
            RunStep::Wait(s) => {
                waits.push(s);
                now += s as i64;
            }
            RunStep::Done(end) => break end,
        }
    };
    assert_eq!(end, RunEnd::CapacityExhausted);
    assert_eq!(waits, [1, 2, 4, 8, 1, 2, 4, 8]);
    assert_eq!(
        placements.iter().filter(|p| *p == "FARGATE_SPOT").count(),
        5
    );
    assert_eq!(placements.iter().filter(|p| *p == "FARGATE").count(), 5);
    assert_eq!(stepper.attempts, 10);
}
