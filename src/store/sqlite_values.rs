//! The values of `sqlite_batch.rs`'s calls, in the forms sqlx reads and
//! writes on SQLite (times as RFC 3339 text, days as `YYYY-MM-DD`), so that
//! every other path reads the rows it writes; and SQLite's errors in the
//! store's terms.

use super::StoreError;
use crate::domain::{Payment, PaymentStatus};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
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
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| bad(i, e))
    })
    .transpose()
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
