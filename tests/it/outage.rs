//! The database going away under load: notifications are answered
//! `5005200` (never a 2xx), readiness fails, and once the database is back
//! the service recovers without a restart; no acknowledged notification is
//! missing.

use crate::common::proxy::Proxy;
use crate::common::*;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers seen by the load: (external id, HTTP status, responseCode).
type Seen = Arc<Mutex<Vec<(String, u16, String)>>>;

/// Sends distinct notifications from `workers` tasks until `stop` is set.
fn load(
    app: &TestApp,
    token: &str,
    workers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    seen: Seen,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|_| {
            let (http, url, token, stop, seen) = (
                app.http.clone(),
                app.url(NOTIFY_PATH),
                token.to_string(),
                stop.clone(),
                seen.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let ext = unique_digits();
                    let body = notify_body(&format!("INV{ext}"), &format!("FP{ext}"), "00", "1000.00");
                    let req = signed_notify(&http, &url, NOTIFY_PATH, &token, &ext, &body, &now_ts());
                    let Ok(resp) = req.timeout(Duration::from_secs(30)).send().await else {
                        continue;
                    };
                    let status = resp.status().as_u16();
                    let v: Value = resp.json().await.unwrap_or(Value::Null);
                    let code = v["responseCode"].as_str().unwrap_or("").to_string();
                    seen.lock().unwrap().push((ext, status, code));
                }
            })
        })
        .collect()
}

async fn stored_external_ids(app: &TestApp) -> HashSet<String> {
    // Read through a connection of our own, not the application's pool.
    let url = &app.db.url;
    if url.starts_with("postgres") {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar::<_, String>("SELECT external_id FROM notifications")
            .fetch_all(&mut c)
            .await
            .unwrap()
            .into_iter()
            .collect()
    } else {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar::<_, String>("SELECT external_id FROM notifications")
            .fetch_all(&mut c)
            .await
            .unwrap()
            .into_iter()
            .collect()
    }
}

fn check_answers(seen: &[(String, u16, String)], stored: &HashSet<String>) -> (usize, usize) {
    let (mut ok, mut refused) = (0, 0);
    for (ext, status, code) in seen {
        match (status, code.as_str()) {
            (200, "2005200") => {
                assert!(stored.contains(ext), "acknowledged {ext} is missing from the database");
                ok += 1;
            }
            (500, "5005200") | (504, "5045200") => refused += 1,
            other => panic!("unexpected answer {other:?} for {ext}"),
        }
    }
    (ok, refused)
}

async fn notifications_fail_closed_while_postgres_is_unreachable_and_recover() {
    if !postgres_available().await {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    // The app reaches PostgreSQL only through the proxy.
    let upstream: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let via_proxy = db.url.replacen("127.0.0.1:5432", &proxy.addr.to_string(), 1);
    assert_ne!(via_proxy, db.url, "TEST_DATABASE_URL must point at 127.0.0.1:5432");
    let mut env = base_env(&via_proxy);
    env.push(("FINPAY_QRIS__DATABASE__ACQUIRE_TIMEOUT_SECS".into(), "1".into()));
    let app = TestApp::spawn_env(db, env).await;
    let token = app.token().await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let tasks = load(&app, &token, 8, stop.clone(), seen.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // While it is down: General Error, never a 2xx; not ready.
    let (status, v) = app
        .notify(
            &token,
            &unique_digits(),
            &notify_body("INV-DOWN", "FP-DOWN", "00", "1.00"),
        )
        .await;
    assert_eq!((status, v["responseCode"].as_str()), (500, Some("5005200")));
    let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    proxy.restore();
    // Recovers without a restart.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = app
            .notify(&token, &unique_digits(), &notify_body("INV-UP", "FP-UP", "00", "1.00"))
            .await;
        if status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.http.get(app.url("/health/ready")).send().await.unwrap().status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }

    let stored = stored_external_ids(&app).await;
    let (ok, refused) = check_answers(&seen.lock().unwrap(), &stored);
    assert!(
        ok > 0 && refused > 0,
        "the load saw both sides of the outage ({ok} ok, {refused} refused)"
    );
    app.stop().await;
}

async fn notifications_fail_closed_while_sqlite_is_locked_and_recover() {
    use sqlx::{Connection, Executor};
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token().await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let tasks = load(&app, &token, 4, stop.clone(), seen.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another process takes the write lock and keeps it past the busy timeout.
    let mut locker = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
    locker.execute("BEGIN EXCLUSIVE").await.unwrap();
    let (status, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-L", "FP-L", "00", "1.00"))
        .await;
    // General Error, or Timeout when the request also queued behind a batch that was
    // itself waiting out the lock: either way a 5xx that makes Finpay retry, never a 2xx.
    let answer = (status, v["responseCode"].as_str());
    assert!(
        answer == (500, Some("5005200")) || answer == (504, Some("5045200")),
        "{answer:?}"
    );
    locker.execute("ROLLBACK").await.unwrap();
    drop(locker);

    let (status, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-R", "FP-R", "00", "1.00"))
        .await;
    assert_eq!((status, v["responseCode"].as_str()), (200, Some("2005200")));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    let stored = stored_external_ids(&app).await;
    check_answers(&seen.lock().unwrap(), &stored);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_under_load() {
    notifications_fail_closed_while_postgres_is_unreachable_and_recover().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lock_under_load() {
    notifications_fail_closed_while_sqlite_is_locked_and_recover().await;
}

/// A replica that hangs mid-transaction (stopped, or cut off from the
/// database) holds its row locks only until PostgreSQL ends its idle
/// transaction, not until TCP gives up on it hours later.
#[tokio::test]
async fn postgres_ends_a_transaction_the_service_left_idle() {
    if !postgres_available().await {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let store = finpay_qris::store::PgStore::connect(&db.url, 1, 5).await.unwrap();
    let timeout: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(timeout, finpay_qris::store::IDLE_IN_TRANSACTION_TIMEOUT);
}

/// The write paths rely on READ COMMITTED (a statement sees what committed
/// before it): the service's connections use it even where the database's
/// default is stricter.
#[tokio::test]
async fn the_service_reads_committed_whatever_the_database_s_default() {
    if !postgres_available().await {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let name = db
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let alter = format!("ALTER DATABASE {name} SET default_transaction_isolation = 'repeatable read'");
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(&alter).execute(&mut c).await.unwrap();
    }
    let store = finpay_qris::store::PgStore::connect(&db.url, 1, 5).await.unwrap();
    let isolation: String = sqlx::query_scalar("SHOW transaction_isolation")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(isolation, "read committed");
}
