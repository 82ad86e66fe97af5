//! The API's two outside calls, in one place: Finpay (through
//! [`FinpayClient`](crate::finpay::FinpayClient)) and the reconciliation code
//! path (refresh-on-read).

use super::error::ApiError;
use crate::finpay::{FinpayClient, FinpayError, RefundResponse};
use crate::state::AppState;
use crate::store::{Payment, RefundOutcome};
use std::sync::Arc;

/// Finpay, or 503 when it is not configured.
pub fn finpay(st: &AppState) -> Result<Arc<FinpayClient>, ApiError> {
    st.finpay.clone().ok_or_else(ApiError::finpay_not_configured)
}

/// Whether Finpay definitely did NOT carry the request out: a 4xx refusal.
/// Everything else (timeout, 5xx, an unreadable answer, 409 "duplicate", 429
/// "slow down", a 2xx with a non-success code) leaves the outcome unknown.
pub fn definitely_refused(e: &FinpayError) -> bool {
    matches!(e, FinpayError::Rejected { http, .. } if (400..500).contains(http) && !matches!(http, 408 | 409 | 425 | 429))
}

/// What Finpay's answer to a refund settles. A refusal proves nothing was
/// done only when it answers the refund's first send: to a refund sent again
/// after an unknown outcome, it may be about what the earlier send did (a
/// refund already made), and recording it failed would free an amount Finpay
/// may have paid out. A "duplicate" proves nothing either way (the earlier
/// transaction may have been refused): both leave the refund pending.
pub fn refund_outcome(
    answer: Result<RefundResponse, FinpayError>,
    sent_before: bool,
) -> (RefundOutcome, Option<FinpayError>) {
    match answer {
        Ok(r) => (
            RefundOutcome::Succeeded {
                reference_no: r.reference_no,
                response_code: Some(r.response_code),
                message: None,
            },
            None,
        ),
        Err(e) if refused_again(sent_before, &e) => (
            RefundOutcome::Unknown {
                reason: format!("refused when sent again, so not proof that nothing was refunded: {e}"),
            },
            Some(e),
        ),
        Err(e) if definitely_refused(&e) => (
            RefundOutcome::Rejected {
                response_code: response_code(&e),
                message: e.to_string(),
            },
            Some(e),
        ),
        Err(e) => (RefundOutcome::Unknown { reason: e.to_string() }, Some(e)),
    }
}

/// A refusal of a request (a refund, a generate) sent before: it may be about
/// what an earlier send did, so it settles nothing.
pub fn refused_again(sent_before: bool, e: &FinpayError) -> bool {
    sent_before && definitely_refused(e)
}

/// Finpay's `responseCode`, when it gave one.
pub fn response_code(e: &FinpayError) -> Option<String> {
    match e {
        FinpayError::Rejected { response_code, .. } if !response_code.is_empty() => Some(response_code.clone()),
        _ => None,
    }
}

/// For the audit trail.
pub fn describe(e: &FinpayError) -> serde_json::Value {
    serde_json::json!({"error": e.kind(), "responseCode": response_code(e), "message": e.to_string()})
}

/// Asks Finpay about the payment now, through the reconciliation code path,
/// and returns it as updated.
pub async fn refresh(st: &AppState, payment: &Payment) -> Result<Payment, ApiError> {
    use crate::worker::ReconcileError as E;
    match crate::worker::reconcile_one(st, &payment.id).await {
        Ok(p) => Ok(p),
        Err(E::NotFound) => Err(ApiError::payment_not_found(&payment.id)),
        Err(E::NotConfigured) => Err(ApiError::finpay_not_configured()),
        Err(E::Busy) => Err(ApiError::conflict(
            "refresh-in-progress",
            "Refresh in progress",
            "the payment is being reconciled right now; read it again in a moment",
        )
        .payment(&payment.id)),
        Err(E::Finpay(e)) => Err(ApiError::finpay(&e, "asking Finpay about the payment").payment(&payment.id)),
        Err(E::Store(e)) => Err(e.into()),
    }
}
