//! Local-cloud harness shared by the integration tests and `make demo`: starts ministack on a
//! free loopback port, deploys the `task-triage` stack into it (topic, inbox queue, state table,
//! ECS cluster/service/task definition, logs, the Lambda and its EventBridge rule), injects
//! fixture events and reads back what reached the inbox.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use serde_json::{json, Value};

/// Errors of the harness are plain messages: they end a test or the demo.
pub type Result<T, E = String> = std::result::Result<T, E>;

macro_rules! sdk {
    ($context:expr, $call:expr) => {
        $call.await.map_err(|e| {
            format!(
                "{}: {}",
                $context,
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            )
        })
    };
}

pub mod batch;
pub mod deployment;
pub mod proxy;
pub mod scaler;
pub mod template;
pub mod webhooks;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The fixture events shipped with the tests.
pub fn fixtures_dir() -> PathBuf {
    workspace().join("tests/fixtures")
}

/// Deploys a Rust `bootstrap` package as a `provided.al2023` function; returns its ARN.
pub async fn create_function(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    account: &str,
    bootstrap_zip: Vec<u8>,
    environment: aws_sdk_lambda::types::Environment,
    timeout_s: i32,
) -> Result<String> {
    let function = sdk!(
        "CreateFunction",
        lambda
            .create_function()
            .function_name(name)
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .handler("bootstrap")
            .role(format!("arn:aws:iam::{account}:role/{name}"))
            .timeout(timeout_s)
            .memory_size(128)
            .environment(environment)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_smithy_types::Blob::new(bootstrap_zip))
                    .build()
            )
            .send()
    )?;
    Ok(function.function_arn.unwrap_or_default())
}

/// Invokes a function synchronously and returns its response; a function error is an `Err`
/// naming the error and carrying the response.
pub async fn invoke_sync(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    payload: &Value,
) -> Result<Value> {
    let output = sdk!(
        "Invoke",
        lambda
            .invoke()
            .function_name(name)
            .payload(aws_smithy_types::Blob::new(payload.to_string()))
            .send()
    )?;
    let body: Value = output
        .payload()
        .map(|p| serde_json::from_slice(p.as_ref()).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    match output.function_error() {
        Some(kind) => Err(format!("{kind}: {body}")),
        None => Ok(body),
    }
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace), else `target`.
pub fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    workspace().join(target)
}

/// Where the function binaries are: `AUTOPILOT_BIN_DIR`, else the target directory's `debug`.
pub fn binary(name: &str) -> Result<PathBuf> {
    let dir = std::env::var_os("AUTOPILOT_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug"));
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it first (`cargo build -p {name}`; `make test` does)",
            path.display()
        ))
    }
}

/// A Lambda deployment package holding `binary` as `bootstrap` (as `make dist` zips it).
pub fn bootstrap_zip(binary: &Path) -> Result<Vec<u8>> {
    autopilot_dist::reproducible_zip(binary)
}

/// A running ministack, stopped on drop.
pub struct LocalCloud {
    child: Child,
    pub endpoint: String,
    pub config: SdkConfig,
    pub log_path: PathBuf,
    /// The local cloud's own temporary directory (its copies of each function's code, the
    /// functions' /tmp): removed when it stops, so that test runs leave no gigabytes behind.
    scratch: PathBuf,
}

fn ministack_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("MINISTACK_BIN") {
        return Ok(PathBuf::from(path));
    }
    let path = workspace().join(".venv-ministack/bin/ministack");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: `make ministack` installs it (make test and make demo do)",
            path.display()
        ))
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn http_status(port: u16, path: &str, method: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl LocalCloud {
    /// Starts ministack on a free loopback port and waits until it is ready.
    pub async fn start() -> Result<Self> {
        let binary = ministack_binary()?;
        let port = free_port()?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let log_dir = target_dir();
        std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
        let log_path = log_dir.join(format!("ministack-{port}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let scratch = std::env::temp_dir().join(format!("autopilot-local-cloud-{port}"));
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let child = Command::new(&binary)
            .env("TMPDIR", &scratch)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("LAMBDA_ASYNC_RETRY_BASE_SECONDS", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "local-cloud"))
            .load()
            .await;
        let mut cloud = Self {
            child,
            endpoint,
            config,
            log_path,
            scratch,
        };
        let started = Instant::now();
        while http_status(port, "/_ministack/ready", "GET") != Some(200) {
            if let Ok(Some(status)) = cloud.child.try_wait() {
                return Err(format!(
                    "ministack exited ({status}); see {}",
                    cloud.log_path.display()
                ));
            }
            if started.elapsed() > Duration::from_secs(90) {
                return Err(format!(
                    "ministack not ready after 90 s; see {}",
                    cloud.log_path.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(cloud)
    }
}

impl LocalCloud {
    /// The SDK configuration for another account of the local cloud: ministack keeps accounts
    /// apart by an access key id of 12 digits.
    pub fn config_for_account(&self, account: &str) -> SdkConfig {
        self.config
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                    account,
                    "test",
                    None,
                    None,
                    "local-cloud-account",
                )),
            )
            .build()
    }
}

impl Drop for LocalCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Names of what the stack creates.
pub const CLUSTER: &str = "shop";
pub const SERVICE: &str = "orders-api";
pub const LOG_GROUP: &str = "/ecs/orders-api";
/// The stack `template.yaml` is deployed as, and its task-triage function's logical id.
pub const STACK: &str = "autopilot";
pub const TRIAGE_FUNCTION: &str = "TaskTriageFunction";
/// The source the harness puts fixture events under (the local cloud refuses `aws.ecs`).
pub const FIXTURE_SOURCE: &str = "autopilot.fixtures";
/// The task of the OOM fixture; its log stream gets lines.
pub const OOM_TASK_ID: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// The services a deployed function reaches through the harness's proxy (where faults are
/// injected, ECS's side of a scene is staged and calls are counted).
pub const PROXIED: [&str; 4] = [
    "AWS_ENDPOINT_URL_ECS",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
];

/// What the harness adds to a deployed function's environment: what Lambda itself would set
/// (the local cloud drops LoggingConfig), the proxy in front of ECS, SNS, DynamoDB and Logs, and
/// `RUST_LOG` from `AUTOPILOT_LAMBDA_LOG`.
fn harness_environment(proxy: &proxy::Proxy) -> Vec<(&'static str, String)> {
    let mut extra = vec![("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned())];
    extra.extend(PROXIED.map(|variable| (variable, proxy.endpoint.clone())));
    if let Ok(level) = std::env::var("AUTOPILOT_LAMBDA_LOG") {
        extra.push(("RUST_LOG", level));
    }
    extra
}

/// Adds `variables` to the environment of `function` (keeping the rest).
pub async fn add_environment(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    variables: &[(&str, String)],
) -> Result<()> {
    let current = sdk!(
        "GetFunctionConfiguration",
        lambda
            .get_function_configuration()
            .function_name(function)
            .send()
    )?;
    let mut environment = aws_sdk_lambda::types::Environment::builder();
    for (name, value) in current
        .environment()
        .and_then(|e| e.variables())
        .into_iter()
        .flatten()
    {
        environment = environment.variables(name, value);
    }
    for (name, value) in variables {
        environment = environment.variables(*name, value);
    }
    sdk!(
        "UpdateFunctionConfiguration",
        lambda
            .update_function_configuration()
            .function_name(function)
            .environment(environment.build())
            .send()
    )?;
    Ok(())
}

/// The event pattern of the rule `name`, and whether `event` matches it (TestEventPattern).
pub async fn rule_matches(
    events: &aws_sdk_eventbridge::Client,
    name: &str,
    event: &Value,
) -> Result<bool> {
    let rule = sdk!("DescribeRule", events.describe_rule().name(name).send())?;
    let pattern = rule
        .event_pattern()
        .ok_or_else(|| format!("rule {name} has no event pattern"))?;
    let tested = sdk!(
        "TestEventPattern",
        events
            .test_event_pattern()
            .event_pattern(pattern)
            .event(event.to_string())
            .send()
    )?;
    Ok(tested.result())
}

/// `pattern` (an EventBridge pattern of the template) with its `aws.ecs` source replaced by
/// the fixtures' source.
pub fn for_fixtures(pattern: &Value) -> Value {
    let mut twin = pattern.clone();
    if twin.get("source").is_some() {
        twin["source"] = json!([FIXTURE_SOURCE]);
    }
    twin
}

/// A twin of the deployed rule `name`: the same pattern and targets, matching the fixtures'
/// source instead of `aws.ecs`.
async fn twin_rule(events: &aws_sdk_eventbridge::Client, name: &str) -> Result<()> {
    let rule = sdk!("DescribeRule", events.describe_rule().name(name).send())?;
    let Some(pattern) = rule.event_pattern() else {
        return Ok(());
    };
    let pattern: Value =
        serde_json::from_str(pattern).map_err(|e| format!("rule {name}: pattern: {e}"))?;
    let twin = format!("{name}-fixtures");
    sdk!(
        "PutRule",
        events
            .put_rule()
            .name(&twin)
            .event_pattern(for_fixtures(&pattern).to_string())
            .send()
    )?;
    let targets = sdk!(
        "ListTargetsByRule",
        events.list_targets_by_rule().rule(name).send()
    )?;
    sdk!(
        "PutTargets",
        events
            .put_targets()
            .rule(&twin)
            .set_targets(Some(targets.targets().to_vec()))
            .send()
    )?;
    Ok(())
}

/// The deployed `task-triage` stack.
pub struct TriageStack {
    pub account: String,
    pub topic_arn: String,
    pub inbox_url: String,
    pub failures_url: String,
    pub table: String,
    pub task_definition: String,
    /// The deployed task-triage function's name.
    pub function: String,
    /// The deployed `template.yaml`.
    pub stack: template::DeployedStack,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ecs: aws_sdk_ecs::Client,
    /// The functions reach ECS through it (`AWS_ENDPOINT_URL_ECS`), so a scene can stage what
    /// the local cloud cannot do.
    pub proxy: proxy::Proxy,
    /// SNS message ids already read from the inbox.
    read: std::sync::Mutex<HashSet<String>>,
    /// Invocations of task-triage the harness caused (events put, payloads invoked) since
    /// the last [`TriageStack::published`].
    invoked: std::sync::atomic::AtomicUsize,
    /// The function's EMF documents (one per attempt) at the last [`TriageStack::published`].
    finished: std::sync::atomic::AtomicUsize,
}

/// How the function handled a set of stops for good, read from the state table and the
/// on-failure queue (see [`TriageStack::settled`]).
#[derive(Debug, Clone, Default)]
pub struct Settled {
    /// Per task ARN: the decision its claim completed with, and the SNS message id it kept.
    pub claims: BTreeMap<String, (String, Option<String>)>,
    /// The on-failure queue's records (every attempt failed).
    pub parked: Vec<Value>,
}

impl Settled {
    /// How many claims completed with `decision`.
    pub fn count(&self, decision: &str) -> usize {
        self.claims.values().filter(|(d, _)| d == decision).count()
    }

    /// The SNS message ids the claims kept (one per told stop).
    pub fn message_ids(&self) -> Vec<String> {
        self.claims
            .values()
            .filter_map(|(_, id)| id.clone())
            .collect()
    }
}

/// What the function reported about its invocations.
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    /// Count per decision (`notify`, `silent`, `duplicate`, `folded`, `ignored`).
    pub decisions: BTreeMap<String, usize>,
    /// Messages of invocations that failed (each attempt; Lambda retries them).
    pub failed_attempts: Vec<String>,
}

impl Outcomes {
    pub fn count(&self, decision: &str) -> usize {
        self.decisions.get(decision).copied().unwrap_or_default()
    }
}

/// One notification as it reached the inbox queue through SNS.
#[derive(Debug, Clone)]
pub struct Received {
    /// SNS's `MessageId`, as the publishing function logged it.
    pub message_id: String,
    pub subject: String,
    pub attributes: BTreeMap<String, String>,
    /// The structured JSON (the `sqs` protocol's message).
    pub body: Value,
}

impl TriageStack {
    /// The environment of another function of the stack: the same topic, table and config
    /// document, JSON logs.
    pub fn function_environment(
        &self,
        config_document: &Value,
    ) -> aws_sdk_lambda::types::Environment {
        aws_sdk_lambda::types::Environment::builder()
            .set_variables(Some(
                PROXIED
                    .iter()
                    .map(|v| ((*v).to_owned(), self.proxy.endpoint.clone()))
                    .chain([
                        ("NOTIFY_TOPIC_ARN".to_owned(), self.topic_arn.clone()),
                        ("STATE_TABLE".to_owned(), self.table.clone()),
                        ("AUTOPILOT_CONFIG".to_owned(), config_document.to_string()),
                        ("AWS_LAMBDA_LOG_FORMAT".to_owned(), "JSON".to_owned()),
                    ])
                    .collect(),
            ))
            .build()
    }

    /// Deploys `template.yaml` (task-triage only: no scaled services, no jobs) with
    /// `config_document` as its `ConfigDocument`, then what the scenes need beside it: the ECS
    /// cluster, service and log group the events name, an SQS inbox subscribed to the stack's
    /// topic, the proxy in front of ECS, and for each of the stack's rules a twin that matches
    /// the fixtures' source (the local cloud refuses PutEvents from `aws.ecs`).
    pub async fn deploy(
        cloud: &LocalCloud,
        bootstrap_zip: Vec<u8>,
        config_document: &Value,
    ) -> Result<Self> {
        Self::deploy_with(cloud, bootstrap_zip, config_document, &[]).await
    }

    /// [`deploy`](Self::deploy) with more of the template's parameters.
    pub async fn deploy_with(
        cloud: &LocalCloud,
        bootstrap_zip: Vec<u8>,
        config_document: &Value,
        parameters: &[(&str, String)],
    ) -> Result<Self> {
        let c = &cloud.config;
        let sqs = aws_sdk_sqs::Client::new(c);
        let dynamodb = aws_sdk_dynamodb::Client::new(c);
        let ecs = aws_sdk_ecs::Client::new(c);
        let logs = aws_sdk_cloudwatchlogs::Client::new(c);
        let lambda = aws_sdk_lambda::Client::new(c);
        let events = aws_sdk_eventbridge::Client::new(c);

        let task_definition = seed_ecs(&ecs).await?;
        sdk!(
            "CreateLogGroup",
            logs.create_log_group().log_group_name(LOG_GROUP).send()
        )?;
        let proxy = proxy::Proxy::start(&cloud.endpoint).await?;

        let mut all_parameters = vec![("ConfigDocument", config_document.to_string())];
        all_parameters.extend(parameters.iter().cloned());
        let stack = template::deploy(
            cloud,
            STACK,
            vec![(TRIAGE_FUNCTION, bootstrap_zip)],
            &all_parameters,
        )
        .await?;
        let topic_arn = stack.output("NotificationTopicArn")?.to_owned();
        let table = stack.output("StateTableName")?.to_owned();
        let failures_url = stack.output("TriageFailureQueueUrl")?.to_owned();
        let function = stack.physical_id(TRIAGE_FUNCTION)?.to_owned();
        let account = autopilot::arn::Arn::parse(&topic_arn)
            .ok()
            .and_then(|arn| arn.account().map(str::to_owned))
            .unwrap_or_else(|| "000000000000".to_owned());

        let inbox_url = subscribed_queue(cloud, &topic_arn, "autopilot-inbox").await?;

        let deployed = Self {
            account,
            topic_arn,
            inbox_url,
            failures_url,
            table,
            task_definition,
            function,
            stack,
            sqs,
            events,
            dynamodb,
            lambda,
            logs,
            ecs,
            proxy,
            read: Default::default(),
            invoked: Default::default(),
            finished: Default::default(),
        };
        deployed.adapt().await?;
        deployed.seeded().await
    }

    /// What the harness adds to the deployed stack: its environment on each function, and a
    /// twin of each rule for the fixtures' source.
    async fn adapt(&self) -> Result<()> {
        let extra = harness_environment(&self.proxy);
        for name in self.stack.of_type("AWS::Lambda::Function") {
            add_environment(&self.lambda, self.stack.physical_id(name)?, &extra).await?;
        }
        for rule in self.stack.of_type("AWS::Events::Rule") {
            twin_rule(&self.events, self.stack.physical_id(rule)?).await?;
        }
        Ok(())
    }

    /// Enables another function of the product on the deployed stack, as a user would: an
    /// update of the stack with its package and the parameters that turn it on. Returns the
    /// function's name.
    pub async fn enable(
        &mut self,
        cloud: &LocalCloud,
        function: &str,
        bootstrap_zip: Vec<u8>,
        parameters: &[(&str, String)],
    ) -> Result<String> {
        self.stack = template::update(
            cloud,
            &self.stack,
            vec![(function, bootstrap_zip)],
            parameters,
        )
        .await?;
        self.function = self.stack.physical_id(TRIAGE_FUNCTION)?.to_owned();
        self.adapt().await?;
        Ok(self.stack.physical_id(function)?.to_owned())
    }

    /// A service of the cluster at `desired` tasks with none running: created (the local cloud
    /// starts its tasks at once), then each task stopped (a user stop does not make the local
    /// cloud start another).
    pub async fn stage_service_without_tasks(&self, name: &str, desired: i32) -> Result<()> {
        let ecs = &self.ecs;
        sdk!(
            "CreateService",
            ecs.create_service()
                .cluster(CLUSTER)
                .service_name(name)
                .task_definition(&self.task_definition)
                .desired_count(desired)
                .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
                .send()
        )?;
        let tasks = sdk!(
            "ListTasks",
            ecs.list_tasks().cluster(CLUSTER).service_name(name).send()
        )?;
        for task in tasks.task_arns() {
            sdk!(
                "StopTask",
                ecs.stop_task()
                    .cluster(CLUSTER)
                    .task(task)
                    .reason("staged: no task running")
                    .send()
            )?;
        }
        let described = sdk!(
            "DescribeServices",
            ecs.describe_services()
                .cluster(CLUSTER)
                .services(name)
                .send()
        )?;
        let running = described
            .services()
            .first()
            .map(|s| s.running_count())
            .unwrap_or(-1);
        match running {
            0 => Ok(()),
            other => Err(format!(
                "{name}: {other} tasks still running after StopTask"
            )),
        }
    }

    /// Writes the OOM task's log lines.
    async fn seeded(self) -> Result<Self> {
        self.write_log(&format!("ecs/{SERVICE}/{OOM_TASK_ID}"), &OOM_LOG_LINES)
            .await?;
        Ok(self)
    }

    /// Writes `lines` to a new stream of the service's log group, a second apart, ending 2 s
    /// ago.
    pub async fn write_log(&self, stream: &str, lines: &[&str]) -> Result<()> {
        write_log_with(&self.logs, stream, lines).await
    }

    /// A fixture event rewritten for this stack's account and task definition: `name` under
    /// `tests/fixtures/ecs/`, or `dir/name` under `tests/fixtures/`.
    pub fn fixture(&self, name: &str) -> Result<Value> {
        let relative = match name.contains('/') {
            true => format!("{name}.json"),
            false => format!("ecs/{name}.json"),
        };
        let path = fixtures_dir().join(relative);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = text.replace("111122223333", &self.account).replace(
            "task-definition/orders-api:17",
            &format!("task-definition/{}", self.task_definition),
        );
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Sends events through EventBridge (custom source: the local cloud cannot emit `aws.ecs`).
    pub async fn put_events(&self, events: &[Value]) -> Result<()> {
        for chunk in events.chunks(10) {
            let mut request = self.events.put_events();
            for event in chunk {
                let mut entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source(FIXTURE_SOURCE)
                    .detail_type(
                        event["detail-type"]
                            .as_str()
                            .unwrap_or("ECS Task State Change"),
                    )
                    .detail(event["detail"].to_string());
                for resource in event["resources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    entry = entry.resources(resource);
                }
                request = request.entries(entry.build());
            }
            let output = sdk!("PutEvents", request.send())?;
            self.invoked.fetch_add(
                chunk.len() - output.failed_entry_count().max(0) as usize,
                std::sync::atomic::Ordering::SeqCst,
            );
            if output.failed_entry_count() > 0 {
                return Err(format!(
                    "PutEvents rejected {} entries: {:?}",
                    output.failed_entry_count(),
                    output.entries()
                ));
            }
        }
        Ok(())
    }

    /// Invokes the function asynchronously with a raw payload (for events EventBridge would not
    /// accept, such as malformed ones).
    pub async fn invoke_async(&self, payload: &Value) -> Result<()> {
        sdk!(
            "Invoke",
            self.lambda
                .invoke()
                .function_name(&self.function)
                .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                .payload(aws_smithy_types::Blob::new(payload.to_string()))
                .send()
        )?;
        self.invoked
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Reads notifications until `expected` arrived and the queue stayed quiet for `settle`, or
    /// until `timeout`.
    pub async fn drain_inbox(
        &self,
        expected: usize,
        settle: Duration,
        timeout: Duration,
    ) -> Result<Vec<Received>> {
        let bodies = drain(&self.sqs, &self.inbox_url, expected, settle, timeout).await?;
        let received = bodies
            .iter()
            .map(|b| parse_sns_envelope(b))
            .collect::<Result<Vec<_>>>()?;
        self.remember(&received);
        Ok(received)
    }

    /// What task-triage published to the stack's topic, by its own account: once every
    /// invocation the harness caused since the last call has finished (one EMF document each,
    /// written after the handler returned; a failed invocation's retries must be over, as
    /// [`TriageStack::drain_failures`] waits for), the SNS message ids of its `delivered` lines to the default topic that
    /// the inbox has not given yet, read from the inbox (see [`TriageStack::receive`]).
    /// "Exactly these" then rests on the function's own count of its publishes, not on the
    /// inbox staying quiet for a while.
    pub async fn published(&self, cloud: &LocalCloud, timeout: Duration) -> Result<Vec<Received>> {
        self.published_to(cloud, "default", &self.inbox_url, timeout)
            .await
    }

    /// As [`TriageStack::published`], for what went to `destination` (a route's label: a
    /// topic's ARN) and is read from `queue_url` (subscribed to it).
    pub async fn published_to(
        &self,
        cloud: &LocalCloud,
        destination: &str,
        queue_url: &str,
        timeout: Duration,
    ) -> Result<Vec<Received>> {
        use std::sync::atomic::Ordering::SeqCst;
        let invoked = self.invoked.swap(0, SeqCst);
        let expected = self.finished.load(SeqCst) + invoked;
        let finished = self.emf_documents(cloud, expected, timeout).await?.len();
        if finished < expected {
            // What the function said besides its metrics (errors, timeouts, REPORT lines) is
            // what tells a slow invocation from a lost or failing one.
            let said: Vec<String> = self
                .function_logs(cloud)
                .await?
                .into_iter()
                .filter(|line| !line.contains("\"_aws\""))
                .collect();
            let tail = said[said.len().saturating_sub(40)..].join("\n");
            return Err(format!(
                "task-triage finished {finished} of {expected} invocations within {timeout:?}; \
                 its last log lines:\n{tail}"
            ));
        }
        self.finished.store(finished, SeqCst);
        let ids = delivered_ids(&self.function_logs(cloud).await?, destination);
        self.receive_from(queue_url, &ids, timeout).await
    }

    /// Reads the inbox until every message of `ids` not read before has arrived (an error
    /// after `timeout`); returns what arrived meanwhile, anything unexpected included.
    pub async fn receive(&self, ids: &[String], timeout: Duration) -> Result<Vec<Received>> {
        self.receive_from(&self.inbox_url, ids, timeout).await
    }

    /// As [`TriageStack::receive`], from the queue at `queue_url`.
    pub async fn receive_from(
        &self,
        queue_url: &str,
        ids: &[String],
        timeout: Duration,
    ) -> Result<Vec<Received>> {
        let mut waiting: HashSet<String> = {
            let read = self.read.lock().unwrap();
            ids.iter()
                .filter(|id| !read.contains(*id))
                .cloned()
                .collect()
        };
        let started = Instant::now();
        let mut received = Vec::new();
        while !waiting.is_empty() {
            if started.elapsed() >= timeout {
                return Err(format!(
                    "{} published messages did not reach the inbox within {timeout:?}: {waiting:?}",
                    waiting.len()
                ));
            }
            for body in receive_some(&self.sqs, queue_url).await? {
                let notification = parse_sns_envelope(&body)?;
                waiting.remove(&notification.message_id);
                received.push(notification);
            }
        }
        self.remember(&received);
        Ok(received)
    }

    fn remember(&self, received: &[Received]) {
        let mut read = self.read.lock().unwrap();
        read.extend(received.iter().map(|n| n.message_id.clone()));
    }

    /// Reads what reached the on-failure destination.
    pub async fn drain_failures(&self, expected: usize, timeout: Duration) -> Result<Vec<Value>> {
        let bodies = drain(
            &self.sqs,
            &self.failures_url,
            expected,
            Duration::from_millis(500),
            timeout,
        )
        .await?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| format!("failure record: {e}")))
            .collect()
    }

    /// task-triage's log lines, oldest first (see [`logs_of`]).
    pub async fn function_logs(&self, cloud: &LocalCloud) -> Result<Vec<String>> {
        logs_of(cloud, &self.function).await
    }

    /// Decisions the function logged (`outcome` lines) and failed invocations, waiting until at
    /// least `expected` invocations have reported or `timeout` passed.
    pub async fn outcomes(
        &self,
        cloud: &LocalCloud,
        expected: usize,
        timeout: Duration,
    ) -> Result<Outcomes> {
        self.outcomes_until(
            cloud,
            |o| o.decisions.values().sum::<usize>() + o.failed_attempts.len() >= expected,
            timeout,
        )
        .await
    }

    /// As [`TriageStack::outcomes`], waiting until `enough` holds of them (or `timeout` passed).
    pub async fn outcomes_until(
        &self,
        cloud: &LocalCloud,
        enough: impl Fn(&Outcomes) -> bool,
        timeout: Duration,
    ) -> Result<Outcomes> {
        let started = Instant::now();
        loop {
            let mut outcomes = Outcomes::default();
            for line in self.function_logs(cloud).await? {
                let Ok(record) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let fields = &record["fields"];
                match fields["message"].as_str() {
                    Some("outcome") => {
                        *outcomes
                            .decisions
                            .entry(fields["decision"].as_str().unwrap_or("?").to_owned())
                            .or_default() += 1
                    }
                    Some(m) if m.starts_with("invocation failed") => {
                        outcomes.failed_attempts.push(m.to_owned())
                    }
                    _ => {}
                }
            }
            if enough(&outcomes) || started.elapsed() >= timeout {
                return Ok(outcomes);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until every one of `tasks` has been handled for good: its stop's claim `COMPLETE`
    /// in the state table (with the decision and the SNS message id the claim kept), or its
    /// event on the on-failure queue (every attempt failed). A claim is completed after its
    /// publishes and a record is queued after the last attempt, so nothing about these stops
    /// happens later: no quiet period is needed, and no log line has to be read back (the
    /// local cloud can hold an environment's last lines until its next invocation).
    pub async fn settled(&self, tasks: &[String], timeout: Duration) -> Result<Settled> {
        let started = Instant::now();
        let mut settled = Settled::default();
        loop {
            settled
                .parked
                .extend(self.drain_failures(0, Duration::ZERO).await?);
            let parked: HashSet<&str> = settled
                .parked
                .iter()
                .filter_map(|record| record["requestPayload"]["detail"]["taskArn"].as_str())
                .collect();
            let items = self.state_items().await?;
            let claims: BTreeMap<String, (String, Option<String>)> = tasks
                .iter()
                .filter_map(|task| {
                    let prefix = format!("dedup#{task}#");
                    items
                        .iter()
                        .find(|item| {
                            item["pk"].starts_with(&prefix)
                                && item.get("status").map(String::as_str) == Some("COMPLETE")
                        })
                        .map(|item| {
                            (
                                task.clone(),
                                (
                                    item.get("decision").cloned().unwrap_or_default(),
                                    item.get("message_id").cloned(),
                                ),
                            )
                        })
                })
                .collect();
            let open = tasks
                .iter()
                .filter(|task| !claims.contains_key(*task) && !parked.contains(task.as_str()))
                .count();
            if open == 0 {
                settled.claims = claims;
                return Ok(settled);
            }
            if started.elapsed() >= timeout {
                return Err(format!(
                    "{open} of {} stops neither handled nor parked within {timeout:?}",
                    tasks.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The EMF documents (lines with `_aws`) in the function's log, once at least `expected` are
    /// there or `timeout` has passed: the local cloud writes a function's log lines a moment
    /// after the outcome lines are readable.
    pub async fn emf_documents(
        &self,
        cloud: &LocalCloud,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>> {
        let started = Instant::now();
        loop {
            let documents: Vec<Value> = self
                .function_logs(cloud)
                .await?
                .iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter(|document| document.get("_aws").is_some())
                .collect();
            if documents.len() >= expected || started.elapsed() >= timeout {
                return Ok(documents);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every item of the state table.
    pub async fn state_items(&self) -> Result<Vec<BTreeMap<String, String>>> {
        let output = sdk!("Scan", self.dynamodb.scan().table_name(&self.table).send())?;
        Ok(output
            .items()
            .iter()
            .map(|item| {
                item.iter()
                    .map(|(k, v)| {
                        let value = match v {
                            aws_sdk_dynamodb::types::AttributeValue::S(s)
                            | aws_sdk_dynamodb::types::AttributeValue::N(s) => s.clone(),
                            other => format!("{other:?}"),
                        };
                        (k.clone(), value)
                    })
                    .collect()
            })
            .collect())
    }
}

/// A policy document's statements (a single statement may stand without a list).
pub fn statements_of(policy: &Value) -> Vec<Value> {
    match &policy["Statement"] {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    }
}

/// The log group `function` writes to: its `LoggingConfig.LogGroup` (the template gives each
/// function its own group, kept `LogRetentionDays`), else `/aws/lambda/<function>`.
pub async fn log_group_of(cloud: &LocalCloud, function: &str) -> Result<String> {
    let lambda = aws_sdk_lambda::Client::new(&cloud.config);
    let configuration = sdk!(
        "GetFunctionConfiguration",
        lambda
            .get_function_configuration()
            .function_name(function)
            .send()
    )?;
    Ok(configuration
        .logging_config()
        .and_then(|logging| logging.log_group())
        .filter(|group| !group.is_empty())
        .map_or_else(|| format!("/aws/lambda/{function}"), str::to_owned))
}

/// A function's log lines from CloudWatch Logs (its log group, see [`log_group_of`]), oldest
/// first (none before its first invocation made the group). The local cloud answers at most
/// 10,000 events per FilterLogEvents call and gives no next token: a full page continues from its
/// last timestamp, skipping the events already read at that timestamp (by event id).
pub async fn logs_of(cloud: &LocalCloud, function: &str) -> Result<Vec<String>> {
    const FULL_PAGE: usize = 10_000;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&cloud.config);
    let group = log_group_of(cloud, function).await?;

    let mut lines = Vec::new();
    let mut next: Option<String> = None;
    let mut start_time: Option<i64> = None;
    let mut read_at_start: HashSet<String> = HashSet::new();
    loop {
        let output = match logs
            .filter_log_events()
            .log_group_name(&group)
            .set_next_token(next.clone())
            .set_start_time(start_time)
            .send()
            .await
        {
            Ok(output) => output,
            // The group is made by the function's first invocation: no line yet.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(lines);
            }
            Err(e) => {
                return Err(format!(
                    "FilterLogEvents: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ))
            }
        };
        let events = output.events();
        let mut last_time = start_time;
        let mut read_at_last = HashSet::new();
        let mut fresh = 0;
        for event in events {
            let id = event.event_id().unwrap_or_default().to_owned();
            if event.timestamp() == start_time && read_at_start.contains(&id) {
                continue;
            }
            if event.timestamp() != last_time {
                last_time = event.timestamp();
                read_at_last.clear();
            }
            read_at_last.insert(id);
            fresh += 1;
            if let Some(message) = event.message() {
                lines.push(message.trim_end().to_owned());
            }
        }
        next = output.next_token().map(str::to_owned);
        if next.is_none() {
            // A full page of one millisecond read before: nothing further can be reached.
            if events.len() < FULL_PAGE || fresh == 0 {
                return Ok(lines);
            }
            if last_time == start_time {
                read_at_start.extend(read_at_last);
            } else {
                read_at_start = read_at_last;
            }
            start_time = last_time;
        } else if events.is_empty() {
            return Ok(lines);
        }
    }
}

/// The SNS message ids of the `delivered` lines to `destination` (`default`, a topic's ARN) in
/// a function's log.
pub fn delivered_ids(lines: &[String], destination: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|record| {
            record["fields"]["message"] == "delivered" && record["fields"]["to"] == destination
        })
        .filter_map(|record| record["fields"]["message_id"].as_str().map(str::to_owned))
        .collect()
}

/// One long-poll of the queue at `url`: the bodies it gave, each deleted.
async fn receive_some(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<String>> {
    let output = sdk!(
        "ReceiveMessage",
        sqs.receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
    )?;
    let mut bodies = Vec::new();
    for message in output.messages() {
        bodies.push(message.body().unwrap_or_default().to_owned());
        if let Some(handle) = message.receipt_handle() {
            sdk!(
                "DeleteMessage",
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
            )?;
        }
    }
    Ok(bodies)
}

/// Reads the queue until `expected` arrived and it stayed quiet for `settle` (the demo and
/// the load bench, which show what arrives; the tests wait for what was published instead).
async fn drain(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    expected: usize,
    settle: Duration,
    timeout: Duration,
) -> Result<Vec<String>> {
    let started = Instant::now();
    let mut last_arrival = Instant::now();
    let mut bodies = Vec::new();
    loop {
        let some = receive_some(sqs, url).await?;
        if !some.is_empty() {
            last_arrival = Instant::now();
        }
        bodies.extend(some);
        let settled = bodies.len() >= expected && last_arrival.elapsed() >= settle;
        if settled || started.elapsed() >= timeout {
            return Ok(bodies);
        }
    }
}

/// A new SQS queue `name` subscribed to `topic_arn`: its URL.
pub async fn subscribed_queue(cloud: &LocalCloud, topic_arn: &str, name: &str) -> Result<String> {
    let sqs = aws_sdk_sqs::Client::new(&cloud.config);
    let sns = aws_sdk_sns::Client::new(&cloud.config);
    let url = sdk!("CreateQueue", sqs.create_queue().queue_name(name).send())?
        .queue_url
        .unwrap_or_default();
    let attributes = sdk!(
        "GetQueueAttributes",
        sqs.get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
    )?;
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .unwrap_or_default();
    sdk!(
        "Subscribe",
        sns.subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(&arn)
            .send()
    )?;
    Ok(url)
}

/// Notifications on the queue at `url` (subscribed to a topic), as [`TriageStack::drain_inbox`]
/// reads the stack's inbox.
pub async fn drain_queue(
    cloud: &LocalCloud,
    url: &str,
    expected: usize,
    settle: Duration,
    timeout: Duration,
) -> Result<Vec<Received>> {
    let sqs = aws_sdk_sqs::Client::new(&cloud.config);
    let bodies = drain(&sqs, url, expected, settle, timeout).await?;
    bodies.iter().map(|b| parse_sns_envelope(b)).collect()
}

fn parse_sns_envelope(body: &str) -> Result<Received> {
    let envelope: Value = serde_json::from_str(body).map_err(|e| format!("SNS envelope: {e}"))?;
    let message = envelope["Message"]
        .as_str()
        .ok_or("SNS envelope without Message")?;
    let attributes = envelope["MessageAttributes"]
        .as_object()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v["Value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Received {
        message_id: envelope["MessageId"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        subject: envelope["Subject"].as_str().unwrap_or_default().to_owned(),
        attributes,
        body: serde_json::from_str(message)
            .map_err(|e| format!("notification body is not JSON: {e}: {message}"))?,
    })
}

/// Writes `lines` to a new stream of the service's log group (`/ecs/orders-api`) through
/// `logs` (any account's client), a second apart, ending 2 s ago.
pub async fn write_log_with(
    logs: &aws_sdk_cloudwatchlogs::Client,
    stream: &str,
    lines: &[&str],
) -> Result<()> {
    sdk!(
        "CreateLogStream",
        logs.create_log_stream()
            .log_group_name(LOG_GROUP)
            .log_stream_name(stream)
            .send()
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    let mut request = logs
        .put_log_events()
        .log_group_name(LOG_GROUP)
        .log_stream_name(stream);
    let first = now - 2_000 - (lines.len() as i64 - 1) * 1_000;
    for (i, line) in lines.iter().enumerate() {
        request = request.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(first + i as i64 * 1_000)
                .message(*line)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    sdk!("PutLogEvents", request.send())?;
    Ok(())
}

/// The scenes' cluster (`shop`), task definition (`orders-api`, awslogs to `/ecs/orders-api`)
/// and service (`orders-api`, 3 tasks, circuit breaker with rollback) through `ecs` (any
/// account's client); gives the task definition's `family:revision`.
pub async fn seed_ecs(ecs: &aws_sdk_ecs::Client) -> Result<String> {
    use aws_sdk_ecs::types::*;
    sdk!(
        "CreateCluster",
        ecs.create_cluster().cluster_name(CLUSTER).send()
    )?;
    let container = ContainerDefinition::builder()
        .name(SERVICE)
        .image("111122223333.dkr.ecr.us-east-1.amazonaws.com/orders-api:1.8.2")
        .essential(true)
        .memory(512)
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", LOG_GROUP)
                .options("awslogs-region", "us-east-1")
                .options("awslogs-stream-prefix", "ecs")
                .build()
                .map_err(|e| e.to_string())?,
        )
        .build();
    let registered = sdk!(
        "RegisterTaskDefinition",
        ecs.register_task_definition()
            .family(SERVICE)
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(container)
            .send()
    )?;
    let arn = registered
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap_or_default()
        .to_owned();
    let family_revision = arn.rsplit('/').next().unwrap_or_default().to_owned();
    sdk!(
        "CreateService",
        ecs.create_service()
            .cluster(CLUSTER)
            .service_name(SERVICE)
            .task_definition(&arn)
            .desired_count(3)
            .launch_type(LaunchType::Fargate)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .deployment_circuit_breaker(
                        DeploymentCircuitBreaker::builder()
                            .enable(true)
                            .rollback(true)
                            .build()
                    )
                    .build()
            )
            .send()
    )?;
    Ok(family_revision)
}

/// The log lines the OOM task "printed" before it was killed.
pub const OOM_LOG_LINES: [&str; 5] = [
    "INFO  orders-api 1.8.2 listening on :8080",
    "INFO  GET /orders?page=1 200 12ms",
    "WARN  order cache at 480 MiB (limit 512 MiB)",
    "INFO  POST /orders/export 202 starting bulk export of 1.2M rows",
    "ERROR java.lang.OutOfMemoryError: Java heap space",
];

/// A crash of `service` (its own task `task`, event id from both) as the crash-loop fixture has
/// it, for scenes about services other than orders-api.
pub fn crash_of_service(stack: &TriageStack, service: &str, task: &str) -> Result<Value> {
    let mut stop = stack.fixture("service-crash-exit1")?;
    stop["id"] = format!("crash-{service}-{task}").into();
    stop["detail"]["group"] = format!("service:{service}").into();
    let arn = stop["detail"]["taskArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let prefix = arn.rsplit_once('/').map(|(p, _)| p).unwrap_or_default();
    stop["detail"]["taskArn"] = format!("{prefix}/{task}").into();
    Ok(stop)
}

/// `n` crash-loop stops of the service, each its own task (the storm scene).
pub fn crash_loop(stack: &TriageStack, n: usize) -> Result<Vec<Value>> {
    (0..n)
        .map(|i| crash_of(stack, &format!("c0ffee{i:026x}")))
        .collect()
}

/// The crash fixture (a service task exiting with code 1) as the stop of task `task_id`.
pub fn crash_of(stack: &TriageStack, task_id: &str) -> Result<Value> {
    let text = stack
        .fixture("service-crash-exit1")?
        .to_string()
        .replace("b1b2c3d4e5f60718293a4b5c6d7e8f91", task_id);
    serde_json::from_str(&text).map_err(|e| e.to_string())
}
