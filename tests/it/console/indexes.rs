//! The console's reads stay fast on large tables: on PostgreSQL, with a
//! month of payments (ids rising with creation time, as UUIDv7 ids do), each
//! read is planned on one of the indexes beside its table in `0001_init.sql`,
//! never on a scan of the table.

use crate::common;

const FILL: &str = "
INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin,
                      paid_at, flagged, created_at, updated_at)
SELECT lpad((1000000 - i)::text, 36, '0'), 'P' || i, 'R' || i, 100000 + (i % 977) * 100, 'IDR',
       CASE WHEN i % 100 = 0 THEN 'pending' ELSE 'paid' END, 'generated',
       now() - i * interval '2 minutes', CASE WHEN i % 5000 = 0 THEN 'amount contradicts' END,
       now() - i * interval '2 minutes', now() - i * interval '2 minutes'
FROM generate_series(1, 30000) AS i;
INSERT INTO refunds (id, payment_id, partner_refund_no, amount_minor, reason, status, created_at, updated_at)
SELECT 'F' || i, lpad((1000000 - i)::text, 36, '0'), 'RF' || i, 1000, 'x', 'succeeded',
       now() - i * interval '2 minutes', now() - i * interval '2 minutes'
FROM generate_series(1, 30000, 3) AS i;
INSERT INTO notifications (partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, verification,
                           payment_id, outcome, received_at)
SELECT 'FINPAY', 'E' || i, current_date, sha256(i::text::bytea), NULL, NULL, 'symmetric',
       lpad((1000000 - i)::text, 36, '0'), 'applied', now() - i * interval '2 minutes'
FROM generate_series(1, 30000) AS i;
ANALYZE payments; ANALYZE refunds; ANALYZE notifications;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consoles_reads_use_their_indexes_on_a_month_of_payments() {
    let Some((_db, mut c)) = common::migrated_postgres().await else {
        return;
    };
    sqlx::raw_sql(FILL).execute(&mut c).await.unwrap();
    let day = "created_at >= now() - interval '1 day' AND created_at < now()";
    for (query, index) in [
        (
            "SELECT id FROM payments WHERE flagged IS NOT NULL ORDER BY id DESC LIMIT 51".to_string(),
            "payments_flagged",
        ),
        (
            "SELECT id FROM payments WHERE amount_minor = 150000 ORDER BY id DESC LIMIT 51".to_string(),
            "payments_by_amount",
        ),
        // A time range alone, as the store lists it: along the creation times,
        // a recent day and one three weeks back alike.
        (
            format!("SELECT id FROM payments WHERE {day} ORDER BY created_at DESC, id DESC LIMIT 51"),
            "payments_by_created",
        ),
        (
            "SELECT id FROM payments WHERE created_at >= now() - interval '22 days' AND created_at < now() - interval '21 days' \
             AND (created_at, id) < ((SELECT created_at FROM payments WHERE id = lpad('990000', 36, '0')), lpad('990000', 36, '0')) \
             ORDER BY created_at DESC, id DESC LIMIT 51"
                .to_string(),
            "payments_by_created",
        ),
        // A status, with or without a range three weeks back: along that
        // status's creation times.
        (
            "SELECT id FROM payments WHERE status = 'pending' ORDER BY created_at DESC, id DESC LIMIT 51".to_string(),
            "payments_by_status",
        ),
        (
            "SELECT id FROM payments WHERE status = 'pending' AND created_at >= now() - interval '22 days' \
             AND created_at < now() - interval '21 days' ORDER BY created_at DESC, id DESC LIMIT 51"
                .to_string(),
            "payments_by_status",
        ),
        (
            "SELECT id FROM payments WHERE paid_at >= now() - interval '1 day' AND paid_at < now() ORDER BY paid_at, id"
                .to_string(),
            "payments_by_paid",
        ),
        (format!("SELECT id FROM refunds WHERE {day} ORDER BY created_at, id"), "refunds_by_created"),
        (
            "SELECT count(*) FROM notifications WHERE received_at >= now() - interval '1 day' AND received_at < now()"
                .to_string(),
            "notifications_by_received",
        ),
        (format!("SELECT status, count(*) FROM payments WHERE {day} GROUP BY status"), "payments_by_created"),
    ] {
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {query}")).fetch_all(&mut c).await.unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{query}\nis planned without {index}:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{query}\nscans a table:\n{plan}");
    }
}
