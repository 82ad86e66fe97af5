use crate::api::support::{get, paid_by_notification};
use crate::common::{Backend, TestApp, TestDb};

async fn the_changes_feed_returns_each_change_once_in_commit_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = paid_by_notification(&app, "1000.00").await;
    let b = paid_by_notification(&app, "2000.00").await;
    let page = get(&app, "/api/v1/changes").await.json();
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
    let next = get(&app, &format!("/api/v1/changes?cursor={cursor}")).await.json();
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
    assert_eq!(next["items"][0]["paymentId"], c["id"]);
    let bad = get(&app, "/api/v1/changes?cursor=bm90IGEgY3Vyc29y").await;
    assert_eq!(bad.problem(400)["field"], "cursor");
    let twice = get(&app, "/api/v1/changes?cursor=1&cursor=2").await;
    assert_eq!(twice.problem(400)["field"], "cursor");
    let never_given = get(&app, "/api/v1/changes?cursor=999999999999").await;
    assert_eq!(never_given.problem(409)["field"], "cursor");
    app.stop().await;
}

on_both_backends!(the_changes_feed_returns_each_change_once_in_commit_order);

use serde_json::Value;

/// A PostgreSQL store of its own, migrated, with the connection string.
async fn pg_store() -> Option<(TestDb, finpay_qris::store::PgStore)> {
    if !crate::common::postgres_available().await {
        return None;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let store = finpay_qris::store::PgStore::connect(&db.url, 4, 5).await.unwrap();
    finpay_qris::store::Store::migrate(&store).await.unwrap();
    Some((db, store))
}

/// An event inserted in SQL: about `payment` at `sequence`, or about none.
fn insert_event<'q>(
    id: &'q str,
    payment: Option<(&'q str, i64)>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(
        "INSERT INTO events (id, type, payment_id, sequence, cause, body, created_at) \
         VALUES ($1, CASE WHEN $2::text IS NULL THEN 'endpoint.disabled' ELSE 'payment.paid' END, $2, $3, 'worker', '{}', now())",
    )
    .bind(id)
    .bind(payment.map(|p| p.0))
    .bind(payment.map(|p| p.1))
}

/// Reads the feed after `cursor` to its end, a page of `limit` at a time.
async fn read_to_end(store: &finpay_qris::store::PgStore, cursor: &str, limit: i64) -> (Vec<String>, String) {
    use finpay_qris::store::EventStore;
    let (mut ids, mut cursor) = (Vec::new(), cursor.to_string());
    loop {
        let page = store.changes(Some(&cursor), limit).await.unwrap();
        if page.items.is_empty() {
            return (ids, cursor);
        }
        ids.extend(page.items.into_iter().map(|e| e.id));
        cursor = page.cursor;
    }
}

/// Two transactions write events; the one that began writing first commits
/// last. A read between the two commits returns the second one's event; the
/// read after both returns the first one's, which a cursor past the second
/// did not skip.
#[tokio::test]
async fn a_change_an_older_transaction_commits_late_is_not_skipped() {
    let Some((db, store)) = pg_store().await else { return };
    use sqlx::Connection;
    let mut first = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut second = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut t1 = first.begin().await.unwrap();
    insert_event("evt_first", None).execute(&mut *t1).await.unwrap();
    let mut t2 = second.begin().await.unwrap();
    insert_event("evt_second", None).execute(&mut *t2).await.unwrap();
    t2.commit().await.unwrap();

    let (early, cursor) = read_to_end(&store, "0", 100).await;
    assert_eq!(early, ["evt_second"]);
    t1.commit().await.unwrap();
    let (late, _) = read_to_end(&store, &cursor, 100).await;
    assert_eq!(late, ["evt_first"]);
}

/// Two transactions change one payment. The one that changes it second began
/// writing first (on another row), then waited for the payment's row lock:
/// its transaction id is the lower one, yet the feed lists the payment's
/// changes in `sequence` order.
#[tokio::test]
async fn a_payment_s_changes_are_listed_in_order_even_when_the_later_began_writing_first() {
    let Some((db, store)) = pg_store().await else { return };
    use sqlx::Connection;
    let payment = crate::common::insert_pending_payment(&store, "INV-FEED-ORDER", 100_000).await;
    let (_, cursor) = read_to_end(&store, "0", 100).await;
    let lock = "SELECT id FROM payments WHERE id = $1 FOR UPDATE";
    let mut later = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut earlier = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut t_later = later.begin().await.unwrap();
    insert_event("evt_other_change", None)
        .execute(&mut *t_later)
        .await
        .unwrap();
    let mut t_earlier = earlier.begin().await.unwrap();
    sqlx::query(lock)
        .bind(&payment.id)
        .execute(&mut *t_earlier)
        .await
        .unwrap();
    insert_event("evt_sequence_1", Some((&payment.id, 1)))
        .execute(&mut *t_earlier)
        .await
        .unwrap();
    t_earlier.commit().await.unwrap();
    sqlx::query(lock)
        .bind(&payment.id)
        .execute(&mut *t_later)
        .await
        .unwrap();
    insert_event("evt_sequence_2", Some((&payment.id, 2)))
        .execute(&mut *t_later)
        .await
        .unwrap();
    t_later.commit().await.unwrap();

    let (ids, _) = read_to_end(&store, &cursor, 100).await;
    assert_eq!(ids, ["evt_other_change", "evt_sequence_1", "evt_sequence_2"]);
}

/// More events wait unread than one read numbers. The payment's second
/// change is among the first a read numbers (its transaction began writing
/// first); its first change is not, so the read numbers it with it, before
/// it. Every event is listed once.
#[tokio::test]
async fn a_long_backlog_is_numbered_over_several_reads_in_order() {
    let Some((db, store)) = pg_store().await else { return };
    use sqlx::Connection;
    let payment = crate::common::insert_pending_payment(&store, "INV-FEED-BACKLOG", 100_000).await;
    let (_, cursor) = read_to_end(&store, "0", 100).await;
    let mut a = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut b = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut t_second = a.begin().await.unwrap();
    insert_event("evt_sequence_2", Some((&payment.id, 2)))
        .execute(&mut *t_second)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (id, type, cause, body, created_at) \
         SELECT 'evt_' || lpad(to_hex(g), 32, '0'), 'endpoint.disabled', 'worker', '{}', now() \
         FROM generate_series(1, 1500) g",
    )
    .execute(&mut b)
    .await
    .unwrap();
    insert_event("evt_sequence_1", Some((&payment.id, 1)))
        .execute(&mut b)
        .await
        .unwrap();
    t_second.commit().await.unwrap();

    let (ids, _) = read_to_end(&store, &cursor, 200).await;
    assert_eq!(ids.len(), 1502);
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 1502, "an event was listed twice");
    let at = |id: &str| ids.iter().position(|i| i == id).unwrap();
    assert!(at("evt_sequence_1") < at("evt_sequence_2"), "{ids:?}");
}

/// While another read holds the numbering, a read does not wait for it: it
/// lists what is already numbered, and the read after lists the rest.
#[tokio::test]
async fn a_read_during_another_numbering_lists_what_is_numbered_without_waiting() {
    let Some((db, store)) = pg_store().await else { return };
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    insert_event("evt_numbered", None).execute(&mut c).await.unwrap();
    let (first, cursor) = read_to_end(&store, "0", 100).await;
    assert_eq!(first, ["evt_numbered"]);
    insert_event("evt_waiting", None).execute(&mut c).await.unwrap();
    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut numbering = other.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock('events'::regclass::oid::int, 0)")
        .execute(&mut *numbering)
        .await
        .unwrap();
    let during = tokio::time::timeout(std::time::Duration::from_secs(5), read_to_end(&store, "0", 100))
        .await
        .expect("the read waited for the other numbering");
    assert_eq!(during.0, ["evt_numbered"]);
    numbering.rollback().await.unwrap();
    let (after, _) = read_to_end(&store, &cursor, 100).await;
    assert_eq!(after, ["evt_waiting"]);
}
