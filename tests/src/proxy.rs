//! The harness's proxy in front of the local cloud. A deployed function reaches ECS, SNS and
//! DynamoDB through it (`AWS_ENDPOINT_URL_<SERVICE>` in its environment); it forwards every
//! request to ministack unless a staged rule answers instead (a scripted reply for what the local
//! cloud cannot produce: without Docker, ECS never fails a deployment) or a fault is injected:
//! an error reply in the service's protocol (throttling, 500, 503), a reply slower than the SDK's
//! timeout, a reply held back after the cloud acted, or a dropped connection, on every call, at a
//! seeded rate or on chosen calls. It counts the calls per operation, the faults it injected, and
//! keeps the request bodies of the operations it is asked to record.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::Result;

/// A reply staged for matching requests.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The operation: the part of `X-Amz-Target` after the dot, or the query protocol's
    /// `Action`.
    pub operation: String,
    /// The request body must contain this (e.g. a service name); empty matches every request.
    pub body_contains: String,
    pub status: u16,
    /// The reply (`application/x-amz-json-1.1`).
    pub body: Value,
}

/// A fault injected into matching requests.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The operation, as for [`Staged`].
    pub operation: String,
    /// The request body must contain this (e.g. one update expression); empty matches every
    /// request of the operation.
    pub body_contains: String,
    pub kind: FaultKind,
    pub when: When,
}

/// What a fault does.
#[derive(Debug, Clone, Copy)]
pub enum FaultKind {
    /// An error reply in the operation's protocol (JSON `__type` or the query protocol's XML),
    /// before the call reaches the cloud: e.g. `(400, "ThrottlingException")`,
    /// `(500, "InternalFailure")`, `(503, "ServiceUnavailable")`.
    Error { status: u16, code: &'static str },
    /// No reply for this long, then the call is forwarded (slower than the SDK's timeout: the
    /// client gives up first and the cloud never sees the attempt).
    Slow(Duration),
    /// The call reaches the cloud and acts; its reply is held back this long (the client times
    /// out after the cloud accepted).
    LateReply(Duration),
    /// The connection is dropped without a reply; nothing is forwarded.
    Reset,
}

/// Which matching calls a fault hits.
#[derive(Debug, Clone)]
pub enum When {
    /// Each call with this probability (percent), from a seeded generator.
    Rate { percent: u32 },
    /// The n-th matching calls (1-based).
    Calls(Vec<usize>),
}

#[derive(Default)]
struct Shared {
    staged: Vec<Staged>,
    faults: Vec<Fault>,
    /// Calls per operation: (forwarded, answered by a staged reply).
    calls: BTreeMap<String, (usize, usize)>,
    /// Matching calls seen per fault (for [`When::Calls`]).
    fault_calls: Vec<usize>,
    /// Faults injected per operation.
    injected: BTreeMap<String, usize>,
    /// Operations whose request bodies are kept, and the bodies.
    recorded: BTreeMap<String, Vec<String>>,
    /// The generator behind [`When::Rate`] (xorshift, seeded; repeatable).
    rate_state: u64,
}

impl Shared {
    /// The fault to inject into this call of `operation`, if any.
    fn fault_for(&mut self, operation: &str, body: &str) -> Option<FaultKind> {
        for (i, fault) in self.faults.iter().enumerate() {
            if fault.operation != operation || !body.contains(&fault.body_contains) {
                continue;
            }
            self.fault_calls[i] += 1;
            let hit = match &fault.when {
                When::Calls(calls) => calls.contains(&self.fault_calls[i]),
                When::Rate { percent } => {
                    let mut x = self.rate_state;
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    self.rate_state = x;
                    x % 100 < u64::from(*percent)
                }
            };
            if hit {
                *self.injected.entry(operation.to_owned()).or_default() += 1;
                return Some(fault.kind);
            }
        }
        None
    }
}

/// The proxy, listening on 127.0.0.1 until dropped.
pub struct Proxy {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    shared: Arc<Mutex<Shared>>,
    server: JoinHandle<()>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Proxy {
    /// Starts a proxy that forwards to `upstream` (`http://127.0.0.1:<port>`).
    pub async fn start(upstream: &str) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("proxy: bind: {e}"))?;
        let address: SocketAddr = listener
            .local_addr()
            .map_err(|e| format!("proxy: address: {e}"))?;
        let shared = Arc::new(Mutex::new(Shared {
            rate_state: 0x9E37_79B9_7F4A_7C15,
            ..Shared::default()
        }));
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let state = shared.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, client, upstream) = (state.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let serve = service_fn(move |request| {
                        let (state, client, upstream) =
                            (state.clone(), client.clone(), upstream.clone());
                        async move {
                            match handle(request, state, client, upstream).await {
                                Some(response) => Ok(response),
                                // An error from the service drops the connection unanswered.
                                None => Err("connection reset (injected)"),
                            }
                        }
                    });
                    // A connection the client drops mid-request ends here; nothing to report.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), serve)
                        .await;
                });
            }
        });
        Ok(Self {
            endpoint: format!("http://{address}"),
            shared,
            server,
        })
    }

    /// Stages a reply; the first matching rule staged answers.
    pub fn stage(&self, staged: Staged) {
        lock(&self.shared).staged.push(staged);
    }

    /// Removes every staged reply and fault: all requests are forwarded again.
    pub fn clear(&self) {
        let mut shared = lock(&self.shared);
        shared.staged.clear();
        shared.faults.clear();
        shared.fault_calls.clear();
    }

    /// Injects `fault` from now on.
    pub fn inject(&self, fault: Fault) {
        let mut shared = lock(&self.shared);
        shared.faults.push(fault);
        shared.fault_calls.push(0);
    }

    /// Faults injected into `operation` so far.
    pub fn injected(&self, operation: &str) -> usize {
        lock(&self.shared)
            .injected
            .get(operation)
            .copied()
            .unwrap_or_default()
    }

    /// Keeps the request bodies of `operation` from now on.
    pub fn record(&self, operation: &str) {
        lock(&self.shared)
            .recorded
            .entry(operation.to_owned())
            .or_default();
    }

    /// The request bodies of `operation` kept so far (every attempt, faulted or not).
    pub fn bodies(&self, operation: &str) -> Vec<String> {
        lock(&self.shared)
            .recorded
            .get(operation)
            .cloned()
            .unwrap_or_default()
    }

    /// Calls of `operation` so far: (forwarded, answered by a staged reply).
    pub fn calls(&self, operation: &str) -> (usize, usize) {
        lock(&self.shared)
            .calls
            .get(operation)
            .copied()
            .unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The operation a request calls: JSON protocols name it in `X-Amz-Target`, the query protocol
/// in the form body's `Action`.
fn operation_of(request: &hyper::http::request::Parts, body: &[u8]) -> String {
    if let Some(target) = request
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or("unknown")
        .to_owned()
}

/// Answers one request; `None` drops the connection.
async fn handle(
    request: Request<Incoming>,
    shared: Arc<Mutex<Shared>>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: Arc<str>,
) -> Option<Response<Full<Bytes>>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return Some(reply(StatusCode::BAD_GATEWAY, error.to_string())),
    };
    let operation = operation_of(&parts, &body);
    let json_protocol = parts.headers.contains_key("x-amz-target");
    let fault = {
        let mut shared = lock(&shared);
        let text = String::from_utf8_lossy(&body);
        if let Some(bodies) = shared.recorded.get_mut(&operation) {
            bodies.push(text.clone().into_owned());
        }
        shared.fault_for(&operation, &text)
    };
    let mut late = None;
    match fault {
        Some(FaultKind::Error { status, code }) => {
            return Some(error_reply(status, code, json_protocol))
        }
        Some(FaultKind::Reset) => return None,
        Some(FaultKind::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(FaultKind::LateReply(delay)) => late = Some(delay),
        None => {}
    }
    let response = forward_or_stage(parts, body, operation, &shared, &client, &upstream).await;
    if let Some(delay) = late {
        tokio::time::sleep(delay).await;
    }
    Some(response)
}

/// An AWS error reply: JSON protocols carry `__type`, the query protocol an XML ErrorResponse.
fn error_reply(status: u16, code: &str, json_protocol: bool) -> Response<Full<Bytes>> {
    let message = format!("{code} injected by the test proxy");
    let (body, content_type) = if json_protocol {
        (
            serde_json::json!({"__type": code, "message": message}).to_string(),
            "application/x-amz-json-1.1",
        )
    } else {
        (
            format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>injected</RequestId></ErrorResponse>",
                if status < 500 { "Sender" } else { "Receiver" }
            ),
            "text/xml",
        )
    };
    let mut response = reply(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    );
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

async fn forward_or_stage(
    parts: hyper::http::request::Parts,
    body: Bytes,
    operation: String,
    shared: &Mutex<Shared>,
    client: &Client<HttpConnector, Full<Bytes>>,
    upstream: &str,
) -> Response<Full<Bytes>> {
    let staged = {
        let mut shared = lock(shared);
        let text = String::from_utf8_lossy(&body);
        let staged = shared
            .staged
            .iter()
            .find(|s| s.operation == operation && text.contains(&s.body_contains))
            .cloned();
        let counts = shared.calls.entry(operation).or_default();
        match staged {
            Some(_) => counts.1 += 1,
            None => counts.0 += 1,
        }
        staged
    };
    if let Some(staged) = staged {
        let mut response = Response::new(Full::new(Bytes::from(staged.body.to_string())));
        *response.status_mut() =
            StatusCode::from_u16(staged.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        return response;
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut forward = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{upstream}{path}"));
    for (name, value) in parts
        .headers
        .iter()
        .filter(|(n, _)| !hop_by_hop(n.as_str()))
    {
        forward = forward.header(name, value);
    }
    let forward = match forward.body(Full::new(body)) {
        Ok(forward) => forward,
        Err(error) => return reply(StatusCode::BAD_GATEWAY, error.to_string()),
    };
    match client.request(forward).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            parts.headers.remove("transfer-encoding");
            parts.headers.remove("connection");
            match body.collect().await {
                Ok(collected) => Response::from_parts(parts, Full::new(collected.to_bytes())),
                Err(error) => reply(StatusCode::BAD_GATEWAY, error.to_string()),
            }
        }
        Err(error) => reply(StatusCode::BAD_GATEWAY, error.to_string()),
    }
}

/// Headers of one connection, not of the request.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}

fn reply(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}
