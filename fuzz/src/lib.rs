//! Structure-aware fuzzing of each function's parse + decide path, in process and offline (no
//! AWS call): the fixtures are mutated as JSON trees (type swaps, deleted and duplicated keys,
//! huge strings, arrays and numbers, deep nesting, escapes and lone surrogates) and as text
//! (truncation, bytes that are not JSON), then handed to the same handler object Lambda calls.
//! Each input must end in an answer or a named error within a time bound; a panic or an input
//! over the bound is a finding, kept with the input that caused it.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autopilot::app::batch::BatchRunner;
use autopilot::app::scaler::AlarmScaler;
use autopilot::app::triage::TaskTriage;
use autopilot::app::{Backend, Setup};
use autopilot::config::StackConfig;
use autopilot::entry::Invocation;
use autopilot::events::InboundEvent;
use autopilot::ports::SystemClock;
use autopilot::scaling::ServiceObservation;
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;
use serde_json::Value;

/// The function whose path is fuzzed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    Triage,
    Scaler,
    Batch,
}

impl Function {
    pub const ALL: [Function; 3] = [Function::Triage, Function::Scaler, Function::Batch];

    /// The function named `name` (`task-triage` …).
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Triage => "task-triage",
            Self::Scaler => "alarm-scaler",
            Self::Batch => "batch-runner",
        }
    }

    /// The fixture directories its seeds come from (under the fixtures root).
    fn seed_dirs(self) -> &'static [&'static str] {
        match self {
            Self::Triage => &["ecs", "service"],
            Self::Scaler => &["alarms"],
            Self::Batch => &["schedule"],
        }
    }
}

/// The configuration the handlers run with: a scaling policy for the alarm fixtures and a job
/// for the schedule fixtures, so that mutated inputs reach the deciding code, not only the
/// "not configured" answers.
pub const CONFIG: &str = r#"{
  "scaling": {"alarms": {"orders-queue-backlog-high": {
    "cluster": "shop", "service": "orders-worker", "min": 0, "max": 10,
    "alarm_steps": [{"lower": 0, "upper": 100, "adjustment": 1}, {"lower": 100, "adjustment": 3}],
    "ok_steps": [{"upper": 0, "adjustment": -1}], "repeat_while_alarm": true}}},
  "jobs": {"invoice-export": {
    "cluster": "shop", "task_definition": "invoice-export:3", "count": 2,
    "launch_type": "FARGATE", "network": {"subnets": ["subnet-1"]}, "timeout_s": 3600}}
}"#;

/// One function's handler, built once as a cold start would build it (offline backend).
enum Handler {
    Triage(TaskTriage),
    Scaler(AlarmScaler),
    Batch(BatchRunner),
}

impl Handler {
    fn new(function: Function) -> Self {
        let setup = Setup::new(
            StackConfig::parse(CONFIG).expect("the fuzz configuration is valid"),
            Backend::Offline,
            Arc::new(SystemClock),
            Some("us-east-1".into()),
            autopilot::trust::Accounts::new(Some("111122223333".into()), [], None),
        )
        .expect("the fuzz setup is valid");
        match function {
            Function::Triage => Self::Triage(TaskTriage::new(setup)),
            Function::Scaler => {
                let assumed = ServiceObservation {
                    desired: 2,
                    running: 2,
                    deployment_in_progress: false,
                };
                Self::Scaler(AlarmScaler::new(setup, Some(assumed)).expect("scaler setup"))
            }
            Function::Batch => Self::Batch(BatchRunner::new(setup)),
        }
    }

    /// Handles one input as Lambda would: text the runtime cannot read as JSON is refused
    /// before the handler (`InvalidJson`), so is an event over the size limit (as `serve`
    /// does); the handler answers or names its error.
    async fn handle(&self, text: &str) -> Result<(), Rejection> {
        let Ok(event) = InboundEvent::from_text(text) else {
            return Err(Rejection {
                kind: "InvalidJson",
                message_bytes: 0,
            });
        };
        let event = event.admitted().map_err(Rejection::of)?;
        let invocation = Invocation::default();
        let result = match self {
            Self::Triage(f) => f.respond(event, invocation).await.map(drop),
            Self::Scaler(f) => f.handle(event, invocation).await.map(drop),
            Self::Batch(f) => f.handle(event, invocation).await.map(drop),
        };
        result.map_err(Rejection::of)
    }
}

/// How an input was refused: the error type, and how long the message a person reads is.
struct Rejection {
    kind: &'static str,
    message_bytes: usize,
}

impl Rejection {
    fn of(error: autopilot::AutopilotError) -> Self {
        Self {
            kind: error.error_type(),
            message_bytes: error.to_string().len(),
        }
    }
}

/// What one run found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub inputs: usize,
    pub answered: usize,
    /// Rejections by error type.
    pub rejected: BTreeMap<&'static str, usize>,
    /// Inputs that panicked, with the panic message.
    pub panics: Vec<(String, String)>,
    /// Inputs over the time bound, with the time taken.
    pub slow: Vec<(String, Duration)>,
    pub slowest: Duration,
    /// The longest error message (bytes): errors quote the event, never all of it.
    pub longest_error: usize,
    pub elapsed: Duration,
    pub largest_input: usize,
}

impl Report {
    pub fn findings(&self) -> usize {
        self.panics.len() + self.slow.len()
    }

    pub fn summary(&self, function: Function) -> String {
        let rejected: Vec<String> = self
            .rejected
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        format!(
            "{}: {} inputs in {:.1} s ({:.0}/s), {} answered, rejected: {}; panics {}, over the bound {}; slowest {:.1} ms; largest input {} KiB; longest error {} B",
            function.name(),
            self.inputs,
            self.elapsed.as_secs_f64(),
            self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.answered,
            rejected.join(", "),
            self.panics.len(),
            self.slow.len(),
            self.slowest.as_secs_f64() * 1e3,
            self.largest_input / 1024,
            self.longest_error,
        )
    }
}

/// The seeds of `function`: its fixtures, as JSON trees.
pub fn seeds(fixtures: &Path, function: Function) -> Vec<Value> {
    let mut seeds = Vec::new();
    for dir in function.seed_dirs() {
        let mut files: Vec<_> = std::fs::read_dir(fixtures.join(dir))
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            if let Some(value) = std::fs::read_to_string(file)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
            {
                seeds.push(value);
            }
        }
    }
    seeds
}

/// Runs `inputs` mutated inputs through `function`'s handler; an input taking longer than
/// `bound` counts as a hang.
pub fn run(
    function: Function,
    seeds: &[Value],
    inputs: usize,
    seed: u64,
    bound: Duration,
) -> Report {
    let mut mutator = Mutator::new(seed);
    check(function, (0..inputs).map(|_| mutator.input(seeds)), bound)
}

/// Runs each of `texts` through `function`'s handler (a cold start's handler, offline).
pub fn check(function: Function, texts: impl Iterator<Item = String>, bound: Duration) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let handler = Handler::new(function);
    let mut report = Report::default();
    let panic_message = Arc::new(Mutex::new(String::new()));
    let previous_hook = std::panic::take_hook();
    {
        let panic_message = panic_message.clone();
        std::panic::set_hook(Box::new(move |info| {
            *panic_message.lock().unwrap_or_else(|p| p.into_inner()) = info.to_string();
        }));
    }
    let started = Instant::now();
    for text in texts {
        report.largest_input = report.largest_input.max(text.len());
        let at = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| runtime.block_on(handler.handle(&text))));
        let took = at.elapsed();
        report.inputs += 1;
        report.slowest = report.slowest.max(took);
        match outcome {
            Ok(Ok(())) => report.answered += 1,
            Ok(Err(rejection)) => {
                *report.rejected.entry(rejection.kind).or_default() += 1;
                report.longest_error = report.longest_error.max(rejection.message_bytes);
            }
            Err(_) => {
                let message = panic_message
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                report.panics.push((text.clone(), message));
            }
        }
        if took > bound {
            report.slow.push((text, took));
        }
    }
    report.elapsed = started.elapsed();
    std::panic::set_hook(previous_hook);
    report
}

/// Mutations of JSON trees and text, from a seeded generator (a run is repeatable).
pub struct Mutator {
    rng: XorShiftRng,
}

/// Marks a node replaced by raw text after serialization (what a tree cannot hold: duplicate
/// keys, lone surrogates, numbers out of range, nesting deeper than the serializer recurses).
const MARK: &str = "\u{1}raw\u{1}";

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: XorShiftRng::seed_from_u64(seed),
        }
    }

    /// One input: a seed (now and then another function's) with 1–4 mutations.
    pub fn input(&mut self, seeds: &[Value]) -> String {
        let mut tree = seeds[self.rng.random_range(0..seeds.len())].clone();
        let mut raw = None;
        for _ in 0..self.rng.random_range(1..=4) {
            raw = self.mutate_tree(&mut tree).or(raw);
        }
        let mut text = serde_json::to_string(&tree).unwrap_or_default();
        if let Some(raw) = raw {
            let marker = serde_json::to_string(MARK).unwrap_or_default();
            text = text.replacen(&marker, &raw, 1);
        }
        match self.rng.random_range(0..20) {
            0 => self.truncate(text),
            1 => self.garble(text),
            _ => text,
        }
    }

    /// Pointers to every node of `tree`.
    fn pointers(tree: &Value) -> Vec<String> {
        fn walk(node: &Value, at: String, out: &mut Vec<String>) {
            match node {
                Value::Object(map) => {
                    for (key, child) in map {
                        let escaped = key.replace('~', "~0").replace('/', "~1");
                        walk(child, format!("{at}/{escaped}"), out);
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate().take(64) {
                        walk(child, format!("{at}/{i}"), out);
                    }
                }
                _ => {}
            }
            out.push(at);
        }
        let mut out = Vec::new();
        walk(tree, String::new(), &mut out);
        out
    }

    /// Mutates one node; gives raw text when the node became the [`MARK`].
    fn mutate_tree(&mut self, tree: &mut Value) -> Option<String> {
        let pointers = Self::pointers(tree);
        let pointer = pointers[self.rng.random_range(0..pointers.len())].clone();
        let kind = self.rng.random_range(0..11);
        let node = tree.pointer_mut(&pointer)?;
        match kind {
            0 | 1 => *node = self.other_type(node),
            2 => {
                if let Value::Object(map) = node {
                    if !map.is_empty() {
                        let i = self.rng.random_range(0..map.len());
                        let key = map.keys().nth(i).cloned().unwrap_or_default();
                        map.remove(&key);
                    }
                }
            }
            3 => *node = Value::String(self.huge_string()),
            4 => {
                let item = match self.rng.random_bool(0.5) {
                    true => node.clone(),
                    false => Value::from(self.rng.random_range(-5i64..5)),
                };
                // Up to 20,000 items, and about 300 KB at most.
                let size = item.to_string().len().max(1);
                let n = self.rng.random_range(1..=20_000).min(300_000 / size).max(1);
                *node = Value::Array(vec![item; n]);
            }
            5 => *node = Value::String(self.tricky_string()),
            6 => {
                let Value::Object(map) = node else {
                    return None;
                };
                let raw = self.duplicated_keys(map);
                *node = Value::String(MARK.into());
                return Some(raw);
            }
            7 => {
                let raw = self.odd_number();
                *node = Value::String(MARK.into());
                return Some(raw);
            }
            8 => {
                let depth = self.rng.random_range(10..=5_000);
                let (open, close) = match self.rng.random_bool(0.5) {
                    true => ("[", "]"),
                    false => ("{\"a\":", "}"),
                };
                *node = Value::String(MARK.into());
                return Some(format!("{}1{}", open.repeat(depth), close.repeat(depth)));
            }
            9 => {
                let raw = [
                    "\"\\ud800\"",
                    "\"\\udfff x\"",
                    "\"\\u0000\"",
                    "\"\\uD83D\\uDE00\"",
                ][self.rng.random_range(0..4)];
                *node = Value::String(MARK.into());
                return Some(raw.to_owned());
            }
            _ => {
                // A value from elsewhere in the tree (a string where an object was …).
                let other = pointers[self.rng.random_range(0..pointers.len())].clone();
                if !other.starts_with(&pointer) {
                    let value = tree.pointer(&other).cloned();
                    if let (Some(value), Some(node)) = (value, tree.pointer_mut(&pointer)) {
                        *node = value;
                    }
                }
            }
        }
        None
    }

    fn other_type(&mut self, node: &Value) -> Value {
        loop {
            let candidate = match self.rng.random_range(0..7) {
                0 => Value::Null,
                1 => Value::Bool(self.rng.random_bool(0.5)),
                2 => Value::from(self.rng.random_range(i64::MIN..i64::MAX)),
                3 => serde_json::json!(self.rng.random_range(-1e6..1e6)),
                4 => Value::String(node.to_string().chars().take(40).collect()),
                5 => Value::Array(vec![node.clone()]),
                _ => serde_json::json!({"value": node.clone()}),
            };
            if std::mem::discriminant(&candidate) != std::mem::discriminant(node) {
                return candidate;
            }
        }
    }

    fn huge_string(&mut self) -> String {
        // Mostly within the size an event may have (256 KiB), now and then beyond it.
        let len = match self.rng.random_range(0..16) {
            0..=5 => self.rng.random_range(0..64),
            6..=11 => self.rng.random_range(1_000..10_000),
            12..=14 => self.rng.random_range(100_000..250_000),
            _ => self.rng.random_range(250_000..1_100_000),
        };
        let unit = ["a", "\"", "\\", "é", "💥", "\n", "<b>*_`", " "][self.rng.random_range(0..8)];
        unit.repeat(len / unit.len().max(1))
    }

    fn tricky_string(&mut self) -> String {
        let options = [
            "",
            " ",
            "\u{0}",
            "arn:aws:ecs:us-east-1:111122223333:task/",
            "arn:",
            ":::::",
            "service:",
            "ecs-svc/",
            "\u{202e}rtl",
            "<script>alert(1)</script>",
            "*bold* _it_ `code` <@here>",
            "🦀🦀🦀",
            "STOPPED",
            "ALARM",
            "2026-13-45T99:99:99Z",
            "-1",
            "1e999",
        ];
        options[self.rng.random_range(0..options.len())].to_owned()
    }

    fn duplicated_keys(&mut self, map: &serde_json::Map<String, Value>) -> String {
        let mut parts: Vec<String> = map
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
            .collect();
        if let Some(first) = map.keys().next() {
            let repeated = format!(
                "{}:{}",
                Value::from(first.as_str()),
                self.other_type(&map[first])
            );
            let at = self.rng.random_range(0..=parts.len());
            parts.insert(at, repeated);
        } else {
            parts.push("\"k\":1,\"k\":2".into());
        }
        format!("{{{}}}", parts.join(","))
    }

    fn odd_number(&mut self) -> String {
        let options = [
            "1e999",
            "-1e999",
            "18446744073709551616",
            "-9223372036854775809",
            "1e-400",
            "-0",
            "0.0000000000000000000000001",
            "123456789012345678901234567890",
            "4294967296",
            "-1",
            "1.5",
        ];
        options[self.rng.random_range(0..options.len())].to_owned()
    }

    fn truncate(&mut self, text: String) -> String {
        let mut at = self.rng.random_range(0..=text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text[..at].to_owned()
    }

    fn garble(&mut self, text: String) -> String {
        let bytes: Vec<u8> = (0..self.rng.random_range(1..64))
            .map(|_| self.rng.random_range(0..=255u8))
            .collect();
        let noise = String::from_utf8_lossy(&bytes).into_owned();
        match self.rng.random_bool(0.5) {
            true => format!("{noise}{text}"),
            false => noise,
        }
    }
}
