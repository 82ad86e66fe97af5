//! Embedded SQLite: the zero-configuration default. WAL mode; one writer at
//! a time (transactions start `IMMEDIATE`, so a read-then-write never has to
//! upgrade its lock and fail with `SQLITE_BUSY`).

use super::Result;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
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
            // How long a statement waits for another connection's write lock:
            // the same bound as waiting for a pooled connection
            // (`database.acquire_timeout_secs`), after which the caller gets an
            // error (notify: `5005200`, so Finpay retries) instead of hanging.
            .busy_timeout(Duration::from_secs(acquire_timeout_secs.max(1)));
        if let Some(dir) = std::path::Path::new(opts.get_filename()).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| super::StoreError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.clamp(1, 8))
            .acquire_timeout(Duration::from_secs(acquire_timeout_secs.max(1)))
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) fn pools(&self) -> [&SqlitePool; 1] {
        [&self.pool]
    }

    /// SQLite stores every batch item by item (`Store::one_statement_batches`).
    pub(crate) fn one_statement_counts(&self) -> Option<(u64, u64)> {
        None
    }

    pub(crate) const FOR_UPDATE: &'static str = "";
    pub(crate) const SKIP_LOCKED: &'static str = "";
    pub(crate) const BACKEND: super::Backend = super::Backend::Sqlite;

    /// The shared SQL uses PostgreSQL's `$n`; SQLite's `?n` is the same
    /// positional parameter.
    pub(crate) fn sql(s: &'static str) -> Cow<'static, str> {
        Cow::Owned(s.replace('$', "?"))
    }

    pub(crate) fn sql_owned(s: String) -> Cow<'static, str> {
        Cow::Owned(s.replace('$', "?"))
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub(crate) async fn run_migrations(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

super::sql::sql_store!(SqliteStore, Sqlite);
super::sql_api::sql_api_store!(SqliteStore, Sqlite);
