//! Every key of the state table, in one place: one DynamoDB table holds all the functions'
//! state, each item's `pk` starting with its kind's prefix, so the table's whole layout is read
//! here. The pure modules and the handlers build keys only through these functions.
//!
//! | prefix | item | built by |
//! |---|---|---|
//! | `dedup#` | a claim on a delivery (task stop, service event, watchdog finding, summary, refused or mismatched configuration) | [`dedup_key`], [`claim_key`], [`summary_claim_key`], [`config_refused_key`], [`config_mismatch_key`] |
//! | `storm#` | a storm window of a (cluster, group, category) | [`storm_key`], [`service_storm_key`] |
//! | `incident#` | a service's incident | [`incident_key`] |
//! | `watch#` | the watchdog's memory of a service running short | [`watch_key`] |
//! | `muted#` | the ledger of one muting window's occurrence | [`mute_ledger_key`] |
//! | `scaler#transition#` | a claim on one alarm transition | [`transition_key`] |
//! | `scaler#service#` | a service's scaling memory | [`memory_key`] |
//! | `batch#run#` | a claim on one run of a job (or one retry of it) | [`run_key`], [`attempt_key`] |
//! | `batch#record#` | the record of one run of a job | [`record_key`] |
//! | `batch#task#` | a pointer from a task a run started to its record | [`task_pointer_key`] |
//! | `batch#expect#` | since when a job has been watched for missed runs | [`expect_key`] |

/// Claims on deliveries.
pub const DEDUP_PREFIX: &str = "dedup#";
/// Storm windows.
pub const STORM_PREFIX: &str = "storm#";
/// Incidents.
pub const INCIDENT_PREFIX: &str = "incident#";
/// The watchdog's memory.
pub const WATCH_PREFIX: &str = "watch#";
/// Muted-notification ledgers.
pub const MUTED_PREFIX: &str = "muted#";
/// Claims on alarm transitions.
pub const TRANSITION_PREFIX: &str = "scaler#transition#";
/// Scaling memories.
pub const SCALING_PREFIX: &str = "scaler#service#";
/// Claims on job runs.
pub const RUN_PREFIX: &str = "batch#run#";
/// Run records.
pub const RECORD_PREFIX: &str = "batch#record#";
/// Pointers from tasks to run records.
pub const TASK_POINTER_PREFIX: &str = "batch#task#";
/// Missed-run watches.
pub const EXPECT_PREFIX: &str = "batch#expect#";

/// The claim key of a task stop's delivery: task ARN and `detail.version` (or the event id
/// without one), which a redelivery repeats.
pub fn dedup_key(task_arn: &str, version: Option<u64>, event_id: Option<&str>) -> String {
    match (version, event_id) {
        (Some(version), _) => format!("{DEDUP_PREFIX}{task_arn}#v{version}"),
        (None, Some(id)) => format!("{DEDUP_PREFIX}{task_arn}#event-{id}"),
        (None, None) => format!("{DEDUP_PREFIX}{task_arn}"),
    }
}

/// The claim key of a delivery named by `name` (a watchdog finding, a recovery).
pub fn claim_key(name: &str) -> String {
    format!("{DEDUP_PREFIX}{name}")
}

/// The claim key of the summary of the muted ledger at `ledger_key`.
pub fn summary_claim_key(ledger_key: &str) -> String {
    format!("{DEDUP_PREFIX}{ledger_key}#summary")
}

/// The cluster as state keys name it: a member account's cluster carries the account
/// (`222233334444/shop`), so that accounts using the same cluster and service names keep their
/// incidents and storm windows apart; the function's own account (or any, when the home account
/// is not known) keeps the plain name.
pub fn keyed_cluster(cluster: &str, account: Option<&str>, home: Option<&str>) -> String {
    match (account, home) {
        (Some(account), Some(home)) if account != home && !account.is_empty() => {
            format!("{account}/{cluster}")
        }
        _ => cluster.to_owned(),
    }
}

/// The storm key of a stop.
pub fn storm_key(cluster: &str, group: &str, category: &str) -> String {
    format!("{STORM_PREFIX}{cluster}#{group}#{category}")
}

/// The storm key of a service's signals of `category`: the key its tasks' stops count under
/// (ECS names their group `service:<name>`), for service events, watchdog findings and the
/// windows a resolved incident closes.
pub fn service_storm_key(cluster: &str, service: &str, category: &str) -> String {
    storm_key(cluster, &format!("service:{service}"), category)
}

/// The key of a service's incident.
pub fn incident_key(cluster: &str, service: &str) -> String {
    format!("{INCIDENT_PREFIX}{cluster}#{service}")
}

/// The key of the watchdog's memory of a service (`cluster` as [`keyed_cluster`] names it).
pub fn watch_key(cluster: &str, service: &str) -> String {
    format!("{WATCH_PREFIX}{cluster}#{service}")
}

/// The key of the ledger of what the muting rule `index` held back in the occurrence of its
/// window that ends at `until` (epoch s).
pub fn mute_ledger_key(index: usize, until: i64) -> String {
    format!("{MUTED_PREFIX}{index}#{until}")
}

/// The claim key of one alarm transition (its [`transition_id`]).
///
/// [`transition_id`]: crate::events::alarm::AlarmTransition::transition_id
pub fn transition_key(transition_id: &str) -> String {
    format!("{TRANSITION_PREFIX}{transition_id}")
}

/// The key of a service's scaling memory.
pub fn memory_key(cluster: &str, service: &str) -> String {
    format!("{SCALING_PREFIX}{cluster}#{service}")
}

/// The claim key of a run of a job.
pub fn run_key(job: &str, run_id: &str) -> String {
    format!("{RUN_PREFIX}{job}#{run_id}")
}

/// The claim key of attempt `attempt` of a run: the first attempt is the run's own claim, each
/// retry has its own (so a redelivered tick starts it once).
pub fn attempt_key(job: &str, run_id: &str, attempt: u32) -> String {
    match attempt {
        0 | 1 => run_key(job, run_id),
        n => format!("{}#attempt{n}", run_key(job, run_id)),
    }
}

/// The key of the record of a run.
pub fn record_key(job: &str, run_id: &str) -> String {
    format!("{RECORD_PREFIX}{job}#{run_id}")
}

/// The key of the pointer from a task to its run's record.
pub fn task_pointer_key(task_arn: &str) -> String {
    format!("{TASK_POINTER_PREFIX}{task_arn}")
}

/// The key of a job's missed-run watch.
pub fn expect_key(job: &str) -> String {
    format!("{EXPECT_PREFIX}{job}")
}

/// The claim on telling a refused configuration (its versions, `name@14, …`): one notice for
/// every function and execution environment that refuses it.
pub fn config_refused_key(versions: &str) -> String {
    claim_key(&format!(
        "config#refused#{:016x}",
        crate::domain::fnv1a(&[versions])
    ))
}

/// The claim on telling that a configuration (its versions) asks for what the stack does not
/// allow (`problems`, one line each): once for every function and environment.
pub fn config_mismatch_key(versions: &str, problems: &str) -> String {
    claim_key(&format!(
        "config#mismatch#{:016x}",
        crate::domain::fnv1a(&[versions, problems])
    ))
}

/// The name under which a storm window records the number it gave the stop of `claim_key`:
/// `c` and 16 hex digits of the key's 64-bit FNV-1a hash. Short, because a window holds one per
/// stop in flight.
pub fn counted_key(claim_key: &str) -> String {
    format!("c{:016x}", crate::domain::fnv1a(&[claim_key]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_starts_with_its_kind_and_kinds_do_not_overlap() {
        let keys = [
            (dedup_key("arn:t", Some(4), Some("e")), DEDUP_PREFIX),
            (claim_key("watch#shop#api#stuck"), DEDUP_PREFIX),
            (summary_claim_key(&mute_ledger_key(0, 60)), DEDUP_PREFIX),
            (service_storm_key("shop", "api", "oom"), STORM_PREFIX),
            (incident_key("shop", "api"), INCIDENT_PREFIX),
            (watch_key("shop", "api"), WATCH_PREFIX),
            (mute_ledger_key(2, 1_800), MUTED_PREFIX),
            (transition_key("alarm@2026"), TRANSITION_PREFIX),
            (memory_key("shop", "api"), SCALING_PREFIX),
            (run_key("nightly", "2026-12-03T02:00:00Z"), RUN_PREFIX),
        ];
        let prefixes = [
            DEDUP_PREFIX,
            STORM_PREFIX,
            INCIDENT_PREFIX,
            WATCH_PREFIX,
            MUTED_PREFIX,
            TRANSITION_PREFIX,
            SCALING_PREFIX,
            RUN_PREFIX,
        ];
        for (key, prefix) in &keys {
            let matching: Vec<_> = prefixes.iter().filter(|p| key.starts_with(**p)).collect();
            assert_eq!(matching, [prefix], "{key}");
        }
    }

    #[test]
    fn keys_keep_their_layout() {
        assert_eq!(dedup_key("arn:t", Some(4), Some("e")), "dedup#arn:t#v4");
        assert_eq!(dedup_key("arn:t", None, Some("e")), "dedup#arn:t#event-e");
        assert_eq!(dedup_key("arn:t", None, None), "dedup#arn:t");
        assert_eq!(
            service_storm_key("shop", "api", "oom"),
            "storm#shop#service:api#oom"
        );
        assert_eq!(summary_claim_key("muted#1#60"), "dedup#muted#1#60#summary");
        assert_eq!(
            keyed_cluster("shop", Some("222233334444"), Some("111122223333")),
            "222233334444/shop"
        );
        assert_eq!(
            keyed_cluster("shop", Some("111122223333"), Some("111122223333")),
            "shop"
        );
        assert_eq!(counted_key("dedup#k").len(), 17);
    }
}
