//! Routing rules and their windows (`routing`, `routing::window`): validation naming the
//! path, rule order, `min_severity`, tags, `route_by_tag`, and windows across DST changes in
//! Europe/Berlin and America/New_York, midnight crossings and absolute ranges (properties).

use std::collections::BTreeMap;

use autopilot::domain::Severity;
use autopilot::routing::window::{Window, WindowSpec};
use autopilot::routing::{
    DecidedBy, Destination, RouteByTagSpec, RouteSpec, Router, Source, Subject,
};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

const PAYMENTS: &str = "arn:aws:sns:eu-west-1:111122223333:payments";
const SEARCH: &str = "arn:aws:sns:eu-west-1:111122223333:search";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn subject<'a>(service: &'a str, category: &'a str, severity: Severity) -> Subject<'a> {
    Subject {
        source: Source::Triage,
        cluster: Some("shop"),
        service: Some(service),
        job: None,
        category,
        severity,
        at: at("2026-12-02T10:00:00Z"),
        tags: None,
    }
}

fn rules(json: serde_json::Value) -> Vec<RouteSpec> {
    serde_json::from_value(json).unwrap()
}

fn router(json: serde_json::Value) -> Router {
    Router::new(&rules(json), None, &["platform-slack"]).unwrap()
}

fn refused(json: serde_json::Value) -> (String, String) {
    match Router::new(&rules(json), None, &["platform-slack"]) {
        Ok(_) => panic!("accepted"),
        Err(autopilot::error::AutopilotError::InvalidConfig { field, problem }) => (field, problem),
        Err(other) => panic!("{other}"),
    }
}

fn weekly(days: &[&str], from: &str, to: &str, tz: &str) -> Window {
    Window::from_spec(&WindowSpec {
        days: Some(days.iter().map(|d| d.to_string()).collect()),
        from: Some(from.into()),
        to: Some(to.into()),
        tz: Some(tz.into()),
        ..WindowSpec::default()
    })
    .unwrap()
}

/// Minutes of the UTC range [from, to) the window holds.
fn minutes_inside(window: &Window, from: &str, to: &str) -> i64 {
    let (mut t, end) = (at(from), at(to));
    let mut minutes = 0;
    while t < end {
        if window.contains(t) {
            minutes += 1;
        }
        t += SignedDuration::from_mins(1);
    }
    minutes
}

#[test]
fn the_first_matching_rule_decides() {
    let router = router(serde_json::json!([
        {"name": "payments oom", "service": "payments-*", "category": ["oom"], "topic": PAYMENTS},
        {"service": "payments-*", "webhook": "platform-slack", "also_default": true},
        {"cluster": "shop", "topic": SEARCH},
    ]));
    let oom = router.route(&subject("payments-api", "oom", Severity::Critical));
    assert_eq!(
        oom.decided_by,
        DecidedBy::Rule {
            index: 0,
            name: Some("payments oom".into())
        }
    );
    assert_eq!(oom.destinations, vec![Destination::Topic(PAYMENTS.into())]);
    let exit = router.route(&subject("payments-api", "app-exit", Severity::Warning));
    assert_eq!(
        exit.destinations,
        vec![
            Destination::Webhook("platform-slack".into()),
            Destination::DefaultTopic
        ]
    );
    let other = router.route(&subject("orders-api", "oom", Severity::Critical));
    assert_eq!(other.destinations, vec![Destination::Topic(SEARCH.into())]);
    let mut elsewhere = subject("orders-api", "oom", Severity::Critical);
    elsewhere.cluster = Some("batch");
    let fallback = router.route(&elsewhere);
    assert_eq!(fallback.decided_by, DecidedBy::Default);
    assert_eq!(fallback.destinations, vec![Destination::DefaultTopic]);
}

#[test]
fn a_rule_naming_a_field_the_notice_lacks_does_not_match() {
    let router = router(serde_json::json!([{"job": "nightly-*", "topic": PAYMENTS}]));
    let route = router.route(&subject("nightly-report", "app-exit", Severity::Warning));
    assert_eq!(route.decided_by, DecidedBy::Default);
    let (_, reasons) = router.explain(&subject("nightly-report", "app-exit", Severity::Warning));
    assert_eq!(reasons[0], "rule 0: no (the notice has no job)");
}

#[test]
fn min_severity_is_inclusive_and_compares_before_the_rules_own_severity() {
    let router = router(serde_json::json!([
        {"min_severity": "warning", "severity": "info", "topic": PAYMENTS},
    ]));
    let warning = router.route(&subject("a", "oom", Severity::Warning));
    assert_eq!(
        warning.destinations,
        vec![Destination::Topic(PAYMENTS.into())]
    );
    assert_eq!(
        warning.severity,
        Severity::Info,
        "the rule's override applies"
    );
    let info = router.route(&subject("a", "oom", Severity::Info));
    assert_eq!(info.decided_by, DecidedBy::Default);
    assert_eq!(info.severity, Severity::Info);
}

#[test]
fn a_mute_rule_delivers_nowhere_and_says_so() {
    let router = router(serde_json::json!([
        {"name": "orders maintenance", "service": "orders-*", "mute": true,
         "windows": [{"start": "2026-12-02T09:00:00Z", "end": "2026-12-02T11:00:00Z"}]},
    ]));
    let inside = router.route(&subject("orders-api", "oom", Severity::Critical));
    assert!(inside.muted);
    assert!(inside.destinations.is_empty());
    let mut later = subject("orders-api", "oom", Severity::Critical);
    later.at = at("2026-12-02T11:00:00Z");
    let after = router.route(&later);
    assert!(!after.muted, "end is excluded");
    let (_, reasons) = router.explain(&later);
    assert!(reasons[0].contains("outside its windows"), "{reasons:?}");
}

#[test]
fn tags_and_route_by_tag() {
    let by_tag = RouteByTagSpec {
        tag: "team".into(),
        topics: BTreeMap::from([("payments".into(), PAYMENTS.into())]),
    };
    let routes = rules(serde_json::json!([
        {"tags": {"team": "search"}, "topic": SEARCH},
    ]));
    let router = Router::new(&routes, Some(&by_tag), &[]).unwrap();
    assert!(router.uses_tags());
    assert_eq!(router.topics(), vec![PAYMENTS, SEARCH]);
    let tagged = |team: &str| BTreeMap::from([("team".to_owned(), team.to_owned())]);
    let (search, payments, other) = (tagged("search"), tagged("payments"), tagged("growth"));
    let mut s = subject("api", "oom", Severity::Critical);
    s.tags = Some(&search);
    assert_eq!(
        router.route(&s).destinations,
        vec![Destination::Topic(SEARCH.into())]
    );
    s.tags = Some(&payments);
    let by_payments = router.route(&s);
    assert_eq!(
        by_payments.destinations,
        vec![Destination::Topic(PAYMENTS.into())]
    );
    assert_eq!(
        by_payments.decided_by,
        DecidedBy::Tag {
            tag: "team".into(),
            value: "payments".into()
        }
    );
    s.tags = Some(&other);
    assert_eq!(
        router.route(&s).destinations,
        vec![Destination::DefaultTopic],
        "an unlisted value goes to the default"
    );
    s.tags = None;
    assert_eq!(
        router.route(&s).destinations,
        vec![Destination::DefaultTopic]
    );
    assert!(!router_without_tags().uses_tags());
}

fn router_without_tags() -> Router {
    router(serde_json::json!([{"service": "a", "topic": PAYMENTS}]))
}

#[test]
fn bad_rules_are_refused_naming_the_path() {
    let cases = [
        (
            serde_json::json!([{"service": "orders-[", "topic": PAYMENTS}]),
            "notify.routes[0].service",
            "not a glob",
        ),
        (
            serde_json::json!([{"service": "arn:aws:ecs:x", "topic": PAYMENTS}]),
            "notify.routes[0].service",
            "never match",
        ),
        (
            serde_json::json!([{"service": "a", "topic": PAYMENTS}, {"category": ["oom", "ooms"], "mute": true}]),
            "notify.routes[1].category[1]",
            "unknown category `ooms`",
        ),
        (
            serde_json::json!([{"windows": [{"days": ["mon"], "from": "22:00", "to": "06:00", "tz": "Mars/Olympus"}], "mute": true}]),
            "notify.routes[0].windows[0].tz",
            "not an IANA time zone",
        ),
        (
            serde_json::json!([{"windows": [{"days": ["mon"], "from": "22:00", "to": "22:00"}], "mute": true}]),
            "notify.routes[0].windows[0].to",
            "equals from",
        ),
        (
            serde_json::json!([{"windows": [{"days": ["someday"], "from": "22:00", "to": "23:00"}], "mute": true}]),
            "notify.routes[0].windows[0].days",
            "not a day",
        ),
        (
            serde_json::json!([{"windows": [{"days": ["mon"], "from": "25:00", "to": "23:00"}], "mute": true}]),
            "notify.routes[0].windows[0].from",
            "not a time",
        ),
        (
            serde_json::json!([{"windows": [{"days": ["mon"], "from": "9:00", "to": "23:00"}], "mute": true}]),
            "notify.routes[0].windows[0].from",
            "not a time",
        ),
        (
            serde_json::json!([{"windows": [{"days": ["mon"], "from": "09:00", "to": "09:60"}], "mute": true}]),
            "notify.routes[0].windows[0].to",
            "not a time",
        ),
        (
            serde_json::json!([{"windows": [{"days": ["mon"], "from": "09:00:00", "to": "10:00"}], "mute": true}]),
            "notify.routes[0].windows[0].from",
            "not a time",
        ),
        (
            serde_json::json!([{"windows": [{"days": ["mon"], "from": "0900", "to": "10:00"}], "mute": true}]),
            "notify.routes[0].windows[0].from",
            "not a time",
        ),
        (
            serde_json::json!([{"windows": [{"start": "2026-12-24", "end": "2026-12-25T00:00:00Z"}], "mute": true}]),
            "notify.routes[0].windows[0].start",
            "RFC 3339",
        ),
        (
            serde_json::json!([{"windows": [{"start": "2026-12-25T00:00:00Z", "end": "2026-12-24T00:00:00Z"}], "mute": true}]),
            "notify.routes[0].windows[0].end",
            "not after",
        ),
        (
            serde_json::json!([{"windows": [{"days": ["mon"], "start": "2026-12-25T00:00:00Z"}], "mute": true}]),
            "notify.routes[0].windows[0]",
            "not both",
        ),
        (
            serde_json::json!([{"service": "a", "webhook": "teams"}]),
            "notify.routes[0].webhook",
            "names no destination",
        ),
        (
            serde_json::json!([{"service": "a", "topic": "payments"}]),
            "notify.routes[0].topic",
            "not an SNS topic ARN",
        ),
        (
            serde_json::json!([{"service": "a", "mute": true, "topic": PAYMENTS}]),
            "notify.routes[0].mute",
            "delivers nowhere",
        ),
        (
            serde_json::json!([{"service": "a"}]),
            "notify.routes[0]",
            "does nothing",
        ),
        (
            serde_json::json!([{"topic": PAYMENTS}, {"service": "a", "mute": true}]),
            "notify.routes[1]",
            "never applies",
        ),
    ];
    for (json, field, fragment) in cases {
        let (named, problem) = refused(json.clone());
        assert_eq!(named, field, "{json}: {problem}");
        assert!(problem.contains(fragment), "{json}: {problem}");
    }
}

#[test]
fn dst_changes_shorten_and_lengthen_wall_clock_windows() {
    // Sundays 01:00–04:00 local: two real hours on the spring-forward day, four on the
    // fall-back day, three otherwise.
    let berlin = weekly(&["sun"], "01:00", "04:00", "Europe/Berlin");
    let new_york = weekly(&["sun"], "01:00", "04:00", "America/New_York");
    // A window wholly inside the skipped hour never opens that day.
    let gap = weekly(&["sun"], "02:00", "03:00", "Europe/Berlin");
    for (window, from, to, minutes) in [
        (&berlin, "2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z", 120),
        (&berlin, "2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z", 240),
        (&berlin, "2026-11-28T12:00:00Z", "2026-11-29T12:00:00Z", 180),
        (
            &new_york,
            "2026-03-08T00:00:00Z",
            "2026-03-09T00:00:00Z",
            120,
        ),
        (
            &new_york,
            "2026-11-01T00:00:00Z",
            "2026-11-02T00:00:00Z",
            240,
        ),
        (&gap, "2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z", 0),
        (&gap, "2026-04-04T12:00:00Z", "2026-04-05T12:00:00Z", 60),
    ] {
        assert_eq!(
            minutes_inside(window, from, to),
            minutes,
            "{window:?} {from}"
        );
    }
}

#[test]
fn a_muted_occurrence_ends_on_the_wall_clock_across_dst() {
    // Sundays 01:00–04:00 in Berlin: on the fall-back Sunday the 04:00 end is 03:00 UTC (CET).
    let berlin = weekly(&["sun"], "01:00", "04:00", "Europe/Berlin");
    assert_eq!(
        berlin.end_of_occurrence(at("2026-10-25T00:30:00Z")),
        Some(at("2026-10-25T03:00:00Z"))
    );
    // Fridays 22:00 to 06:00 in New York: the Friday night occurrence ends Saturday 06:00.
    let night = weekly(&["fri"], "22:00", "06:00", "America/New_York");
    assert_eq!(
        night.end_of_occurrence(at("2026-12-05T03:00:00Z")),
        Some(at("2026-12-05T11:00:00Z"))
    );
    assert_eq!(
        night.last_end_at_or_before(at("2026-12-09T00:00:00Z")),
        Some(at("2026-12-05T11:00:00Z"))
    );
    assert_eq!(night.end_of_occurrence(at("2026-12-05T12:00:00Z")), None);
}

#[test]
fn a_window_crossing_midnight_belongs_to_the_day_it_opens() {
    // Fridays 22:00 to 06:00 in New York: Friday night into Saturday morning, not Thursday night.
    let window = weekly(&["fri"], "22:00", "06:00", "America/New_York");
    assert!(
        window.contains(at("2026-12-05T03:00:00Z")),
        "Friday 22:00 local"
    );
    assert!(
        window.contains(at("2026-12-05T10:59:00Z")),
        "Saturday 05:59 local"
    );
    assert!(
        !window.contains(at("2026-12-05T11:00:00Z")),
        "Saturday 06:00 local: closed"
    );
    assert!(
        !window.contains(at("2026-12-04T10:00:00Z")),
        "Friday 05:00 local: Thursday's night"
    );
    assert!(
        !window.contains(at("2026-12-05T02:59:00Z")),
        "Friday 21:59 local"
    );
}

fn zones() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
    ])
}

fn instants() -> impl Strategy<Value = Timestamp> {
    // 2020-01-01 .. 2032-01-01
    (1_577_836_800i64..1_956_528_000).prop_map(|s| Timestamp::from_second(s).unwrap())
}

fn hhmm() -> impl Strategy<Value = String> {
    (0u8..24, 0u8..60).prop_map(|(h, m)| format!("{h:02}:{m:02}"))
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

proptest! {
    #[test]
    fn absolute_windows_include_start_and_exclude_end(start in instants(), length in 1i64..10_000_000, probe in -20_000_000i64..20_000_000) {
        let end = start + SignedDuration::from_secs(length);
        let window = Window::from_spec(&WindowSpec {
            start: Some(start.to_string()),
            end: Some(end.to_string()),
            ..WindowSpec::default()
        }).unwrap();
        let t = start + SignedDuration::from_secs(probe);
        prop_assert_eq!(window.contains(t), start <= t && t < end);
        prop_assert!(window.contains(start));
        prop_assert!(!window.contains(end));
    }

    /// Every day, `from`→`to` and `to`→`from` split the wall clock: exactly one holds any instant,
    /// whichever of them crosses midnight and across any DST change.
    #[test]
    fn a_daily_window_and_its_complement_split_every_instant(zone in zones(), from in hhmm(), to in hhmm(), t in instants()) {
        prop_assume!(from != to);
        let window = weekly(&DAYS, &from, &to, zone);
        let complement = weekly(&DAYS, &to, &from, zone);
        prop_assert_ne!(window.contains(t), complement.contains(t));
    }

    /// A weekly window holds an instant iff the window of each of its days alone holds it.
    #[test]
    fn a_weekly_window_is_the_union_of_its_days(zone in zones(), days in prop::sample::subsequence(DAYS.to_vec(), 1..=7), from in hhmm(), to in hhmm(), t in instants()) {
        prop_assume!(from != to);
        let window = weekly(&days, &from, &to, zone);
        let any_day = days.iter().any(|day| weekly(&[day], &from, &to, zone).contains(t));
        prop_assert_eq!(window.contains(t), any_day);
    }

    /// Without DST, a weekly window repeats exactly every 7 days.
    #[test]
    fn without_dst_a_weekly_window_repeats_every_week(zone in prop::sample::select(vec!["UTC", "Asia/Kolkata"]), day in prop::sample::select(DAYS.to_vec()), from in hhmm(), to in hhmm(), t in instants(), weeks in -50i64..50) {
        prop_assume!(from != to);
        let window = weekly(&[day], &from, &to, zone);
        let shifted = t + SignedDuration::from_hours(24 * 7 * weeks);
        prop_assert_eq!(window.contains(t), window.contains(shifted));
    }

    /// The occurrence holding an instant ends after it, when the window no longer holds that
    /// occurrence's last second; the latest end at or before that end is the end itself, and no
    /// end ever lies after the instant asked about. Without DST the end is also just outside.
    #[test]
    fn an_occurrence_ends_after_its_instants_and_is_the_latest_end_then(zone in zones(), days in prop::sample::subsequence(DAYS.to_vec(), 1..=7), from in hhmm(), to in hhmm(), t in instants()) {
        prop_assume!(from != to);
        let window = weekly(&days, &from, &to, zone);
        if let Some(end) = window.last_end_at_or_before(t) {
            prop_assert!(end <= t);
        }
        let Some(end) = window.end_of_occurrence(t) else {
            prop_assert!(!window.contains(t));
            return Ok(());
        };
        prop_assert!(window.contains(t));
        prop_assert!(end > t, "{end} after {t}");
        prop_assert!(end <= t + SignedDuration::from_hours(26), "an occurrence is under a day");
        prop_assert_eq!(window.last_end_at_or_before(end), Some(end));
        if zone == "UTC" || zone == "Asia/Kolkata" {
            prop_assert!(!window.contains(end), "{end} closes it");
            prop_assert!(window.contains(end - SignedDuration::from_secs(1)));
        }
    }

    /// Rules the notice does not match may be added before the deciding rule, and any rules
    /// after it, without changing where the notice goes.
    #[test]
    fn rules_after_the_deciding_one_and_unmatched_ones_before_it_change_nothing(
        before in prop::collection::vec(prop::sample::select(vec!["orders-*", "search-api", "batch-?"]), 0..4),
        after in prop::collection::vec(prop::sample::select(vec![PAYMENTS, SEARCH]), 0..4),
        severity in prop::sample::select(vec![Severity::Info, Severity::Warning, Severity::Critical]),
    ) {
        let deciding = serde_json::json!({"service": "payments-*", "topic": PAYMENTS, "also_default": true});
        let mut specs: Vec<serde_json::Value> = before.iter().map(|s| serde_json::json!({"service": s, "topic": SEARCH})).collect();
        specs.push(deciding.clone());
        specs.extend(after.iter().map(|t| serde_json::json!({"cluster": "shop", "topic": t})));
        let router = router(serde_json::Value::Array(specs));
        let alone = router_of(deciding);
        let notice = subject("payments-api", "oom", severity);
        let route = router.route(&notice);
        prop_assert_eq!(&route, &router.explain(&notice).0, "route and explain agree");
        prop_assert_eq!(&route.destinations, &alone.route(&notice).destinations);
        prop_assert_eq!(route.decided_by, DecidedBy::Rule { index: before.len(), name: None });
    }

    /// `min_severity` is inclusive: a rule with it matches exactly the notices at or above it.
    #[test]
    fn min_severity_matches_at_or_above(min in prop::sample::select(vec!["info", "warning", "critical"]), severity in prop::sample::select(vec![Severity::Info, Severity::Warning, Severity::Critical])) {
        let router = router(serde_json::json!([{"min_severity": min, "topic": PAYMENTS}]));
        let threshold: Severity = serde_json::from_value(serde_json::json!(min)).unwrap();
        let route = router.route(&subject("a", "oom", severity));
        prop_assert_eq!(route.decided_by != DecidedBy::Default, severity >= threshold);
    }
}

fn router_of(rule: serde_json::Value) -> Router {
    router(serde_json::Value::Array(vec![rule]))
}
