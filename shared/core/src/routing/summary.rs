//! The notice that sums up what a muting window held back, sent once the window's occurrence
//! has ended (pure): how many notifications of which categories, about which services.

use crate::domain::Severity;
use crate::domain::Source;
use crate::notify::{Notice, NoticeCategory, NoticeKind, Section};
use crate::state::MutedLedger;

/// The summary of `ledger`, held back by the muting rule `rule` in the occurrence of its window
/// that ended at `ended` (RFC 3339).
pub fn muted_summary_notice(rule: &str, ended: &str, ledger: &MutedLedger) -> Notice {
    let total: u64 = ledger.counts.values().sum();
    let mut counts: Vec<(&String, &u64)> = ledger.counts.iter().collect();
    counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let counts_text: Vec<String> = counts.iter().map(|(c, n)| format!("{n} {c}")).collect();
    let counts_text = counts_text.join(", ");
    // One service (or cluster) throughout: the summary is about it, so its routes apply.
    let (cluster, service) = match ledger.about.as_slice() {
        [one] => match one.split_once('/') {
            Some((cluster, service)) => (Some(cluster.to_owned()), Some(service.to_owned())),
            None => (Some(one.clone()), None),
        },
        _ => (None, None),
    };
    Notice {
        job: None,
        source: Source::Triage,
        kind: NoticeKind::MutedSummary,
        severity: Severity::Info,
        category: NoticeCategory::MutedSummary,
        title: format!("maintenance window ended: {total} notification(s) were muted ({counts_text})"),
        summary: format!(
            "While {rule} muted notifications (until {ended}), it held back {total} notification(s): {counts_text}. None of them was sent; the services' incidents count them and their resolutions say so."
        ),
        region: None,
        cluster,
        service,
        facts: vec![
            ("Muted by".into(), rule.to_owned()),
            ("Window ended".into(), ended.to_owned()),
            ("Held back".into(), counts_text.clone()),
        ],
        sections: vec![Section {
            heading: "About".into(),
            lines: ledger.about.clone(),
        }],
        log_heading: None,
        log_tail: Vec::new(),
        links: Vec::new(),
        details: serde_json::json!({"rule": rule, "ended": ended, "counts": ledger.counts, "about": ledger.about}),
        thread_id: format!("muted-summary/{rule}"),
        incident: None,
    }
}
