//! The simulated Finpay's SNAP endpoints: access token, generate, query and
//! refund, at Finpay's paths (plus an optional prefix, as in
//! `https://devo.finnet.co.id/pg/...`).

use super::auth::{verify_token_request, verify_transaction};
use super::ops;
use super::state::{RecordedRequest, Sim};
use crate::snap::codes::{service, SnapStatus};
use crate::snap::timestamp;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use rand::RngCore;
use serde_json::{json, Value};
use std::sync::Arc;

/// Success codes as Finpay sends them. The query code is Finpay's published
/// sample (service 53, where ASPI says 51); the refund sample is cut off
/// after `2005…`. A client that checks the service digits fails on these.
const GENERATE_OK: &str = "2004700";
const QUERY_OK: &str = "2005300";
const REFUND_OK: &str = "2005800";
const TOKEN_OK: &str = "2007300";

pub fn routes(sim: Arc<Sim>) -> Router {
    let c = &sim.cfg;
    let at = |path: &str| format!("{}{}", c.path_prefix, path);
    Router::new()
        .route(&at(&c.token_path), post(token))
        .route(&at(&c.generate_path), post(generate))
        .route(&at(&c.query_path), post(query))
        .route(&at(&c.refund_path), post(refund))
        .with_state(sim.clone())
}

/// A SNAP answer: the HTTP status is the code's first three digits.
pub fn answer(code: &str, message: &str, extra: Value) -> Response {
    let http = code
        .get(0..3)
        .and_then(|h| h.parse().ok())
        .and_then(|h| StatusCode::from_u16(h).ok());
    let mut body = json!({"responseCode": code, "responseMessage": message});
    if let (Value::Object(extra), Some(obj)) = (extra, body.as_object_mut()) {
        obj.extend(extra);
    }
    let mut resp = (http.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response();
    if let Ok(ts) = HeaderValue::from_str(&timestamp::format_jakarta(chrono::Utc::now())) {
        resp.headers_mut().insert("x-timestamp", ts);
    }
    resp
}

fn refuse(s: &SnapStatus) -> Response {
    answer(&s.code(), &s.message, Value::Null)
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    const SVC: u8 = service::TOKEN;
    sim.book().stats.token_requests += 1;
    if let Err(s) = verify_token_request(&sim, &headers, SVC) {
        return refuse(&s);
    }
    let grant = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("grantType").and_then(Value::as_str).map(str::to_string));
    match grant.as_deref() {
        None => return refuse(&SnapStatus::invalid_mandatory_field(SVC, "grantType")),
        Some("client_credentials") => {}
        Some(_) => return refuse(&SnapStatus::invalid_field_format(SVC, "grantType")),
    }
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let now = chrono::Utc::now();
    let ttl = sim.cfg.token_ttl_secs;
    {
        let mut book = sim.book();
        // "Expire tokens early": the token dies before the expiresIn we announce.
        let lives = book.faults.token_lifetime_secs.map_or(ttl, |l| l.min(ttl));
        if book.tokens.len() > 10_000 {
            book.tokens.retain(|_, until| *until > now);
        }
        book.tokens
            .insert(token.clone(), now + chrono::Duration::seconds(lives as i64));
        book.stats.tokens_issued += 1;
    }
    // expiresIn as an integer, as in Finpay's OpenAPI (the standard says a string).
    let mut resp = answer(
        TOKEN_OK,
        "Successful",
        json!({"accessToken": token, "tokenType": "Bearer", "expiresIn": ttl}),
    );
    if let Ok(v) = HeaderValue::from_str(&sim.cfg.client_id) {
        resp.headers_mut().insert("x-client-key", v);
    }
    resp
}

/// Authenticates a transactional call and records it; `Err` is the refusal.
fn admit(sim: &Sim, op: &str, svc: u8, uri: &OriginalUri, headers: &HeaderMap, body: &[u8]) -> Result<(), SnapStatus> {
    let path = uri
        .0
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_else(|| uri.0.path());
    let external_id = verify_transaction(sim, headers, path, body, svc)?;
    let mut book = sim.book();
    if book.requests.len() >= 1000 {
        book.requests.remove(0);
    }
    book.requests.push(RecordedRequest {
        op: op.into(),
        path: path.into(),
        external_id,
        body: String::from_utf8_lossy(body).into_owned(),
    });
    Ok(())
}

/// The "answer 5xx" fault switch.
fn injected_failure(sim: &Sim, svc: u8, on: bool) -> Option<Response> {
    if !on {
        return None;
    }
    sim.book().stats.injected_failures += 1;
    Some(refuse(&SnapStatus::general_error(svc)))
}

async fn generate(State(sim): State<Arc<Sim>>, uri: OriginalUri, headers: HeaderMap, body: Bytes) -> Response {
    sim.book().stats.generate_requests += 1;
    if let Err(s) = admit(&sim, "generate", ops::GENERATE, &uri, &headers, &body) {
        return refuse(&s);
    }
    if let Some(resp) = injected_failure(&sim, ops::GENERATE, sim.faults().fail_generate) {
        return resp;
    }
    match ops::generate(&sim, &body) {
        Ok(extra) => answer(GENERATE_OK, "Successful", extra),
        Err(s) => refuse(&s),
    }
}

async fn query(State(sim): State<Arc<Sim>>, uri: OriginalUri, headers: HeaderMap, body: Bytes) -> Response {
    sim.book().stats.query_requests += 1;
    if let Err(s) = admit(&sim, "query", ops::QUERY, &uri, &headers, &body) {
        return refuse(&s);
    }
    let faults = sim.faults();
    if let Some(resp) = injected_failure(&sim, ops::QUERY, faults.fail_query) {
        return resp;
    }
    if faults.refuse_query {
        return refuse(&SnapStatus::invalid_mandatory_field(ops::QUERY, "originalReferenceNo"));
    }
    let target = match ops::query_target(&sim, &body) {
        Ok(t) => t,
        Err(s) => return refuse(&s),
    };
    let _running = sim.begin_query(&target);
    if faults.query_delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.query_delay_ms)).await;
    }
    match ops::query_answer(&sim, &target) {
        Ok(extra) => answer(QUERY_OK, "Request has been processed successfully", extra),
        Err(s) => refuse(&s),
    }
}

async fn refund(State(sim): State<Arc<Sim>>, uri: OriginalUri, headers: HeaderMap, body: Bytes) -> Response {
    sim.book().stats.refund_requests += 1;
    if let Err(s) = admit(&sim, "refund", ops::REFUND, &uri, &headers, &body) {
        return refuse(&s);
    }
    if let Some(resp) = injected_failure(&sim, ops::REFUND, sim.faults().fail_refund) {
        return resp;
    }
    match ops::refund(&sim, &body) {
        Ok(extra) => answer(REFUND_OK, "Successful", extra),
        Err(s) => refuse(&s),
    }
}
