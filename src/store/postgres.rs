//! PostgreSQL: production; several replicas may share one database.

use super::Result;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

/// Group commit with set-based statements (`ingest_notifications` for batches).
mod bulk;
/// The common batch in one statement, its assumptions checked by the database.
mod speculative;

pub struct PgStore {
    pub(crate) pool: PgPool,
    /// The notification writers' own connections (see `connect`).
    pub(crate) ingest: PgPool,
    /// When and how often the one-statement path is taken (`speculative.rs`).
    speculation: speculative::Speculation,
}

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32, acquire_timeout_secs: u64) -> Result<Self> {
        let base = PgConnectOptions::from_str(url)?;
        // Every execution is planned with the tables' current sizes. A cached
        // generic plan is costed once, on the statistics of that moment: one made
        // while a table was small goes on scanning it sequentially after it has
        // grown, for as long as the connection lives (nothing invalidates the
        // plan when autovacuum is off or has not analyzed the table yet).
        let opts = base.clone().options([("plan_cache_mode", "force_custom_plan")]);
        let pool_options = || {
            PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(acquire_timeout_secs.max(1)))
        };
        // A connection that died with the server is noticed before use.
        let pool = pool_options().test_before_acquire(true).connect_lazy_with(opts);
        // The group-commit writers run two fixed statements per batch, a few
        // hundred times a second, so planning them each time would cost more
        // than running them. Their plans are made once and kept; that is safe
        // because every table access in them has an index condition on the
        // batch's own keys (`= ANY($n)`, see store/postgres/bulk.rs) and
        // sequential scans are ruled out, so no plan's cost can grow with a
        // table, whatever the statistics said when it was made.
        // A separate pool also keeps the API's and the worker's queries from
        // holding the connections notifications need. A connection that died
        // with the server fails its batch (answered 5005200, so Finpay retries)
        // and is discarded; no round trip is spent testing it before each batch.
        let ingest_opts = base.options([("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off")]);
        let ingest = pool_options().test_before_acquire(false).connect_lazy_with(ingest_opts);
        Ok(Self {
            pool,
            ingest,
            speculation: Default::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Every pool, for the pool-usage metric (the writers' own included).
    pub(crate) fn pools(&self) -> [&PgPool; 2] {
        [&self.pool, &self.ingest]
    }

    pub(crate) fn one_statement_counts(&self) -> Option<(u64, u64)> {
        Some(self.speculation_counts())
    }

    pub(crate) const FOR_UPDATE: &'static str = " FOR UPDATE";
    /// The worker's claim locks the payments (`p`) it reads, not their schedule rows.
    pub(crate) const SKIP_LOCKED: &'static str = " FOR UPDATE OF p SKIP LOCKED";
    pub(crate) const BACKEND: super::Backend = super::Backend::Postgres;

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
