//! A database failure at start-up, as an operator reads it: which setting,
//! which host (never the password), and the cause once.
//!
//! Two things hide the cause otherwise. Each layer (`StoreError`, sqlx's
//! `MigrateError`) repeats its source in its own message, so printing the
//! chain says the same thing three or four times. And a pool that cannot
//! connect only reports "pool timed out": the refused connection or the
//! failed password behind it is lost, so one direct connection is tried to
//! find it.

use crate::config::env_name;
use crate::secret::redact_url;
use sqlx::Connection;
use std::error::Error;
use std::time::Duration;

/// `what` failed on the database at `url`: one line naming `database.url`.
pub async fn explain(url: &str, what: &str, error: &(dyn Error + 'static), timeout: Duration) -> anyhow::Error {
    let mut cause = root_cause(error);
    if is_pool_timeout(error) {
        if let Some(direct) = connect_once(url, timeout).await {
            cause = direct;
        } else {
            cause = format!("no connection within {} s ({cause})", timeout.as_secs());
        }
    }
    anyhow::anyhow!(
        "{what} the database {} failed ({} = {}): {cause}",
        host(url),
        env_name("database.url"),
        redact_url(url)
    )
}

/// The innermost error's message; the outer ones only repeat it.
fn root_cause(error: &(dyn Error + 'static)) -> String {
    let mut e = error;
    while let Some(inner) = e.source() {
        e = inner;
    }
    e.to_string()
}

fn is_pool_timeout(error: &(dyn Error + 'static)) -> bool {
    let mut e = Some(error);
    while let Some(current) = e {
        if matches!(current.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::PoolTimedOut)) {
            return true;
        }
        e = current.source();
    }
    false
}

/// That every migration of this binary is applied, or what to run: a
/// service started on an older schema would answer 500 to everything.
pub async fn ensure_migrated(store: &dyn super::Store, url: &str, timeout: Duration) -> anyhow::Result<()> {
    let pending = match store.pending_migrations(false).await {
        Ok(p) => p,
        Err(e) => return Err(explain(url, "reading the migrations of", &e, timeout).await),
    };
    if let Some(first) = pending.first() {
        anyhow::bail!(
            "the database {} lacks {} migration(s), first {first}; run `finpay-qris migrate` \
             (or start with {} = true)",
            host(url),
            pending.len(),
            env_name("database.migrate_on_start")
        );
    }
    Ok(())
}

/// Where the database is: `host:port` of a server, the file of SQLite.
pub fn host(url: &str) -> String {
    if let Some(file) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        return format!("file {}", file.split('?').next().unwrap_or(file));
    }
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme().starts_with("postgres") => format!(
            "at {}:{}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432)
        ),
        Ok(u) => format!("at {}", u.host_str().unwrap_or("?")),
        Err(_) => "(unreadable URL)".into(),
    }
}

/// The error of one direct connection attempt, `None` when it succeeds or
/// takes longer than `timeout`.
async fn connect_once(url: &str, timeout: Duration) -> Option<String> {
    if super::Backend::of_url(url) != Some(super::Backend::Postgres) {
        return None;
    }
    let attempt = sqlx::PgConnection::connect(url);
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Err(e)) => Some(root_cause(&e)),
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn the_host_is_named_without_the_password() {
        assert_eq!(host("postgres://u:pw@db.internal:6432/x"), "at db.internal:6432");
        assert_eq!(host("postgres://u@db/x"), "at db:5432");
        assert_eq!(host("sqlite://data/a.db?mode=rwc"), "file data/a.db");
    }

    #[tokio::test]
    async fn a_nested_error_is_reported_once_with_the_setting() {
        let e = StoreError::Migrate(sqlx::migrate::MigrateError::Execute(sqlx::Error::Protocol(
            "bad handshake".into(),
        )));
        let text = format!(
            "{:#}",
            explain(
                "postgres://u:hunter2@db/x",
                "applying migrations",
                &e,
                Duration::from_secs(1)
            )
            .await
        );
        assert_eq!(text.matches("bad handshake").count(), 1, "{text}");
        assert!(text.contains("FINPAY_QRIS__DATABASE__URL"), "{text}");
        assert!(text.contains("at db:5432"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
