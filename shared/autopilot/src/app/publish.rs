//! Delivering a notice, the same way for every handler: route it ([`crate::routing`], pure),
//! render it for each destination, and send it when live — skipping the destinations an earlier
//! attempt under the same claim already reached, and recording each one reached when there is
//! more than one — or otherwise say in a note what would have been sent. A muted notice is sent
//! nowhere and says so.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::claim::HeldClaim;
use super::{webhook, Backend, Writers};
use crate::config::NotifyConfig;
use crate::domain::{HttpsFormat, Payload, Routed};
use crate::error::{AutopilotError, Result};
use crate::keys::mute_ledger_key;
use crate::notify::{self, Notice, Publish};
use crate::ports::{Clock, Scope};
use crate::present::Presentation;
use crate::routing::{window, DecidedBy, Destination, Route, Router, Subject, WebhookKind};
use crate::state::MutedNotice;

/// What became of one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The message id of the first topic that took it (live).
    pub message_id: Option<String>,
    pub routed: Routed,
}

/// What a notice is routed by besides itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Occasion<'a> {
    /// The event's own time (a tick's time for the scaler's and the runner's notices), epoch s.
    pub at: i64,
    /// The service or task whose tags rules read (its ARN).
    pub tagged: Option<&'a str>,
    /// Tags known without reading them (a batch job's, from its catalog entry).
    pub known_tags: Option<&'a Tags>,
    /// Until when (epoch s) a webhook's 429 may be waited out: the invocation's deadline.
    pub deadline_s: i64,
}

/// Routes and delivers every notice of a function; built once per cold start.
#[derive(Debug, Clone)]
pub struct Courier {
    router: Router,
    https_format: HttpsFormat,
    webhooks: BTreeMap<String, WebhookKind>,
    /// Waits out a webhook's 429; ages the tag cache.
    clock: Arc<dyn Clock>,
    /// Tags read, by ARN, with when they were read (kept `tags_ttl_s`).
    tag_cache: Arc<Mutex<TagCache>>,
    tags_ttl_s: i64,
    presentation: Presentation,
}

/// An ECS resource's tags.
pub type Tags = BTreeMap<String, String>;

/// Tags by ARN, with when they were read.
type TagCache = HashMap<String, (i64, Arc<Tags>)>;

/// ARNs whose tags are kept at most; beyond, the cache starts over.
const TAG_CACHE_ENTRIES: usize = 2_000;

impl Courier {
    /// The validated routes of `notify` (the document was validated already; this cannot fail
    /// for a parsed document, and says which path is wrong if it does).
    pub fn new(notify: &NotifyConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        Ok(Self {
            clock,
            tag_cache: Arc::default(),
            tags_ttl_s: notify.tags_ttl_s as i64,
            presentation: Presentation::default(),
            router: notify.router()?,
            https_format: notify.https_format,
            webhooks: notify
                .webhooks
                .iter()
                .map(|(name, spec)| (name.clone(), spec.kind))
                .collect(),
        })
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The courier showing what `presentation` asks for in each route.
    pub fn presenting(self, presentation: Presentation) -> Self {
        Self {
            presentation,
            ..self
        }
    }

    /// Where `notice`, about something that happened `at`, goes (pure).
    pub fn route(&self, notice: &Notice, at: i64, tags: Option<&Tags>) -> Route {
        self.router.route(&subject_of(notice, at, tags))
    }

    /// Where `notice` goes, with the reason for each rule considered (`--explain-route`).
    pub fn explain(&self, notice: &Notice, at: i64, tags: Option<&Tags>) -> (Route, Vec<String>) {
        self.router.explain(&subject_of(notice, at, tags))
    }

    /// The tags of `occasion.tagged` when a rule needs them: from the cache while fresh, else
    /// read (ListTagsForResource where the resource lives). Unreadable tags are a note; the
    /// notice is then routed without them (tag rules do not match) rather than lost.
    pub async fn tags_for(
        &self,
        backend: &Backend,
        occasion: Occasion<'_>,
        notes: &mut Vec<String>,
    ) -> Option<Arc<Tags>> {
        if !self.router.uses_tags() {
            return None;
        }
        if let Some(tags) = occasion.known_tags {
            return Some(Arc::new(tags.clone()));
        }
        let Some(arn) = occasion.tagged else {
            notes.push("routing by tags: the notice names no service or task".into());
            return None;
        };
        let Some(ports) = backend.ports() else {
            notes.push("offline: tags not read, so tag rules do not match".into());
            return None;
        };
        let now = self.clock.now_s();
        let cached = lock(&self.tag_cache).get(arn).cloned();
        if let Some((_, tags)) = cached.filter(|(read_at, _)| now - read_at < self.tags_ttl_s) {
            return Some(tags);
        }
        let ports = ports.in_scope(Scope::of_arn(arn).as_ref()).await;
        match ports.tags.resource_tags(arn).await {
            Ok(tags) => {
                let tags = Arc::new(tags);
                let mut cache = lock(&self.tag_cache);
                if cache.len() >= TAG_CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(arn.to_owned(), (now, tags.clone()));
                Some(tags)
            }
            Err(error) => {
                tracing::warn!("tags of {arn} unreadable: {error}");
                notes.push(format!("tags unreadable, tag rules do not match: {error}"));
                None
            }
        }
    }

    /// Routes `notice` and, on a live backend, sends it to each destination `held` has not
    /// seen take it yet. Every destination is tried even when one fails; the first failure is
    /// returned (so that Lambda retries) after the others were reached and, when there is more
    /// than one, recorded on the claim.
    pub async fn deliver(
        &self,
        backend: &Backend,
        notice: &Notice,
        occasion: Occasion<'_>,
        held: Option<&HeldClaim<'_>>,
        notes: &mut Vec<String>,
    ) -> Result<Delivered> {
        let tags = self.tags_for(backend, occasion, notes).await;
        let (route, why) = if self.presentation.explain {
            self.explain(notice, occasion.at, tags.as_deref())
        } else {
            (self.route(notice, occasion.at, tags.as_deref()), Vec::new())
        };
        let mut routed = route.routed();
        routed.why = why;
        let mut delivered = Delivered {
            message_id: None,
            routed,
        };
        if route.muted {
            notes.push(format!("muted by {}: sent nowhere", delivered.routed.by));
            if self.presentation.render {
                delivered.routed.rendered = Some(notify::readable_text(notice));
            }
            tracing::info!(by = delivered.routed.by, "muted");
            let claim_key = held.map(|held| held.key.as_str());
            self.count_muted(backend, &route, notice, claim_key, notes)
                .await?;
            return Ok(delivered);
        }
        let promoted;
        let notice = if route.severity == notice.severity {
            notice
        } else {
            promoted = Notice {
                severity: route.severity,
                ..notice.clone()
            };
            &promoted
        };
        let publish = notify::render(notice, self.https_format);
        if self.presentation.render {
            delivered.routed.rendered = Some(notify::readable_text(notice));
        }
        if publish.log_lines_dropped > 0 {
            notes.push(format!(
                "{} log lines left out to fit SNS's 256 KiB",
                publish.log_lines_dropped
            ));
        }
        if self.presentation.payload {
            delivered.routed.payloads = self.payloads(&route, notice, &publish);
        }
        let Some(Writers { notifier, .. }) = backend.writers() else {
            notes.push(format!(
                "{}: not sent to {}: {}",
                backend.mode().label(),
                delivered.routed.to.join(", "),
                publish.subject
            ));
            return Ok(delivered);
        };
        let already = held.map(|h| h.delivered.as_slice()).unwrap_or_default();
        let several = route.destinations.len() > 1;
        let mut first_error = None;
        for destination in &route.destinations {
            let label = destination.label();
            if already.contains(&label) {
                notes.push(format!(
                    "{label} took it in an earlier attempt: not sent again"
                ));
                continue;
            }
            let sent = match destination {
                Destination::DefaultTopic => notifier.publish(None, &publish).await.map(Some),
                Destination::Topic(arn) => notifier.publish(Some(arn), &publish).await.map(Some),
                Destination::Webhook(name) => {
                    let kind = self.webhooks.get(name).copied();
                    let kind = kind.ok_or_else(|| {
                        AutopilotError::invalid_config(
                            format!("notify.webhooks.{name}"),
                            "named by a route but not configured",
                        )
                    })?;
                    let (clock, deadline) = (self.clock.as_ref(), occasion.deadline_s);
                    webhook::post(
                        notifier.as_ref(),
                        clock,
                        name,
                        kind,
                        notice,
                        deadline,
                        notes,
                    )
                    .await
                    .map(|()| None)
                }
            };
            match sent {
                Ok(message_id) => {
                    tracing::info!(
                        to = label,
                        message_id,
                        subject = publish.subject,
                        "delivered"
                    );
                    if delivered.message_id.is_none() {
                        delivered.message_id = message_id;
                    }
                    if let Some(held) = held.filter(|_| several) {
                        if let Err(error) = held.record_delivery(&label).await {
                            tracing::warn!("could not record delivery to {label}: {error}");
                            notes.push(format!(
                                "{label} took it, but that could not be recorded: a retry may send it there again"
                            ));
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(to = label, "delivery failed: {error}");
                    notes.push(format!("{label} failed: {error}"));
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(delivered),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Courier {
    /// The exact body each of `route`'s destinations would receive: a topic the SNS subject,
    /// message and attributes, a webhook its JSON as posted.
    fn payloads(&self, route: &Route, notice: &Notice, publish: &Publish) -> Vec<Payload> {
        route
            .destinations
            .iter()
            .map(|destination| {
                let body = match destination {
                    Destination::DefaultTopic | Destination::Topic(_) => serde_json::json!({
                        "subject": publish.subject,
                        "message": serde_json::from_str::<serde_json::Value>(&publish.message)
                            .unwrap_or_else(|_| publish.message.clone().into()),
                        "attributes": publish.attributes.iter().cloned().collect::<BTreeMap<_, _>>(),
                    }),
                    Destination::Webhook(name) => match self.webhooks.get(name) {
                        Some(kind) => webhook::message(*kind, notice),
                        None => serde_json::json!({"error": "named by a route but not configured"}),
                    },
                };
                Payload {
                    to: destination.label(),
                    body,
                }
            })
            .collect()
    }

    /// Counts a notice a muting window held back in the window's ledger (live, with a state
    /// table), for the summary sent when the window ends. A failed count fails the event, so that
    /// Lambda retries it rather than the summary missing it.
    async fn count_muted(
        &self,
        backend: &Backend,
        route: &Route,
        notice: &Notice,
        claim_key: Option<&str>,
        notes: &mut Vec<String>,
    ) -> Result<()> {
        let (Some(until), DecidedBy::Rule { index, .. }) = (route.muted_until, &route.decided_by)
        else {
            return Ok(());
        };
        let Some(state) = backend.live_state() else {
            return Ok(());
        };
        let about = match (&notice.cluster, &notice.service) {
            (Some(cluster), Some(service)) => {
                Some(format!("{}/{}", name_of(cluster), name_of(service)))
            }
            (Some(cluster), None) => Some(name_of(cluster).to_owned()),
            _ => None,
        };
        let key = mute_ledger_key(*index, until.as_second());
        let muted = MutedNotice {
            ledger_key: &key,
            category: notice.category.as_str(),
            about: about.as_deref(),
            until: until.as_second(),
            ttl_s: MUTED_LEDGER_TTL_S,
            claim_key,
        };
        state.count_muted(&muted).await?;
        notes.push(format!(
            "counted for the summary sent when the window ends ({})",
            window::rfc3339(until)
        ));
        Ok(())
    }
}

/// How long a muted ledger outlives its window's end if no tick summarises it.
pub const MUTED_LEDGER_TTL_S: u64 = 7 * 24 * 3600;

/// What a notice offers to the rules.
fn subject_of<'a>(notice: &'a Notice, at: i64, tags: Option<&'a Tags>) -> Subject<'a> {
    let at = jiff::Timestamp::from_second(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    Subject {
        source: notice.source,
        cluster: notice.cluster.as_deref().map(name_of),
        service: notice.service.as_deref().map(name_of),
        job: notice.job.as_deref(),
        category: notice.category.as_str(),
        severity: notice.severity,
        at,
        tags,
    }
}

/// The name at the end of an ARN (`…:cluster/shop` → `shop`, `…:service/shop/api` → `api`), or
/// the name itself.
fn name_of(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        crate::arn::last_segment(name_or_arn)
    } else {
        name_or_arn
    }
}
