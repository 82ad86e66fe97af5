//! Reconciliation over real HTTP: the service, its worker and the simulated
//! Finpay, on both storage backends.

use crate::common::*;
use finpay_qris::domain::PaymentStatus;
use finpay_qris::store::{self, QueryResult};
use finpay_qris::worker::{reconcile_one, ReconcileError};
use std::time::Duration;

on_both_backends!(
    a_payer_still_paying_at_the_deadline_is_left_to_a_person_not_expired,
    a_query_finpay_refuses_past_the_deadline_leaves_the_payment_to_a_person,
    generated_payment_is_paid_by_the_notification,
    dropped_notification_is_found_by_the_worker,
    finpay_5xx_makes_the_worker_back_off_and_then_recover,
    expired_token_is_refreshed_transparently,
    payment_that_never_completes_expires_after_validity_and_grace,
    told_not_to_expire_the_worker_leaves_the_payment_open_flagged_and_stops_asking,
    refresh_on_read_applies_the_answer_and_respects_leases,
    the_workers_schedule_follows_each_payments_next_check,
    a_crashed_workers_claim_comes_due_again_at_its_lease_end,
    the_worker_does_not_claim_a_payment_a_refresh_holds,
    checks_not_started_before_the_lease_ran_short_are_not_attempts,
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
            .filter(|e| e.kind == "query" && e.detail["outcome"].as_str().is_some_and(|o| o.starts_with("error: ")))
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
    asks_no_more(&sim).await;
    app.stop().await;
    sim.shutdown().await;
}

async fn told_not_to_expire_the_worker_leaves_the_payment_open_flagged_and_stops_asking(backend: Backend) {
    let sim = spawn_simulator(|_| {}).await;
    let app = spawn_app_with_sim(backend, &sim, |env| {
        set_env(env, "FINPAY_QRIS__WORKER__EXPIRE_AFTER_GRACE", "false")
    })
    .await;
    let p = create_payment(&app, IDR_10K, Duration::from_secs(2), Duration::ZERO).await;

    let left = flagged(&app, &p.id).await;
    assert_eq!(left.status, PaymentStatus::Pending);
    assert_eq!(left.next_check_at, None, "no longer asked about");
    let queries = events_of(&app, &p.id, "query").await;
    assert!(
        queries.iter().any(|q| q["outcome"] == "final check; left open"),
        "{queries:?}"
    );
    assert_eq!(events_of(&app, &p.id, "flagged").await.len(), 1);
    assert_eq!(reconcile_attempts(&app, "left_open"), 1);
    asks_no_more(&sim).await;

    // A person resolves the flag: Finpay is asked at once, and without a
    // final answer the payment expires instead of being flagged again.
    app.state
        .store
        .resolve_flag(&p.id, "finance", "not paid, says Finpay")
        .await
        .unwrap();
    let expired = wait_for_status(&app, &p.id, PaymentStatus::Expired, Duration::from_secs(10)).await;
    assert_eq!(expired.flagged, None);
    assert_eq!(events_of(&app, &p.id, "flagged").await.len(), 1, "not flagged again");
    app.stop().await;
    sim.shutdown().await;
}

/// Past the deadline, Finpay's `02` (the payer is paying) is not an end: the
/// payment may yet be paid, so it is not expired but left to a person.
async fn a_payer_still_paying_at_the_deadline_is_left_to_a_person_not_expired(backend: Backend) {
    let sim = spawn_simulator(|c| c.faults.paying_forever = true).await;
    let app = spawn_app_with_sim(backend, &sim, |_| {}).await;
    let p = create_payment(&app, IDR_10K, Duration::from_secs(2), Duration::ZERO).await;
    let left = flagged(&app, &p.id).await;
    assert_eq!(left.status, PaymentStatus::Paying, "not expired");
    assert_eq!(left.next_check_at, None, "no longer asked about");
    assert!(
        left.flagged.as_deref().unwrap().contains("latestTransactionStatus 02"),
        "{:?}",
        left.flagged
    );
    // Counted once the worker has its store's answer, just after the commit.
    eventually("the attempt to be counted", Duration::from_secs(5), || async {
        (reconcile_attempts(&app, "left_open") == 1).then_some(())
    })
    .await;
    // Reading it with a refresh, while Finpay fails, does not hand it back to the worker.
    sim.update_faults(|f| f.fail_query = true);
    assert!(reconcile_one(&app.state, &p.id).await.is_err());
    let after = app.state.store.get_payment(&p.id).await.unwrap().unwrap();
    assert_eq!(after.next_check_at, None, "still left to a person");
    // A person resolves the flag while Finpay still says 02: asked at once, it
    // is flagged again, never expired on a payer still paying.
    sim.update_faults(|f| f.fail_query = false);
    app.state
        .store
        .resolve_flag(&p.id, "finance", "asked Finpay")
        .await
        .unwrap();
    eventually("the payment to be flagged again", Duration::from_secs(10), || async {
        (events_of(&app, &p.id, "flagged").await.len() == 2).then_some(())
    })
    .await;
    let again = app.state.store.get_payment(&p.id).await.unwrap().unwrap();
    assert_eq!((again.status, again.next_check_at), (PaymentStatus::Paying, None));
    app.stop().await;
    sim.shutdown().await;
}

/// A query Finpay refuses outright would be refused again: past the deadline
/// the payment is left to a person instead of being asked about for ever.
async fn a_query_finpay_refuses_past_the_deadline_leaves_the_payment_to_a_person(backend: Backend) {
    let sim = spawn_simulator(|c| c.faults.refuse_query = true).await;
    let app = spawn_app_with_sim(backend, &sim, |_| {}).await;
    let p = create_payment(&app, IDR_10K, Duration::from_secs(2), Duration::ZERO).await;
    let left = flagged(&app, &p.id).await;
    assert_eq!(
        left.status,
        PaymentStatus::Pending,
        "a refusal says nothing of the payment"
    );
    assert_eq!(left.next_check_at, None, "no longer asked about");
    assert!(
        left.flagged.as_deref().unwrap().contains("4005102"),
        "{:?}",
        left.flagged
    );
    assert!(
        left.updated_at >= p.valid_until.unwrap(),
        "before its deadline a refused query is asked again"
    );
    asks_no_more(&sim).await;
    app.stop().await;
    sim.shutdown().await;
}

/// Finpay is asked nothing more about any payment for a while.
async fn asks_no_more(sim: &finpay_qris::simulator::SimHandle) {
    let asked = sim.stats().query_requests;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.stats().query_requests, asked, "Finpay asked again");
}

async fn flagged(app: &TestApp, id: &str) -> finpay_qris::store::Payment {
    eventually("the payment to be flagged", Duration::from_secs(10), || async {
        let p = app.state.store.get_payment(id).await.unwrap().unwrap();
        p.flagged.is_some().then_some(p)
    })
    .await
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

/// The ids of claimed payments, in the order the claim returned them.
fn ids(payments: &[finpay_qris::store::Payment]) -> Vec<&str> {
    payments.iter().map(|p| p.id.as_str()).collect()
}

/// A new pending payment of IDR 10,000 with a reference of its own.
async fn new_pending_payment(store: &dyn finpay_qris::store::Store) -> finpay_qris::store::Payment {
    insert_pending_payment(store, &format!("INV-{}", unique_digits()), IDR_10K).await
}

/// The worker's schedule is `payments.next_check_at`, and nothing else: a
/// payment is claimed when its check is due, and never once it is settled.
async fn the_workers_schedule_follows_each_payments_next_check(backend: Backend) {
    let app = TestApp::spawn_with(backend, |env| set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false")).await;
    let store = app.state.store.clone();
    let prn = format!("INV-{}", unique_digits());
    let rn = format!("FP-{}", unique_digits());
    let p = insert_pending_payment(store.as_ref(), &prn, IDR_10K).await;
    let now = store::now();
    let later = now + chrono::Duration::seconds(60);
    assert_eq!(p.next_check_at, None, "no check scheduled yet");

    let generated = |next_check_at| store::GeneratedQr {
        reference_no: Some(rn.clone()),
        qr_content: "00020101021226".into(),
        qr_url: None,
        next_check_at,
    };
    store.attach_generated(&p.id, &generated(later)).await.unwrap();
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

    // Settled by Finpay's notification: nothing left to check.
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
    app.stop().await;
}

/// A claim moves the payment's check to the end of its lease: while the
/// lease runs nobody else claims it, and should its worker die without an
/// answer, the payment comes due again when the lease ends.
async fn a_crashed_workers_claim_comes_due_again_at_its_lease_end(backend: Backend) {
    let app = TestApp::spawn_with(backend, |env| set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false")).await;
    let store = app.state.store.clone();
    let p = new_pending_payment(store.as_ref()).await;
    let now = store::now();
    set_next_check(&app.db.url, &p.id, Some(now - chrono::Duration::seconds(5))).await;

    let claimed = store.claim_due("crashed", now, 30, 10).await.unwrap();
    assert_eq!(ids(&claimed), [p.id.as_str()]);
    assert_eq!(claimed[0].next_check_at, Some(now + chrono::Duration::seconds(30)));
    let during = now + chrono::Duration::seconds(29);
    assert!(store.claim_due("other", during, 30, 10).await.unwrap().is_empty());
    let after = now + chrono::Duration::seconds(31);
    let taken_over = store.claim_due("other", after, 30, 10).await.unwrap();
    assert_eq!(ids(&taken_over), [p.id.as_str()]);
    assert_eq!(taken_over[0].lease_owner.as_deref(), Some("other"));
    app.stop().await;
}

/// A refresh on read leases a payment without moving its check: the worker
/// must not claim it while that lease runs, or Finpay is asked twice and the
/// refresh's answer is refused as no longer its own.
async fn the_worker_does_not_claim_a_payment_a_refresh_holds(backend: Backend) {
    let app = TestApp::spawn_with(backend, |env| set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false")).await;
    let store = app.state.store.clone();
    let p = new_pending_payment(store.as_ref()).await;
    let now = store::now();
    set_next_check(&app.db.url, &p.id, Some(now - chrono::Duration::seconds(5))).await;

    let held = store.claim_one(&p.id, "refresh", now, 30).await.unwrap();
    assert!(held.is_some(), "the refresh holds the payment");
    assert!(store.claim_due("worker", now, 30, 10).await.unwrap().is_empty());
    let after = now + chrono::Duration::seconds(31);
    let claimed = store.claim_due("worker", after, 30, 10).await.unwrap();
    assert_eq!(
        ids(&claimed),
        [p.id.as_str()],
        "due again once the refresh's lease ran out"
    );
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

/// When Finpay hangs, the checks of a claimed batch that could not start
/// before its lease ran short are not attempts: their payments come due
/// again at the lease's end, their backoff untouched. Four run at a time.
async fn checks_not_started_before_the_lease_ran_short_are_not_attempts(backend: Backend) {
    let hangs = crate::api::support::scripted_finpay_after(LONG, vec![(200, serde_json::json!({}))]).await;
    let app = TestApp::spawn_with(backend, move |env| {
        crate::api::support::finpay_at(env, &hangs);
        set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "true");
        set_env(env, "FINPAY_QRIS__WORKER__POLL_INTERVAL_MS", "100");
        set_env(env, "FINPAY_QRIS__WORKER__LEASE_SECS", "4");
    })
    .await;
    let store = app.state.store.clone();
    for _ in 0..8 {
        new_pending_payment(store.as_ref()).await;
    }
    let due = store::now() - chrono::Duration::seconds(1);
    with_connection!(&app.db.url, |c| sqlx::query("UPDATE payments SET next_check_at = $1")
        .bind(due)
        .execute(&mut c)
        .await
        .unwrap()
        .rows_affected());
    let attempts = || async {
        let counts: Vec<i32> = with_connection!(&app.db.url, |c| sqlx::query_scalar(
            "SELECT check_attempts FROM payments ORDER BY id"
        )
        .fetch_all(&mut c)
        .await
        .unwrap());
        counts
    };
    eventually("the first four checks to be cut", Duration::from_secs(15), || async {
        (attempts().await.iter().filter(|&&n| n > 0).count() >= 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = attempts().await;
    assert_eq!(counts.iter().filter(|&&n| n == 0).count(), 4, "{counts:?}");
    app.stop().await;
}
