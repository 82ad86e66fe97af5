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
INSERT INTO webhook_endpoints (id, url, source, enabled, disabled_by, disabled_reason, secret, created_at, updated_at)
VALUES ('on', 'https://a.example/h', 'api', TRUE, NULL, NULL, 'whsec_x', now(), now()),
       ('off', 'https://b.example/h', 'api', FALSE, 'person', 'off', 'whsec_x', now(), now());
INSERT INTO events (id, type, cause, body, created_at)
SELECT 'F' || i, 'refund.failed', 'worker', '{}', now() FROM generate_series(1, 10) AS i;
INSERT INTO events (id, type, cause, body, created_at)
SELECT 'E' || i, 'endpoint.disabled', 'worker', '{}', now() FROM generate_series(1, 20000) AS i;
INSERT INTO deliveries (event_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
SELECT 'E' || i, 'off', 'pending', NULL, now(), now() FROM generate_series(1, 20000) AS i;
INSERT INTO deliveries (event_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
SELECT 'E' || i, 'on', 'pending', CASE WHEN i <= 10 THEN now() - interval '1 minute' ELSE now() + interval '1 hour' END,
       now(), now() FROM generate_series(1, 20000) AS i;
ANALYZE deliveries; ANALYZE webhook_endpoints; ANALYZE events;
";

/// The event list of one type, newest first, as `sql_events.rs` writes it.
const EVENTS_OF_A_TYPE: &str = "SELECT id FROM events WHERE type = 'refund.failed' ORDER BY id DESC LIMIT 50";

/// The plans of `statements` on a database holding `FILL`.
async fn plans(b: Backend, statements: &[&str]) -> Vec<String> {
    let db = TestDb::new(b).await;
    let store = finpay_qris::store::connect(&db.url, 2, 5).await.unwrap();
    store.migrate().await.unwrap();
    if b == Backend::Postgres {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(FILL).execute(&mut c).await.unwrap();
        let mut out = Vec::new();
        for s in statements {
            let sql = format!("EXPLAIN {}", s.replace("NOW", "now()"));
            let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&mut c).await.unwrap();
            out.push(rows.join("\n"));
        }
        out
    } else {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        let mut out = Vec::new();
        for s in statements {
            let sql = format!(
                "EXPLAIN QUERY PLAN {}",
                s.replace("NOW", "'2026-12-06T00:00:00.000Z'").replace('$', "?")
            );
            let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&sql).fetch_all(&mut c).await.unwrap();
            out.push(rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n"));
        }
        out
    }
}

async fn plan(b: Backend) -> String {
    plans(b, &[CLAIM]).await.remove(0)
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

/// Listing a rare type among 20,000 events of another reads that type's
/// entries in id order, never every event newest first; enabling an endpoint
/// reads only its parked deliveries on PostgreSQL, never its 20,000
/// scheduled ones; the minute's sweep reads only the scheduled ones.
async fn the_type_filter_and_enabling_read_by_index_never_every_row(b: Backend) {
    if b == Backend::Postgres && !common::postgres_available().await {
        return;
    }
    let lock = if b == Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let unpark = finpay_qris::store::endpoints::unpark_sql(lock)
        .replace("$1", "'on'")
        .replace("$2", "NOW");
    let sweep = finpay_qris::store::endpoints::park_of_disabled_sql(lock).replace("$1", "NOW");
    let plans = plans(b, &[EVENTS_OF_A_TYPE, &unpark, &sweep]).await;
    let (of_a_type, enabling, sweeping) = (&plans[0], &plans[1], &plans[2]);
    assert!(
        of_a_type.contains("events_by_type"),
        "planned without events_by_type:\n{of_a_type}"
    );
    assert!(!of_a_type.contains("Sort Key"), "sorts what it read:\n{of_a_type}");
    assert!(!of_a_type.contains("TEMP B-TREE"), "sorts what it read:\n{of_a_type}");
    // SQLite plans without statistics: it reads the endpoint's pending
    // deliveries, and has no parked index.
    let index = if b == Backend::Postgres {
        "deliveries_parked"
    } else {
        "deliveries_by_endpoint"
    };
    assert!(enabling.contains(index), "planned without {index}:\n{enabling}");
    // The sweep parks what is scheduled for a disabled endpoint: it reads the
    // scheduled deliveries, never the 20,000 parked ones nor every delivery.
    assert!(
        sweeping.contains("deliveries_due"),
        "planned without deliveries_due:\n{sweeping}"
    );
    assert!(
        !sweeping.contains("deliveries_by_endpoint"),
        "reads the parked ones:\n{sweeping}"
    );
    // (The update itself may join its 500 ids to a scan of this small table.)
    assert!(
        !sweeping.contains("Seq Scan on deliveries d"),
        "scans the deliveries:\n{sweeping}"
    );
}

crate::on_both_backends!(
    a_claim_reads_only_the_due_end_of_the_due_index,
    the_type_filter_and_enabling_read_by_index_never_every_row
);

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

/// The set-based executor reads each payment's last event number by index
/// also before `events` has statistics (a new deployment's first minutes,
/// before autovacuum analyses it), whatever the batch's size.
#[tokio::test]
async fn a_batch_reads_its_payments_last_event_numbers_by_index_before_any_statistics() {
    let Some((_db, mut c)) = common::migrated_postgres().await else {
        return;
    };
    sqlx::raw_sql(
        "INSERT INTO payments (id, partner_reference_no, amount_minor, currency, status, origin, created_at, updated_at) \
         SELECT 'P' || i, 'R' || i, 1000, 'IDR', 'paid', 'generated', now(), now() FROM generate_series(1, 20000) AS i; \
         INSERT INTO events (id, type, payment_id, sequence, cause, body, created_at) \
         SELECT 'E' || i, 'payment.paid', 'P' || i, 1, 'notification', '{}', now() FROM generate_series(1, 20000) AS i;",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let batch: Vec<String> = (1..=64).map(|i| format!("'P{}'", i * 300)).collect();
    let statement = finpay_qris::store::LAST_EVENT_SEQUENCES.replace("$1", &format!("ARRAY[{}]", batch.join(",")));
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {statement}"))
        .fetch_all(&mut c)
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("events_payment_id_sequence_key"), "not by index:\n{plan}");
    assert!(!plan.contains("Seq Scan on events"), "reads every event:\n{plan}");
}

/// A time range of events far in the past, as `list_outbox_events` reads it,
/// is found along `events_by_time` in its order: never every newer event,
/// never a sort.
#[tokio::test]
async fn a_time_range_of_events_is_read_along_their_creation_times() {
    let Some((_db, mut c)) = common::migrated_postgres().await else {
        return;
    };
    sqlx::raw_sql(
        "INSERT INTO events (id, type, cause, body, created_at) \
         SELECT 'E' || lpad(i::text, 8, '0'), 'endpoint.disabled', 'worker', '{}', now() - (50000 - i) * interval '1 minute' \
         FROM generate_series(1, 50000) AS i; ANALYZE events;",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let range = "SELECT id FROM events WHERE created_at >= now() - interval '30 days' \
                 AND created_at < now() - interval '29 days' ORDER BY created_at DESC, id DESC LIMIT 51";
    let rows: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {range}"))
        .fetch_all(&mut c)
        .await
        .unwrap();
    let plan = rows.join("\n");
    assert!(
        plan.contains("events_by_time"),
        "planned without events_by_time:\n{plan}"
    );
    assert!(!plan.contains("Sort Key"), "sorts what it read:\n{plan}");
    assert!(!plan.contains("Seq Scan on events"), "scans the events:\n{plan}");
}
