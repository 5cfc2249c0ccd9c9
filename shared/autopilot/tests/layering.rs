//! The layering, checked where Cargo does not check it itself: the pure core's manifest keeps
//! it free of I/O crates (this test asks `cargo tree` what the core pulls in, so a new
//! dependency anywhere below it is caught), and no two top-level modules of either crate import
//! each other (directly or around a cycle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates the core may never depend on, directly or through another crate: the AWS SDK and
/// smithy, HTTP and TLS stacks, async runtimes and the Lambda crates.
const FORBIDDEN_IN_CORE: &[&str] = &[
    "aws-",
    "aws_",
    "lambda",
    "tokio",
    "hyper",
    "http",
    "rustls",
    "futures",
    "async-trait",
    "tracing",
    "clap",
];

#[test]
fn the_core_depends_on_no_aws_async_or_lambda_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "autopilot-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).unwrap();
    let crates: BTreeSet<&str> = tree.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(
        crates.contains("serde_json"),
        "the tree was read: {crates:?}"
    );
    let forbidden: Vec<&&str> = crates
        .iter()
        .filter(|name| FORBIDDEN_IN_CORE.iter().any(|f| name.starts_with(f)))
        .collect();
    assert!(
        forbidden.is_empty(),
        "autopilot-core depends on {forbidden:?}"
    );
}

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

/// Each top-level module of both crates and the other top-level modules its code names as
/// `crate::<module>` (the autopilot crate re-exports the core's modules under their names).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut graph = BTreeMap::new();
    let dirs = [manifest.join("src"), manifest.join("../core/src")];
    for entry in dirs
        .iter()
        .flat_map(|src| std::fs::read_dir(src).unwrap().map(|e| e.unwrap().path()))
    {
        let module = entry.file_stem().unwrap().to_string_lossy().into_owned();
        if module == "lib" {
            continue;
        }
        let mut used = BTreeSet::new();
        // Test code may use whatever builds its inputs (`tests.rs`, each `#[cfg(test)]` item,
        // wherever it stands in a file); comments are not imports.
        for file in sources(&entry)
            .into_iter()
            .filter(|f| !f.ends_with("tests.rs"))
        {
            let whole = std::fs::read_to_string(&file).unwrap();
            let code = without_test_items(&whole);
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

/// `source` without its `#[cfg(test)]` items: from each attribute to the end of the braced
/// item after it (braces inside string and character literals and comments are not counted),
/// so that code after a test module is still read.
fn without_test_items(source: &str) -> String {
    const TEST: &str = "#[cfg(test)]";
    let mut kept = String::new();
    let mut rest = source;
    while let Some(at) = rest.find(TEST) {
        kept.push_str(&rest[..at]);
        rest = &rest[at + TEST.len()..];
        rest = match rest.find(['{', ';']) {
            Some(open) if rest.as_bytes()[open] == b'{' => {
                &rest[open + braced_len(&rest[open..]).unwrap_or(rest.len() - open)..]
            }
            Some(semicolon) => &rest[semicolon + 1..],
            None => "",
        };
    }
    kept.push_str(rest);
    kept
}

/// The length of the braced block `text` starts with, through its closing brace.
fn braced_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i += text[i..].find('\n').unwrap_or(text.len() - i);
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'#' | b'"'))
                && !bytes[i.saturating_sub(1)].is_ascii_alphanumeric() =>
            {
                let hashes = text[i + 1..].bytes().take_while(|&b| b == b'#').count();
                let close = format!("\"{}", "#".repeat(hashes));
                let body = i + 2 + hashes;
                i = body + text.get(body..)?.find(&close)? + close.len() - 1;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\\') => {
                i += text[i + 1..].find('\'').map_or(0, |end| end + 1);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[test]
fn test_items_are_skipped_and_what_follows_them_is_read() {
    let source = "use crate::a;\n#[cfg(test)]\nmod tests {\n use crate::b; let s = \"}\"; let c = '{';\n fn f() { r#\"}\"#; } // }\n}\npub struct Later(crate::c::C);\n#[cfg(test)]\nuse crate::d;\nfn g() -> crate::e::E {}";
    let kept = without_test_items(source);
    assert!(kept.contains("crate::a") && kept.contains("crate::c") && kept.contains("crate::e"));
    assert!(
        !kept.contains("crate::b") && !kept.contains("crate::d"),
        "{kept}"
    );
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
