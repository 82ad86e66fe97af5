//! A claim of due deliveries reads the due end of `deliveries_due`, in the
//! order it takes them, on both backends: never the deliveries parked for a
//! disabled endpoint, nor those scheduled later, however many there are. And
//! the changes feed numbers only the events it has not numbered yet.

use crate::common::{self, Backend, TestDb};
use sqlx::Connection;

/// The claim's read, as `sql_events.rs` writes it.
const CLAIM: &str = "SELECT d.id FROM deliveries d WHERE d.status = 'pending' AND d.next_attempt_at <= NOW \
    AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = d.endpoint_id AND w.enabled = TRUE) \
    ORDER BY d.next_attempt_at, d.id LIMIT 16";

/// Two endpoints: `off` disabled with 20,000 parked deliveries, `on` with
/// 20,000 scheduled an hour ahead and 10 due.
const FILL: &str = "
INSERT INTO webhook_endpoints (id, url, source, enabled, disabled_reason, secret, created_at, updated_at)
VALUES ('on', 'https://a.example/h', 'api', TRUE, NULL, 'whsec_x', now(), now()),
       ('off', 'https://b.example/h', 'api', FALSE, 'off', 'whsec_x', now(), now());
INSERT INTO events (id, type, cause, body, created_at)
SELECT 'E' || i, 'endpoint.disabled', 'worker', '{}', now() FROM generate_series(1, 20000) AS i;
INSERT INTO deliveries (event_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
SELECT 'E' || i, 'off', 'pending', NULL, now(), now() FROM generate_series(1, 20000) AS i;
INSERT INTO deliveries (event_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
SELECT 'E' || i, 'on', 'pending', CASE WHEN i <= 10 THEN now() - interval '1 minute' ELSE now() + interval '1 hour' END,
       now(), now() FROM generate_series(1, 20000) AS i;
ANALYZE deliveries; ANALYZE webhook_endpoints; ANALYZE events;
";

async fn plan(b: Backend) -> String {
    let db = TestDb::new(b).await;
    let store = finpay_qris::store::connect(&db.url, 2, 5).await.unwrap();
    store.migrate().await.unwrap();
    if b == Backend::Postgres {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(FILL).execute(&mut c).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {}", CLAIM.replace("NOW", "now()")))
            .fetch_all(&mut c)
            .await
            .unwrap();
        rows.join("\n")
    } else {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            CLAIM.replace("NOW", "'2026-12-06T00:00:00.000Z'")
        );
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&sql).fetch_all(&mut c).await.unwrap();
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
    }
}

async fn a_claim_reads_only_the_due_end_of_the_due_index(b: Backend) {
    if b == Backend::Postgres && !common::postgres_available().await {
        return;
    }
    let plan = plan(b).await;
    assert!(
        plan.contains("deliveries_due"),
        "planned without deliveries_due:\n{plan}"
    );
    assert!(
        !plan.contains("Seq Scan on deliveries"),
        "scans the deliveries:\n{plan}"
    );
    assert!(!plan.contains("TEMP B-TREE"), "sorts what it read:\n{plan}");
    assert!(!plan.contains("Sort Key"), "sorts what it read:\n{plan}");
}

crate::on_both_backends!(a_claim_reads_only_the_due_end_of_the_due_index);

/// Reading the changes feed numbers what was committed since the last read:
/// with 20,000 events numbered and 200,000 not, the numbering takes the first
/// of those not numbered from their own index, in its order, and the earlier
/// events of their payments by payment, never sorting or reading every event
/// not numbered, nor every event.
#[tokio::test]
async fn numbering_the_changes_feed_reads_only_what_is_not_numbered() {
    let Some((_db, mut c)) = common::migrated_postgres().await else {
        return;
    };
    sqlx::raw_sql(
        "INSERT INTO events (id, type, cause, body, created_at, feed_position) \
         SELECT 'E' || i, 'endpoint.disabled', 'worker', '{}', now(), i FROM generate_series(1, 20000) AS i; \
         INSERT INTO events (id, type, cause, body, created_at) \
         SELECT 'N' || i, 'endpoint.disabled', 'worker', '{}', now() FROM generate_series(1, 200000) AS i; \
         ANALYZE events;",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let explain = format!("EXPLAIN {}", finpay_qris::store::NUMBER_CHANGES.replace("$1", "1000"));
    let plan: Vec<String> = sqlx::query_scalar(&explain).fetch_all(&mut c).await.unwrap();
    let plan = plan.join("\n");
    assert!(
        plan.contains("events_not_numbered"),
        "planned without events_not_numbered:\n{plan}"
    );
    assert!(
        !plan.contains("Sort Key: events.txid"),
        "sorts what is not numbered:\n{plan}"
    );
    assert!(
        plan.contains("events_payment_id_sequence_key"),
        "earlier events not found by payment:\n{plan}"
    );
    assert!(
        !plan.contains("Index Cond: (feed_position IS NULL)"),
        "reads every event not numbered:\n{plan}"
    );
    assert!(!plan.contains("Seq Scan on events"), "reads every event:\n{plan}");
}
