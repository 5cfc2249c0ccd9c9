//! Line-wise rewrites of `template.yaml` that know which resource a line belongs to and keep
//! everything else byte for byte (short-form tags included): no YAML library would.

use std::collections::BTreeMap;

use crate::Result;

/// Each line of `template` with the logical id of the resource (under `Resources`) it belongs
/// to, the resource's own key line included; the rewrites here and in the test harness read the
/// template through it.
pub fn resource_lines(template: &str) -> Vec<(Option<&str>, &str)> {
    let mut in_resources = false;
    let mut resource = None;
    let mut lines = Vec::new();
    for line in template.lines() {
        let indent = indent_of(line);
        let key = line.trim().strip_suffix(':');
        if indent == 0 && !line.trim().is_empty() && !line.starts_with('#') {
            in_resources = line.trim_end() == "Resources:";
            resource = None;
        } else if in_resources && indent == 2 && key.is_some_and(|k| !k.contains(' ')) {
            resource = key;
        }
        lines.push((resource, line));
    }
    lines
}

/// How far `line` is indented.
pub fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `template` with the `CodeUri` of each function in `code` (logical id → S3 URI) replaced.
/// Every function named must have exactly one `CodeUri` directly under its `Properties`.
pub fn with_code_uris(template: &str, code: &BTreeMap<&str, String>) -> Result<String> {
    let mut replaced: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = String::with_capacity(template.len() + 256);
    for (resource, line) in resource_lines(template) {
        let indent = indent_of(line);
        let uri = resource
            .filter(|_| indent == 6 && line.trim().starts_with("CodeUri:"))
            .and_then(|id| code.get_key_value(id));
        match uri {
            Some((id, uri)) => {
                *replaced.entry(id).or_default() += 1;
                out.push_str(&format!("{}CodeUri: {uri}\n", &line[..indent]));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for id in code.keys() {
        match replaced.get(id) {
            Some(1) => {}
            other => {
                return Err(format!(
                    "template.yaml: {id} has {} CodeUri lines under its Properties, not 1",
                    other.copied().unwrap_or_default()
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template_text;

    #[test]
    fn each_function_gets_its_own_code_uri_and_nothing_else_changes() {
        let template = template_text().unwrap();
        let code: BTreeMap<&str, String> = [
            ("TaskTriageFunction", "s3://b/triage.zip".to_owned()),
            ("AlarmScalerFunction", "s3://b/scaler.zip".to_owned()),
            ("BatchRunnerFunction", "s3://b/runner.zip".to_owned()),
        ]
        .into();
        let rewritten = with_code_uris(&template, &code).unwrap();
        let changed: Vec<(&str, &str)> = template
            .lines()
            .zip(rewritten.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(
            changed,
            [
                ("      CodeUri: .", "      CodeUri: s3://b/triage.zip"),
                ("      CodeUri: .", "      CodeUri: s3://b/scaler.zip"),
                ("      CodeUri: .", "      CodeUri: s3://b/runner.zip"),
            ]
        );
        assert_eq!(template.lines().count(), rewritten.lines().count());
    }

    #[test]
    fn a_function_without_code_uri_is_an_error() {
        let code: BTreeMap<&str, String> = [("NoSuchFunction", "s3://b/x.zip".to_owned())].into();
        let error = with_code_uris(&template_text().unwrap(), &code).unwrap_err();
        assert!(error.contains("NoSuchFunction has 0 CodeUri"), "{error}");
    }
}
