//! PostgreSQL: production; several replicas may share one database.

use super::Result;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

/// The set-based executor for batches of notifications.
mod ingest;

pub struct PgStore {
    pub(crate) pool: PgPool,
}

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32, acquire_timeout_secs: u64) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(acquire_timeout_secs.max(1)))
            // No ping before each use: that is a round trip per batch of
            // notifications. A connection that died with the server fails the
            // one statement that meets it (answered "try again": 5005200 or
            // 503) and is discarded; the next one is fresh.
            .test_before_acquire(false)
            .connect_lazy_with(opts);
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Where a write outside a transaction runs: the one pool.
    pub(crate) fn writes(&self) -> &PgPool {
        &self.pool
    }

    fn pools(&self) -> [&PgPool; 1] {
        [&self.pool]
    }

    /// A batch of notifications: set-based, or item by item when a
    /// concurrent writer got in the way (`postgres/ingest.rs`).
    async fn ingest_batch(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>> {
        match self.ingest_set_based(batch).await? {
            Some(outcomes) => Ok(outcomes),
            None => self.ingest_item_by_item(batch).await,
        }
    }

    /// The changes feed reads `txid` (set by the column's default).
    pub(crate) const FEED_COLUMN: &'static str = "";
    pub(crate) const FEED_VALUE: &'static str = "";
    pub(crate) const FOR_UPDATE: &'static str = " FOR UPDATE";
    pub(crate) const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    pub(crate) const BACKEND: super::Backend = super::Backend::Postgres;
    pub(crate) const MIGRATIONS_TABLE_EXISTS: &'static str = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL";

    pub(crate) fn sql(s: &'static str) -> Cow<'static, str> {
        Cow::Borrowed(s)
    }

    pub(crate) fn sql_owned(s: String) -> Cow<'static, str> {
        Cow::Owned(s)
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    pub(crate) async fn run_migrations(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

super::sql::sql_store!(PgStore, Postgres);
super::sql_api::sql_api_store!(PgStore, Postgres);
super::sql_refunds::sql_refund_writes!(PgStore, Postgres);
super::sql_console::sql_console_store!(PgStore, Postgres);
super::refusals::sql_refusal_store!(PgStore, Postgres);
super::ops_store::sql_ops_store!(PgStore);
super::sql_outbox::sql_outbox!(PgStore, Postgres);
super::sql_endpoints::sql_endpoint_store!(PgStore, Postgres);
super::sql_events::sql_event_store!(PgStore, Postgres);
super::sql_records::sql_records!(PgStore, Postgres);
super::console_events::sql_console_event_store!(PgStore);

/// An event and its writing transaction.
#[derive(sqlx::FromRow)]
struct FeedRow {
    #[sqlx(flatten)]
    event: super::events::StoredEvent,
    position: String,
}

impl PgStore {
    /// The changes feed: events of transactions older than every transaction
    /// still running (`pg_snapshot_xmin`), in `(txid, id)` order. A
    /// transaction that commits late got its `txid` before that bound, so it
    /// is returned after the ones that committed before it, never skipped.
    /// A `txid` is given at a transaction's first write, which for a row lock
    /// is when it asks for the lock, not when it gets it: of transactions
    /// that waited for one payment, the later one may come first, so the feed
    /// is not that payment's `sequence` order.
    pub(crate) async fn changes_page(&self, cursor: Option<&str>, limit: i64) -> Result<super::events::ChangesPage> {
        let (txid, id) = match cursor {
            None => ("0".to_string(), String::new()),
            Some(c) => {
                let (t, i) = c.split_once(':').unwrap_or((c, ""));
                if t.parse::<u64>().is_err() {
                    return Err(super::StoreError::Invalid("cursor is not one this feed gave".into()));
                }
                (t.to_string(), i.to_string())
            }
        };
        let rows: Vec<FeedRow> = sqlx::query_as(
            "SELECT id, type, payment_id, sequence, cause, body, created_at, txid::text AS position FROM events \
             WHERE (txid, id) > ($1::text::xid8, $2) AND txid < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY txid, id LIMIT $3",
        )
        .bind(&txid)
        .bind(&id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let cursor = rows
            .last()
            .map(|r| format!("{}:{}", r.position, r.event.id))
            .unwrap_or_else(|| format!("{txid}:{id}"));
        let items = rows.into_iter().map(|r| r.event).collect();
        Ok(super::events::ChangesPage { items, cursor })
    }
}
