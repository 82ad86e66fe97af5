//! Reconciliation with several replicas on one database: leases keep two
//! workers off the same payment, and a dead worker's leases are taken over.

use crate::common::*;
use finpay_qris::domain::PaymentStatus;
use finpay_qris::store;
use std::time::Duration;

on_both_backends!(
    two_workers_apply_each_payment_once,
    a_crashed_workers_lease_runs_out_and_is_taken_over
);

const IDR_10K: i64 = 1_000_000;
const LONG: Duration = Duration::from_secs(300);

async fn two_workers_apply_each_payment_once(backend: Backend) {
    let sim = spawn_simulator(|c| {
        c.faults.drop_notifications = true;
        // Slow answers: overlapping queries for one payment would be seen.
        c.faults.query_delay_ms = 40;
    })
    .await;
    let small_batches = |env: &mut Vec<(String, String)>| set_env(env, "FINPAY_QRIS__WORKER__BATCH_SIZE", "2");
    let a = spawn_app_with_sim(backend, &sim, small_batches).await;
    let mut env = base_env(&a.db.url);
    finpay_env(&mut env, sim.base_url());
    small_batches(&mut env);
    let b = TestApp::spawn_env(a.db.shared(), env).await;

    let mut ids = Vec::new();
    for _ in 0..8 {
        let p = create_payment(&a, IDR_10K, LONG, Duration::from_secs(1)).await;
        sim.pay(p.partner_reference_no.as_deref().unwrap()).unwrap();
        ids.push(p.id);
    }
    for id in &ids {
        wait_for_status(&a, id, PaymentStatus::Paid, Duration::from_secs(15)).await;
    }

    for id in &ids {
        let changes = events_of(&a, id, "status_changed").await;
        assert_eq!(changes.len(), 1, "payment {id}: {changes:?}");
    }
    assert_eq!(
        sim.stats().concurrent_queries,
        0,
        "two workers queried one payment at once"
    );
    assert_eq!(reconcile_attempts(&a, "applied") + reconcile_attempts(&b, "applied"), 8);
    assert_eq!(
        reconcile_attempts(&a, "lease_lost") + reconcile_attempts(&b, "lease_lost"),
        0
    );
    b.stop().await;
    a.stop().await;
    sim.shutdown().await;
}

async fn a_crashed_workers_lease_runs_out_and_is_taken_over(backend: Backend) {
    let sim = spawn_simulator(|c| c.faults.drop_notifications = true).await;
    let quiet = |env: &mut Vec<(String, String)>| set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false");
    let a = spawn_app_with_sim(backend, &sim, quiet).await;
    let p = create_payment(&a, IDR_10K, LONG, Duration::ZERO).await;
    sim.pay(p.partner_reference_no.as_deref().unwrap()).unwrap();
    // A worker claims the payment for 2 s and dies without answering.
    let claimed = a
        .state
        .store
        .claim_due("crashed-worker", store::now(), 2, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let lease_until = claimed[0].lease_until.unwrap();

    let mut env = base_env(&a.db.url);
    finpay_env(&mut env, sim.base_url());
    let b = TestApp::spawn_env(a.db.shared(), env).await;
    let paid = wait_for_status(&b, &p.id, PaymentStatus::Paid, Duration::from_secs(10)).await;

    assert!(
        paid.updated_at >= lease_until,
        "taken over at {} before the lease ended at {lease_until}",
        paid.updated_at
    );
    assert_eq!(events_of(&b, &p.id, "status_changed").await[0]["by"], "query");
    assert_eq!(paid.lease_owner, None);
    b.stop().await;
    a.stop().await;
    sim.shutdown().await;
}
