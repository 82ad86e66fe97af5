//! `POST /api/v1/payments`: a dynamic QR payment.
//!
//! Order of effects: the payment row first (`pending`, scheduled for a
//! reconciliation check), then Finpay's generate, then the QR on the row.
//! A definite refusal fails the payment; an unknown outcome (timeout, 5xx)
//! leaves it pending for the worker, and a retry of the same request (same
//! `Idempotency-Key`, or the same `partnerReferenceNo`) calls generate again
//! with the same `partnerReferenceNo`: Finpay's QR if it gives it, else the
//! outcome stays unknown and the worker follows the payment.

use super::auth::Caller;
use super::error::ApiError;
use super::extract::ApiJson;
use super::idempotency::{self, Begin, Reply};
use super::model::PaymentView;
use super::payment_request::{after, CreatePaymentRequest, PaymentSpec};
use super::upstream;
use crate::domain::payment::CURRENCY;
use crate::domain::PaymentStatus;
use crate::finpay::GenerateRequest;
use crate::metrics::business::Change;
use crate::snap::notify::Amount;
use crate::state::AppState;
use crate::store::{GeneratedQr, IdempotencyRef, NewPayment, Payment, StoreError};
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
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body → same answer. \
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
        (status = 409, description = "partnerReferenceNo used for another payment, the same Idempotency-Key is in flight, or the QR of a retried payment cannot be recovered from Finpay", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid (see `field`), or the Idempotency-Key was used with another body", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 502, description = "Finpay refused (payment failed) or failed (outcome unknown: retry)", body = super::error::Problem, content_type = "application/problem+json"),
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
    let sent_before = resume.is_some();
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
    generate(st, spec, payment, StatusCode::CREATED, sent_before).await
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
    let first_check = after(now, st.settings.worker.first_check_secs);
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
    generate(st, spec, p, StatusCode::OK, true).await
}

/// Gets the payment its QR (unless it has one) and answers with it;
/// `sent_before` when an earlier request may have asked Finpay already.
async fn generate(st: &AppState, spec: &PaymentSpec, p: Payment, done: StatusCode, sent_before: bool) -> Reply {
    // Paid without our hearing of the QR (its answer was lost, then Finpay
    // notified): the order is paid, and a new payment would charge twice.
    if p.qr_content.is_some() || matches!(p.status, PaymentStatus::Paid | PaymentStatus::Refunded) {
        return Reply::json(done, &PaymentView::from(&p));
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
        return Reply::error(e, true);
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
    match finpay.generate(&req).await {
        Ok(g) => {
            let qr = GeneratedQr {
                reference_no: g.reference_no,
                qr_content: g.qr_content,
                qr_url: g.qr_url,
                valid_until: g.valid_until,
                next_check_at: after(crate::store::now(), st.settings.worker.first_check_secs),
            };
            match st.store.attach_generated(&p.id, &qr).await {
                Ok(p) => Reply::json(done, &PaymentView::from(&p)),
                Err(e) => {
                    tracing::error!(payment_id = %p.id, error = %e, "Finpay generated the QR but it could not be stored");
                    Reply::error(ApiError::from(e).payment(&p.id), false)
                }
            }
        }
        Err(e) if upstream::definitely_refused(&e) => {
            tracing::warn!(payment_id = %p.id, error = %e, "Finpay refused to generate the QR");
            match st.store.fail_generation(&p.id, &upstream::describe(&e)).await {
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
                Ok(None) => {}
                Err(se) => return Reply::error(ApiError::from(se).payment(&p.id), false),
            }
            Reply::error(
                ApiError::finpay(&e, "Finpay refused to generate the QR; the payment is failed").payment(&p.id),
                true,
            )
        }
        Err(e) => {
            tracing::warn!(payment_id = %p.id, error = %e, "generate outcome unknown; the worker will check");
            let detail = upstream::describe(&e);
            if let Err(se) = st
                .store
                .generation_unknown(&p.id, crate::store::now() + RECHECK_SOON, &detail)
                .await
            {
                tracing::warn!(payment_id = %p.id, error = %se, "could not record the unknown generate outcome");
            }
            // Finpay made the QR for an earlier request and keeps its answer to
            // itself: retrying cannot recover it.
            if sent_before && e.is_duplicate_reference() {
                let e = ApiError::conflict(
                    "qr-not-recoverable",
                    "The QR cannot be recovered",
                    "Finpay generated this payment's QR for an earlier request whose answer was lost, and does not \
                     give it again: create a new payment (this one stays pending; it is settled if Finpay reports it \
                     paid, and expires otherwise)",
                )
                .payment(&p.id);
                return Reply::error(e, true);
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
