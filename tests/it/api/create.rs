//! `POST /api/v1/payments`: validation, Finpay missing or unreachable,
//! idempotency; creation against the simulator.

use super::support::{
    calls_to, event_kinds, finpay_at, get, insert_payment, kind, payment, post, post_raw, scripted_finpay,
    scripted_finpay_after, unreachable_finpay, wait_for_status, with_simulator,
};
use crate::common::{self, Backend, TestApp};
use serde_json::json;
use std::collections::HashSet;

async fn bad_bodies_are_problems_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = "/api/v1/payments";
    let p = post_raw(&app, path, "text/plain", r#"{"amount":"1"}"#)
        .await
        .problem(415);
    assert_eq!(kind(&p), "unsupported-media-type");
    for broken in [r#"{"amount": "#, "", r#"{"amount":"1"} {}"#] {
        let p = post_raw(&app, path, "application/json", broken).await.problem(400);
        assert_eq!(kind(&p), "malformed-request", "{broken:?}");
    }
    for (body, field) in [
        (json!({"amount": 10000.5}), "amount"),
        (json!({"amount": 10000}), "amount"),
        (json!({}), "amount"),
        (json!({"amount": "10,000"}), "amount"),
        (json!({"amount": "-5"}), "amount"),
        (json!({"amount": "0.00"}), "amount"),
        (json!({"amount": "1", "currency": "USD"}), "currency"),
        (json!({"amount": "1", "amont": "1"}), "amont"),
        (json!({"amount": "1", "validitySeconds": -1}), "validitySeconds"),
        (json!({"amount": "1", "validitySeconds": 30}), "validitySeconds"),
        (json!({"amount": "1", "validUntil": "soon"}), "validUntil"),
        (
            json!({"amount": "1", "partnerReferenceNo": "has space"}),
            "partnerReferenceNo",
        ),
        (json!({"amount": "1", "tips": {"mode": "sometimes"}}), "tips.mode"),
        (json!({"amount": "1", "tips": {"mode": "fixed"}}), "tips.amount"),
        (json!([1, 2]), "body"),
    ] {
        let p = post(&app, path, &body, None).await.problem(422);
        assert_eq!(p["field"], field, "{body}: {p}");
        assert_eq!(kind(&p), "validation");
    }
    let r = post(&app, path, &json!({"amount": "1"}), Some("bad key with spaces")).await;
    // Validation of the body comes first; Finpay is not configured here, so 503 — but never 5xx for bad input.
    assert_eq!(r.status, 503);
    app.stop().await;
}

async fn creating_without_finpay_is_503_and_creates_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = post(&app, "/api/v1/payments", &json!({"amount": "10000.00"}), Some("k-1"))
        .await
        .problem(503);
    assert_eq!(kind(&p), "not-configured");
    assert!(p["detail"].as_str().unwrap().contains("Finpay is not configured"));
    assert_eq!(get(&app, "/api/v1/payments").await.json()["items"], json!([]));
    app.stop().await;
}

async fn an_unreachable_finpay_leaves_the_payment_pending_and_a_retry_resumes_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, unreachable_finpay).await;
    let body = json!({"amount": "25000", "partnerReferenceNo": "INV-unreachable-1", "note": "table 4"});
    let first = post(&app, "/api/v1/payments", &body, Some("retry-me"))
        .await
        .problem(502);
    assert_eq!(kind(&first), "finpay-unavailable");
    let id = first["paymentId"]
        .as_str()
        .expect("the problem names the pending payment")
        .to_string();
    let payment = get(&app, &format!("/api/v1/payments/{id}")).await.json();
    assert_eq!(payment["status"], "pending", "outcome unknown: not failed");
    assert_eq!(payment["partnerReferenceNo"], "INV-unreachable-1");
    assert!(payment["nextCheckAt"].is_string(), "the worker will ask Finpay");
    // Same key, same body (written differently): the same payment is resumed, nothing new is created.
    let same = json!({"note": "table 4", "partnerReferenceNo": "INV-unreachable-1", "amount": "25000.00"});
    let again = post(&app, "/api/v1/payments", &same, Some("retry-me"))
        .await
        .problem(502);
    assert_eq!(again["paymentId"], id.as_str());
    // Same key, another body: refused.
    let other = post(&app, "/api/v1/payments", &json!({"amount": "1"}), Some("retry-me"))
        .await
        .problem(422);
    assert_eq!(kind(&other), "idempotency-key-reused");
    assert_eq!(other["field"], "Idempotency-Key");
    // Without a key, the same partnerReferenceNo also resumes the same payment.
    let natural = post(&app, "/api/v1/payments", &body, None).await.problem(502);
    assert_eq!(natural["paymentId"], id.as_str());
    // The same partnerReferenceNo for another amount is a conflict.
    let taken = json!({"amount": "1", "partnerReferenceNo": "INV-unreachable-1"});
    let p = post(&app, "/api/v1/payments", &taken, None).await.problem(409);
    assert_eq!(p["field"], "partnerReferenceNo");
    let items = get(&app, "/api/v1/payments").await.json()["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(items, 1);
    // Finpay never gave a token, so no generate was sent: none is unknown.
    assert_eq!(event_kinds(&app, &id).await, ["created"]);
    let p = post(&app, "/api/v1/payments", &body, Some(&"k".repeat(256)))
        .await
        .problem(400);
    assert_eq!(p["field"], "Idempotency-Key");
    app.stop().await;
}

async fn a_payment_is_created_with_its_qr_and_becomes_paid(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let body = json!({"amount": "15000", "note": "Table 12", "validitySeconds": 600, "tips": {"mode": "percentage", "percentage": "10"}});
    let r = post(&app, "/api/v1/payments", &body, None).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.content_type(), "application/json");
    let p = r.json();
    assert_eq!(p["status"], "pending");
    assert_eq!(p["amount"], "15000.00");
    assert_eq!(p["origin"], "generated");
    assert_eq!(p["note"], "Table 12");
    let prn = p["partnerReferenceNo"].as_str().unwrap();
    assert_eq!(prn.len(), 32, "generated partnerReferenceNo: {prn}");
    let at_finpay = sim.payment(prn).expect("Finpay has the QR");
    assert_eq!(p["qrContent"], at_finpay.qr_content.as_str());
    assert_eq!(p["referenceNo"], at_finpay.reference_no.as_str());
    assert!(p["qrUrl"].is_string() && p["validUntil"].is_string());
    let id = p["id"].as_str().unwrap();
    assert_eq!(get(&app, &format!("/api/v1/payments/{id}/qr.svg")).await.status, 200);
    sim.pay(prn).unwrap();
    let paid = wait_for_status(&app, id, "paid").await;
    assert_eq!(paid["refundableAmount"], "15000.00");
    let kinds = event_kinds(&app, id).await;
    assert_eq!(&kinds[..2], ["created", "generated"]);
    assert!(kinds.iter().any(|k| k == "status_changed"), "{kinds:?}");
    sim.shutdown().await;
    app.stop().await;
}

async fn refresh_asks_finpay_through_reconciliation(backend: Backend) {
    let (app, sim) = with_simulator(backend, |c| c.faults.drop_notifications = true).await;
    let r = post(&app, "/api/v1/payments", &json!({"amount": "5000"}), None).await;
    assert_eq!(r.status, 201);
    let p = r.json();
    sim.pay(p["partnerReferenceNo"].as_str().unwrap()).unwrap();
    let id = p["id"].as_str().unwrap();
    let refreshed = get(&app, &format!("/api/v1/payments/{id}?refresh=true")).await;
    // The worker may have found it first (and may hold the lease right now): either way, paid.
    match refreshed.status {
        200 => assert_eq!(refreshed.json()["status"], "paid"),
        409 => assert_eq!(kind(&refreshed.problem(409)), "refresh-in-progress"),
        other => panic!(
            "refresh answered {other}: {}",
            String::from_utf8_lossy(&refreshed.bytes)
        ),
    }
    wait_for_status(&app, id, "paid").await;
    sim.shutdown().await;
    app.stop().await;
}

async fn a_refresh_its_caller_gave_up_on_is_still_applied(backend: Backend) {
    let paid = json!({"responseCode": "2005100", "responseMessage": "Successful", "latestTransactionStatus": "00"});
    let finpay = scripted_finpay_after(std::time::Duration::from_millis(1500), vec![(200, paid)]).await;
    let app = TestApp::spawn_with(backend, move |env| {
        finpay_at(env, &finpay);
        common::set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false");
    })
    .await;
    let p = insert_payment(&app, 10_000).await;
    let gave_up = app
        .http
        .get(app.api_url(&format!("/api/v1/payments/{}?refresh=true", p.id)))
        .bearer_auth(common::API_KEY)
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(gave_up.is_err(), "the caller hung up before Finpay answered");
    wait_for_status(&app, &p.id, "paid").await;
    app.stop().await;
}

async fn concurrent_retries_with_one_idempotency_key_create_one_payment(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let body = json!({"amount": "42000.00", "note": "order 42"});
    let tries =
        futures::future::join_all((0..8).map(|_| post(&app, "/api/v1/payments", &body, Some("order-42")))).await;
    let mut ids = HashSet::new();
    let mut bodies = HashSet::new();
    for r in &tries {
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
        ids.insert(r.json()["id"].as_str().unwrap().to_string());
        bodies.insert(r.bytes.clone());
    }
    assert_eq!(ids.len(), 1, "one payment for one key");
    assert_eq!(bodies.len(), 1, "every retry gets the same answer");
    assert!(tries.iter().any(|r| r.headers.get("idempotent-replayed").is_some()));
    assert_eq!(
        get(&app, "/api/v1/payments").await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(calls_to(&sim, "qr-mpm-generate"), 1, "Finpay was asked once");
    // Later, the same key still answers the same.
    let later = post(&app, "/api/v1/payments", &body, Some("order-42")).await;
    assert_eq!((later.status, later.bytes.clone()), (201, tries[0].bytes.clone()));
    sim.shutdown().await;
    app.stop().await;
}

async fn a_refusal_from_finpay_fails_the_payment(backend: Backend) {
    // Finpay does not know our merchantId: a definite 4xx refusal.
    let (app, sim) = with_simulator(backend, |c| c.merchant_id = Some("SOMEONE-ELSE".into())).await;
    let body = json!({"amount": "1000"});
    let p = post(&app, "/api/v1/payments", &body, Some("refused"))
        .await
        .problem(502);
    assert_eq!(kind(&p), "finpay-rejected");
    assert!(
        p["finpayResponseCode"].as_str().is_some_and(|c| c.starts_with("404")),
        "{p}"
    );
    let id = p["paymentId"].as_str().unwrap();
    assert_eq!(
        get(&app, &format!("/api/v1/payments/{id}")).await.json()["status"],
        "failed"
    );
    // The refusal is the request's final answer: a retry gets it again, and Finpay is not asked again.
    let again = post(&app, "/api/v1/payments", &body, Some("refused")).await;
    assert_eq!(again.status, 502);
    assert_eq!(again.json(), p);
    assert_eq!(
        again.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(calls_to(&sim, "qr-mpm-generate"), 1);
    sim.shutdown().await;
    app.stop().await;
}

async fn after_a_finpay_outage_a_retry_completes_the_same_payment(backend: Backend) {
    let (app, sim) = with_simulator(backend, |c| c.faults.fail_generate = true).await;
    let body = json!({"amount": "7500", "partnerReferenceNo": "INV-outage-1"});
    let p = post(&app, "/api/v1/payments", &body, Some("outage")).await.problem(502);
    assert_eq!(kind(&p), "finpay-unavailable");
    let id = p["paymentId"].as_str().unwrap().to_string();
    assert_eq!(
        get(&app, &format!("/api/v1/payments/{id}")).await.json()["status"],
        "pending"
    );
    sim.update_faults(|f| f.fail_generate = false);
    let r = post(&app, "/api/v1/payments", &body, Some("outage")).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let done = r.json();
    assert_eq!(done["id"], id.as_str(), "the same payment, now with its QR");
    assert!(done["qrContent"].is_string());
    assert_eq!(done["partnerReferenceNo"], "INV-outage-1");
    // Asking again by partnerReferenceNo alone answers the existing payment.
    let natural = post(&app, "/api/v1/payments", &body, None).await;
    assert_eq!(natural.status, 200);
    assert_eq!(natural.json()["id"], id.as_str());
    sim.shutdown().await;
    app.stop().await;
}

async fn a_key_whose_outcome_is_unknown_stays_bound_to_its_body(backend: Backend) {
    let (app, sim) = with_simulator(backend, |c| c.faults.fail_generate = true).await;
    let body = json!({"amount": "7500", "partnerReferenceNo": "INV-bound-1"});
    let first = post(&app, "/api/v1/payments", &body, None).await.problem(502);
    let id = first["paymentId"].as_str().unwrap().to_string();
    // This key's request meets the payment the first one created: it creates nothing, yet acts on it.
    let met = post(&app, "/api/v1/payments", &body, Some("bound")).await.problem(502);
    assert_eq!(met["paymentId"], id.as_str());
    let other = json!({"amount": "500"});
    let refused = post(&app, "/api/v1/payments", &other, Some("bound")).await.problem(422);
    assert_eq!(refused["field"], "Idempotency-Key", "{refused}");
    sim.update_faults(|f| f.fail_generate = false);
    let resumed = post(&app, "/api/v1/payments", &body, Some("bound")).await;
    assert_eq!(resumed.json()["id"], id.as_str(), "the same body still resumes");
    sim.shutdown().await;
    app.stop().await;
}

async fn a_reference_that_is_another_payments_id_is_refused(backend: Backend) {
    let (app, sim) = with_simulator(backend, |_| {}).await;
    let first = post(&app, "/api/v1/payments", &json!({"amount": "1000"}), None)
        .await
        .json();
    let id = first["id"].as_str().unwrap();

    let r = post(
        &app,
        "/api/v1/payments",
        &json!({"amount": "2000", "partnerReferenceNo": id}),
        None,
    )
    .await;

    let problem = r.problem(409);
    assert_eq!(kind(&problem), "partner-reference-taken");
    assert_eq!(problem["paymentId"], id, "{problem}");
    assert_eq!(
        get(&app, &format!("/api/v1/payments/{id}")).await.json()["amount"],
        "1000.00"
    );
    sim.shutdown().await;
    app.stop().await;
}

async fn a_payment_paid_after_its_qr_answer_was_lost_is_answered_paid_on_retry(backend: Backend) {
    let app = TestApp::spawn_with(backend, unreachable_finpay).await;
    let body = json!({"amount": "25000", "partnerReferenceNo": "INV-lost-qr-1"});
    let first = post(&app, "/api/v1/payments", &body, Some("lost-qr"))
        .await
        .problem(502);
    let id = first["paymentId"].as_str().unwrap().to_string();
    // Finpay did make the QR, the customer paid it, and Finpay says so.
    let token = app.token().await;
    let paid = common::notify_body("INV-lost-qr-1", "R-lost-qr-1", "00", "25000.00");
    assert_eq!(app.notify(&token, &common::unique_digits(), &paid).await.0, 200);
    // Retrying as the problem said answers the paid payment, not "create a new one".
    for key in [Some("lost-qr"), None] {
        let r = post(&app, "/api/v1/payments", &body, key).await;
        assert!(
            r.status == 200 || r.status == 201,
            "{key:?}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
        let p = r.json();
        assert_eq!(
            (p["id"].as_str(), p["status"].as_str()),
            (Some(id.as_str()), Some("paid")),
            "{key:?}"
        );
    }
    app.stop().await;
}

async fn an_unknown_outcome_names_the_reference_that_resumes_the_payment(backend: Backend) {
    let app = TestApp::spawn_with(backend, unreachable_finpay).await;
    // No reference and no key: the service chose the reference, and only it resumes.
    let first = post(&app, "/api/v1/payments", &json!({"amount": "4300"}), None)
        .await
        .problem(502);
    let id = first["paymentId"].as_str().unwrap();
    let reference = payment(&app, id).await["partnerReferenceNo"]
        .as_str()
        .unwrap()
        .to_string();
    let detail = first["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("partnerReferenceNo {reference}")), "{detail}");
    let again = json!({"amount": "4300", "partnerReferenceNo": reference});
    let resumed = post(&app, "/api/v1/payments", &again, None).await.problem(502);
    assert_eq!(resumed["paymentId"], id);
    app.stop().await;
}

async fn a_qr_finpay_calls_a_duplicate_on_retry_cannot_be_recovered_and_says_so(backend: Backend) {
    let lost = (504, json!({"responseCode": "5044700", "responseMessage": "Timeout"}));
    let duplicate = (
        409,
        json!({"responseCode": "4094701", "responseMessage": "Duplicate partnerReferenceNo"}),
    );
    let finpay = scripted_finpay(vec![lost, duplicate]).await;
    let app = TestApp::spawn_with(backend, move |env| {
        finpay_at(env, &finpay);
        common::set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false");
    })
    .await;
    let body = json!({"amount": "25000", "partnerReferenceNo": "INV-dup-qr-1"});
    let id = post(&app, "/api/v1/payments", &body, None).await.problem(502)["paymentId"]
        .as_str()
        .unwrap()
        .to_string();
    for key in [None, Some("dup-qr")] {
        let problem = post(&app, "/api/v1/payments", &body, key).await.problem(409);
        assert_eq!(kind(&problem), "qr-not-recoverable", "{key:?}: {problem}");
        assert_eq!(problem["paymentId"], id.as_str());
    }
    assert_eq!(payment(&app, &id).await["status"], "pending", "left to the worker");
    app.stop().await;
}

/// Finpay echoes the validity it was sent; an echo with a wrong offset (here
/// 14 hours early, as `-07:00` for `+07:00` gives) must not expire a live QR.
async fn the_deadline_is_the_validity_sent_whatever_finpay_echoes(backend: Backend) {
    let (app, sim) = with_simulator(backend, |c| c.faults.validity_echo_shift_secs = -14 * 3600).await;
    let before = chrono::Utc::now();
    let p = post(
        &app,
        "/api/v1/payments",
        &json!({"amount": "1000", "validitySeconds": 900}),
        None,
    )
    .await;
    assert_eq!(p.status, 201, "{}", String::from_utf8_lossy(&p.bytes));
    let shown = p.json()["validUntil"].as_str().unwrap().to_string();
    let valid_until = chrono::DateTime::parse_from_rfc3339(&shown).unwrap();
    assert!(
        valid_until > before + chrono::Duration::seconds(890),
        "validUntil {shown} is not the 15 minutes asked for"
    );
    sim.shutdown().await;
    app.stop().await;
}

crate::on_both_backends!(
    the_deadline_is_the_validity_sent_whatever_finpay_echoes,
    a_refresh_its_caller_gave_up_on_is_still_applied,
    a_key_whose_outcome_is_unknown_stays_bound_to_its_body,
    a_qr_finpay_calls_a_duplicate_on_retry_cannot_be_recovered_and_says_so,
    a_payment_paid_after_its_qr_answer_was_lost_is_answered_paid_on_retry,
    an_unknown_outcome_names_the_reference_that_resumes_the_payment,
    a_reference_that_is_another_payments_id_is_refused,
    bad_bodies_are_problems_naming_the_field,
    creating_without_finpay_is_503_and_creates_nothing,
    an_unreachable_finpay_leaves_the_payment_pending_and_a_retry_resumes_it,
    a_payment_is_created_with_its_qr_and_becomes_paid,
    refresh_asks_finpay_through_reconciliation,
    concurrent_retries_with_one_idempotency_key_create_one_payment,
    a_refusal_from_finpay_fails_the_payment,
    after_a_finpay_outage_a_retry_completes_the_same_payment,
);
