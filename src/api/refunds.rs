//! Refunds: `POST` and `GET /api/v1/payments/{id}/refunds`.
//!
//! The amount is reserved in the database (guarded update of the payment's
//! `refunded_minor`, in the transaction that stores the refund as `pending`)
//! before Finpay is asked, so concurrent refunds can never exceed the
//! payment. A definite refusal of its first send releases the reservation; success keeps it
//! (and the payment becomes `refunded` once fully refunded); an unknown
//! outcome keeps the refund pending: retrying the same request (same
//! `Idempotency-Key` or `partnerRefundNo`) asks Finpay again with the same
//! `partnerRefundNo`.

use super::audit;
use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiPath};
use super::idempotency::{self, Begin, Reply};
use super::model::{RefundList, RefundView};
use super::payments::find;
use super::refund_request::{
    exceeds_refundable, flagged, not_in_rupiah, not_refundable, CreateRefundRequest, RefundSpec,
};
use super::upstream;
use crate::domain::payment::CURRENCY;
use crate::domain::PaymentStatus;
use crate::finpay::RefundRequest;
use crate::metrics::business::Change;
use crate::snap::notify::Amount;
use crate::state::AppState;
use crate::store::{IdempotencyRef, NewRefund, Payment, Refund, RefundReservation};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

/// Refund a paid payment
///
/// Full or partial. Send an `Idempotency-Key` (or your own `partnerRefundNo`)
/// so that a retry never refunds twice.
#[utoipa::path(
    post,
    path = "/payments/{id}/refunds",
    tag = "refunds",
    request_body = CreateRefundRequest,
    params(
        ("id" = String, Path, description = "Our id, or the partnerReferenceNo; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body → same answer, for 24 hours after the first request. \
            1–255 visible ASCII characters (a UUID is a good choice)", min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$"),
    ),
    responses(
        (status = 201, description = "Refunded", body = RefundView),
        (status = 200, description = "This partnerRefundNo already names this refund: here it is", body = RefundView),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time (`api.body_timeout_ms`); the connection is closed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not paid, flagged for a person (`payment-flagged`: resolve the flag first), more than what is left to refund, partnerRefundNo used for another refund, the refund is being sent by another request, or the same Idempotency-Key is in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid (see `field`), or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Finpay refused (on the first send: refund failed, amount released; sent again: still pending) or failed (outcome unknown: retry)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Finpay or the database is not available", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Finpay did not answer in time (refund pending: retry)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_refund(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateRefundRequest>,
) -> Result<Response, ApiError> {
    let spec = RefundSpec::parse(body)?;
    let payment = find(&st, &id).await?;
    upstream::finpay(&st)?;
    let route = format!("POST /api/v1/payments/{}/refunds", payment.id);
    let key = idempotency::key_from(&headers, &caller, &route)?;
    let mut resume = None;
    if let Some(k) = &key {
        match idempotency::begin(&st, k, &idempotency::fingerprint(&spec.canonical())).await? {
            Begin::Answer(resp) => return Ok(resp),
            Begin::Proceed { resource_id } => resume = resource_id,
        }
    }
    if let Err(e) = audit::record(&st, &payment.id, &caller.name, "refund", spec.audit_detail()).await {
        if let Some(k) = &key {
            idempotency::finish(&st, k, &Reply::error(e.clone(), false)).await;
        }
        return Err(e);
    }
    let work = {
        let (st, key) = (st.clone(), key.clone());
        async move { run(&st, payment, spec, key.as_ref(), resume).await }
    };
    Ok(idempotency::run_detached(&st, key, "refund", work)
        .await
        .into_response())
}

/// A refund asked by `actor` through the console: recorded, then carried out
/// as the API's is, to its end even if the browser goes away. No idempotency key: the form's `partner_refund_no`
/// (drawn when the refund was confirmed) makes a repeated submission the
/// same refund.
pub async fn refund_as(
    st: &AppState,
    payment: Payment,
    actor: &str,
    request: CreateRefundRequest,
) -> Result<Reply, ApiError> {
    let spec = RefundSpec::parse(request)?;
    upstream::finpay(st)?;
    audit::record(st, &payment.id, actor, "refund", spec.audit_detail()).await?;
    // On a task of its own, as the API's: Finpay's answer is recorded even if
    // the browser goes away meanwhile.
    let task_state = st.clone();
    let work = async move { run(&task_state, payment, spec, None, None).await };
    Ok(idempotency::run_detached(st, None, "refund", work).await)
}

async fn run(
    st: &AppState,
    p: Payment,
    spec: RefundSpec,
    key: Option<&IdempotencyRef>,
    resume: Option<String>,
) -> Reply {
    let (refund, done) = match resume {
        Some(id) => match st.store.get_refund(&id).await {
            Ok(Some(r)) => (r, StatusCode::CREATED),
            Ok(None) => return Reply::error(ApiError::internal(), false),
            Err(e) => return Reply::error(e.into(), false),
        },
        None => match reserve(st, &p, spec, key).await {
            Ok(found) => found,
            Err(reply) => return reply,
        },
    };
    if refund.status != "pending" {
        return settled_answer(&refund, &p, done);
    }
    let finpay = match upstream::finpay(st) {
        Ok(f) => f,
        Err(e) => return Reply::error(e.refund(&refund.id), false),
    };
    let req = RefundRequest {
        original_partner_reference_no: p.partner_reference_no.clone(),
        original_reference_no: p.reference_no.clone(),
        partner_refund_no: refund.partner_refund_no.clone(),
        amount: Amount {
            minor: refund.amount_minor,
            currency: p.currency.clone(),
        },
        reason: refund.reason.clone(),
    };
    // One send at a time, counted: a refusal settles only the first (see
    // `upstream::refund_outcome`).
    if let Err(e) = finpay.ensure_token().await {
        let what = format!(
            "no access token could be obtained from Finpay, so the refund was not sent; it stays pending with its \
             amount reserved: retry with partnerRefundNo {} (or the same Idempotency-Key) to resume it",
            refund.partner_refund_no
        );
        return Reply::error(
            ApiError::finpay_outcome_unknown(&e, &what)
                .payment(&p.id)
                .refund(&refund.id),
            false,
        );
    }
    let now = crate::store::now();
    let hold = crate::finpay::FinpayClient::longest_call(&st.settings.finpay);
    let send = match st.store.claim_refund_send(&refund.id, now, now + hold).await {
        Ok(Some(send)) => send,
        Ok(None) => return busy_or_settled(st, &refund, &p, done).await,
        Err(e) => return Reply::error(ApiError::from(e).refund(&refund.id), false),
    };
    let sent_before = send > 1;
    let (outcome, error) = upstream::refund_outcome(finpay.refund(&req).await, sent_before);
    let stored = match st.store.complete_refund(&refund.id, send, &outcome).await {
        Ok(r) => r,
        Err(se) => {
            tracing::error!(refund_id = %refund.id, error = %se, ?outcome, "could not record Finpay's answer to a refund");
            return Reply::error(ApiError::from(se).refund(&refund.id), false);
        }
    };
    st.metrics.refund_answered(&outcome, stored.amount_minor, &p.currency);
    if stored.status == "succeeded" && p.status == PaymentStatus::Paid {
        report_if_refunded(st, &p).await;
    }
    match (error, stored.status.as_str()) {
        (None, _) | (Some(_), "succeeded") => settled_answer(&stored, &p, done),
        (Some(e), "failed") => {
            tracing::warn!(refund_id = %stored.id, error = %e, "Finpay refused the refund");
            let what = "Finpay refused the refund; the amount can be refunded again";
            Reply::error(ApiError::finpay(&e, what).payment(&p.id).refund(&stored.id), true)
        }
        (Some(e), _) if upstream::refused_again(sent_before, &e) => {
            tracing::warn!(refund_id = %stored.id, error = %e, "Finpay refused a refund sent again; it stays pending");
            let what = "Finpay refused the refund sent again; an earlier send's outcome is unknown and may be what \
                        the refusal is about (a refund already carried out), so the refund stays pending with its \
                        amount reserved: settle it with Finpay";
            Reply::error(
                ApiError::finpay_outcome_unknown(&e, what)
                    .payment(&p.id)
                    .refund(&stored.id),
                false,
            )
        }
        (Some(e), _) => {
            tracing::warn!(refund_id = %stored.id, error = %e, "refund outcome unknown; it stays pending");
            // Without its number a retry is a new refund: say which number resumes this one.
            let what = format!(
                "the refund's outcome is unknown; it stays pending with its amount reserved: retry with \
                 partnerRefundNo {} (or the same Idempotency-Key) to resume it; a request with neither is a new refund",
                stored.partner_refund_no
            );
            Reply::error(ApiError::finpay(&e, &what).payment(&p.id).refund(&stored.id), false)
        }
    }
}

/// A successful refund moves the payment to `refunded` once the refunds
/// cover its amount (in the store); this reads whether it did, to log it.
async fn report_if_refunded(st: &AppState, before: &Payment) {
    match st.store.get_payment(&before.id).await {
        Ok(Some(now)) if now.status != before.status => {
            st.metrics
                .payment_changed(&Change::local(&now, Some(before.status), now.status));
            crate::telemetry::status_changed("refund", &(&now).into(), Some(before.status), now.status, None);
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(payment_id = %before.id, error = %e, "payment not re-read after a refund"),
    }
}

/// The refund could not be taken for a send: it was settled meanwhile
/// (answered as it is), or another request is sending it now.
async fn busy_or_settled(st: &AppState, refund: &Refund, p: &Payment, done: StatusCode) -> Reply {
    match st.store.get_refund(&refund.id).await {
        Ok(Some(r)) if r.status != "pending" => settled_answer(&r, p, done),
        Ok(_) => Reply::error(in_progress(&p.id, &refund.id), false),
        Err(e) => Reply::error(ApiError::from(e).refund(&refund.id), false),
    }
}

/// 409: another request is sending the refund to Finpay (or settling it) now.
pub(super) fn in_progress(payment_id: &str, refund_id: &str) -> ApiError {
    ApiError::conflict(
        "refund-in-progress",
        "Refund in progress",
        "this refund is being sent to Finpay by another request; read it again in a moment",
    )
    .payment(payment_id)
    .refund(refund_id)
}

/// Reserves the amount; `Err` is the answer when nothing was reserved.
async fn reserve(
    st: &AppState,
    p: &Payment,
    spec: RefundSpec,
    key: Option<&IdempotencyRef>,
) -> Result<(Refund, StatusCode), Reply> {
    if p.currency != CURRENCY {
        return Err(Reply::error(not_in_rupiah(&p.id, &p.currency), true));
    }
    let id = uuid::Uuid::now_v7();
    let new = NewRefund {
        id: id.to_string(),
        payment_id: p.id.clone(),
        partner_refund_no: spec
            .partner_refund_no
            .clone()
            .unwrap_or_else(|| id.simple().to_string()),
        amount_minor: spec.amount_minor,
        reason: spec.reason.clone(),
        created_at: crate::store::now(),
    };
    match st.store.reserve_refund(&new, key).await {
        Ok(RefundReservation::Reserved(r)) => {
            tracing::info!(refund_id = %r.id, payment_id = %p.id, amount_minor = r.amount_minor, "refund reserved");
            Ok((r, StatusCode::CREATED))
        }
        Ok(RefundReservation::Existing(r)) if r.payment_id == p.id && r.amount_minor == spec.amount_minor => {
            Ok((r, StatusCode::OK))
        }
        Ok(RefundReservation::Existing(r)) => Err(Reply::error(
            ApiError::conflict(
                "partner-refund-taken",
                "partnerRefundNo already used",
                if r.payment_id == p.id {
                    format!(
                        "this partnerRefundNo names this payment's refund of {}: a retry asks the same amount, \
                         another refund needs a new partnerRefundNo",
                        crate::domain::status::format_minor(r.amount_minor)
                    )
                } else {
                    "another payment's refund already has this partnerRefundNo".to_string()
                },
            )
            .field("partnerRefundNo")
            .payment(&p.id),
            true,
        )),
        Ok(RefundReservation::PaymentNotFound) => Err(Reply::error(ApiError::payment_not_found(&p.id), true)),
        Ok(RefundReservation::NotRefundable { status }) => {
            Err(Reply::error(not_refundable(&p.id, status.as_str()), true))
        }
        Ok(RefundReservation::Flagged { reason }) => Err(Reply::error(flagged(&p.id, &reason), true)),
        Ok(RefundReservation::ExceedsRefundable { refundable_minor }) => {
            Err(Reply::error(exceeds_refundable(&p.id, refundable_minor), true))
        }
        Err(e) => Err(Reply::error(e.into(), false)),
    }
}

/// The answer for a refund whose fate is known.
fn settled_answer(r: &Refund, p: &Payment, done: StatusCode) -> Reply {
    if r.status == "failed" {
        // Without Finpay's code it was settled as failed by a person
        // (`…/resolution`), as Finpay told them.
        let detail = match r.response_code {
            Some(_) => "Finpay refused this refund; the amount can be refunded again with a new partnerRefundNo",
            None => {
                "this refund failed (Finpay did not make it, as recorded in the payment's audit trail); the \
                     amount can be refunded again with a new partnerRefundNo"
            }
        };
        let e = ApiError::new(StatusCode::BAD_GATEWAY, "finpay-rejected", "Finpay refused the request")
            .detail(detail)
            .finpay_code(r.response_code.clone())
            .payment(&p.id)
            .refund(&r.id);
        return Reply::error(e, true);
    }
    Reply::json(done, &RefundView::new(r, &p.currency))
}

/// A payment's refunds
///
/// Oldest first, whatever their status.
#[utoipa::path(
    get,
    path = "/payments/{id}/refunds",
    tag = "refunds",
    params(("id" = String, Path, description = "Our id, or the partnerReferenceNo; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses(
        (status = 200, description = "The refunds, oldest first", body = RefundList),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_refunds(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RefundList>, ApiError> {
    let payment = find(&st, &id).await?;
    let refunds = st.store.list_refunds(&payment.id).await?;
    Ok(Json(RefundList {
        items: refunds.iter().map(|r| RefundView::new(r, &payment.currency)).collect(),
    }))
}
