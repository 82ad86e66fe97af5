//! Refunds: only paid payments, never more than the amount; against the
//! simulator, success, partial and full, and concurrent over-refunds.

use super::support::{
    calls_to, event_kinds, finpay_at, get, insert_payment, kind, paid_by_notification, paid_through_api, payment, post,
    refund, refunds_path, scripted_finpay, scripted_finpay_after, unreachable_finpay, with_simulator,
};
use crate::common::{self, Backend, TestApp};
use serde_json::json;
use std::collections::HashSet;

async fn only_paid_payments_can_be_refunded(backend: Backend) {
    let app = TestApp::spawn_with(backend, unreachable_finpay).await;
    let p = insert_payment(&app, 10000).await;
    let problem = refund("1", "x").send(&app, &p.id).await.problem(409);
    assert_eq!(kind(&problem), "payment-not-refundable");
    assert!(problem["detail"].as_str().unwrap().contains("pending"));
    refund("1", "x").send(&app, "nope").await.problem(404);
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
        let problem = post(&app, &refunds_path(&p.id), &body, None).await.problem(422);
        assert_eq!(problem["field"], field, "{body}");
    }
    app.stop().await;
}

async fn a_flagged_payment_is_refunded_only_after_a_person_resolves_its_flag(backend: Backend) {
    let app = TestApp::spawn_with(backend, unreachable_finpay).await;
    let paid = paid_by_notification(&app, "10000.00").await;
    let id = paid["id"].as_str().unwrap();
    // Finpay then reports another amount for it: it stays paid, flagged.
    let token = app.token().await;
    let body = common::notify_body(
        paid["partnerReferenceNo"].as_str().unwrap(),
        paid["referenceNo"].as_str().unwrap(),
        "00",
        "5.00",
    );
    let (status, answer) = app.notify(&token, &common::unique_digits(), &body).await;
    assert_eq!(status, 200, "{answer}");
    let flagged = payment(&app, id).await;
    assert_eq!(flagged["status"], "paid");
    assert!(flagged["flagged"].is_string(), "{flagged}");
    assert_eq!(flagged["refundableAmount"], "0.00", "nothing while a person decides");

    let problem = refund("1000", "x").send(&app, id).await.problem(409);
    assert_eq!(kind(&problem), "payment-flagged");
    assert!(
        problem["detail"].as_str().unwrap().contains("resolve its flag"),
        "{problem}"
    );
    assert_eq!(payment(&app, id).await["refundedAmount"], "0.00", "nothing reserved");

    let note = json!({"note": "Finpay support confirmed 10000.00 was paid"});
    let resolved = post(&app, &format!("/api/v1/payments/{id}/flag-resolution"), &note, None).await;
    assert_eq!(resolved.status, 200);
    assert_eq!(resolved.json()["refundableAmount"], "10000.00");
    // Now it is asked of Finpay (unreachable here: the outcome is unknown, the amount reserved).
    refund("1000", "x").send(&app, id).await.problem(502);
    assert_eq!(payment(&app, id).await["refundedAmount"], "1000.00");
    app.stop().await;
}

async fn a_payment_finpay_reported_in_another_currency_is_not_refundable(backend: Backend) {
    let app = TestApp::spawn_with(backend, unreachable_finpay).await;
    let token = app.token().await;
    let partner_ref = format!("S{}", common::unique_digits());
    let body = common::notify_body(&partner_ref, &format!("R{}", common::unique_digits()), "00", "10.00")
        .replace(r#""currency":"IDR""#, r#""currency":"USD""#);
    let (status, answer) = app.notify(&token, &common::unique_digits(), &body).await;
    assert_eq!(status, 200, "{answer}");
    let p = payment(&app, &partner_ref).await;
    assert_eq!(
        (p["status"].as_str(), p["currency"].as_str()),
        (Some("paid"), Some("USD"))
    );
    assert_eq!(p["refundableAmount"], "0.00");
    let problem = refund("10", "x")
        .send(&app, p["id"].as_str().unwrap())
        .await
        .problem(409);
    assert_eq!(kind(&problem), "payment-not-refundable");
    assert!(problem["detail"].as_str().unwrap().contains("USD"), "{problem}");
    assert_eq!(
        payment(&app, &partner_ref).await["refundedAmount"],
        "0.00",
        "nothing reserved"
    );
    app.stop().await;
}

async fn an_unknown_refund_outcome_keeps_the_amount_reserved(backend: Backend) {
    let app = TestApp::spawn_with(backend, unreachable_finpay).await;
    let paid = paid_by_notification(&app, "10000.00").await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["refundableAmount"], "10000.00");
    let id = paid["id"].as_str().unwrap();
    let damaged = refund("4000", "damaged").numbered("RF-1");
    let problem = damaged.send(&app, id).await.problem(502);
    let refund_id = problem["refundId"]
        .as_str()
        .expect("names the pending refund")
        .to_string();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("retry with partnerRefundNo RF-1"),
        "tells how to resume it: {problem}"
    );
    let refunds = get(&app, &refunds_path(id)).await.json();
    assert_eq!(refunds["items"][0]["status"], "pending");
    assert_eq!(refunds["items"][0]["amount"], "4000.00");
    let reserved = payment(&app, id).await;
    assert_eq!(reserved["refundedAmount"], "4000.00", "the amount stays reserved");
    assert_eq!(reserved["refundableAmount"], "6000.00");
    // More than what is left: refused by the database's guard, naming the amount.
    let over = refund("6000.01", "x").send(&app, id).await.problem(409);
    assert_eq!(kind(&over), "refund-exceeds-refundable");
    assert_eq!(over["field"], "amount");
    // A retry with the same partnerRefundNo resumes the same refund (no second reservation).
    let again = damaged.send(&app, id).await.problem(502);
    assert_eq!(again["refundId"], refund_id.as_str());
    let other = refund("1", "x").numbered("RF-1").send(&app, id).await.problem(409);
    assert_eq!(kind(&other), "partner-refund-taken");
    assert!(
        other["detail"].as_str().unwrap().contains("refund of 4000.00"),
        "names the refund it is: {other}"
    );
    assert_eq!(
        get(&app, &refunds_path(id)).await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Finpay never gave a token, so the refund was never sent: asked, not unknown.
    let kinds = event_kinds(&app, id).await;
    assert!(
        kinds.iter().any(|k| k == "refund_requested") && !kinds.iter().any(|k| k == "refund_unknown"),
        "{kinds:?}"
    );
    app.stop().await;
}

/// Finpay's answer to a refund sent again after an unknown outcome: `second`;
/// the problem the retry was answered with.
async fn refund_resumed_after_a_lost_answer(
    backend: Backend,
    second: (u16, serde_json::Value),
) -> (TestApp, String, serde_json::Value) {
    let lost = (504, json!({"responseCode": "5047800", "responseMessage": "Timeout"}));
    let finpay = scripted_finpay(vec![lost, second]).await;
    let app = TestApp::spawn_with(backend, move |env| finpay_at(env, &finpay)).await;
    let paid = paid_by_notification(&app, "10000.00").await;
    let id = paid["id"].as_str().unwrap().to_string();
    let returned = refund("4000", "returned").numbered("RF-9");
    returned.send(&app, &id).await.problem(502);
    let again = returned.send(&app, &id).await.problem(502);
    (app, id, again)
}

async fn a_refusal_of_a_refund_sent_again_keeps_it_pending_until_a_person_settles_it(backend: Backend) {
    let invalid_amount = (
        404,
        json!({"responseCode": "4047813", "responseMessage": "Invalid Amount"}),
    );
    let (app, id, answered) = refund_resumed_after_a_lost_answer(backend, invalid_amount).await;
    assert_eq!(
        kind(&answered),
        "finpay-unavailable",
        "no outcome to report: {answered}"
    );
    let refunds = get(&app, &refunds_path(&id)).await.json();
    let refund_id = refunds["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        refunds["items"][0]["status"], "pending",
        "the first send may have been carried out"
    );
    assert_eq!(
        payment(&app, &id).await["refundedAmount"],
        "4000.00",
        "the amount stays reserved"
    );
    let kinds = event_kinds(&app, &id).await;
    assert!(!kinds.iter().any(|k| k == "refund_failed"), "{kinds:?}");

    // Finpay's support says it was never made: a person settles it, and the amount is free again.
    let resolution = format!("{}/{refund_id}/resolution", refunds_path(&id));
    for outcome in [json!("maybe"), json!(1), json!(null), json!(["failed"])] {
        let bad = post(&app, &resolution, &json!({"outcome": outcome, "note": "x"}), None).await;
        assert_eq!(bad.problem(422)["field"], "outcome", "{outcome}");
    }
    let failed = json!({"outcome": "failed", "note": "Finpay: never made"});
    let settled = post(&app, &resolution, &failed, None).await;
    assert_eq!(settled.status, 200, "{}", String::from_utf8_lossy(&settled.bytes));
    assert_eq!(settled.json()["status"], "failed");
    assert_eq!(payment(&app, &id).await["refundedAmount"], "0.00");
    let again = post(
        &app,
        &resolution,
        &json!({"outcome": "succeeded", "note": "oops"}),
        None,
    )
    .await;
    assert_eq!(kind(&again.problem(409)), "refund-not-pending");
    app.stop().await;
}

async fn a_duplicate_to_a_refund_sent_again_proves_nothing_and_a_person_can_settle_it_made(backend: Backend) {
    let duplicate = (
        409,
        json!({"responseCode": "4097801", "responseMessage": "Duplicate partnerReferenceNo"}),
    );
    let (app, id, answered) = refund_resumed_after_a_lost_answer(backend, duplicate).await;
    assert_eq!(kind(&answered), "finpay-unavailable", "{answered}");
    let refunds = get(&app, &refunds_path(&id)).await.json();
    assert_eq!(refunds["items"][0]["status"], "pending");
    let refund_id = refunds["items"][0]["id"].as_str().unwrap();
    let resolution = format!("{}/{refund_id}/resolution", refunds_path(&id));
    let made = json!({"outcome": "succeeded", "note": "in Finpay's dashboard"});
    assert_eq!(post(&app, &resolution, &made, None).await.json()["status"], "succeeded");
    assert_eq!(payment(&app, &id).await["refundedAmount"], "4000.00");
    // The trail says who settled it and how they know, as for a refund settled failed.
    let trail = get(&app, &format!("/api/v1/payments/{id}/events")).await.json();
    let entry = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "refund_succeeded")
        .cloned()
        .unwrap_or_else(|| panic!("no refund_succeeded in {trail}"));
    let message = entry["detail"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("settled as succeeded by ") && message.ends_with(": in Finpay's dashboard"),
        "{entry}"
    );
    app.stop().await;
}

async fn a_refund_being_sent_is_not_sent_again_at_the_same_time(backend: Backend) {
    let made = (
        200,
        json!({"responseCode": "2007800", "responseMessage": "Successful", "referenceNo": "FR-1"}),
    );
    let finpay = scripted_finpay_after(std::time::Duration::from_millis(1500), vec![made]).await;
    let app = TestApp::spawn_with(backend, move |env| finpay_at(env, &finpay)).await;
    let paid = paid_by_notification(&app, "10000.00").await;
    let id = paid["id"].as_str().unwrap().to_string();
    let twice = refund("4000", "returned").numbered("RF-twice");
    let (first, second) = tokio::join!(twice.send(&app, &id), async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        twice.send(&app, &id).await
    });
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.bytes));
    assert_eq!(kind(&second.problem(409)), "refund-in-progress");
    assert_eq!(payment(&app, &id).await["refundedAmount"], "4000.00");
    app.stop().await;
}

async fn a_partial_then_a_full_refund_moves_the_payment_to_refunded(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let paid = paid_through_api(&app, &sim, "10000").await;
    let id = paid["id"].as_str().unwrap();
    let r = refund("3000", "one item returned").send(&app, id).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let first = r.json();
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["amount"], "3000.00");
    assert!(first["referenceNo"].is_string());
    let partial = payment(&app, id).await;
    assert_eq!(
        (partial["status"].as_str(), partial["refundableAmount"].as_str()),
        (Some("paid"), Some("7000.00"))
    );
    let r = refund("7000.00", "order cancelled")
        .numbered("RF-full")
        .send(&app, id)
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["partnerRefundNo"], "RF-full");
    let refunded = payment(&app, id).await;
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(refunded["refundedAmount"], "10000.00");
    let more = refund("1", "x").send(&app, id).await.problem(409);
    assert_eq!(kind(&more), "payment-not-refundable");
    // The same partnerRefundNo again answers the refund as it is, without a second refund.
    let again = refund("7000", "order cancelled")
        .numbered("RF-full")
        .send(&app, id)
        .await;
    assert_eq!(again.status, 200);
    let list = get(&app, &refunds_path(id)).await.json();
    let statuses: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "succeeded"]);
    assert_eq!(calls_to(&sim, "qr-mpm-refund"), 2);
    let kinds = event_kinds(&app, id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "refund_succeeded").count(), 2);
    assert_eq!(kinds.last().map(String::as_str), Some("status_changed"));
    sim.shutdown().await;
    app.stop().await;
}

async fn concurrent_refunds_never_exceed_the_amount(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let paid = paid_through_api(&app, &sim, "10000").await;
    let id = paid["id"].as_str().unwrap();
    let split = refund("3000", "split refund");
    let answers = futures::future::join_all((0..6).map(|_| split.send(&app, id))).await;
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
    let after = payment(&app, id).await;
    assert_eq!(after["refundedAmount"], "9000.00");
    assert_eq!(after["refundableAmount"], "1000.00");
    let at_finpay = sim.payment(paid["partnerReferenceNo"].as_str().unwrap()).unwrap();
    assert_eq!(at_finpay.refunded_minor, 900_000);
    sim.shutdown().await;
    app.stop().await;
}

async fn concurrent_retries_with_one_idempotency_key_refund_once(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let paid = paid_through_api(&app, &sim, "10000").await;
    let id = paid["id"].as_str().unwrap();
    let goodwill = refund("2500", "goodwill").keyed("refund-once");
    let answers = futures::future::join_all((0..6).map(|_| goodwill.send(&app, id))).await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
            r.json()["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(calls_to(&sim, "qr-mpm-refund"), 1);
    let other = refund("2500", "other")
        .keyed("refund-once")
        .send(&app, id)
        .await
        .problem(422);
    assert_eq!(kind(&other), "idempotency-key-reused");
    assert_eq!(
        get(&app, &refunds_path(id)).await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sim.shutdown().await;
    app.stop().await;
}

async fn a_refused_refund_releases_the_amount(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    // Paid according to a notification, unknown to this Finpay: it refuses the refund (4xx).
    let paid = paid_by_notification(&app, "8000.00").await;
    let id = paid["id"].as_str().unwrap();
    let whole = refund("8000", "x").keyed("refused-refund");
    let p = whole.send(&app, id).await.problem(502);
    assert_eq!(kind(&p), "finpay-rejected");
    assert!(p["finpayResponseCode"].is_string());
    let refund_id = p["refundId"].as_str().unwrap();
    let list = get(&app, &refunds_path(id)).await.json();
    assert_eq!(list["items"][0]["id"], refund_id);
    assert_eq!(list["items"][0]["status"], "failed");
    let released = payment(&app, id).await;
    assert_eq!(
        (
            released["refundedAmount"].as_str(),
            released["refundableAmount"].as_str()
        ),
        (Some("0.00"), Some("8000.00"))
    );
    let again = whole.send(&app, id).await;
    assert_eq!((again.status, again.json()), (502, p));
    sim.shutdown().await;
    app.stop().await;
}

async fn after_a_finpay_outage_a_retry_completes_the_same_refund(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let paid = paid_through_api(&app, &sim, "10000").await;
    let id = paid["id"].as_str().unwrap();
    sim.update_faults(|f| f.fail_refund = true);
    let cancelled = refund("10000", "cancelled").keyed("refund-outage");
    let p = cancelled.send(&app, id).await.problem(502);
    assert_eq!(kind(&p), "finpay-unavailable");
    let refund_id = p["refundId"].as_str().unwrap().to_string();
    assert_eq!(
        get(&app, &refunds_path(id)).await.json()["items"][0]["status"],
        "pending"
    );
    sim.update_faults(|f| f.fail_refund = false);
    let r = cancelled.send(&app, id).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["id"], refund_id.as_str());
    assert_eq!(r.json()["status"], "succeeded");
    assert_eq!(payment(&app, id).await["status"], "refunded");
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

/// A refund of 10.00 from a paid payment, reserved; its first send's hold
/// (1 s) ran out and a second send took it over (held 100 s). The refund,
/// and `at(s)`: `s` seconds after the first send.
async fn refund_sent_twice(
    app: &TestApp,
    partner_refund_no: &str,
) -> (
    finpay_qris::store::NewRefund,
    impl Fn(i64) -> chrono::DateTime<chrono::Utc>,
) {
    let paid = paid_by_notification(app, "10000.00").await;
    let store = app.state.store.as_ref();
    let new = finpay_qris::store::NewRefund {
        id: uuid::Uuid::now_v7().to_string(),
        payment_id: paid["id"].as_str().unwrap().to_string(),
        partner_refund_no: partner_refund_no.into(),
        amount_minor: 1_000,
        reason: "returned".into(),
        created_at: finpay_qris::store::now(),
    };
    store.reserve_refund(&new, None).await.unwrap();
    let t0 = finpay_qris::store::now();
    let at = move |s: i64| t0 + chrono::Duration::seconds(s);
    assert_eq!(store.claim_refund_send(&new.id, at(0), at(1)).await.unwrap(), Some(1));
    assert_eq!(store.claim_refund_send(&new.id, at(2), at(100)).await.unwrap(), Some(2));
    (new, at)
}

/// As for a generate (`generate.rs`): an unknown outcome that comes back
/// after its send's hold ran out does not end the next send's hold.
async fn a_late_unknown_refund_outcome_leaves_the_hold_of_the_send_that_took_over(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (new, at) = refund_sent_twice(&app, "RF-hold-1").await;
    let store = app.state.store.as_ref();
    let unknown = finpay_qris::store::RefundOutcome::Unknown {
        reason: "timeout".into(),
    };
    store.complete_refund(&new.id, 1, &unknown).await.unwrap();
    assert_eq!(
        store.claim_refund_send(&new.id, at(3), at(100)).await.unwrap(),
        None,
        "the second still holds it"
    );
    store.complete_refund(&new.id, 2, &unknown).await.unwrap();
    assert_eq!(store.claim_refund_send(&new.id, at(3), at(100)).await.unwrap(), Some(3));
    app.stop().await;
}

/// A refusal of a send that outlived its hold says nothing of the send that
/// took over, which Finpay may be carrying out: the refund stays pending and
/// its amount reserved, and the latest send's answer decides.
async fn a_late_refusal_of_an_earlier_send_does_not_fail_the_refund(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (new, _) = refund_sent_twice(&app, "RF-late-refusal").await;
    let store = app.state.store.as_ref();
    let refused = finpay_qris::store::RefundOutcome::Rejected {
        response_code: Some("4047800".into()),
        message: "Bad Request".into(),
    };
    let after_late = store.complete_refund(&new.id, 1, &refused).await.unwrap();
    assert_eq!(after_late.status, "pending", "send 2 may still be carried out");
    let payment = store.get_payment(&new.payment_id).await.unwrap().unwrap();
    assert_eq!(payment.refunded_minor, 1_000, "the amount stays reserved");
    let after_latest = store.complete_refund(&new.id, 2, &refused).await.unwrap();
    assert_eq!(after_latest.status, "failed");
    let payment = store.get_payment(&new.payment_id).await.unwrap().unwrap();
    assert_eq!(payment.refunded_minor, 0, "the latest send's refusal releases it");
    app.stop().await;
}

crate::on_both_backends!(
    a_flagged_payment_is_refunded_only_after_a_person_resolves_its_flag,
    a_late_refusal_of_an_earlier_send_does_not_fail_the_refund,
    a_payment_finpay_reported_in_another_currency_is_not_refundable,
    a_late_unknown_refund_outcome_leaves_the_hold_of_the_send_that_took_over,
    only_paid_payments_can_be_refunded,
    an_unknown_refund_outcome_keeps_the_amount_reserved,
    a_partial_then_a_full_refund_moves_the_payment_to_refunded,
    concurrent_refunds_never_exceed_the_amount,
    concurrent_retries_with_one_idempotency_key_refund_once,
    a_refused_refund_releases_the_amount,
    after_a_finpay_outage_a_retry_completes_the_same_refund,
    a_refusal_of_a_refund_sent_again_keeps_it_pending_until_a_person_settles_it,
    a_duplicate_to_a_refund_sent_again_proves_nothing_and_a_person_can_settle_it_made,
    a_refund_being_sent_is_not_sent_again_at_the_same_time,
);
