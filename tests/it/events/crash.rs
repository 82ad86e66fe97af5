//! `kill -9` under load loses no event: every paid payment has its event,
//! written with it, and after a restart every event reaches the endpoint at
//! least once (deliveries cut short by the kill come due again when their
//! leases end).

use super::receiver::{Answer, Receiver};
use crate::common::*;
use crate::crash::{query_i64, start_server_with, token, wait_ready};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn event_ids(url: &str) -> HashSet<String> {
    use sqlx::Connection;
    let sql = "SELECT id FROM events";
    let ids: Vec<String> = if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    };
    ids.into_iter().collect()
}

async fn no_event_is_lost_to_kill_9_and_each_is_delivered_after_restart(b: Backend) {
    let receiver = Receiver::start(vec![Answer::Status(200)]).await;
    let db = TestDb::new(b).await;
    let mut settings = super::configured_endpoint(receiver.url());
    settings.push(("FINPAY_QRIS__EVENTS__TIMEOUT_MS", "1000".to_string()));
    let http = reqwest::Client::new();
    let port = free_port();
    let mut server = start_server_with(&db.url, port, &settings);
    wait_ready(&http, port).await;
    let tok = token(&http, port).await;
    let acked = Arc::new(AtomicUsize::new(0));
    let url = format!("http://127.0.0.1:{port}{NOTIFY_PATH}");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, tok, acked) = (http.clone(), url.clone(), tok.clone(), acked.clone());
            tokio::spawn(async move {
                loop {
                    let ext = unique_digits();
                    let body = notify_body(&format!("INV{ext}"), &format!("FP{ext}"), "00", "1000.00");
                    let req = signed_notify(&http, &url, NOTIFY_PATH, &tok, &ext, &body, &now_ts());
                    let ok = match req.timeout(Duration::from_secs(5)).send().await {
                        Ok(r) => r.json::<Value>().await.is_ok_and(|v| v["responseCode"] == "2005200"),
                        Err(_) => false,
                    };
                    if !ok {
                        return;
                    }
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Kill while deliveries are flowing (and the load has seen its answers:
    // deliveries can arrive before a busy client has read them).
    eventually("deliveries under load", Duration::from_secs(20), || async {
        (receiver.received().len() >= 20 && acked.load(Ordering::Relaxed) > 10).then_some(())
    })
    .await;
    server.kill().expect("kill -9");
    let _ = server.wait();
    for t in tasks {
        let _ = t.await;
    }
    assert!(acked.load(Ordering::Relaxed) > 10, "the load ran before the kill");

    // Every stored payment (all paid) has its one event and its delivery; no
    // event without its payment. Counted in one statement, one snapshot: a
    // commit the server sent just before it was killed may still land.
    let unmatched = query_i64(
        &db.url,
        "SELECT ABS(p - e) + ABS(p - d) FROM (SELECT (SELECT COUNT(*) FROM payments) AS p, \
         (SELECT COUNT(*) FROM events WHERE type = 'payment.paid') AS e, (SELECT COUNT(*) FROM deliveries) AS d) AS c",
    )
    .await;
    assert_eq!(
        unmatched, 0,
        "payments, their payment.paid events and deliveries differ in number"
    );
    let stored = event_ids(&db.url).await;

    let port2 = free_port();
    let mut server = start_server_with(&db.url, port2, &settings);
    wait_ready(&http, port2).await;
    // Leases cut by the kill run out (the attempt timeout + 10 s), then those are sent again.
    eventually("every event delivered", Duration::from_secs(90), || async {
        let got: HashSet<String> = receiver
            .received()
            .iter()
            .filter_map(|r| {
                r.headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .map(String::from)
            })
            .collect();
        stored.is_subset(&got).then_some(())
    })
    .await;
    server.kill().unwrap();
    let _ = server.wait();
}

on_both_backends!(no_event_is_lost_to_kill_9_and_each_is_delivered_after_restart);
