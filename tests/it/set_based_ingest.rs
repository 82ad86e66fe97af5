//! PostgreSQL stores a batch of notifications with its set-based executor
//! (`store/postgres/ingest.rs`). These properties hold it to the reference
//! executor: random batches (replays, conflicting replays, several
//! notifications for one payment, unknown payments, every status, amounts and
//! currencies that contradict, references that name two payments, zero
//! amounts, a payment that expired here before Finpay's word) are stored in one database a batch at a time by the set-based
//! executor and in another one notification at a time by the reference
//! executor, in its key order; the answers, payments, audit trails,
//! notification rows, payment events (the outbox) and their deliveries must
//! be the same. SQLite stores the same batches in a third database, with the
//! reference executor run on its write connection's handle
//! (`store/sqlite_batch.rs`), and must write the same too.

use crate::common::*;
use finpay_qris::domain::Observation;
use finpay_qris::snap::notify::{Amount, TransactionStatus};
use finpay_qris::store::{InboundNotification, IngestOutcome, NewPayment, PgStore, SqliteStore, Store};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

struct Dbs {
    rt: tokio::runtime::Runtime,
    item_by_item: Arc<PgStore>,
    set_based: Arc<PgStore>,
    sqlite: Arc<SqliteStore>,
    urls: (String, String, String),
    /// Shared by every case until the process ends (a static is never
    /// dropped; `.ci/run` drops what its run left behind).
    _databases: (TestDb, TestDb, TestDb),
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
        let (a, b, c) = rt.block_on(async {
            if !postgres_available().await {
                return None;
            }
            let a = TestDb::new(Backend::Postgres).await;
            let b = TestDb::new(Backend::Postgres).await;
            let c = TestDb::new(Backend::Sqlite).await;
            Some((a, b, c))
        })?;
        let (sa, sb, sc) = rt.block_on(async {
            let sa = Arc::new(PgStore::connect(&a.url, 4, 5).await.unwrap());
            let sb = Arc::new(PgStore::connect(&b.url, 4, 5).await.unwrap());
            let sc = Arc::new(SqliteStore::connect(&c.url, 4, 5).await.unwrap());
            sa.migrate().await.unwrap();
            sb.migrate().await.unwrap();
            sc.migrate().await.unwrap();
            // The same endpoints in all: one for paid and flagged payments, one for everything.
            for s in [sa.as_ref() as &dyn Store, sb.as_ref(), sc.as_ref()] {
                for (id, types) in [("ep-paid", vec!["payment.paid", "payment.flagged"]), ("ep-all", vec![])] {
                    s.create_endpoint(
                        &finpay_qris::store::endpoints::NewEndpoint {
                            id: id.into(),
                            url: "https://orders.example/events".into(),
                            description: None,
                            event_types: types.into_iter().map(String::from).collect(),
                            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                            created_at: finpay_qris::store::now(),
                        },
                        None,
                    )
                    .await
                    .unwrap();
                }
            }
            (sa, sb, sc)
        });
        Some(Dbs {
            rt,
            item_by_item: sa,
            set_based: sb,
            sqlite: sc,
            urls: (a.url.clone(), b.url.clone(), c.url.clone()),
            _databases: (a, b, c),
        })
    })
    .as_ref()
}

#[derive(Debug, Clone)]
struct Item {
    ext: u8,
    /// 0..4: our payment INV-k / Finpay's FP-k; 4..6: a static QR known only
    /// by Finpay's reference; 6: INV-0 with FP-1 (references that contradict);
    /// 7: our payment INV-7, expired here before Finpay's word arrives.
    payment: u8,
    status: &'static str,
    amount: &'static str,
    currency: &'static str,
}

fn item() -> impl Strategy<Value = Item> {
    (
        0u8..8,
        0u8..8,
        prop::sample::select(vec!["00", "01", "02", "03", "04", "05", "06", "07", "08", "09"]),
        prop::sample::select(vec!["1000.00", "1000.00", "2500.00", "0.00"]),
        prop::sample::select(vec!["IDR", "IDR", "IDR", "USD"]),
    )
        .prop_map(|(ext, payment, status, amount, currency)| Item {
            ext,
            payment,
            status,
            amount,
            currency,
        })
}

fn notification(case: &str, it: &Item, at: chrono::DateTime<chrono::Utc>) -> InboundNotification {
    let (prn, rn) = if it.payment < 4 || it.payment == 7 {
        (
            Some(format!("{case}INV-{}", it.payment)),
            format!("{case}FP-{}", it.payment),
        )
    } else if it.payment == 6 {
        (Some(format!("{case}INV-0")), format!("{case}FP-1"))
    } else {
        (None, format!("{case}FPS-{}", it.payment))
    };
    let status = TransactionStatus::from_code(it.status).unwrap();
    let raw_body = format!(
        r#"{{"originalReferenceNo":"{rn}","originalPartnerReferenceNo":{},"latestTransactionStatus":"{}","amount":{{"value":"{}","currency":"{}"}}}}"#,
        prn.as_ref()
            .map(|p| format!("\"{p}\""))
            .unwrap_or_else(|| "null".into()),
        it.status,
        it.amount,
        it.currency
    );
    InboundNotification {
        partner_id: CLIENT_ID.into(),
        external_id: format!("{case}X{}", it.ext),
        jakarta_day: chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        body_sha256: Sha256::digest(raw_body.as_bytes()).to_vec(),
        raw_body,
        headers_json: r#"{"x-external-id":"e"}"#.into(),
        verification: "symmetric:HMAC-SHA512".into(),
        received_at: at,
        observation: Observation {
            source: finpay_qris::domain::ObservationSource::Notification,
            original_reference_no: Some(rn),
            original_partner_reference_no: prn,
            status,
            status_desc: Some("desc".into()),
            amount: Some(Amount::parse(it.amount, it.currency).unwrap()),
            paid_time: None,
        },
    }
}

/// An outcome with the payment named by a reference instead of its id.
async fn canonical(store: &dyn Store, o: IngestOutcome) -> String {
    match o {
        IngestOutcome::Applied(mut a) => {
            let p = store.get_payment(&a.payment_id).await.unwrap().unwrap();
            // Ours when it has one, else Finpay's: a reference learnt later in
            // the batch must not tell the two apart.
            a.payment_id = format!("{:?}", p.partner_reference_no.or(p.reference_no));
            format!("{a:?}")
        }
        other => format!("{other:?}"),
    }
}

macro_rules! snapshot_of {
    ($c:ident, $case:ident, $headers:literal) => {{
        let mut c = $c;
        let case = $case;
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
            "SELECT e.kind, e.detail, e.notification_id, e.created_at, p.partner_reference_no, p.reference_no \
         FROM payment_events e JOIN payments p ON p.id = e.payment_id \
         WHERE p.partner_reference_no LIKE $1 OR p.reference_no LIKE $1 ORDER BY p.partner_reference_no NULLS LAST, \
         p.reference_no, e.id",
        )
        .bind(&like)
        .fetch_all(&mut c)
        .await
        .unwrap();
        // Each payment's trail in order; ids are the database's and differ
        // between runs, so a notification's entry names it by its external id.
        for r in rows {
            let notification = r.get::<Option<i64>, _>(2).map(|id| ext_of[&id].clone());
            out.push(format!(
                "event {} {} {:?} {} {:?} {:?}",
                r.get::<String, _>(0),
                r.get::<serde_json::Value, _>(1),
                notification,
                r.get::<chrono::DateTime<chrono::Utc>, _>(3),
                r.get::<Option<String>, _>(4),
                r.get::<Option<String>, _>(5),
            ));
        }
        let notifications = sqlx::query(concat!(
            "SELECT n.external_id, n.body_sha256, n.outcome, n.raw_body, ",
            $headers,
            ", n.received_at, \
         p.partner_reference_no, p.reference_no FROM notifications n JOIN payments p ON p.id = n.payment_id \
         WHERE n.external_id LIKE $1 ORDER BY n.external_id"
        ))
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
                r.get::<Option<String>, _>(3).unwrap_or_default(),
                // As JSON: PostgreSQL's `jsonb` prints it in a form of its own.
                r.get::<Option<String>, _>(4)
                    .map(|h| serde_json::from_str::<serde_json::Value>(&h).unwrap().to_string())
                    .unwrap_or_default(),
                r.get::<chrono::DateTime<chrono::Utc>, _>(5),
                r.get::<Option<String>, _>(6),
                r.get::<Option<String>, _>(7),
            ));
        }
        let events = sqlx::query(
            "SELECT e.type, e.cause, e.sequence, e.body, e.created_at, p.partner_reference_no, p.reference_no, \
         (SELECT string_agg(d.endpoint_id || ' ' || d.status, ',' ORDER BY d.endpoint_id) FROM deliveries d \
          WHERE d.event_id = e.id) FROM events e JOIN payments p ON p.id = e.payment_id \
         WHERE p.partner_reference_no LIKE $1 OR p.reference_no LIKE $1 \
         ORDER BY p.partner_reference_no NULLS LAST, p.reference_no, e.sequence",
        )
        .bind(&like)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for r in events {
            // A payment learnt from a notification has a new id in each database.
            let mut body: serde_json::Value = serde_json::from_str(&r.get::<String, _>(3)).unwrap();
            body["data"]["id"] = serde_json::Value::Null;
            out.push(format!(
                "outbox {} {} {} {} {} {:?} {:?} {:?}",
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                r.get::<i64, _>(2),
                body,
                r.get::<chrono::DateTime<chrono::Utc>, _>(4),
                r.get::<Option<String>, _>(5),
                r.get::<Option<String>, _>(6),
                r.get::<Option<String>, _>(7),
            ));
        }
        let _ = c.close().await;
        out
    }};
}

/// Everything the case wrote, with ids replaced by references, read in the
/// SQL both databases speak (`headers` is the column's text).
async fn snapshot(url: &str, case: &str) -> Vec<String> {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let c = sqlx::SqliteConnection::connect(url).await.unwrap();
        snapshot_of!(c, case, "n.headers")
    } else {
        let c = sqlx::PgConnection::connect(url).await.unwrap();
        snapshot_of!(c, case, "n.headers::text")
    }
}

async fn seed(store: &dyn Store, case: &str, base: chrono::DateTime<chrono::Utc>) {
    // INV-0, INV-1 and INV-7 were generated by us (INV-7 has expired); INV-2
    // and INV-3 arrive as static payments.
    for k in [0, 1, 7] {
        store
            .create_api_payment(
                &NewPayment {
                    id: format!("{case}pay-{k}"),
                    partner_reference_no: format!("{case}INV-{k}"),
                    amount_minor: 100_000,
                    currency: "IDR".into(),
                    note: None,
                    valid_until: base + chrono::Duration::seconds(900),
                    created_at: base,
                },
                None,
                None,
            )
            .await
            .unwrap();
    }
    let expired = format!("{case}pay-7");
    assert!(store.claim_one(&expired, "seed", base, 60).await.unwrap().is_some());
    assert!(store
        .stop_waiting(&expired, "seed", "validity passed", true, base)
        .await
        .unwrap());
}

/// A notification of the amount every seeded payment asks for.
fn for_the_full_amount(ext: u8, payment: u8, status: &'static str) -> Item {
    Item {
        ext,
        payment,
        status,
        amount: "1000.00",
        currency: "IDR",
    }
}

static CASE: AtomicUsize = AtomicUsize::new(0);

/// Runs the batches through both executors; what they wrote (the reference's).
fn check(batches: Vec<Vec<Item>>) -> Result<Vec<String>, TestCaseError> {
    let Some(dbs) = dbs() else { return Ok(Vec::new()) };
    let set_based = dbs.set_based.as_ref();
    let case = format!("c{}{}-", std::process::id(), CASE.fetch_add(1, Ordering::Relaxed));
    dbs.rt.block_on(async {
        let base = finpay_qris::store::now() - chrono::Duration::seconds(60);
        seed(dbs.item_by_item.as_ref(), &case, base).await;
        seed(set_based, &case, base).await;
        seed(dbs.sqlite.as_ref(), &case, base).await;
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
            // Nothing else writes these rows, so the set-based executor never
            // has to hand the batch to the reference one.
            let got = set_based
                .ingest_set_based(&items)
                .await
                .unwrap()
                .expect("no concurrent writer");
            let mut actual = Vec::new();
            for o in got {
                actual.push(canonical(set_based, o).await);
            }
            prop_assert_eq!(&actual, &expected, "answers differ for batch {:?}", batch);
            let mut on_sqlite = Vec::new();
            for o in dbs.sqlite.ingest_notifications(&items).await.unwrap() {
                on_sqlite.push(canonical(dbs.sqlite.as_ref(), o).await);
            }
            prop_assert_eq!(&on_sqlite, &expected, "SQLite's answers differ for batch {:?}", batch);
        }
        let a = snapshot(&dbs.urls.0, &case).await;
        let b = snapshot(&dbs.urls.1, &case).await;
        let c = snapshot(&dbs.urls.2, &case).await;
        prop_assert_eq!(&b, &a);
        prop_assert_eq!(&c, &a, "SQLite wrote other rows");
        Ok(a)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_batch_stored_set_based_has_the_effects_of_storing_it_item_by_item(
        batches in prop::collection::vec(prop::collection::vec(item(), 1..12), 1..4)
    ) {
        check(batches)?;
    }
}

#[test]
fn a_batch_with_a_replay_of_an_earlier_batch_answers_it_from_the_stored_row() {
    let it = for_the_full_amount;
    let written = check(vec![
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
    if dbs().is_some() {
        // (The seeded INV-7's expiry is not this batch's.)
        let outbox: Vec<&String> = written
            .iter()
            .filter(|l| l.starts_with("outbox ") && !l.starts_with("outbox payment.expired worker"))
            .collect();
        // INV-0 paid once (the replay and the duplicate raise nothing), FPS-4 learnt paid.
        assert_eq!(outbox.len(), 2, "{outbox:#?}");
        assert!(
            outbox
                .iter()
                .all(|l| l.starts_with("outbox payment.paid notification 1 ")),
            "{outbox:#?}"
        );
        assert!(
            outbox
                .iter()
                .all(|l| l.ends_with("Some(\"ep-all pending,ep-paid pending\")")),
            "{outbox:#?}"
        );
    }
}

#[test]
fn concurrent_batches_on_the_same_payments_keep_every_effect_once() {
    concurrent_batches_keep_every_effect_once(false);
}

/// The reference executor is PostgreSQL's fallback, so it too must hold up
/// against a concurrent writer of the same payments: each event numbered once.
#[test]
fn concurrent_item_by_item_batches_keep_every_effect_once() {
    concurrent_batches_keep_every_effect_once(true);
}

/// Two stores write interleaved batches about the same two payments at once.
fn concurrent_batches_keep_every_effect_once(item_by_item: bool) {
    let Some(dbs) = dbs() else { return };
    let case = format!("k{}{}-", std::process::id(), CASE.fetch_add(1, Ordering::Relaxed));
    let (store, url) = if item_by_item {
        (&dbs.item_by_item, &dbs.urls.0)
    } else {
        (&dbs.set_based, &dbs.urls.1)
    };
    dbs.rt.block_on(async {
        use sqlx::Connection;
        let other = Arc::new(PgStore::connect(url, 4, 5).await.unwrap());
        let ingest = |s: Arc<PgStore>, batch: Vec<InboundNotification>| async move {
            if item_by_item {
                s.ingest_item_by_item(&batch).await
            } else {
                s.ingest_notifications(&batch).await
            }
        };
        let base = finpay_qris::store::now() - chrono::Duration::seconds(60);
        seed(store.as_ref(), &case, base).await;
        let statuses = ["01", "02", "03", "00", "06", "02"];
        let mut tick = 0i64;
        let mut next = |ext: u32, k: u32| {
            tick += 1;
            let it = Item {
                ext: 0,
                payment: (k % 2) as u8,
                status: statuses[(ext % 6) as usize],
                amount: "1000.00",
                currency: "IDR",
            };
            let mut n = notification(&case, &it, base + chrono::Duration::milliseconds(tick));
            n.external_id = format!("{case}E{ext}");
            n
        };
        // Item by item, a batch locks its payments one after the other, so two
        // batches naming the same payments in another order can deadlock (the
        // batcher then stores their notifications one by one): here its batches
        // name one payment each, both the same.
        let (size, shift) = if item_by_item { (1, 0) } else { (5, 1) };
        let mut ext = 0u32;
        for round in 0..60u32 {
            let a: Vec<_> = (0..size)
                .map(|k| {
                    ext += 1;
                    next(ext, k + round)
                })
                .collect();
            let b: Vec<_> = (0..size)
                .map(|k| {
                    ext += 1;
                    next(ext, k + round + shift)
                })
                .collect();
            let (ra, rb) = tokio::join!(ingest(store.clone(), a), ingest(other.clone(), b));
            for o in ra.unwrap().into_iter().chain(rb.unwrap()) {
                assert!(matches!(o, IngestOutcome::Applied(_)), "{o:?}");
            }
        }
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let like = format!("{case}%");
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE external_id LIKE $1")
            .bind(&like)
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(stored, i64::from(ext));
        for k in 0..2 {
            let p = store.get_payment(&format!("{case}INV-{k}")).await.unwrap().unwrap();
            let events = store.payment_events(&p.id).await.unwrap();
            let named: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE payment_id = $1")
                .bind(&p.id)
                .fetch_one(&mut c)
                .await
                .unwrap();
            assert_eq!(events.iter().filter(|e| e.kind == "notification").count() as i64, named);
            let mut status = "pending".to_string();
            for e in events.iter().filter(|e| e.kind == "status_changed") {
                let d = &e.detail;
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

#[test]
fn a_batch_naming_the_same_unknown_payment_twice_creates_it_once() {
    let it = for_the_full_amount;
    check(vec![
        vec![it(1, 4, "03"), it(2, 4, "00"), it(3, 5, "00")],
        vec![it(4, 4, "00")],
    ])
    .unwrap();
}

#[test]
fn references_that_contradict_flag_our_payment_in_both_executors() {
    let it = for_the_full_amount;
    check(vec![vec![it(1, 1, "03"), it(2, 6, "00")], vec![it(3, 0, "00")]]).unwrap();
}

/// The executor under test, with its database: item by item, or set-based.
fn executor(dbs: &Dbs, item_by_item: bool) -> (Arc<PgStore>, &str) {
    if item_by_item {
        (dbs.item_by_item.clone(), &dbs.urls.0)
    } else {
        (dbs.set_based.clone(), &dbs.urls.1)
    }
}

/// A connection whose open transaction holds `payment`'s row lock.
async fn holding_the_lock_of(url: &str, payment: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut holder = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE")
        .bind(payment)
        .execute(&mut holder)
        .await
        .unwrap();
    holder
}

/// Stores `n` with that executor in a task of its own (it waits for a lock).
fn ingest_in_background(
    store: Arc<PgStore>,
    item_by_item: bool,
    n: InboundNotification,
) -> tokio::task::JoinHandle<finpay_qris::store::Result<Vec<IngestOutcome>>> {
    tokio::spawn(async move {
        if item_by_item {
            store.ingest_item_by_item(&[n]).await
        } else {
            store.ingest_notifications(&[n]).await
        }
    })
}

/// A batch that waited for a payment's lock numbers the payment's next event
/// after the events committed while it waited, in both executors (on
/// PostgreSQL a statement that waits for a row lock still reads other rows as
/// of its start: the number must be read after the lock).
#[test]
fn an_event_raised_after_waiting_for_the_lock_follows_the_ones_committed_meanwhile() {
    let Some(dbs) = dbs() else { return };
    for item_by_item in [false, true] {
        let case = format!("w{}{}-", std::process::id(), CASE.fetch_add(1, Ordering::Relaxed));
        let (store, url) = executor(dbs, item_by_item);
        dbs.rt.block_on(async {
            let base = finpay_qris::store::now() - chrono::Duration::seconds(60);
            seed(store.as_ref(), &case, base).await;
            let payment = format!("{case}pay-0");
            let mut holder = holding_the_lock_of(url, &payment).await;

            let paid = notification(&case, &for_the_full_amount(1, 0, "00"), base);
            let waiting = ingest_in_background(store, item_by_item, paid);
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            sqlx::query(
                "INSERT INTO events (id, type, payment_id, sequence, cause, body, created_at) \
                 SELECT $1, 'payment.pending', $2, COALESCE(MAX(sequence), 0) + 1, 'api', '{}', now() \
                 FROM events WHERE payment_id = $2",
            )
            .bind(format!("{case}evt-meanwhile"))
            .bind(&payment)
            .execute(&mut holder)
            .await
            .unwrap();
            sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

            let outcome = waiting.await.unwrap().unwrap();
            assert!(matches!(outcome[0], IngestOutcome::Applied(_)), "{outcome:?}");
            let sequences: Vec<(String, i64)> =
                sqlx::query_as("SELECT type, sequence FROM events WHERE payment_id = $1 ORDER BY sequence")
                    .bind(&payment)
                    .fetch_all(&mut holder)
                    .await
                    .unwrap();
            let last = sequences.last().unwrap();
            assert_eq!(last.0, "payment.paid", "{sequences:?}");
            assert_eq!(last.1, sequences.len() as i64, "numbered once each: {sequences:?}");
        });
    }
}

/// A notification whose read waited for its payment's lock, while another
/// transaction gave a second payment the reference it names, is judged again
/// on both payments (references that contradict) instead of failing on the
/// reference's unique key, in both executors (the set-based one leaves the
/// batch to the reference executor).
#[test]
fn a_reference_taken_while_the_read_waited_is_seen_when_the_batch_runs_again() {
    let Some(dbs) = dbs() else { return };
    for item_by_item in [false, true] {
        let case = format!("r{}{}-", std::process::id(), CASE.fetch_add(1, Ordering::Relaxed));
        let (store, url) = executor(dbs, item_by_item);
        dbs.rt.block_on(async {
            let base = finpay_qris::store::now() - chrono::Duration::seconds(60);
            seed(store.as_ref(), &case, base).await;
            let mut holder = holding_the_lock_of(url, &format!("{case}pay-0")).await;

            // INV-0 with FP-1: while it waits, FP-1 becomes the second payment's.
            let contradicting = notification(&case, &for_the_full_amount(1, 6, "00"), base);
            let waiting = ingest_in_background(store, item_by_item, contradicting);
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            sqlx::query("UPDATE payments SET reference_no = $1 WHERE id = $2")
                .bind(format!("{case}FP-1"))
                .bind(format!("{case}pay-1"))
                .execute(&mut holder)
                .await
                .unwrap();
            sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

            let outcome = waiting.await.unwrap().expect("judged again, not failed");
            assert!(matches!(outcome[0], IngestOutcome::Applied(_)), "{outcome:?}");
            let stored: String = sqlx::query_scalar("SELECT outcome FROM notifications WHERE external_id = $1")
                .bind(format!("{case}X1"))
                .fetch_one(&mut holder)
                .await
                .unwrap();
            assert_eq!(stored, "flagged", "item by item: {item_by_item}");
        });
    }
}
