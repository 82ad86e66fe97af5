//! `POST /api/v1/payments`: a dynamic QR payment.
//!
//! Order of effects: the payment row first (`pending`, scheduled for a
//! reconciliation check), then Finpay's generate, then the QR on the row.
//! A definite refusal fails the payment; an unknown outcome (timeout, 5xx)
//! leaves it pending for the worker, and a retry of the same request (same
//! `Idempotency-Key`, or the same `partnerReferenceNo`) calls generate again
//! with the same `partnerReferenceNo`: Finpay's QR if it gives it, else the
//! outcome stays unknown and the worker follows the payment. One request at
//! a time sends a payment's generate, and the sends are counted: a refusal
//! fails the payment only when it answers the first.

use super::auth::Caller;
use super::error::ApiError;
use super::extract::ApiJson;
use super::idempotency::{self, Begin, Reply};
use super::model::PaymentView;
use super::payment_request::{after, CreatePaymentRequest, PaymentSpec};
use super::upstream;
use crate::domain::payment::CURRENCY;
use crate::domain::PaymentStatus;
use crate::finpay::{FinpayClient, FinpayError, GenerateRequest};
use crate::metrics::business::Change;
use crate::snap::notify::Amount;
use crate::state::AppState;
use crate::store::{GeneratedQr, IdempotencyRef, NewPayment, Payment, StoreError};
use crate::worker::schedule::{deadline_of, first_check};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

const ROUTE: &str = "POST /api/v1/payments";
/// A generate whose outcome is unknown is checked this soon by the worker.
const RECHECK_SOON: chrono::Duration = chrono::Duration::seconds(5);

/// Create a QR payment
///
/// Inserts the payment, asks Finpay for its QR and returns it. Send an
/// `Idempotency-Key` so that retries (after a timeout, a lost connection)
/// return the same payment instead of creating another.
#[utoipa::path(
    post,
    path = "/payments",
    tag = "payments",
    request_body = CreatePaymentRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body → same answer, for 24 hours after the first request. \
        1–255 visible ASCII characters (a UUID is a good choice)", min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, description = "Created: the QR is ready", body = PaymentView, links(
            ("GetPayment" = (operation_id = "get_payment", parameters(("id" = "$response.body#/id")), description = "Read the payment")),
            ("GetPaymentEvents" = (operation_id = "list_events", parameters(("id" = "$response.body#/id")), description = "Its audit trail")),
            ("GetPaymentQrSvg" = (operation_id = "qr_svg", parameters(("id" = "$response.body#/id")), description = "Its QR code as SVG")),
            ("GetPaymentQrPng" = (operation_id = "qr_png", parameters(("id" = "$response.body#/id")), description = "Its QR code as PNG")),
            ("ListRefunds" = (operation_id = "list_refunds", parameters(("id" = "$response.body#/id")), description = "Its refunds")),
            ("CreateRefund" = (operation_id = "create_refund", parameters(("id" = "$response.body#/id")), description = "Refund it, once paid")),
        )),
        (status = 200, description = "This partnerReferenceNo already has this payment: here it is", body = PaymentView, links(
            ("GetPayment" = (operation_id = "get_payment", parameters(("id" = "$response.body#/id")), description = "Read the payment")),
            ("GetPaymentEvents" = (operation_id = "list_events", parameters(("id" = "$response.body#/id")), description = "Its audit trail")),
            ("ListRefunds" = (operation_id = "list_refunds", parameters(("id" = "$response.body#/id")), description = "Its refunds")),
            ("CreateRefund" = (operation_id = "create_refund", parameters(("id" = "$response.body#/id")), description = "Refund it, once paid")),
        )),
        (status = 400, description = "Unreadable body or header", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time (`api.body_timeout_ms`); the connection is closed", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "partnerReferenceNo used for another payment, the same Idempotency-Key is in flight, another request is generating this payment's QR, or the QR of a retried payment cannot be recovered from Finpay", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid (see `field`), or the Idempotency-Key was used with another body", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 502, description = "Finpay refused (`finpay-rejected`: payment failed) or failed (`finpay-unavailable`: outcome unknown, retry)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Finpay or the database is not available", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 504, description = "Finpay did not answer in time (outcome unknown: retry)", body = super::error::Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_payment(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreatePaymentRequest>,
) -> Result<Response, ApiError> {
    let spec = PaymentSpec::parse(body, crate::store::now(), &st.settings.worker)?;
    upstream::finpay(&st)?;
    let key = idempotency::key_from(&headers, &caller, ROUTE)?;
    let mut resume = None;
    if let Some(k) = &key {
        match idempotency::begin(&st, k, &idempotency::fingerprint(&spec.canonical())).await? {
            Begin::Answer(resp) => return Ok(resp),
            Begin::Proceed { resource_id } => resume = resource_id,
        }
    }
    let work = {
        let (st, key) = (st.clone(), key.clone());
        async move { run(&st, &spec, key.as_ref(), resume).await }
    };
    Ok(idempotency::run_detached(&st, key, "payment creation", work)
        .await
        .into_response())
}

async fn run(st: &AppState, spec: &PaymentSpec, key: Option<&IdempotencyRef>, resume: Option<String>) -> Reply {
    let payment = match resume {
        Some(id) => match st.store.get_payment(&id).await {
            Ok(Some(p)) => p,
            Ok(None) => return Reply::error(ApiError::internal(), false),
            Err(e) => return Reply::error(e.into(), false),
        },
        None => match insert(st, spec, key).await {
            Ok(Inserted::New(p)) => p,
            Ok(Inserted::Existing(p)) => return finish_existing(st, spec, p).await,
            Err(e) => return Reply::error(e, false),
        },
    };
    generate(st, spec, payment, StatusCode::CREATED).await
}

enum Inserted {
    New(Payment),
    /// The `partnerReferenceNo` was taken already.
    Existing(Payment),
}

async fn insert(st: &AppState, spec: &PaymentSpec, key: Option<&IdempotencyRef>) -> Result<Inserted, ApiError> {
    // `/payments/{id}` finds an id before a reference: a payment whose
    // reference is another's id could never be read or refunded by it.
    if let Some(reference) = &spec.partner_reference_no {
        if let Some(p) = st.store.get_payment(reference).await?.filter(|p| p.id == *reference) {
            return Ok(Inserted::Existing(p));
        }
    }
    let now = crate::store::now();
    let id = crate::domain::payment::new_id(now);
    let new = NewPayment {
        id: id.to_string(),
        // Ours by default: the id's 32 hex digits, unique and Finpay-safe.
        partner_reference_no: spec
            .partner_reference_no
            .clone()
            .unwrap_or_else(|| id.simple().to_string()),
        amount_minor: spec.amount_minor,
        currency: CURRENCY.into(),
        note: spec.note.clone(),
        valid_until: spec.valid_until,
        created_at: now,
    };
    let w = &st.settings.worker;
    let first_check = first_check(now, deadline_of(Some(spec.valid_until), now, w), w);
    match st.store.create_api_payment(&new, Some(first_check), key).await {
        Ok(p) => {
            crate::telemetry::status_changed("api", &(&p).into(), None, p.status, None);
            st.metrics.payment_changed(&Change::local(&p, None, p.status));
            Ok(Inserted::New(p))
        }
        Err(StoreError::Conflict(_)) => match st.store.get_payment(&new.partner_reference_no).await? {
            Some(p) => Ok(Inserted::Existing(p)),
            None => Err(ApiError::internal()),
        },
        Err(e) => Err(e.into()),
    }
}

/// A request naming a `partnerReferenceNo` that exists: the same payment is
/// answered (and its QR generated if an earlier attempt did not get it);
/// another payment is a conflict.
async fn finish_existing(st: &AppState, spec: &PaymentSpec, p: Payment) -> Reply {
    let same = p.origin == "generated"
        && p.partner_reference_no.as_deref() == spec.partner_reference_no.as_deref()
        && p.amount_minor == spec.amount_minor
        && p.currency == CURRENCY;
    if !same {
        let detail = if spec.partner_reference_no.as_deref() == Some(p.id.as_str()) {
            "this partnerReferenceNo is another payment's id; choose a new one"
        } else {
            "another payment already has this partnerReferenceNo; choose a new one"
        };
        let e = ApiError::conflict("partner-reference-taken", "partnerReferenceNo already used", detail)
            .field("partnerReferenceNo")
            .payment(&p.id);
        return Reply::error(e, true);
    }
    generate(st, spec, p, StatusCode::OK).await
}

/// Gets the payment its QR (unless it has one) and answers with it. One
/// request at a time asks Finpay (`claim_generate_send`); the sends are
/// counted, so that an answer to a send after the first is read as such.
async fn generate(st: &AppState, spec: &PaymentSpec, p: Payment, done: StatusCode) -> Reply {
    if let Some(answer) = without_generate(&p, done) {
        return answer;
    }
    let now = crate::store::now();
    let Some(valid_until) = p.valid_until.filter(|t| *t > after(now, 10)) else {
        let e = ApiError::conflict(
            "payment-not-generated",
            "Payment has no QR",
            "the payment's validity ended before its QR could be generated; create a new payment",
        )
        .payment(&p.id);
        return Reply::error(e, true);
    };
    let finpay = match upstream::finpay(st) {
        Ok(f) => f,
        Err(e) => return Reply::error(e.payment(&p.id), false),
    };
    let req = GenerateRequest {
        partner_reference_no: p.partner_reference_no.clone().unwrap_or_default(),
        amount: Amount {
            minor: p.amount_minor,
            currency: p.currency.clone(),
        },
        valid_until,
        note: p.note.clone(),
        tips: spec.tips.clone(),
    };
    if let Err(e) = finpay.ensure_token().await {
        return Reply::error(not_sent(&e, &p).payment(&p.id), false);
    }
    // The hold starts now, after the token wait, so that it covers the whole send.
    let now = crate::store::now();
    let hold = FinpayClient::longest_call(&st.settings.finpay);
    let send = match st.store.claim_generate_send(&p.id, now, now + hold).await {
        Ok(Some(send)) => send,
        Ok(None) => return busy_or_generated(st, &p.id, done).await,
        Err(e) => return Reply::error(ApiError::from(e).payment(&p.id), false),
    };
    let sent_before = send > 1;
    match finpay.generate(&req).await {
        Ok(g) => {
            let w = &st.settings.worker;
            // The deadline is the validity we sent: Finpay's echo of it is
            // not trusted to move it (a wrong offset would expire a live QR).
            let deadline = deadline_of(Some(valid_until), p.created_at, w);
            let qr = GeneratedQr {
                next_check_at: first_check(crate::store::now(), deadline, w),
                reference_no: g.reference_no,
                qr_content: g.qr_content,
                qr_url: g.qr_url,
            };
            match st.store.attach_generated(&p.id, &qr).await {
                Ok(p) => Reply::json(done, &PaymentView::from(&p)),
                Err(e) => {
                    // What Finpay gave, so that a person can still hand it over.
                    tracing::error!(payment_id = %p.id, reference_no = ?qr.reference_no, qr_content = %qr.qr_content,
                        error = %e, "Finpay generated the QR but it could not be stored");
                    Reply::error(ApiError::from(e).payment(&p.id), false)
                }
            }
        }
        Err(e) if upstream::definitely_refused(&e) && !sent_before => {
            tracing::warn!(payment_id = %p.id, error = %e, "Finpay refused to generate the QR");
            match st.store.fail_generation(&p.id, send, &upstream::describe(&e)).await {
                Ok(Some(failed)) => {
                    st.metrics
                        .payment_changed(&Change::local(&failed, Some(p.status), failed.status));
                    let why = "Finpay refused to generate the QR";
                    crate::telemetry::status_changed(
                        "api",
                        &(&failed).into(),
                        Some(p.status),
                        failed.status,
                        Some(why),
                    );
                }
                // No longer pending without a QR (paid meanwhile, say), or a later
                // send took over: answer it as it is.
                Ok(None) => return busy_or_generated(st, &p.id, done).await,
                Err(se) => return Reply::error(ApiError::from(se).payment(&p.id), false),
            }
            Reply::error(
                ApiError::finpay(&e, "Finpay refused to generate the QR; the payment is failed").payment(&p.id),
                true,
            )
        }
        Err(e) => {
            tracing::warn!(payment_id = %p.id, error = %e, "generate outcome unknown; the worker will check");
            let mut detail = upstream::describe(&e);
            if upstream::refused_again(sent_before, &e) {
                detail["sentAgain"] = true.into();
            }
            if let Err(se) = st
                .store
                .generation_unknown(&p.id, send, crate::store::now() + RECHECK_SOON, &detail)
                .await
            {
                tracing::warn!(payment_id = %p.id, error = %se, "could not record the unknown generate outcome");
            }
            if let Some(e) = not_recoverable(sent_before, &e) {
                // Unless another request has stored the QR meanwhile.
                return match st.store.get_payment(&p.id).await {
                    Ok(Some(now)) if now.qr_content.is_some() => Reply::json(done, &PaymentView::from(&now)),
                    _ => Reply::error(e.payment(&p.id), true),
                };
            }
            // Without its reference a retry is a new payment: say which one resumes this one.
            let what = format!(
                "the QR's outcome is unknown; the payment stays pending: retry with partnerReferenceNo {} (or the \
                 same Idempotency-Key) to resume it; a request with neither is a new payment",
                p.partner_reference_no.as_deref().unwrap_or_default()
            );
            Reply::error(ApiError::finpay(&e, &what).payment(&p.id), false)
        }
    }
}

/// The answer for a payment that needs no generate: it has its QR, or was
/// paid without our hearing of it (its answer was lost, then Finpay
/// notified: the order is paid, and a new payment would charge twice), or
/// is closed without one.
fn without_generate(p: &Payment, done: StatusCode) -> Option<Reply> {
    if p.qr_content.is_some() || matches!(p.status, PaymentStatus::Paid | PaymentStatus::Refunded) {
        return Some(Reply::json(done, &PaymentView::from(p)));
    }
    if !p.status.is_open() {
        let e = ApiError::conflict(
            "payment-not-generated",
            "Payment has no QR",
            format!(
                "the payment is {} and its QR was never generated; create a new payment",
                p.status
            ),
        )
        .payment(&p.id);
        return Some(Reply::error(e, true));
    }
    None
}

/// Another request is asking Finpay for the QR now (or its answer was just
/// stored): the payment as it is, if that settled it; else 409.
async fn busy_or_generated(st: &AppState, payment_id: &str, done: StatusCode) -> Reply {
    match st.store.get_payment(payment_id).await {
        Ok(Some(p)) => without_generate(&p, done).unwrap_or_else(|| {
            let e = ApiError::conflict(
                "qr-in-progress",
                "QR being generated",
                "another request is asking Finpay for this payment's QR; read the payment again in a moment, \
                 or retry this request",
            );
            Reply::error(e.payment(payment_id), false)
        }),
        Ok(None) => Reply::error(ApiError::internal(), false),
        Err(e) => Reply::error(ApiError::from(e).payment(payment_id), false),
    }
}

/// A generate sent again (after an unknown outcome) that Finpay will not
/// answer with the QR: a "duplicate" (it made the QR for the earlier send and
/// does not give it again) or a refusal (which may be about what the earlier
/// send did). Retrying cannot help; the payment stays pending for the worker.
fn not_recoverable(sent_before: bool, e: &FinpayError) -> Option<ApiError> {
    if !sent_before {
        return None;
    }
    let why = if e.is_duplicate_reference() {
        "Finpay generated this payment's QR for an earlier request whose answer was lost, and does not give it again"
    } else if upstream::refused_again(sent_before, e) {
        "Finpay refused this payment's QR when asked again; an earlier request's outcome is unknown and the refusal \
         may be about what it did"
    } else {
        return None;
    };
    let detail = format!(
        "{why}: create a new payment (this one stays pending; it is settled if Finpay reports it paid, and expires \
         otherwise)"
    );
    Some(ApiError::conflict(
        "qr-not-recoverable",
        "The QR cannot be recovered",
        detail,
    ))
}

/// No access token from Finpay, so nothing was sent: the payment stays as it
/// was, and a retry resumes it.
fn not_sent(e: &FinpayError, p: &Payment) -> ApiError {
    let what = format!(
        "no access token could be obtained from Finpay, so the QR was not asked for; the payment stays pending: retry \
         with partnerReferenceNo {} (or the same Idempotency-Key) to resume it",
        p.partner_reference_no.as_deref().unwrap_or_default()
    );
    ApiError::finpay_outcome_unknown(e, &what)
}
