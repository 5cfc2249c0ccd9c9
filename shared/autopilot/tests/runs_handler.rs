//! `batch-runner`'s run records on the in-memory ports: a failed exit retried after its backoff
//! by the tick, success after a retry starting the job that runs after it, the final failure
//! making dependents upstream-failed (told once), fan-in, a run that never started, a missed
//! run, parameters, runs by hand and history, and `task-triage` wording its completion report
//! from the same record.

mod common;

use std::time::Duration;

use autopilot::app::batch::{BatchRunner, RunOutcome, RunnerResponse, TaskFollowed};
use autopilot::app::triage::{TaskTriage, TriageResponse};
use autopilot::batch::record::{Outcome, Verdict};
use autopilot::batch::report::RunAction;
use autopilot::config::StackConfig;
use autopilot::entry::{Invocation, Mode};
use autopilot::events::schedule::JobRequest;
use autopilot::ports::Clock;
use autopilot::testkit::{World, HOME_ACCOUNT, START};
use serde_json::{json, Value};

const RUN: &str = "2026-09-15T02:00:00Z";

fn config() -> StackConfig {
    let job = |extra: Value| {
        let mut job = json!({"cluster": "data", "task_definition": "etl:1"});
        job.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        job
    };
    StackConfig::parse(
        &json!({"jobs": {
            "extract": job(json!({
                "retry": {"attempts": 2, "on": ["exit:1"], "backoff_s": 240},
                "expect": {"start_deadline_s": 600}
            })),
            "transform": job(json!({"after": ["extract"]})),
            "audit": job(json!({"after": ["extract"]})),
            "load": job(json!({"after": ["transform", "audit"]})),
            "nightly": job(json!({"expect": {"every": "rate(1 day)"}})),
            "export": job(json!({
                "parameters": {"month": {"pattern": "^[0-9]{4}-[0-9]{2}$", "default": "last"}},
                "overrides": [{"name": "app", "command": ["export", "--month", "{month}"]}]
            }))
        }})
        .to_string(),
    )
    .unwrap()
}

fn runner(world: &World, mode: Mode) -> BatchRunner {
    BatchRunner::new(world.setup(mode, config()))
}

async fn schedule(runner: &BatchRunner, job: &str) -> autopilot::Result<RunOutcome> {
    let request = json!({"job": job, "scheduled_time": RUN});
    match runner.handle(request.into(), Invocation::default()).await? {
        RunnerResponse::Run(outcome) => Ok(*outcome),
        other => panic!("expected a run, got {other:?}"),
    }
}

/// The Task State Change of `task` of `job`: RUNNING, or STOPPED with `exit` (None: RUNNING).
fn change(job: &str, task: &str, exit: Option<i64>, at: i64) -> Value {
    let time = |t: i64| autopilot::domain::utc_time(t);
    let mut detail = json!({
        "taskArn": task,
        "clusterArn": format!("arn:aws:ecs:us-east-1:{HOME_ACCOUNT}:cluster/data"),
        "taskDefinitionArn": format!("arn:aws:ecs:us-east-1:{HOME_ACCOUNT}:task-definition/etl:1"),
        "group": "family:etl",
        "startedBy": format!("batch-runner/{job}"),
        "lastStatus": "RUNNING",
        "desiredStatus": "RUNNING",
        "createdAt": time(at - 120),
        "startedAt": time(at - 60),
        "containers": [{"name": "app", "lastStatus": "RUNNING"}],
        "version": 2
    });
    if let Some(code) = exit {
        detail["lastStatus"] = json!("STOPPED");
        detail["desiredStatus"] = json!("STOPPED");
        detail["stopCode"] = json!("EssentialContainerExited");
        detail["stoppedReason"] = json!("Essential container in task exited");
        detail["stoppedAt"] = json!(time(at));
        detail["containers"] = json!([{"name": "app", "lastStatus": "STOPPED", "exitCode": code}]);
        detail["version"] = json!(3);
    }
    json!({
        "version": "0", "id": format!("{task}-{exit:?}"), "detail-type": "ECS Task State Change",
        "source": "aws.ecs", "account": HOME_ACCOUNT, "time": time(at), "region": "us-east-1",
        "resources": [task], "detail": detail
    })
}

async fn follow(runner: &BatchRunner, event: Value) -> TaskFollowed {
    match runner
        .handle(event.into(), Invocation::default())
        .await
        .unwrap()
    {
        RunnerResponse::Task(followed) => *followed,
        other => panic!("expected a followed task, got {other:?}"),
    }
}

async fn tick(
    runner: &BatchRunner,
) -> (
    Vec<RunOutcome>,
    Vec<autopilot::batch::outcome::RunAlerted>,
    Vec<String>,
) {
    match runner
        .handle(json!({"tick": true}).into(), Invocation::default())
        .await
        .unwrap()
    {
        RunnerResponse::Tick {
            retried,
            alerted,
            notes,
            ..
        } => (retried, alerted, notes),
        other => panic!("expected a tick, got {other:?}"),
    }
}

fn record(world: &World, job: &str) -> autopilot::batch::record::RunRecord {
    world
        .state
        .record_at(&format!("batch#record#{job}#{RUN}"))
        .unwrap_or_else(|| panic!("no record of {job}"))
        .0
}

fn titles(world: &World) -> Vec<String> {
    world
        .notifier
        .sent()
        .into_iter()
        .map(|p| p.subject)
        .collect()
}

#[tokio::test]
async fn a_failed_exit_is_retried_after_its_backoff_and_success_starts_what_runs_after() {
    let world = World::new();
    let runner = runner(&world, Mode::Live);
    let first = schedule(&runner, "extract").await.unwrap();
    assert_eq!(first.action, RunAction::Started);
    let task = first.tasks[0].clone();
    let stored = record(&world, "extract");
    assert_eq!(
        (stored.outcome, stored.attempts[0].tasks.clone()),
        (Outcome::Running, vec![task.clone()])
    );

    follow(&runner, change("extract", &task, None, START + 30)).await;
    let failed = follow(&runner, change("extract", &task, Some(1), START + 300)).await;
    assert_eq!(
        failed.verdict,
        Some(Verdict::WillRetry {
            attempt: 1,
            at: START + 540,
            backoff_s: 240,
            retries_left: 2
        })
    );
    assert_eq!(
        world.notifier.sent().len(),
        0,
        "task-triage tells the failed attempt"
    );

    world.clock.advance(Duration::from_secs(539));
    assert!(tick(&runner).await.0.is_empty(), "not before its backoff");
    world.clock.advance(Duration::from_secs(1));
    let (retried, _, _) = tick(&runner).await;
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].action, RunAction::Started);
    assert_ne!(
        retried[0].client_token, first.client_token,
        "a new RunTask of its own tokens"
    );
    assert!(tick(&runner).await.0.is_empty(), "started once");
    let second = retried[0].tasks[0].clone();
    assert_eq!(record(&world, "extract").attempts.len(), 2);

    let done = follow(&runner, change("extract", &second, Some(0), START + 900)).await;
    assert_eq!(done.verdict, Some(Verdict::Succeeded { attempts: 2 }));
    let started: Vec<&str> = done.started.iter().map(|r| r.job.as_str()).collect();
    assert_eq!(started, vec!["audit", "transform"], "fan-out");
    assert!(done.started.iter().all(|r| r.action == RunAction::Started));
    assert_eq!(record(&world, "transform").scheduled_at, START);

    // A redelivered stop starts nothing twice.
    let again = follow(&runner, change("extract", &second, Some(0), START + 900)).await;
    assert!(
        again.started.iter().all(|r| r.duplicate),
        "{:?}",
        again.started
    );
    assert_eq!(world.ecs.run_requests().len(), 4);

    // Fan-in: load waits for transform and audit.
    let transform = record(&world, "transform").attempts[0].tasks[0].clone();
    let waiting = follow(
        &runner,
        change("transform", &transform, Some(0), START + 1000),
    )
    .await;
    assert!(waiting.started.is_empty());
    common::assert_noted(&waiting.notes, "load waits for audit (running)");
    let audit = record(&world, "audit").attempts[0].tasks[0].clone();
    let last = follow(&runner, change("audit", &audit, Some(0), START + 1100)).await;
    assert_eq!(last.started.len(), 1);
    assert_eq!(last.started[0].job, "load");
}

#[tokio::test]
async fn the_final_failure_makes_what_runs_after_upstream_failed_and_tells_it_once() {
    let world = World::new();
    let runner = runner(&world, Mode::Live);
    let mut task = schedule(&runner, "extract").await.unwrap().tasks[0].clone();
    for attempt in 1..=3 {
        let stopped = follow(
            &runner,
            change("extract", &task, Some(1), world.clock.now_s()),
        )
        .await;
        if attempt < 3 {
            world.clock.advance(Duration::from_secs(3600));
            task = tick(&runner).await.0[0].tasks[0].clone();
        } else {
            assert_eq!(
                stopped.verdict,
                Some(Verdict::Failed {
                    outcome: Outcome::Failed,
                    attempts: 3
                })
            );
            let failed: Vec<&str> = stopped
                .upstream_failed
                .iter()
                .map(|a| a.job.as_str())
                .collect();
            assert_eq!(failed, vec!["audit", "transform", "load"]);
        }
    }
    assert_eq!(record(&world, "load").outcome, Outcome::UpstreamFailed);
    let told = titles(&world);
    assert_eq!(told.len(), 3, "{told:?}");
    assert!(
        told.iter()
            .any(|t| t.contains("job load not started: audit upstream-failed")),
        "{told:?}"
    );
    let again = follow(
        &runner,
        change("extract", &task, Some(1), world.clock.now_s()),
    )
    .await;
    assert!(again.upstream_failed.iter().all(|a| a.duplicate));
    assert_eq!(world.notifier.sent().len(), 3, "told once");
    assert_eq!(
        world.ecs.run_requests().len(),
        3,
        "nothing after extract ran"
    );
}

#[tokio::test]
async fn a_run_with_no_task_running_by_its_deadline_never_started() {
    let world = World::new();
    let runner = runner(&world, Mode::Live);
    let task = schedule(&runner, "extract").await.unwrap().tasks[0].clone();
    world.clock.advance(Duration::from_secs(599));
    assert!(tick(&runner).await.1.is_empty());
    world.clock.advance(Duration::from_secs(1));
    let (_, alerted, notes) = tick(&runner).await;
    assert_eq!(alerted.len(), 1);
    assert_eq!(alerted[0].alert, "never-started");
    assert_eq!(record(&world, "extract").outcome, Outcome::NeverStarted);
    assert_eq!(
        world.ecs.stopped()[0].1,
        task,
        "its task is stopped, not left to start late"
    );
    common::assert_noted(&notes, "transform: upstream-failed");
    assert!(
        titles(&world)[0].contains("job extract never started"),
        "{:?}",
        titles(&world)
    );
    assert!(tick(&runner).await.1.is_empty(), "once");
}

#[tokio::test]
async fn a_day_without_a_run_is_a_missed_run_told_once() {
    let world = World::new();
    let runner = runner(&world, Mode::Live);
    assert!(tick(&runner).await.1.is_empty(), "watching begins");
    world.clock.advance(Duration::from_secs(86_400 + 299));
    assert!(tick(&runner).await.1.is_empty(), "within the grace");
    world.clock.advance(Duration::from_secs(1));
    let (_, alerted, _) = tick(&runner).await;
    assert_eq!(alerted.len(), 1);
    assert_eq!(alerted[0].alert, "missed-run");
    assert!(
        alerted[0].reason.contains("no run recorded"),
        "{}",
        alerted[0].reason
    );
    let (_, again, _) = tick(&runner).await;
    assert!(again.iter().all(|a| a.duplicate));
    assert_eq!(world.notifier.sent().len(), 1);
    // A run resets the window.
    schedule(&runner, "nightly").await.unwrap();
    world.clock.advance(Duration::from_secs(3600));
    assert!(tick(&runner).await.1.iter().all(|a| a.duplicate));
}

#[tokio::test]
async fn parameters_reach_the_command_and_undeclared_or_bad_values_are_refused() {
    let world = World::new();
    let runner = runner(&world, Mode::Live);
    let request =
        json!({"job": "export", "scheduled_time": RUN, "parameters": {"month": "2026-10"}});
    runner
        .handle(request.into(), Invocation::default())
        .await
        .unwrap();
    let sent = world.ecs.run_requests();
    assert_eq!(
        sent[0].overrides[0].command.as_deref(),
        Some(&["export".to_owned(), "--month".into(), "2026-10".into()][..])
    );
    assert_eq!(record(&world, "export").parameters["month"], "2026-10");
    let refused = |parameters: Value| {
        let runner = &runner;
        async move {
            let request = json!({"job": "export", "scheduled_time": "2026-09-16T02:00:00Z", "parameters": parameters});
            match runner.handle(request.into(), Invocation::default()).await {
                Err(autopilot::AutopilotError::InvalidEvent { field, .. }) => field,
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(
        refused(json!({"month": "October"})).await,
        "parameters.month"
    );
    assert_eq!(refused(json!({"region": "eu"})).await, "parameters.region");
    // The default: the month before the scheduled time.
    runner
        .handle(
            json!({"job": "export", "scheduled_time": "2026-11-01T02:00:00Z"}).into(),
            Invocation::default(),
        )
        .await
        .unwrap();
    let last = world.ecs.run_requests().pop().unwrap();
    assert_eq!(last.overrides[0].command.as_ref().unwrap()[2], "2026-10");
}

#[tokio::test]
async fn a_schedule_cannot_start_a_dependent_job_but_a_person_can_and_history_lists_runs() {
    let world = World::new();
    let runner = runner(&world, Mode::Live);
    match schedule(&runner, "load").await {
        Err(autopilot::AutopilotError::InvalidEvent { field, problem }) => {
            assert_eq!(field, "job");
            assert!(problem.contains("runs after transform, audit"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    let request = JobRequest {
        job: "load".into(),
        scheduled_time: Some(RUN.into()),
        scheduled_at: Some(START),
        parameters: Default::default(),
    };
    let RunnerResponse::Run(by_hand) = runner
        .run_by_hand(&request, &Invocation::default())
        .await
        .unwrap()
    else {
        panic!("a run")
    };
    assert_eq!(by_hand.action, RunAction::Started);
    assert!(record(&world, "load").by_hand);
    let task = by_hand.tasks[0].clone();
    follow(&runner, change("load", &task, Some(0), START + 120)).await;
    let rows = runner.history(Some("load"), 0).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].outcome, rows[0].attempts), ("succeeded", 1));
    assert_eq!(rows[0].exit_codes, "1: app=0");
    assert!(runner.history(Some("nope"), 0).await.is_err());
}

#[tokio::test]
async fn triage_words_the_completion_from_the_same_record() {
    let world = World::new();
    let runner = runner(&world, Mode::Live);
    let triage = TaskTriage::new(world.setup(Mode::Live, config()));
    let task = schedule(&runner, "extract").await.unwrap().tasks[0].clone();
    let stop = change("extract", &task, Some(1), START + 300);
    // Triage may see the stop before the runner does: it folds it into a copy.
    let TriageResponse::One(outcome) = triage
        .respond(stop.clone().into(), Invocation::default())
        .await
        .unwrap()
    else {
        panic!("one outcome")
    };
    let runner_view = follow(&runner, stop).await;
    let told: Vec<String> = world
        .notifier
        .sent()
        .into_iter()
        .map(|p| p.message)
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("job extract attempt 1 failed")
            && told[0].contains("will retry in 4m, 2 retries left"),
        "{told:?}"
    );
    assert!(matches!(
        runner_view.verdict,
        Some(Verdict::WillRetry { .. })
    ));
    assert_eq!(
        outcome.diagnosis.as_ref().map(|d| d.severity.as_str()),
        Some("warning")
    );
}

#[tokio::test]
async fn a_dry_run_reads_the_record_and_writes_nothing() {
    let world = World::new();
    let live = runner(&world, Mode::Live);
    let task = schedule(&live, "extract").await.unwrap().tasks[0].clone();
    let before = world.state.records();
    let dry = runner(&world, Mode::DryRun);
    let seen = follow(&dry, change("extract", &task, Some(1), START + 300)).await;
    assert!(matches!(seen.verdict, Some(Verdict::WillRetry { .. })));
    assert_eq!(world.state.records(), before);
    world.clock.advance(Duration::from_secs(3600));
    live.handle(
        change("extract", &task, Some(1), START + 300).into(),
        Invocation::default(),
    )
    .await
    .unwrap();
    let (retried, _, notes) = tick(&dry).await;
    assert!(retried.is_empty());
    common::assert_noted(
        &notes,
        "attempt 2 of 2026-09-15T02:00:00Z is due (not started: dry run)",
    );
}

/// The AWS calls of a run, of its task's two state changes and of a tick, counted on the
/// in-memory ports (the closing note's "calls per run and per tick").
#[tokio::test]
async fn aws_calls_per_run_per_task_change_and_per_tick() {
    let world = World::new();
    let runner = runner(&world, Mode::Live);
    let count = |world: &World| -> Vec<(&'static str, usize)> {
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for call in world.calls.log() {
            match counts.iter_mut().find(|(name, _)| *name == call) {
                Some((_, n)) => *n += 1,
                None => counts.push((call, 1)),
            }
        }
        counts
    };
    let before = world.calls.log().len();
    let task = schedule(&runner, "nightly").await.unwrap().tasks[0].clone();
    let run_calls = count(&world);
    assert_eq!(
        run_calls,
        vec![
            ("UpdateItem", 3),
            ("GetItem", 2),
            ("PutItem", 2),
            ("ListTasks", 1),
            ("RunTask", 1),
            ("BatchWriteItem", 1),
        ],
        "claim; record created; overlap guard; RunTask; its tasks on the claim and the record; \
         their pointers; claim complete"
    );
    assert_eq!(world.calls.log().len() - before, 10);
    let mark = world.calls.log().len();
    follow(&runner, change("nightly", &task, None, START + 30)).await;
    follow(&runner, change("nightly", &task, Some(0), START + 300)).await;
    let per_change: Vec<&str> = world.calls.log()[mark..].to_vec();
    assert_eq!(
        per_change,
        vec!["GetItem", "GetItem", "PutItem", "GetItem", "GetItem", "PutItem"],
        "each change: the pointer, the record, its write"
    );
    let mark = world.calls.log().len();
    tick(&runner).await;
    let tick_calls: Vec<&str> = world.calls.log()[mark..].to_vec();
    // extract (retry, deadline): one Query of the due index; nightly (every): the watch and
    // its latest run; no job has a timeout.
    assert_eq!(tick_calls, vec!["Query", "UpdateItem", "Query"]);
}

#[tokio::test]
async fn a_run_that_cannot_start_makes_what_runs_after_it_upstream_failed() {
    let world = World::new();
    world
        .ecs
        .script_run_task([autopilot::testkit::start_then_fail(0, "MISSING")]);
    let runner = runner(&world, Mode::Live);
    let failed = schedule(&runner, "extract").await.unwrap();
    assert_eq!(failed.action, RunAction::Failed);
    assert_eq!(record(&world, "extract").outcome, Outcome::Failed);
    assert_eq!(record(&world, "load").outcome, Outcome::UpstreamFailed);
    common::assert_noted(&failed.notes, "transform: upstream-failed");
    // The start failure and one warning for each job downstream.
    assert_eq!(world.notifier.sent().len(), 4, "{:?}", titles(&world));
}

#[tokio::test]
async fn a_job_failure_is_told_though_another_job_of_the_same_task_definition_failed_just_before() {
    let world = World::new();
    let runner = runner(&world, Mode::Live);
    let triage = TaskTriage::new(world.setup(Mode::Live, config()));
    let other = schedule(&runner, "nightly").await.unwrap().tasks[0].clone();
    let task = schedule(&runner, "extract").await.unwrap().tasks[0].clone();
    for (job, task) in [("nightly", &other), ("extract", &task)] {
        let stop = change(job, task, Some(1), START + 300);
        triage
            .respond(stop.into(), Invocation::default())
            .await
            .unwrap();
    }
    let told: Vec<String> = world
        .notifier
        .sent()
        .into_iter()
        .map(|p| p.subject)
        .collect();
    assert_eq!(told.len(), 2, "no storm across jobs: {told:?}");
    assert!(told[1].contains("job extract attempt 1 failed"), "{told:?}");
}
