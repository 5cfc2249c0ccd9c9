//! `batch-runner`'s own commands beside serving events: `run JOB` (a run by hand or a
//! backfill, exactly as its schedule would start it) and `history [JOB]` (the recorded runs as
//! a table or JSON lines). The binary parses the arguments; this module does the work.

use std::collections::BTreeMap;
use std::process::ExitCode;

use super::BatchRunner;
use crate::batch::history::table;
use crate::entry::{print_result, Format, Invocation};
use crate::error::{AutopilotError, Result};
use crate::events::parse_time;
use crate::events::schedule::JobRequest;

/// `NAME=VALUE` pairs of `--set`, each name once.
pub fn parameters(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(AutopilotError::Usage(format!(
                "--set {pair}: expected NAME=VALUE, e.g. --set month=2026-10"
            )));
        };
        if values.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(AutopilotError::Usage(format!(
                "--set {name} is given twice"
            )));
        }
    }
    Ok(values)
}

/// An instant as RFC 3339 or a date (`2026-11-01`, midnight UTC), in epoch seconds.
pub fn instant(text: &str, flag: &str) -> Result<i64> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    parse_time(&full, flag).map_err(|_| {
        AutopilotError::Usage(format!(
            "{flag} {text}: expected a date (2026-11-01) or an RFC 3339 time (2026-11-01T02:00:00Z)"
        ))
    })
}

/// Starts `job` for `scheduled_time` (now, to the second, when none is given) with the
/// `--set` values, and prints the outcome as one line.
pub async fn run(
    runner: &BatchRunner,
    job: &str,
    scheduled_time: Option<&str>,
    set: &[String],
    format: Format,
) -> ExitCode {
    let request = (|| {
        let at = match scheduled_time {
            Some(text) => instant(text, "--scheduled-time")?,
            None => runner.clock.now_s(),
        };
        Ok(JobRequest {
            job: job.to_owned(),
            scheduled_time: Some(crate::domain::utc_time(at)),
            scheduled_at: Some(at),
            parameters: parameters(set)?,
        })
    })();
    let result = match request {
        Ok(request) => runner.run_by_hand(&request, &Invocation::default()).await,
        Err(error) => Err(error),
    };
    exit(print_result(job, result, format))
}

/// Prints the recorded runs of `job` (every job) since `since`: a table, or one JSON line per
/// run.
pub async fn history(
    runner: &BatchRunner,
    job: Option<&str>,
    since: Option<&str>,
    json: bool,
) -> ExitCode {
    let rows = match since.map(|s| instant(s, "--since")).transpose() {
        Ok(since) => runner.history(job, since.unwrap_or(0)).await,
        Err(error) => Err(error),
    };
    match rows {
        Ok(rows) if json => {
            for row in &rows {
                println!("{}", serde_json::to_string(row).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Ok(rows) => {
            print!("{}", table(&rows));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("batch-runner history: {error}");
            ExitCode::FAILURE
        }
    }
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
