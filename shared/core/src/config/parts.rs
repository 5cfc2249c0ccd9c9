//! A configuration in parts (pure): several JSON documents — SSM parameters under one path, or
//! the files of a directory — merged in name order into the one document, so that app teams'
//! routes, platform's scaling and data's jobs live apart and one team's edit cannot overwrite
//! another's.
//!
//! Named entries (`jobs.<job>`, `scaling.alarms|targets|schedules.<name>`,
//! `notify.webhooks.<name>`) are taken from whichever part defines them; the same name in two
//! parts is an error naming both. `notify.routes` concatenate in part order. Any other setting
//! (`triage.log_lines`, `notify.route_by_tag` …) may be given by one part only. Every problem is
//! reported, each naming its part and path, not only the first.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// SSM's limit on an advanced parameter's value, in bytes.
pub const MAX_PART_BYTES: usize = 8 * 1024;
/// SSM's limit on a standard parameter's value: larger parts need the advanced tier.
pub const STANDARD_PART_BYTES: usize = 4 * 1024;

/// Sections whose entries are named, each owned by one part.
const NAMED: [&str; 5] = [
    "jobs",
    "scaling.alarms",
    "scaling.targets",
    "scaling.schedules",
    "notify.webhooks",
];
/// Lists that concatenate in part order.
const CONCATENATED: [&str; 1] = ["notify.routes"];

/// One part: its name (an SSM parameter's name, a file's path) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub text: String,
}

/// A problem with a configuration, naming the part and the JSON path where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    pub path: String,
    pub problem: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.part {
            Some(part) => write!(f, "{part}: {}: {}", self.path, self.problem),
            None => write!(f, "{}: {}", self.path, self.problem),
        }
    }
}

impl Problem {
    /// A notice's section listing `problems`, one line each.
    pub fn section(problems: &[Problem]) -> crate::notify::Section {
        crate::notify::Section {
            heading: "Problems".into(),
            lines: problems.iter().map(Problem::to_string).collect(),
        }
    }
}

/// The merged document and, for each path a part contributed, the part.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub document: Value,
    /// Path prefix (`jobs.extract`, `notify.routes[3]`, `triage.log_lines`) → part name.
    origins: BTreeMap<String, String>,
    /// Parts above the standard tier's size (they need SSM's advanced tier).
    pub warnings: Vec<Problem>,
}

impl Merged {
    /// The part that gave `path` (an error's field): the longest recorded prefix, else the one
    /// part everything under `path` came from.
    pub fn part_of(&self, path: &str) -> Option<&str> {
        let under = |outer: &str, inner: &str| {
            inner == outer
                || inner.starts_with(&format!("{outer}."))
                || inner.starts_with(&format!("{outer}["))
        };
        if let Some((_, part)) = self
            .origins
            .iter()
            .filter(|(prefix, _)| under(prefix, path))
            .max_by_key(|(prefix, _)| prefix.len())
        {
            return Some(part);
        }
        let mut within = self
            .origins
            .iter()
            .filter(|(inner, _)| under(path, inner))
            .map(|(_, part)| part.as_str());
        let first = within.next()?;
        within.all(|part| part == first).then_some(first)
    }
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Merges `parts` in name order; every problem found, each naming its part (both parts for a
/// conflict) and path.
pub fn merge(parts: &[Part]) -> Result<Merged, Vec<Problem>> {
    let mut sorted: Vec<&Part> = parts.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut merged = Merged {
        document: Value::Object(Map::new()),
        origins: BTreeMap::new(),
        warnings: Vec::new(),
    };
    let mut problems = Vec::new();
    for part in sorted {
        let problem = |path: &str, problem: String| Problem {
            part: Some(part.name.clone()),
            path: path.to_owned(),
            problem,
        };
        let size = part.text.len();
        if size > MAX_PART_BYTES {
            problems.push(problem(
                "$",
                format!("{size} bytes; an SSM parameter holds at most {MAX_PART_BYTES}: split it into more parts"),
            ));
        } else if size > STANDARD_PART_BYTES {
            merged.warnings.push(problem(
                "$",
                format!("{size} bytes: more than a standard SSM parameter's {STANDARD_PART_BYTES}; it needs the advanced tier"),
            ));
        }
        let value: Value = match serde_json::from_str(&part.text) {
            // Each part may name the schema for its editor; the merged document does not.
            Ok(Value::Object(mut object)) => {
                object.remove(super::SCHEMA_KEY);
                Value::Object(object)
            }
            Ok(_) => {
                problems.push(problem("$", "expected a JSON object".into()));
                continue;
            }
            Err(error) => {
                problems.push(problem("$", format!("not JSON: {error}")));
                continue;
            }
        };
        let (target, origins) = (&mut merged.document, &mut merged.origins);
        fold(target, value, "", &part.name, origins, &mut problems);
    }
    // Parts were read in name order; within a part, path order (JSON object order differs
    // with serde_json's features).
    problems.sort_by(|a, b| (&a.part, &a.path).cmp(&(&b.part, &b.path)));
    if problems.is_empty() {
        Ok(merged)
    } else {
        Err(problems)
    }
}

/// Folds `value` (at `path`) of part `part` into `target`.
fn fold(
    target: &mut Value,
    value: Value,
    path: &str,
    part: &str,
    origins: &mut BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) {
    let (Value::Object(into), Value::Object(from)) = (target, value) else {
        return;
    };
    for (key, value) in from {
        let here = at(path, &key);
        let taken = origins.get(&here).cloned();
        if NAMED.contains(&here.as_str()) {
            let Value::Object(entries) = value else {
                problems.push(Problem {
                    part: Some(part.to_owned()),
                    path: here,
                    problem: "expected an object of named entries".into(),
                });
                continue;
            };
            let section = into.entry(key).or_insert_with(|| Value::Object(Map::new()));
            for (name, entry) in entries {
                let entry_path = at(&here, &name);
                if let Some(owner) = origins.get(&entry_path) {
                    problems.push(Problem {
                        part: Some(part.to_owned()),
                        path: entry_path.clone(),
                        problem: format!("also defined in {owner}: a name belongs to one part"),
                    });
                    continue;
                }
                if let Value::Object(section) = section {
                    section.insert(name, entry);
                }
                origins.insert(entry_path, part.to_owned());
            }
            continue;
        }
        if CONCATENATED.contains(&here.as_str()) {
            let Value::Array(items) = value else {
                problems.push(Problem {
                    part: Some(part.to_owned()),
                    path: here,
                    problem: "expected a list".into(),
                });
                continue;
            };
            let list = into.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = list {
                for item in items {
                    origins.insert(format!("{here}[{}]", list.len()), part.to_owned());
                    list.push(item);
                }
            }
            continue;
        }
        match (into.get_mut(&key), value) {
            // Objects are folded key by key, so that every setting and name records its part.
            (Some(existing @ Value::Object(_)), value @ Value::Object(_)) => {
                fold(existing, value, &here, part, origins, problems);
            }
            (None, value @ Value::Object(_)) => {
                let existing = into.entry(key).or_insert_with(|| Value::Object(Map::new()));
                fold(existing, value, &here, part, origins, problems);
            }
            (Some(_), _) => problems.push(Problem {
                part: Some(part.to_owned()),
                path: here.clone(),
                problem: format!(
                    "also set in {}: a setting belongs to one part",
                    taken.as_deref().unwrap_or("another part")
                ),
            }),
            (None, value) => {
                origins.insert(here, part.to_owned());
                into.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn part(name: &str, value: Value) -> Part {
        Part {
            name: name.into(),
            text: value.to_string(),
        }
    }

    #[test]
    fn parts_merge_in_name_order_and_routes_concatenate() {
        let merged = merge(&[
            part(
                "/autopilot/config/routes-payments",
                json!({"notify": {"routes": [{"name": "payments"}]}}),
            ),
            part(
                "/autopilot/config/jobs-data",
                json!({"jobs": {"extract": {"cluster": "data"}}, "notify": {"routes": [{"name": "data"}], "webhooks": {"data-slack": {}}}}),
            ),
            part(
                "/autopilot/config/base",
                json!({"triage": {"log_lines": 30}, "notify": {"https_format": "chatbot"}}),
            ),
        ])
        .unwrap();
        let routes: Vec<&str> = merged.document["notify"]["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(routes, ["data", "payments"], "in part-name order");
        assert_eq!(merged.document["triage"]["log_lines"], 30);
        assert_eq!(merged.document["notify"]["https_format"], "chatbot");
        assert_eq!(
            merged.part_of("jobs.extract.cluster"),
            Some("/autopilot/config/jobs-data")
        );
        assert_eq!(
            merged.part_of("notify.routes[1].name"),
            Some("/autopilot/config/routes-payments")
        );
        assert_eq!(
            merged.part_of("triage.log_lines"),
            Some("/autopilot/config/base")
        );
        assert_eq!(merged.part_of("triage"), Some("/autopilot/config/base"));
        assert_eq!(merged.part_of("notify"), None, "several parts");
    }

    #[test]
    fn the_same_name_or_setting_in_two_parts_names_both_and_every_problem_is_told() {
        let problems = merge(&[
            part("a-jobs", json!({"jobs": {"extract": {}, "load": {}}, "triage": {"log_lines": 10}})),
            part("b-jobs", json!({"jobs": {"extract": {}}, "scaling": {"alarms": {"x": {}}}})),
            part("c-more", json!({"jobs": {"load": {}}, "triage": {"log_lines": 20}, "scaling": {"alarms": {"x": {}}}})),
            Part {
                name: "d-broken".into(),
                text: "{not json".into(),
            },
        ])
        .unwrap_err();
        let told: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            told[..4],
            [
                "b-jobs: jobs.extract: also defined in a-jobs: a name belongs to one part",
                "c-more: jobs.load: also defined in a-jobs: a name belongs to one part",
                "c-more: scaling.alarms.x: also defined in b-jobs: a name belongs to one part",
                "c-more: triage.log_lines: also set in a-jobs: a setting belongs to one part",
            ]
        );
        assert!(told[4].starts_with("d-broken: $: not JSON"), "{told:?}");
    }

    #[test]
    fn a_part_over_ssms_limits_is_refused_or_warned() {
        let big = |bytes: usize| {
            let filler = "x".repeat(bytes);
            part("p", json!({"jobs": {"j": {"cluster": filler}}}))
        };
        let warned = merge(&[big(5000)]).unwrap();
        assert!(
            warned.warnings[0].problem.contains("advanced tier"),
            "{:?}",
            warned.warnings
        );
        let refused = merge(&[big(9000)]).unwrap_err();
        assert!(
            refused[0].problem.contains("split it into more parts"),
            "{refused:?}"
        );
    }
}

/// At most this many document errors are told (a file of garbage is not a thousand lines).
const MAX_DOCUMENT_ERRORS: usize = 50;

/// Merges `parts` and reads the result as the stack's configuration: every merge problem, or
/// every document error found — each named by the part that holds it — or the configuration and
/// the merge (its warnings, and the part each path came from).
///
/// serde stops at the first error, so the document is read again without what each error named
/// (the named entry it is in — a job, a policy, a webhook — or else the field itself) until it
/// reads; an error that only follows from a removal (a job `after` one removed) may be told too,
/// and a removed route moves the ones after it up (their errors then name the index it had).
pub fn parse_parts(parts: &[Part]) -> Result<(super::StackConfig, Merged), Vec<Problem>> {
    let merged = merge(parts)?;
    let mut document = merged.document.clone();
    let mut problems: Vec<Problem> = Vec::new();
    loop {
        let error = match super::StackConfig::parse(&document.to_string()) {
            Ok(config) if problems.is_empty() => return Ok((config, merged)),
            Ok(_) => return Err(problems),
            Err(error) => error,
        };
        let (field, problem) = match error {
            crate::error::AutopilotError::InvalidConfig { field, problem } => (field, problem),
            other => ("$".to_owned(), other.to_string()),
        };
        let part = merged.part_of(&field).map(str::to_owned);
        // Each round removes something, so the loop ends.
        let removed = remove_named(&mut document, &field);
        if !problems
            .iter()
            .any(|p| p.path == field && p.problem == problem)
        {
            problems.push(Problem {
                part,
                path: field,
                problem,
            });
        }
        if !removed || problems.len() >= MAX_DOCUMENT_ERRORS {
            return Err(problems);
        }
    }
}

/// Removes from `document` what an error at `path` is in: its named entry (`jobs.<job>` …), else
/// the field at `path` itself; false when there is nothing to remove.
fn remove_named(document: &mut Value, path: &str) -> bool {
    for section in NAMED {
        if let Some(rest) = path.strip_prefix(&format!("{section}.")) {
            let name = rest.split(['.', '[']).next().unwrap_or(rest);
            return remove_at(document, &format!("{section}.{name}"));
        }
    }
    remove_at(document, path)
}

/// Removes the field (or array element) at a path such as `notify.routes[1].topic`.
fn remove_at(document: &mut Value, path: &str) -> bool {
    if path.is_empty() || path == "$" {
        return false;
    }
    let steps: Vec<&str> = path
        .split('.')
        .flat_map(|segment| segment.split('['))
        .map(|step| step.trim_end_matches(']'))
        .filter(|step| !step.is_empty())
        .collect();
    let Some((last, within)) = steps.split_last() else {
        return false;
    };
    let mut container = &mut *document;
    for step in within {
        let next = match step.parse::<usize>() {
            Ok(index) => container.get_mut(index),
            Err(_) => container.get_mut(*step),
        };
        match next {
            Some(inner) => container = inner,
            None => return false,
        }
    }
    match (container, last.parse::<usize>()) {
        (Value::Array(items), Ok(index)) if index < items.len() => {
            items.remove(index);
            true
        }
        (Value::Object(map), _) => map.remove(*last).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bad_value_is_named_by_its_part_and_path() {
        let parts = [
            Part {
                name: "jobs-data".into(),
                text: json!({"jobs": {"invoice-export": {"cluster": "c", "task_definition": "t", "count": 0}}}).to_string(),
            },
            Part {
                name: "routes".into(),
                text: json!({"notify": {"routes": []}}).to_string(),
            },
        ];
        let problems = parse_parts(&parts).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "jobs-data: jobs.invoice-export.count: 0 is outside 1..=100"
        );
        let fine = [parts[1].clone()];
        assert!(parse_parts(&fine).is_ok());
    }

    #[test]
    fn every_document_error_is_told_with_its_part() {
        let parts = [
            Part {
                name: "10-triage".into(),
                text: json!({"triage": {"log_lines": 501}, "config_refresh_s": 100000}).to_string(),
            },
            Part {
                name: "40-jobs".into(),
                text: json!({"jobs": {
                    "a": {"cluster": "c", "task_definition": "t", "count": 0},
                    "b": {"cluster": "c", "task_definition": "t", "cout": 2},
                    "c": {"cluster": "c", "task_definition": "t"}
                }})
                .to_string(),
            },
            Part {
                name: "20-routes".into(),
                text: json!({"notify": {"routes": [{"cluster": "x"}, {"severity": "loud"}]}})
                    .to_string(),
            },
        ];
        let told: Vec<String> = parse_parts(&parts)
            .unwrap_err()
            .iter()
            .map(|p| format!("{} {}", p.part.as_deref().unwrap_or("-"), p.path))
            .collect();
        let mut sorted = told.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "10-triage config_refresh_s",
                "10-triage triage.log_lines",
                "20-routes notify.routes[0]",
                "20-routes notify.routes[1].severity",
                "40-jobs jobs.a.count",
                "40-jobs jobs.b.cout",
            ],
            "{told:?}"
        );
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// `examples/config/`: one part per owner, as the README lays them out.
    #[test]
    fn the_example_parts_merge_without_a_problem() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/config");
        let mut parts: Vec<Part> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                Part {
                    name: path.file_name().unwrap().to_string_lossy().into_owned(),
                    text: std::fs::read_to_string(&path).unwrap(),
                }
            })
            .collect();
        parts.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(parts.len(), 4);
        let (config, merged) = parse_parts(&parts).unwrap();
        assert!(merged.warnings.is_empty(), "{:?}", merged.warnings);
        assert_eq!(config.jobs.len(), 3);
        assert_eq!(config.notify.routes.len(), 3);
        assert_eq!(config.notify.routes[0].name.as_deref(), Some("image pulls"));
    }
}
