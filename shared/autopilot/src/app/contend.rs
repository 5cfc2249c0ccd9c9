//! Optimistic concurrency, once for every conditional write that can lose a race (a storm
//! window's opening, an incident, a service's scaling memory): try, and on losing pause with
//! the core's [`contention_pause`] (so that contenders part) and try again, up to a number of
//! attempts, after which the event fails as [`AutopilotError::Contention`] and Lambda retries it.

use crate::error::{AutopilotError, Result};
use crate::ports::Clock;
use crate::state::contention_pause;

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt<T> {
    /// Done (written, or nothing to write): the answer.
    Done(T),
    /// Another writer changed what was read: read again and retry.
    Lost,
}

impl<T> Attempt<T> {
    /// A conditional write's attempt: `answer` when it was `written`, else lost.
    pub fn written(written: bool, answer: T) -> Self {
        if written {
            Self::Done(answer)
        } else {
            Self::Lost
        }
    }
}

/// How a contended write is retried: how often, who contends (the pauses are spread by it) and
/// what is contended (for the error).
#[derive(Debug, Clone, Copy)]
pub struct Contended<'a> {
    pub attempts: u32,
    pub contender: &'a str,
    pub resource: &'a str,
}

/// Runs `attempt` (given its number, from 0) until it is [`Attempt::Done`], pausing after each
/// lost one; [`AutopilotError::Contention`] naming the resource after the last.
pub async fn retry_contended<T>(
    clock: &dyn Clock,
    contended: Contended<'_>,
    mut attempt: impl AsyncFnMut(u32) -> Result<Attempt<T>>,
) -> Result<T> {
    for number in 0..contended.attempts {
        if let Attempt::Done(answer) = attempt(number).await? {
            return Ok(answer);
        }
        clock
            .sleep(contention_pause(number, contended.contender))
            .await;
    }
    Err(AutopilotError::Contention {
        resource: contended.resource.to_owned(),
        attempts: contended.attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::FakeClock;

    #[tokio::test]
    async fn a_lost_attempt_pauses_and_tries_again_until_done() {
        let clock = FakeClock::at(0);
        let contended = Contended {
            attempts: 5,
            contender: "dedup#k",
            resource: "incident incident#shop#api",
        };
        let answer = retry_contended(&clock, contended, async |n| {
            Ok(if n < 2 {
                Attempt::Lost
            } else {
                Attempt::Done(n)
            })
        })
        .await
        .unwrap();
        assert_eq!(answer, 2);
        assert_eq!(clock.slept().len(), 2);
    }

    #[tokio::test]
    async fn every_attempt_lost_is_contention_naming_the_resource() {
        let clock = FakeClock::at(0);
        let contended = Contended {
            attempts: 3,
            contender: "dedup#k",
            resource: "incident incident#shop#api",
        };
        let error = retry_contended(&clock, contended, async |_| Ok(Attempt::<()>::Lost))
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "Contention");
        assert!(
            error.to_string().contains("incident incident#shop#api"),
            "{error}"
        );
        assert_eq!(clock.slept().len(), 3);
    }
}
