//! The `alarm-scaler` handler: alarm transition or tick → observe the service (ECS, scalable
//! targets) → decide (pure, [`crate::scaling::decide`]) → conditional write of the scaling
//! memory → UpdateService (`desiredCount` only) → notify. Each transition acts once (a claim);
//! two invocations racing for one service produce one change (revisioned scaling memory).
//! Applying one alarm's decision lives in [`apply`]; the tick also sizes the services of target
//! policies by their signals, alarms and schedules ([`targets`]).

mod apply;
mod targets;

use std::sync::Arc;

use super::claim::{self, Access};
use super::publish::Courier;
use super::{Backend, Setup, State};
use crate::config::ENV_STATE_TABLE;
use crate::domain::{clip, AlarmState};
use crate::entry::{Invocation, Mode};
use crate::error::{AutopilotError, Result};
use crate::events::alarm::{parse_scaler_event, AlarmTransition, Delivery, ScalerEvent};
use crate::events::InboundEvent;
use crate::keys::transition_key;
use crate::ports::Clock;
use crate::scaling::{
    repeating_alarms, scaled_service, target::TargetPolicies, AlarmPolicies, ScalingPolicy,
    Trigger, TRANSITION_TTL_S,
};
use crate::telemetry::LOGGED_BYTES;
use crate::trust::Accounts;

pub use crate::scaling::outcome::{ScalerResponse, ScalingOutcome};
pub use crate::scaling::tick::ServiceTick;
pub use targets::Assumed;

/// The function, built once per cold start.
#[derive(Debug)]
pub struct AlarmScaler {
    backend: Backend,
    clock: Arc<dyn Clock>,
    policies: AlarmPolicies,
    /// Routes and delivers its notices.
    courier: Courier,
    region: Option<String>,
    /// `scaling.targets`: services sized on the tick by the work waiting.
    targets: TargetPolicies,
    /// `scaling.schedules`, parsed: (cluster, service, schedule).
    schedules: Vec<(String, String, crate::scaling::schedule::Schedule)>,
    /// Offline: the service and readings to assume (`--assume-desired` …).
    assumed: Assumed,
    /// The stack's account and its members: an alarm of any other is ignored.
    accounts: Accounts,
}

/// Attempts at the conditional write of a service's scaling memory before giving up on it.
const RECORD_ATTEMPTS: u32 = 3;

/// What an offline decision needs that it cannot read.
const OFFLINE_SERVICE_USAGE: &str =
    "offline mode reads no service: pass --assume-desired N (and --assume-running N)";

/// The places a policy at `at` names (field, account), all in accounts the stack acts for: one
/// that is not is refused at cold start, naming its field.
fn admitted<'a>(
    at: &str,
    named: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    accounts: &Accounts,
) -> Result<()> {
    accounts.check(named).map_err(|foreign| {
        AutopilotError::invalid_config(
            format!("{at}.{}", foreign.named_by),
            format!(
                "account {} is not this stack's or one of its members' (MEMBER_ACCOUNT_IDS)",
                foreign.account
            ),
        )
    })
}

/// Every policy's alarm and service are in an account the stack acts for: a policy naming
/// another account's alarm ARN or cluster ARN is refused at cold start, naming the field.
fn admitted_places(policies: &AlarmPolicies, accounts: &Accounts) -> Result<()> {
    for (alarm, policy) in policies {
        let cluster = crate::arn::Arn::parse(&policy.cluster).ok();
        let named = [
            (
                "alarm_arn",
                policy.alarm_arn.as_ref().and_then(|a| a.account()),
            ),
            ("cluster", cluster.as_ref().and_then(|c| c.account())),
        ];
        admitted(&format!("scaling.alarms.{alarm}"), named, accounts)?;
    }
    Ok(())
}

/// The alarm an SNS message or alarm action speaks of, as DescribeAlarms returns it.
enum Described {
    /// An EventBridge event (no one can put one under `aws.cloudwatch`), a tick's read-back, or
    /// offline: taken as it is.
    AsWritten,
    Is(Box<AlarmTransition>),
    /// Not confirmed: nothing is done.
    Refused(String),
}

/// The service one alarm scales.
#[derive(Clone, Copy)]
struct Scaled<'a> {
    alarm: &'a AlarmTransition,
    policy: &'a ScalingPolicy,
    trigger: Trigger,
    cluster: &'a str,
    service: &'a str,
}

impl AlarmScaler {
    /// A live scaler needs `STATE_TABLE`: cooldowns and once-only transitions are kept there.
    pub fn new(setup: Setup, assumed: impl Into<Assumed>) -> Result<Self> {
        let assumed = assumed.into();
        if setup.backend.mode() == Mode::Live && setup.backend.live_state().is_none() {
            let problem = "required: cooldowns and once-only transitions are kept there";
            return Err(AutopilotError::invalid_config(ENV_STATE_TABLE, problem));
        }
        admitted_places(&setup.config.scaling.alarms, &setup.accounts)?;
        targets::admitted_targets(&setup.config.scaling.targets, &setup.accounts)?;
        assumed.check(&setup.config.scaling.targets)?;
        let schedules = crate::scaling::schedule::parse_all(&setup.config.scaling.schedules)?;
        Ok(Self {
            schedules,
            backend: setup.backend,
            clock: setup.clock,
            policies: setup.config.scaling.alarms,
            targets: setup.config.scaling.targets,
            courier: setup.courier,
            region: setup.region,
            assumed,
            accounts: setup.accounts,
        })
    }

    /// Handles one event: an alarm transition in any of its shapes, or a tick.
    pub async fn handle(
        &self,
        event: InboundEvent,
        invocation: Invocation,
    ) -> Result<ScalerResponse> {
        match parse_scaler_event(&event.to_value()?)? {
            ScalerEvent::Transition(alarm) => {
                let outcome = self.act(&alarm, Trigger::Transition, &invocation).await?;
                Ok(ScalerResponse::One(Box::new(outcome)))
            }
            ScalerEvent::Tick => self.tick(&invocation).await,
        }
    }

    /// Re-reads the alarms whose policies repeat while in ALARM and steps those still in ALARM;
    /// sizes every service of a target policy from its signals.
    async fn tick(&self, invocation: &Invocation) -> Result<ScalerResponse> {
        let mut notes = Vec::new();
        let (results, alarm_error) = self.tick_alarms(invocation, &mut notes).await;
        let (services, target_error) = self.tick_targets(invocation, &mut notes).await;
        // What did act is recorded; a failure is returned so it is seen and retried.
        match alarm_error.or(target_error) {
            Some(error) => Err(error),
            None => Ok(ScalerResponse::Tick {
                tick: true,
                results,
                services,
                notes,
            }),
        }
    }

    /// The alarms a tick re-reads, each one's outcome, and the first failure.
    async fn tick_alarms(
        &self,
        invocation: &Invocation,
        notes: &mut Vec<String>,
    ) -> (Vec<ScalingOutcome>, Option<AutopilotError>) {
        let names = repeating_alarms(&self.policies);
        if names.is_empty() {
            if !self.policies.is_empty() {
                notes.push("no alarm policy sets repeat_while_alarm".into());
            }
            return (Vec::new(), None);
        }
        let Some(ports) = self.backend.ports() else {
            notes.push("offline: re-reading alarms needs DescribeAlarms; none re-read".into());
            return (Vec::new(), None);
        };
        let alarms = match ports.alarms.current_alarms(&names).await {
            Ok(alarms) => alarms,
            Err(error) => return (Vec::new(), Some(error)),
        };
        for name in names
            .iter()
            .filter(|n| !alarms.iter().any(|a| &a.alarm_name == *n))
        {
            notes.push(format!("alarm `{name}` does not exist"));
        }
        let (mut results, mut first_error) = (Vec::new(), None);
        for alarm in alarms.iter().filter(|a| a.state == AlarmState::Alarm) {
            match self.act(alarm, Trigger::Tick, invocation).await {
                Ok(outcome) => results.push(outcome),
                Err(error) => {
                    tracing::error!(
                        alarm = alarm.alarm_name,
                        error_type = error.error_type(),
                        "tick failed for an alarm: {error}"
                    );
                    notes.push(format!("{}: {error}", alarm.alarm_name));
                    first_error.get_or_insert(error);
                }
            }
        }
        (results, first_error)
    }

    /// An SNS message or an alarm action is text that whoever may publish to the topic or invoke
    /// the function could have written: the alarm is acted on as DescribeAlarms returns it (its
    /// state, that state's time, its datapoints), never as the message says.
    async fn as_described(
        &self,
        alarm: &AlarmTransition,
        policy: &ScalingPolicy,
        notes: &mut Vec<String>,
    ) -> Result<Described> {
        if !matches!(alarm.delivery, Delivery::Sns | Delivery::AlarmAction) {
            return Ok(Described::AsWritten);
        }
        let Some(ports) = self.backend.ports() else {
            notes.push("offline: the alarm message is taken as written (no DescribeAlarms)".into());
            return Ok(Described::AsWritten);
        };
        let elsewhere = policy.alarm_arn.as_ref().is_some_and(|bound| {
            bound.account() != self.accounts.home().or(bound.account())
                || bound.region() != self.region.as_deref().or(bound.region())
        });
        if elsewhere {
            return Ok(Described::Refused(
                "another account's or region's alarm is acted on from its EventBridge event; an \
                 SNS message or alarm action cannot be checked against DescribeAlarms here"
                    .into(),
            ));
        }
        let name = &alarm.alarm_name;
        let found = ports
            .alarms
            .current_alarms(std::slice::from_ref(name))
            .await?;
        let Some(described) = found
            .into_iter()
            .find(|a| alarm.alarm_arn.is_none() || a.alarm_arn == alarm.alarm_arn)
        else {
            return Ok(Described::Refused(format!(
                "DescribeAlarms does not know alarm `{name}` in this account and region; the \
                 message is not acted on"
            )));
        };
        if described.state != alarm.state {
            notes.push(format!(
                "the message says {}, DescribeAlarms says {}: acting on {}",
                alarm.state.as_str(),
                described.state.as_str(),
                described.state.as_str()
            ));
        }
        Ok(Described::Is(Box::new(AlarmTransition {
            delivery: alarm.delivery,
            account: alarm.account.clone(),
            previous_state: alarm.previous_state,
            ..described
        })))
    }

    /// One alarm state: find its policy and service, act once per transition.
    async fn act(
        &self,
        alarm: &AlarmTransition,
        trigger: Trigger,
        invocation: &Invocation,
    ) -> Result<ScalingOutcome> {
        let mut outcome =
            ScalingOutcome::pending(alarm, trigger, self.backend.mode() != Mode::Live);
        if let Err(foreign) = self.accounts.check(alarm.accounts_named()) {
            tracing::warn!(
                account = foreign.account,
                named_by = foreign.named_by,
                "ignored: an alarm of an account that is not the stack's or a member's"
            );
            outcome.ignore_foreign(foreign);
            return Ok(outcome);
        }
        let Some(policy) = self.policies.get(&alarm.alarm_name) else {
            let name = clip(&alarm.alarm_name, LOGGED_BYTES);
            outcome.reason = format!("no scaling policy for alarm `{name}`");
            tracing::info!(alarm = name, "ignored: no policy");
            return Ok(outcome);
        };
        if let Some(reason) = policy.unbound(alarm, self.accounts.home(), self.region.as_deref()) {
            tracing::warn!(
                alarm = clip(&alarm.alarm_name, LOGGED_BYTES),
                reason,
                "ignored: not the alarm its policy binds"
            );
            outcome.ignore(reason);
            return Ok(outcome);
        }
        let described;
        let alarm = match self.as_described(alarm, policy, &mut outcome.notes).await? {
            Described::AsWritten => alarm,
            Described::Is(alarm) => {
                described = *alarm;
                outcome.state = described.state;
                &described
            }
            Described::Refused(reason) => {
                tracing::warn!(alarm = alarm.alarm_name, reason, "ignored: not confirmed");
                outcome.ignore(reason);
                return Ok(outcome);
            }
        };
        outcome.dry_run |= policy.dry_run;
        let (cluster, service) = scaled_service(policy);
        outcome.service = Some(format!("{cluster}/{service}"));
        let held = match (self.backend.live_state(), trigger) {
            (Some(state), Trigger::Transition) => {
                let (key, now) = (transition_key(&alarm.transition_id()), self.clock.now_s());
                let ttl_s = TRANSITION_TTL_S;
                let notes = &mut outcome.notes;
                match claim::access(State::Write(state), &key, now, invocation, ttl_s, notes)
                    .await?
                {
                    Access::Duplicate { decision, .. } => {
                        let decision = decision.as_deref().unwrap_or("unknown action");
                        outcome.reason =
                            format!("transition already handled ({decision}): duplicate delivery");
                        outcome.duplicate = true;
                        tracing::info!(alarm = alarm.alarm_name, "duplicate transition");
                        return Ok(outcome);
                    }
                    Access::Go { held, .. } => held,
                }
            }
            _ => None,
        };
        let scaled = Scaled {
            alarm,
            policy,
            trigger,
            cluster,
            service,
        };
        let result = self
            .scale(scaled, held.as_ref(), invocation, &mut outcome)
            .await;
        if let Some(held) = held {
            outcome
                .notes
                .extend(held.settle(&result, outcome.action.as_str(), None).await);
        }
        result?;
        tracing::info!(
            alarm = outcome.alarm,
            service = outcome.service,
            action = outcome.action.as_str(),
            from = outcome.from,
            to = outcome.to,
            reason = outcome.reason,
            "outcome"
        );
        Ok(outcome)
    }
}
