//! On SQLite, every write runs on a connection of its own: readers holding
//! every other connection never hold up a notification or a token.

use crate::common::*;
use finpay_qris::domain::{Observation, ObservationSource};
use finpay_qris::snap::notify::{Amount, TransactionStatus};
use finpay_qris::store::{ConsoleStore, InboundNotification, IngestOutcome, SqliteStore, Store};
use sha2::{Digest, Sha256};

fn static_qr_paid(external_id: &str) -> InboundNotification {
    let raw_body = r#"{"originalReferenceNo":"FPS-1","latestTransactionStatus":"00","amount":{"value":"1000.00","currency":"IDR"}}"#;
    InboundNotification {
        partner_id: CLIENT_ID.into(),
        external_id: external_id.into(),
        jakarta_day: chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
        body_sha256: Sha256::digest(raw_body.as_bytes()).to_vec(),
        raw_body: raw_body.into(),
        headers_json: r#"{"x-external-id":"e"}"#.into(),
        verification: "symmetric:HMAC-SHA512".into(),
        received_at: finpay_qris::store::now(),
        observation: Observation {
            source: ObservationSource::Notification,
            original_reference_no: Some("FPS-1".into()),
            original_partner_reference_no: None,
            status: TransactionStatus::from_code("00").unwrap(),
            status_desc: None,
            amount: Some(Amount::parse("1000.00", "IDR").unwrap()),
            paid_time: None,
        },
    }
}

type Reader = sqlx::pool::PoolConnection<sqlx::Sqlite>;

/// A store with two read connections and a pool timeout of one second, both
/// read connections held.
async fn store_with_every_reader_held() -> (TestDb, SqliteStore, [Reader; 2]) {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = SqliteStore::connect(&db.url, 2, 1).await.unwrap();
    store.migrate().await.unwrap();
    let readers = [
        store.pool().acquire().await.unwrap(),
        store.pool().acquire().await.unwrap(),
    ];
    (db, store, readers)
}

#[tokio::test]
async fn a_notification_is_stored_while_readers_hold_every_read_connection() {
    let (_db, store, readers) = store_with_every_reader_held().await;

    let outcomes = store.ingest_notifications(&[static_qr_paid("X-1")]).await.unwrap();
    drop(readers);

    let [IngestOutcome::Applied(applied)] = &outcomes[..] else {
        panic!("{outcomes:?}")
    };
    let stored = store
        .get_payment(&applied.payment_id)
        .await
        .unwrap()
        .expect("the static QR's payment");
    assert_eq!(stored.status.as_str(), "paid");
}

#[tokio::test]
async fn a_single_statement_write_also_runs_on_the_write_connection() {
    let (_db, store, readers) = store_with_every_reader_held().await;
    let now = finpay_qris::store::now();

    store
        .insert_token(&[7; 32], CLIENT_ID, now, now + chrono::Duration::minutes(15))
        .await
        .expect("the token is stored while readers hold every read connection");
    drop(readers);
    let found = store.find_token(&[7; 32]).await.unwrap();
    assert_eq!(found.map(|(client, _)| client).as_deref(), Some(CLIENT_ID));
}

#[tokio::test]
async fn a_persons_action_is_recorded_on_the_write_connection() {
    let (_db, store, readers) = store_with_every_reader_held().await;
    let outcomes = store.ingest_notifications(&[static_qr_paid("X-2")]).await.unwrap();
    let [IngestOutcome::Applied(applied)] = &outcomes[..] else {
        panic!("{outcomes:?}")
    };

    store
        .record_action(&applied.payment_id, "ops", "refresh", &serde_json::json!({}))
        .await
        .expect("the action is recorded while readers hold every read connection");
    drop(readers);
    let actions = store.payment_actions(&applied.payment_id).await.unwrap();
    assert_eq!(actions.len(), 1);
}

/// The body of `static_qr_paid` with another amount: the same key, another body.
fn with_other_body(mut n: InboundNotification) -> InboundNotification {
    n.raw_body = n.raw_body.replace("1000.00", "2000.00");
    n.body_sha256 = Sha256::digest(n.raw_body.as_bytes()).to_vec();
    n
}

#[tokio::test]
async fn a_key_repeated_in_a_batch_is_a_replay_or_a_conflict_of_its_first() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = SqliteStore::connect(&db.url, 2, 5).await.unwrap();
    store.migrate().await.unwrap();
    let batch = [
        static_qr_paid("X-1"),
        static_qr_paid("X-1"),
        with_other_body(static_qr_paid("X-1")),
    ];

    let outcomes = store.ingest_notifications(&batch).await.unwrap();
    let again = store.ingest_notifications(&batch[1..]).await.unwrap();
    let none = store.ingest_notifications(&[]).await.unwrap();

    assert!(matches!(outcomes[0], IngestOutcome::Applied(_)), "{outcomes:?}");
    assert!(
        matches!(outcomes[1..], [IngestOutcome::Duplicate, IngestOutcome::Conflict]),
        "{outcomes:?}"
    );
    assert!(
        matches!(again[..], [IngestOutcome::Duplicate, IngestOutcome::Conflict]),
        "{again:?}"
    );
    assert!(none.is_empty(), "an empty batch stores nothing and is no error");
}

#[tokio::test]
async fn the_batchs_stored_keys_are_read_through_the_unique_key_not_by_a_scan() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = SqliteStore::connect(&db.url, 2, 5).await.unwrap();
    store.migrate().await.unwrap();
    // As `store/sql_effect.rs` (`stored_hashes_sql`) writes it, for a batch of two.
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT n.partner_id, n.external_id, n.jakarta_day, n.body_sha256 \
         FROM (VALUES (?1, ?2, ?3), (?4, ?5, ?6)) AS k JOIN notifications n ON n.partner_id = k.column1 \
         AND n.external_id = k.column2 AND n.jakarta_day = k.column3",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let plan: Vec<String> = plan.into_iter().map(|r| r.3).collect();

    assert!(
        plan.iter()
            .any(|step| step.starts_with("SEARCH n USING INDEX sqlite_autoindex_notifications_1")),
        "{plan:?}"
    );
    assert!(!plan.iter().any(|step| step.starts_with("SCAN n")), "{plan:?}");
}

/// An in-memory database is one shared cache, where a running read holds a
/// lock on the tables it read: a batch waits for the read to end instead of
/// failing (which would answer Finpay "try again later" for every read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_stores_a_batch_once_a_running_read_ends() {
    let store = SqliteStore::connect("sqlite::memory:", 2, 5).await.unwrap();
    store.migrate().await.unwrap();
    let mut read = store.pool().begin().await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&mut *read)
        .await
        .unwrap();
    let read_ends = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        read.commit().await.unwrap();
    });

    let outcomes = store.ingest_notifications(&[static_qr_paid("in-memory-1")]).await;

    read_ends.await.unwrap();
    assert!(
        matches!(outcomes.as_deref(), Ok([IngestOutcome::Applied(_)])),
        "{outcomes:?}"
    );
}
