//! The module layering, read from the source: the pure core imports nothing from the ports, the
//! adapters, the handlers or the entry point, and no two top-level modules import each other
//! (directly or around a cycle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules that must stay pure.
const PURE: &[&str] = &[
    "domain", "config", "events", "triage", "scaling", "batch", "notify", "state", "error",
    "incident", "metrics", "routing", "present",
];
/// What the pure modules may not use.
const IMPURE: &[&str] = &["aws", "app", "entry", "ports", "testkit", "telemetry"];

fn sources(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap().map(|e| e.unwrap().path()) {
        files.extend(sources(&entry));
    }
    files
}

/// Each top-level module and the other top-level modules its code names as `crate::<module>`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()) {
        let module = entry.file_stem().unwrap().to_string_lossy().into_owned();
        if module == "lib" {
            continue;
        }
        let mut used = BTreeSet::new();
        // Test code may use whatever builds its inputs (`tests.rs`, the `#[cfg(test)]` tail of
        // a file); comments are not imports.
        for file in sources(&entry)
            .into_iter()
            .filter(|f| !f.ends_with("tests.rs"))
        {
            let whole = std::fs::read_to_string(&file).unwrap();
            let code = whole.split("#[cfg(test)]").next().unwrap_or_default();
            let text: String = code
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for (at, _) in text.match_indices("crate::") {
                let name: String = text[at + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty()
                    && name != module
                    && name != "Result"
                    && name != "AutopilotError"
                {
                    used.insert(name);
                }
            }
        }
        graph.insert(module, used);
    }
    graph
}

#[test]
fn the_pure_core_imports_no_port_adapter_handler_or_entry() {
    let graph = imports();
    for module in PURE {
        let used = graph
            .get(*module)
            .unwrap_or_else(|| panic!("no module {module}"));
        let forbidden: Vec<&String> = used
            .iter()
            .filter(|u| IMPURE.contains(&u.as_str()))
            .collect();
        assert!(forbidden.is_empty(), "{module} imports {forbidden:?}");
    }
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = imports();
    // Depth-first search for a back edge.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(start) = path.iter().position(|&n| n == node) {
            panic!("cycle: {} -> {node}", path[start..].join(" -> "));
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node);
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
    assert!(
        graph["app"].contains("ports") && graph["aws"].contains("ports"),
        "the graph was read: {graph:?}"
    );
}
