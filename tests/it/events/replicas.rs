//! Two replicas on one PostgreSQL database deliver together: every event
//! arrives once, and each delivery is sent and recorded by one of them.

use super::receiver::{Answer, Receiver};
use crate::api::support::post;
use crate::common::*;
use std::collections::HashMap;
use std::time::Duration;

fn fast_delivery(env: &mut Vec<(String, String)>) {
    for (k, v) in [
        ("FINPAY_QRIS__EVENTS__ALLOW_HTTP", "true"),
        ("FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS", "true"),
        ("FINPAY_QRIS__EVENTS__POLL_INTERVAL_MS", "10"),
        ("FINPAY_QRIS__EVENTS__BATCH_SIZE", "3"),
    ] {
        set_env(env, k, v);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_send_one_delivery_twice() {
    if !postgres_available().await {
        return;
    }
    let receiver = Receiver::start(vec![Answer::Slow(Duration::from_millis(30))]).await;
    let a = TestApp::spawn_with(Backend::Postgres, fast_delivery).await;
    let mut env = base_env(&a.db.url);
    fast_delivery(&mut env);
    let b = TestApp::spawn_env(a.db.shared(), env).await;
    let r = post(
        &a,
        "/api/v1/webhook-endpoints",
        &serde_json::json!({"url": receiver.url()}),
        None,
    )
    .await;
    assert_eq!(r.status, 201);

    let token = a.token().await;
    let n = 40;
    for _ in 0..n {
        let ext = unique_digits();
        let body = notify_body(&format!("S{ext}"), &format!("R{ext}"), "00", "1000.00");
        assert_eq!(a.notify(&token, &ext, &body).await.0, 200);
    }
    let got = receiver.wait_for(n).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in receiver.received() {
        *seen
            .entry(r.headers["webhook-id"].to_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), n, "{} requests", got.len());
    assert!(seen.values().all(|&k| k == 1), "an event was sent twice: {seen:?}");
    let succeeded = |app: &TestApp| {
        app.state
            .metrics
            .counter("finpay_qris_event_deliveries_total", &[("outcome", "delivered")])
    };
    assert_eq!(succeeded(&a) + succeeded(&b), n as u64);
    b.stop().await;
    a.stop().await;
}
