//! The cost of `alarm-scaler`'s tick for 100 services sized by target policies: the AWS calls one
//! tick makes (counted on the in-memory ports) and the time of its decisions, pure and through
//! the handler.

use std::hint::black_box;
use std::time::{Duration, Instant};

use autopilot::app::scaler::{AlarmScaler, ScalerResponse};
use autopilot::config::StackConfig;
use autopilot::entry::{Invocation, Mode};
use autopilot::scaling::target::{by_service, Reading};
use autopilot::scaling::tick::{decide_tick, TickInput};
use autopilot::scaling::{ScalingMemory, ServiceObservation};
use autopilot::testkit::{steady_service, World};

/// Services in the tick.
pub const SERVICES: usize = 100;

fn queue(i: usize) -> String {
    format!("https://sqs.us-east-1.amazonaws.com/111122223333/work-{i:03}")
}

/// 100 services of 3 clusters, each sized by its queue (50 a task); every other one also by
/// a metric (10 a task).
fn config() -> String {
    let mut targets = Vec::new();
    for i in 0..SERVICES {
        let (cluster, service) = (format!("c{}", i % 3), format!("worker-{i:03}"));
        targets.push(format!(
            r#""q{i:03}": {{"cluster": "{cluster}", "service": "{service}", "min": 0, "max": 50,
            "target_per_task": 50, "sqs": {{"queues": ["{}"]}}}}"#,
            queue(i)
        ));
        if i % 2 == 0 {
            targets.push(format!(
                r#""m{i:03}": {{"cluster": "{cluster}", "service": "{service}", "min": 0,
                "max": 50, "target_per_task": 10, "metric": {{"namespace": "Work",
                "metric_name": "Waiting", "dimensions": {{"Service": "{service}"}}}}}}"#
            ));
        }
    }
    format!(r#"{{"scaling": {{"targets": {{{}}}}}}}"#, targets.join(","))
}

/// The calls of the first live tick of 100 services (by operation, in the order first made) and
/// the median time of one tick through the handler on the in-memory ports.
pub fn handler_tick(ticks: usize) -> (Vec<(&'static str, usize)>, f64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let world = World::new();
    for i in 0..SERVICES {
        let service = format!("worker-{i:03}");
        world
            .ecs
            .set_service(&format!("c{}", i % 3), &service, steady_service(2, 2));
        world.signals.set_backlog(&queue(i), 40 * i as u64, 0);
        world
            .signals
            .set_metric(&format!("m{i:03}"), (i % 7) as f64);
    }
    let setup = world.setup(Mode::Live, StackConfig::parse(&config()).expect("config"));
    let scaler = AlarmScaler::new(setup, None).expect("scaler");
    let event: serde_json::Value = serde_json::json!({"tick": true});
    let tick = || async {
        match scaler
            .handle(event.clone().into(), Invocation::default())
            .await
        {
            Ok(ScalerResponse::Tick { services, .. }) => assert_eq!(services.len(), SERVICES),
            other => panic!("{other:?}"),
        }
    };
    runtime.block_on(tick());
    let mut calls: Vec<(&'static str, usize)> = Vec::new();
    for operation in world.calls.log() {
        match calls.iter_mut().find(|(op, _)| *op == operation) {
            Some((_, n)) => *n += 1,
            None => calls.push((operation, 1)),
        }
    }
    let mut times = Vec::new();
    for _ in 0..ticks {
        world.clock.advance(Duration::from_secs(60));
        let started = Instant::now();
        runtime.block_on(tick());
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (calls, times[times.len() / 2])
}

/// Pure decisions of 100 services a second, one core (each service's decision from its
/// readings, observation and memory).
pub fn decisions_per_s(budget: Duration) -> f64 {
    let config = StackConfig::parse(&config()).expect("config");
    let services = by_service(&config.scaling.targets).expect("services");
    let readings = services
        .iter()
        .flat_map(|s| s.targets.iter())
        .enumerate()
        .map(|(i, (name, _))| ((*name).to_owned(), Reading::Value((i * 37 % 400) as f64)))
        .collect();
    let memory = ScalingMemory::default();
    let observed = ServiceObservation {
        desired: 3,
        running: 3,
        deployment_in_progress: false,
    };
    let started = Instant::now();
    let mut decided = 0u64;
    while started.elapsed() < budget {
        for service in &services {
            black_box(decide_tick(&TickInput {
                service,
                readings: black_box(&readings),
                observed,
                memory: &memory,
                alarms: &[],
                scheduled: &Default::default(),
                now: 1_000_000,
            }));
            decided += 1;
        }
    }
    decided as f64 / started.elapsed().as_secs_f64()
}
