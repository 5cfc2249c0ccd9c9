//! Where a notice goes (pure): the ordered rules of `notify.routes` (the first that matches
//! decides), then the `notify.route_by_tag` shorthand, then the default topic
//! (`NOTIFY_TOPIC_ARN`). A rule is one flat object, match keys beside action keys:
//!
//! ```json
//! {"cluster": "shop", "service": "orders-*", "category": ["oom", "app-exit"],
//!  "min_severity": "warning", "topic": "arn:aws:sns:eu-west-1:111122223333:payments",
//!  "webhook": "platform-slack", "also_default": true}
//! ```
//!
//! Match keys: `cluster`, `service`, `job` (globs on names), `source` (the function that sends),
//! `category` (a list), `min_severity` (inclusive, on the severity after the category overrides
//! and before the rule's own `severity`), `tags` (all given key/values on the service or task),
//! `windows` (any of them holds the event's time). A rule naming a field the notice lacks does not
//! match. Actions: `topic`, `webhook`, `mute`, `severity`, `also_default`. Silent decisions are
//! never routed: the handlers route only what they would tell.
//!
//! The handlers route through `autopilot::app::publish::Courier`, which reads tags when
//! [`Router::uses_tags`], sends to each [`Destination`] and counts what a muting window held back
//! under [`crate::keys::mute_ledger_key`]; [`summary`] words the summary sent once the window has ended.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

pub mod summary;
pub mod window;

pub use crate::domain::Source;
use crate::domain::{Routed, Severity};
use crate::error::{AutopilotError, Result};
use window::{Window, WindowSpec};

/// One rule as written in `notify.routes`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// A name for explanations and logs (`payments maintenance`); optional.
    pub name: Option<String>,
    pub cluster: Option<String>,
    pub service: Option<String>,
    pub job: Option<String>,
    pub source: Option<Source>,
    pub category: Option<Vec<String>>,
    pub min_severity: Option<Severity>,
    pub tags: Option<BTreeMap<String, String>>,
    pub windows: Option<Vec<WindowSpec>>,
    pub topic: Option<String>,
    pub webhook: Option<String>,
    #[serde(default)]
    pub mute: bool,
    pub severity: Option<Severity>,
    #[serde(default)]
    pub also_default: bool,
}

/// `notify.route_by_tag`: per-team topics keyed by one tag's value.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteByTagSpec {
    pub tag: String,
    pub topics: BTreeMap<String, String>,
}

/// The kind of an incoming webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookKind {
    /// Slack incoming webhook (Block Kit).
    Slack,
    /// Microsoft Teams workflow webhook (Adaptive Card).
    Teams,
}

/// `notify.webhooks.<name>`: a named destination whose URL is an SSM SecureString.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    pub kind: WebhookKind,
    /// The SSM parameter (a path starting with `/`) holding the URL; read once per cold start.
    pub url_ssm: String,
}

/// The categories a rule may name: every triage category and those of the scaler's and the
/// runner's notices.
pub fn known_categories() -> Vec<&'static str> {
    let mut known: Vec<&'static str> = crate::triage::Category::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    known.extend([
        "scaling",
        "batch",
        "job-succeeded",
        "resolved",
        "muted-summary",
        "configuration",
    ]);
    known
}

/// What a notice offers to the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject<'a> {
    pub source: Source,
    pub cluster: Option<&'a str>,
    pub service: Option<&'a str>,
    pub job: Option<&'a str>,
    pub category: &'a str,
    /// After the category overrides.
    pub severity: Severity,
    /// The event's own time (a tick's time for the scaler's and the runner's notices).
    pub at: Timestamp,
    /// The service's or task's tags; `None` when not read (no rule uses tags, or unreadable).
    pub tags: Option<&'a BTreeMap<String, String>>,
}

/// A place a notice is delivered to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Destination {
    /// `NOTIFY_TOPIC_ARN`.
    DefaultTopic,
    Topic(String),
    /// A named destination of `notify.webhooks`.
    Webhook(String),
}

impl Destination {
    /// `default`, the topic ARN, or `webhook:<name>`.
    pub fn label(&self) -> String {
        match self {
            Self::DefaultTopic => "default".into(),
            Self::Topic(arn) => arn.clone(),
            Self::Webhook(name) => format!("webhook:{name}"),
        }
    }
}

impl Route {
    /// What the response line says of this route.
    pub fn routed(&self) -> Routed {
        Routed {
            by: decided_by(&self.decided_by),
            to: self.destinations.iter().map(Destination::label).collect(),
            muted: self.muted,
            why: Vec::new(),
            rendered: None,
            payloads: Vec::new(),
        }
    }
}

/// `rule 0 (payments)`, `route_by_tag team=payments` or `default`.
pub fn decided_by(decided: &DecidedBy) -> String {
    match decided {
        DecidedBy::Rule {
            index,
            name: Some(name),
        } => format!("rule {index} ({name})"),
        DecidedBy::Rule { index, name: None } => format!("rule {index}"),
        DecidedBy::Tag { tag, value } => format!("route_by_tag {tag}={value}"),
        DecidedBy::Default => "default".into(),
    }
}

/// What decided a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecidedBy {
    /// The rule at this index of `notify.routes` (with its name, if it has one).
    Rule { index: usize, name: Option<String> },
    /// `route_by_tag`, by this tag value.
    Tag { tag: String, value: String },
    /// No rule matched and no tag routed.
    Default,
}

/// The routing decision for one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub decided_by: DecidedBy,
    /// Muted: delivered nowhere, counted and summarised later.
    pub muted: bool,
    /// The severity delivered (the rule's override, if any).
    pub severity: Severity,
    /// Where it goes, without repeats; empty when muted.
    pub destinations: Vec<Destination>,
    /// Muted by a rule with windows: when the window's occurrence holding the notice ends
    /// (its held-back notices are summarised then).
    pub muted_until: Option<Timestamp>,
}

#[derive(Debug, Clone)]
struct Rule {
    name: Option<String>,
    cluster: Option<glob::Pattern>,
    service: Option<glob::Pattern>,
    job: Option<glob::Pattern>,
    source: Option<Source>,
    categories: Option<Vec<String>>,
    min_severity: Option<Severity>,
    tags: BTreeMap<String, String>,
    windows: Vec<Window>,
    topic: Option<String>,
    webhook: Option<String>,
    mute: bool,
    severity: Option<Severity>,
    also_default: bool,
}

/// The validated rules of a stack, built once per cold start.
#[derive(Debug, Clone, Default)]
pub struct Router {
    rules: Vec<Rule>,
    by_tag: Option<RouteByTagSpec>,
}

impl Router {
    /// Validates `notify.routes` and `notify.route_by_tag` against the named webhooks; every
    /// error names the path (`notify.routes[2].windows[0].tz`).
    pub fn new(
        routes: &[RouteSpec],
        by_tag: Option<&RouteByTagSpec>,
        webhooks: &[&str],
    ) -> Result<Self> {
        let mut rules = Vec::with_capacity(routes.len());
        for (index, spec) in routes.iter().enumerate() {
            let path = format!("notify.routes[{index}]");
            if let Some(earlier) = rules.iter().position(Rule::matches_everything) {
                return Err(AutopilotError::invalid_config(
                    path,
                    format!(
                        "never applies: notify.routes[{earlier}] before it matches every notice"
                    ),
                ));
            }
            rules.push(Rule::new(spec, &path, webhooks)?);
        }
        if let Some(by_tag) = by_tag {
            if by_tag.tag.trim().is_empty() {
                return Err(AutopilotError::invalid_config(
                    "notify.route_by_tag.tag",
                    "empty: name the tag whose value picks the topic (e.g. team)",
                ));
            }
            for (value, topic) in &by_tag.topics {
                topic_arn(topic, &format!("notify.route_by_tag.topics.{value}"))?;
            }
        }
        Ok(Self {
            rules,
            by_tag: by_tag.cloned(),
        })
    }

    /// Whether any rule or `route_by_tag` needs the service's or task's tags.
    pub fn uses_tags(&self) -> bool {
        self.by_tag.is_some() || self.rules.iter().any(|rule| !rule.tags.is_empty())
    }

    /// The topics other than the default that routes may publish to.
    pub fn topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = self
            .rules
            .iter()
            .filter_map(|rule| rule.topic.as_deref())
            .chain(
                self.by_tag
                    .iter()
                    .flat_map(|t| t.topics.values().map(String::as_str)),
            )
            .collect();
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    /// Decides where a notice goes (no explanation is worded: this runs for every notice).
    pub fn route(&self, subject: &Subject) -> Route {
        self.walk(subject, None)
    }

    /// Decides where a notice goes, with one line per rule considered saying why it did or did
    /// not apply (`--explain-route`).
    pub fn explain(&self, subject: &Subject) -> (Route, Vec<String>) {
        let mut reasons = Vec::new();
        let route = self.walk(subject, Some(&mut reasons));
        (route, reasons)
    }

    /// The first matching rule, else `route_by_tag`, else the default topic; with `reasons`,
    /// each step says why.
    fn walk(&self, subject: &Subject, mut reasons: Option<&mut Vec<String>>) -> Route {
        let mut say = |line: &dyn Fn() -> String| {
            if let Some(reasons) = reasons.as_mut() {
                reasons.push(line());
            }
        };
        for (index, rule) in self.rules.iter().enumerate() {
            match rule.mismatch(subject) {
                Some(why) => say(&|| format!("{}: no ({why})", rule.label(index))),
                None => {
                    say(&|| format!("{}: matches ({})", rule.label(index), rule.describe_match()));
                    return rule.decide(index, subject.severity, subject.at);
                }
            }
        }
        if let Some(by_tag) = &self.by_tag {
            let value = subject.tags.and_then(|tags| tags.get(&by_tag.tag));
            match value.and_then(|v| by_tag.topics.get(v).map(|topic| (v, topic))) {
                Some((value, topic)) => {
                    say(&|| format!("route_by_tag: tag {}={value} → {topic}", by_tag.tag));
                    return Route {
                        decided_by: DecidedBy::Tag {
                            tag: by_tag.tag.clone(),
                            value: value.clone(),
                        },
                        muted: false,
                        severity: subject.severity,
                        destinations: vec![Destination::Topic(topic.clone())],
                        muted_until: None,
                    };
                }
                None => say(&|| match (subject.tags, value) {
                    (None, _) => "route_by_tag: no tags read for this notice".to_owned(),
                    (Some(_), None) => format!("route_by_tag: no tag {}", by_tag.tag),
                    (Some(_), Some(v)) => {
                        format!("route_by_tag: {}={v} names no topic", by_tag.tag)
                    }
                }),
            }
        }
        say(&|| "default topic".into());
        Route {
            decided_by: DecidedBy::Default,
            muted: false,
            severity: subject.severity,
            destinations: vec![Destination::DefaultTopic],
            muted_until: None,
        }
    }

    /// The muting rules that have windows: (index, label, windows), for the summaries of what
    /// each window held back.
    pub fn muting_windows(&self) -> Vec<(usize, String, &[Window])> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.mute && !rule.windows.is_empty())
            .map(|(index, rule)| (index, rule.label(index), rule.windows.as_slice()))
            .collect()
    }
}

/// Why a rule does not apply, worded only when an explanation is asked for.
enum Miss<'a> {
    Lacks(&'static str),
    Glob {
        key: &'static str,
        value: &'a str,
        pattern: &'a glob::Pattern,
    },
    Source {
        is: Source,
        wanted: Source,
    },
    Category {
        is: &'a str,
        wanted: &'a [String],
    },
    Severity {
        is: Severity,
        min: Severity,
    },
    TagDiffers {
        key: &'a str,
        is: &'a str,
        wanted: &'a str,
    },
    NoTag(&'a str),
    Outside(Timestamp),
}

impl std::fmt::Display for Miss<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lacks(key) => write!(f, "the notice has no {key}"),
            Self::Glob {
                key,
                value,
                pattern,
            } => write!(f, "{key} {value} is not {pattern}"),
            Self::Source { is, wanted } => {
                write!(f, "source is {}, not {}", is.as_str(), wanted.as_str())
            }
            Self::Category { is, wanted } => {
                write!(f, "category {is} is not one of {}", wanted.join(", "))
            }
            Self::Severity { is, min } => {
                write!(f, "severity {} is below {}", is.as_str(), min.as_str())
            }
            Self::TagDiffers { key, is, wanted } => write!(f, "tag {key} is {is}, not {wanted}"),
            Self::NoTag(key) => write!(f, "no tag {key}"),
            Self::Outside(at) => write!(f, "{} is outside its windows", window::rfc3339(*at)),
        }
    }
}

impl Rule {
    fn new(spec: &RouteSpec, path: &str, webhooks: &[&str]) -> Result<Self> {
        let field = |name: &str| format!("{path}.{name}");
        let name_glob = |value: &Option<String>, key: &str| -> Result<Option<glob::Pattern>> {
            value
                .as_deref()
                .map(|text| {
                    ecs_name_glob(text).map_err(|p| AutopilotError::invalid_config(field(key), p))
                })
                .transpose()
        };
        let cluster = name_glob(&spec.cluster, "cluster")?;
        let service = name_glob(&spec.service, "service")?;
        let job = spec
            .job
            .as_deref()
            .map(|text| glob_of(text).map_err(|p| AutopilotError::invalid_config(field("job"), p)))
            .transpose()?;
        if let Some(categories) = &spec.category {
            if categories.is_empty() {
                return Err(AutopilotError::invalid_config(
                    field("category"),
                    "empty list: name at least one category, or leave the key out",
                ));
            }
            let known = known_categories();
            for (i, category) in categories.iter().enumerate() {
                if !known.contains(&category.as_str()) {
                    return Err(AutopilotError::invalid_config(
                        format!("{path}.category[{i}]"),
                        format!(
                            "unknown category `{category}`; expected one of {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        let mut windows = Vec::new();
        for (i, window) in spec.windows.iter().flatten().enumerate() {
            let window = Window::from_spec(window).map_err(|p| {
                let at = format!("{path}.windows[{i}]");
                let at = if p.field.is_empty() {
                    at
                } else {
                    format!("{at}.{}", p.field)
                };
                AutopilotError::invalid_config(at, p.problem)
            })?;
            windows.push(window);
        }
        if spec.windows.as_ref().is_some_and(Vec::is_empty) {
            return Err(AutopilotError::invalid_config(
                field("windows"),
                "empty list: give a window, or leave the key out for always",
            ));
        }
        if let Some(topic) = &spec.topic {
            topic_arn(topic, &field("topic"))?;
        }
        if let Some(webhook) = &spec.webhook {
            if !webhooks.contains(&webhook.as_str()) {
                let named = if webhooks.is_empty() {
                    "none is configured".to_owned()
                } else {
                    format!("configured: {}", webhooks.join(", "))
                };
                return Err(AutopilotError::invalid_config(
                    field("webhook"),
                    format!("`{webhook}` names no destination of notify.webhooks ({named})"),
                ));
            }
        }
        if spec.mute && (spec.topic.is_some() || spec.webhook.is_some() || spec.also_default) {
            return Err(AutopilotError::invalid_config(
                field("mute"),
                "a muting rule delivers nowhere: drop topic, webhook and also_default",
            ));
        }
        let acts = spec.mute
            || spec.topic.is_some()
            || spec.webhook.is_some()
            || spec.severity.is_some()
            || spec.also_default;
        if !acts {
            return Err(AutopilotError::invalid_config(
                path,
                "does nothing: give topic, webhook, mute, severity or also_default",
            ));
        }
        if spec.tags.as_ref().is_some_and(BTreeMap::is_empty) {
            return Err(AutopilotError::invalid_config(
                field("tags"),
                "empty: give the key/values to match, or leave the key out",
            ));
        }
        Ok(Self {
            name: spec.name.clone(),
            cluster,
            service,
            job,
            source: spec.source,
            categories: spec.category.clone(),
            min_severity: spec.min_severity,
            tags: spec.tags.clone().unwrap_or_default(),
            windows,
            topic: spec.topic.clone(),
            webhook: spec.webhook.clone(),
            mute: spec.mute,
            severity: spec.severity,
            also_default: spec.also_default,
        })
    }

    fn matches_everything(&self) -> bool {
        self.cluster.is_none()
            && self.service.is_none()
            && self.job.is_none()
            && self.source.is_none()
            && self.categories.is_none()
            && self.min_severity.is_none()
            && self.tags.is_empty()
            && self.windows.is_empty()
    }

    fn label(&self, index: usize) -> String {
        match &self.name {
            Some(name) => format!("rule {index} ({name})"),
            None => format!("rule {index}"),
        }
    }

    /// Why the rule does not apply to the subject; `None` when it does.
    fn mismatch<'a>(&'a self, subject: &Subject<'a>) -> Option<Miss<'a>> {
        let globs = [
            ("cluster", &self.cluster, subject.cluster),
            ("service", &self.service, subject.service),
            ("job", &self.job, subject.job),
        ];
        for (key, pattern, value) in globs {
            let Some(pattern) = pattern else { continue };
            match value {
                None => return Some(Miss::Lacks(key)),
                Some(value) if !pattern.matches(value) => {
                    return Some(Miss::Glob {
                        key,
                        value,
                        pattern,
                    })
                }
                Some(_) => {}
            }
        }
        if let Some(wanted) = self.source.filter(|s| *s != subject.source) {
            return Some(Miss::Source {
                is: subject.source,
                wanted,
            });
        }
        if let Some(wanted) = &self.categories {
            if !wanted.iter().any(|c| c == subject.category) {
                return Some(Miss::Category {
                    is: subject.category,
                    wanted,
                });
            }
        }
        if let Some(min) = self.min_severity.filter(|min| subject.severity < *min) {
            return Some(Miss::Severity {
                is: subject.severity,
                min,
            });
        }
        for (key, wanted) in &self.tags {
            match subject.tags.and_then(|tags| tags.get(key)) {
                Some(is) if is == wanted => {}
                Some(is) => return Some(Miss::TagDiffers { key, is, wanted }),
                None => return Some(Miss::NoTag(key)),
            }
        }
        if !self.windows.is_empty() && !self.windows.iter().any(|w| w.contains(subject.at)) {
            return Some(Miss::Outside(subject.at));
        }
        None
    }

    fn describe_match(&self) -> String {
        let mut parts = Vec::new();
        for (key, pattern) in [
            ("cluster", &self.cluster),
            ("service", &self.service),
            ("job", &self.job),
        ] {
            if let Some(pattern) = pattern {
                parts.push(format!("{key} {pattern}"));
            }
        }
        if let Some(source) = self.source {
            parts.push(format!("source {}", source.as_str()));
        }
        if let Some(categories) = &self.categories {
            parts.push(format!("category {}", categories.join("|")));
        }
        if let Some(min) = self.min_severity {
            parts.push(format!("severity ≥ {}", min.as_str()));
        }
        for (key, value) in &self.tags {
            parts.push(format!("tag {key}={value}"));
        }
        if !self.windows.is_empty() {
            parts.push("inside a window".into());
        }
        if parts.is_empty() {
            "every notice".into()
        } else {
            parts.join(", ")
        }
    }

    fn decide(&self, index: usize, severity: Severity, at: Timestamp) -> Route {
        let mut destinations = Vec::new();
        if !self.mute {
            if let Some(topic) = &self.topic {
                destinations.push(Destination::Topic(topic.clone()));
            }
            if let Some(webhook) = &self.webhook {
                destinations.push(Destination::Webhook(webhook.clone()));
            }
            if self.also_default || destinations.is_empty() {
                destinations.push(Destination::DefaultTopic);
            }
        }
        Route {
            decided_by: DecidedBy::Rule {
                index,
                name: self.name.clone(),
            },
            muted: self.mute,
            severity: self.severity.unwrap_or(severity),
            destinations,
            muted_until: self
                .windows
                .iter()
                .find_map(|w| w.end_of_occurrence(at))
                .filter(|_| self.mute),
        }
    }
}

/// A glob on ECS cluster or service names: `*`, `?` and `[…]` over letters, digits, `-` and `_`.
fn ecs_name_glob(text: &str) -> std::result::Result<glob::Pattern, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_*?[]!".contains(c);
    if text.is_empty() {
        return Err("empty: give a name or a glob such as orders-*".into());
    }
    if let Some(bad) = text.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "`{text}` can never match: ECS names hold letters, digits, - and _ (found {bad:?}); match names, not ARNs"
        ));
    }
    glob_of(text)
}

/// `text` as a glob (`*`, `?`, `[…]`), or what is wrong with it.
fn glob_of(text: &str) -> std::result::Result<glob::Pattern, String> {
    glob::Pattern::new(text).map_err(|e| format!("`{text}` is not a glob: {}", e.msg))
}

/// `arn:<partition>:sns:<region>:<account>:<topic>`.
fn topic_arn(text: &str, path: &str) -> Result<()> {
    let parts: Vec<&str> = text.split(':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && crate::arn::is_account_id(parts[4])
        && !parts[5].is_empty();
    if valid {
        Ok(())
    } else {
        Err(AutopilotError::invalid_config(
            path,
            format!("`{text}` is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"),
        ))
    }
}
