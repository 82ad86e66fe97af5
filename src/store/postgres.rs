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

    /// A batch of notifications: set-based, or item by item when a
    /// concurrent writer got in the way (`postgres/ingest.rs`).
    async fn ingest_batch(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>> {
        match self.ingest_set_based(batch).await? {
            Some(outcomes) => Ok(outcomes),
            None => self.ingest_item_by_item(batch).await,
        }
    }

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
super::sql_console::sql_console_store!(PgStore, Postgres);
super::refusals::sql_refusal_store!(PgStore, Postgres);
super::ops_store::sql_ops_store!(PgStore);
