//! `make bench`: (a) offline parse+classify throughput over the fixtures on one core, (b) init
//! time and peak RSS of a function binary served by a minimal local Lambda Runtime API stub,
//! beside the bare `lambda-echo` baseline. Prints a Markdown table for the README.
//!
//! The same for `alarm-scaler` (offline parse+decide throughput over the alarm fixtures) and
//! `batch-runner` (parse+plan throughput of a job request), with their init and peak RSS.
//! For `alarm-scaler`'s tick: the AWS calls and the decision time for 100 services sized by
//! target policies ([`tick`]). Last, what the first AWS call of a fresh process costs against the next one (clients and the
//! HTTPS connector are set up on first use, not at init).
//!
//! Usage: `autopilot-bench FIXTURES_ROOT BIN_DIR` (`tests/fixtures`, `target/release`).

use std::collections::VecDeque;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autopilot::aws::{ssm, AwsClients};
use autopilot::batch::{run_task_request, split, JobSpec, Placement};
use autopilot::events::alarm::{parse_scaler_event, ScalerEvent};
use autopilot::events::ecs::{parse_triage_input, TaskStateChange, TriageInput};
use autopilot::events::schedule::{parse_runner_event, RunnerEvent};
use autopilot::scaling::{
    decide, ScalingInput, ScalingMemory, ScalingPolicy, ServiceObservation, Trigger,
};
use autopilot::triage::classify;

mod tick;

const RUNS: usize = 15;
const INVOCATIONS: usize = 200;

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if args.first().is_some_and(|a| a == FIRST_CALL_CHILD) {
        first_call_child();
        return;
    }
    let [fixtures, bin_dir] = args.as_slice() else {
        eprintln!("usage: autopilot-bench FIXTURES_ROOT BIN_DIR");
        std::process::exit(2);
    };
    let echo = bin_dir.join("lambda-echo");
    let baseline_events: Vec<String> = vec!["{}".to_owned()];
    let baseline = measure_runs(&echo, &baseline_events);

    let texts = fixture_texts(&fixtures.join("ecs"));
    let rate = throughput(&texts, Duration::from_secs(3));
    println!("| task-triage | value | target |");
    println!("|---|---|---|");
    println!(
        "| parse+classify throughput, one core, {} fixtures repeated | {:.0} events/s | ≥ 100000 |",
        texts.len(),
        rate
    );
    let (parse_ns, classify_ns) = stage_costs(&texts);
    println!(
        "| of which: parse / classify, per event | {parse_ns:.0} ns / {classify_ns:.0} ns | — |"
    );
    let silent_events: Vec<String> = [
        "service-deployment-scale-in",
        "user-stopped",
        "batch-succeeded",
    ]
    .iter()
    .map(|name| {
        std::fs::read_to_string(fixtures.join(format!("ecs/{name}.json"))).expect("fixture")
    })
    .collect();
    print_process_rows(
        &measure_runs(&bin_dir.join("task-triage"), &silent_events),
        &baseline,
    );

    let alarms = fixture_texts(&fixtures.join("alarms"));
    println!("\n| alarm-scaler | value | target |");
    println!("|---|---|---|");
    println!(
        "| parse+decide throughput offline, one core, {} alarm fixtures repeated | {:.0} decisions/s | — |",
        alarms.len(),
        scaling_throughput(&alarms, Duration::from_secs(3))
    );
    // Alarms without a policy: the scaler answers without any AWS call.
    print_process_rows(
        &measure_runs(&bin_dir.join("alarm-scaler"), &alarms),
        &baseline,
    );

    let (calls, tick_ms) = tick::handler_tick(RUNS);
    let calls: Vec<String> = calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
    println!(
        "| tick of {} services (target policies, 150 signals, 3 clusters): AWS calls of the first | {} | — |",
        tick::SERVICES,
        calls.join(", ")
    );
    println!(
        "| tick of {} services through the handler on in-memory ports, median of {RUNS} | {tick_ms:.2} ms | — |",
        tick::SERVICES
    );
    println!(
        "| pure decision of one service's tick, one core | {:.0} decisions/s | — |",
        tick::decisions_per_s(Duration::from_secs(2))
    );

    println!("\n| batch-runner | value | target |");
    println!("|---|---|---|");
    println!(
        "| parse+plan throughput offline, one core (a 23-task job: 3 RunTask requests) | {:.0} runs/s | — |",
        planning_throughput(Duration::from_secs(3))
    );
    // Ticks with no job that has a timeout: the runner answers without any AWS call.
    let ticks = vec![r#"{"tick": true}"#.to_owned()];
    print_process_rows(
        &measure_runs(&bin_dir.join("batch-runner"), &ticks),
        &baseline,
    );

    let (first, next) = first_aws_call();
    println!("\n| AWS clients (all functions) | value | target |");
    println!("|---|---|---|");
    println!(
        "| first AWS call of an environment (client, HTTPS connector, trust store) / the next call, median of {RUNS} | {first:.2} ms / {next:.2} ms | — |"
    );
}

const FIRST_CALL_CHILD: &str = "--first-aws-call";

/// What the first AWS call of a fresh process costs (it builds the client and the HTTPS
/// connector, which loads the system trust store) and what the next one costs, each call an SSM
/// GetParameter answered by a local endpoint stub. Fresh processes, medians.
fn first_aws_call() -> (f64, f64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_ssm(stream));
        }
    });
    let own = std::env::current_exe().expect("own path");
    let mut firsts = Vec::new();
    let mut nexts = Vec::new();
    for _ in 0..RUNS {
        let output = Command::new(&own)
            .arg(FIRST_CALL_CHILD)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_SESSION_TOKEN", "bench")
            .output()
            .expect("spawn the first-call probe");
        let text = String::from_utf8_lossy(&output.stdout);
        let mut numbers = text.split_whitespace().map(|n| n.parse::<f64>());
        match (numbers.next(), numbers.next()) {
            (Some(Ok(first)), Some(Ok(next))) => {
                firsts.push(first / 1000.0);
                nexts.push(next / 1000.0);
            }
            _ => panic!(
                "first-call probe failed: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
    (median(firsts), median(nexts))
}

/// The probe process: two GetParameter calls, their durations in µs on one line.
fn first_call_child() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let clients = AwsClients::from_env(autopilot::entry::in_lambda()).await;
        let mut micros = Vec::new();
        for _ in 0..2 {
            let started = Instant::now();
            let value = ssm::parameter_value(clients.ssm(), "bench")
                .await
                .expect("GetParameter against the stub");
            assert_eq!(value, "{}");
            micros.push(started.elapsed().as_micros());
        }
        println!("{} {}", micros[0], micros[1]);
    });
}

/// Answers every request on a connection as SSM GetParameter would.
fn serve_ssm(stream: TcpStream) {
    let body = r#"{"Parameter":{"Name":"bench","Type":"String","Value":"{}","Version":1}}"#;
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    while read_request(&mut reader).is_some() {
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Job requests per second: JSON text → job request → the run's RunTask requests.
fn planning_throughput(budget: Duration) -> f64 {
    let job: JobSpec = serde_json::from_str(
        r#"{"cluster": "shop", "task_definition": "invoice-export:3", "count": 23,
            "capacity_provider_strategy": [{"capacity_provider": "FARGATE_SPOT", "weight": 1}],
            "network": {"subnets": ["subnet-1", "subnet-2"], "security_groups": ["sg-1"]},
            "overrides": [{"name": "invoice-export", "command": ["export"], "environment": {"MODE": "full"}}],
            "tags": {"team": "billing"}}"#,
    )
    .expect("job");
    let text = r#"{"job": "invoice-export", "scheduled_time": "2026-09-15T02:00:00Z"}"#;
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget {
        let value: serde_json::Value = serde_json::from_str(black_box(text)).expect("json");
        let RunnerEvent::Run(request) = parse_runner_event(&value).expect("event") else {
            continue;
        };
        let run_id = request.scheduled_time.as_deref().unwrap_or("-");
        let requests: Vec<_> = split(job.count)
            .into_iter()
            .enumerate()
            .map(|(call, count)| {
                run_task_request(
                    &request.job,
                    &job,
                    run_id,
                    0,
                    call,
                    1,
                    count,
                    Placement::Primary,
                )
            })
            .collect();
        black_box(requests);
        runs += 1;
    }
    runs as f64 / started.elapsed().as_secs_f64()
}

fn print_process_rows(function: &Measurement, baseline: &Measurement) {
    println!(
        "| init (spawn → first /next), median of {RUNS} | {:.2} ms ({:.2}× echo's {:.2} ms) | ≤ 1.5× echo |",
        function.init_ms,
        function.init_ms / baseline.init_ms,
        baseline.init_ms
    );
    println!(
        "| peak RSS after {INVOCATIONS} invocations, median | {:.1} MB (echo {:.1} MB) | ≤ 20 MB |",
        function.peak_rss_kb as f64 / 1024.0,
        baseline.peak_rss_kb as f64 / 1024.0
    );
    println!(
        "| warm invocation round trip, median | {:.0} µs (echo {:.0} µs) | — |",
        function.invoke_us, baseline.invoke_us
    );
}

/// Decisions per second of JSON text → alarm transition → step-scaling decision.
fn scaling_throughput(texts: &[String], budget: Duration) -> f64 {
    let policy: ScalingPolicy = serde_json::from_str(
        r#"{"cluster": "shop", "service": "orders-worker", "min": 0, "max": 50, "alarm_steps": [{"lower": 0, "upper": 100, "adjustment": 1},
            {"lower": 100, "upper": 500, "adjustment": 3}, {"lower": 500, "adjustment": 5}],
            "ok_steps": [{"upper": 0, "adjustment": -1}]}"#,
    )
    .expect("policy");
    let started = Instant::now();
    let mut decisions = 0u64;
    while started.elapsed() < budget {
        for text in texts {
            let value: serde_json::Value = serde_json::from_str(black_box(text)).expect("json");
            let ScalerEvent::Transition(alarm) = parse_scaler_event(&value).expect("event") else {
                continue;
            };
            black_box(decide(&ScalingInput {
                policy: &policy,
                state: alarm.state,
                trigger: Trigger::Transition,
                metric_value: alarm.metric_value,
                threshold: alarm.threshold,
                service: ServiceObservation {
                    desired: 4,
                    running: 4,
                    deployment_in_progress: false,
                },
                target_bounds: None,
                memory: ScalingMemory::default(),
                now: 1_000_000,
            }));
            decisions += 1;
        }
    }
    decisions as f64 / started.elapsed().as_secs_f64()
}

fn fixture_texts(dir: &Path) -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("fixture"))
        .collect()
}

/// The handler's parse: JSON text → typed envelope and detail.
fn parse(text: &str) -> Box<TaskStateChange> {
    match parse_triage_input(text).expect("event") {
        TriageInput::TaskStateChange(change) => change,
        other => panic!("not a task state change fixture: {other:?}"),
    }
}

/// Events per second of JSON text → envelope → typed detail → diagnosis.
fn throughput(texts: &[String], budget: Duration) -> f64 {
    let started = Instant::now();
    let mut events = 0u64;
    while started.elapsed() < budget {
        for text in texts {
            let change = parse(black_box(text));
            black_box(classify(&change.detail));
            events += 1;
        }
    }
    events as f64 / started.elapsed().as_secs_f64()
}

/// Nanoseconds per event spent parsing and spent classifying.
fn stage_costs(texts: &[String]) -> (f64, f64) {
    let rounds = 20_000 / texts.len().max(1);
    let started = Instant::now();
    let mut parsed = Vec::with_capacity(texts.len());
    for _ in 0..rounds {
        parsed.clear();
        for text in texts {
            parsed.push(parse(black_box(text)));
        }
    }
    let parse = started.elapsed().as_nanos() as f64 / (rounds * texts.len()) as f64;
    let started = Instant::now();
    for _ in 0..rounds {
        for change in &parsed {
            black_box(classify(black_box(&change.detail)));
        }
    }
    let classify_ns = started.elapsed().as_nanos() as f64 / (rounds * texts.len()) as f64;
    (parse, classify_ns)
}

struct Measurement {
    init_ms: f64,
    peak_rss_kb: u64,
    invoke_us: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn measure_runs(binary: &Path, events: &[String]) -> Measurement {
    let runs: Vec<Measurement> = (0..RUNS).map(|_| measure_once(binary, events)).collect();
    Measurement {
        init_ms: median(runs.iter().map(|m| m.init_ms).collect()),
        peak_rss_kb: median(runs.iter().map(|m| m.peak_rss_kb as f64).collect()) as u64,
        invoke_us: median(runs.iter().map(|m| m.invoke_us).collect()),
    }
}

/// What the stub tells the measuring thread.
enum Signal {
    FirstNext(Instant),
    AllAnswered(Instant),
}

struct Stub {
    queue: VecDeque<String>,
    issued: usize,
    answered: usize,
    /// Invocations the function answered with an error, and init errors.
    errors: usize,
    seen_first_next: bool,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
    }
    if !chunked {
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).ok()?;
        return Some((request_line, body));
    }
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).ok()?;
        let size =
            usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16).ok()?;
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            return Some((request_line, body));
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

fn serve_connection(stream: TcpStream, stub: Arc<Mutex<Stub>>, signals: mpsc::Sender<Signal>) {
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    while let Some((request_line, _body)) = read_request(&mut reader) {
        if request_line.starts_with("GET ") && request_line.contains("/runtime/invocation/next") {
            let event = {
                let mut stub = stub.lock().unwrap();
                if !stub.seen_first_next {
                    stub.seen_first_next = true;
                    let _ = signals.send(Signal::FirstNext(Instant::now()));
                }
                stub.issued += 1;
                stub.queue.pop_front()
            };
            let Some(event) = event else {
                // No more work: hold the connection the way Lambda freezes an idle runtime.
                std::thread::sleep(Duration::from_secs(60));
                return;
            };
            let id = stub.lock().unwrap().issued;
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-{id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:111122223333:function:bench\r\nContent-Length: {}\r\n\r\n",
                event.len()
            );
            if writer
                .write_all(head.as_bytes())
                .and_then(|_| writer.write_all(event.as_bytes()))
                .is_err()
            {
                return;
            }
        } else {
            let done = {
                let mut stub = stub.lock().unwrap();
                stub.answered += 1;
                if request_line.contains("/error") {
                    stub.errors += 1;
                }
                stub.queue.is_empty() && stub.answered == stub.issued
            };
            if writer
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .is_err()
            {
                return;
            }
            if done {
                let _ = signals.send(Signal::AllAnswered(Instant::now()));
            }
        }
    }
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn measure_once(binary: &Path, events: &[String]) -> Measurement {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let queue: VecDeque<String> = events.iter().cycle().take(INVOCATIONS).cloned().collect();
    let stub = Arc::new(Mutex::new(Stub {
        queue,
        issued: 0,
        answered: 0,
        errors: 0,
        seen_first_next: false,
    }));
    let (signals, received) = mpsc::channel();
    {
        let stub = stub.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (stub, signals) = (stub.clone(), signals.clone());
                std::thread::spawn(move || serve_connection(stream, stub, signals));
            }
        });
    }
    let spawned = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_SESSION_TOKEN", "bench")
        .env(
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:us-east-1:111122223333:bench",
        )
        .env("AUTOPILOT_CONFIG", "{}")
        .env("STATE_TABLE", "bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn function");
    let wait = |what: &str| {
        received
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{}: no {what} within 30 s", binary.display()))
    };
    let Signal::FirstNext(first_next) = wait("first /next") else {
        panic!("protocol")
    };
    let Signal::AllAnswered(finished) = wait("answers") else {
        panic!("protocol")
    };
    let rss = peak_rss_kb(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let errors = stub.lock().unwrap().errors;
    assert_eq!(
        errors,
        0,
        "{}: {errors} of {INVOCATIONS} invocations answered with an error",
        binary.display()
    );
    Measurement {
        init_ms: (first_next - spawned).as_secs_f64() * 1000.0,
        peak_rss_kb: rss,
        invoke_us: (finished - first_next).as_secs_f64() * 1e6 / INVOCATIONS as f64,
    }
}
