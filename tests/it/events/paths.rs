//! Every path that changes a payment raises its event, numbered in order:
//! a QR generated through the API, a notification, a refund's outcome, the
//! worker's expiry, a refresh on read, a flag resolved, a refund reported by
//! Finpay; a replayed notification raises nothing.

use crate::api::support::{get, paid_by_notification, paid_through_api, refund, with_simulator};
use crate::common::*;
use finpay_qris::domain::PaymentStatus;
use serde_json::Value;
use std::time::Duration;

/// The payment's events, oldest first: (type, cause, sequence).
async fn events_for(app: &TestApp, payment_id: &str) -> Vec<(String, String, i64)> {
    let page = get(app, &format!("/api/v1/events?paymentId={payment_id}")).await.json();
    let mut items: Vec<Value> = page["items"].as_array().unwrap().clone();
    items.reverse();
    items
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["cause"].as_str().unwrap().to_string(),
                e["sequence"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn ev(t: &str, cause: &str, seq: i64) -> (String, String, i64) {
    (t.to_string(), cause.to_string(), seq)
}

/// Finpay notifies `status` for the payment `paid` (as the API shows it)
/// under a new key; the HTTP status of the answer.
async fn notified(app: &TestApp, paid: &Value, status: &str, amount: &str) -> u16 {
    let token = app.token().await;
    let body = notify_body(
        paid["partnerReferenceNo"].as_str().unwrap(),
        paid["referenceNo"].as_str().unwrap(),
        status,
        amount,
    );
    app.notify(&token, &unique_digits(), &body).await.0
}

async fn a_generated_paid_and_refunded_payment_raises_pending_paid_and_its_refunds_events(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let paid = paid_through_api(&app, &sim, "12000.00").await;
    let id = paid["id"].as_str().unwrap();
    assert_eq!(refund("12000", "returned").send(&app, id).await.status, 201);
    assert_eq!(
        events_for(&app, id).await,
        [
            ev("payment.pending", "api", 1),
            ev("payment.paid", "notification", 2),
            ev("refund.pending", "api", 3),
            ev("refund.succeeded", "api", 4),
            ev("payment.refunded", "api", 5)
        ]
    );
    let page = get(&app, &format!("/api/v1/events?paymentId={id}&type=refund.succeeded"))
        .await
        .json();
    let data = &page["items"][0]["payload"]["data"];
    assert_eq!(data["status"], "refunded");
    assert_eq!(data["refund"]["status"], "succeeded");
    assert_eq!(data["refund"]["amount"], "12000.00");
    // Asked: the payment as it was then, its amount reserved, still paid.
    let page = get(&app, &format!("/api/v1/events?paymentId={id}&type=refund.pending"))
        .await
        .json();
    let data = &page["items"][0]["payload"]["data"];
    assert_eq!(
        (data["status"].as_str(), data["refundedAmount"].as_str()),
        (Some("paid"), Some("12000.00"))
    );
    assert_eq!(data["refund"]["status"], "pending");
    sim.shutdown().await;
    app.stop().await;
}

async fn a_refused_refund_raises_refund_failed_and_a_replay_raises_nothing(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    // Paid according to a notification, unknown to this Finpay: it refuses the refund.
    let paid = paid_by_notification(&app, "8000.00").await;
    let id = paid["id"].as_str().unwrap();
    assert_eq!(refund("8000", "x").send(&app, id).await.status, 502);
    assert_eq!(
        events_for(&app, id).await,
        [
            ev("payment.paid", "notification", 1),
            ev("refund.pending", "api", 2),
            ev("refund.failed", "api", 3)
        ]
    );
    // The settlement again, under a new key: no second paid event.
    assert_eq!(notified(&app, &paid, "00", "8000.00").await, 200);
    assert_eq!(events_for(&app, id).await.len(), 3);
    sim.shutdown().await;
    app.stop().await;
}

/// A refund made at Finpay (status `04` in a notification) is a change of
/// the payment like any other; made without a refund asked here, it is
/// flagged for a person too.
async fn a_refund_reported_by_finpay_raises_refunded(backend: Backend) {
    let app = crate::console::support::spawn(backend).await;
    let paid = paid_by_notification(&app, "3000.00").await;
    let id = paid["id"].as_str().unwrap();
    assert_eq!(notified(&app, &paid, "04", "3000.00").await, 200);
    assert_eq!(
        events_for(&app, id).await,
        [
            ev("payment.paid", "notification", 1),
            ev("payment.refunded", "notification", 2),
            ev("payment.flagged", "notification", 3)
        ]
    );
    app.stop().await;
}

async fn the_workers_expiry_raises_expired(backend: Backend) {
    let sim = spawn_simulator(|_| {}).await;
    let app = spawn_app_with_sim(backend, &sim, |_| {}).await;
    let p = create_payment(&app, 1_000_000, Duration::from_secs(2), Duration::ZERO).await;
    wait_for_status(&app, &p.id, PaymentStatus::Expired, Duration::from_secs(10)).await;
    assert_eq!(
        events_for(&app, &p.id).await,
        [ev("payment.pending", "api", 1), ev("payment.expired", "worker", 2)]
    );
    app.stop().await;
    sim.shutdown().await;
}

async fn a_refresh_on_read_that_finds_the_payment_paid_raises_paid_by_query(backend: Backend) {
    let sim = spawn_simulator(|c| c.faults.drop_notifications = true).await;
    let app = spawn_app_with_sim(backend, &sim, |env| {
        set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false")
    })
    .await;
    let p = create_payment(&app, 1_000_000, Duration::from_secs(300), Duration::from_secs(300)).await;
    sim.pay(p.partner_reference_no.as_deref().unwrap()).unwrap();
    let read = get(&app, &format!("/api/v1/payments/{}?refresh=true", p.id)).await;
    assert_eq!(read.json()["status"], "paid");
    assert_eq!(
        events_for(&app, &p.id).await,
        [ev("payment.pending", "api", 1), ev("payment.paid", "query", 2)]
    );
    app.stop().await;
    sim.shutdown().await;
}

async fn a_resolved_flag_raises_flag_resolved_and_is_in_the_audit_trail(backend: Backend) {
    let app = crate::console::support::spawn(backend).await;
    let p = crate::console::support::flagged_payment(&app).await;
    let path = format!("/api/v1/payments/{}/flag-resolution", p.id);
    let resolved = crate::api::support::post(&app, &path, &serde_json::json!({"note": "amount confirmed"}), None).await;
    assert_eq!(resolved.status, 200, "{}", String::from_utf8_lossy(&resolved.bytes));
    assert_eq!(
        events_for(&app, &p.id).await,
        [
            ev("payment.pending", "api", 1),
            ev("payment.flagged", "notification", 2),
            ev("payment.flag_resolved", "api", 3)
        ]
    );
    // Named by its partnerReferenceNo, as on the other payment routes.
    let reference = p.partner_reference_no.as_deref().unwrap();
    let page = get(
        &app,
        &format!("/api/v1/events?paymentId={reference}&type=payment.flag_resolved"),
    )
    .await
    .json();
    let data = &page["items"][0]["payload"]["data"];
    assert!(
        data.as_object().unwrap().contains_key("flagged") && data["flagged"].is_null(),
        "the payment as it is now: {data}"
    );
    assert_eq!(data["status"], p.status.as_str(), "the status is not changed");

    let trail = get(&app, &format!("/api/v1/payments/{}/events", p.id)).await.json();
    let last = trail["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "flag_resolved");
    assert_eq!(last["detail"]["note"], "amount confirmed");
    assert_eq!(last["detail"]["actor"], "finance");
    assert_eq!(last["detail"]["flag"].as_str(), p.flagged.as_deref());
    app.stop().await;
}

/// A full refund asked here whose outcome is unknown; Finpay's `04` while
/// its reservation covers the amount; then that refund refused: the money
/// went back elsewhere, and the payment is flagged when the amount is released.
async fn a_refused_refund_of_a_payment_finpay_refunded_flags_it(backend: Backend) {
    use finpay_qris::store::{NewRefund, RefundOutcome, RefundReservation};
    let app = crate::console::support::spawn(backend).await;
    let paid = paid_by_notification(&app, "3000.00").await;
    let id = paid["id"].as_str().unwrap();
    let new = NewRefund {
        id: uuid::Uuid::now_v7().to_string(),
        payment_id: id.to_string(),
        partner_refund_no: format!("RF{}", unique_digits()),
        amount_minor: 300_000,
        reason: "whole order".into(),
        created_at: finpay_qris::store::now(),
    };
    let reserved = app.state.store.reserve_refund(&new, None).await.unwrap();
    assert!(matches!(reserved, RefundReservation::Reserved(_)), "{reserved:?}");
    assert_eq!(notified(&app, &paid, "04", "3000.00").await, 200);
    let refunded = app.state.store.get_payment(id).await.unwrap().unwrap();
    assert_eq!(
        (refunded.status, refunded.flagged.as_deref()),
        (PaymentStatus::Refunded, None)
    );

    let refused = RefundOutcome::Rejected {
        response_code: Some("4045801".into()),
        message: "refused".into(),
    };
    let now = finpay_qris::store::now();
    let send = app
        .state
        .store
        .claim_refund_send(&new.id, now, now + chrono::Duration::seconds(60))
        .await
        .unwrap();
    app.state
        .store
        .complete_refund(&new.id, send.unwrap(), &refused)
        .await
        .unwrap();

    let p = app.state.store.get_payment(id).await.unwrap().unwrap();
    assert_eq!((p.status, p.refunded_minor), (PaymentStatus::Refunded, 0));
    assert_eq!(
        p.flagged.as_deref(),
        Some("refunded by Finpay, but the refunds asked here cover 0.00 of 3000.00; check what happened")
    );
    assert_eq!(
        events_for(&app, id).await.last(),
        Some(&ev("payment.flagged", "api", 5))
    );
    app.stop().await;
}

on_both_backends!(
    a_refused_refund_of_a_payment_finpay_refunded_flags_it,
    a_resolved_flag_raises_flag_resolved_and_is_in_the_audit_trail,
    a_generated_paid_and_refunded_payment_raises_pending_paid_and_its_refunds_events,
    a_refused_refund_raises_refund_failed_and_a_replay_raises_nothing,
    a_refund_reported_by_finpay_raises_refunded,
    the_workers_expiry_raises_expired,
    a_refresh_on_read_that_finds_the_payment_paid_raises_paid_by_query,
);
