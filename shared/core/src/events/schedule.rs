//! What starts `batch-runner`: a schedule's input naming a job (`{"job": "invoice-export",
//! "scheduled_time": "…", "parameters": {"month": "2026-10"}}`), the tick (`{"tick": true}` or
//! an EventBridge "Scheduled Event"), or the Task State Change of a task it started. Nothing
//! else from the event is trusted: everything about the run comes from the catalog, and a
//! parameter is taken only if the job declares it and the value matches its pattern.

use serde_json::Value;

use std::collections::BTreeMap;

use super::alarm::SCHEDULED_EVENT;
use super::ecs::{parse_task_state_change, TaskStateChange, TASK_STATE_CHANGE};
use super::json_kind;
use crate::error::{AutopilotError, Result};

/// A request to run a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    pub job: String,
    /// EventBridge Scheduler's `<aws.scheduler.scheduled-time>`, when the schedule passes it.
    pub scheduled_time: Option<String>,
    /// `scheduled_time` in epoch seconds (parsed with the event: a malformed one is refused).
    pub scheduled_at: Option<i64>,
    /// Values for the job's declared parameters (checked against the catalog by the runner).
    pub parameters: BTreeMap<String, String>,
}

/// What woke `batch-runner`.
#[derive(Debug, Clone, PartialEq)]
pub enum RunnerEvent {
    Run(JobRequest),
    /// The tick; an EventBridge Scheduled Event names the account of its rule.
    Tick {
        account: Option<String>,
    },
    /// A task it started changed state (RUNNING, STOPPED).
    Task(Box<TaskStateChange>),
}

/// Keys a job request may carry.
const ACCEPTED: [&str; 3] = ["job", "scheduled_time", "parameters"];

/// Reads a runner event; anything else is an error naming the field.
pub fn parse_runner_event(event: &Value) -> Result<RunnerEvent> {
    let Some(object) = event.as_object() else {
        return Err(AutopilotError::invalid_event(
            "$",
            format!("expected a JSON object, got {}", json_kind(event)),
        ));
    };
    if object.contains_key("tick")
        || object.get("detail-type").and_then(Value::as_str) == Some(SCHEDULED_EVENT)
    {
        let account = object.get("account").and_then(Value::as_str);
        return Ok(RunnerEvent::Tick {
            account: account.map(str::to_owned),
        });
    }
    if object.get("detail-type").and_then(Value::as_str) == Some(TASK_STATE_CHANGE) {
        return Ok(RunnerEvent::Task(Box::new(parse_task_state_change(event)?)));
    }
    let job =
        match object.get("job") {
            Some(Value::String(job)) if !job.trim().is_empty() => job.trim().to_owned(),
            Some(Value::String(_)) => return Err(AutopilotError::invalid_event("job", "empty")),
            Some(other) => {
                return Err(AutopilotError::invalid_event(
                    "job",
                    format!("expected a job name, got {}", json_kind(other)),
                ))
            }
            None => return Err(AutopilotError::invalid_event(
                "job",
                "missing: the schedule's input must name a job, e.g. {\"job\": \"invoice-export\"}",
            )),
        };
    if let Some(extra) = object.keys().find(|k| !ACCEPTED.contains(&k.as_str())) {
        return Err(AutopilotError::invalid_event(
            extra.clone(),
            "not accepted: cluster, task definition, network and overrides come from the job catalog",
        ));
    }
    let scheduled_time = match object.get("scheduled_time") {
        None | Some(Value::Null) => None,
        Some(Value::String(time)) if !time.trim().is_empty() => Some(time.trim().to_owned()),
        Some(other) => {
            return Err(AutopilotError::invalid_event(
                "scheduled_time",
                format!("expected a timestamp string, got {}", json_kind(other)),
            ))
        }
    };
    let scheduled_at = match scheduled_time.as_deref() {
        Some(time) => Some(super::parse_time(time, "scheduled_time")?),
        None => None,
    };
    let mut parameters = BTreeMap::new();
    match object.get("parameters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            for (name, value) in given {
                match value {
                    Value::String(text) => {
                        parameters.insert(name.clone(), text.clone());
                    }
                    other => {
                        return Err(AutopilotError::invalid_event(
                            format!("parameters.{name}"),
                            format!("expected a string, got {}", json_kind(other)),
                        ))
                    }
                }
            }
        }
        Some(other) => {
            return Err(AutopilotError::invalid_event(
                "parameters",
                format!("expected an object of strings, got {}", json_kind(other)),
            ))
        }
    }
    Ok(RunnerEvent::Run(JobRequest {
        job,
        scheduled_time,
        scheduled_at,
        parameters,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(event: Value) -> String {
        match parse_runner_event(&event) {
            Err(AutopilotError::InvalidEvent { field, .. }) => field,
            other => panic!("expected InvalidEvent, got {other:?}"),
        }
    }

    #[test]
    fn reads_the_schedule_input_and_ticks() {
        let fixture = |name: &str| -> Value {
            let path = format!(
                "{}/../../tests/fixtures/schedule/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        assert_eq!(
            parse_runner_event(&fixture("scheduler-input.json")).unwrap(),
            RunnerEvent::Run(JobRequest {
                job: "invoice-export".into(),
                scheduled_time: None,
                scheduled_at: None,
                parameters: BTreeMap::new(),
            })
        );
        assert_eq!(
            parse_runner_event(&fixture("eventbridge-scheduled-event.json")).unwrap(),
            RunnerEvent::Tick {
                account: Some("111122223333".into())
            }
        );
        assert_eq!(
            parse_runner_event(&json!({"job": "a", "scheduled_time": "2026-09-15T02:00:00Z"}))
                .unwrap(),
            RunnerEvent::Run(JobRequest {
                job: "a".into(),
                scheduled_time: Some("2026-09-15T02:00:00Z".into()),
                scheduled_at: Some(1_789_437_600),
                parameters: BTreeMap::new(),
            })
        );
        match parse_runner_event(&json!({"job": "a", "parameters": {"month": "2026-10"}})).unwrap()
        {
            RunnerEvent::Run(request) => assert_eq!(request.parameters["month"], "2026-10"),
            other => panic!("{other:?}"),
        }
        let stop = fixture("../ecs/batch-failed.json");
        assert!(matches!(
            parse_runner_event(&stop).unwrap(),
            RunnerEvent::Task(_)
        ));
    }

    #[test]
    fn rejects_what_it_does_not_trust() {
        assert_eq!(field(json!({"job": "a", "cluster": "prod"})), "cluster");
        assert_eq!(field(json!({"job": 5})), "job");
        assert_eq!(field(json!({})), "job");
        assert_eq!(
            field(json!({"job": "a", "scheduled_time": 1})),
            "scheduled_time"
        );
        assert_eq!(
            field(json!({"job": "a", "scheduled_time": "yesterday"})),
            "scheduled_time"
        );
        assert_eq!(field(json!("invoice-export")), "$");
        assert_eq!(
            field(json!({"job": "a", "parameters": {"month": 10}})),
            "parameters.month"
        );
        assert_eq!(
            field(json!({"job": "a", "parameters": ["x"]})),
            "parameters"
        );
    }
}
