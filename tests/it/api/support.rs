//! Calling the API in tests.
#![allow(dead_code)]

use crate::common::{self, TestApp};
use finpay_qris::store::{GeneratedQr, Payment};
use serde_json::Value;

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    pub fn content_type(&self) -> String {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// Asserts the RFC 9457 shape and returns the problem's `type` suffix.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", String::from_utf8_lossy(&self.bytes));
        assert_eq!(self.content_type(), "application/problem+json");
        let p = self.json();
        assert_eq!(p["status"], status);
        assert!(p["type"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        p
    }
}

pub fn kind(p: &Value) -> &str {
    p["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("urn:finpay-qris:problem:"))
        .unwrap_or_default()
}

pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body").to_vec();
    Resp { status, headers, bytes }
}

pub async fn get(app: &TestApp, path: &str) -> Resp {
    send(app.http.get(app.api_url(path)).bearer_auth(common::API_KEY)).await
}

pub async fn get_as(app: &TestApp, path: &str, key: Option<&str>) -> Resp {
    let req = app.http.get(app.api_url(path));
    send(match key {
        Some(k) => req.bearer_auth(k),
        None => req,
    })
    .await
}

pub async fn post(app: &TestApp, path: &str, body: &Value, idempotency_key: Option<&str>) -> Resp {
    let mut req = app.http.post(app.api_url(path)).bearer_auth(common::API_KEY).json(body);
    if let Some(k) = idempotency_key {
        req = req.header("Idempotency-Key", k);
    }
    send(req).await
}

pub async fn post_raw(app: &TestApp, path: &str, content_type: &str, body: &str) -> Resp {
    let req = app
        .http
        .post(app.api_url(path))
        .bearer_auth(common::API_KEY)
        .header("content-type", content_type);
    send(req.body(body.to_string())).await
}

/// A payment inserted straight into the store, as creation would.
pub async fn insert_payment(app: &TestApp, amount_minor: i64) -> Payment {
    let reference = format!("T{}", uuid::Uuid::now_v7().simple());
    common::insert_pending_payment(app.state.store.as_ref(), &reference, amount_minor).await
}

pub async fn attach_qr(app: &TestApp, p: &Payment, content: &str) -> Payment {
    let g = GeneratedQr {
        reference_no: Some(format!("R{}", common::unique_digits())),
        qr_content: content.to_string(),
        qr_url: None,
        next_check_at: finpay_qris::store::now() + chrono::Duration::seconds(30),
    };
    app.state.store.attach_generated(&p.id, &g).await.expect("attach")
}

/// A paid payment, learnt the way a static-QR payment is: from a verified
/// notification on the public listener.
pub async fn paid_by_notification(app: &TestApp, amount: &str) -> Value {
    let token = app.token().await;
    let partner_ref = format!("S{}", common::unique_digits());
    let body = common::notify_body(&partner_ref, &format!("R{}", common::unique_digits()), "00", amount);
    let (status, answer) = app.notify(&token, &common::unique_digits(), &body).await;
    assert_eq!(status, 200, "{answer}");
    let r = get(app, &format!("/api/v1/payments/{partner_ref}")).await;
    assert_eq!(r.status, 200);
    r.json()
}

/// Environment entries for a Finpay that is configured but never answers
/// (nothing listens on the discard port).
pub fn unreachable_finpay(env: &mut Vec<(String, String)>) {
    finpay_at(env, "http://127.0.0.1:9");
}

/// A Finpay at `base_url` (signing keys of the tests, short timeouts).
pub fn finpay_at(env: &mut Vec<(String, String)>, base_url: &str) {
    for (k, v) in [
        ("FINPAY_QRIS__FINPAY__BASE_URL", base_url),
        ("FINPAY_QRIS__FINPAY__CLIENT_ID", "merchant-client"),
        ("FINPAY_QRIS__FINPAY__CLIENT_SECRET", "merchant-secret"),
        ("FINPAY_QRIS__FINPAY__PRIVATE_KEY", common::FINPAY_PRIVATE_KEY),
        ("FINPAY_QRIS__FINPAY__MERCHANT_ID", "FM0000000001"),
        ("FINPAY_QRIS__FINPAY__TIMEOUT_SECS", "2"),
        ("FINPAY_QRIS__FINPAY__CONNECT_TIMEOUT_SECS", "1"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
}

/// A service wired to a fresh Finpay simulator (worker on, at test speed).
pub async fn with_simulator(
    backend: common::Backend,
    sim_tweak: impl FnOnce(&mut finpay_qris::simulator::SimConfig),
) -> (TestApp, finpay_qris::simulator::SimHandle) {
    let sim = common::spawn_simulator(sim_tweak).await;
    let app = common::spawn_app_with_sim(backend, &sim, |_| {}).await;
    (app, sim)
}

/// Waits until the API shows the payment in `status`.
pub async fn wait_for_status(app: &TestApp, id: &str, status: &str) -> Value {
    let path = format!("/api/v1/payments/{id}");
    common::eventually(
        &format!("payment {id} to be {status}"),
        std::time::Duration::from_secs(15),
        || async {
            let v = get(app, &path).await.json();
            (v["status"] == status).then_some(v)
        },
    )
    .await
}

/// A payment created through the API and paid at the simulator.
pub async fn paid_through_api(app: &TestApp, sim: &finpay_qris::simulator::SimHandle, amount: &str) -> Value {
    let r = post(app, "/api/v1/payments", &serde_json::json!({"amount": amount}), None).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let created = r.json();
    sim.pay(created["partnerReferenceNo"].as_str().unwrap()).expect("pay");
    wait_for_status(app, created["id"].as_str().unwrap(), "paid").await
}

/// How many generate / refund calls reached the simulator.
pub fn calls_to(sim: &finpay_qris::simulator::SimHandle, path_end: &str) -> usize {
    sim.requests().iter().filter(|r| r.path.ends_with(path_end)).count()
}

/// The kinds of a payment's audit events, oldest first, as the API lists them.
pub async fn event_kinds(app: &TestApp, id: &str) -> Vec<String> {
    let events = get(app, &format!("/api/v1/payments/{id}/events")).await.json();
    events["items"]
        .as_array()
        .expect("events are listed")
        .iter()
        .map(|e| e["kind"].as_str().expect("every event has a kind").to_string())
        .collect()
}

/// The payment as the API shows it.
pub async fn payment(app: &TestApp, id: &str) -> Value {
    let r = get(app, &format!("/api/v1/payments/{id}")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()
}

pub fn refunds_path(payment_id: &str) -> String {
    format!("/api/v1/payments/{payment_id}/refunds")
}

/// A refund request: `refund("3000", "one item returned").numbered("RF-1").send(&app, id)`.
pub struct RefundRequest {
    body: Value,
    idempotency_key: Option<String>,
}

pub fn refund(amount: &str, reason: &str) -> RefundRequest {
    RefundRequest {
        body: serde_json::json!({"amount": amount, "reason": reason}),
        idempotency_key: None,
    }
}

impl RefundRequest {
    /// Names the refund with the merchant's own `partnerRefundNo`.
    pub fn numbered(mut self, partner_refund_no: &str) -> Self {
        self.body["partnerRefundNo"] = partner_refund_no.into();
        self
    }

    /// Sends it with an `Idempotency-Key`.
    pub fn keyed(mut self, key: &str) -> Self {
        self.idempotency_key = Some(key.to_string());
        self
    }

    pub async fn send(&self, app: &TestApp, payment_id: &str) -> Resp {
        post(
            app,
            &refunds_path(payment_id),
            &self.body,
            self.idempotency_key.as_deref(),
        )
        .await
    }
}

/// A Finpay that issues tokens and answers every other call with the next of
/// `answers` (HTTP status, body), the last one repeated; for answers the
/// simulator never gives. Returns its base URL.
pub async fn scripted_finpay(answers: Vec<(u16, Value)>) -> String {
    scripted_finpay_after(std::time::Duration::ZERO, answers).await
}

/// [`scripted_finpay`], answering each call other than the token's after `delay`.
pub async fn scripted_finpay_after(delay: std::time::Duration, answers: Vec<(u16, Value)>) -> String {
    scripted_finpay_counted(delay, answers).await.0
}

/// [`scripted_finpay_after`], with the number of calls other than the token's.
pub async fn scripted_finpay_counted(
    delay: std::time::Duration,
    answers: Vec<(u16, Value)>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{StatusCode, Uri};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let answers = Arc::new(Mutex::new(std::collections::VecDeque::from(answers)));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let (answers, counted) = (answers.clone(), counted.clone());
        async move {
            if uri.path().contains("access-token") {
                let token = serde_json::json!({"responseCode": "2007300", "responseMessage": "Successful",
                    "accessToken": "scripted-token", "tokenType": "Bearer", "expiresIn": "900"});
                return (StatusCode::OK, axum::Json(token));
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let (status, body) = {
                let mut queue = answers.lock().unwrap();
                if queue.len() > 1 {
                    queue.pop_front()
                } else {
                    queue.front().cloned()
                }
                .expect("an answer scripted")
            };
            tokio::time::sleep(delay).await;
            (StatusCode::from_u16(status).unwrap(), axum::Json(body))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}
