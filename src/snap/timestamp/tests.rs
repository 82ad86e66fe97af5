//! Unit tests for `snap::timestamp`, kept beside it so the module stays readable.

use super::*;
use chrono::Duration;
use proptest::prelude::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn documented_forms_parse_to_the_same_instant() {
    let expected = utc("2024-04-17T05:03:38Z");
    for s in [
        "2024-04-17T12:03:38+07:00",
        "2024-04-17T12:03:38.000+07:00",
        "2024-04-17T05:03:38Z",
        "2024-04-17T05:03:38.0Z",
        "2024-04-17T05:03:38-00:00",
        "2024-04-17T05:03:38+00:00",
        "2024-04-16T22:03:38.000000000-07:00",
    ] {
        assert_eq!(parse(s).unwrap(), expected, "{s}");
    }
}

#[test]
fn millis_and_nanos_are_kept() {
    let t = parse("2024-04-17T12:03:38.123+07:00").unwrap();
    assert_eq!(t.timestamp_subsec_millis(), 123);
    let t = parse("2024-04-17T12:03:38.123456789Z").unwrap();
    assert_eq!(t.timestamp_subsec_nanos(), 123_456_789);
    assert_eq!(t.offset().local_minus_utc(), 0);
}

#[test]
fn malformed_timestamps_are_rejected() {
    for s in [
        "",
        "2024-04-17T12:03:38",
        "2024-04-17 12:03:38+07:00",
        "2024-04-17t12:03:38+07:00",
        "2024-04-17T12:03:38z",
        "2024-04-17T12:03:38+0700",
        "2024-04-17T12:03:38+07",
        "2024-04-17T12:03:38+07:00 ",
        " 2024-04-17T12:03:38+07:00",
        "2024-04-17T12:03:38+07:00Z",
        "2024-04-17T12:03:38.+07:00",
        "2024-04-17T12:03:38.1234567890Z",
        "2024-02-30T12:03:38Z",
        "2024-04-17T24:00:00Z",
        "2024-04-17T12:03:60Z",
        "2024-04-17T12:03:38+24:00",
        "24-04-17T12:03:38Z",
        "2024-4-17T12:03:38Z",
        "２０２４-04-17T12:03:38Z",
    ] {
        assert!(parse(s).is_err(), "{s:?} should be rejected");
    }
}

#[test]
fn error_message_names_the_value_and_the_expected_form() {
    let msg = parse("yesterday").unwrap_err().to_string();
    assert!(msg.contains("\"yesterday\""), "{msg}");
    assert!(msg.contains("±HH:MM"), "{msg}");
}

#[test]
fn jakarta_formatting_matches_finpay_samples() {
    let s = format_jakarta(utc("2024-04-17T05:03:38.999Z"));
    assert_eq!(s, "2024-04-17T12:03:38+07:00");
    assert_eq!(s.len(), 25);
    assert_eq!(parse(&s).unwrap(), utc("2024-04-17T05:03:38Z"));
}

#[test]
fn jakarta_day_rolls_over_at_17_utc() {
    let day = |s| jakarta_day(utc(s)).to_string();
    assert_eq!(day("2024-04-17T16:59:59Z"), "2024-04-17");
    assert_eq!(day("2024-04-17T17:00:00Z"), "2024-04-18");
}

#[test]
fn skew_within_tolerance_is_accepted_both_ways() {
    let now = utc("2024-06-07T03:03:55Z");
    let ts = parse("2024-06-07T10:03:55+07:00").unwrap();
    assert_eq!(check_skew(ts, now, 0), Ok(()));
    assert_eq!(check_skew(ts, now + Duration::seconds(300), 300), Ok(()));
    assert_eq!(check_skew(ts, now - Duration::seconds(300), 300), Ok(()));
}

#[test]
fn old_timestamp_is_too_old_with_a_readable_message() {
    let ts = parse("2024-06-07T10:03:55+07:00").unwrap();
    let err = check_skew(ts, utc("2024-06-07T03:10:47Z"), 300).unwrap_err();
    assert_eq!(
        err,
        Skew::TooOld {
            secs: 412,
            tolerance_secs: 300
        }
    );
    assert_eq!(err.to_string(), "X-TIMESTAMP is 412 s in the past (tolerance 300 s)");
}

#[test]
fn future_timestamp_is_in_future() {
    let ts = parse("2024-06-07T10:03:55.500+07:00").unwrap();
    let err = check_skew(ts, utc("2024-06-07T02:58:55Z"), 300).unwrap_err();
    assert_eq!(
        err,
        Skew::InFuture {
            secs: 301,
            tolerance_secs: 300
        }
    );
    assert!(err.to_string().contains("in the future (tolerance 300 s)"));
}

#[test]
fn huge_tolerance_does_not_overflow() {
    let ts = parse("0000-01-01T00:00:00Z").unwrap();
    assert_eq!(check_skew(ts, Utc::now(), u64::MAX), Ok(()));
    assert!(check_skew(ts, Utc::now(), 0).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn parse_never_panics_on_arbitrary_strings(s in any::<String>()) {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_near_miss_strings(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2}|.{0,3})") {
        let _ = parse(&s);
    }

    #[test]
    fn formatted_jakarta_time_round_trips(secs in 0i64..4_000_000_000) {
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        prop_assert_eq!(parse(&format_jakarta(t)).unwrap(), t);
    }
}
