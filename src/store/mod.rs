//! Storage behind one interface, with a PostgreSQL and an SQLite implementation
//! chosen from the database URL.
//!
//! The database owns the invariants: the unique key on
//! `(partner_id, external_id, jakarta_day)` makes notification storage
//! idempotent across replicas; a status changes under the row lock taken
//! when the payment was read for judging; worker claims are leases taken with
//! `FOR UPDATE SKIP LOCKED` (PostgreSQL) or inside an immediate transaction
//! (SQLite, one writer at a time).

mod api_store;
pub mod console_events;
mod console_store;
pub mod endpoints;
pub mod events;
mod explain;
pub(crate) mod item_by_item;
pub(crate) mod ops_store;
mod postgres;
pub mod refusals;
mod sql;
mod sql_api;
mod sql_console;
mod sql_effect;
mod sql_endpoints;
mod sql_events;
mod sql_outbox;
mod sql_records;
mod sql_refunds;
mod sqlite;
mod sqlite_batch;
mod sqlite_values;
mod types;

pub use api_store::*;
pub use console_events::ConsoleEventStore;
pub use console_store::*;
pub use endpoints::EndpointStore;
pub use events::EventStore;
pub use explain::{ensure_migrated, explain, host};
pub use ops_store::{OpsStore, PaymentGauges};
pub use postgres::{PgStore, IDLE_IN_TRANSACTION_TIMEOUT, LAST_EVENT_SEQUENCES, NUMBER_CHANGES};
pub use refusals::{ReasonTotal, Refusal, RefusalFilter, RefusalStore};
pub use sqlite::SqliteStore;
pub use types::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A driver's error (sqlx's, or SQLite's own where a batch runs on its handle).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now (pool timeout, connection
    /// refused or lost). Callers answer "try again later".
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// A unique key already holds this value.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Database(#[source] BoxError),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Invalid(String),
    /// A concurrent writer stored the same notification key or created a
    /// payment with the same reference first; running again sees its rows.
    #[error("raced by a concurrent writer: {0}")]
    Raced(&'static str),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(Box::new(e))
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
            sqlx::Error::Database(db) if unavailable(db.as_ref()) => StoreError::Unavailable(Box::new(e)),
            _ => StoreError::Database(Box::new(e)),
        }
    }
}

/// Whether a database error says "the database cannot serve us right now",
/// read in each backend's own terms.
fn unavailable(db: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // 08xxx connection exceptions, 57P0x shutdown / cannot connect now,
        // 53300 too many connections.
        let code = pg.code();
        return code.starts_with("08") || code.starts_with("57P") || code == "53300";
    }
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite's extended result codes carry the primary code in the low
        // byte: 5 BUSY, 6 LOCKED, 10 IOERR, 14 CANTOPEN.
        let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
        return matches!(code & 0xff, 5 | 6 | 10 | 14);
    }
    false
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// The store a database URL names: `postgres://…` (or `postgresql://…`)
    /// or `sqlite:…`; `None` for any other.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

#[async_trait]
pub trait Store:
    ApiStore
    + ConsoleStore
    + ConsoleEventStore
    + EndpointStore
    + EventStore
    + OpsStore
    + RefusalStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;
    async fn migrate(&self) -> Result<()>;
    async fn ping(&self) -> Result<()>;
    /// Migrations this binary has that the database has not applied, by name;
    /// an error for an applied one that differs from this binary's, or (when
    /// `migrating`, as `migrate` would refuse it) one this binary lacks.
    async fn pending_migrations(&self, migrating: bool) -> Result<Vec<String>>;
    /// Connections in use and idle, for metrics.
    fn pool_usage(&self) -> (u32, u32);
    /// Closes every connection, waiting for those in use. On SQLite the last
    /// one to close moves the write-ahead log into the file, so that a
    /// stopped service leaves one file that is the whole database.
    async fn close(&self);

    // ---- access tokens we issued (only their SHA-256 is stored) ----
    async fn insert_token(
        &self,
        token_sha256: &[u8],
        client_id: &str,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// `(client_id, expires_at)` of a token we issued.
    async fn find_token(&self, token_sha256: &[u8]) -> Result<Option<(String, DateTime<Utc>)>>;
    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64>;

    // ---- notifications ----
    /// Stores every notification of the batch and applies its effect in ONE
    /// transaction; an outcome per item, in order. Nothing is visible (or
    /// acknowledged) before the commit.
    async fn ingest_notifications(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>>;
    /// Retention: clears the raw body and headers of up to `limit`
    /// notifications received before `before` (oldest first), keeping their
    /// key, body hash, payment and outcome. Returns how many it cleared.
    async fn clear_notification_bodies(&self, before: DateTime<Utc>, limit: i64) -> Result<u64>;

    // ---- payments ----
    /// By our id, or by `partnerReferenceNo`.
    async fn get_payment(&self, id_or_reference: &str) -> Result<Option<Payment>>;
    async fn list_payments(&self, filter: &PaymentFilter) -> Result<Vec<Payment>>;
    async fn payment_events(&self, payment_id: &str) -> Result<Vec<PaymentEvent>>;
    async fn add_event(&self, payment_id: &str, kind: &str, detail: &serde_json::Value) -> Result<()>;
    /// Records Finpay's generate answer on a payment we created.
    async fn attach_generated(&self, payment_id: &str, g: &GeneratedQr) -> Result<Payment>;

    // ---- reconciliation ----
    /// Leases up to `limit` open payments whose check is due, earliest first;
    /// their check moves to the lease's end.
    async fn claim_due(&self, owner: &str, now: DateTime<Utc>, lease_secs: u64, limit: i64) -> Result<Vec<Payment>>;
    /// Leases one payment now (refresh-on-read), if nobody else holds it.
    async fn claim_one(
        &self,
        payment_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_secs: u64,
    ) -> Result<Option<Payment>>;
    /// Applies a query answer through the same path as a notification, records
    /// the attempt, sets the next check and releases the lease.
    async fn apply_query(
        &self,
        payment_id: &str,
        owner: &str,
        result: &QueryResult,
        now: DateTime<Utc>,
    ) -> Result<Applied>;
    /// An open payment leased to `owner` got no final answer by its deadline
    /// (`reason`): it expires, or (`expire` false) stays open, no longer
    /// asked about and flagged for a person. False when it is no longer open
    /// or leased to `owner`.
    async fn stop_waiting(
        &self,
        payment_id: &str,
        owner: &str,
        reason: &str,
        expire: bool,
        now: DateTime<Utc>,
    ) -> Result<bool>;
}

/// Opens the store the URL names: `postgres://…` or `sqlite://…`.
pub async fn connect(url: &str, max_connections: u32, acquire_timeout_secs: u64) -> Result<Arc<dyn Store>> {
    match Backend::of_url(url) {
        Some(Backend::Postgres) => Ok(Arc::new(
            PgStore::connect(url, max_connections, acquire_timeout_secs).await?,
        )),
        Some(Backend::Sqlite) => Ok(Arc::new(
            SqliteStore::connect(url, max_connections, acquire_timeout_secs).await?,
        )),
        None => Err(StoreError::Invalid(
            "database URL must start with postgres://, postgresql:// or sqlite:".into(),
        )),
    }
}

/// A `WHERE` clause of the conditions given (`true`), in order, the `#` of
/// each becoming the next placeholder (a condition without `#` takes none;
/// bind in the same order), and how many placeholders it took: only the
/// filters a query names become conditions, so each query is planned for
/// what it asks.
pub(crate) fn where_given(conditions: &[(bool, &str)]) -> (String, usize) {
    let mut n = 0;
    let given: Vec<String> = conditions
        .iter()
        .filter(|(given, _)| *given)
        .map(|(_, c)| {
            if !c.contains('#') {
                return c.to_string();
            }
            n += 1;
            c.replace('#', &format!("${n}"))
        })
        .collect();
    if given.is_empty() {
        (String::new(), n)
    } else {
        (format!("WHERE {}", given.join(" AND ")), n)
    }
}

/// `rows` rows of `columns` placeholders for a `VALUES` list, numbered from
/// `first`: `value_rows(2, 2, 3)` is `($3, $4), ($5, $6)`.
pub(crate) fn value_rows(rows: usize, columns: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (0..columns).map(|c| format!("${}", first + r * columns + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Now, truncated to whole milliseconds so that both backends store and
/// compare the same instant (SQLite keeps RFC 3339 text).
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}
