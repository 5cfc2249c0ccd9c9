//! The CLI for people (pure): what each delivery shows besides where it went
//! ([`Presentation`]), and `--format text`, which turns an outcome's JSON line into what a person
//! would read — the decision, the route in prose (with `--explain-route`, why each rule did or
//! did not apply) and each notification as rendered, boxed per destination.

use std::fmt::Write;

use serde_json::Value;

/// What the CLI wants to see of each delivery besides where it went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presentation {
    /// Why each rule did or did not apply (`--explain-route`).
    pub explain: bool,
    /// The rendered notification (`--format text`).
    pub render: bool,
}

/// One event's outcome (a JSON line) as text for people, ending with a blank line.
pub fn as_text(label: &str, line: &Value) -> String {
    let mut out = String::new();
    outcome(&mut out, label, line);
    out.push('\n');
    out
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn outcome(out: &mut String, label: &str, line: &Value) {
    if let Some(error) = line.get("error") {
        let kind = text(error, "error_type").unwrap_or("Error");
        let message = text(error, "message").unwrap_or_default();
        let _ = writeln!(out, "── {label}: failed ({kind}): {message}");
        return;
    }
    if let Some(results) = line.get("results").and_then(Value::as_array) {
        let _ = writeln!(out, "── {label}: tick, {} finding(s)", results.len());
        notes(out, line);
        for (i, result) in results.iter().enumerate() {
            outcome(out, &format!("{label} finding {i}"), result);
        }
        return;
    }
    let verdict = text(line, "decision").or_else(|| text(line, "action"));
    let about = line
        .get("diagnosis")
        .and_then(|d| Some(format!("{}: {}", text(d, "category")?, text(d, "title")?)))
        .or_else(|| text(line, "reason").map(str::to_owned));
    let _ = writeln!(
        out,
        "── {label}: {}{}",
        verdict.unwrap_or("done"),
        about.map(|a| format!(" · {a}")).unwrap_or_default()
    );
    if let Some(route) = line.get("route") {
        self::route(out, route);
    } else if verdict.is_some_and(|v| v == "silent" || v == "ignored") {
        let _ = writeln!(
            out,
            "   route: none ({} decisions are never routed)",
            verdict.unwrap_or_default()
        );
    } else if verdict.is_some_and(|v| v != "duplicate" && v != "folded") {
        let _ = writeln!(out, "   route: none (nothing to tell)");
    }
    notes(out, line);
}

fn route(out: &mut String, route: &Value) {
    let by = text(route, "by").unwrap_or("default");
    let to: Vec<&str> = route
        .get("to")
        .and_then(Value::as_array)
        .map(|to| to.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if route.get("muted").and_then(Value::as_bool) == Some(true) {
        let _ = writeln!(
            out,
            "   route: muted by {by}: sent nowhere, counted in the incident"
        );
    } else {
        let _ = writeln!(out, "   route: {by} → {}", to.join(", "));
    }
    if let Some(why) = route.get("why").and_then(Value::as_array) {
        for (i, reason) in why.iter().filter_map(Value::as_str).enumerate() {
            let lead = if i == 0 { "   why:" } else { "       " };
            let _ = writeln!(out, "{lead} {reason}");
        }
    }
    if let Some(rendered) = text(route, "rendered") {
        let to = if to.is_empty() {
            "nobody (muted)".to_owned()
        } else {
            to.join(", ")
        };
        let _ = writeln!(out, "   ┌─ to {to}");
        for line in rendered.lines() {
            let _ = writeln!(out, "   │ {line}");
        }
        let _ = writeln!(out, "   └─");
    }
}

fn notes(out: &mut String, line: &Value) {
    for note in line
        .get("notes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let _ = writeln!(out, "   note: {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_explained_route_reads_as_prose_and_boxes_each_destination() {
        let line = json!({
            "decision": "notify",
            "diagnosis": {"category": "oom", "title": "killed for memory"},
            "route": {"by": "rule 1 (orders oom)", "to": ["arn:aws:sns:us-east-1:111122223333:payments", "default"],
                      "why": ["rule 0: no (category oom is not one of rollback)", "rule 1 (orders oom): matches (category oom)"],
                      "rendered": "[CRITICAL] shop/orders-api: killed for memory\n\nbody"},
            "notes": ["dry-run: not sent"]
        });
        let text = as_text("oom.json", &line);
        assert_eq!(
            text,
            "── oom.json: notify · oom: killed for memory\n\
             \x20  route: rule 1 (orders oom) → arn:aws:sns:us-east-1:111122223333:payments, default\n\
             \x20  why: rule 0: no (category oom is not one of rollback)\n\
             \x20       rule 1 (orders oom): matches (category oom)\n\
             \x20  ┌─ to arn:aws:sns:us-east-1:111122223333:payments, default\n\
             \x20  │ [CRITICAL] shop/orders-api: killed for memory\n\
             \x20  │ \n\
             \x20  │ body\n\
             \x20  └─\n\
             \x20  note: dry-run: not sent\n\n"
        );
    }

    #[test]
    fn muted_silent_and_failed_lines() {
        let muted = json!({"decision": "muted", "route": {"by": "rule 0 (maintenance)", "to": [], "muted": true}});
        assert!(as_text("a", &muted).contains("muted by rule 0 (maintenance): sent nowhere"));
        let silent = json!({"decision": "silent", "diagnosis": {"category": "completed", "title": "exited 0"}});
        assert!(as_text("b", &silent).contains("route: none (silent decisions are never routed)"));
        let started = json!({"action": "started", "reason": "started 2 of 2 task(s)"});
        assert!(as_text("d", &started).contains("route: none (nothing to tell)"));
        let failed = json!({"error": {"error_type": "InvalidEvent", "message": "invalid event at `detail`: missing"}});
        assert_eq!(
            as_text("c", &failed),
            "── c: failed (InvalidEvent): invalid event at `detail`: missing\n\n"
        );
    }
}
