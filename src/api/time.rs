//! Times as the API answers them: RFC 3339 in UTC with milliseconds, always
//! three digits (`…T08:13:36.000Z`), whichever backend stored them, so that
//! they sort as strings and read alike; and the dates it accepts.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use serde::Serializer;

/// A date people typed, read only within years 1 to 9999: what RFC 3339
/// writes and both databases store (chrono alone reads `-5000-01-01`).
pub fn within_calendar(d: NaiveDate) -> Option<NaiveDate> {
    (1..=9999).contains(&d.year()).then_some(d)
}

/// A time people sent: RFC 3339, taken to UTC, within years 1 to 9999 there
/// too (`9999-12-31T23:30:00-01:00` is in year 10000 in UTC, which SQLite,
/// storing times as text, would sort before every other date).
///
/// Rounded up to a whole microsecond: stored times are no finer, so every
/// bound compares the same, and PostgreSQL (which keeps microseconds) would
/// otherwise round `…36.050000001Z` down and count a time it is after.
pub fn utc_instant(t: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc);
    let past_micros = t.timestamp_subsec_nanos() % 1000;
    let t = match past_micros {
        0 => t,
        n => t.checked_add_signed(chrono::Duration::nanoseconds(i64::from(1000 - n)))?,
    };
    within_calendar(t.date_naive()).map(|_| t)
}

/// A time filter of the API (`createdFrom`, `to`, …): a [`utc_instant`].
pub fn instant(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, super::error::ApiError> {
    let bad = || super::error::ApiError::bad_request("must be an RFC 3339 time in years 1 to 9999").field(field);
    value.map(|t| utc_instant(t).ok_or_else(bad)).transpose()
}

pub fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

pub fn opt_millis<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => millis(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize)]
    struct Times {
        #[serde(serialize_with = "super::millis")]
        whole: chrono::DateTime<chrono::Utc>,
        #[serde(serialize_with = "super::opt_millis")]
        none: Option<chrono::DateTime<chrono::Utc>>,
    }

    #[test]
    fn a_time_finer_than_a_microsecond_is_rounded_up_to_the_next_one() {
        let t = super::utc_instant("2026-12-06T08:13:36.050000001Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-06T08:13:36.050001+00:00");
        let whole = super::utc_instant("2026-12-06T08:13:36.050001Z").unwrap();
        assert_eq!(whole.to_rfc3339(), "2026-12-06T08:13:36.050001+00:00");
    }

    #[test]
    fn a_whole_second_keeps_its_three_digits() {
        let whole = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let json = serde_json::to_string(&Times { whole, none: None }).unwrap();
        assert_eq!(json, r#"{"whole":"2027-01-15T08:00:00.000Z","none":null}"#);
    }
}
