//! Scheduled bounds: the cron dialect by example (fields, names, `L`, `W`, `#`, errors), the
//! daylight-saving rules, open windows and overlapping schedules; and by property, the open
//! window against a minute-by-minute search.

use proptest::prelude::*;

use super::*;

fn ts(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap().as_second()
}

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

fn schedule(cron: &str, tz: &str, duration_s: u64) -> Schedule {
    Schedule {
        name: "business-hours".into(),
        cron: Cron::parse(cron).unwrap(),
        tz: TimeZone::get(tz).unwrap(),
        duration_s,
        min: Some(4),
        max: None,
    }
}

#[test]
fn weekdays_by_name_and_number() {
    let cron = Cron::parse("cron(0 8 ? * MON-FRI *)").unwrap();
    assert!(cron.on(date("2026-12-07"))); // a Monday
    assert!(cron.on(date("2026-12-11"))); // a Friday
    assert!(!cron.on(date("2026-12-06"))); // a Sunday
    assert_eq!(cron, Cron::parse("cron(0 8 ? * 2-6 *)").unwrap());
    let times: Vec<_> = Cron::parse("cron(0/20 9,17 ? * * *)")
        .unwrap()
        .times()
        .collect();
    assert_eq!(
        times,
        [(9, 0), (9, 20), (9, 40), (17, 0), (17, 20), (17, 40)]
    );
}

#[test]
fn last_nearest_weekday_and_nth() {
    let last = Cron::parse("cron(0 0 L * ? *)").unwrap();
    assert!(last.on(date("2028-02-29")) && !last.on(date("2028-02-28")));
    // 2026-08-01 is a Saturday: 1W is Monday the 3rd (never the month before).
    let first_weekday = Cron::parse("cron(0 0 1W * ? *)").unwrap();
    assert!(first_weekday.on(date("2026-08-03")) && !first_weekday.on(date("2026-08-01")));
    // 2026-11-15 is a Sunday: 15W is Monday the 16th.
    assert!(Cron::parse("cron(0 0 15W * ? *)")
        .unwrap()
        .on(date("2026-11-16")));
    // The last Friday (6L) and the second Tuesday (3#2) of December 2026.
    assert!(Cron::parse("cron(0 0 ? * 6L *)")
        .unwrap()
        .on(date("2026-12-25")));
    assert!(!Cron::parse("cron(0 0 ? * 6L *)")
        .unwrap()
        .on(date("2026-12-18")));
    assert!(Cron::parse("cron(0 0 ? * 3#2 *)")
        .unwrap()
        .on(date("2026-12-08")));
    assert!(Cron::parse("cron(0 0 ? * 2 2027)")
        .unwrap()
        .on(date("2027-01-04")));
    assert!(!Cron::parse("cron(0 0 ? * 2 2027)")
        .unwrap()
        .on(date("2026-12-07")));
}

#[test]
fn a_malformed_expression_names_what_is_wrong() {
    for (expression, says) in [
        ("0 8 ? * MON-FRI *", "is not cron("),
        ("cron(0 8 ? * MON-FRI)", "has 5 fields"),
        ("cron(0 8 * * MON-FRI *)", "one `?`"),
        ("cron(0 8 ? * ? *)", "one `?`"),
        ("cron(60 8 ? * * *)", "minutes: `60` is not in 0–59"),
        ("cron(0 8-6 ? * * *)", "runs backwards"),
        ("cron(0 8 ? * FUNDAY *)", "day-of-week"),
        ("cron(0 8 ? * 2#6 *)", "# takes 1–5"),
        ("cron(0/0 8 ? * * *)", "not a positive number"),
    ] {
        let error = Cron::parse(expression).unwrap_err();
        assert!(error.contains(says), "{expression}: {error}");
    }
}

#[test]
fn a_start_in_a_gap_is_at_the_gaps_end_and_in_a_fold_at_its_first_occurrence() {
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z).
    let gap = start_instant(&berlin, "2026-03-29T02:30".parse().unwrap()).unwrap();
    assert_eq!(gap.as_second(), ts("2026-03-29T01:00:00Z"));
    // 2026-10-25: 02:30 happens at 00:30Z (CEST) and again at 01:30Z (CET).
    let fold = start_instant(&berlin, "2026-10-25T02:30".parse().unwrap()).unwrap();
    assert_eq!(fold.as_second(), ts("2026-10-25T00:30:00Z"));
    let every_day = schedule("cron(30 2 * * ? *)", "Europe/Berlin", 3600);
    assert_eq!(
        every_day.opened_at(ts("2026-03-29T01:10:00Z")),
        Some(ts("2026-03-29T01:00:00Z"))
    );
    // Once in the fold, not twice: at 01:40Z the window of 00:30Z has closed.
    assert_eq!(every_day.opened_at(ts("2026-10-25T01:40:00Z")), None);
}

#[test]
fn business_hours_are_open_in_their_zone_and_closed_outside() {
    let hours = schedule("cron(0 8 ? * MON-FRI *)", "Europe/Berlin", 10 * 3600);
    // Monday 2026-12-07, 12:00 in Berlin (11:00Z): open since 07:00Z.
    assert_eq!(
        hours.opened_at(ts("2026-12-07T11:00:00Z")),
        Some(ts("2026-12-07T07:00:00Z"))
    );
    assert_eq!(hours.opened_at(ts("2026-12-07T17:00:00Z")), None); // 18:00 there
    assert_eq!(hours.opened_at(ts("2026-12-06T11:00:00Z")), None); // a Sunday
    assert_eq!(hours.opened_at(ts("2026-12-07T06:59:59Z")), None);
}

#[test]
fn overlapping_schedules_take_the_highest_min_and_the_lowest_max() {
    let mut day = schedule("cron(0 8 ? * * *)", "UTC", 10 * 3600);
    day.min = Some(4);
    let mut sale = schedule("cron(0 9 ? * * *)", "UTC", 3600);
    sale.name = "sale".into();
    sale.min = Some(10);
    let mut cap = schedule("cron(0 0 ? * * *)", "UTC", 86_399);
    cap.name = "cap".into();
    (cap.min, cap.max) = (None, Some(8));
    let at = ts("2026-12-07T09:30:00Z");
    let bounds = bounds_at([&day, &sale], at);
    assert_eq!(bounds.min, Some((10, "sale".to_owned())));
    let crossed = bounds_at([&day, &sale, &cap], at);
    assert_eq!(crossed.min, Some((8, "cap".to_owned())));
    assert_eq!(crossed.max, Some((8, "cap".to_owned())));
    assert!(crossed.notes[0].contains("min lowered to 8"), "{crossed:?}");
    assert_eq!(
        bounds_at([&sale], ts("2026-12-07T10:30:00Z")),
        ScheduledBounds::default()
    );
}

#[test]
fn a_bad_schedule_names_its_field() {
    let field = |schedule: serde_json::Value| {
        let schedules: Schedules =
            serde_json::from_value(serde_json::json!({ "peak": schedule })).unwrap();
        match parse_all(&schedules) {
            Err(AutopilotError::InvalidConfig { field, .. }) => field,
            other => format!("{other:?}"),
        }
    };
    let base = serde_json::json!({"cluster": "shop", "service": "orders-worker",
        "cron": "cron(0 8 ? * MON-FRI *)", "timezone": "Europe/Berlin", "duration_s": 3600, "min": 2});
    let with = |key: &str, value: serde_json::Value| {
        let mut s = base.clone();
        s[key] = value;
        s
    };
    assert_eq!(
        field(with("cron", "cron(0 8 * * * *)".into())),
        "scaling.schedules.peak.cron"
    );
    assert_eq!(
        field(with("timezone", "Mars/Olympus".into())),
        "scaling.schedules.peak.timezone"
    );
    assert_eq!(
        field(with("duration_s", 10.into())),
        "scaling.schedules.peak.duration_s"
    );
    assert_eq!(field(with("max", 1.into())), "scaling.schedules.peak.min");
    let mut neither = base.clone();
    neither.as_object_mut().unwrap().remove("min");
    assert_eq!(field(neither), "scaling.schedules.peak.min");
    assert!(parse_all(&serde_json::from_value(serde_json::json!({"peak": base})).unwrap()).is_ok());
}

/// The window open at `now`, by trying every minute of the last `duration_s` (UTC).
fn brute_force(cron: &Cron, duration_s: u64, now: i64) -> Option<i64> {
    let mut t = now - now.rem_euclid(60);
    while t > now - duration_s as i64 {
        let local = TimeZone::UTC.to_datetime(Timestamp::from_second(t).unwrap());
        let (h, m) = (local.hour(), local.minute());
        if cron.on(local.date()) && cron.times().any(|x| x == (h, m)) {
            return Some(t);
        }
        t -= 60;
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_open_window_is_the_latest_start_within_the_duration(
        minute in 0u32..60, minute_step in 1u32..40, hour in 0u32..24, hour_step in 1u32..12,
        dow in 1u32..=7, duration_min in 1u64..3000, now in 1_700_000_000i64..1_900_000_000,
    ) {
        let expression = format!("cron({minute}/{minute_step} {hour}/{hour_step} ? * {dow}-7 *)");
        let cron = Cron::parse(&expression).unwrap();
        let schedule = Schedule {
            name: "s".into(),
            cron: cron.clone(),
            tz: TimeZone::UTC,
            duration_s: duration_min * 60,
            min: Some(1),
            max: None,
        };
        prop_assert_eq!(schedule.opened_at(now), brute_force(&cron, duration_min * 60, now), "{}", expression);
    }
}
