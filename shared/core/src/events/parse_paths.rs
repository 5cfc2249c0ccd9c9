//! Property tests holding `task-triage`'s two parse paths to one answer: the direct typed parse
//! of the event text must never accept what the value-tree parse rejects or read it differently.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::ecs::{parse_triage_input, triage_input_from_value, TASK_STATE_CHANGE};

fn fixtures() -> &'static [Value] {
    static FIXTURES: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(read_fixtures)
}

fn read_fixtures() -> Vec<Value> {
    let dir = format!("{}/../../tests/fixtures/ecs", env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.expect("dir entry").path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
        })
        .collect()
}

/// A JSON value of any kind, biased towards the shapes the event fields have.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        Just(json!(137)),
        Just(json!(TASK_STATE_CHANGE)),
        Just(json!("STOPPED")),
        Just(json!("2026-09-15T02:00:00Z")),
        Just(json!("2026-09-15T02:00:00.123+02:00")),
        Just(json!("arn:aws:ecs:us-east-1:111122223333:task/shop/0123")),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((any_key(), inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object key: often one the event's types read (so generated objects can be envelopes,
/// details or containers), otherwise any short name.
fn any_key() -> impl Strategy<Value = String> {
    let known: Vec<&'static str> = TOP.iter().chain(DETAIL).chain(CONTAINER).copied().collect();
    prop_oneof![
        prop::sample::select(known).prop_map(str::to_owned),
        "[a-zA-Z-]{1,12}",
    ]
}

/// One edit of an event: where (a top-level key, a detail key, a container key) and what.
#[derive(Debug, Clone)]
enum Edit {
    Remove(usize, usize),
    Replace(usize, usize, Value),
    DuplicateTopLevel(usize, Value),
}

const TOP: &[&str] = &[
    "version",
    "id",
    "detail-type",
    "source",
    "time",
    "resources",
    "detail",
];
const DETAIL: &[&str] = &[
    "taskArn",
    "clusterArn",
    "group",
    "startedBy",
    "lastStatus",
    "stopCode",
    "stoppedReason",
    "containers",
    "createdAt",
    "stoppedAt",
    "version",
];
const CONTAINER: &[&str] = &["name", "exitCode", "reason", "lastStatus"];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..3usize, 0..11usize).prop_map(|(level, key)| Edit::Remove(level, key)),
        (0..3usize, 0..11usize, any_json()).prop_map(|(l, k, v)| Edit::Replace(l, k, v)),
        (0..TOP.len(), any_json()).prop_map(|(k, v)| Edit::DuplicateTopLevel(k, v)),
    ]
}

fn target(
    event: &mut Value,
    level: usize,
) -> Option<(&mut Map<String, Value>, &'static [&'static str])> {
    match level {
        0 => event.as_object_mut().map(|o| (o, TOP)),
        1 => event
            .get_mut("detail")?
            .as_object_mut()
            .map(|o| (o, DETAIL)),
        _ => event
            .pointer_mut("/detail/containers/0")?
            .as_object_mut()
            .map(|o| (o, CONTAINER)),
    }
}

/// Applies the edits; a duplicated key is written into the text, as a value tree cannot hold one.
fn edited_text(mut event: Value, edits: &[Edit]) -> String {
    let mut duplicates = Vec::new();
    for edit in edits {
        match edit {
            Edit::Remove(level, key) => {
                if let Some((object, keys)) = target(&mut event, *level) {
                    object.remove(keys[key % keys.len()]);
                }
            }
            Edit::Replace(level, key, value) => {
                if let Some((object, keys)) = target(&mut event, *level) {
                    object.insert(keys[key % keys.len()].to_owned(), value.clone());
                }
            }
            Edit::DuplicateTopLevel(key, value) => duplicates.push((TOP[*key], value.clone())),
        }
    }
    let mut text = event.to_string();
    if text.ends_with('}') && text.len() > 2 {
        text.pop();
        for (key, value) in duplicates {
            text.push_str(&format!(",{}:{value}", Value::from(key)));
        }
        text.push('}');
    }
    text
}

/// Both paths give the same input, or the same error: its type, the field it names and why.
fn same_answer(text: &str) -> Result<(), TestCaseError> {
    let verdict = |result: crate::Result<super::ecs::TriageInput>| {
        result.map_err(|e| (e.error_type(), e.to_string()))
    };
    let direct = verdict(parse_triage_input(text));
    let reference =
        verdict(super::value_from_text(text).and_then(|value| triage_input_from_value(&value)));
    prop_assert_eq!(direct, reference, "paths disagree on {}", text);
    Ok(())
}

#[test]
fn fixtures_take_the_direct_path_and_agree() {
    for event in fixtures() {
        let text = event.to_string();
        serde_json::from_str::<super::ecs::TaskStateChange>(&text).expect("direct parse");
        same_answer(&text).unwrap();
    }
}

#[test]
fn arrays_in_place_of_objects_are_refused_by_both_paths() {
    let detail_array = json!({"detail-type": TASK_STATE_CHANGE, "source": "x",
        "detail": ["arn:aws:ecs:us-east-1:1:task/c/t"]});
    assert!(parse_triage_input(&detail_array.to_string()).is_err());
    let envelope_array = json!(["0", "id", TASK_STATE_CHANGE, "x", "1", null, "r", [],
        {"taskArn": "arn:aws:ecs:us-east-1:1:task/c/t"}]);
    assert!(parse_triage_input(&envelope_array.to_string()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn both_paths_agree_on_edited_fixtures(which in 0usize..64, edits in prop::collection::vec(edit(), 0..4)) {
        let events = fixtures();
        let text = edited_text(events[which % events.len()].clone(), &edits);
        same_answer(&text)?;
    }

    #[test]
    fn both_paths_agree_on_any_json(value in any_json()) {
        same_answer(&value.to_string())?;
    }

    /// Generated envelopes with a task state change's `detail-type` exercise the typed paths
    /// (not only the "other detail-type" branch).
    #[test]
    fn both_paths_agree_on_generated_task_state_changes(detail in any_json(), extra in any_json()) {
        let event = json!({"detail-type": TASK_STATE_CHANGE, "id": "e", "source": "aws.ecs", "detail": detail, "x": extra});
        same_answer(&event.to_string())?;
    }
}

#[test]
fn more_containers_than_ecs_allows_is_a_named_error_on_both_paths() {
    let mut event = fixtures()[0].clone();
    let container = event["detail"]["containers"][0].clone();
    event["detail"]["containers"] = Value::Array(vec![container; super::ecs::MAX_CONTAINERS + 1]);
    let text = event.to_string();
    let error = parse_triage_input(&text).unwrap_err();
    assert!(
        error.to_string().contains("detail.containers") && error.to_string().contains("at most 10"),
        "{error}"
    );
    same_answer(&text).unwrap();
    event["detail"]["containers"] =
        Value::Array(vec![event["detail"]["containers"][0].clone(); 10]);
    assert!(
        parse_triage_input(&event.to_string()).is_ok(),
        "ten is allowed"
    );
}
