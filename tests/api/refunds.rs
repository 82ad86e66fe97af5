//! Refunds: only paid payments, never more than the amount; against the
//! simulator, success, partial and full, and concurrent over-refunds.

use crate::common::{Backend, TestApp};
use crate::support::{
    calls_to, get, insert_payment, kind, paid_by_notification, paid_through_api, post, unreachable_finpay,
    with_simulator,
};
use serde_json::json;
use std::collections::HashSet;

async fn only_paid_payments_can_be_refunded(backend: Backend) {
    let app = TestApp::spawn_with(backend, unreachable_finpay).await;
    let p = insert_payment(&app, 10000).await;
    let r = post(
        &app,
        &format!("/api/v1/payments/{}/refunds", p.id),
        &json!({"amount": "1", "reason": "x"}),
        None,
    )
    .await;
    let problem = r.problem(409);
    assert_eq!(kind(&problem), "payment-not-refundable");
    assert!(problem["detail"].as_str().unwrap().contains("pending"));
    let r = post(
        &app,
        "/api/v1/payments/nope/refunds",
        &json!({"amount": "1", "reason": "x"}),
        None,
    )
    .await;
    r.problem(404);
    for (body, field) in [
        (json!({"amount": "1"}), "reason"),
        (json!({"amount": "1", "reason": "  "}), "reason"),
        (json!({"amount": 1, "reason": "x"}), "amount"),
        (json!({"amount": "0", "reason": "x"}), "amount"),
        (
            json!({"amount": "1", "reason": "x", "partnerRefundNo": "no/slashes"}),
            "partnerRefundNo",
        ),
    ] {
        let problem = post(&app, &format!("/api/v1/payments/{}/refunds", p.id), &body, None)
            .await
            .problem(422);
        assert_eq!(problem["field"], field, "{body}");
    }
    app.stop().await;
}

async fn an_unknown_refund_outcome_keeps_the_amount_reserved(backend: Backend) {
    let app = TestApp::spawn_with(backend, unreachable_finpay).await;
    let paid = paid_by_notification(&app, "10000.00").await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["refundableAmount"], "10000.00");
    let id = paid["id"].as_str().unwrap();
    let path = format!("/api/v1/payments/{id}/refunds");
    let body = json!({"amount": "4000", "reason": "damaged", "partnerRefundNo": "RF-1"});
    let problem = post(&app, &path, &body, None).await.problem(502);
    let refund_id = problem["refundId"]
        .as_str()
        .expect("names the pending refund")
        .to_string();
    let refunds = get(&app, &path).await.json();
    assert_eq!(refunds["items"][0]["status"], "pending");
    assert_eq!(refunds["items"][0]["amount"], "4000.00");
    let payment = get(&app, &format!("/api/v1/payments/{id}")).await.json();
    assert_eq!(payment["refundedAmount"], "4000.00", "the amount stays reserved");
    assert_eq!(payment["refundableAmount"], "6000.00");
    // More than what is left: refused by the database's guard, naming the amount.
    let over = post(&app, &path, &json!({"amount": "6000.01", "reason": "x"}), None)
        .await
        .problem(409);
    assert_eq!(kind(&over), "refund-exceeds-refundable");
    assert_eq!(over["field"], "amount");
    // A retry with the same partnerRefundNo resumes the same refund (no second reservation).
    let again = post(&app, &path, &body, None).await.problem(502);
    assert_eq!(again["refundId"], refund_id.as_str());
    let other = post(
        &app,
        &path,
        &json!({"amount": "1", "reason": "x", "partnerRefundNo": "RF-1"}),
        None,
    )
    .await
    .problem(409);
    assert_eq!(kind(&other), "partner-refund-taken");
    assert_eq!(get(&app, &path).await.json()["items"].as_array().unwrap().len(), 1);
    let events = get(&app, &format!("/api/v1/payments/{id}/events")).await.json();
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"refund_requested") && kinds.contains(&"refund_unknown"),
        "{kinds:?}"
    );
    app.stop().await;
}

async fn a_partial_then_a_full_refund_moves_the_payment_to_refunded(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let paid = paid_through_api(&app, &sim, "10000").await;
    let id = paid["id"].as_str().unwrap();
    let path = format!("/api/v1/payments/{id}/refunds");
    let r = post(
        &app,
        &path,
        &json!({"amount": "3000", "reason": "one item returned"}),
        None,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let first = r.json();
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["amount"], "3000.00");
    assert!(first["referenceNo"].is_string());
    let partial = get(&app, &format!("/api/v1/payments/{id}")).await.json();
    assert_eq!(
        (partial["status"].as_str(), partial["refundableAmount"].as_str()),
        (Some("paid"), Some("7000.00"))
    );
    let r = post(
        &app,
        &path,
        &json!({"amount": "7000.00", "reason": "order cancelled", "partnerRefundNo": "RF-full"}),
        None,
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["partnerRefundNo"], "RF-full");
    let refunded = get(&app, &format!("/api/v1/payments/{id}")).await.json();
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(refunded["refundedAmount"], "10000.00");
    let more = post(&app, &path, &json!({"amount": "1", "reason": "x"}), None)
        .await
        .problem(409);
    assert_eq!(kind(&more), "payment-not-refundable");
    // The same partnerRefundNo again answers the refund as it is, without a second refund.
    let again = post(
        &app,
        &path,
        &json!({"amount": "7000", "reason": "order cancelled", "partnerRefundNo": "RF-full"}),
        None,
    )
    .await;
    assert_eq!(again.status, 200);
    let list = get(&app, &path).await.json();
    let statuses: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "succeeded"]);
    assert_eq!(calls_to(&sim, "qr-mpm-refund"), 2);
    let events = get(&app, &format!("/api/v1/payments/{id}/events")).await.json();
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "refund_succeeded").count(), 2);
    assert_eq!(kinds.last(), Some(&"status_changed"));
    sim.shutdown().await;
    app.stop().await;
}

async fn concurrent_refunds_never_exceed_the_amount(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let paid = paid_through_api(&app, &sim, "10000").await;
    let path = format!("/api/v1/payments/{}/refunds", paid["id"].as_str().unwrap());
    let body = json!({"amount": "3000", "reason": "split refund"});
    let answers = futures::future::join_all((0..6).map(|_| post(&app, &path, &body, None))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [201, 201, 201, 409, 409, 409],
        "exactly the refunds that fit succeed"
    );
    for r in answers.iter().filter(|r| r.status == 409) {
        assert_eq!(kind(&r.problem(409)), "refund-exceeds-refundable");
    }
    let payment = get(&app, &format!("/api/v1/payments/{}", paid["id"].as_str().unwrap()))
        .await
        .json();
    assert_eq!(payment["refundedAmount"], "9000.00");
    assert_eq!(payment["refundableAmount"], "1000.00");
    let at_finpay = sim.payment(paid["partnerReferenceNo"].as_str().unwrap()).unwrap();
    assert_eq!(at_finpay.refunded_minor, 900_000);
    sim.shutdown().await;
    app.stop().await;
}

async fn concurrent_retries_with_one_idempotency_key_refund_once(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let paid = paid_through_api(&app, &sim, "10000").await;
    let path = format!("/api/v1/payments/{}/refunds", paid["id"].as_str().unwrap());
    let body = json!({"amount": "2500", "reason": "goodwill"});
    let answers = futures::future::join_all((0..6).map(|_| post(&app, &path, &body, Some("refund-once")))).await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
            r.json()["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(calls_to(&sim, "qr-mpm-refund"), 1);
    let other = post(
        &app,
        &path,
        &json!({"amount": "2500", "reason": "other"}),
        Some("refund-once"),
    )
    .await
    .problem(422);
    assert_eq!(kind(&other), "idempotency-key-reused");
    assert_eq!(get(&app, &path).await.json()["items"].as_array().unwrap().len(), 1);
    sim.shutdown().await;
    app.stop().await;
}

async fn a_refused_refund_releases_the_amount(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    // Paid according to a notification, unknown to this Finpay: it refuses the refund (4xx).
    let paid = paid_by_notification(&app, "8000.00").await;
    let id = paid["id"].as_str().unwrap();
    let path = format!("/api/v1/payments/{id}/refunds");
    let p = post(
        &app,
        &path,
        &json!({"amount": "8000", "reason": "x"}),
        Some("refused-refund"),
    )
    .await
    .problem(502);
    assert_eq!(kind(&p), "finpay-rejected");
    assert!(p["finpayResponseCode"].is_string());
    let refund_id = p["refundId"].as_str().unwrap();
    let list = get(&app, &path).await.json();
    assert_eq!(list["items"][0]["id"], refund_id);
    assert_eq!(list["items"][0]["status"], "failed");
    let payment = get(&app, &format!("/api/v1/payments/{id}")).await.json();
    assert_eq!(
        (payment["refundedAmount"].as_str(), payment["refundableAmount"].as_str()),
        (Some("0.00"), Some("8000.00"))
    );
    let again = post(
        &app,
        &path,
        &json!({"amount": "8000", "reason": "x"}),
        Some("refused-refund"),
    )
    .await;
    assert_eq!((again.status, again.json()), (502, p));
    sim.shutdown().await;
    app.stop().await;
}

async fn after_a_finpay_outage_a_retry_completes_the_same_refund(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let paid = paid_through_api(&app, &sim, "10000").await;
    let path = format!("/api/v1/payments/{}/refunds", paid["id"].as_str().unwrap());
    sim.update_faults(|f| f.fail_refund = true);
    let body = json!({"amount": "10000", "reason": "cancelled"});
    let p = post(&app, &path, &body, Some("refund-outage")).await.problem(502);
    assert_eq!(kind(&p), "finpay-unavailable");
    let refund_id = p["refundId"].as_str().unwrap().to_string();
    assert_eq!(get(&app, &path).await.json()["items"][0]["status"], "pending");
    sim.update_faults(|f| f.fail_refund = false);
    let r = post(&app, &path, &body, Some("refund-outage")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["id"], refund_id.as_str());
    assert_eq!(r.json()["status"], "succeeded");
    let payment = get(&app, &format!("/api/v1/payments/{}", paid["id"].as_str().unwrap()))
        .await
        .json();
    assert_eq!(payment["status"], "refunded");
    assert_eq!(
        sim.payment(paid["partnerReferenceNo"].as_str().unwrap())
            .unwrap()
            .refunds
            .len(),
        1
    );
    sim.shutdown().await;
    app.stop().await;
}

crate::on_both_backends!(
    only_paid_payments_can_be_refunded,
    an_unknown_refund_outcome_keeps_the_amount_reserved,
    a_partial_then_a_full_refund_moves_the_payment_to_refunded,
    concurrent_refunds_never_exceed_the_amount,
    concurrent_retries_with_one_idempotency_key_refund_once,
    a_refused_refund_releases_the_amount,
    after_a_finpay_outage_a_retry_completes_the_same_refund,
);
