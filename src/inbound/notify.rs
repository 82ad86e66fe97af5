//! `POST {notify_path}`: QR MPM payment notify (service 52), Finpay → us.
//!
//! Order of checks: headers present and well-formed, bearer token (symmetric
//! mode), signature over the bytes as received, clock, then the body. Only a
//! verified notification reaches the store, and `2005200` is answered only
//! after the transaction holding it has committed.

use super::body::Received;
use super::error::{auth_failure_reason, in_time, snap_response, SnapError};
use super::headers::{bearer_token, headers_for_audit, json_content_type, required};
use super::journal::Refused;
use super::suspect::{Route, Suspect};
use super::tokens::TokenCheck;
use crate::config::{ExternalIdFormat, SignatureMode};
use crate::domain::Observation;
use crate::metrics::business::{Change, Via};
use crate::snap::codes::{service, SnapStatus};
use crate::snap::notify::{check_channel_id, check_external_id, check_partner_id, parse_notify};
use crate::snap::{body as snap_body, signature, timestamp};
use crate::state::AppState;
use crate::store::{InboundNotification, IngestOutcome};
use crate::telemetry::{clip, OnRequest};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::Extension;
use std::net::SocketAddr;
use std::time::Duration;
use tracing::Instrument;

const SVC: u8 = service::NOTIFY;

/// A panic while handling a notification is answered as any fault of ours on this
/// route: General Error with this route's service code.
pub(crate) fn on_panic() -> Response {
    snap_response(&SnapStatus::general_error(SVC), None)
}

pub async fn receive(
    State(st): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The request's span is debug-level on this hot route (app.rs), so the
    // events below name the X-EXTERNAL-ID themselves.
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    let mut received = Received::new(body);
    let result = receive_inner(&st, &uri, &headers, &mut received, request_id).await;
    let (status, extra) = match result {
        Ok(Answer::Fresh) => (SnapStatus::successful(SVC), None),
        Ok(Answer::Replay) => {
            // A stored notification was answered Successful; its replay is too.
            st.metrics.inc("finpay_qris_duplicate_notifications_total", &[]);
            (SnapStatus::successful(SVC), None)
        }
        Err(e) => {
            if e.0.http == 401 {
                st.metrics.inc(
                    "finpay_qris_auth_failures_total",
                    &[("endpoint", "notify"), ("reason", auth_failure_reason(&e.0))],
                );
            }
            let external_id = headers.get("x-external-id").and_then(|v| v.to_str().ok());
            tracing::info!(
                response_code = %e.0.code(),
                response_message = %clip(&e.0.message),
                external_id = %clip(external_id.unwrap_or("-")),
                request_id = %clip(request_id),
                "notification refused"
            );
            if e.0.http / 100 == 4 {
                let path = signed_path(&uri);
                let read = received.for_journal(&st.settings.server).await;
                let mode = st.settings.inbound.signature;
                let suspect = Suspect::from_request(Route::Notify, mode, path, &headers, read);
                st.journal.record(Refused {
                    route: Route::Notify,
                    path,
                    headers: &headers,
                    peer: peer.map(|Extension(ConnectInfo(p))| p),
                    status: &e.0,
                    body: read,
                    suspect,
                });
            }
            (e.0, None)
        }
    };
    st.metrics
        .inc("finpay_qris_notifications_total", &[("code", &status.code())]);
    snap_response(&status, extra)
}

enum Answer {
    Fresh,
    Replay,
}

/// The path as signed: as received, with its query string.
fn signed_path(uri: &Uri) -> &str {
    uri.path_and_query().map(|p| p.as_str()).unwrap_or_else(|| uri.path())
}

/// `body` keeps the bytes once read, for the journal of refusals.
async fn receive_inner(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &mut Received,
    request_id: &str,
) -> Result<Answer, SnapError> {
    let Some(creds) = st.inbound.as_ref() else {
        return Err(SnapStatus::general_error(SVC).into());
    };
    let v = verify(st, creds, uri, headers, body)
        .instrument(tracing::debug_span!("verify"))
        .await?;
    let (external_id, now) = (v.external_id, v.now);

    let item = InboundNotification {
        partner_id: v.partner_id.to_string(),
        external_id: external_id.to_string(),
        jakarta_day: timestamp::jakarta_day(v.signed_at),
        body_sha256: v.digest.to_vec(),
        raw_body: v.raw_body,
        headers_json: headers_for_audit(headers),
        verification: v.verification,
        received_at: now,
        observation: Observation::from_notification(&v.parsed),
    };
    let paid_time = v.parsed.paid_time;
    let deadline = Duration::from_secs(st.settings.server.request_timeout_secs);
    let stored = st.batcher.submit(item).instrument(tracing::debug_span!("batch_wait"));
    match tokio::time::timeout(deadline, stored).await {
        Err(_) => Err(SnapStatus::timeout(SVC).into()),
        Ok(Err(e)) => {
            tracing::error!(error = %e, external_id, request_id = %clip(request_id), "notification not stored; answering General Error so Finpay retries");
            Err(SnapStatus::general_error(SVC).into())
        }
        Ok(Ok(IngestOutcome::Applied(applied))) => {
            tracing::debug!(payment_id = %applied.payment_id, to = %applied.to, decision = ?applied.decision, "notification stored");
            st.metrics.payment_changed(&Change::of(&applied, Via::Notification));
            st.metrics.notification_delay(paid_time.as_deref(), now);
            if applied.from != Some(applied.to) {
                let on = OnRequest {
                    request_id,
                    external_id,
                    response_code: &SnapStatus::successful(SVC).code(),
                };
                crate::telemetry::status_changed_on(&on, "notification", &(&applied).into(), applied.from, applied.to);
            }
            Ok(Answer::Fresh)
        }
        Ok(Ok(IngestOutcome::Duplicate)) => Ok(Answer::Replay),
        Ok(Ok(IngestOutcome::Conflict)) => Err(SnapStatus::conflict(SVC).into()),
        Ok(Ok(IngestOutcome::Refused(why))) => {
            tracing::info!(field = why.field, reason = %why.reason, external_id, request_id = %clip(request_id), "notification refused: it names no payment and cannot create one");
            Err(SnapStatus::invalid_field_format(SVC, why.field).into())
        }
    }
}

/// A notification whose headers, token, signature and timestamp checked out,
/// with its body parsed.
struct Verified<'h> {
    partner_id: &'h str,
    external_id: &'h str,
    /// The SHA-256 of the body as signed (minified): what a replay must repeat.
    digest: [u8; 32],
    verification: String,
    parsed: crate::snap::notify::NotifyBody,
    raw_body: String,
    now: chrono::DateTime<chrono::Utc>,
    /// `X-TIMESTAMP`, signed: the sender's day names its `X-EXTERNAL-ID`.
    signed_at: chrono::DateTime<chrono::Utc>,
}

async fn verify<'h>(
    st: &AppState,
    creds: &crate::config::InboundCredentials,
    uri: &Uri,
    headers: &'h HeaderMap,
    body: &mut Received,
) -> Result<Verified<'h>, SnapError> {
    let cfg = &st.settings.inbound;
    let symmetric = cfg.signature == SignatureMode::Symmetric;

    // 1. Headers: all present, then each well-formed.
    json_content_type(headers, SVC)?;
    let bearer = if symmetric {
        Some(required(headers, "Authorization", SVC)?)
    } else {
        None
    };
    let ts_header = required(headers, "X-TIMESTAMP", SVC)?;
    let sig = required(headers, "X-SIGNATURE", SVC)?;
    let partner_id = required(headers, "X-PARTNER-ID", SVC)?;
    let external_id = required(headers, "X-EXTERNAL-ID", SVC)?;
    let channel_id = required(headers, "CHANNEL-ID", SVC)?;
    let token = match bearer {
        Some(b) => Some(bearer_token(b).ok_or_else(|| SnapStatus::invalid_field_format(SVC, "Authorization"))?),
        None => None,
    };
    let ts = timestamp::parse(ts_header).map_err(|_| SnapStatus::invalid_field_format(SVC, "X-TIMESTAMP"))?;
    if !check_partner_id(partner_id) {
        return Err(SnapStatus::invalid_field_format(SVC, "X-PARTNER-ID").into());
    }
    if !check_external_id(external_id, cfg.external_id_format == ExternalIdFormat::Numeric) {
        return Err(SnapStatus::invalid_field_format(SVC, "X-EXTERNAL-ID").into());
    }
    if !check_channel_id(channel_id) {
        return Err(SnapStatus::invalid_field_format(SVC, "CHANNEL-ID").into());
    }
    if partner_id != creds.client_id {
        return Err(SnapStatus::unauthorized(SVC, "Unknown Client").into());
    }

    // 2. The bearer token must be one we issued to this client, unexpired.
    let now = crate::store::now();
    if let Some(token) = token {
        let deadline = Duration::from_secs(st.settings.server.request_timeout_secs);
        let checked = st.tokens.check(st.store.as_ref(), token, &creds.client_id, now);
        if let TokenCheck::Invalid = in_time(deadline, SVC, "token lookup", checked).await? {
            return Err(SnapStatus::invalid_token(SVC).into());
        }
    }

    // 3. The body, bounded in size and time; then the signature over exactly those bytes.
    let bytes = body.read(&st.settings.server, SVC).await?;
    let path = signed_path(uri);
    let digest = snap_body::body_digest(&bytes);
    let hash = hex::encode(digest);
    let verification = match (token, &creds.hmac) {
        (Some(token), Some(key)) if symmetric => {
            let to_sign = signature::symmetric_string_to_sign("POST", path, token, &hash, ts_header);
            if !key.verify_encoded(&to_sign, sig, cfg.hmac_encoding) {
                tracing::debug!(path = %clip(path), body_hash = %hash, timestamp = %clip(ts_header), "symmetric signature did not verify");
                return Err(SnapStatus::unauthorized(SVC, "Invalid Signature").into());
            }
            "symmetric:HMAC-SHA512".to_string()
        }
        _ => {
            let to_sign = signature::asymmetric_string_to_sign("POST", path, &hash, ts_header);
            let which = creds
                .public_keys
                .iter()
                .position(|k| signature::rsa_verify(k, &to_sign, sig));
            match which {
                Some(0) => "asymmetric:SHA256withRSA:public_key".to_string(),
                Some(_) => "asymmetric:SHA256withRSA:public_key_next".to_string(),
                None => {
                    tracing::debug!(string_to_sign = %clip(&to_sign), "asymmetric signature did not verify");
                    return Err(SnapStatus::unauthorized(SVC, "Invalid Signature").into());
                }
            }
        }
    };

    // 4. A genuine request can still be a replay of an old capture.
    if let Err(skew) = timestamp::check_skew(ts, now, cfg.timestamp_tolerance_secs) {
        return Err(SnapStatus::unauthorized(SVC, &format!("Invalid Timestamp: {skew}")).into());
    }

    // 5. Only now is the body parsed.
    let parsed = parse_notify(&bytes).map_err(|e| e.snap_status(SVC))?;
    let raw_body =
        String::from_utf8(bytes.to_vec()).map_err(|_| SnapStatus::bad_request(SVC, Some("Body is not UTF-8")))?;

    Ok(Verified {
        partner_id,
        external_id,
        digest,
        verification,
        parsed,
        raw_body,
        now,
        signed_at: ts.with_timezone(&chrono::Utc),
    })
}
