//! `kill -9` under load: every notification answered `2005200` survives
//! exactly once, resending everything (as Finpay's retries would) has no
//! second effect, and nothing is left half-written.

use crate::common::*;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn start_server(db_url: &str, port: u16) -> Server {
    start_server_with(db_url, port, &[])
}

/// The binary serving `db_url` on `port`, with `extra` settings.
/// A server process, killed when dropped: a test that fails half-way must
/// not leave it running (it would go on working, and load the machine).
pub(crate) struct Server(Child);

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start_server_with(db_url: &str, port: u16, extra: &[(&str, String)]) -> Server {
    let env = base_env(db_url);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_finpay-qris"));
    cmd.arg("serve").stdout(Stdio::null()).stderr(Stdio::null());
    // No proxy exemptions from the machine: the proxy test sets its own proxy.
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("FINPAY_QRIS__SERVER__LISTEN", format!("127.0.0.1:{port}"));
    cmd.env("FINPAY_QRIS__API__LISTEN", format!("127.0.0.1:{}", free_port()));
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Server(cmd.spawn().expect("start finpay-qris"))
}

pub(crate) async fn wait_ready(http: &reqwest::Client, port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/health/ready")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn token(http: &reqwest::Client, port: u16) -> String {
    let r = token_request_at(
        http,
        &format!("http://127.0.0.1:{port}{TOKEN_PATH}"),
        CLIENT_ID,
        &now_ts(),
    )
    .await;
    r.json::<Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_string()
}

pub(crate) async fn query_i64(url: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

async fn stored_ids(url: &str) -> Vec<String> {
    use sqlx::Connection;
    let sql = "SELECT external_id FROM notifications";
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    }
}

async fn acknowledged_notifications_survive_kill_9_exactly_once(b: Backend) {
    let db = TestDb::new(b).await;
    let http = reqwest::Client::new();
    let port = free_port();
    let mut server = start_server(&db.url, port);
    wait_ready(&http, port).await;
    let tok = token(&http, port).await;

    // (external id, body, answered 2005200?)
    let sent: Arc<Mutex<Vec<(String, String, bool)>>> = Arc::default();
    let url = format!("http://127.0.0.1:{port}{NOTIFY_PATH}");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, tok, sent) = (http.clone(), url.clone(), tok.clone(), sent.clone());
            tokio::spawn(async move {
                loop {
                    let ext = unique_digits();
                    let body = notify_body(&format!("INV{ext}"), &format!("FP{ext}"), "00", "1000.00");
                    let req = signed_notify(&http, &url, NOTIFY_PATH, &tok, &ext, &body, &now_ts());
                    let answer = req.timeout(Duration::from_secs(5)).send().await;
                    let acked = match answer {
                        Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["responseCode"] == "2005200"),
                        Err(_) => false,
                    };
                    sent.lock().unwrap().push((ext, body, acked));
                    if !acked {
                        return; // the server is gone
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().expect("kill -9"); // SIGKILL on Unix: no shutdown, no flush
    let _ = server.wait();
    for t in tasks {
        let _ = t.await;
    }
    let sent = sent.lock().unwrap().clone();
    let acked: Vec<_> = sent.iter().filter(|s| s.2).collect();
    assert!(
        acked.len() > 10,
        "the load ran before the kill ({} acknowledged)",
        acked.len()
    );

    // Every acknowledged notification is there exactly once.
    let stored = stored_ids(&db.url).await;
    let mut unique = stored.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "a notification is stored twice");
    for (ext, _, _) in &acked {
        assert!(stored.contains(ext), "acknowledged {ext} was lost");
    }

    // Restart on the same database; Finpay resends everything.
    let port2 = free_port();
    let mut server = start_server(&db.url, port2);
    wait_ready(&http, port2).await;
    // The token issued before the crash is still valid: it lives in the database.
    let url2 = format!("http://127.0.0.1:{port2}{NOTIFY_PATH}");
    for (ext, body, _) in &sent {
        let r = signed_notify(&http, &url2, NOTIFY_PATH, &tok, ext, body, &now_ts())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ext}");
        assert_eq!(r.json::<Value>().await.unwrap()["responseCode"], "2005200");
    }
    let n = sent.len() as i64;
    assert_eq!(query_i64(&db.url, "SELECT COUNT(*) FROM notifications").await, n);
    assert_eq!(query_i64(&db.url, "SELECT COUNT(*) FROM payments").await, n);
    assert_eq!(
        query_i64(
            &db.url,
            "SELECT COUNT(*) FROM payment_events WHERE kind = 'notification'"
        )
        .await,
        n
    );
    // Nothing half-written.
    assert_eq!(
        query_i64(
            &db.url,
            "SELECT COUNT(*) FROM notifications WHERE payment_id IS NULL OR outcome = 'pending'"
        )
        .await,
        0
    );
    assert_eq!(
        query_i64(&db.url, "SELECT COUNT(*) FROM payments WHERE status <> 'paid'").await,
        0
    );
    server.kill().unwrap();
    let _ = server.wait();
}

on_both_backends!(acknowledged_notifications_survive_kill_9_exactly_once);
