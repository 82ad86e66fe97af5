//! The values of `sqlite_batch.rs`'s calls, in the forms sqlx reads and
//! writes on SQLite (times as RFC 3339 text, days as `YYYY-MM-DD`), so that
//! every other path reads the rows it writes; and SQLite's errors in the
//! store's terms.

use super::StoreError;
use crate::domain::{Payment, PaymentStatus};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use rusqlite::types::Type;

/// The shared SQL's `$n` is SQLite's `?n`.
pub(super) fn sql(s: &str) -> String {
    s.replace('$', "?")
}

/// A time as sqlx writes one to SQLite.
pub(super) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

pub(super) fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A payment read with `PAYMENT_COLUMNS`, in their order.
pub(super) fn payment(r: &rusqlite::Row<'_>) -> rusqlite::Result<Payment> {
    let status: String = r.get(5)?;
    Ok(Payment {
        id: r.get(0)?,
        partner_reference_no: r.get(1)?,
        reference_no: r.get(2)?,
        amount_minor: r.get(3)?,
        currency: r.get(4)?,
        status: PaymentStatus::try_from(status).map_err(|e| bad(5, e))?,
        origin: r.get(6)?,
        qr_content: r.get(7)?,
        qr_url: r.get(8)?,
        note: r.get(9)?,
        valid_until: optional_time(r, 10)?,
        paid_at: optional_time(r, 11)?,
        refunded_minor: r.get(12)?,
        flagged: r.get(13)?,
        finpay_status: r.get(14)?,
        created_at: read_time(r, 15)?,
        updated_at: read_time(r, 16)?,
        next_check_at: optional_time(r, 17)?,
        check_attempts: r.get(18)?,
        lease_owner: r.get(19)?,
        lease_until: optional_time(r, 20)?,
    })
}

fn optional_time(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = r.get(i)?;
    text.map(|t| parse_time(&t).ok_or_else(|| bad(i, format!("{t:?} is not a time"))))
        .transpose()
}

/// A stored time, read as sqlx reads one: RFC 3339 (what every path here
/// writes), or one of SQLite's own forms (a row written by hand with
/// `datetime('now')`), UTC unless it names an offset.
fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    const FORMS: [&str; 12] = [
        "%F %T%.f",
        "%F %R",
        "%F %RZ",
        "%F %R%:z",
        "%F %T%.fZ",
        "%F %T%.f%:z",
        "%FT%R",
        "%FT%RZ",
        "%FT%R%:z",
        "%FT%T%.f",
        "%FT%T%.fZ",
        "%FT%T%.f%:z",
    ];
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Some(t.with_timezone(&Utc));
    }
    FORMS.iter().find_map(|form| match DateTime::parse_from_str(t, form) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => NaiveDateTime::parse_from_str(t, form).ok().map(|t| t.and_utc()),
    })
}

fn read_time(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    optional_time(r, i)?.ok_or(rusqlite::Error::InvalidColumnType(i, "a time".into(), Type::Null))
}

pub(super) fn bad(i: usize, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, Type::Text, e.into())
}

pub(super) fn unique_violation(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    e.sqlite_error()
        .is_some_and(|e| matches!(e.extended_code, SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY))
}

/// SQLite's errors in the store's terms, as `From<sqlx::Error>` reads sqlx's.
pub(super) fn native(e: rusqlite::Error) -> StoreError {
    if unique_violation(&e) {
        return StoreError::Conflict(e.to_string());
    }
    // The primary code is the low byte: 5 BUSY, 6 LOCKED, 10 IOERR, 14 CANTOPEN.
    match e.sqlite_error().map(|s| s.extended_code & 0xff) {
        Some(5 | 6 | 10 | 14) => StoreError::Unavailable(Box::new(e)),
        _ => StoreError::Database(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_time, time};
    use chrono::{DateTime, TimeZone, Timelike, Utc};

    #[tokio::test]
    async fn a_time_is_written_as_sqlx_writes_it_and_read_as_sqlx_reads_it() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 9, 30, 5).unwrap() + chrono::Duration::microseconds(123_456);
        for t in [at, at.with_nanosecond(0).unwrap()] {
            let by_sqlx: String = sqlx::query_scalar("SELECT ?1").bind(t).fetch_one(&pool).await.unwrap();
            assert_eq!(time(t), by_sqlx);
        }
        for text in [
            "2026-12-07T09:30:05.123456+00:00",
            "2026-12-07 09:30:05",
            "2026-12-07 16:30:05+07:00",
            "2026-12-07T09:30",
        ] {
            let by_sqlx: DateTime<Utc> = sqlx::query_scalar("SELECT ?1")
                .bind(text)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(parse_time(text), Some(by_sqlx), "{text}");
        }
        assert_eq!(parse_time("yesterday"), None);
    }
}
