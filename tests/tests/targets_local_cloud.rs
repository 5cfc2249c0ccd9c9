//! `alarm-scaler`'s target policies end to end on the local cloud: a real SQS queue's backlog
//! (SendMessageBatch) and a metric put with PutMetricData size a worker service from zero on
//! the tick, read back with DescribeServices; drained, it is held by the stabilisation window
//! and reaches zero after the delay.

use std::time::{Duration, Instant};

use autopilot_tests::scaler::{scaling_config, targets_config, ScalerStack, QUEUE_WORKER};
use serde_json::json;

/// The stabilisation window and the wait before zero: short, so that the test sees both pass.
const WINDOW_S: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_and_a_metric_size_a_worker_from_zero_and_back_to_zero() {
    let (_cloud, _triage, scaler) = ScalerStack::on_local_cloud(|account| {
        json!({"scaling": {
            "alarms": scaling_config(60)["alarms"],
            "targets": targets_config(account, WINDOW_S),
        }})
    })
    .await
    .expect("deploy the scaler on the local cloud");
    assert_eq!(scaler.desired_of(QUEUE_WORKER).await.unwrap(), 0);

    // 250 messages at 50 a task: 5 tasks in one tick, from zero, with no alarm to wait for.
    scaler.send_messages(250).await.unwrap();
    let sized = scaler.tick_for(QUEUE_WORKER).await.unwrap();
    let backlog = sized["signals"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "orders-backlog"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(backlog["value"], 250.0, "{sized}");
    assert_eq!(backlog["recommendation"], 5, "{sized}");
    assert_eq!(sized["desired_from"], 0, "{sized}");
    assert_eq!(sized["desired_to"], 5, "{sized}");
    assert_eq!(sized["decided_by"], "orders-backlog", "{sized}");
    assert_eq!(scaler.desired_of(QUEUE_WORKER).await.unwrap(), 5);

    // The metric (80 jobs at 10 a task) asks for more: the larger of the two decides.
    scaler.put_jobs_waiting(80.0).await.unwrap();
    let sized = scaler.tick_for(QUEUE_WORKER).await.unwrap();
    assert_eq!(sized["desired_to"], 8, "{sized}");
    assert_eq!(sized["decided_by"], "jobs-waiting", "{sized}");
    assert_eq!(scaler.desired_of(QUEUE_WORKER).await.unwrap(), 8);

    // Drained: the window holds 8 at first.
    scaler.purge_queue().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the metric's next second
    scaler.put_jobs_waiting(0.0).await.unwrap();
    let held = scaler.tick_for(QUEUE_WORKER).await.unwrap();
    assert_eq!(held["desired_to"], 8, "{held}");
    assert_eq!(held["bounded_by"], "stabilization", "{held}");
    assert_eq!(scaler.desired_of(QUEUE_WORKER).await.unwrap(), 8);

    // Ticks until the window and the wait before zero have passed: down to 0, never up.
    let started = Instant::now();
    let mut seen = vec![8];
    while seen.last() != Some(&0) && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let tick = scaler.tick_for(QUEUE_WORKER).await.unwrap();
        let to = tick["desired_to"].as_i64().unwrap_or(-1) as i32;
        if seen.last() != Some(&to) {
            seen.push(to);
        }
    }
    assert_eq!(seen.last(), Some(&0), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[1] < w[0]), "{seen:?}");
    assert_eq!(scaler.desired_of(QUEUE_WORKER).await.unwrap(), 0);
}
