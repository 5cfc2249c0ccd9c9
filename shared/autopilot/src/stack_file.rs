//! Reading the template parameters a stack is (or will be) deployed with, for
//! `check-config --stack-parameters`: the JSON CloudFormation and the AWS CLI take
//! (`[{"ParameterKey": …, "ParameterValue": …}]`, `{"Parameters": {…}}` or a flat object), or
//! `samconfig.toml` (`parameter_overrides` of the default environment's deploy or global
//! parameters).

use std::path::Path;

use crate::config::stack::StackParameters;
use crate::error::{AutopilotError, Result};

/// The parameters in the file at `path`, with the template's defaults for those it leaves out.
pub fn read(path: &Path) -> Result<StackParameters> {
    let text = std::fs::read_to_string(path).map_err(|e| AutopilotError::Input {
        source_name: path.display().to_string(),
        message: e.to_string(),
    })?;
    let refused = |message: String| AutopilotError::Input {
        source_name: path.display().to_string(),
        message,
    };
    let parameters = if path.extension().is_some_and(|e| e == "toml") {
        from_samconfig(&text).map_err(refused)?
    } else {
        from_json(&text).map_err(refused)?
    };
    Ok(crate::config::stack::with_defaults(parameters))
}

/// Parameters from CloudFormation's or the CLI's JSON.
pub fn from_json(text: &str) -> std::result::Result<StackParameters, String> {
    use serde_json::Value;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let text_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    match &value {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let key = item["ParameterKey"]
                    .as_str()
                    .ok_or("an item without ParameterKey")?;
                Ok((key.to_owned(), text_of(&item["ParameterValue"])))
            })
            .collect(),
        Value::Object(map) => {
            let map = match map.get("Parameters") {
                Some(Value::Object(inner)) => inner,
                _ => map,
            };
            Ok(map.iter().map(|(k, v)| (k.clone(), text_of(v))).collect())
        }
        _ => Err("expected a list of ParameterKey/ParameterValue or an object".into()),
    }
}

/// Parameters from `samconfig.toml`: `parameter_overrides` of `default.deploy.parameters`,
/// else of `default.global.parameters`; a string `Key=Value Key2="a b"` or a list of them.
pub fn from_samconfig(text: &str) -> std::result::Result<StackParameters, String> {
    let document: toml_edit::DocumentMut = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    let overrides = ["deploy", "global"].iter().find_map(|command| {
        document
            .get("default")?
            .get(command)?
            .get("parameters")?
            .get("parameter_overrides")
    });
    let Some(overrides) = overrides else {
        return Ok(StackParameters::new());
    };
    let pairs: Vec<String> = match overrides.as_value() {
        Some(toml_edit::Value::String(s)) => split_overrides(s.value()),
        Some(toml_edit::Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => return Err("parameter_overrides is neither a string nor a list".into()),
    };
    pairs
        .iter()
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not Key=Value"))?;
            Ok((key.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// `A=1 B="x y"` → `A=1`, `B="x y"`: spaces inside double quotes do not split.
fn split_overrides(text: &str) -> Vec<String> {
    let mut pairs = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    pairs.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        pairs.push(current);
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_shape_sam_and_cloudformation_take() {
        let cli = r#"[{"ParameterKey": "RoutingByTags", "ParameterValue": "true"},
                      {"ParameterKey": "ScaledAlarmNames", "ParameterValue": "a,b"}]"#;
        let pipeline =
            r#"{"Parameters": {"RoutingByTags": "true", "ScaledAlarmNames": ["a", "b"]}}"#;
        let samconfig = r#"
version = 0.1
[default.deploy.parameters]
parameter_overrides = "RoutingByTags=true ScaledAlarmNames=\"a,b\""
"#;
        let expected: StackParameters = [("RoutingByTags", "true"), ("ScaledAlarmNames", "a,b")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(from_json(cli).unwrap(), expected);
        assert_eq!(from_json(pipeline).unwrap(), expected);
        assert_eq!(from_samconfig(samconfig).unwrap(), expected);
        let listed = "[default.global.parameters]\nparameter_overrides = [\"RoutingByTags=true\", \"ScaledAlarmNames=a,b\"]\n";
        assert_eq!(from_samconfig(listed).unwrap(), expected);
        assert!(
            from_samconfig("[default.deploy.parameters]\nparameter_overrides = \"Oops\"")
                .unwrap_err()
                .contains("`Oops` is not Key=Value")
        );
    }

    #[test]
    fn the_repositorys_samconfig_reads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samconfig.toml");
        let parameters = read(Path::new(path)).unwrap();
        assert_eq!(parameters["Architecture"], "arm64");
    }
}
