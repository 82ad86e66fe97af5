//! Two replicas on one PostgreSQL database receiving the same notifications
//! at the same moment: each notification applied once, every duplicate
//! answered consistently.

use crate::common::*;
use serde_json::Value;

async fn two_replicas_apply_each_notification_once() {
    if !postgres_available().await {
        return;
    }
    let a = TestApp::spawn(Backend::Postgres).await;
    let env = base_env(&a.db.url);
    let b = TestApp::spawn_env(a.db.shared(), env).await;
    // A token issued by one replica is honoured by the other (it is in the shared database).
    let token = a.token().await;

    let mut sends = Vec::new();
    let mut keys = Vec::new();
    for i in 0..40 {
        let ext = unique_digits();
        let body = notify_body(&format!("INV-R{i}"), &format!("FP-R{i}"), "00", "1000.00");
        let ts = now_ts();
        for app in [&a, &b] {
            sends.push(signed_notify(&app.http, &app.url(NOTIFY_PATH), NOTIFY_PATH, &token, &ext, &body, &ts).send());
        }
        keys.push((ext, body));
    }
    for r in futures::future::join_all(sends).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["responseCode"], "2005200");
    }
    assert_eq!(count_notifications(&a.db.url).await, 40);
    for i in 0..40 {
        let p = a
            .state
            .store
            .get_payment(&format!("INV-R{i}"))
            .await
            .unwrap()
            .expect("payment");
        assert_eq!(p.status.as_str(), "paid");
        let events = a.state.store.payment_events(&p.id).await.unwrap();
        assert_eq!(
            events.iter().filter(|e| e.kind == "notification").count(),
            1,
            "INV-R{i}"
        );
    }
    // Same id, another body: a conflict on either replica.
    let (ext, _) = &keys[0];
    let other = notify_body("INV-R0", "FP-R0", "06", "1000.00");
    for app in [&a, &b] {
        let (status, v) = app.notify(&token, ext, &other).await;
        assert_eq!((status, v["responseCode"].as_str()), (409, Some("4095200")));
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_replicas() {
    two_replicas_apply_each_notification_once().await;
}
