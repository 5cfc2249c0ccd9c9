//! `config.schema.json`: the JSON Schema of the configuration document, generated from the
//! types that read it (so an editor and the functions agree), with keys sorted so that the
//! checked-in file does not depend on how serde_json orders maps.

use serde_json::{Map, Value};

use super::StackConfig;

/// The schema of the whole document (and, as it has no required key, of each part).
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(StackConfig).to_value();
    if let Some(root) = schema.as_object_mut() {
        root.insert("title".into(), "ECS Autopilot configuration".into());
    }
    sorted(schema)
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config.schema.json");

    /// `make schema` writes the file (UPDATE_SCHEMA=1); CI holds it to the code.
    #[test]
    #[allow(clippy::disallowed_methods)] // a test's switch, not the core reading its environment
    fn config_schema_json_is_what_the_types_make() {
        let made = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(CHECKED_IN, &made).unwrap();
        }
        let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
        let checked_in: Value = serde_json::from_str(&checked_in).unwrap_or(Value::Null);
        assert!(
            sorted(checked_in) == json_schema(),
            "config.schema.json does not match the configuration types: run `make schema`"
        );
    }

    #[test]
    fn the_schema_names_every_section_and_refuses_unknown_keys() {
        let schema = json_schema();
        let properties = schema["properties"].as_object().unwrap();
        for section in ["triage", "notify", "scaling", "jobs", "config_refresh_s"] {
            assert!(properties.contains_key(section), "{section}");
        }
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["required"].is_null(), "every key has a default");
        let defs = schema["$defs"].as_object().unwrap();
        assert_eq!(defs["JobSpec"]["additionalProperties"], false);
        assert_eq!(defs["StepLimit"]["oneOf"].as_array().unwrap().len(), 2);
    }
}
