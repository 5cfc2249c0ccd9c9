//! Rendering of notifications into one SNS publish (pure; a `Notifier` port sends it).
//!
//! A [`Notice`] is what any function wants to say (a triage diagnosis, a storm digest, later a
//! scaling change or a job report). [`render`] turns it into a [`Publish`]: an ASCII subject of at
//! most 99 characters, a `MessageStructure=json` message with readable text for `default` and
//! `email`, structured JSON (with `schema_version`) for `sqs`, `lambda` and `https` (or the
//! Chatbot custom-notification schema on `https`), and message attributes for subscription
//! filter policies. The whole message stays within SNS's 256 KiB: the log tail shrinks first,
//! then long text fields; a JSON document is never cut.

pub mod chat;
pub mod links;

use serde::Serialize;
use serde_json::json;

use crate::domain::Category;
use crate::domain::Source;
use crate::domain::{HttpsFormat, Severity};
use crate::incident::IncidentTag;

/// Version of the structured JSON schema carried on `sqs`, `lambda` and `https`.
pub const SCHEMA_VERSION: u32 = 1;
/// SNS's limit on a whole published message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Subjects are at most this many ASCII characters.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// Longest single log line carried; longer lines are shortened with a marker.
pub const MAX_LOG_LINE_CHARS: usize = 2_000;

/// A titled link (console pages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

impl Link {
    /// A console link labelled `label`, when its URL could be made (the links module makes
    /// none for a region not of AWS's shape).
    pub fn console(label: &str, url: Option<String>) -> Option<Self> {
        url.map(|url| Self {
            label: label.into(),
            url,
        })
    }
}

/// A titled block of lines in the readable text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub heading: String,
    pub lines: Vec<String>,
}

/// What kind of message a notice is, as its JSON's `kind` and the `eventType` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    TaskStopped,
    StormDigest,
    ServiceEvent,
    ServiceEventDigest,
    Watchdog,
    IncidentResolved,
    MutedSummary,
    /// A job task's completion report.
    JobCompleted,
    /// What `batch-runner` did with a run: `started`, `skipped`, `replaced` or `failed`.
    Job(&'static str),
    /// `alarm-scaler` changed a service (or, in a dry run, would have).
    Scaled {
        dry_run: bool,
    },
    ScalingRefused,
    /// A target policy's signal could not be read for good (its fallback applies), or recovered.
    ScalingSignal,
    /// A new version of the configuration was refused; the last good one stays in use.
    ConfigRefused,
    /// The configuration asks for what the stack's template parameters do not allow.
    ConfigMismatch,
}

impl NoticeKind {
    pub fn as_str(self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(match self {
            Self::TaskStopped => "task-stopped",
            Self::StormDigest => "storm-digest",
            Self::ServiceEvent => "service-event",
            Self::ServiceEventDigest => "service-event-digest",
            Self::Watchdog => "watchdog",
            Self::IncidentResolved => "incident-resolved",
            Self::MutedSummary => "muted-summary",
            Self::JobCompleted => "job-completed",
            Self::Job(action) => return format!("job-{action}").into(),
            Self::Scaled { dry_run: false } => "scaled",
            Self::Scaled { dry_run: true } => "would-scale",
            Self::ScalingRefused => "scaling-refused",
            Self::ScalingSignal => "scaling-signal",
            Self::ConfigRefused => "config-refused",
            Self::ConfigMismatch => "config-mismatch",
        })
    }
}

impl Serialize for NoticeKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_str())
    }
}

/// What a notice is about, as message attributes and routing rules' `category` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeCategory {
    /// A diagnosed task stop, service event or watchdog finding.
    Diagnosed(Category),
    /// A batch run's report.
    Batch,
    /// A job task that succeeded.
    JobSucceeded,
    Scaling,
    /// An incident's resolution.
    Resolved,
    /// A muting window's summary.
    MutedSummary,
    /// The stack's own configuration.
    Configuration,
}

impl NoticeCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Diagnosed(category) => category.as_str(),
            Self::Batch => "batch",
            Self::JobSucceeded => "job-succeeded",
            Self::Scaling => "scaling",
            Self::Resolved => "resolved",
            Self::MutedSummary => "muted-summary",
            Self::Configuration => "configuration",
        }
    }
}

impl Serialize for NoticeCategory {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Something a function wants to tell its users.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// The function speaking.
    pub source: Source,
    pub kind: NoticeKind,
    pub severity: Severity,
    pub category: NoticeCategory,
    /// One-line headline; the subject is built from it.
    pub title: String,
    pub summary: String,
    pub region: Option<String>,
    pub cluster: Option<String>,
    pub service: Option<String>,
    /// The batch job it is about (a run's report, a job task's completion).
    pub job: Option<String>,
    /// Ordered key/value facts (cluster, task, exit code …).
    pub facts: Vec<(String, String)>,
    pub sections: Vec<Section>,
    /// Heading for the log tail (`Last 20 log lines of api (group/stream)`).
    pub log_heading: Option<String>,
    pub log_tail: Vec<String>,
    pub links: Vec<Link>,
    /// Machine-readable detail (e.g. the diagnosis) for the structured JSON.
    pub details: serde_json::Value,
    /// Thread key for chat clients: notices about the same thing share it.
    pub thread_id: String,
    /// The incident this notification belongs to (service signals of `task-triage`).
    pub incident: Option<IncidentTag>,
}

impl Notice {
    /// What a notice about the configuration itself shares (no region, cluster, service or job;
    /// one chat thread): complete it with its kind, severity, words and details.
    pub fn about_configuration(source: Source, kind: NoticeKind, severity: Severity) -> Self {
        Notice {
            source,
            kind,
            severity,
            category: NoticeCategory::Configuration,
            title: String::new(),
            summary: String::new(),
            region: None,
            cluster: None,
            service: None,
            job: None,
            facts: Vec::new(),
            sections: Vec::new(),
            log_heading: None,
            log_tail: Vec::new(),
            links: Vec::new(),
            details: serde_json::Value::Null,
            thread_id: "configuration".into(),
            incident: None,
        }
    }
}

/// One SNS publish, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub subject: String,
    /// The JSON document for `MessageStructure=json`.
    pub message: String,
    /// String message attributes, in a stable order.
    pub attributes: Vec<(String, String)>,
    /// Log lines dropped to fit the size limit.
    pub log_lines_dropped: usize,
}

impl Publish {
    /// Bytes SNS counts against its limit: message, subject and attribute names and values.
    pub fn size_bytes(&self) -> usize {
        self.message.len()
            + self.subject.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + "String".len())
                .sum::<usize>()
    }
}

/// Renders a notice within [`MAX_MESSAGE_BYTES`].
pub fn render(notice: &Notice, https_format: HttpsFormat) -> Publish {
    render_within(notice, https_format, MAX_MESSAGE_BYTES)
}

/// Renders a notice within `limit` bytes: drops the oldest log lines first (halving), then
/// caps every text field (summary, section lines, facts, and the strings inside `details`) at
/// the largest length that fits, found by bisection. Each attempt renders once, so the cost is
/// linear in the notice's size times the ~20 attempts, whatever the size.
pub fn render_within(notice: &Notice, https_format: HttpsFormat, limit: usize) -> Publish {
    let mut working = notice.clone();
    for line in &mut working.log_tail {
        *line = shorten(line, MAX_LOG_LINE_CHARS);
    }
    let total_lines = working.log_tail.len();
    let render = |notice: &Notice| {
        let mut publish = render_once(notice, https_format);
        publish.log_lines_dropped = total_lines - notice.log_tail.len();
        publish
    };
    loop {
        let publish = render(&working);
        if publish.size_bytes() <= limit {
            return publish;
        }
        if working.log_tail.is_empty() {
            break;
        }
        let keep = working.log_tail.len() / 2;
        working.log_tail.drain(..working.log_tail.len() - keep);
    }
    // The largest cap that fits, between the shortest cap worth keeping and the longest field.
    let longest = longest_text(&working);
    let mut fitting = None;
    let (mut low, mut high) = (MIN_TEXT_CAP, longest.max(MIN_TEXT_CAP));
    while low <= high {
        let cap = low + (high - low) / 2;
        let publish = render(&capped(&working, cap));
        if publish.size_bytes() <= limit {
            fitting = Some(publish);
            low = cap + 1;
        } else {
            high = cap - 1;
        }
    }
    if let Some(publish) = fitting {
        return publish;
    }
    // Even the shortest fields do not fit: the details go, then the fields are capped.
    working.details = serde_json::Value::Null;
    render(&capped(&working, MIN_TEXT_CAP))
}

/// Text fields are never cut shorter than this many characters.
const MIN_TEXT_CAP: usize = 64;

/// The longest text field, in characters.
fn longest_text(notice: &Notice) -> usize {
    fn in_value(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::String(text) => text.chars().count(),
            serde_json::Value::Array(items) => items.iter().map(in_value).max().unwrap_or(0),
            serde_json::Value::Object(map) => map.values().map(in_value).max().unwrap_or(0),
            _ => 0,
        }
    }
    let fields = std::iter::once(&notice.summary)
        .chain(notice.sections.iter().flat_map(|s| s.lines.iter()))
        .chain(notice.facts.iter().map(|(_, v)| v));
    fields
        .map(|f| f.chars().count())
        .max()
        .unwrap_or(0)
        .max(in_value(&notice.details))
}

/// A copy of `notice` with every text field cut to at most `cap` characters.
fn capped(notice: &Notice, cap: usize) -> Notice {
    fn in_value(value: &mut serde_json::Value, cap: usize) {
        match value {
            serde_json::Value::String(text) => *text = shorten(text, cap),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| in_value(v, cap)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| in_value(v, cap)),
            _ => {}
        }
    }
    let mut out = notice.clone();
    out.summary = shorten(&out.summary, cap);
    for line in out.sections.iter_mut().flat_map(|s| s.lines.iter_mut()) {
        *line = shorten(line, cap);
    }
    for (_, value) in &mut out.facts {
        *value = shorten(value, cap);
    }
    in_value(&mut out.details, cap);
    out
}

/// Cuts `text` to at most `max_chars` characters, marking the cut.
pub fn shorten(text: &str, max_chars: usize) -> String {
    const MARK: &str = "…[truncated]";
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let keep = max_chars.saturating_sub(MARK.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(MARK);
    out
}

fn render_once(notice: &Notice, https_format: HttpsFormat) -> Publish {
    let text = readable_text(notice);
    let structured = structured_json(notice).to_string();
    let https = match https_format {
        HttpsFormat::Structured => structured.clone(),
        HttpsFormat::Chatbot => chatbot_json(notice).to_string(),
    };
    let message = json!({
        "default": text,
        "email": text,
        "sqs": structured,
        "lambda": structured,
        "https": https,
    })
    .to_string();
    Publish {
        subject: subject(notice),
        message,
        attributes: attributes(notice),
        log_lines_dropped: 0,
    }
}

/// `[CRITICAL] shop/orders-api: …` as printable ASCII, no line breaks, ≤ 99 characters.
pub fn subject(notice: &Notice) -> String {
    let scope = match (&notice.cluster, &notice.service) {
        (Some(cluster), Some(service)) => format!("{cluster}/{service}: "),
        (Some(cluster), None) => format!("{cluster}: "),
        _ => String::new(),
    };
    let raw = format!(
        "[{}] {scope}{}",
        notice.severity.as_str().to_ascii_uppercase(),
        notice.title
    );
    sanitize_subject(&raw)
}

/// Makes any text a valid SNS subject: printable ASCII, single spaces, ≤ 99 characters.
pub fn sanitize_subject(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_SUBJECT_CHARS));
    let mut last_space = true;
    for ch in raw.chars() {
        let ch = match ch {
            c if c.is_ascii_graphic() => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            '…' => '.',
            '–' | '—' | '→' => '-',
            _ => '?',
        };
        if ch == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        out.push(ch);
    }
    let trimmed = out.trim_end();
    if trimmed.len() <= MAX_SUBJECT_CHARS {
        return if trimmed.is_empty() {
            "ECS Autopilot notification".to_owned()
        } else {
            trimmed.to_owned()
        };
    }
    format!("{}...", trimmed[..MAX_SUBJECT_CHARS - 3].trim_end())
}

fn attributes(notice: &Notice) -> Vec<(String, String)> {
    let mut attributes = vec![
        ("severity".to_owned(), notice.severity.as_str().to_owned()),
        ("category".to_owned(), notice.category.as_str().to_owned()),
        ("source".to_owned(), notice.source.function().to_owned()),
    ];
    if let Some(cluster) = &notice.cluster {
        attributes.push(("cluster".to_owned(), cluster.clone()));
    }
    if let Some(service) = &notice.service {
        attributes.push(("service".to_owned(), service.clone()));
    }
    if let Some(incident) = &notice.incident {
        attributes.push(("incident_id".to_owned(), incident.id.clone()));
        attributes.push(("status".to_owned(), incident.status.as_str().to_owned()));
    }
    attributes.retain(|(_, value)| !value.is_empty());
    attributes
}

/// `text` on one line: line breaks, tabs and other control characters, and the invisible marks
/// that reorder text (bidirectional overrides and isolates), become spaces. What an event says
/// (a reason, a name) cannot start a line of its own in an email, so it cannot forge a heading,
/// a fact or the footer.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' => ' ',
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => ' ',
            c => c,
        })
        .collect()
}

/// A log line inside a chat code block: on one line, `&`, `<` and `>` as entities (Slack reads
/// its control sequences everywhere), and no backtick can close the block (each becomes the
/// look-alike `ˋ`).
pub fn code_line(text: &str) -> String {
    one_line(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "ˋ")
}

/// Text taken from an event, for chat markdown (`client-markdown`): escaped as a [`code_line`]
/// (Slack's own entities: no `<!here>`, `<@user>` or `<url|label>` of its own; no backtick to
/// open a code block) and no markdown link (`](` is split by a zero-width space). Emphasis
/// marks stay: clients show a backslash escape literally, and bold text is no harm.
pub fn markdown_text(text: &str) -> String {
    code_line(text).replace("](", "]\u{200b}(")
}

/// The readable text for `default` and `email`. Every value is put on one line (see
/// [`one_line`]); a log line keeps its own line, prefixed.
pub fn readable_text(notice: &Notice) -> String {
    let mut text = format!(
        "[{}] {}\n\n{}\n",
        notice.severity.as_str().to_ascii_uppercase(),
        one_line(&notice.title),
        one_line(&notice.summary)
    );
    if !notice.facts.is_empty() {
        text.push('\n');
        let width = notice
            .facts
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (key, value) in &notice.facts {
            text.push_str(&format!("{key:<width$}  {}\n", one_line(value)));
        }
    }
    for section in notice.sections.iter().filter(|s| !s.lines.is_empty()) {
        text.push_str(&format!("\n{}\n", one_line(&section.heading)));
        for line in &section.lines {
            text.push_str(&format!("  - {}\n", one_line(line)));
        }
    }
    if !notice.log_tail.is_empty() {
        let heading = notice.log_heading.as_deref().unwrap_or("Last log lines");
        text.push_str(&format!("\n{}\n", one_line(heading)));
        for line in &notice.log_tail {
            text.push_str(&format!("  | {}\n", one_line(line)));
        }
    }
    if !notice.links.is_empty() {
        text.push_str("\nLinks\n");
        for link in &notice.links {
            text.push_str(&format!(
                "  {}: {}\n",
                one_line(&link.label),
                one_line(&link.url)
            ));
        }
    }
    text.push_str(&format!(
        "\n-- {} (ECS Autopilot {})\n",
        notice.source.function(),
        crate::VERSION
    ));
    text
}

/// The structured JSON for `sqs`, `lambda` and (by default) `https`.
pub fn structured_json(notice: &Notice) -> serde_json::Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "source": notice.source.function(),
        "version": crate::VERSION,
        "kind": notice.kind,
        "severity": notice.severity,
        "category": notice.category,
        "title": notice.title,
        "summary": notice.summary,
        "region": notice.region,
        "cluster": notice.cluster,
        "service": notice.service,
        "facts": notice.facts.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "sections": notice.sections,
        "log_tail": notice.log_tail,
        "links": notice.links,
        "details": notice.details,
        "thread_id": notice.thread_id,
        "incident": notice.incident,
    })
}

/// Amazon Q Developer in chat applications (Chatbot) custom notification.
pub fn chatbot_json(notice: &Notice) -> serde_json::Value {
    let emoji = match notice.severity {
        Severity::Critical => ":red_circle:",
        Severity::Warning => ":warning:",
        Severity::Info => ":information_source:",
    };
    // Event text is escaped for markdown; the log tail goes in a code block it cannot close.
    let mut description = markdown_text(&notice.summary);
    if !notice.log_tail.is_empty() {
        let tail: Vec<String> = notice
            .log_tail
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(|line| code_line(line))
            .collect();
        description.push_str(&format!("\n```\n{}\n```", tail.join("\n")));
    }
    let mut next_steps: Vec<String> = notice
        .sections
        .iter()
        .filter(|s| s.heading.starts_with("What to do"))
        .flat_map(|s| s.lines.iter().map(|line| markdown_text(line)))
        .collect();
    next_steps.extend(notice.links.iter().map(|l| {
        // The URL's own `|` and `>` would end the link early.
        let url = l
            .url
            .replace('|', "%7C")
            .replace('>', "%3E")
            .replace('<', "%3C");
        format!("<{url}|{}>", markdown_text(&l.label))
    }));
    let mut keywords = vec![
        notice.severity.as_str().to_owned(),
        notice.category.as_str().to_owned(),
    ];
    keywords.extend(notice.cluster.clone());
    keywords.extend(notice.service.clone());
    json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": format!("{emoji} {}", markdown_text(&notice.title)),
            "description": description,
            "nextSteps": next_steps,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": notice.thread_id,
            "summary": subject(notice),
            "eventType": format!("{}/{}", notice.source.function(), notice.kind.as_str()),
            "additionalContext": notice.facts.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        }
    })
}

#[cfg(test)]
mod tests;
