//! Running a function: under the Lambda runtime when `AWS_LAMBDA_RUNTIME_API` is set, otherwise
//! as a CLI over event files that prints one JSON result line per event.

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, LambdaEvent};
use serde::Serialize;
use serde_json::json;
use tracing::Instrument;

use crate::error::{AutopilotError, Result};
use crate::events::InboundEvent;
use crate::metrics::{
    emf_document, namespace_from, Measured, Measurement, DEFAULT_NAMESPACE, ENV_NAMESPACE,
};
use crate::present::{Present, Presentation};

/// Whether the process runs under a Lambda runtime API.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// How much the function may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Reads and writes.
    Live,
    /// Reads AWS, writes nothing.
    DryRun,
    /// Makes no AWS call at all.
    Offline,
}

/// Flags every function's CLI shares (each function words their help for itself).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Read from AWS but write nothing (no publish, no state writes).
    #[arg(long, conflicts_with = "offline")]
    pub dry_run: bool,
    /// Make no AWS call at all.
    #[arg(long)]
    pub offline: bool,
    /// Say for each event which routing rule matched and why, and where its notification would
    /// go; sends nothing (reads like --dry-run, or nothing with --offline).
    #[arg(long)]
    pub explain_route: bool,
    /// `json`: one JSON line per event; `text`: what a person would receive (each notification
    /// as rendered, per destination) or, with --explain-route, the routing in prose; `payload`:
    /// per event one JSON line per destination with the exact body it would receive (sends
    /// nothing: reads like --dry-run, or nothing with --offline).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Event files, each holding one event or a JSON array of events; `-` or none for stdin.
    pub files: Vec<PathBuf>,
}

impl Mode {
    /// How notes and logs name the mode: `live`, `dry-run`, `offline`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::DryRun => "dry-run",
            Self::Offline => "offline",
        }
    }
}

/// How the CLI prints each event's outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Json,
    Text,
    Payload,
}

impl CommonArgs {
    /// The arguments of a command that reads no event files (`batch-runner run`, `history`).
    pub fn for_command(dry_run: bool, offline: bool, format: Format) -> Self {
        Self {
            dry_run,
            offline,
            explain_route: false,
            format,
            files: Vec::new(),
        }
    }

    /// What each delivery should show besides where it went.
    pub fn presentation(&self) -> Presentation {
        Presentation {
            explain: self.explain_route,
            render: self.format == Format::Text && !self.explain_route,
            payload: self.format == Format::Payload,
        }
    }

    pub fn mode(&self) -> Mode {
        if self.offline {
            Mode::Offline
        } else if self.dry_run || self.explain_route || self.format == Format::Payload {
            Mode::DryRun
        } else {
            Mode::Live
        }
    }
}

/// Reads a `NAME=NUMBER` command-line value (`--assume-backlog orders=250`).
pub fn name_and_number(text: &str) -> std::result::Result<(String, f64), String> {
    let (name, number) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=NUMBER"))?;
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{number}` in `{text}` is not a number"))?;
    match (name.trim(), value.is_finite() && value >= 0.0) {
        ("", _) => Err(format!("`{text}` names nothing before `=`")),
        (_, false) => Err(format!("`{number}` in `{text}` is not a number ≥ 0")),
        (name, true) => Ok((name.to_owned(), value)),
    }
}

/// Reads an instant given on the command line: RFC 3339 (`2026-12-04T09:00:00Z`) or epoch
/// seconds.
pub fn instant(text: &str) -> std::result::Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| {
            format!("`{text}` is neither RFC 3339 (2026-12-04T09:00:00Z) nor epoch seconds: {e}")
        })
}

/// Facts about the current invocation.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub request_id: Option<String>,
    /// When Lambda will stop the invocation.
    pub deadline: Option<SystemTime>,
}

impl Invocation {
    /// The deadline as epoch seconds, or `now + fallback_s` outside Lambda (`now` in epoch
    /// seconds, from the handler's clock).
    pub fn deadline_epoch_s(&self, now: i64, fallback_s: u64) -> i64 {
        match self.deadline {
            Some(deadline) => deadline
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default(),
            None => now.saturating_add(fallback_s as i64),
        }
    }
}

/// Reports a failed initialisation (bad configuration) and gives the exit code. Under Lambda the
/// error also goes to the Runtime API's `/runtime/init/error`, so the failed invocation carries
/// its type and message (naming the field) rather than only an exit status.
pub async fn fail_init(error: &AutopilotError) -> ExitCode {
    tracing::error!(
        error_type = error.error_type(),
        "initialisation failed: {error}"
    );
    if in_lambda() {
        if let Err(report_error) = report_init_error(None, error).await {
            tracing::warn!("the Runtime API did not take the init error: {report_error}");
        }
    } else {
        eprintln!("error: {error}");
    }
    ExitCode::FAILURE
}

/// Posts `error` to `/runtime/init/error` of the Runtime API at `endpoint` (default: the
/// `AWS_LAMBDA_RUNTIME_API` address). `lambda_runtime` reports init errors only for its own
/// SnapStart hooks, so a failure before the runtime starts is reported here.
pub async fn report_init_error(
    endpoint: Option<http::Uri>,
    error: &AutopilotError,
) -> std::result::Result<(), lambda_runtime::Error> {
    let mut client = lambda_runtime_api_client::PooledClient::builder();
    if let Some(endpoint) = endpoint {
        client = client.with_endpoint(endpoint);
    }
    let diagnostic = lambda_runtime::Diagnostic {
        error_type: error.error_type().to_owned(),
        error_message: error.to_string(),
    };
    let request = lambda_runtime_api_client::build_request()
        .method(http::Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header(
            "lambda-runtime-function-error-type",
            format!("Runtime.{}", error.error_type()),
        )
        .body(lambda_runtime_api_client::body::Body::from(
            serde_json::to_vec(&diagnostic)?,
        ))?;
    let response = client.build().call(request).await?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()).into());
    }
    Ok(())
}

/// What one invocation runs with: the function's handler of the moment.
#[derive(Debug)]
pub struct Served<T> {
    pub app: Arc<T>,
    /// The configuration's versions (`name@14, …`), when it comes from SSM.
    pub version: Option<String>,
    /// How many new configuration versions were refused on the way (0 or 1).
    pub refused: u64,
}

/// Gives each invocation its handler (see [`crate::app::live::Live`], which refreshes it).
pub trait Serving<T> {
    fn current(&self) -> impl Future<Output = Served<T>>;
}

/// Runs `handler` of `function` (`task-triage` …) under Lambda or over the CLI's event files,
/// with the handler of the moment from `live` (refreshed under Lambda).
pub async fn serve<T, F, Fut, R>(
    function: &'static str,
    cli: Option<&CommonArgs>,
    live: &impl Serving<T>,
    handler: F,
) -> ExitCode
where
    F: Fn(Arc<T>, InboundEvent, Invocation) -> Fut,
    Fut: Future<Output = Result<R>>,
    R: Serialize + Measured + Present,
{
    match cli {
        None => serve_lambda(function, live, handler).await,
        Some(args) => {
            let app = live.current().await.app;
            serve_cli(args, |event, invocation| {
                handler(app.clone(), event, invocation)
            })
            .await
        }
    }
}

/// The EMF line of one invocation's result (see [`crate::metrics`]), which took `handler_ms`.
pub fn metrics_line<R: Measured>(
    namespace: &str,
    function: &str,
    result: &Result<R>,
    timestamp_ms: i64,
    handler_ms: Option<f64>,
) -> String {
    config_metrics_line(
        namespace,
        function,
        result,
        (None, 0),
        timestamp_ms,
        handler_ms,
    )
}

/// As [`metrics_line`], for an invocation that ran under the configuration versions `config.0`
/// and refused `config.1` new versions on the way.
pub fn config_metrics_line<R: Measured>(
    namespace: &str,
    function: &str,
    result: &Result<R>,
    config: (Option<&str>, u64),
    timestamp_ms: i64,
    handler_ms: Option<f64>,
) -> String {
    let measurement = measure(result).under_config(config.0, config.1);
    emf_document(namespace, function, &measurement, timestamp_ms, handler_ms).to_string()
}

fn measure<R: Measured>(result: &Result<R>) -> Measurement {
    match result {
        Ok(response) => response.measurement(),
        Err(error) => Measurement::failed(error.error_type()),
    }
}

async fn serve_lambda<T, F, Fut, R>(
    function: &'static str,
    live: &impl Serving<T>,
    handler: F,
) -> ExitCode
where
    F: Fn(Arc<T>, InboundEvent, Invocation) -> Fut,
    Fut: Future<Output = Result<R>>,
    R: Serialize + Measured,
{
    // Checked at init (`Deployment::from_lookup`).
    let namespace = std::env::var(ENV_NAMESPACE).ok();
    let namespace =
        namespace_from(namespace.as_deref()).unwrap_or_else(|_| DEFAULT_NAMESPACE.into());
    let namespace = namespace.as_str();
    let handler = &handler;
    let service = service_fn(move |event: LambdaEvent<InboundEvent>| async move {
        let invocation = Invocation {
            request_id: Some(event.context.request_id.clone()),
            deadline: Some(event.context.deadline()),
        };
        let started = std::time::Instant::now();
        let current = live.current().await;
        // Every line of the invocation (its outcome line too) names the configuration's
        // versions it ran under.
        let span = tracing::info_span!("invocation", config = current.version.as_deref());
        let result = match event.payload.admitted() {
            Ok(payload) => {
                handler(current.app, payload, invocation)
                    .instrument(span.clone())
                    .await
            }
            Err(error) => Err(error),
        };
        let handler_ms = started.elapsed().as_secs_f64() * 1e3;
        if let Err(error) = &result {
            span.in_scope(|| {
                tracing::error!(
                    error_type = error.error_type(),
                    "invocation failed: {error}"
                )
            });
        }
        // One EMF document per invocation, on stdout: CloudWatch Logs extracts the metrics.
        let now_ms = chrono::Utc::now().timestamp_millis();
        let config = (current.version.as_deref(), current.refused);
        let line = config_metrics_line(
            namespace,
            function,
            &result,
            config,
            now_ms,
            Some(handler_ms),
        );
        println!("{line}");
        result.map_err(diagnostic)
    });
    match lambda_runtime::run(service).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("lambda runtime stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What Lambda reports for a failed invocation: the error's stable type and its message.
pub fn diagnostic(error: AutopilotError) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: error.error_type().to_owned(),
        error_message: error.to_string(),
    }
}

/// One event read by the CLI, with a label saying where it came from.
#[derive(Debug)]
pub struct InputEvent {
    pub label: String,
    pub event: Result<InboundEvent>,
}

/// Reads events from files (or stdin): a file holds one event or a JSON array of events.
pub fn read_events(files: &[PathBuf]) -> Vec<InputEvent> {
    let sources: Vec<PathBuf> = if files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        files.to_vec()
    };
    let mut events = Vec::new();
    for path in sources {
        let label = if path.as_os_str() == "-" {
            "stdin".to_owned()
        } else {
            path.display().to_string()
        };
        let text = if path.as_os_str() == "-" {
            let mut buffer = String::new();
            std::io::stdin().read_to_string(&mut buffer).map(|_| buffer)
        } else {
            std::fs::read_to_string(&path)
        };
        let parsed = text
            .map_err(|e| AutopilotError::Input {
                source_name: label.clone(),
                message: e.to_string(),
            })
            .and_then(|text| {
                split_events(&text).map_err(|e| AutopilotError::Input {
                    source_name: label.clone(),
                    message: format!("not JSON: {e}"),
                })
            });
        match parsed {
            Ok(Batch::Many(items)) => {
                events.extend(items.into_iter().enumerate().map(|(i, event)| InputEvent {
                    label: format!("{label}[{i}]"),
                    event: Ok(event),
                }))
            }
            Ok(Batch::One(event)) => events.push(InputEvent {
                label,
                event: Ok(event),
            }),
            Err(error) => events.push(InputEvent {
                label,
                event: Err(error),
            }),
        }
    }
    events
}

/// What one file holds.
enum Batch {
    One(InboundEvent),
    Many(Vec<InboundEvent>),
}

fn split_events(text: &str) -> std::result::Result<Batch, serde_json::Error> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map(Batch::Many)
    } else {
        InboundEvent::from_text(text).map(Batch::One)
    }
}

async fn serve_cli<F, Fut, R>(args: &CommonArgs, handler: F) -> ExitCode
where
    F: Fn(InboundEvent, Invocation) -> Fut,
    Fut: Future<Output = Result<R>>,
    R: Serialize + Present,
{
    let mut failed = 0usize;
    for input in read_events(&args.files) {
        let result = match input.event.and_then(InboundEvent::admitted) {
            Ok(event) => handler(event, Invocation::default()).await,
            Err(error) => Err(error),
        };
        if !print_result(&input.label, result, args.format) {
            failed += 1;
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints one result as the CLI does (a JSON line, text or payload lines); false when it is
/// an error.
pub fn print_result<R: Serialize + Present>(
    label: &str,
    result: Result<R>,
    format: Format,
) -> bool {
    let failure = |error_type: &str, message: String| match format {
        Format::Text => crate::present::failure_as_text(label, error_type, &message),
        Format::Json | Format::Payload => format!(
            "{}\n",
            json!({"input": label, "error": {"error_type": error_type, "message": message}})
        ),
    };
    let (shown, ok) = match (result, format) {
        (Ok(outcome), Format::Text) => (crate::present::as_text(label, &outcome), true),
        (Ok(outcome), Format::Payload) => (
            crate::present::payload_lines(&outcome)
                .into_iter()
                .map(|line| line + "\n")
                .collect(),
            true,
        ),
        (Ok(outcome), Format::Json) => match serde_json::to_string(&outcome) {
            Ok(line) => (line + "\n", true),
            Err(error) => (failure("Unserializable", error.to_string()), false),
        },
        (Err(error), _) => (failure(error.error_type(), error.to_string()), false),
    };
    print!("{shown}");
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_carries_stable_type_and_field() {
        let diagnostic = diagnostic(AutopilotError::invalid_event(
            "detail.containers[0].exitCode",
            "expected an integer",
        ));
        assert_eq!(diagnostic.error_type, "InvalidEvent");
        assert!(diagnostic
            .error_message
            .contains("detail.containers[0].exitCode"));
    }
}

/// The subcommand every function has beside serving events.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration offline before shipping it: a document, a directory of parts
    /// (every `*.json` file, merged in name order) or `-` (stdin). Prints every problem with its
    /// part and path, and warnings; exits non-zero on errors.
    CheckConfig {
        /// A file, a directory of parts, or `-`.
        path: Option<PathBuf>,
        /// The template parameters the stack is deployed with (CloudFormation's or the CLI's
        /// JSON, or samconfig.toml): the configuration is checked against them too.
        #[arg(long, value_name = "FILE")]
        stack_parameters: Option<PathBuf>,
    },
}

/// Reads the parts `path` names: a directory's `*.json` files, one file, or stdin.
fn config_parts(path: Option<&Path>) -> Result<Vec<crate::config::parts::Part>> {
    use crate::config::parts::Part;
    let input = |source: &Path, e: std::io::Error| AutopilotError::Input {
        source_name: source.display().to_string(),
        message: e.to_string(),
    };
    match path.filter(|p| p.as_os_str() != "-") {
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| input(Path::new("stdin"), e))?;
            Ok(vec![Part {
                name: "stdin".into(),
                text,
            }])
        }
        Some(dir) if dir.is_dir() => {
            let mut parts = Vec::new();
            for entry in std::fs::read_dir(dir).map_err(|e| input(dir, e))? {
                let file = entry.map_err(|e| input(dir, e))?.path();
                if file.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&file).map_err(|e| input(&file, e))?;
                    let name = file
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    parts.push(Part { name, text });
                }
            }
            if parts.is_empty() {
                return Err(AutopilotError::Usage(format!(
                    "{}: no *.json parts in the directory",
                    dir.display()
                )));
            }
            Ok(parts)
        }
        Some(file) => Ok(vec![Part {
            name: file.display().to_string(),
            text: std::fs::read_to_string(file).map_err(|e| input(file, e))?,
        }]),
    }
}

/// `check-config`: every problem of the configuration at `path`, one line each.
pub fn check_config(command: &ConfigCommand) -> ExitCode {
    let ConfigCommand::CheckConfig {
        path,
        stack_parameters,
    } = command;
    let parts = match config_parts(path.as_deref()) {
        Ok(parts) => parts,
        Err(error) => {
            eprintln!("check-config: {error}");
            return ExitCode::from(2);
        }
    };
    let parameters = match stack_parameters.as_deref().map(crate::stack_file::read) {
        None => None,
        Some(Ok(parameters)) => Some(parameters),
        Some(Err(error)) => {
            eprintln!("check-config: {error}");
            return ExitCode::from(2);
        }
    };
    match crate::config::parts::parse_parts(&parts) {
        Ok((config, merged)) => {
            for warning in &merged.warnings {
                println!("warning: {warning}");
            }
            if let Some(parameters) = &parameters {
                let problems = crate::config::stack::cross_check(&config, parameters);
                for mut problem in problems.iter().cloned() {
                    problem.part = merged.part_of(&problem.path).map(str::to_owned);
                    println!("error: stack parameters: {problem}");
                }
                if !problems.is_empty() {
                    return ExitCode::FAILURE;
                }
            }
            println!(
                "ok: {} part(s); {} job(s), {} alarm polic(ies), {} target polic(ies), {} route(s)",
                parts.len(),
                config.jobs.len(),
                config.scaling.alarms.len(),
                config.scaling.targets.len(),
                config.notify.routes.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                println!("error: {problem}");
            }
            ExitCode::FAILURE
        }
    }
}
