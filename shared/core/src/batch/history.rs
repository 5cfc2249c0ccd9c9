//! `batch-runner history` (pure): run records as rows — scheduled time, attempts, duration,
//! outcome, exit codes — for a table a person reads or a JSON line per run a script reads.

use serde::Serialize;

use super::record::{in_words, RunRecord};
use crate::domain::utc_time;

/// One run, as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    pub job: String,
    pub scheduled: String,
    pub run_id: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<i64>,
    pub outcome: &'static str,
    pub exit_codes: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl HistoryRow {
    pub fn of(record: &RunRecord, now: i64) -> Self {
        Self {
            job: record.job.clone(),
            scheduled: utc_time(record.scheduled_at),
            run_id: record.run_id.clone(),
            attempts: record.attempts.len() as u32,
            duration_s: record.duration_s(now),
            outcome: record.outcome.as_str(),
            exit_codes: record.exit_codes(),
            note: record.note.clone(),
        }
    }
}

/// The rows of `records`, newest scheduled time first (then by job).
pub fn rows(records: &[RunRecord], now: i64) -> Vec<HistoryRow> {
    let mut sorted: Vec<&RunRecord> = records.iter().collect();
    sorted.sort_by(|a, b| {
        b.scheduled_at
            .cmp(&a.scheduled_at)
            .then_with(|| a.job.cmp(&b.job))
    });
    sorted.into_iter().map(|r| HistoryRow::of(r, now)).collect()
}

/// The rows as an aligned text table.
pub fn table(rows: &[HistoryRow]) -> String {
    let header = [
        "SCHEDULED",
        "JOB",
        "ATTEMPTS",
        "DURATION",
        "OUTCOME",
        "EXIT CODES",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            [
                row.scheduled.clone(),
                row.job.clone(),
                row.attempts.to_string(),
                row.duration_s
                    .map_or("-".into(), |s| in_words(s.max(0) as u64)),
                row.outcome.to_owned(),
                if row.exit_codes.is_empty() {
                    row.note.clone().unwrap_or_else(|| "-".into())
                } else {
                    row.exit_codes.clone()
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(&header.map(str::to_owned));
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no runs recorded)\n");
    }
    out
}
