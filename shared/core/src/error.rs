//! The error type every layer shares, each variant with a stable `error_type` (the Lambda
//! `Diagnostic` is made from it in `autopilot::entry`).

/// Shorthand for results carrying [`AutopilotError`].
pub type Result<T, E = AutopilotError> = std::result::Result<T, E>;

/// Everything that can go wrong in a function. Each variant has a stable
/// [`error_type`](AutopilotError::error_type) that Lambda reports and on-failure destinations
/// carry; README lists them.
#[derive(Debug, thiserror::Error)]
pub enum AutopilotError {
    /// The event cannot be acted on; `field` is the JSON path of the offending part.
    #[error("invalid event at `{field}`: {problem}")]
    InvalidEvent { field: String, problem: String },

    /// The stack configuration is unusable; `field` is the JSON path of the offending part.
    #[error("invalid configuration at `{field}`: {problem}")]
    InvalidConfig { field: String, problem: String },

    /// An AWS call failed in a way that should fail the invocation (Lambda will retry it).
    #[error("{service}.{operation} failed: {code}: {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        code: String,
        message: String,
    },

    /// Another invocation currently holds the claim on this event; retrying later is right.
    #[error("event {key} is being processed by another invocation")]
    InProgressElsewhere { key: String },

    /// A batch job could not start all its tasks for lack of capacity, after retries and the
    /// fallback strategy; Lambda retries the run (tasks already started are kept).
    #[error("job {job}: {started} of {requested} tasks started; capacity unavailable: {reason}")]
    CapacityUnavailable {
        job: String,
        started: usize,
        requested: u32,
        reason: String,
    },

    /// A conditional write lost to concurrent writers on every attempt (a storm window, a
    /// service's scaling memory); Lambda retries the event.
    #[error("{resource} changed under every one of {attempts} attempts")]
    Contention { resource: String, attempts: u32 },

    /// An action was taken and recorded, but telling about it failed; the error names the
    /// action so that the on-failure destination still says what happened.
    #[error("{action}, but the notification failed: {cause}")]
    NotificationLost { action: String, cause: String },

    /// The service an action names does not exist (or is not ACTIVE); `field` names the
    /// configuration that points at it.
    #[error("no active service {service} in cluster {cluster} (from `{field}`)")]
    ServiceNotFound {
        cluster: String,
        service: String,
        field: String,
    },

    /// A function called a port it does not wire (a bug in the function's wiring, not input
    /// and not AWS).
    #[error("{operation} is not wired in this function")]
    PortNotWired { operation: &'static str },

    /// A resource lives in an account (or region) the function cannot reach: no member role is
    /// configured, or assuming it failed.
    #[error("account {account} in {region} cannot be reached: {reason}")]
    Unreachable {
        account: String,
        region: String,
        reason: String,
    },

    /// An incoming webhook refused a notification (or could not be reached); the URL is never
    /// quoted. Lambda retries; destinations that took it are not sent to again.
    #[error("webhook {name} failed: {problem}")]
    Webhook { name: String, problem: String },

    /// The command line asks for something that cannot be done as given.
    #[error("usage: {0}")]
    Usage(String),

    /// Reading an event file or standard input in CLI mode failed.
    #[error("cannot read {source_name}: {message}")]
    Input {
        source_name: String,
        message: String,
    },
}

/// How much of a field path an error quotes.
const MAX_FIELD_BYTES: usize = 256;
/// How much of a problem an error states.
const MAX_PROBLEM_BYTES: usize = 1024;

impl AutopilotError {
    /// Stable machine-readable error type, used as Lambda's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidEvent { .. } => "InvalidEvent",
            Self::InvalidConfig { .. } => "InvalidConfig",
            Self::Aws { .. } => "AwsCallFailed",
            Self::InProgressElsewhere { .. } => "InProgressElsewhere",
            Self::CapacityUnavailable { .. } => "CapacityUnavailable",
            Self::Contention { .. } => "Contention",
            Self::NotificationLost { .. } => "NotificationLost",
            Self::ServiceNotFound { .. } => "ServiceNotFound",
            Self::PortNotWired { .. } => "PortNotWired",
            Self::Unreachable { .. } => "AccountUnreachable",
            Self::Webhook { .. } => "WebhookFailed",
            Self::Usage(_) => "Usage",
            Self::Input { .. } => "InputUnreadable",
        }
    }

    /// Builds an [`AutopilotError::InvalidEvent`]. Field and problem quote the event (a path
    /// of its keys, serde's account of a value), so both are clipped: the error of a hostile
    /// event stays a line in the log and the on-failure record.
    pub fn invalid_event(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::InvalidEvent {
            field: crate::domain::clipped(field.into(), MAX_FIELD_BYTES),
            problem: crate::domain::clipped(problem.into(), MAX_PROBLEM_BYTES),
        }
    }

    /// Builds an [`AutopilotError::InvalidConfig`].
    pub fn invalid_config(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::InvalidConfig {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl AutopilotError {
    /// Every stable error type, as the README lists them.
    pub const ERROR_TYPES: [&'static str; 13] = [
        "InvalidEvent",
        "InvalidConfig",
        "AwsCallFailed",
        "InProgressElsewhere",
        "CapacityUnavailable",
        "Contention",
        "NotificationLost",
        "ServiceNotFound",
        "PortNotWired",
        "AccountUnreachable",
        "WebhookFailed",
        "Usage",
        "InputUnreadable",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_error_type() {
        let readme = include_str!("../../../README.md");
        for error_type in AutopilotError::ERROR_TYPES {
            assert!(
                readme.contains(&format!("`{error_type}`")),
                "README does not list `{error_type}`"
            );
        }
        let samples = [
            AutopilotError::invalid_event("f", "p"),
            AutopilotError::invalid_config("f", "p"),
            AutopilotError::Aws {
                service: "s",
                operation: "o",
                code: "c".into(),
                message: "m".into(),
            },
            AutopilotError::InProgressElsewhere { key: "k".into() },
            AutopilotError::CapacityUnavailable {
                job: "j".into(),
                started: 0,
                requested: 1,
                reason: "r".into(),
            },
            AutopilotError::Contention {
                resource: "r".into(),
                attempts: 3,
            },
            AutopilotError::NotificationLost {
                action: "a".into(),
                cause: "c".into(),
            },
            AutopilotError::ServiceNotFound {
                cluster: "c".into(),
                service: "s".into(),
                field: "f".into(),
            },
            AutopilotError::PortNotWired {
                operation: "RunTask",
            },
            AutopilotError::Unreachable {
                account: "a".into(),
                region: "r".into(),
                reason: "why".into(),
            },
            AutopilotError::Webhook {
                name: "n".into(),
                problem: "p".into(),
            },
            AutopilotError::Usage("u".into()),
            AutopilotError::Input {
                source_name: "s".into(),
                message: "m".into(),
            },
        ];
        let types: Vec<&str> = samples.iter().map(AutopilotError::error_type).collect();
        assert_eq!(types, AutopilotError::ERROR_TYPES);
    }
}
