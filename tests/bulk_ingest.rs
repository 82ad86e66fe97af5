//! PostgreSQL stores a batch of notifications with set-based statements
//! (`store/postgres/bulk.rs`). These properties hold it to the item-by-item
//! path: random batches (duplicates, conflicting bodies, several notifications
//! for one payment, static-QR payments, every status, contradicting amounts)
//! are stored in one database a batch at a time and in another one
//! notification at a time, in the order the item-by-item path takes them; the
//! answers, payments, events and notification rows must be the same.

mod common;

use common::*;
use finpay_qris::domain::Observation;
use finpay_qris::snap::notify::{Amount, TransactionStatus};
use finpay_qris::store::{
    expand_stored_events, InboundNotification, IngestOutcome, NewPayment, PaymentEvent, PgStore, Store,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

struct Dbs {
    rt: tokio::runtime::Runtime,
    item_by_item: Arc<PgStore>,
    bulk: Arc<PgStore>,
    urls: (String, String),
}

/// Two fresh databases shared by all cases (each case uses its own references).
fn dbs() -> Option<&'static Dbs> {
    static DBS: OnceLock<Option<Dbs>> = OnceLock::new();
    DBS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (a, b) = rt.block_on(async {
            if !postgres_available().await {
                return None;
            }
            let a = TestDb::new(Backend::Postgres).await.url;
            let b = TestDb::new(Backend::Postgres).await.url;
            Some((a, b))
        })?;
        let (sa, sb) = rt.block_on(async {
            let sa = Arc::new(PgStore::connect(&a, 4, 5).await.unwrap());
            let sb = Arc::new(PgStore::connect(&b, 4, 5).await.unwrap());
            sa.migrate().await.unwrap();
            sb.migrate().await.unwrap();
            // Every batch that can be stored by one speculative statement is
            // tried that way, so the properties cover that path and its misses.
            sb.set_speculation_pause_after_miss(0);
            (sa, sb)
        });
        Some(Dbs {
            rt,
            item_by_item: sa,
            bulk: sb,
            urls: (a, b),
        })
    })
    .as_ref()
}

#[derive(Debug, Clone)]
struct Item {
    ext: u8,
    /// 0..4: our payment INV-k / Finpay's FP-k; 4..6: a static QR known only by Finpay's reference.
    payment: u8,
    status: &'static str,
    amount: &'static str,
}

fn item() -> impl Strategy<Value = Item> {
    (
        0u8..8,
        0u8..6,
        prop::sample::select(vec!["00", "01", "02", "03", "04", "05", "06", "07", "08"]),
        prop::sample::select(vec!["1000.00", "1000.00", "2500.00"]),
    )
        .prop_map(|(ext, payment, status, amount)| Item {
            ext,
            payment,
            status,
            amount,
        })
}

fn notification(case: &str, it: &Item, at: chrono::DateTime<chrono::Utc>) -> InboundNotification {
    let (prn, rn) = if it.payment < 4 {
        (
            Some(format!("{case}INV-{}", it.payment)),
            format!("{case}FP-{}", it.payment),
        )
    } else {
        (None, format!("{case}FPS-{}", it.payment))
    };
    let status = TransactionStatus::from_code(it.status).unwrap();
    let raw_body = format!(
        r#"{{"originalReferenceNo":"{rn}","originalPartnerReferenceNo":{},"latestTransactionStatus":"{}","amount":{{"value":"{}","currency":"IDR"}}}}"#,
        prn.as_ref()
            .map(|p| format!("\"{p}\""))
            .unwrap_or_else(|| "null".into()),
        it.status,
        it.amount
    );
    InboundNotification {
        partner_id: CLIENT_ID.into(),
        external_id: format!("{case}X{}", it.ext),
        jakarta_day: chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        body_sha256: Sha256::digest(raw_body.as_bytes()).to_vec(),
        raw_body,
        headers_json: "{}".into(),
        verification: "symmetric:HMAC-SHA512".into(),
        received_at: at,
        observation: Observation {
            source: finpay_qris::domain::ObservationSource::Notification,
            original_reference_no: Some(rn),
            original_partner_reference_no: prn,
            status,
            status_desc: Some("desc".into()),
            amount: Some(Amount::parse(it.amount, "IDR").unwrap()),
            paid_time: None,
        },
    }
}

/// An outcome with the payment named by its references instead of its id.
async fn canonical(store: &dyn Store, o: IngestOutcome) -> String {
    match o {
        IngestOutcome::Applied(mut a) => {
            let p = store.get_payment(&a.payment_id).await.unwrap().unwrap();
            a.payment_id = format!("{:?}/{:?}", p.partner_reference_no, p.reference_no);
            format!("{a:?}")
        }
        other => format!("{other:?}"),
    }
}

/// Everything the case wrote, with ids replaced by references.
async fn snapshot(url: &str, case: &str) -> Vec<String> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let like = format!("{case}%");
    let mut out = Vec::new();
    let payments = sqlx::query(
        "SELECT partner_reference_no, reference_no, amount_minor, currency, status, origin, paid_at, flagged, \
         finpay_status, created_at, updated_at, next_check_at, check_attempts, refunded_minor \
         FROM payments WHERE partner_reference_no LIKE $1 OR reference_no LIKE $1 \
         ORDER BY partner_reference_no NULLS LAST, reference_no",
    )
    .bind(&like)
    .fetch_all(&mut c)
    .await
    .unwrap();
    for r in payments {
        out.push(format!(
            "payment {:?} {:?} {} {} {} {} {:?} {:?} {:?} {} {} {:?} {} {}",
            r.get::<Option<String>, _>(0),
            r.get::<Option<String>, _>(1),
            r.get::<i64, _>(2),
            r.get::<String, _>(3),
            r.get::<String, _>(4),
            r.get::<String, _>(5),
            r.get::<Option<chrono::DateTime<chrono::Utc>>, _>(6),
            r.get::<Option<String>, _>(7),
            r.get::<Option<String>, _>(8),
            r.get::<chrono::DateTime<chrono::Utc>, _>(9),
            r.get::<chrono::DateTime<chrono::Utc>, _>(10),
            r.get::<Option<chrono::DateTime<chrono::Utc>>, _>(11),
            r.get::<i32, _>(12),
            r.get::<i64, _>(13),
        ));
    }
    let ext_of: HashMap<i64, String> =
        sqlx::query("SELECT id, external_id FROM notifications WHERE external_id LIKE $1")
            .bind(&like)
            .fetch_all(&mut c)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    let rows = sqlx::query(
        "SELECT e.id, e.payment_id, e.kind, e.detail, e.created_at, p.partner_reference_no, p.reference_no \
         FROM payment_events e JOIN payments p ON p.id = e.payment_id \
         WHERE p.partner_reference_no LIKE $1 OR p.reference_no LIKE $1 ORDER BY e.id",
    )
    .bind(&like)
    .fetch_all(&mut c)
    .await
    .unwrap();
    // The events as a payment's trail shows them (a notification stored with
    // its status change in one row reads as both), since the paths may store
    // them differently; their ids are the database's and differ between runs.
    let refs: HashMap<String, (Option<String>, Option<String>)> =
        rows.iter().map(|r| (r.get(1), (r.get(5), r.get(6)))).collect();
    let stored = rows
        .iter()
        .map(|r| PaymentEvent {
            id: r.get(0),
            payment_id: r.get(1),
            kind: r.get(2),
            detail: r.get(3),
            created_at: r.get(4),
        })
        .collect();
    for e in expand_stored_events(stored) {
        let mut detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
        if let Some(id) = detail.get("notificationId").and_then(|v| v.as_i64()) {
            detail["notificationId"] = serde_json::Value::String(ext_of[&id].clone());
        }
        let (prn, rn) = &refs[&e.payment_id];
        out.push(format!(
            "event {} {} {} {:?} {:?}",
            e.kind, detail, e.created_at, prn, rn
        ));
    }
    let notifications = sqlx::query(
        "SELECT n.external_id, n.body_sha256, n.outcome, n.response_code, n.response_message, n.received_at, \
         p.partner_reference_no, p.reference_no FROM notifications n LEFT JOIN payments p ON p.id = n.payment_id \
         WHERE n.external_id LIKE $1 ORDER BY n.external_id",
    )
    .bind(&like)
    .fetch_all(&mut c)
    .await
    .unwrap();
    for r in notifications {
        out.push(format!(
            "notification {} {} {} {} {} {} {:?} {:?}",
            r.get::<String, _>(0),
            hex::encode(r.get::<Vec<u8>, _>(1)),
            r.get::<String, _>(2),
            r.get::<String, _>(3),
            r.get::<String, _>(4),
            r.get::<chrono::DateTime<chrono::Utc>, _>(5),
            r.get::<Option<String>, _>(6),
            r.get::<Option<String>, _>(7),
        ));
    }
    let _ = c.close().await;
    out
}

async fn seed(store: &dyn Store, case: &str, base: chrono::DateTime<chrono::Utc>) {
    // INV-0 and INV-1 were generated by us; INV-2 and INV-3 arrive as static payments.
    for k in 0..2 {
        store
            .insert_payment(&NewPayment {
                id: format!("{case}pay-{k}"),
                partner_reference_no: format!("{case}INV-{k}"),
                amount_minor: 100_000,
                currency: "IDR".into(),
                note: None,
                valid_until: base + chrono::Duration::seconds(900),
                created_at: base,
            })
            .await
            .unwrap();
    }
}

/// A notification of the amount every seeded payment asks for.
fn for_the_full_amount(ext: u8, payment: u8, status: &'static str) -> Item {
    Item {
        ext,
        payment,
        status,
        amount: "1000.00",
    }
}

static CASE: AtomicUsize = AtomicUsize::new(0);

fn check(batches: Vec<Vec<Item>>) -> Result<(), TestCaseError> {
    let Some(dbs) = dbs() else { return Ok(()) };
    check_on(&dbs.bulk, batches)
}

/// `check` with the batches stored by the given store (on the bulk database).
fn check_on(bulk: &PgStore, batches: Vec<Vec<Item>>) -> Result<(), TestCaseError> {
    let Some(dbs) = dbs() else { return Ok(()) };
    let case = format!("c{}{}-", std::process::id(), CASE.fetch_add(1, Ordering::Relaxed));
    dbs.rt.block_on(async {
        let base = finpay_qris::store::now() - chrono::Duration::seconds(60);
        seed(dbs.item_by_item.as_ref(), &case, base).await;
        seed(bulk, &case, base).await;
        let mut tick = 0i64;
        for batch in batches {
            let items: Vec<InboundNotification> = batch
                .iter()
                .map(|it| {
                    tick += 1;
                    notification(&case, it, base + chrono::Duration::milliseconds(tick))
                })
                .collect();
            // Reference: one at a time, in the item-by-item path's (stable) key order.
            let mut order: Vec<usize> = (0..items.len()).collect();
            order.sort_by(|&a, &b| items[a].external_id.cmp(&items[b].external_id));
            let mut expected = vec![String::new(); items.len()];
            for i in order {
                let mut one = dbs
                    .item_by_item
                    .ingest_item_by_item(std::slice::from_ref(&items[i]))
                    .await
                    .unwrap();
                expected[i] = canonical(dbs.item_by_item.as_ref(), one.pop().unwrap()).await;
            }
            let got = bulk.ingest_notifications(&items).await.unwrap();
            let mut actual = Vec::new();
            for o in got {
                actual.push(canonical(bulk, o).await);
            }
            prop_assert_eq!(&actual, &expected, "answers differ for batch {:?}", batch);
        }
        let a = snapshot(&dbs.urls.0, &case).await;
        let b = snapshot(&dbs.urls.1, &case).await;
        prop_assert_eq!(b, a);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_batch_stored_in_bulk_has_the_effects_of_storing_it_item_by_item(
        batches in prop::collection::vec(prop::collection::vec(item(), 1..12), 1..4)
    ) {
        check(batches)?;
    }
}

#[test]
fn a_batch_with_a_replay_of_an_earlier_batch_answers_it_from_the_stored_row() {
    let it = for_the_full_amount;
    check(vec![
        vec![it(1, 0, "03"), it(2, 4, "00")],
        // ext 1 again with the same body (duplicate), ext 2 with another body (conflict),
        // twice the same new key in one batch, and a settlement of INV-0.
        vec![
            it(1, 0, "03"),
            it(2, 4, "06"),
            it(3, 0, "00"),
            it(3, 0, "00"),
            it(4, 0, "00"),
            it(4, 0, "06"),
        ],
    ])
    .unwrap();
}

/// A store of its own on the bulk database, so that its path counters count
/// only the test's own batches.
fn own_bulk_store(dbs: &Dbs) -> PgStore {
    let store = dbs.rt.block_on(PgStore::connect(&dbs.urls.1, 2, 5)).unwrap();
    store.set_speculation_pause_after_miss(0);
    store
}

#[test]
fn first_successes_for_pending_payments_are_stored_by_one_statement_with_the_same_effects() {
    let Some(dbs) = dbs() else { return };
    let store = own_bulk_store(dbs);
    let it = for_the_full_amount;
    // Both generated payments settle in one batch (INV-0 also learns Finpay's reference).
    check_on(&store, vec![vec![it(1, 0, "00"), it(2, 1, "00")]]).unwrap();
    assert_eq!(store.speculation_counts(), (1, 0));
}

/// The one statement stores a notification and the status change it caused
/// as one event row; the payment's trail shows the two entries under ids of
/// their own, before any event written after them.
#[test]
fn a_settlement_stored_by_one_statement_is_one_event_row_read_as_its_two_entries() {
    let Some(dbs) = dbs() else { return };
    let store = own_bulk_store(dbs);
    let case = format!("e{}{}-", std::process::id(), CASE.fetch_add(1, Ordering::Relaxed));
    dbs.rt.block_on(async {
        let base = finpay_qris::store::now() - chrono::Duration::seconds(60);
        seed(&store, &case, base).await;
        let batch: Vec<InboundNotification> = (0..2)
            .map(|k| notification(&case, &for_the_full_amount(k + 1, k, "00"), base))
            .collect();
        let outcomes = store.ingest_notifications(&batch).await.unwrap();
        assert!(outcomes.iter().all(|o| matches!(o, IngestOutcome::Applied(_))));
        assert_eq!(store.speculation_counts(), (1, 0));
        let payment = format!("{case}pay-0");
        store
            .add_event(&payment, "query", &serde_json::json!({"after": "the settlement"}))
            .await
            .unwrap();

        let stored: Vec<(String,)> =
            sqlx::query_as("SELECT kind FROM payment_events WHERE payment_id = $1 ORDER BY id")
                .bind(&payment)
                .fetch_all(store.pool())
                .await
                .unwrap();
        let stored: Vec<&str> = stored.iter().map(|(k,)| k.as_str()).collect();
        assert_eq!(
            stored,
            ["created", "notification", "query"],
            "rows stored for the payment"
        );

        let trail = store.payment_events(&payment).await.unwrap();
        let kinds: Vec<&str> = trail.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["created", "notification", "status_changed", "query"]);
        let ids: Vec<i64> = trail.iter().map(|e| e.id).collect();
        assert_eq!(
            ids[2],
            ids[1] + 1,
            "the status change reads as the id after its notification"
        );
        assert!(ids[3] > ids[2], "an event written later reads after both: {ids:?}");
        let detail = |i: usize| serde_json::from_str::<serde_json::Value>(&trail[i].detail).unwrap();
        assert_eq!(detail(1)["externalId"], format!("{case}X1"));
        assert!(detail(1).get("statusChanged").is_none());
        assert_eq!(
            detail(2),
            serde_json::json!({"from": "pending", "to": "paid", "by": "notification", "flag": null})
        );

        // The other payment's pair was stored in the same statement, so its
        // row drew the id after this one's: an entry id is never another's.
        let mut all: Vec<i64> = ids.clone();
        let other = store.payment_events(&format!("{case}pay-1")).await.unwrap();
        assert_eq!(other.len(), 3, "created, notification, status_changed");
        all.extend(other.iter().map(|e| e.id));
        let distinct: std::collections::HashSet<i64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "entry ids repeat: {all:?}");
    });
}

#[test]
fn replays_in_a_batch_of_settlements_are_answered_from_their_stored_rows_in_the_same_statement() {
    let Some(dbs) = dbs() else { return };
    let store = own_bulk_store(dbs);
    let it = for_the_full_amount;
    check_on(
        &store,
        vec![
            vec![it(1, 0, "00")],
            // ext 1 again, same body: a duplicate; INV-1 settles beside it.
            vec![it(1, 0, "00"), it(2, 1, "00")],
            // ext 2 again with another body (a conflict), alone.
            vec![it(2, 1, "02")],
        ],
    )
    .unwrap();
    // A replay changes no payment, so its payment's state does not matter:
    // each batch was stored by one statement.
    assert_eq!(store.speculation_counts(), (3, 0));
}

#[test]
fn a_speculation_that_does_not_hold_writes_nothing_and_the_batch_is_read_first() {
    let Some(dbs) = dbs() else { return };
    let store = own_bulk_store(dbs);
    let it = |ext, payment, status, amount| Item {
        ext,
        payment,
        status,
        amount,
    };
    check_on(
        &store,
        vec![
            vec![it(1, 0, "00", "1000.00")],
            // INV-0 is paid now: a second success changes nothing.
            vec![it(2, 0, "00", "1000.00")],
            // INV-1 pending, but Finpay reports another amount: flagged, not applied.
            vec![it(3, 1, "00", "2500.00")],
            // A static-QR payment nobody knows yet: created from the notification.
            vec![it(4, 4, "00", "1000.00")],
        ],
    )
    .unwrap();
    // Only the first batch held; each of the others was tried (it assumed a
    // pending payment of the notified amount), rolled back, and read first.
    assert_eq!(store.speculation_counts(), (1, 3));
}

/// Two writers (as two replicas would) store batches of distinct notifications
/// for the same few payments at the same moment. Whatever the interleaving
/// (a batch whose payments changed since it read them is stored item by item
/// instead), every notification takes effect once and the status history of
/// each payment is one unbroken chain.
#[test]
fn concurrent_batches_on_the_same_payments_keep_every_effect_once() {
    let Some(dbs) = dbs() else { return };
    let case = format!("k{}{}-", std::process::id(), CASE.fetch_add(1, Ordering::Relaxed));
    dbs.rt.block_on(async {
        use sqlx::Connection;
        let other = Arc::new(PgStore::connect(&dbs.urls.1, 4, 5).await.unwrap());
        let base = finpay_qris::store::now() - chrono::Duration::seconds(60);
        seed(dbs.bulk.as_ref(), &case, base).await;
        let statuses = ["01", "02", "03", "00", "06", "02"];
        let mut tick = 0i64;
        let mut next = |ext: u32, k: u32| {
            tick += 1;
            let it = Item {
                ext: 0,
                payment: (k % 2) as u8,
                status: statuses[(ext % 6) as usize],
                amount: "1000.00",
            };
            let mut n = notification(&case, &it, base + chrono::Duration::milliseconds(tick));
            n.external_id = format!("{case}E{ext}");
            n
        };
        let mut ext = 0u32;
        for round in 0..60u32 {
            let a: Vec<_> = (0..5)
                .map(|k| {
                    ext += 1;
                    next(ext, k + round)
                })
                .collect();
            let b: Vec<_> = (0..5)
                .map(|k| {
                    ext += 1;
                    next(ext, k + round + 1)
                })
                .collect();
            let (ra, rb) = tokio::join!(dbs.bulk.ingest_notifications(&a), other.ingest_notifications(&b));
            for o in ra.unwrap().into_iter().chain(rb.unwrap()) {
                assert!(matches!(o, IngestOutcome::Applied(_)), "{o:?}");
            }
        }
        let mut c = sqlx::PgConnection::connect(&dbs.urls.1).await.unwrap();
        let like = format!("{case}%");
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE external_id LIKE $1")
            .bind(&like)
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(stored, i64::from(ext));
        for k in 0..2 {
            let p = dbs.bulk.get_payment(&format!("{case}INV-{k}")).await.unwrap().unwrap();
            let events = dbs.bulk.payment_events(&p.id).await.unwrap();
            let named: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE payment_id = $1")
                .bind(&p.id)
                .fetch_one(&mut c)
                .await
                .unwrap();
            assert_eq!(events.iter().filter(|e| e.kind == "notification").count() as i64, named);
            let mut status = "pending".to_string();
            for e in events.iter().filter(|e| e.kind == "status_changed") {
                let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
                assert_eq!(
                    d["from"],
                    status.as_str(),
                    "a transition from a stale status: {events:?}"
                );
                status = d["to"].as_str().unwrap().to_string();
            }
            assert_eq!(p.status.as_str(), status);
        }
    });
}

/// Rows of `payments` and `notifications` read so far by scans of either kind,
/// as the statistics collector has them.
async fn rows_read(c: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(seq_tup_read + COALESCE(idx_tup_fetch, 0)), 0)::bigint FROM pg_stat_user_tables \
         WHERE relname IN ('payments', 'notifications')",
    )
    .fetch_one(&mut *c)
    .await
    .unwrap()
}

/// The writers keep their statements' plans for the life of a connection, so
/// a plan made while the tables were empty (as after a fresh install, with
/// statistics to match) must still find rows by key once the tables hold many
/// thousands: storing a batch then reads a handful of rows, not the tables.
#[test]
fn a_batch_finds_its_rows_by_key_however_small_the_tables_were_when_its_plan_was_made() {
    let Some(dbs) = dbs() else { return };
    dbs.rt.block_on(async {
        use sqlx::Connection;
        let db = TestDb::new(Backend::Postgres).await;
        // One connection: the measured batch runs on the plans the first one made.
        let store = PgStore::connect(&db.url, 1, 5).await.unwrap();
        store.migrate().await.unwrap();
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
        let case = "plan-";
        let base = finpay_qris::store::now() - chrono::Duration::seconds(60);
        seed(&store, case, base).await;
        let it = for_the_full_amount;
        // Plans made on nearly empty tables: the read-then-write path's, and
        // the one-statement path's (INV-0 settles).
        store
            .ingest_notifications(&[notification(case, &it(1, 0, "03"), base)])
            .await
            .unwrap();
        store
            .ingest_notifications(&[notification(case, &it(9, 0, "00"), base)])
            .await
            .unwrap();
        assert_eq!(store.speculation_counts(), (1, 0));

        for sql in [
            "INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, \
             created_at, updated_at) SELECT 'grown-' || g, 'GROWN' || g, 'FPGROWN' || g, 100, 'IDR', 'pending', \
             'generated', now(), now() FROM generate_series(1, 20000) g",
            "INSERT INTO notifications (partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, \
             verification, outcome, response_code, response_message, received_at) SELECT 'FINPAY-TEST', 'grown' || g, \
             DATE '2026-11-25', '\\x00', '{}', '{}', 'test', 'applied', '2005200', 'Successful', now() \
             FROM generate_series(1, 20000) g",
        ] {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        // A backend reports its reads at most once a second.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let before = rows_read(&mut c).await;

        // A settlement of a pending payment beside a replay (one statement),
        // then a duplicate, a notification for a paid payment and a static-QR
        // payment (read first).
        let settled = store
            .ingest_notifications(&[
                notification(case, &it(2, 1, "00"), base),
                notification(case, &it(9, 0, "00"), base),
            ])
            .await
            .unwrap();
        assert!(matches!(settled[0], IngestOutcome::Applied(_)), "{settled:?}");
        assert!(matches!(settled[1], IngestOutcome::Duplicate { .. }), "{settled:?}");
        assert_eq!(store.speculation_counts(), (2, 0));
        let outcomes = store
            .ingest_notifications(&[
                notification(case, &it(1, 0, "03"), base),
                notification(case, &it(5, 0, "00"), base),
                notification(case, &it(3, 4, "00"), base),
            ])
            .await
            .unwrap();
        assert!(matches!(outcomes[0], IngestOutcome::Duplicate { .. }), "{outcomes:?}");
        assert!(matches!(outcomes[1], IngestOutcome::Applied(_)), "{outcomes:?}");

        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        let mut read = 0;
        while read == 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            read = rows_read(&mut c).await - before;
        }
        assert!(read > 0, "the batch's reads never reached the statistics");
        assert!(read < 100, "storing 5 notifications read {read} rows");
        let _ = c.close().await;
    });
}

/// Updates of `payments` so far, and how many of them were HOT (the new
/// version written on the same page, no index touched).
async fn payment_updates(c: &mut sqlx::PgConnection) -> (i64, i64) {
    sqlx::query_as("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'payments'")
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

/// Settling a payment we generated (Finpay's reference already known, a check
/// scheduled) changes only columns no index of `payments` holds, so
/// PostgreSQL rewrites the row in place without an index write (migration
/// 0005): by the one-statement path and by the read-then-write path alike.
#[test]
fn settling_a_generated_payment_writes_no_index_of_payments() {
    let Some(dbs) = dbs() else { return };
    dbs.rt.block_on(async {
        use sqlx::Connection;
        let db = TestDb::new(Backend::Postgres).await;
        let store = PgStore::connect(&db.url, 2, 5).await.unwrap();
        store.migrate().await.unwrap();
        store.set_speculation_pause_after_miss(0);
        let case = "hot-";
        let base = finpay_qris::store::now() - chrono::Duration::seconds(60);
        seed(&store, case, base).await;
        for k in 0..2 {
            store
                .attach_generated(
                    &format!("{case}pay-{k}"),
                    &finpay_qris::store::GeneratedQr {
                        reference_no: Some(format!("{case}FP-{k}")),
                        qr_content: "00020101021226".into(),
                        qr_url: None,
                        valid_until: None,
                        next_check_at: base + chrono::Duration::seconds(30),
                    },
                )
                .await
                .unwrap();
        }
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let it = for_the_full_amount;
        // INV-0 by one statement; INV-1 beside a static-QR payment not known
        // yet (the one statement misses it; the batch is read first).
        let one = store
            .ingest_notifications(&[notification(case, &it(1, 0, "00"), base)])
            .await
            .unwrap();
        let two = store
            .ingest_notifications(&[
                notification(case, &it(2, 1, "00"), base),
                notification(case, &it(3, 4, "00"), base),
            ])
            .await
            .unwrap();
        for o in one.iter().chain(&two) {
            assert!(matches!(o, IngestOutcome::Applied(_)), "{o:?}");
        }
        assert_eq!(store.speculation_counts(), (1, 1));
        // The two checks are cleared; their schedule rows wait for the worker's sweep (0007).
        let stale: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM payment_checks_due d JOIN payments p ON p.id = d.payment_id \
             WHERE p.next_check_at IS NULL",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(stale, 2, "the settlements wrote to the worker's schedule");

        // Two generations (Finpay's reference set: indexed, not HOT) and two
        // settlements; a backend reports its counts when it goes idle.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut counts = payment_updates(&mut c).await;
        while counts.0 < 4 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            counts = payment_updates(&mut c).await;
        }
        assert_eq!(counts, (4, 2), "(updates, HOT updates) of payments");
        let now = finpay_qris::store::now();
        assert!(store.claim_due("w", now, 30, 10).await.unwrap().is_empty());
        assert_eq!(store.sweep_cleared_checks(now, 100).await.unwrap(), 2);
        let _ = c.close().await;
    });
}
