//! Posting a notice to a Slack or Teams incoming webhook: render the platform's message (pure,
//! [`crate::notify::chat`]), POST it through the [`Notifier`] port, and decide after each answer
//! ([`after_reply`], pure): delivered on 2xx; on 429, wait `Retry-After` when that still fits the
//! invocation's time; otherwise fail with [`AutopilotError::Webhook`] so that Lambda retries.

use std::time::Duration;

use crate::error::{AutopilotError, Result};
use crate::notify::{chat, Notice};
use crate::ports::{Clock, Notifier, WebhookReply};
use crate::routing::WebhookKind;

/// Seconds kept free before the invocation's deadline after a wait, for the POST itself and
/// the rest of the invocation.
pub const DEADLINE_MARGIN_S: i64 = 5;
/// 429 answers honoured per notice before giving the retry to Lambda.
pub const MAX_WAITS: u32 = 3;
/// The wait when a 429 carries no `Retry-After`.
pub const DEFAULT_RETRY_AFTER_S: u64 = 1;

/// What to do after a webhook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Wait this long, then post again.
    Wait(u64),
    /// Give up: the problem, for the error.
    Fail(String),
}

/// Decides after the `waits`-th answer at `now`, with the invocation's `deadline_s`.
pub fn after_reply(reply: &WebhookReply, waits: u32, now: i64, deadline_s: i64) -> Next {
    match reply.status {
        200..=299 => Next::Delivered,
        429 => {
            let wait = reply
                .retry_after
                .map_or(DEFAULT_RETRY_AFTER_S, |after| after.seconds_from(now));
            let left = deadline_s - now;
            if waits >= MAX_WAITS {
                Next::Fail(format!("429 Too Many Requests after {waits} waits"))
            } else if (wait as i64).saturating_add(DEADLINE_MARGIN_S) > left {
                Next::Fail(format!(
                    "429 Too Many Requests: Retry-After {wait} s does not fit the {left} s left"
                ))
            } else {
                Next::Wait(wait)
            }
        }
        status => Next::Fail(format!(
            "HTTP {status}{}",
            if reply.body.is_empty() {
                String::new()
            } else {
                format!(": {}", reply.body)
            }
        )),
    }
}

/// The JSON message a webhook of `kind` takes for `notice`.
pub fn message(kind: WebhookKind, notice: &Notice) -> serde_json::Value {
    match kind {
        WebhookKind::Slack => chat::slack_message(notice),
        WebhookKind::Teams => chat::teams_message(notice),
    }
}

/// The JSON body a webhook of `kind` takes for `notice`, as posted.
pub fn body(kind: WebhookKind, notice: &Notice) -> String {
    message(kind, notice).to_string()
}

/// Posts `notice` to the webhook `name` of `kind`, honouring 429's `Retry-After` until
/// `deadline_s`.
pub async fn post(
    notifier: &dyn Notifier,
    clock: &dyn Clock,
    name: &str,
    kind: WebhookKind,
    notice: &Notice,
    deadline_s: i64,
    notes: &mut Vec<String>,
) -> Result<()> {
    let body = body(kind, notice);
    let mut waits = 0;
    loop {
        let reply = notifier.post(name, &body).await?;
        match after_reply(&reply, waits, clock.now_s(), deadline_s) {
            Next::Delivered => return Ok(()),
            Next::Wait(seconds) => {
                waits += 1;
                notes.push(format!(
                    "webhook {name} answered 429: waited {seconds} s (Retry-After)"
                ));
                clock.sleep(Duration::from_secs(seconds)).await;
            }
            Next::Fail(problem) => {
                return Err(AutopilotError::Webhook {
                    name: name.to_owned(),
                    problem,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::RetryAfter;

    fn reply(status: u16, retry_after_s: Option<u64>) -> WebhookReply {
        WebhookReply {
            status,
            retry_after: retry_after_s.map(RetryAfter::Seconds),
            body: String::new(),
        }
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(RetryAfter::parse("7"), Some(RetryAfter::Seconds(7)));
        assert_eq!(RetryAfter::parse(" 120 "), Some(RetryAfter::Seconds(120)));
        // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480.
        let date = RetryAfter::parse("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(date, Some(RetryAfter::At(1_445_412_480)));
        assert_eq!(date.unwrap().seconds_from(1_445_412_470), 10);
        assert_eq!(date.unwrap().seconds_from(1_445_412_490), 0);
        assert_eq!(RetryAfter::parse("soon"), None);
        assert_eq!(RetryAfter::parse("-3"), None);
        let at_429 = WebhookReply {
            status: 429,
            retry_after: date,
            body: String::new(),
        };
        assert_eq!(
            after_reply(&at_429, 0, 1_445_412_470, 1_445_412_500),
            Next::Wait(10)
        );
    }

    #[test]
    fn success_waits_and_failures() {
        assert_eq!(after_reply(&reply(200, None), 0, 0, 60), Next::Delivered);
        assert_eq!(after_reply(&reply(202, None), 0, 0, 60), Next::Delivered);
        assert_eq!(after_reply(&reply(429, Some(7)), 0, 0, 60), Next::Wait(7));
        assert_eq!(
            after_reply(&reply(429, None), 0, 0, 60),
            Next::Wait(DEFAULT_RETRY_AFTER_S)
        );
        // 7 s + the margin do not fit 10 s.
        assert_eq!(
            after_reply(&reply(429, Some(7)), 0, 50, 60),
            Next::Fail("429 Too Many Requests: Retry-After 7 s does not fit the 10 s left".into())
        );
        assert!(matches!(
            after_reply(&reply(429, Some(1)), MAX_WAITS, 0, 600),
            Next::Fail(_)
        ));
        let mut refused = reply(400, None);
        refused.body = "invalid_blocks".into();
        assert_eq!(
            after_reply(&refused, 0, 0, 60),
            Next::Fail("HTTP 400: invalid_blocks".into())
        );
        assert_eq!(
            after_reply(&reply(500, None), 0, 0, 60),
            Next::Fail("HTTP 500".into())
        );
    }
}
