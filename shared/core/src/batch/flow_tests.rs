//! Tests of what a job asks of its runs: the retry stepper over run records, start deadlines,
//! dependency order, parameters, missed-run windows (property-tested against a minute-by-minute
//! search) and the history table.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::history;
use super::missed::{missed, Every, Missed};
use super::policy::{self, RetryOn, RetryPolicy};
use super::record::{retry_words, Outcome, RunRecord, TaskStop, Verdict};
use super::*;
use crate::error::AutopilotError;

fn spec(extra: serde_json::Value) -> JobSpec {
    let mut base = json!({"cluster": "data", "task_definition": "extract:1"});
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(base).unwrap()
}

fn stop(task: &str, category: &str, exit: i64, at: i64) -> TaskStop {
    TaskStop {
        task: task.into(),
        stopped_at: at,
        started_at: Some(at - 30),
        stop_code: Some("EssentialContainerExited".into()),
        category: category.into(),
        diagnosis: format!("exited with code {exit}"),
        exits: vec![record::ContainerExit {
            container: "app".into(),
            exit_code: Some(exit),
        }],
        timed_out: false,
        capacity: false,
    }
}

fn failed(task: &str, exit: i64, at: i64) -> TaskStop {
    stop(task, "app-exit", exit, at)
}

fn done(task: &str, at: i64) -> TaskStop {
    stop(task, "completed", 0, at)
}

fn retry(attempts: u32, on: &[&str]) -> RetryPolicy {
    RetryPolicy {
        attempts,
        on: on.iter().map(|o| RetryOn::parse(o).unwrap()).collect(),
        backoff_s: 240,
        max_backoff_s: 600,
    }
}

fn started(count: u32, tasks: &[&str], now: i64) -> RunRecord {
    let mut record = RunRecord::new("extract", "2026-11-03T02:00:00Z", 1_762_135_200, count, now);
    record.add_tasks(&tasks.iter().map(|t| t.to_string()).collect::<Vec<_>>());
    record
}

#[test]
fn a_failed_attempt_is_retried_with_doubling_backoff_until_the_retries_run_out() {
    let policy = retry(2, &["exit:1"]);
    let mut record = started(1, &["t1"], 1000);
    assert!(record.with_stop(failed("t1", 1, 1100), Some(&policy)));
    assert_eq!(
        record.verdict(Some(&policy)),
        Verdict::WillRetry {
            attempt: 1,
            at: 1340,
            backoff_s: 240,
            retries_left: 2
        }
    );
    assert_eq!(record.outcome, Outcome::Running);
    assert!(!record.retry_due(1339) && record.retry_due(1340));
    assert_eq!(retry_words(240, 2), "will retry in 4m, 2 retries left");

    assert_eq!(record.begin_retry(1340), 2);
    record.add_tasks(&["t2".into()]);
    assert!(record.with_stop(failed("t2", 1, 1400), Some(&policy)));
    assert_eq!(
        record.verdict(Some(&policy)),
        Verdict::WillRetry {
            attempt: 2,
            at: 1880,
            backoff_s: 480,
            retries_left: 1
        }
    );
    record.begin_retry(1880);
    record.add_tasks(&["t3".into()]);
    record.with_stop(failed("t3", 1, 1900), Some(&policy));
    assert_eq!(
        record.verdict(Some(&policy)),
        Verdict::Failed {
            outcome: Outcome::Failed,
            attempts: 3
        }
    );
    assert_eq!(record.finished_at, Some(1900));
    assert_eq!(record.exit_codes(), "1: app=1 · 2: app=1 · 3: app=1");
}

#[test]
fn success_after_a_retry_ends_the_run_and_a_stop_is_folded_in_once() {
    let policy = retry(3, &["any-nonzero"]);
    let mut record = started(1, &["t1"], 1000);
    record.with_stop(failed("t1", 2, 1100), Some(&policy));
    record.begin_retry(1400);
    record.add_tasks(&["t2".into()]);
    assert!(record.with_stop(done("t2", 1500), Some(&policy)));
    let snapshot = record.clone();
    assert!(
        !record.with_stop(done("t2", 1500), Some(&policy)),
        "a redelivered stop"
    );
    assert!(
        !record.with_stop(failed("t1", 2, 1100), Some(&policy)),
        "an old attempt's stop"
    );
    assert_eq!(record, snapshot);
    assert_eq!(
        record.verdict(Some(&policy)),
        Verdict::Succeeded { attempts: 2 }
    );
    assert_eq!(record.duration_s(9999), Some(1500 - 1070));
}

#[test]
fn a_failure_the_policy_does_not_name_fails_the_run_at_once() {
    let policy = retry(3, &["exit:137", "spot-interruption"]);
    let mut record = started(1, &["t1"], 1000);
    record.with_stop(failed("t1", 1, 1100), Some(&policy));
    assert_eq!(
        record.verdict(Some(&policy)),
        Verdict::Failed {
            outcome: Outcome::Failed,
            attempts: 1
        }
    );
    let mut spot = started(1, &["t1"], 1000);
    spot.with_stop(stop("t1", "spot-interruption", 143, 1100), Some(&policy));
    assert!(matches!(
        spot.verdict(Some(&policy)),
        Verdict::WillRetry { .. }
    ));
    let mut none = started(1, &["t1"], 1000);
    none.with_stop(failed("t1", 137, 1100), None);
    assert!(matches!(none.verdict(None), Verdict::Failed { .. }));
}

#[test]
fn an_attempt_closes_when_every_task_stopped_and_a_timeout_is_its_own_outcome() {
    let policy = retry(1, &["timeout"]);
    let mut record = started(2, &["t1", "t2"], 1000);
    record.with_stop(done("t1", 1100), Some(&policy));
    assert_eq!(
        record.verdict(Some(&policy)),
        Verdict::Pending { stopped: 1, of: 2 }
    );
    let mut over = failed("t2", 137, 4700);
    over.timed_out = true;
    record.with_stop(over.clone(), Some(&policy));
    assert!(matches!(
        record.verdict(Some(&policy)),
        Verdict::WillRetry { .. }
    ));
    let mut again = started(2, &["t1", "t2"], 1000);
    again.with_stop(done("t1", 1100), None);
    again.with_stop(over, None);
    assert_eq!(
        again.verdict(None),
        Verdict::Failed {
            outcome: Outcome::TimedOut,
            attempts: 1
        }
    );
}

#[test]
fn an_attempt_with_no_task_running_by_its_deadline_never_started() {
    let mut record = started(1, &["t1"], 1000);
    assert!(!record.with_start_deadline(600, 1599));
    assert!(record.with_start_deadline(600, 1600));
    assert_eq!(record.outcome, Outcome::NeverStarted);
    assert!(!record.with_start_deadline(600, 1700), "once");
    let mut running = started(1, &["t1"], 1000);
    assert!(running.with_running("t1", 1050));
    assert!(!running.with_start_deadline(600, 5000));
    assert_eq!(running.outcome, Outcome::Running);
}

#[test]
fn retry_on_reads_every_form_and_refuses_the_rest() {
    assert_eq!(RetryOn::parse("exit:137"), Ok(RetryOn::Exit(137)));
    assert_eq!(RetryOn::parse("oom"), Ok(RetryOn::Oom));
    assert!(RetryOn::parse("exit:x").is_err());
    assert!(RetryOn::parse("sometimes")
        .unwrap_err()
        .contains("any-nonzero"));
    let oom = stop("t", "oom", 137, 1);
    assert!(oom.covered_by(RetryOn::Oom) && oom.covered_by(RetryOn::Exit(137)));
    assert!(oom.covered_by(RetryOn::AnyNonzero) && !oom.covered_by(RetryOn::Timeout));
    assert!(!done("t", 1).covered_by(RetryOn::AnyNonzero));
}

proptest! {
    #[test]
    fn backoff_doubles_and_never_passes_its_cap(
        backoff in 1u64..4000, extra in 0u64..90_000, retry in 1u32..=10
    ) {
        let policy = RetryPolicy { attempts: 10, on: vec![RetryOn::AnyNonzero], backoff_s: backoff, max_backoff_s: backoff + extra };
        let wait = policy.backoff_before(retry);
        prop_assert!(wait <= backoff + extra && wait >= backoff);
        prop_assert_eq!(policy.backoff_before(1), backoff);
        if retry > 1 {
            let before = policy.backoff_before(retry - 1);
            prop_assert!(wait == (before * 2).min(backoff + extra));
        }
    }
}

fn invalid(extra: serde_json::Value) -> String {
    let mut catalog = JobCatalog::new();
    catalog.insert("extract".into(), spec(extra));
    match catalog::validate(&catalog) {
        Err(AutopilotError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn what_a_job_asks_of_its_runs_is_validated_by_path() {
    let on = json!(["any-nonzero"]);
    assert_eq!(
        invalid(json!({"retry": {"attempts": 11, "on": on}})),
        "jobs.extract.retry.attempts"
    );
    assert_eq!(
        invalid(json!({"retry": {"attempts": 2, "on": on, "backoff_s": 600, "max_backoff_s": 60}})),
        "jobs.extract.retry.max_backoff_s"
    );
    assert_eq!(
        invalid(json!({"retry": {"attempts": 2, "on": ["timeout"]}})),
        "jobs.extract.retry.on"
    );
    assert_eq!(
        invalid(json!({"history_days": 0})),
        "jobs.extract.history_days"
    );
    assert_eq!(
        invalid(json!({"history_days": 3651})),
        "jobs.extract.history_days"
    );
    assert_eq!(
        invalid(json!({"expect": {"start_deadline_s": 59}})),
        "jobs.extract.expect.start_deadline_s"
    );
    assert_eq!(
        invalid(json!({"expect": {"every": "rate(1 days)"}})),
        "jobs.extract.expect.every"
    );
    assert_eq!(
        invalid(json!({"expect": {"every": "cron(0 2 * * ? *)", "timezone": "Mars/Olympus"}})),
        "jobs.extract.expect.every"
    );
    assert_eq!(
        invalid(
            json!({"parameters": {"month": {"pattern": "^[0-9]{4}-[0-9]{2}$", "default": "May"}}})
        ),
        "jobs.extract.parameters.month.default"
    );
    assert_eq!(
        invalid(json!({"parameters": {"month": {"pattern": "(["}}})),
        "jobs.extract.parameters.month.pattern"
    );
    // Bad `on` entries are refused while the document is read, naming the entry.
    let bad: std::result::Result<JobSpec, _> = serde_json::from_value(
        json!({"cluster": "c", "task_definition": "t", "retry": {"attempts": 1, "on": ["exit:one"]}}),
    );
    assert!(bad.unwrap_err().to_string().contains("exit:one"));
    let fine = spec(json!({
        "timeout_s": 3600, "history_days": 90,
        "retry": {"attempts": 2, "on": ["exit:1", "timeout", "spot-interruption"], "backoff_s": 240},
        "expect": {"start_deadline_s": 600, "every": "cron(0 2 * * ? *)", "timezone": "Europe/Berlin"},
        "parameters": {"month": {"pattern": "^[0-9]{4}-[0-9]{2}$", "default": "last"}}
    }));
    let mut catalog = JobCatalog::new();
    catalog.insert("extract".into(), fine);
    catalog::validate(&catalog).unwrap();
}

fn chain(edges: &[(&str, &[&str])]) -> JobCatalog {
    edges
        .iter()
        .map(|(name, after)| (name.to_string(), spec(json!({ "after": after }))))
        .collect()
}

#[test]
fn dependencies_order_fan_out_and_fan_in_and_refuse_cycles_and_unknown_names() {
    let catalog = chain(&[
        ("extract", &[]),
        ("transform", &["extract"]),
        ("audit", &["extract"]),
        ("load", &["transform", "audit"]),
    ]);
    assert_eq!(
        policy::dependency_order(&catalog).unwrap(),
        vec!["extract", "audit", "transform", "load"]
    );
    assert_eq!(
        policy::dependents(&catalog, "extract"),
        vec!["audit", "transform"]
    );
    let cycle = chain(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]);
    match policy::dependency_order(&cycle) {
        Err(AutopilotError::InvalidConfig { field, problem }) => {
            assert_eq!(field, "jobs.a.after");
            assert!(problem.contains("a, b, c"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    let unknown = chain(&[("load", &["extract"])]);
    assert!(matches!(
        policy::dependency_order(&unknown),
        Err(AutopilotError::InvalidConfig { field, .. }) if field == "jobs.load.after[0]"
    ));
    let own = chain(&[("load", &["load"])]);
    assert!(policy::dependency_order(&own).is_err());
}

proptest! {
    #[test]
    fn any_acyclic_catalog_orders_every_job_after_its_upstreams(
        edges in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 8), 8)
    ) {
        // Job i may depend only on jobs j < i: acyclic by construction.
        let catalog: JobCatalog = (0..8)
            .map(|i| {
                let after: Vec<String> = (0..i).filter(|j| edges[i][*j]).map(|j| format!("j{j}")).collect();
                (format!("j{i}"), spec(json!({ "after": after })))
            })
            .collect();
        let order = policy::dependency_order(&catalog).unwrap();
        prop_assert_eq!(order.len(), 8);
        let position = |name: &str| order.iter().position(|n| *n == name).unwrap();
        for (name, job) in &catalog {
            for upstream in &job.after {
                prop_assert!(position(upstream) < position(name));
            }
        }
    }
}

#[test]
fn parameters_take_given_values_or_defaults_and_refuse_the_undeclared() {
    let job = spec(json!({
        "parameters": {
            "month": {"pattern": "^[0-9]{4}-[0-9]{2}$", "default": "last"},
            "mode": {"pattern": "^(full|delta)$", "default": "delta"}
        },
        "overrides": [{"name": "app", "command": ["export", "--month", "{month}", "{other}"]}]
    }));
    let at = 1_762_135_200; // 2025-11-03T02:00:00Z
    let values = policy::resolve_parameters(&job, &BTreeMap::new(), at).unwrap();
    assert_eq!(values["month"], "2025-10");
    assert_eq!(values["mode"], "delta");
    let given = BTreeMap::from([("month".to_owned(), "2026-10".to_owned())]);
    assert_eq!(
        policy::resolve_parameters(&job, &given, at).unwrap()["month"],
        "2026-10"
    );
    assert_eq!(
        policy::substitute("--month={month} {other}", &values),
        "--month=2025-10 {other}",
        "only declared names are replaced"
    );
    let field = |given: &[(&str, &str)]| {
        let given = given
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match policy::resolve_parameters(&job, &given, at) {
            Err(AutopilotError::InvalidEvent { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(field(&[("month", "October")]), "parameters.month");
    assert_eq!(field(&[("region", "eu")]), "parameters.region");
    assert_eq!(
        policy::derived_default("previous-date", 1_767_225_600).unwrap(),
        "2025-12-31",
        "a year boundary"
    );
}

/// The latest minute at or before `at` (UTC) at `minute` past one of `hours`, by scanning
/// minutes back over `horizon_s`.
fn brute_last_fire(minute: u32, hours: &[u32], at: i64, horizon_s: i64) -> Option<i64> {
    let mut t = at - at.rem_euclid(60);
    while t >= at - horizon_s {
        let (h, m) = (t.rem_euclid(86_400) / 3600, t.rem_euclid(3600) / 60);
        if m == i64::from(minute) && hours.contains(&(h as u32)) {
            return Some(t);
        }
        t -= 60;
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_rate_misses_a_window_for_each_period_without_a_run(
        period_min in 1i64..2000, gap in 0i64..400_000, grace in 0i64..900, ran in any::<bool>()
    ) {
        let every = Every::parse(&format!("rate({period_min} minute{})", if period_min == 1 { "" } else { "s" }), None).unwrap();
        let period = period_min * 60;
        let since = 1_800_000_000;
        let last = ran.then_some(since + 10);
        let now = since + gap;
        let found = missed(&every, grace, last, since, now);
        let from = last.unwrap_or(since);
        let windows = (now - grace - from).div_euclid(period);
        if windows >= 1 {
            prop_assert_eq!(found, Some(Missed { due_at: from + windows * period, last_run: last, windows: windows as u64 }));
        } else {
            prop_assert_eq!(found, None);
        }
    }

    #[test]
    fn a_cron_misses_the_latest_instant_past_its_grace_without_a_run(
        minute in 0u32..60, hours in proptest::collection::btree_set(0u32..24, 1..4),
        offset in 0i64..(3 * 86_400), grace in 0i64..900, last_back in proptest::option::of(0i64..(2 * 86_400))
    ) {
        let hours: Vec<u32> = hours.into_iter().collect();
        let list: Vec<String> = hours.iter().map(u32::to_string).collect();
        let every = Every::parse(&format!("cron({minute} {} * * ? *)", list.join(",")), None).unwrap();
        let watching = 1_800_000_000;
        let now = watching + offset;
        let last = last_back.map(|back| now - back);
        // The expected instant: the latest minute named, at least `grace` ago.
        let due = brute_last_fire(minute, &hours, now - grace, 2 * 86_400);
        let expected = due.filter(|due| *due >= watching && last.is_none_or(|l| l < due - grace))
            .map(|due| Missed { due_at: due, last_run: last, windows: 1 });
        prop_assert_eq!(missed(&every, grace, last, watching, now), expected);
    }
}

#[test]
fn a_disabled_daily_schedule_is_missed_once_its_grace_has_passed() {
    let every = Every::parse("cron(0 2 * * ? *)", Some("Europe/Berlin")).unwrap();
    // Watching since 2026-11-01T00:00Z; last run 2026-11-02T01:00Z (02:00 in Berlin).
    let watching = 1_793_491_200;
    let last = Some(1_793_581_200);
    // 2026-11-03T01:04Z: due at 01:00Z, within the 300 s grace.
    assert_eq!(missed(&every, 300, last, watching, 1_793_667_840), None);
    let late = missed(&every, 300, last, watching, 1_793_667_900).unwrap();
    assert_eq!(late.due_at, 1_793_667_600);
    assert!(
        super::missed::missed_reason("extract", "cron(0 2 * * ? *)", &late)
            .contains("no run for 2026-11-03T01:00:00Z")
    );
    assert!(Every::parse("rate(1 days)", None).is_err());
    assert!(Every::parse("rate(2 hours)", None).is_ok());
    assert!(Every::parse("rate(1 day)", Some("UTC")).is_err());
}

#[test]
fn history_lists_runs_newest_first_with_attempts_duration_and_exit_codes() {
    let policy = retry(1, &["exit:1"]);
    let mut first = started(1, &["t1"], 1_762_135_200);
    first.with_stop(failed("t1", 1, 1_762_135_260), Some(&policy));
    first.begin_retry(1_762_135_500);
    first.add_tasks(&["t2".into()]);
    first.with_stop(done("t2", 1_762_135_600), Some(&policy));
    let mut second = RunRecord::ended(
        "load",
        "2026-11-04T02:00:00Z",
        1_762_221_600,
        Outcome::UpstreamFailed,
        "extract failed".into(),
        1_762_221_700,
    );
    second.count = 1;
    let rows = history::rows(&[first, second], 1_762_300_000);
    assert_eq!(rows[0].job, "load");
    assert_eq!(rows[1].attempts, 2);
    assert_eq!(rows[1].outcome, "succeeded");
    let table = history::table(&rows);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("SCHEDULED"), "{table}");
    assert!(
        lines[1].contains("upstream-failed") && lines[1].contains("extract failed"),
        "{table}"
    );
    assert!(
        lines[2].contains("succeeded") && lines[2].contains("1: app=1 · 2: app=0"),
        "{table}"
    );
    assert!(lines[2].contains("6m 10s"), "{table}");
}
