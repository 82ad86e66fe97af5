//! SQLite stores a batch of notifications with the reference executor
//! (`item_by_item.rs`), its statements run as plain calls on the write
//! connection's handle, on the thread that stores the batch.
//!
//! Through sqlx, every statement is a round trip to the thread sqlx keeps
//! for the connection: two thread wake-ups, and between statements the
//! writer's task waits for its turn on the runtime behind the requests. A
//! batch of 64 notifications made about 450 of them, and they, not SQLite's
//! work on the rows, bounded the SQLite figure (`docs/performance.md`). Here
//! the batch makes none: sqlx lends the connection for the batch
//! (`lock_handle`), so it still takes every write in turn, and keeps its page
//! cache and its settings (foreign keys, busy timeout).
//!
//! The statements are those of `sql_effect.rs` and `sql_outbox.rs`, and
//! values are written as sqlx writes them (`sqlite_values.rs`), so the rows
//! are the ones every other path reads and writes.

use super::sql_effect::{
    insert_entries_sql, payments_named_sql, stored_hashes_sql, INSERT_LEARNT_PAYMENT, INSERT_NOTIFICATION,
    LEARN_REFERENCE, UPDATE_JUDGED_PAYMENT,
};
use super::sql_outbox::{fan_out_sql, insert_event_sql, numbered_events, LAST_SEQUENCE};
use super::sqlite_values::{bad, day, native, payment, sql, time, unique_violation};
use super::{sqlite::PAYMENT_COLUMNS, InboundNotification, IngestOutcome, Result, SqliteStore, StoreError, StoredKey};
use crate::domain::{Cause, Effect, EventType, Observation, Payment};
use crate::store::item_by_item::{self, ItemWrites};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params_from_iter, Connection, OptionalExtension, ToSql};
use std::collections::HashMap;
use std::sync::LazyLock;

impl SqliteStore {
    /// A batch stored item by item, in one transaction, on the write connection.
    pub(crate) async fn ingest_on_handle(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>> {
        let mut conn = self.writes().acquire().await?;
        let mut locked = conn.lock_handle().await?;
        let handle = locked.as_raw_handle();
        let (outcomes, closed) = blocking(|| {
            // SAFETY: sqlx runs nothing on the connection while `locked` lives,
            // which is past this call; `from_handle` never closes the handle.
            let db = unsafe { Connection::from_handle(handle.as_ptr()) }.map_err(native)?;
            let mut writes = SqliteItemWrites { db };
            let outcomes = futures::executor::block_on(item_by_item::ingest(&mut writes, batch));
            Ok::<_, StoreError>((outcomes, writes.close_transaction()))
        })?;
        drop(locked);
        if !closed {
            // A transaction sqlx does not know of would take in every later write.
            conn.close_on_drop();
        }
        outcomes
    }
}

/// Runs `f`, which waits on the database file (a commit waits for `fsync`),
/// without holding up the runtime's other tasks. A single-threaded runtime
/// (tests, tools) has no other thread to hand them to and simply waits.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The fixed statements in SQLite's terms, written once: each runs for
/// every notification, and the cache of prepared statements is keyed by text.
struct Statements {
    payments_named: String,
    insert_learnt_payment: String,
    learn_reference: String,
    update_judged_payment: String,
    insert_notification: String,
    last_sequence: String,
    insert_event: String,
    fan_out: String,
}

static STATEMENTS: LazyLock<Statements> = LazyLock::new(|| Statements {
    payments_named: sql(&payments_named_sql(PAYMENT_COLUMNS, "")),
    insert_learnt_payment: sql(INSERT_LEARNT_PAYMENT),
    learn_reference: sql(LEARN_REFERENCE),
    update_judged_payment: sql(UPDATE_JUDGED_PAYMENT),
    insert_notification: sql(INSERT_NOTIFICATION),
    last_sequence: sql(LAST_SEQUENCE),
    insert_event: sql(&insert_event_sql((SqliteStore::FEED_COLUMN, SqliteStore::FEED_VALUE))),
    fan_out: sql(&fan_out_sql(SqliteStore::ENDPOINT_KEY_SHARE)),
});

/// The statements: plain calls, so every future the executor awaits is
/// ready at once and the batch runs to its end in one poll.
struct SqliteItemWrites {
    db: Connection,
}

impl SqliteItemWrites {
    /// Rolls back a transaction left open (a statement failed, or a panic)
    /// before the connection goes back to sqlx; false if one is still open.
    fn close_transaction(&self) -> bool {
        if !self.db.is_autocommit() {
            let _ = self.db.execute_batch("ROLLBACK");
        }
        self.db.is_autocommit()
    }
}

impl Drop for SqliteItemWrites {
    fn drop(&mut self) {
        self.close_transaction();
    }
}

impl ItemWrites for SqliteItemWrites {
    async fn begin(&mut self) -> Result<()> {
        // IMMEDIATE, as every write transaction here (`SqliteStore::begin`).
        self.db.execute_batch("BEGIN IMMEDIATE").map_err(native)
    }

    async fn commit(&mut self) -> Result<()> {
        self.db.execute_batch("COMMIT").map_err(native)
    }

    async fn rollback(&mut self) -> Result<()> {
        self.db.execute_batch("ROLLBACK").map_err(native)
    }

    async fn stored_hashes(&mut self, batch: &[InboundNotification]) -> Result<HashMap<StoredKey, Vec<u8>>> {
        let days: Vec<String> = batch.iter().map(|n| day(n.jakarta_day)).collect();
        let keys = batch
            .iter()
            .zip(&days)
            .flat_map(|(n, d)| [&n.partner_id as &dyn ToSql, &n.external_id, d]);
        // Statements of every size: not kept prepared.
        let mut stmt = self.db.prepare(&sql(&stored_hashes_sql(batch.len()))).map_err(native)?;
        let rows = stmt.query_map(params_from_iter(keys), |r| {
            let day = NaiveDate::parse_from_str(&r.get::<_, String>(2)?, "%Y-%m-%d").map_err(|e| bad(2, e))?;
            Ok(((r.get(0)?, r.get(1)?, day), r.get(3)?))
        });
        rows.and_then(|rows| rows.collect()).map_err(native)
    }

    async fn payments_named(&mut self, obs: &Observation) -> Result<Vec<Payment>> {
        let mut stmt = self.db.prepare_cached(&STATEMENTS.payments_named).map_err(native)?;
        let rows = stmt.query_map(
            (
                obs.original_partner_reference_no.as_deref(),
                obs.original_reference_no.as_deref(),
            ),
            payment,
        );
        rows.and_then(|rows| rows.collect()).map_err(native)
    }

    async fn write_payment(&mut self, e: &Effect, judged_on: Option<&Payment>) -> Result<()> {
        let p = &e.payment;
        if e.created() {
            let mut stmt = self
                .db
                .prepare_cached(&STATEMENTS.insert_learnt_payment)
                .map_err(native)?;
            let inserted = stmt
                .execute(rusqlite::params![
                    p.id,
                    p.partner_reference_no,
                    p.reference_no,
                    p.amount_minor,
                    p.currency,
                    p.status.as_str(),
                    p.origin,
                    p.paid_at.map(time),
                    p.flagged,
                    p.finpay_status,
                    time(p.created_at),
                    time(p.updated_at),
                    p.next_check_at.map(time),
                ])
                .map_err(native)?;
            if inserted != 1 {
                return Err(StoreError::Raced(
                    "a payment with these references was created meanwhile",
                ));
            }
            return Ok(());
        }
        let Some(before) = judged_on else { return Ok(()) };
        if p.reference_no != before.reference_no {
            let mut stmt = self.db.prepare_cached(&STATEMENTS.learn_reference).map_err(native)?;
            match stmt.execute(rusqlite::params![p.reference_no, p.id]) {
                Ok(_) => {}
                // Cannot happen with one writer, but reads as on PostgreSQL: a
                // reference taken meanwhile makes the batch run again.
                Err(e) if unique_violation(&e) => {
                    return Err(StoreError::Raced("a payment with this reference was created meanwhile"))
                }
                Err(e) => return Err(native(e)),
            }
        }
        let mut stmt = self
            .db
            .prepare_cached(&STATEMENTS.update_judged_payment)
            .map_err(native)?;
        let updated = stmt.execute(rusqlite::params![
            p.status.as_str(),
            p.finpay_status,
            p.paid_at.map(time),
            p.flagged,
            p.next_check_at.map(time),
            time(p.updated_at),
            p.check_attempts,
            p.lease_owner,
            p.lease_until.map(time),
            p.id,
            before.status.as_str(),
        ]);
        match updated {
            Ok(1) => Ok(()),
            Ok(_) => Err(StoreError::Invalid(format!("payment {} changed under its lock", p.id))),
            Err(e) => Err(native(e)),
        }
    }

    async fn insert_notification(&mut self, n: &InboundNotification, e: &Effect) -> Result<Option<i64>> {
        let mut stmt = self
            .db
            .prepare_cached(&STATEMENTS.insert_notification)
            .map_err(native)?;
        stmt.query_row(
            rusqlite::params![
                n.partner_id,
                n.external_id,
                day(n.jakarta_day),
                n.body_sha256,
                n.raw_body,
                n.headers()?.get(),
                n.verification,
                e.payment.id,
                e.outcome.as_str(),
                time(n.received_at),
            ],
            |r| r.get(0),
        )
        .optional()
        .map_err(native)
    }

    async fn insert_entries(&mut self, e: &Effect, notification_id: Option<i64>, at: DateTime<Utc>) -> Result<()> {
        if e.entries.is_empty() {
            return Ok(());
        }
        let details = e
            .entries
            .iter()
            .map(|x| serde_json::to_string(&x.detail))
            .collect::<Result<Vec<_>, _>>();
        let details = details.map_err(|e| StoreError::Invalid(format!("an audit entry is not JSON: {e}")))?;
        let names: Vec<Option<i64>> = (0..e.entries.len())
            .map(|k| notification_id.filter(|_| k == 0))
            .collect();
        let at = time(at);
        let mut values: Vec<&dyn ToSql> = vec![&e.payment.id, &at];
        for ((entry, name), detail) in e.entries.iter().zip(&names).zip(&details) {
            values.extend([&entry.kind as &dyn ToSql, name, detail]);
        }
        let mut stmt = self
            .db
            .prepare_cached(&sql(&insert_entries_sql(e.entries.len())))
            .map_err(native)?;
        stmt.execute(params_from_iter(values)).map_err(native)?;
        Ok(())
    }

    async fn raise(&mut self, payment: &Payment, types: &[EventType], cause: Cause, at: DateTime<Utc>) -> Result<()> {
        if types.is_empty() {
            return Ok(());
        }
        let last: Option<i64> = self
            .db
            .prepare_cached(&STATEMENTS.last_sequence)
            .and_then(|mut s| s.query_row([&payment.id], |r| r.get(0)))
            .map_err(native)?;
        let mut insert = self.db.prepare_cached(&STATEMENTS.insert_event).map_err(native)?;
        let mut fan_out = self.db.prepare_cached(&STATEMENTS.fan_out).map_err(native)?;
        for e in numbered_events(payment, types, last, cause, at, None) {
            let created_at = time(e.created_at);
            insert
                .execute(rusqlite::params![
                    e.id,
                    e.event_type.as_str(),
                    e.payment_id,
                    e.sequence,
                    e.cause.as_str(),
                    e.body,
                    created_at
                ])
                .map_err(native)?;
            fan_out
                .execute(rusqlite::params![e.id, e.event_type.as_str(), created_at])
                .map_err(native)?;
        }
        Ok(())
    }
}
