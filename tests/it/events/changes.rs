use crate::api::support::{get, paid_by_notification};
use crate::common::{eventually, Backend, TestApp, TestDb};
use std::time::Duration;

async fn the_changes_feed_returns_each_change_once_in_commit_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = paid_by_notification(&app, "1000.00").await;
    let b = paid_by_notification(&app, "2000.00").await;
    // On PostgreSQL a change is listed once every transaction older than its
    // own has ended (the server's, other databases' included): wait for it.
    let page = eventually("both changes listed", Duration::from_secs(20), || async {
        let page = get(&app, "/api/v1/changes").await.json();
        (page["items"].as_array().unwrap().len() == 2).then_some(page)
    })
    .await;
    let ids: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["paymentId"])
        .collect();
    assert_eq!(ids, [&a["id"], &b["id"]]);
    let cursor = page["nextCursor"].as_str().unwrap().to_string();
    let empty = get(&app, &format!("/api/v1/changes?cursor={cursor}")).await.json();
    assert_eq!(empty["items"].as_array().unwrap().len(), 0);
    assert_eq!(empty["nextCursor"], cursor.as_str());
    let c = paid_by_notification(&app, "3000.00").await;
    let next = eventually("the third change listed", Duration::from_secs(20), || async {
        let next = get(&app, &format!("/api/v1/changes?cursor={cursor}")).await.json();
        (!next["items"].as_array().unwrap().is_empty()).then_some(next)
    })
    .await;
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
    assert_eq!(next["items"][0]["paymentId"], c["id"]);
    let bad = get(&app, "/api/v1/changes?cursor=bm90IGEgY3Vyc29y").await;
    assert_eq!(bad.problem(400)["field"], "cursor");
    app.stop().await;
}

on_both_backends!(the_changes_feed_returns_each_change_once_in_commit_order);

use serde_json::Value;

/// Two transactions write events; the one that began writing first commits
/// last. A read between the two commits must not return the second one's
/// event (its cursor would pass the first's), and the read after both
/// returns both, the first one's included.
#[tokio::test]
async fn a_change_an_older_transaction_commits_late_is_not_skipped() {
    if !crate::common::postgres_available().await {
        return;
    }
    use finpay_qris::store::EventStore;
    use sqlx::Connection;
    let db = TestDb::new(Backend::Postgres).await;
    let store = finpay_qris::store::PgStore::connect(&db.url, 4, 5).await.unwrap();
    finpay_qris::store::Store::migrate(&store).await.unwrap();
    let insert = |id: &'static str| {
        sqlx::query(
            "INSERT INTO events (id, type, cause, body, created_at) VALUES ($1, 'endpoint.disabled', 'worker', '{}', now())",
        )
        .bind(id)
    };
    let mut first = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut second = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut t1 = first.begin().await.unwrap();
    insert("evt_first").execute(&mut *t1).await.unwrap();
    let mut t2 = second.begin().await.unwrap();
    insert("evt_second").execute(&mut *t2).await.unwrap();
    t2.commit().await.unwrap();

    let early = store.changes(None, 100).await.unwrap();
    assert!(
        early.items.is_empty(),
        "returned before an older transaction ended: {:?}",
        early.items
    );
    t1.commit().await.unwrap();
    // Other tests' transactions on the server may hold the bound back a
    // moment, between the two transactions too: wait until both are below it.
    let late = eventually("both events listed", Duration::from_secs(20), || async {
        let page = store.changes(Some(&early.cursor), 100).await.unwrap();
        (page.items.len() >= 2).then_some(page)
    })
    .await;
    let ids: Vec<&str> = late.items.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["evt_first", "evt_second"]);
}
