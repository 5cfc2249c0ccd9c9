//! A local incoming-webhook server for the routing scenes: it records each POST (path and JSON
//! body) and answers with the statuses a test scripts per path (then 200, as Slack does; Teams'
//! workflows answer 202), with `Retry-After` where given.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::Result;

#[derive(Default)]
struct Shared {
    /// Per path: the answers to give next (status, Retry-After seconds).
    script: BTreeMap<String, VecDeque<(u16, Option<u64>)>>,
    /// Every request: (path with query, body, status answered).
    seen: Vec<(String, String, u16)>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running server.
pub struct WebhookServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shared: Arc<Mutex<Shared>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl WebhookServer {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("webhooks: bind: {e}"))?;
        let address: SocketAddr = listener
            .local_addr()
            .map_err(|e| format!("webhooks: address: {e}"))?;
        let shared: Arc<Mutex<Shared>> = Arc::default();
        let state = shared.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let serve =
                        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let state = state.clone();
                            async move {
                                let path = request
                                    .uri()
                                    .path_and_query()
                                    .map(|p| p.as_str().to_owned())
                                    .unwrap_or_default();
                                let only_path = request.uri().path().to_owned();
                                let body = request
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                                    .unwrap_or_default();
                                let (status, retry_after) = {
                                    let mut shared = lock(&state);
                                    let answer = shared
                                        .script
                                        .get_mut(&only_path)
                                        .and_then(VecDeque::pop_front)
                                        .unwrap_or((200, None));
                                    shared.seen.push((path, body, answer.0));
                                    answer
                                };
                                let mut response = hyper::Response::builder().status(status);
                                if let Some(seconds) = retry_after {
                                    response = response.header("retry-after", seconds.to_string());
                                }
                                let text = if status < 300 { "ok" } else { "no" };
                                response.body(Full::new(Bytes::from(text)))
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), serve)
                        .await;
                });
            }
        });
        Ok(Self {
            base: format!("http://{address}"),
            shared,
            server,
        })
    }

    /// Answers the next POSTs to `path` with `status` (and `Retry-After`), in order.
    pub fn answer(&self, path: &str, status: u16, retry_after_s: Option<u64>) {
        lock(&self.shared)
            .script
            .entry(path.to_owned())
            .or_default()
            .push_back((status, retry_after_s));
    }

    /// Every POST so far: (path with query, body, status answered).
    pub fn seen(&self) -> Vec<(String, String, u16)> {
        lock(&self.shared).seen.clone()
    }

    /// The bodies `path` accepted (2xx), parsed.
    pub fn accepted(&self, path: &str) -> Vec<serde_json::Value> {
        self.seen()
            .into_iter()
            .filter(|(p, _, status)| p.split('?').next() == Some(path) && *status < 300)
            .filter_map(|(_, body, _)| serde_json::from_str(&body).ok())
            .collect()
    }
}

/// What is wrong with `message` as a Slack incoming-webhook message of Block Kit blocks: `text`
/// and `blocks` (at most 50), each block of a known type within its limits (header ≤ 150, section
/// text ≤ 3000, ≤ 10 fields of ≤ 2000, buttons ≤ 25 with text ≤ 75 and an https URL ≤ 3000).
pub fn slack_problems(message: &serde_json::Value) -> Vec<String> {
    let mut problems = Vec::new();
    let chars = |v: &serde_json::Value| v.as_str().map_or(0, |s| s.chars().count());
    if !message["text"].is_string() {
        problems.push("no fallback text".to_owned());
    }
    let Some(blocks) = message["blocks"].as_array() else {
        return vec!["no blocks".into()];
    };
    if blocks.is_empty() || blocks.len() > 50 {
        problems.push(format!("{} blocks", blocks.len()));
    }
    for (i, block) in blocks.iter().enumerate() {
        match block["type"].as_str() {
            Some("header") => {
                if block["text"]["type"] != "plain_text" || chars(&block["text"]["text"]) > 150 {
                    problems.push(format!("block {i}: header"));
                }
            }
            Some("section") => {
                let text_ok = block["text"].is_null()
                    || (block["text"]["type"] == "mrkdwn" && chars(&block["text"]["text"]) <= 3000);
                let fields = block["fields"].as_array();
                let fields_ok = fields.is_none_or(|f| {
                    f.len() <= 10
                        && f.iter()
                            .all(|f| f["type"] == "mrkdwn" && chars(&f["text"]) <= 2000)
                });
                if !text_ok || !fields_ok || (block["text"].is_null() && fields.is_none()) {
                    problems.push(format!("block {i}: section"));
                }
            }
            Some("context") => {
                let ok = block["elements"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty() && e.len() <= 10);
                if !ok {
                    problems.push(format!("block {i}: context"));
                }
            }
            Some("actions") => {
                let ok = block["elements"].as_array().is_some_and(|buttons| {
                    buttons.len() <= 25
                        && buttons.iter().all(|b| {
                            b["type"] == "button"
                                && chars(&b["text"]["text"]) <= 75
                                && b["url"]
                                    .as_str()
                                    .is_some_and(|u| u.starts_with("https://") && u.len() <= 3000)
                        })
                });
                if !ok {
                    problems.push(format!("block {i}: actions"));
                }
            }
            other => problems.push(format!("block {i}: unknown type {other:?}")),
        }
    }
    problems
}

/// What is wrong with `message` as a Teams workflow message carrying one Adaptive Card
/// (`type: message`, one attachment of content type `application/vnd.microsoft.card.adaptive`
/// whose content is an `AdaptiveCard` of a version, a body of RichTextBlock elements of
/// TextRuns — where Adaptive Cards render no markdown, so event text cannot link or format —
/// and OpenUrl actions).
pub fn teams_problems(message: &serde_json::Value) -> Vec<String> {
    let mut problems = Vec::new();
    if message["type"] != "message" {
        problems.push("type is not message".to_owned());
    }
    let Some([attachment]) = message["attachments"].as_array().map(Vec::as_slice) else {
        return vec!["not exactly one attachment".into()];
    };
    if attachment["contentType"] != "application/vnd.microsoft.card.adaptive" {
        problems.push("contentType".into());
    }
    let card = &attachment["content"];
    if card["type"] != "AdaptiveCard" || !card["version"].is_string() {
        problems.push("not an AdaptiveCard with a version".into());
    }
    for (i, element) in card["body"].as_array().into_iter().flatten().enumerate() {
        match element["type"].as_str() {
            Some("RichTextBlock")
                if element["inlines"].as_array().is_some_and(|runs| {
                    runs.iter()
                        .all(|run| run["type"] == "TextRun" && run["text"].is_string())
                }) => {}
            other => problems.push(format!("body {i}: {other:?}")),
        }
    }
    for (i, action) in card["actions"].as_array().into_iter().flatten().enumerate() {
        if action["type"] != "Action.OpenUrl" || !action["url"].is_string() {
            problems.push(format!("action {i}"));
        }
    }
    if message.to_string().len() > 28 * 1024 {
        problems.push("over 28 KB".into());
    }
    problems
}
