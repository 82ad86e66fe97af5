//! `POST {token_path}`: SNAP Access Token B2B (service 73), Finpay → us.
//!
//! Finpay signs `clientId|X-TIMESTAMP` with its RSA key; we verify with its
//! public key (either active key, for rotation), check the clock, and issue an
//! opaque 256-bit bearer token of which only the hash is stored.

use super::body::Received;
use super::error::{auth_failure_reason, snap_response, SnapError};
use super::headers::{json_content_type, required};
use super::journal::Refused;
use super::suspect::{Route, Suspect};
use super::tokens::{new_token, token_hash};
use crate::snap::codes::{service, SnapStatus};
use crate::snap::{signature, timestamp};
use crate::state::AppState;
use crate::telemetry::clip;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::net::SocketAddr;

const SVC: u8 = service::TOKEN;

/// A panic while handling a token request is answered as any fault of ours on this
/// route: General Error with this route's service code.
pub(crate) fn on_panic() -> Response {
    snap_response(&SnapStatus::general_error(SVC), None)
}

pub async fn issue(
    State(st): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut received = Received::new(body);
    match issue_inner(&st, &headers, &mut received).await {
        Ok(resp) => resp,
        Err(e) => {
            let code = e.0.code();
            if e.0.http == 401 {
                st.metrics.inc(
                    "finpay_qris_auth_failures_total",
                    &[("endpoint", "token"), ("reason", auth_failure_reason(&e.0))],
                );
            }
            tracing::info!(response_code = %code, response_message = %clip(&e.0.message), "token request refused");
            if e.0.http / 100 == 4 {
                // As received, with its query string (the journal keeps its values hashed).
                let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
                let mode = st.settings.inbound.signature;
                let read = received.for_journal(&st.settings.server).await;
                st.journal.record(Refused {
                    route: Route::Token,
                    path,
                    headers: &headers,
                    peer: peer.map(|Extension(ConnectInfo(p))| p),
                    status: &e.0,
                    body: read,
                    suspect: Suspect::from_request(Route::Token, mode, path, &headers, None),
                });
            }
            e.into_response()
        }
    }
}

/// `body` keeps the bytes once read, for the journal of refusals.
async fn issue_inner(st: &AppState, headers: &HeaderMap, body: &mut Received) -> Result<Response, SnapError> {
    let Some(creds) = st.inbound.as_ref() else {
        return Err(SnapStatus::general_error(SVC).into());
    };
    json_content_type(headers, SVC)?;
    let ts_header = required(headers, "X-TIMESTAMP", SVC)?;
    let client_key = required(headers, "X-CLIENT-KEY", SVC)?;
    let sig = required(headers, "X-SIGNATURE", SVC)?;
    let ts = timestamp::parse(ts_header).map_err(|_| SnapStatus::invalid_field_format(SVC, "X-TIMESTAMP"))?;

    let bytes = body.read(&st.settings.server, SVC).await?;

    if client_key != creds.client_id {
        return Err(SnapStatus::unauthorized(SVC, "Unknown Client").into());
    }
    let to_sign = signature::token_string_to_sign(client_key, ts_header);
    let keys: Vec<&rsa::RsaPublicKey> = creds.public_keys.iter().collect();
    if !signature::rsa_verify_any(&keys, &to_sign, sig) {
        tracing::debug!(string_to_sign = %crate::telemetry::clip(&to_sign), "token signature did not verify");
        return Err(SnapStatus::unauthorized(SVC, "Invalid Signature").into());
    }
    let now = crate::store::now();
    if let Err(skew) = timestamp::check_skew(ts, now, st.settings.inbound.timestamp_tolerance_secs) {
        return Err(SnapStatus::unauthorized(SVC, &format!("Invalid Timestamp: {skew}")).into());
    }

    let parsed = crate::snap::json::parse(&bytes).map_err(|why| SnapStatus::bad_request(SVC, Some(&why)))?;
    let Some(obj) = parsed.as_object() else {
        return Err(SnapStatus::bad_request(SVC, Some(crate::snap::notify::NOT_AN_OBJECT)).into());
    };
    match obj.get("grantType") {
        None | Some(serde_json::Value::Null) => {
            return Err(SnapStatus::invalid_mandatory_field(SVC, "grantType").into())
        }
        Some(serde_json::Value::String(g)) if g == "client_credentials" => {}
        Some(_) => return Err(SnapStatus::invalid_field_format(SVC, "grantType").into()),
    }

    let ttl = st.settings.inbound.token_ttl_secs;
    let token = new_token();
    let hash = token_hash(&token);
    let expires_at = now + chrono::Duration::seconds(ttl as i64);
    let deadline = std::time::Duration::from_secs(st.settings.server.request_timeout_secs);
    let stored = st.store.insert_token(&hash, &creds.client_id, now, expires_at);
    super::error::in_time(deadline, SVC, "storing an issued token", stored).await?;
    st.tokens.remember(hash, &creds.client_id, expires_at);
    st.recent_tokens.remember(&token);
    st.metrics.inc("finpay_qris_tokens_issued_total", &[]);
    let mut resp = snap_response(
        &SnapStatus::successful(SVC),
        Some(serde_json::json!({
            "accessToken": token,
            "tokenType": "Bearer",
            "expiresIn": ttl.to_string(),
        })),
    );
    if let Ok(v) = HeaderValue::from_str(&creds.client_id) {
        resp.headers_mut().insert("x-client-key", v);
    }
    Ok(resp)
}
