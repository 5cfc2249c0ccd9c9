//! The harness's proxy in front of the local cloud. A deployed function reaches one AWS service
//! through it (`AWS_ENDPOINT_URL_<SERVICE>` in its environment); it forwards every request to
//! ministack unless a staged rule answers instead: a scripted reply for what the local cloud
//! cannot produce (without Docker, ECS never fails a deployment), matched by operation and a
//! substring of the request. It counts the calls per operation.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

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

#[derive(Default)]
struct Shared {
    staged: Vec<Staged>,
    /// Calls per operation: (forwarded, answered by a staged reply).
    calls: BTreeMap<String, (usize, usize)>,
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
        let shared = Arc::new(Mutex::new(Shared::default()));
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let upstream: Arc<str> = upstream.trim_end_matches('/').into();
        let state = shared.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, client, upstream) = (state.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let serve = service_fn(move |request| {
                        handle(request, state.clone(), client.clone(), upstream.clone())
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

    /// Removes every staged reply: all requests are forwarded again.
    pub fn clear(&self) {
        lock(&self.shared).staged.clear();
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

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Mutex<Shared>>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: Arc<str>,
) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return Ok(reply(StatusCode::BAD_GATEWAY, error.to_string())),
    };
    let operation = operation_of(&parts, &body);
    let staged = {
        let mut shared = lock(&shared);
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
        return Ok(response);
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
        Err(error) => return Ok(reply(StatusCode::BAD_GATEWAY, error.to_string())),
    };
    match client.request(forward).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            parts.headers.remove("transfer-encoding");
            parts.headers.remove("connection");
            match body.collect().await {
                Ok(collected) => Ok(Response::from_parts(parts, Full::new(collected.to_bytes()))),
                Err(error) => Ok(reply(StatusCode::BAD_GATEWAY, error.to_string())),
            }
        }
        Err(error) => Ok(reply(StatusCode::BAD_GATEWAY, error.to_string())),
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
