//! The SNAP error boundary: every answer of the SNAP endpoints, good or bad,
//! is a `{responseCode, responseMessage}` body whose HTTP status is the
//! code's first three digits.

use crate::snap::codes::SnapStatus;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, Clone)]
pub struct SnapError(pub SnapStatus);

impl From<SnapStatus> for SnapError {
    fn from(s: SnapStatus) -> Self {
        Self(s)
    }
}

pub fn snap_response(status: &SnapStatus, extra: Option<serde_json::Value>) -> Response {
    let mut body = serde_json::json!({
        "responseCode": status.code(),
        "responseMessage": status.message,
    });
    if let (Some(serde_json::Value::Object(extra)), Some(obj)) = (extra, body.as_object_mut()) {
        obj.extend(extra);
    }
    let http = StatusCode::from_u16(status.http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (http, Json(body)).into_response();
    let ts = crate::snap::timestamp::format_jakarta(chrono::Utc::now());
    if let Ok(v) = HeaderValue::from_str(&ts) {
        resp.headers_mut().insert("x-timestamp", v);
    }
    resp
}

/// A database step of a SNAP endpoint (a token looked up or stored), within
/// the request deadline: a failure is General Error, lateness Timeout, both
/// logged with `what` the step was.
pub async fn in_time<T>(
    deadline: std::time::Duration,
    service: u8,
    what: &'static str,
    step: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
) -> Result<T, SnapStatus> {
    match tokio::time::timeout(deadline, step).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => {
            tracing::error!(error = %e, step = what, "a database step of a SNAP request failed");
            Err(SnapStatus::general_error(service))
        }
        Err(_) => {
            tracing::error!(
                step = what,
                "a database step of a SNAP request took past the request deadline"
            );
            Err(SnapStatus::timeout(service))
        }
    }
}

/// The `reason` label of `finpay_qris_auth_failures_total` for a 401: one of
/// a fixed few, so refusals cannot mint new series (a message may carry the
/// request's clock skew).
pub fn auth_failure_reason(status: &SnapStatus) -> &'static str {
    let message = status.message.as_str();
    if status.http == 401 && status.case == 1 {
        "invalid_token"
    } else if message.contains("Signature") {
        "invalid_signature"
    } else if message.contains("Timestamp") {
        "stale_timestamp"
    } else if message.contains("Unknown Client") {
        "unknown_client"
    } else {
        "other"
    }
}

impl IntoResponse for SnapError {
    fn into_response(self) -> Response {
        snap_response(&self.0, None)
    }
}
