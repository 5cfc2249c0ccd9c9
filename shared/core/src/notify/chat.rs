//! Rendering a notice for incoming chat webhooks (pure): a Slack message of Block Kit blocks and
//! a Microsoft Teams workflow message carrying an Adaptive Card. Both keep within the platforms'
//! documented limits: Slack's 50 blocks, 150-character header, 3,000-character section text,
//! 10 fields of 2,000, 25 buttons with 75-character labels and URLs of at most 3,000; Teams'
//! ~28 KB message (the log tail shrinks first, then the sections).
//!
//! Event text (reasons, log lines, names, tags) cannot mention, link or break out: in Slack it is
//! escaped (`&`, `<`, `>` as entities, so no `<!channel>` or `<url|label>`; in the log's code
//! block no backtick survives to close it), and in Teams every text is a `TextRun` of a
//! `RichTextBlock`, where Adaptive Cards render no markdown at all.

use serde_json::{json, Value};

use super::{code_line, markdown_text, shorten, Notice};
use crate::domain::Severity;

/// Slack: blocks per message.
pub const SLACK_MAX_BLOCKS: usize = 50;
/// Slack: characters of a header block's text.
pub const SLACK_MAX_HEADER: usize = 150;
/// Slack: characters of a section's text.
pub const SLACK_MAX_SECTION: usize = 3_000;
/// Slack: fields of a section, and characters of each.
pub const SLACK_MAX_FIELDS: usize = 10;
pub const SLACK_MAX_FIELD: usize = 2_000;
/// Slack: elements of an actions block, characters of a button's text and of its URL.
pub const SLACK_MAX_BUTTONS: usize = 25;
pub const SLACK_MAX_BUTTON_TEXT: usize = 75;
pub const SLACK_MAX_URL: usize = 3_000;
/// Teams: bytes of a message a workflow webhook accepts (the connector limit is 28 KB).
pub const TEAMS_MAX_BYTES: usize = 27_000;

fn emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => ":red_circle:",
        Severity::Warning => ":large_orange_circle:",
        Severity::Info => ":large_blue_circle:",
    }
}

/// Text for Slack's mrkdwn, line by line as [`markdown_text`]: `&`, `<` and `>` (its control
/// characters) as entities, no backtick to open a code block, no `](` link.
fn slack_escape(text: &str) -> String {
    text.split('\n')
        .map(markdown_text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The scope line: `shop/orders-api · task-triage 0.1.0 · oom`.
fn scope_line(notice: &Notice) -> String {
    let mut parts = Vec::new();
    match (&notice.cluster, &notice.service) {
        (Some(c), Some(s)) => parts.push(format!("{c}/{s}")),
        (Some(c), None) => parts.push(c.clone()),
        _ => {}
    }
    if let Some(job) = &notice.job {
        parts.push(format!("job {job}"));
    }
    parts.push(format!("{} {}", notice.source.function(), crate::VERSION));
    parts.push(notice.category.as_str().to_owned());
    parts.join(" · ")
}

/// The last log lines that fit `max` characters as a code block (```), oldest first.
fn code_block(lines: &[String], max: usize) -> Option<String> {
    const FENCE: usize = 8; // "```\n" + "\n```"
    let mut kept: Vec<String> = Vec::new();
    let mut used = FENCE;
    for line in lines.iter().rev() {
        // A backtick inside could close the block, and Slack reads `<…>` even in a code block.
        let line = code_line(line);
        let cost = line.chars().count() + 1;
        if used + cost > max {
            break;
        }
        used += cost;
        kept.push(line);
    }
    if kept.is_empty() {
        return None;
    }
    kept.reverse();
    Some(format!("```\n{}\n```", kept.join("\n")))
}

/// A Slack incoming-webhook message: `text` (the notification fallback) and blocks — header,
/// severity and scope, summary, facts as fields, sections, the log tail as a code block and a
/// button per console link.
pub fn slack_message(notice: &Notice) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": shorten(&notice.title, SLACK_MAX_HEADER), "emoji": true}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": shorten(&format!("{} *{}* · {}", emoji(notice.severity), notice.severity.as_str().to_uppercase(), slack_escape(&scope_line(notice))), SLACK_MAX_FIELD)}]}),
    ];
    if !notice.summary.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": shorten(&slack_escape(&notice.summary), SLACK_MAX_SECTION)}}));
    }
    for facts in notice.facts.chunks(SLACK_MAX_FIELDS) {
        let fields: Vec<Value> = facts
            .iter()
            .map(|(key, value)| {
                let text = format!("*{}*\n{}", slack_escape(key), slack_escape(value));
                json!({"type": "mrkdwn", "text": shorten(&text, SLACK_MAX_FIELD)})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    // Room for the log tail, the buttons and a marker of what was left out.
    let room = SLACK_MAX_BLOCKS - 4;
    let mut left_out = 0;
    for section in &notice.sections {
        if blocks.len() >= room {
            left_out += 1;
            continue;
        }
        let text = format!(
            "*{}*\n{}",
            slack_escape(&section.heading),
            slack_escape(&section.lines.join("\n"))
        );
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": shorten(&text, SLACK_MAX_SECTION)}}));
    }
    if left_out > 0 {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{left_out} more section(s) in the e-mail and SNS message")}]}));
    }
    if let Some(code) = code_block(&notice.log_tail, SLACK_MAX_SECTION - 200) {
        let heading = notice.log_heading.as_deref().unwrap_or("Log tail");
        let heading = shorten(&slack_escape(heading), 150);
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{heading}*\n{code}")}}));
    }
    let buttons: Vec<Value> = notice
        .links
        .iter()
        .filter(|link| link.url.len() <= SLACK_MAX_URL && link.url.starts_with("https://"))
        .take(SLACK_MAX_BUTTONS)
        .map(|link| {
            json!({"type": "button", "text": {"type": "plain_text", "text": shorten(&link.label, SLACK_MAX_BUTTON_TEXT)}, "url": link.url})
        })
        .collect();
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    blocks.truncate(SLACK_MAX_BLOCKS);
    // The notification text is mrkdwn too.
    let fallback = format!(
        "[{}] {}",
        notice.severity.as_str().to_uppercase(),
        slack_escape(&notice.title)
    );
    json!({"text": shorten(&fallback, SLACK_MAX_SECTION), "blocks": blocks})
}

fn teams_color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "attention",
        Severity::Warning => "warning",
        Severity::Info => "accent",
    }
}

/// A Teams workflow-webhook message: one Adaptive Card (schema 1.4) with the title, severity
/// and scope, summary, the facts, the sections, the log tail in monospace and an OpenUrl
/// action per console link, every text a `TextRun`; within [`TEAMS_MAX_BYTES`].
pub fn teams_message(notice: &Notice) -> Value {
    let mut working = notice.clone();
    loop {
        let message = teams_once(&working);
        if message.to_string().len() <= TEAMS_MAX_BYTES {
            return message;
        }
        if !working.log_tail.is_empty() {
            let keep = working.log_tail.len() / 2;
            working.log_tail.drain(..working.log_tail.len() - keep);
        } else if !working.sections.is_empty() {
            working.sections.pop();
        } else if working.facts.len() > 1 {
            working.facts.truncate(working.facts.len() / 2);
        } else {
            working.summary = shorten(&working.summary, 2_000);
            working.facts.clear();
            working.links.clear();
            return teams_once(&working);
        }
    }
}

/// Text as Teams shows it literally: a `RichTextBlock` of one `TextRun` (`style` adds the
/// run's weight, size, colour or font), where no markdown is rendered.
fn teams_text(text: &str, style: Value) -> Value {
    let mut run = json!({"type": "TextRun", "text": text});
    if let (Some(run), Value::Object(style)) = (run.as_object_mut(), style) {
        run.extend(style);
    }
    json!({"type": "RichTextBlock", "inlines": [run]})
}

fn teams_once(notice: &Notice) -> Value {
    let mut body = vec![
        teams_text(
            &notice.title,
            json!({"size": "Large", "weight": "Bolder", "color": teams_color(notice.severity)}),
        ),
        teams_text(
            &format!(
                "{} · {}",
                notice.severity.as_str().to_uppercase(),
                scope_line(notice)
            ),
            json!({"isSubtle": true}),
        ),
    ];
    if !notice.summary.is_empty() {
        body.push(teams_text(&notice.summary, json!({})));
    }
    for (key, value) in &notice.facts {
        body.push(json!({"type": "RichTextBlock", "inlines": [
            {"type": "TextRun", "text": format!("{key}: "), "weight": "Bolder"},
            {"type": "TextRun", "text": value},
        ]}));
    }
    for section in &notice.sections {
        let mut heading = teams_text(&section.heading, json!({"weight": "Bolder"}));
        heading["separator"] = json!(true);
        body.push(heading);
        body.push(teams_text(&section.lines.join("\n"), json!({})));
    }
    if !notice.log_tail.is_empty() {
        let heading = notice.log_heading.as_deref().unwrap_or("Log tail");
        let mut heading = teams_text(heading, json!({"weight": "Bolder"}));
        heading["separator"] = json!(true);
        body.push(heading);
        body.push(teams_text(
            &notice.log_tail.join("\n"),
            json!({"fontType": "Monospace", "size": "Small"}),
        ));
    }
    let actions: Vec<Value> = notice
        .links
        .iter()
        .filter(|link| link.url.starts_with("https://"))
        .map(|link| json!({"type": "Action.OpenUrl", "title": link.label, "url": link.url}))
        .collect();
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    });
    if !actions.is_empty() {
        card["actions"] = Value::Array(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}
