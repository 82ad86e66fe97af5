//! `finpay-qris check-config`: everything `serve` checks before it listens,
//! without listening, for CI/CD pipelines and init containers. Exit 0 with a
//! summary on stdout, or non-zero with the message `serve` would stop with.
//!
//! It never changes the database: an SQLite file that does not exist is
//! reported, not created, and migrations are compared, not applied.

use crate::config::{env_name, Settings};
use crate::secret::redact_url;
use crate::store;
use anyhow::bail;
use std::path::Path;
use std::time::Duration;

pub async fn run(config: Option<&Path>, check_database: bool) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let inbound = settings.inbound_credentials()?;
    let finpay = settings.finpay_credentials()?;
    let on_off = |on: bool| if on { "on" } else { "off" };
    println!("settings: valid");
    println!("SNAP endpoints (inbound credentials): {}", on_off(inbound.is_some()));
    println!("Finpay client (outbound credentials): {}", on_off(finpay.is_some()));
    println!(
        "reconciliation worker: {}",
        on_off(settings.worker_enabled(finpay.is_some()))
    );
    let keys = crate::config::api_keys::api_keys(&settings.api)?;
    let operate = keys.iter().filter(|k| k.role.may_operate()).count();
    println!("internal API keys: {operate} operate, {} read", keys.len() - operate);
    // `serve` stops on a protocol it cannot export with.
    let traces = crate::telemetry::otlp::requested(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?;
    println!(
        "trace export (OTLP): {}",
        traces.map_or("off".to_string(), |w| format!("{w:?}"))
    );
    if check_database {
        database(&settings).await?;
    } else {
        println!("database: not checked (--no-database)");
    }
    println!("configuration OK");
    Ok(())
}

/// Reachable, and every migration of this binary applied, or about to be:
/// with `database.migrate_on_start`, `serve` creates an SQLite file and
/// applies what is missing, so check-config says so instead of failing.
async fn database(settings: &Settings) -> anyhow::Result<()> {
    let db = &settings.database;
    let url = db.url.expose();
    if let Some(file) = sqlite_file(url).filter(|f| !f.exists()) {
        if db.migrate_on_start {
            if let Err(why) = creatable(&file) {
                bail!(
                    "`serve` cannot create the database file {} ({} = {}): {why}",
                    file.display(),
                    env_name("database.url"),
                    redact_url(url)
                );
            }
            println!(
                "database: {} does not exist yet; `serve` creates and migrates it ({} = true)",
                file.display(),
                env_name("database.migrate_on_start")
            );
            return Ok(());
        }
        bail!(
            "the database file {} does not exist ({} = {}); run `finpay-qris migrate`",
            file.display(),
            env_name("database.url"),
            redact_url(url)
        );
    }
    let timeout = Duration::from_secs(db.acquire_timeout_secs.max(1));
    let store = match store::connect(url, 1, timeout.as_secs()).await {
        Ok(s) => s,
        Err(e) => return Err(store::explain(url, "opening", &e, timeout).await),
    };
    if let Err(e) = store.ping().await {
        return Err(store::explain(url, "connecting to", &e, timeout).await);
    }
    let checked = check_schema(store.as_ref(), url, db.migrate_on_start, timeout).await;
    store.close().await;
    checked
}

/// Whether `serve` could create `file` and the folders above it: the nearest
/// folder that exists must take a new file (a read-only file system, a path
/// under a file, `/proc` do not). Tried with a file of its own, removed at once.
fn creatable(file: &Path) -> Result<(), String> {
    let absolute = std::path::absolute(file).map_err(|e| e.to_string())?;
    let Some(existing) = absolute.ancestors().skip(1).find(|a| a.exists()) else {
        return Err("no folder above it exists".into());
    };
    if !existing.is_dir() {
        return Err(format!("{} is not a folder", existing.display()));
    }
    let probe = existing.join(format!(".finpay-qris-check-config-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => std::fs::remove_file(&probe).map_err(|e| e.to_string()),
        Err(e) => Err(format!("{} does not take a new file: {e}", existing.display())),
    }
}

/// Whether `serve` will start on the schema it finds: migrations applied as
/// this binary has them, and any missing ones applied by `serve` or missing
/// for `migrate` to apply.
async fn check_schema(
    store: &dyn store::Store,
    url: &str,
    migrate_on_start: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    if migrate_on_start {
        let pending = match store.pending_migrations(true).await {
            Ok(p) => p.len(),
            Err(e) => return Err(store::explain(url, "reading the migrations of", &e, timeout).await),
        };
        println!(
            "database: reachable ({}), {pending} migration(s) for `serve` to apply ({} = true)",
            store::host(url),
            env_name("database.migrate_on_start")
        );
        return Ok(());
    }
    store::ensure_migrated(store, url, timeout).await?;
    println!("database: reachable ({}), migrated", store::host(url));
    Ok(())
}

/// The file an SQLite URL names; `None` for other databases and in-memory ones.
pub(crate) fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| path.into())
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn the_sqlite_file_is_read_from_the_url() {
        assert_eq!(sqlite_file("sqlite://data/a.db?mode=rwc"), Some("data/a.db".into()));
        assert_eq!(sqlite_file("sqlite:a.db"), Some("a.db".into()));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://db/x"), None);
    }
}
