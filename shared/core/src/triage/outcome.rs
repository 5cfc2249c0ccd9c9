//! What `task-triage` answers for each event: the decision taken and why (the Lambda response
//! and the CLI's JSON line).

use serde::Serialize;

use super::Diagnosis;
use crate::domain::Routed;
use crate::incident::IncidentTag;
use crate::trust::Foreign;

/// What happened to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Notify,
    Silent,
    Duplicate,
    Folded,
    Ignored,
    /// Worth telling, but a muting rule (a maintenance window) applied: sent nowhere, counted
    /// in the incident and summarised when it resolves.
    Muted,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notify => "notify",
            Self::Silent => "silent",
            Self::Duplicate => "duplicate",
            Self::Folded => "folded",
            Self::Ignored => "ignored",
            Self::Muted => "muted",
        }
    }
}

/// The response of one invocation (and the CLI's output line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriageOutcome {
    pub event_id: Option<String>,
    pub task_arn: Option<String>,
    /// `cluster/service` of a service event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub decision: Decision,
    pub diagnosis: Option<Diagnosis>,
    /// The service's incident this signal opened, updated or resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentTag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Where its notification went (or would go): the rule that decided and the destinations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Routed>,
    /// The account, not the stack's or a member's, that made the event ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign: Option<Foreign>,
    pub notes: Vec<String>,
}

impl TriageOutcome {
    /// An event that is handled, before anything is decided.
    pub fn silent(
        event_id: Option<String>,
        task_arn: Option<String>,
        service: Option<String>,
    ) -> Self {
        Self {
            event_id,
            task_arn,
            service,
            decision: Decision::Silent,
            diagnosis: None,
            incident: None,
            message_id: None,
            route: None,
            foreign: None,
            notes: Vec::new(),
        }
    }

    /// An event that is not a task stop: nothing to decide.
    pub fn ignored(event_id: Option<String>, task_arn: Option<String>, note: String) -> Self {
        Self {
            event_id,
            task_arn,
            service: None,
            decision: Decision::Ignored,
            diagnosis: None,
            incident: None,
            message_id: None,
            route: None,
            foreign: None,
            notes: vec![note],
        }
    }

    /// An event naming an account the stack does not act for: ignored, saying which.
    pub fn foreign(
        event_id: Option<String>,
        task_arn: Option<String>,
        service: Option<String>,
        foreign: Foreign,
    ) -> Self {
        Self {
            service,
            notes: vec![foreign.reason()],
            foreign: Some(foreign),
            ..Self::ignored(event_id, task_arn, String::new())
        }
    }
}
