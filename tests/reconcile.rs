//! Reconciliation over real HTTP: the service, its worker and the simulated
//! Finpay, on both storage backends.

mod common;

use common::*;
use finpay_qris::domain::PaymentStatus;
use finpay_qris::store::{self, QueryResult};
use finpay_qris::worker::{reconcile_one, ReconcileError};
use std::time::Duration;

on_both_backends!(
    generated_payment_is_paid_by_the_notification,
    dropped_notification_is_found_by_the_worker,
    finpay_5xx_makes_the_worker_back_off_and_then_recover,
    expired_token_is_refreshed_transparently,
    payment_that_never_completes_expires_after_validity_and_grace,
    refresh_on_read_applies_the_answer_and_respects_leases,
    the_workers_schedule_follows_each_payments_next_check,
    checks_cleared_before_they_come_due_are_swept_and_never_claimed,
    a_sweep_that_finds_its_window_full_goes_again_at_once,
    a_database_upgraded_past_0005_keeps_every_scheduled_check,
);

const IDR_10K: i64 = 1_000_000;
const LONG: Duration = Duration::from_secs(300);

async fn generated_payment_is_paid_by_the_notification(backend: Backend) {
    let sim = spawn_simulator(|_| {}).await;
    let app = spawn_app_with_sim(backend, &sim, |_| {}).await;
    // First check far away: only the notification can settle this payment.
    let p = create_payment(&app, IDR_10K, LONG, LONG).await;
    let prn = p.partner_reference_no.clone().unwrap();
    assert_eq!(p.status, PaymentStatus::Pending);
    assert!(p.reference_no.is_some(), "Finpay's referenceNo is stored");
    finpay_qris::simulator::qris::parse(p.qr_content.as_deref().unwrap()).expect("a well-formed QRIS payload");

    sim.pay(&prn).unwrap();
    let paid = wait_for_status(&app, &p.id, PaymentStatus::Paid, Duration::from_secs(10)).await;

    assert!(paid.paid_at.is_some());
    let changes = events_of(&app, &p.id, "status_changed").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["by"], "notification");
    let delivered = eventually(
        "the simulator to record the acknowledgement",
        Duration::from_secs(5),
        || async { sim.notifications().into_iter().find(|n| n.delivered) },
    )
    .await;
    assert_eq!(delivered.last_response_code.as_deref(), Some("2005200"));
    assert_eq!(delivered.attempts, 1);
    assert_eq!(sim.stats().query_requests, 0, "no query was needed");
    app.stop().await;
    sim.shutdown().await;
}

async fn dropped_notification_is_found_by_the_worker(backend: Backend) {
    let sim = spawn_simulator(|c| c.faults.drop_notifications = true).await;
    let app = spawn_app_with_sim(backend, &sim, |_| {}).await;
    let p = create_payment(&app, IDR_10K, LONG, Duration::from_secs(1)).await;
    sim.pay(p.partner_reference_no.as_deref().unwrap()).unwrap();

    let paid = wait_for_status(&app, &p.id, PaymentStatus::Paid, Duration::from_secs(10)).await;

    assert!(sim.notifications()[0].dropped);
    assert_eq!(paid.next_check_at, None, "a settled payment is no longer checked");
    let changes = events_of(&app, &p.id, "status_changed").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["by"], "query");
    let queries = events_of(&app, &p.id, "query").await;
    assert_eq!(queries.last().unwrap()["responseCode"], "2005300");
    assert!(reconcile_attempts(&app, "applied") >= 1);
    // The settlement left its schedule row; the worker sweeps it on a later poll.
    eventually(
        "the worker to sweep the cleared check",
        Duration::from_secs(10),
        || async { (scheduled_rows(&app.db.url, &p.id).await == 0).then_some(()) },
    )
    .await;
    app.stop().await;
    sim.shutdown().await;
}

async fn finpay_5xx_makes_the_worker_back_off_and_then_recover(backend: Backend) {
    let sim = spawn_simulator(|c| {
        c.faults.fail_query = true;
        c.faults.drop_notifications = true;
    })
    .await;
    let app = spawn_app_with_sim(backend, &sim, |_| {}).await;
    let p = create_payment(&app, IDR_10K, LONG, Duration::ZERO).await;

    let errors = eventually("two failed attempts", Duration::from_secs(10), || async {
        let failed: Vec<_> = app
            .state
            .store
            .payment_events(&p.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "query" && e.detail.contains("\"error: "))
            .collect();
        (failed.len() >= 2).then_some(failed)
    })
    .await;

    // The worker polls every 50 ms; after a failure it waits the backed-off interval (2 s ± 10 %).
    let gap = (errors[1].created_at - errors[0].created_at).num_milliseconds();
    assert!(gap >= 1500, "second attempt only {gap} ms after the first");
    assert_eq!(status_of(&app, &p.id).await.status, PaymentStatus::Pending);
    // Each attempt's query was itself retried by the client.
    assert!(sim.stats().injected_failures >= 6, "{:?}", sim.stats());
    assert!(reconcile_attempts(&app, "error") >= 2);
    let kinds = [("op", "query"), ("kind", "unavailable")];
    assert!(app.state.metrics.counter("finpay_qris_finpay_errors_total", &kinds) >= 2);

    sim.update_faults(|f| f.fail_query = false);
    sim.pay(p.partner_reference_no.as_deref().unwrap()).unwrap();
    wait_for_status(&app, &p.id, PaymentStatus::Paid, Duration::from_secs(10)).await;
    app.stop().await;
    sim.shutdown().await;
}

async fn expired_token_is_refreshed_transparently(backend: Backend) {
    let sim = spawn_simulator(|c| {
        c.faults.drop_notifications = true;
        // Finpay kills tokens after 1 s although it announces 900 s.
        c.faults.token_lifetime_secs = Some(1);
    })
    .await;
    let app = spawn_app_with_sim(backend, &sim, |env| {
        set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false")
    })
    .await;
    let p = create_payment(&app, IDR_10K, LONG, LONG).await;
    sim.pay(p.partner_reference_no.as_deref().unwrap()).unwrap();
    assert_eq!(sim.stats().token_requests, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let refreshed = reconcile_one(&app.state, &p.id)
        .await
        .expect("the call succeeds after one refresh");

    assert_eq!(refreshed.status, PaymentStatus::Paid);
    let stats = sim.stats();
    assert_eq!(stats.invalid_token_answers, 1, "{stats:?}");
    assert_eq!(stats.token_requests, 2, "{stats:?}");
    let kinds = [("op", "query"), ("kind", "invalid_token")];
    assert_eq!(app.state.metrics.counter("finpay_qris_finpay_errors_total", &kinds), 1);

    // Tokens revoked outright: the same, once more.
    sim.revoke_tokens();
    reconcile_one(&app.state, &p.id).await.expect("refreshed again");
    assert_eq!(sim.stats().token_requests, 3);
    app.stop().await;
    sim.shutdown().await;
}

async fn payment_that_never_completes_expires_after_validity_and_grace(backend: Backend) {
    let sim = spawn_simulator(|_| {}).await;
    let app = spawn_app_with_sim(backend, &sim, |_| {}).await;
    // Two seconds: X-TIMESTAMP-style validity has whole seconds, and it must still be ahead when Finpay reads it.
    let p = create_payment(&app, IDR_10K, Duration::from_secs(2), Duration::ZERO).await;
    let deadline = p.valid_until.unwrap() + chrono::Duration::seconds(1);

    let expired = wait_for_status(&app, &p.id, PaymentStatus::Expired, Duration::from_secs(10)).await;

    assert!(
        expired.updated_at >= deadline,
        "expired at {} before {deadline}",
        expired.updated_at
    );
    let changes = events_of(&app, &p.id, "status_changed").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["to"], "expired");
    assert_eq!(changes[0]["by"], "worker");
    let queries = events_of(&app, &p.id, "query").await;
    assert!(
        queries.iter().any(|q| q["outcome"] == "final check before expiry"),
        "{queries:?}"
    );
    assert!(sim.payment(p.partner_reference_no.as_deref().unwrap()).unwrap().queries >= 2);
    assert_eq!(expired.next_check_at, None);
    assert!(reconcile_attempts(&app, "expired") == 1);
    // Nothing is asked about an expired payment any more.
    let asked = sim.stats().query_requests;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.stats().query_requests, asked);
    app.stop().await;
    sim.shutdown().await;
}

async fn refresh_on_read_applies_the_answer_and_respects_leases(backend: Backend) {
    let sim = spawn_simulator(|c| c.faults.drop_notifications = true).await;
    let app = spawn_app_with_sim(backend, &sim, |env| {
        set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false")
    })
    .await;
    let p = create_payment(&app, IDR_10K, LONG, LONG).await;
    sim.pay(p.partner_reference_no.as_deref().unwrap()).unwrap();

    // Someone else holds the lease: the refresh does not query at all.
    let other = "another-worker";
    app.state
        .store
        .claim_one(&p.id, other, store::now(), 60)
        .await
        .unwrap()
        .expect("claimed");
    assert!(matches!(
        reconcile_one(&app.state, &p.id).await,
        Err(ReconcileError::Busy)
    ));
    assert_eq!(sim.stats().query_requests, 0);
    let release = QueryResult {
        observation: None,
        response_code: None,
        outcome: "test release".into(),
        next_check_at: p.next_check_at,
    };
    app.state
        .store
        .apply_query(&p.id, other, &release, store::now())
        .await
        .unwrap();

    // By partnerReferenceNo, as the API allows.
    let fresh = reconcile_one(&app.state, p.partner_reference_no.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(fresh.status, PaymentStatus::Paid);
    assert_eq!(fresh.lease_owner, None, "the lease is released");
    assert_eq!(events_of(&app, &p.id, "status_changed").await[0]["by"], "query");

    assert!(matches!(
        reconcile_one(&app.state, "no-such-payment").await,
        Err(ReconcileError::NotFound)
    ));
    sim.update_faults(|f| f.fail_query = true);
    let down = reconcile_one(&app.state, &p.id).await;
    assert!(
        matches!(down, Err(ReconcileError::Finpay(ref e)) if e.is_transient()),
        "{down:?}"
    );
    assert_eq!(
        status_of(&app, &p.id).await.lease_owner,
        None,
        "released after a failure too"
    );
    app.stop().await;

    let unconfigured = TestApp::spawn(backend).await;
    assert!(matches!(
        reconcile_one(&unconfigured.state, &p.id).await,
        Err(ReconcileError::NotConfigured)
    ));
    unconfigured.stop().await;
    sim.shutdown().await;
}

/// Runs `$body` with `$c`, a new connection to the test database (either
/// backend: the statements the tests run here are the same for both).
macro_rules! with_connection {
    ($url:expr, |$c:ident| $body:expr) => {{
        use sqlx::Connection;
        if $url.starts_with("sqlite:") {
            let mut $c = sqlx::SqliteConnection::connect($url).await.unwrap();
            $body
        } else {
            let mut $c = sqlx::PgConnection::connect($url).await.unwrap();
            $body
        }
    }};
}

/// The ids of claimed payments, in the order the claim returned them.
fn ids(payments: &[finpay_qris::store::Payment]) -> Vec<&str> {
    payments.iter().map(|p| p.id.as_str()).collect()
}

/// A new pending payment of IDR 10,000 with a reference of its own.
async fn new_pending_payment(store: &dyn finpay_qris::store::Store) -> finpay_qris::store::Payment {
    insert_pending_payment(store, &format!("INV-{}", unique_digits()), IDR_10K).await
}

/// Rows of the worker's schedule table (`payment_checks_due`, kept by the
/// database from `payments.next_check_at`) for one payment.
async fn scheduled_rows(db_url: &str, payment_id: &str) -> i64 {
    let sql = "SELECT count(*) FROM payment_checks_due WHERE payment_id = $1";
    with_connection!(db_url, |c| sqlx::query_scalar(sql)
        .bind(payment_id)
        .fetch_one(&mut c)
        .await
        .unwrap())
}

/// The worker finds what is due through a table of its own (so that settling a
/// payment writes no index of `payments`); the database keeps that table in
/// step with `next_check_at` whichever statement changes it.
async fn the_workers_schedule_follows_each_payments_next_check(backend: Backend) {
    let app = TestApp::spawn_with(backend, |env| set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false")).await;
    let store = app.state.store.clone();
    let prn = format!("INV-{}", unique_digits());
    let rn = format!("FP-{}", unique_digits());
    let p = insert_pending_payment(store.as_ref(), &prn, IDR_10K).await;
    let now = store::now();
    let later = now + chrono::Duration::seconds(60);
    assert_eq!(scheduled_rows(&app.db.url, &p.id).await, 0, "no check scheduled yet");

    let generated = |next_check_at| store::GeneratedQr {
        reference_no: Some(rn.clone()),
        qr_content: "00020101021226".into(),
        qr_url: None,
        valid_until: None,
        next_check_at,
    };
    store.attach_generated(&p.id, &generated(later)).await.unwrap();
    assert_eq!(scheduled_rows(&app.db.url, &p.id).await, 1);
    assert!(
        store.claim_due("w", now, 30, 10).await.unwrap().is_empty(),
        "not due yet"
    );

    // Rescheduled earlier: due now.
    store
        .attach_generated(&p.id, &generated(now - chrono::Duration::seconds(1)))
        .await
        .unwrap();
    let claimed = store.claim_due("w", now, 1, 10).await.unwrap();
    assert_eq!(ids(&claimed), [p.id.as_str()]);

    // Settled by Finpay's notification: nothing left to check. The settlement
    // leaves its schedule row (migration 0007): never claimed, and deleted by
    // the sweep once it is due.
    let token = app.token().await;
    let (status, body) = app
        .notify(&token, &unique_digits(), &notify_body(&prn, &rn, "00", "10000.00"))
        .await;
    assert_eq!(
        (status, body["responseCode"].as_str()),
        (200, Some("2005200")),
        "{body}"
    );
    assert_eq!(status_of(&app, &p.id).await.next_check_at, None);
    let much_later = later + chrono::Duration::seconds(3600);
    assert!(store.claim_due("w", much_later, 30, 10).await.unwrap().is_empty());
    assert_eq!(scheduled_rows(&app.db.url, &p.id).await, 1);
    assert_eq!(store.sweep_cleared_checks(much_later, 100).await.unwrap(), 1);
    assert_eq!(scheduled_rows(&app.db.url, &p.id).await, 0);
    app.stop().await;
}

/// Sets (or clears, with `None`) a payment's check the way any statement of
/// the service does: by writing `payments.next_check_at`.
async fn set_next_check(db_url: &str, payment_id: &str, at: Option<chrono::DateTime<chrono::Utc>>) {
    let sql = "UPDATE payments SET next_check_at = $1 WHERE id = $2";
    let updated = with_connection!(db_url, |c| sqlx::query(sql)
        .bind(at)
        .bind(payment_id)
        .execute(&mut c)
        .await
        .unwrap()
        .rows_affected());
    assert_eq!(updated, 1, "no payment {payment_id}");
}

/// Clearing a check leaves its schedule row for the worker's sweep (the
/// notify path then writes nothing but the payment). Such a stale row is
/// never claimed, however many of them come due ahead of a real check; a
/// sweep deletes them a window at a time; and a check set again before the
/// sweep is claimed at its new time.
async fn checks_cleared_before_they_come_due_are_swept_and_never_claimed(backend: Backend) {
    let app = TestApp::spawn_with(backend, |env| set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false")).await;
    let store = app.state.store.clone();
    let url = app.db.url.as_str();
    let now = store::now();
    let earlier = |s: i64| Some(now - chrono::Duration::seconds(s));
    // Twelve cleared checks, all due before the one real check.
    let mut cleared = Vec::new();
    for k in 0..12 {
        let p = new_pending_payment(store.as_ref()).await;
        set_next_check(url, &p.id, earlier(60 + k)).await;
        set_next_check(url, &p.id, None).await;
        assert_eq!(scheduled_rows(url, &p.id).await, 1, "left for the sweep");
        cleared.push(p);
    }
    let due = new_pending_payment(store.as_ref()).await;
    set_next_check(url, &due.id, earlier(10)).await;
    // Cleared, then set again (later) before the worker came by.
    let again = new_pending_payment(store.as_ref()).await;
    set_next_check(url, &again.id, earlier(120)).await;
    set_next_check(url, &again.id, None).await;
    set_next_check(url, &again.id, Some(now + chrono::Duration::seconds(30))).await;

    // A claim of at most 10, not swept yet: the twelve stale rows come first
    // in due order. (Leased for longer than the test runs, so that `due` stays claimed.)
    let claimed = store.claim_due("w", now, 300, 10).await.unwrap();
    assert_eq!(ids(&claimed), [due.id.as_str()]);

    // A window of 5 looks at the 5 rows due first; the rest on the next sweep.
    assert_eq!(store.sweep_cleared_checks(now, 5).await.unwrap(), 5);
    assert_eq!(store.sweep_cleared_checks(now, 100).await.unwrap(), 7);
    for p in &cleared {
        assert_eq!(scheduled_rows(url, &p.id).await, 0, "a stale row outlived its sweep");
    }
    assert_eq!(scheduled_rows(url, &due.id).await, 1, "a real check was swept");
    assert_eq!(scheduled_rows(url, &again.id).await, 1, "a check set again was swept");
    let after_all = now + chrono::Duration::seconds(60);
    assert_eq!(store.sweep_cleared_checks(after_all, 100).await.unwrap(), 0);

    let later = now + chrono::Duration::seconds(31);
    let claimed = store.claim_due("w", later, 30, 10).await.unwrap();
    assert_eq!(ids(&claimed), [again.id.as_str()]);
    app.stop().await;
}

/// A sweep that finds its whole window stale is followed by another at once,
/// not after the next poll interval, so that a backlog of cleared checks (a
/// flash sale's settlements) goes in one go.
async fn a_sweep_that_finds_its_window_full_goes_again_at_once(backend: Backend) {
    let sim = spawn_simulator(|_| {}).await;
    let db = TestDb::new(backend).await;
    let url = db.url.clone();
    let store = store::connect(&url, 2, 5).await.unwrap();
    store.migrate().await.unwrap();
    // Five cleared checks, due a minute ago, before the worker starts.
    let now = store::now();
    let mut cleared = Vec::new();
    for k in 0..5 {
        let p = new_pending_payment(store.as_ref()).await;
        set_next_check(&url, &p.id, Some(now - chrono::Duration::seconds(60 + k))).await;
        set_next_check(&url, &p.id, None).await;
        cleared.push(p.id);
    }
    // Windows of two, and a poll interval far longer than the test.
    let mut env = base_env(&url);
    finpay_env(&mut env, sim.base_url());
    set_env(&mut env, "FINPAY_QRIS__WORKER__POLL_INTERVAL_MS", "600000");
    set_env(&mut env, "FINPAY_QRIS__WORKER__SWEEP_WINDOW", "2");
    let app = TestApp::spawn_env(db.shared(), env).await;

    eventually("three sweeps, back to back", Duration::from_secs(10), || async {
        let mut left = 0;
        for id in &cleared {
            left += scheduled_rows(&url, id).await;
        }
        (left == 0).then_some(())
    })
    .await;
    app.stop().await;
    sim.shutdown().await;
    // Only now: `db` owns SQLite's directory, which the app's handle shares.
    drop(db);
}

/// A merchant's database from before migration 0005 (the schedule then lived
/// in an index on `payments.next_check_at`) keeps every scheduled check
/// through the upgrade: the worker still claims it when it is due.
async fn a_database_upgraded_past_0005_keeps_every_scheduled_check(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = store::connect(&db.url, 2, 5).await.unwrap();
    // The migrations as they were before 0005, from the repository's own files.
    let backend_dir = match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    };
    let old = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(backend_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.as_str() < "0005" {
            std::fs::copy(&path, old.path().join(&name)).unwrap();
        }
    }
    let before = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    let now = store::now();
    let due = now - chrono::Duration::seconds(5);
    let insert = "INSERT INTO payments (id, partner_reference_no, amount_minor, currency, status, origin, \
                  created_at, updated_at, next_check_at) VALUES ($1, $2, 1000000, 'IDR', 'pending', 'generated', $3, $3, $4)";
    let id = format!("pay-{}", unique_digits());
    with_connection!(db.url.as_str(), |c| {
        before.run(&mut c).await.unwrap();
        sqlx::query(insert)
            .bind(&id)
            .bind(format!("INV-{id}"))
            .bind(now)
            .bind(due)
            .execute(&mut c)
            .await
            .unwrap();
    });

    store.migrate().await.unwrap();
    assert_eq!(scheduled_rows(&db.url, &id).await, 1);
    let claimed = store.claim_due("w", now, 30, 10).await.unwrap();
    assert_eq!(ids(&claimed), [id.as_str()]);
}

/// PostgreSQL lets a statement set a new check on a payment whose stale
/// schedule row the worker is sweeping at that moment. The sweep locks the
/// payment (skipping it while the other transaction holds it), so the new
/// check's row is never deleted on the strength of the old, cleared one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_set_during_the_sweep_survives_it() {
    use sqlx::Connection;
    if !postgres_available().await {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let store = store::connect(&db.url, 2, 5).await.unwrap();
    store.migrate().await.unwrap();
    let now = store::now();
    let p = new_pending_payment(store.as_ref()).await;
    set_next_check(&db.url, &p.id, Some(now - chrono::Duration::seconds(60))).await;
    set_next_check(&db.url, &p.id, None).await;

    // Another transaction sets a check due now and has not committed yet.
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut tx = c.begin().await.unwrap();
    sqlx::query("UPDATE payments SET next_check_at = $1 WHERE id = $2")
        .bind(now - chrono::Duration::seconds(1))
        .bind(&p.id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let sweep = {
        let store = store.clone();
        tokio::spawn(async move { store.sweep_cleared_checks(now, 100).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    let swept = tokio::time::timeout(Duration::from_secs(10), sweep)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(swept, 0, "swept a payment another transaction held");
    assert_eq!(scheduled_rows(&db.url, &p.id).await, 1);

    let claimed = store.claim_due("w", now, 30, 10).await.unwrap();
    assert_eq!(ids(&claimed), [p.id.as_str()]);
}
