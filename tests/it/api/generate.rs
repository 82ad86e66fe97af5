//! A payment's QR is asked of Finpay by one request at a time, and its sends
//! are counted: what Finpay answers a send after the first cannot fail the
//! payment, and what leaves the outcome unknown is never called a refusal.

use super::support::{finpay_at, kind, payment, post, scripted_finpay, scripted_finpay_counted};
use crate::common::{self, Backend, TestApp};
use serde_json::json;

fn no_worker(env: &mut Vec<(String, String)>, finpay: &str) {
    finpay_at(env, finpay);
    common::set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false");
}

async fn requests_racing_on_one_reference_ask_finpay_once(backend: Backend) {
    let generated = json!({"responseCode": "2004700", "responseMessage": "Successful",
        "partnerReferenceNo": "INV-race-1", "referenceNo": "FP-race-1", "qrContent": "00020101021226"});
    // Finpay takes a second, so the requests overlap.
    let (finpay, generates) = scripted_finpay_counted(std::time::Duration::from_secs(1), vec![(200, generated)]).await;
    let app = TestApp::spawn_with(backend, move |env| no_worker(env, &finpay)).await;
    let body = json!({"amount": "15000", "partnerReferenceNo": "INV-race-1"});

    let tries = futures::future::join_all((0..5).map(|k| {
        let key = format!("till-{k}");
        let (app, body) = (&app, &body);
        async move { post(app, "/api/v1/payments", body, Some(&key)).await }
    }))
    .await;

    assert_eq!(
        generates.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "Finpay was asked once"
    );
    for r in &tries {
        if r.status == 409 {
            assert_eq!(kind(&r.problem(409)), "qr-in-progress");
        } else {
            assert!(
                r.status == 201 || r.status == 200,
                "{}",
                String::from_utf8_lossy(&r.bytes)
            );
            assert_eq!(r.json()["qrContent"], "00020101021226");
        }
    }
    let after = post(&app, "/api/v1/payments", &body, None).await;
    assert_eq!(after.status, 200, "{}", String::from_utf8_lossy(&after.bytes));
    assert_eq!(after.json()["qrContent"], "00020101021226");
    app.stop().await;
}

async fn a_refusal_of_a_generate_sent_again_leaves_the_payment_pending(backend: Backend) {
    let lost = (504, json!({"responseCode": "5044700", "responseMessage": "Timeout"}));
    let refused = (
        400,
        json!({"responseCode": "4004701", "responseMessage": "Invalid Field Format"}),
    );
    let finpay = scripted_finpay(vec![lost, refused]).await;
    let app = TestApp::spawn_with(backend, move |env| no_worker(env, &finpay)).await;
    let body = json!({"amount": "25000", "partnerReferenceNo": "INV-refused-again-1"});
    let first = post(&app, "/api/v1/payments", &body, Some("refused-again")).await;
    let id = first.problem(502)["paymentId"].as_str().unwrap().to_string();

    // The first send may have made the QR: the refusal proves nothing.
    let problem = post(&app, "/api/v1/payments", &body, Some("refused-again"))
        .await
        .problem(409);
    assert_eq!(kind(&problem), "qr-not-recoverable", "{problem}");
    let p = payment(&app, &id).await;
    assert_eq!(p["status"], "pending", "left to the worker: {p}");
    assert!(p["nextCheckAt"].is_string(), "still checked: {p}");
    app.stop().await;
}

async fn a_duplicate_answer_to_the_first_generate_is_not_called_a_refusal(backend: Backend) {
    let duplicate = (
        409,
        json!({"responseCode": "4094701", "responseMessage": "Duplicate partnerReferenceNo"}),
    );
    let finpay = scripted_finpay(vec![duplicate]).await;
    let app = TestApp::spawn_with(backend, move |env| no_worker(env, &finpay)).await;
    let body = json!({"amount": "25000", "partnerReferenceNo": "INV-dup-first-1"});
    let problem = post(&app, "/api/v1/payments", &body, None).await.problem(502);
    assert_eq!(
        kind(&problem),
        "finpay-unavailable",
        "the outcome is unknown: {problem}"
    );
    let id = problem["paymentId"].as_str().unwrap();
    assert_eq!(payment(&app, id).await["status"], "pending");
    app.stop().await;
}

async fn the_first_check_is_never_after_the_deadline(backend: Backend) {
    let sim = common::spawn_simulator(|_| {}).await;
    // A first check an hour after creation, for a QR valid a minute.
    let app = common::spawn_app_with_sim(backend, &sim, |env| {
        common::set_env(env, "FINPAY_QRIS__WORKER__FIRST_CHECK_SECS", "3600");
        common::set_env(env, "FINPAY_QRIS__WORKER__MAX_INTERVAL_SECS", "7200");
        common::set_env(env, "FINPAY_QRIS__WORKER__GRACE_SECS", "60");
        common::set_env(env, "FINPAY_QRIS__WORKER__ENABLED", "false");
    })
    .await;
    let body = json!({"amount": "1000", "validitySeconds": 60});
    let created = post(&app, "/api/v1/payments", &body, None).await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.bytes));
    let p = created.json();
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(p[k].as_str().unwrap()).unwrap();
    let deadline = at("validUntil") + chrono::Duration::seconds(60);
    assert!(at("nextCheckAt") <= deadline, "checked by the deadline: {p}");
    sim.shutdown().await;
    app.stop().await;
}

/// A send whose hold ran out (Finpay took longer than the hold) and whose
/// outcome then came back unknown does not end the hold of the send that took
/// over: a third would go to Finpay beside the second.
async fn a_late_unknown_outcome_leaves_the_hold_of_the_send_that_took_over(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.state.store.as_ref();
    let p = common::insert_pending_payment(store, "INV-hold-1", 15_000).await;
    let t0 = finpay_qris::store::now();
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    assert_eq!(store.claim_generate_send(&p.id, at(0), at(1)).await.unwrap(), Some(1));
    assert_eq!(store.claim_generate_send(&p.id, at(2), at(100)).await.unwrap(), Some(2));
    let detail = json!({"reason": "timeout"});
    store.generation_unknown(&p.id, 1, at(60), &detail).await.unwrap();
    assert_eq!(
        store.claim_generate_send(&p.id, at(3), at(100)).await.unwrap(),
        None,
        "the second still holds it"
    );
    store.generation_unknown(&p.id, 2, at(60), &detail).await.unwrap();
    assert_eq!(store.claim_generate_send(&p.id, at(3), at(100)).await.unwrap(), Some(3));
    app.stop().await;
}

/// The first send outlived its hold and a second took over; Finpay's late
/// refusal of the first fails nothing, since the second's answer may be the QR.
async fn a_late_refusal_of_the_first_send_does_not_fail_the_payment_another_send_took_over(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.state.store.as_ref();
    let p = common::insert_pending_payment(store, "INV-hold-2", 15_000).await;
    let t0 = finpay_qris::store::now();
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    assert_eq!(store.claim_generate_send(&p.id, at(0), at(1)).await.unwrap(), Some(1));
    assert_eq!(store.claim_generate_send(&p.id, at(2), at(100)).await.unwrap(), Some(2));
    let refused = json!({"reason": "4044701"});
    assert!(store.fail_generation(&p.id, 1, &refused).await.unwrap().is_none());
    assert_eq!(payment(&app, &p.id).await["status"], "pending");
    assert_eq!(
        store.claim_generate_send(&p.id, at(3), at(100)).await.unwrap(),
        None,
        "the second still holds it"
    );
    let failed = store.fail_generation(&p.id, 2, &refused).await.unwrap();
    assert_eq!(
        failed.map(|f| f.status.as_str()),
        Some("failed"),
        "a refusal of the send under way decides"
    );
    app.stop().await;
}

crate::on_both_backends!(
    a_late_refusal_of_the_first_send_does_not_fail_the_payment_another_send_took_over,
    a_late_unknown_outcome_leaves_the_hold_of_the_send_that_took_over,
    requests_racing_on_one_reference_ask_finpay_once,
    a_refusal_of_a_generate_sent_again_leaves_the_payment_pending,
    a_duplicate_answer_to_the_first_generate_is_not_called_a_refusal,
    the_first_check_is_never_after_the_deadline,
);
