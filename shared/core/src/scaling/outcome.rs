//! What `alarm-scaler` answers: one alarm's outcome, or every alarm a tick re-read (the Lambda
//! response and the CLI's JSON line).

use serde::Serialize;

use super::{Action, ChosenStep, ClampedBy, ScalingDecision, Trigger};
use crate::domain::AlarmState;
use crate::events::alarm::{AlarmTransition, Delivery};

/// The response for one alarm (and the CLI's output line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingOutcome {
    pub alarm: String,
    pub state: AlarmState,
    /// `cluster/service`, once known.
    pub service: Option<String>,
    pub action: Action,
    pub from: Option<u32>,
    pub to: Option<u32>,
    pub reason: String,
    pub step: Option<ChosenStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clamped_by: Option<ClampedBy>,
    pub trigger: Trigger,
    pub delivery: Delivery,
    /// True when the service was not changed because of `--dry-run`, `--offline` or the
    /// policy's `dry_run`.
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Where its notification went (or would go): the rule that decided and the destinations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<crate::domain::Routed>,
    /// A redelivery of what was handled before (nothing done again).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// The account, not the stack's or a member's, that made the alarm ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign: Option<crate::trust::Foreign>,
    pub notes: Vec<String>,
}

impl ScalingOutcome {
    /// The outcome before anything is decided.
    pub fn pending(alarm: &AlarmTransition, trigger: Trigger, dry_run: bool) -> Self {
        Self {
            alarm: alarm.alarm_name.clone(),
            state: alarm.state,
            service: None,
            action: Action::None,
            from: None,
            to: None,
            reason: String::new(),
            step: None,
            clamped_by: None,
            trigger,
            delivery: alarm.delivery,
            dry_run,
            message_id: None,
            route: None,
            duplicate: false,
            foreign: None,
            notes: Vec::new(),
        }
    }

    /// Nothing is looked at or done, for `reason` (not the alarm its policy binds, not
    /// confirmed by DescribeAlarms).
    pub fn ignore(&mut self, reason: String) {
        self.action = Action::Ignored;
        self.reason = reason;
    }

    /// The alarm names an account the stack does not act for: ignored, saying which.
    pub fn ignore_foreign(&mut self, foreign: crate::trust::Foreign) {
        self.ignore(foreign.reason());
        self.foreign = Some(foreign);
    }

    /// Takes what the decision says.
    pub fn record(&mut self, decision: &ScalingDecision) {
        self.action = decision.action;
        self.from = Some(decision.from);
        self.to = Some(decision.to);
        self.reason = decision.reason.clone();
        self.step = decision.step;
        self.clamped_by = decision.clamped_by;
    }
}

/// The response of an invocation: one alarm, or a tick: every alarm it re-read and every
/// service its target policies size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ScalerResponse {
    One(Box<ScalingOutcome>),
    Tick {
        tick: bool,
        results: Vec<ScalingOutcome>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        services: Vec<super::tick::ServiceTick>,
        notes: Vec<String>,
    },
}
