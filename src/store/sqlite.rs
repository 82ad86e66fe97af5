//! Embedded SQLite: the zero-configuration default. WAL mode; one writer at
//! a time (transactions start `IMMEDIATE`, so a read-then-write never has to
//! upgrade its lock and fail with `SQLITE_BUSY`).
//!
//! Every write goes through one connection of its own. SQLite admits one
//! writer anyway, so nothing is lost, and two things are won: writers wait
//! in the order they came for that connection (instead of polling the file
//! lock with SQLite's growing sleeps), and its page cache stays warm (a
//! connection drops its cache whenever another one wrote), so a batch of
//! notifications reads its index pages from memory. Reads use the other
//! pool and never hold a writer up.

use super::Result;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    /// Reads.
    pub(crate) pool: SqlitePool,
    /// The one connection every write runs on: transactions (`begin`) and
    /// single statements (`writes`).
    writer: SqlitePool,
}

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32, acquire_timeout_secs: u64) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit survives power loss, as on PostgreSQL.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Move the write-ahead log into the file every 10,000 pages (about
            // 40 MB) rather than SQLite's 1,000: a batch of notifications
            // changes a few hundred pages, and at 1,000 every third commit
            // stopped to copy them and fsync the file (`docs/performance.md`).
            .pragma("wal_autocheckpoint", "10000")
            // How long a statement waits for another connection's write lock:
            // the same bound as waiting for a pooled connection
            // (`database.acquire_timeout_secs`), after which the caller gets an
            // error (notify: `5005200`, so Finpay retries) instead of hanging.
            .busy_timeout(Duration::from_secs(acquire_timeout_secs.max(1)));
        if !in_memory(url) {
            private_file(opts.get_filename())?;
        }
        let pool = |connections: u32| {
            SqlitePoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(acquire_timeout_secs.max(1)))
        };
        let writer = pool(1)
            // A transaction left open on the write connection (a begin whose
            // caller went away half-way, or one SQLite rolled back by itself
            // after an I/O error while sqlx still counts it) would take every
            // later write into it, never committed: such a connection is
            // closed on its return, and the next is fresh.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::TransactionManager;
                    if <Sqlite as sqlx::Database>::TransactionManager::get_transaction_depth(conn) != 0 {
                        return Ok(false);
                    }
                    let mut handle = conn.lock_handle().await?;
                    // SAFETY: a live handle, locked for the duration of the call.
                    let autocommit = unsafe { rusqlite::ffi::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) };
                    Ok(autocommit != 0)
                })
            })
            .connect_with(opts.clone())
            .await?;
        let pool = pool(max_connections.clamp(1, 8)).connect_with(opts).await?;
        Ok(Self { pool, writer })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Where a write outside a transaction runs: the write connection too, so
    /// that it waits in turn instead of polling the file lock.
    pub(crate) fn writes(&self) -> &SqlitePool {
        &self.writer
    }

    fn pools(&self) -> [&SqlitePool; 2] {
        [&self.pool, &self.writer]
    }

    /// One writer at a time holds the whole file: a batch is stored item by
    /// item, in one transaction (the reference executor), on the write
    /// connection's own handle (`sqlite_batch.rs`).
    async fn ingest_batch(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>> {
        self.ingest_on_handle(batch).await
    }

    /// One writer at a time: one more than the highest is commit order.
    pub(crate) const FEED_COLUMN: &'static str = ", feed_position";
    pub(crate) const FEED_VALUE: &'static str = ", COALESCE((SELECT MAX(feed_position) FROM events), 0) + 1";
    pub(crate) const FOR_UPDATE: &'static str = "";
    pub(crate) const SKIP_LOCKED: &'static str = "";
    /// One writer at a time: no endpoint is deleted under a fan-out.
    pub(crate) const ENDPOINT_KEY_SHARE: &'static str = "";
    pub(crate) const BACKEND: super::Backend = super::Backend::Sqlite;
    pub(crate) const MIGRATIONS_TABLE_EXISTS: &'static str =
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')";

    /// The shared SQL uses PostgreSQL's `$n`; SQLite's `?n` is the same
    /// positional parameter.
    pub(crate) fn sql(s: &'static str) -> Cow<'static, str> {
        Cow::Owned(super::sqlite_values::sql(s))
    }

    pub(crate) fn sql_owned(s: String) -> Cow<'static, str> {
        Cow::Owned(super::sqlite_values::sql(&s))
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Moves the write-ahead log into the database file and empties it, so
    /// that the file alone is the database (a stopped service's backup).
    pub(crate) async fn checkpoint_log(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub(crate) async fn run_migrations(&self) -> Result<()> {
        // Writes, so on the write connection, as every other write.
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }
}

super::sql::sql_store!(SqliteStore, Sqlite);
super::sql_api::sql_api_store!(SqliteStore, Sqlite);
super::sql_refunds::sql_refund_writes!(SqliteStore, Sqlite);
super::sql_console::sql_console_store!(SqliteStore, Sqlite);
super::refusals::sql_refusal_store!(SqliteStore, Sqlite);
super::ops_store::sql_ops_store!(SqliteStore);
super::sql_outbox::sql_outbox!(SqliteStore, Sqlite);
super::sql_endpoints::sql_endpoint_store!(SqliteStore, Sqlite);
super::sql_events::sql_event_store!(SqliteStore, Sqlite);
super::sql_records::sql_records!(SqliteStore, Sqlite);
super::console_events::sql_console_event_store!(SqliteStore);

/// Whether `url` names a database held in memory (`sqlite::memory:`, or
/// `mode=memory`), as sqlx reads it: there is no file to create. (sqlx names
/// such a database `file:sqlx-in-memory-N`, which is no path on disk.)
fn in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
    name == ":memory:" || query.split('&').any(|param| param == "mode=memory")
}

/// Creates the database file (and its folder) readable by this user only:
/// it holds payments and notifications. SQLite gives its `-wal` and `-shm`
/// files the database file's permissions. An existing file is left as it is.
fn private_file(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let invalid = |what: &std::path::Path, e: std::io::Error| {
        super::StoreError::Invalid(format!("cannot create {}: {e}", what.display()))
    };
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| invalid(dir, e))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| invalid(path, e))?;
    Ok(())
}

/// An event and its place in the feed.
#[derive(sqlx::FromRow)]
struct FeedRow {
    #[sqlx(flatten)]
    event: super::events::StoredEvent,
    feed_position: i64,
}

impl SqliteStore {
    /// The changes feed: one writer at a time, so `feed_position` is commit order.
    pub(crate) async fn changes_page(&self, after: i64, limit: i64) -> Result<super::events::ChangesPage> {
        let rows: Vec<FeedRow> = sqlx::query_as(
            "SELECT id, type, payment_id, sequence, cause, body, created_at, feed_position FROM events \
             WHERE feed_position > ?1 ORDER BY feed_position LIMIT ?2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let cursor = rows.last().map_or(after, |r| r.feed_position).to_string();
        Ok(super::events::ChangesPage {
            items: rows.into_iter().map(|r| r.event).collect(),
            cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn the_write_connection_checkpoints_its_log_every_ten_thousand_pages() {
        let store = super::SqliteStore::connect("sqlite::memory:", 2, 1).await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(store.writes())
            .await
            .unwrap();
        assert_eq!(pages, 10_000, "SQLite's 1,000 stops every third batch to copy pages");
    }

    #[tokio::test]
    async fn a_write_connection_returned_inside_a_transaction_is_closed_not_reused() {
        use crate::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/w.db", dir.path().display());
        let store = super::SqliteStore::connect(&url, 2, 1).await.unwrap();
        store.migrate().await.unwrap();
        {
            // As a begin whose caller went away half-way leaves it.
            let mut conn = store.writes().acquire().await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await.unwrap();
        }
        let now = crate::store::now();
        store
            .insert_token(&[7; 32], "FINPAY", now, now + chrono::Duration::minutes(15))
            .await
            .unwrap();
        // Read on another connection: only a committed write is there.
        let found = store.find_token(&[7; 32]).await.unwrap();
        assert_eq!(found.map(|(client, _)| client).as_deref(), Some("FINPAY"));
    }

    #[test]
    fn a_database_held_in_memory_has_no_file_to_create() {
        assert!(super::in_memory("sqlite::memory:"));
        assert!(super::in_memory("sqlite://scratch.db?mode=memory&cache=shared"));
        assert!(!super::in_memory("sqlite://data/finpay-qris.db"));
        assert!(!super::in_memory("sqlite://data/finpay-qris.db?mode=rwc"));
    }

    #[test]
    fn a_new_database_file_and_its_folder_are_private() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("data").join("finpay.db");
        super::private_file(&file).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
    }
}
