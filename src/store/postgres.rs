//! PostgreSQL: production; several replicas may share one database.

use super::Result;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

/// The set-based executor for batches of notifications.
mod ingest;
/// The reference executor's statements.
mod item_writes;

pub use ingest::LAST_EVENT_SEQUENCES;

pub struct PgStore {
    pub(crate) pool: PgPool,
}

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long PostgreSQL lets one of our transactions sit idle before it ends
/// the session. None of ours waits between statements for anything but the
/// database, so only a replica that hung or was cut off mid-transaction gets
/// there; its row locks (claimed deliveries, a payment) and the changes
/// feed's numbering lock would otherwise hold the other replicas up until TCP
/// gave up on it, hours later.
pub const IDLE_IN_TRANSACTION_TIMEOUT: &str = "30s";

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
            .after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    // READ COMMITTED whatever the server's default: each statement
                    // sees what committed before it, which the write paths rely
                    // on (a fan-out skips an endpoint deleted meanwhile, a batch
                    // that met a concurrent writer runs again and sees its rows).
                    let set = format!(
                        "SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}'; \
                         SET default_transaction_isolation = 'read committed'"
                    );
                    conn.execute(set.as_str()).await.map(|_| ())
                })
            })
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

    /// Events are numbered for the changes feed after they commit.
    pub(crate) const FEED_COLUMN: &'static str = "";
    pub(crate) const FEED_VALUE: &'static str = "";
    pub(crate) const FOR_UPDATE: &'static str = " FOR UPDATE";
    pub(crate) const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    /// The endpoints an event fans out to, locked as their deliveries'
    /// foreign keys lock them, but before the insert: an endpoint being
    /// deleted meanwhile is waited for and then skipped, where the foreign
    /// key would have failed the whole transaction.
    pub(crate) const ENDPOINT_KEY_SHARE: &'static str = " FOR KEY SHARE OF w";
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

    /// PostgreSQL keeps its own log: nothing to move at close.
    pub(crate) async fn checkpoint_log(&self) -> Result<()> {
        Ok(())
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

/// An event and its place in the feed.
#[derive(sqlx::FromRow)]
struct FeedRow {
    #[sqlx(flatten)]
    event: super::events::StoredEvent,
    feed_position: i64,
}

/// How many events one read of the feed numbers at most (with the earlier
/// events of their payments), so that a long unread backlog is numbered over
/// several reads rather than in one long statement; a reader reads fewer.
const NUMBER_AT_ONCE: i64 = 1000;

/// Numbers committed events that have no `feed_position` yet, after every
/// event numbered before. Events are taken in the order their transactions
/// began writing (`txid`); an event never comes before an earlier event of
/// its payment. That one can belong to a transaction that began writing
/// later: it waited for the payment's row lock, so it committed first.
pub const NUMBER_CHANGES: &str = "\
WITH first AS ( \
    SELECT id, payment_id, sequence, txid::text::bigint AS tx FROM events \
    WHERE feed_position IS NULL ORDER BY txid, id LIMIT $1 \
), chunk AS ( \
    SELECT * FROM first \
    UNION \
    SELECT e.* FROM (SELECT payment_id, MAX(sequence) AS upto FROM first GROUP BY payment_id) f \
    CROSS JOIN LATERAL ( \
        SELECT id, payment_id, sequence, txid::text::bigint AS tx FROM events \
        WHERE payment_id = f.payment_id AND sequence < f.upto AND feed_position IS NULL \
    ) e \
), placed AS ( \
    SELECT id, sequence, tx, \
        MAX(tx) OVER (PARTITION BY payment_id ORDER BY sequence, tx, id ROWS UNBOUNDED PRECEDING) AS after_tx \
    FROM chunk \
), numbered AS ( \
    SELECT id, row_number() OVER (ORDER BY after_tx, sequence, tx, id) AS n FROM placed \
) \
UPDATE events e SET feed_position = (SELECT COALESCE(MAX(feed_position), 0) FROM events) + numbered.n \
FROM numbered WHERE e.id = numbered.id";

impl PgStore {
    /// The changes feed. Positions are given after commit, by the reads
    /// themselves, one read at a time (a transaction-scoped advisory lock
    /// keyed on the `events` table): an event committed later is numbered
    /// later, so a cursor never passes one still being written. A read that
    /// finds another numbering does not wait for it: it reads what is
    /// numbered, and the next read lists the rest. The numbering needs each
    /// statement's own snapshot (the highest position after the lock was
    /// taken), hence READ COMMITTED whatever the server's default.
    pub(crate) async fn changes_page(&self, after: i64, limit: i64) -> Result<super::events::ChangesPage> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *tx)
            .await?;
        let numbering: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock('events'::regclass::oid::int, 0)")
            .fetch_one(&mut *tx)
            .await?;
        if numbering {
            sqlx::query(NUMBER_CHANGES)
                .bind(NUMBER_AT_ONCE)
                .execute(&mut *tx)
                .await?;
        }
        let rows: Vec<FeedRow> = sqlx::query_as(
            "SELECT id, type, payment_id, sequence, cause, body, created_at, feed_position FROM events \
             WHERE feed_position > $1 ORDER BY feed_position LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let cursor = rows.last().map_or(after, |r| r.feed_position).to_string();
        let items = rows.into_iter().map(|r| r.event).collect();
        Ok(super::events::ChangesPage { items, cursor })
    }
}
