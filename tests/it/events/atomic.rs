//! An event and its change commit together: when the transaction fails after
//! the event was written (here a trigger refuses its delivery row), neither
//! the payment nor the event is left; once it succeeds, both are there.

use crate::api::support::post;
use crate::common::*;

async fn exec(url: &str, sql: &str) {
    use sqlx::{Connection, Executor};
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        c.execute(sql).await.unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        c.execute(sql).await.unwrap();
    }
}

/// Endpoints on loopback over HTTP may be created; nothing is sent to them.
async fn app_not_delivering(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |env| {
        set_env(env, "FINPAY_QRIS__EVENTS__ALLOW_HTTP", "true");
        set_env(env, "FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS", "true");
        set_env(env, "FINPAY_QRIS__EVENTS__DELIVERY_ENABLED", "false");
    })
    .await
}

async fn a_change_that_does_not_commit_leaves_no_event(backend: Backend) {
    let app = app_not_delivering(backend).await;
    let r = post(
        &app,
        "/api/v1/webhook-endpoints",
        &serde_json::json!({"url": "http://127.0.0.1:9/"}),
        None,
    )
    .await;
    assert_eq!(r.status, 201);
    let url = app.db.url.clone();
    if backend == Backend::Postgres {
        exec(
            &url,
            "CREATE FUNCTION refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
             CREATE TRIGGER refuse_delivery AFTER INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION refuse_delivery();",
        )
        .await;
    } else {
        exec(
            &url,
            "CREATE TRIGGER refuse_delivery AFTER INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .await;
    }
    let token = app.token().await;
    let ext = unique_digits();
    let body = notify_body(&format!("S{ext}"), &format!("R{ext}"), "00", "1000.00");
    let (status, answer) = app.notify(&token, &ext, &body).await;
    assert_ne!(answer["responseCode"], "2005200", "{status} {answer}");
    assert_eq!(crate::crash::query_i64(&url, "SELECT COUNT(*) FROM events").await, 0);
    assert_eq!(crate::crash::query_i64(&url, "SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(
        crate::crash::query_i64(&url, "SELECT COUNT(*) FROM notifications").await,
        0
    );

    // Finpay sends it again once the fault is gone: the change and its event, together.
    let drop = if backend == Backend::Postgres {
        "DROP TRIGGER refuse_delivery ON deliveries"
    } else {
        "DROP TRIGGER refuse_delivery"
    };
    exec(&url, drop).await;
    let (_, answer) = app.notify(&token, &ext, &body).await;
    assert_eq!(answer["responseCode"], "2005200", "{answer}");
    assert_eq!(crate::crash::query_i64(&url, "SELECT COUNT(*) FROM payments").await, 1);
    assert_eq!(crate::crash::query_i64(&url, "SELECT COUNT(*) FROM events").await, 1);
    assert_eq!(
        crate::crash::query_i64(&url, "SELECT COUNT(*) FROM deliveries").await,
        1
    );
    app.stop().await;
}

/// An endpoint deleted while a notification is being stored: the
/// notification waits for the delete and fans out to the endpoints left,
/// instead of failing on the deleted one's foreign key.
async fn a_notification_stored_while_an_endpoint_is_deleted_is_not_failed_by_it(backend: Backend) {
    let app = app_not_delivering(backend).await;
    let mut ids = Vec::new();
    for path in ["keep", "gone"] {
        let body = serde_json::json!({ "url": format!("http://127.0.0.1:9/{path}") });
        let r = post(&app, "/api/v1/webhook-endpoints", &body, None).await;
        assert_eq!(r.status, 201);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let url = app.db.url.clone();
    let delete = format!("DELETE FROM webhook_endpoints WHERE id = '{}'", ids[1]);
    let (deleting, deleted) = tokio::sync::oneshot::channel();
    let deleter = tokio::spawn(async move {
        use sqlx::{Connection, Executor};
        let hold = std::time::Duration::from_millis(500);
        if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            c.execute("BEGIN").await.unwrap();
            c.execute(delete.as_str()).await.unwrap();
            deleting.send(()).unwrap();
            tokio::time::sleep(hold).await;
            c.execute("COMMIT").await.unwrap();
        } else {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            c.execute("BEGIN IMMEDIATE").await.unwrap();
            c.execute(delete.as_str()).await.unwrap();
            deleting.send(()).unwrap();
            tokio::time::sleep(hold).await;
            c.execute("COMMIT").await.unwrap();
        }
    });
    deleted.await.unwrap();
    let token = app.token().await;
    let ext = unique_digits();
    let body = notify_body(&format!("S{ext}"), &format!("R{ext}"), "00", "1000.00");
    let (status, answer) = app.notify(&token, &ext, &body).await;
    deleter.await.unwrap();
    assert_eq!(answer["responseCode"], "2005200", "{status} {answer}");
    let url = &app.db.url;
    assert_eq!(crate::crash::query_i64(url, "SELECT COUNT(*) FROM deliveries").await, 1);
    let kept = format!("SELECT COUNT(*) FROM deliveries WHERE endpoint_id = '{}'", ids[0]);
    assert_eq!(
        crate::crash::query_i64(url, &kept).await,
        1,
        "the endpoint kept has its delivery"
    );
    app.stop().await;
}

on_both_backends!(
    a_change_that_does_not_commit_leaves_no_event,
    a_notification_stored_while_an_endpoint_is_deleted_is_not_failed_by_it
);
