//! `Idempotency-Key` for the API's effects (creating a payment, refunding).
//!
//! The key is claimed in the database before anything else happens
//! (`INSERT … ON CONFLICT DO NOTHING`: one winner among concurrent retries),
//! scoped by API key and route. The winner names what it creates on the key
//! in the same transaction that creates it, and stores its final answer at
//! the end. A retry then gets:
//! - the stored answer, verbatim, when the first request finished;
//! - a wait, then the stored answer, or 409 when the first is still running;
//! - 422 when the body differs from the first one's;
//! - a resumption of the same payment or refund when the first ended without
//!   a final answer (Finpay timed out, the database failed, the process died).
//!
//! Final answers are successes and definite refusals; "outcome unknown"
//! answers (502/503/504) are not stored, so that retrying finishes the job.

use super::auth::Caller;
use super::error::{ApiError, PROBLEM_JSON};
use crate::state::AppState;
use crate::store::{IdempotencyClaim, IdempotencyRef};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

pub const HEADER: &str = "idempotency-key";
/// How long a key and its answer are kept: a retry within it gets the first
/// answer; after it, the same key is a new request.
pub const KEPT_HOURS: i64 = 24;
/// How long a retry waits for a concurrent request with the same key.
const WAIT: Duration = Duration::from_secs(10);

/// An answer that can be stored and replayed: a status and a JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    /// Whether a retry with the same key should get this answer again.
    pub settled: bool,
}

impl Reply {
    pub fn json(status: StatusCode, value: &impl Serialize) -> Self {
        let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
        Self {
            status,
            body,
            settled: true,
        }
    }

    /// An error; `settled` when it is the request's final outcome.
    pub fn error(e: ApiError, settled: bool) -> Self {
        let body = serde_json::to_string(e.problem()).unwrap_or_else(|_| "{}".into());
        Self {
            status: e.status(),
            body,
            settled,
        }
    }

    fn into_response_with(self, replayed: bool) -> Response {
        let ctype = if self.status.is_success() {
            "application/json"
        } else {
            PROBLEM_JSON
        };
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(ctype))],
            self.body,
        )
            .into_response();
        if replayed {
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        self.into_response_with(false)
    }
}

/// The request's idempotency key, if it sent one: 1–255 visible ASCII characters.
pub fn key_from(headers: &HeaderMap, caller: &Caller, route: &str) -> Result<Option<IdempotencyRef>, ApiError> {
    let Some(raw) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)")
                .field("Idempotency-Key")
        })?;
    Ok(Some(IdempotencyRef {
        scope: format!("{} {route}", caller.key_id),
        key: key.to_string(),
    }))
}

/// SHA-256 of the request's canonical form (not of its bytes: key order and
/// spacing do not make two requests different).
pub fn fingerprint(canonical: &serde_json::Value) -> Vec<u8> {
    Sha256::digest(canonical.to_string().as_bytes()).to_vec()
}

pub enum Begin {
    /// Go ahead; resume `resource_id` if an earlier attempt created it.
    Proceed { resource_id: Option<String> },
    /// Answer this (the first request's stored answer, or a refusal).
    Answer(Response),
}

/// Claims the key, waiting up to [`WAIT`] for a concurrent holder.
pub async fn begin(st: &AppState, key: &IdempotencyRef, fingerprint: &[u8]) -> Result<Begin, ApiError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(25);
    loop {
        let now = crate::store::now();
        let claim = st
            .store
            .idempotency_claim(key, fingerprint, now + lock_for(&st.settings.finpay), now)
            .await?;
        match claim {
            IdempotencyClaim::Claimed { resource_id } => return Ok(Begin::Proceed { resource_id }),
            IdempotencyClaim::Completed { status_code, body } => {
                let status = StatusCode::from_u16(status_code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return Ok(Begin::Answer(
                    Reply {
                        status,
                        body,
                        settled: true,
                    }
                    .into_response_with(true),
                ));
            }
            IdempotencyClaim::Mismatch => {
                return Ok(Begin::Answer(
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused", "Idempotency-Key reused")
                        .field("Idempotency-Key")
                        .detail("this Idempotency-Key was already used with a different request body; use a new key for a new request")
                        .into_response(),
                ));
            }
            IdempotencyClaim::InProgress if started.elapsed() >= WAIT => {
                return Ok(Begin::Answer(
                    ApiError::conflict(
                        "request-in-progress",
                        "Request in progress",
                        "a request with this Idempotency-Key is still being processed; retry shortly",
                    )
                    .field("Idempotency-Key")
                    .into_response(),
                ));
            }
            IdempotencyClaim::InProgress => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        }
    }
}

/// Stores a settled answer, or gives the key up so that a retry resumes.
pub async fn finish(st: &AppState, key: &IdempotencyRef, reply: &Reply) {
    let result = if reply.settled {
        st.store
            .idempotency_complete(key, reply.status.as_u16(), &reply.body)
            .await
    } else {
        st.store.idempotency_release(key).await
    };
    if let Err(e) = result {
        // The key stays locked until it expires; a retry after that resumes.
        tracing::warn!(error = %e, scope = %key.scope, "could not record the idempotency key's outcome");
    }
}

/// Runs `work` to its end on a task of its own and records its answer under
/// the key, even if the caller hangs up meanwhile: the effects it causes must
/// be recorded. If the task itself fails, the key stays locked until it
/// expires, and a retry then resumes.
pub async fn run_detached(
    st: &AppState,
    key: Option<IdempotencyRef>,
    what: &'static str,
    work: impl std::future::Future<Output = Reply> + Send + 'static,
) -> Reply {
    let st = st.clone();
    let task = tokio::spawn(async move {
        let reply = work.await;
        if let Some(k) = &key {
            finish(&st, k, &reply).await;
        }
        reply
    });
    task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "{what} task failed");
        Reply::error(ApiError::internal(), false)
    })
}

/// How long a claim holds: what a request under the key can wait on Finpay
/// (a token, then the longest call, `FinpayClient::longest_call`, the bound
/// of a generate's or a refund's hold too), plus time for the database work
/// around it. A shorter claim could pass to a retry while the first request
/// still waits on Finpay.
fn lock_for(finpay: &crate::config::FinpaySettings) -> chrono::Duration {
    use crate::finpay::FinpayClient;
    FinpayClient::longest_token_wait(finpay) + FinpayClient::longest_call(finpay) + chrono::Duration::seconds(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_longer_than_the_finpay_waits_it_covers() {
        for timeout in ["1", "15", "60"] {
            let env = [("FINPAY_QRIS__FINPAY__TIMEOUT_SECS".to_string(), timeout.to_string())];
            let finpay = crate::config::Settings::load_from(None, env).unwrap().finpay;
            let finpay_waits = crate::finpay::FinpayClient::longest_token_wait(&finpay)
                + crate::finpay::FinpayClient::longest_call(&finpay);
            assert!(lock_for(&finpay) > finpay_waits);
        }
    }
}
