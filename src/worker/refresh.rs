//! Refresh-on-read: reconcile one payment now, for
//! `GET /api/v1/payments/{id}?refresh=true`. Same lease, same query, same
//! `apply_query` path as the background loop, so a refresh and a scheduled
//! check can neither run at once nor disagree.

use super::answer::{about, error_code, query_request};
use super::schedule::{expiry_deadline, next_check};
use crate::finpay::FinpayError;
use crate::metrics::business::{Change, Via};
use crate::state::AppState;
use crate::store::{self, Payment, QueryResult, StoreError};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("payment not found")]
    NotFound,
    #[error("Finpay is not configured")]
    NotConfigured,
    /// Another worker (or another refresh) holds the payment's lease.
    #[error("the payment is being reconciled right now; try again shortly")]
    Busy,
    #[error(transparent)]
    Finpay(#[from] FinpayError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Queries Finpay about one payment (by id or `partnerReferenceNo`) and
/// applies the answer; returns the payment as stored afterwards.
/// It runs on a task of its own, to its end even if the caller goes away
/// meanwhile: once the payment is leased, Finpay's answer is applied and
/// recorded, not dropped with the request.
pub async fn reconcile_one(state: &AppState, payment_id: &str) -> Result<Payment, ReconcileError> {
    let (state, id) = (state.clone(), payment_id.to_string());
    tokio::spawn(async move { reconcile(&state, &id).await })
        .await
        .unwrap_or_else(|e| Err(StoreError::Invalid(format!("the refresh task failed: {e}")).into()))
}

async fn reconcile(state: &AppState, payment_id: &str) -> Result<Payment, ReconcileError> {
    let finpay = state.finpay.as_ref().ok_or(ReconcileError::NotConfigured)?;
    let found = state
        .store
        .get_payment(payment_id)
        .await?
        .ok_or(ReconcileError::NotFound)?;
    let w = &state.settings.worker;
    let owner = format!("{}:refresh:{}", super::host_name(), uuid::Uuid::new_v4().simple());
    let now = store::now();
    let payment = state
        .store
        .claim_one(&found.id, &owner, now, w.lease_secs)
        .await?
        .ok_or(ReconcileError::Busy)?;
    // Answer well inside the lease, so the result is still ours to apply.
    let budget = Duration::from_secs(w.lease_secs.max(2)).mul_f64(0.75);
    let answer = match tokio::time::timeout(budget, finpay.query(&query_request(&payment))).await {
        Ok(answer) => answer.and_then(|q| about(&payment, q)),
        Err(_) => Err(FinpayError::Timeout),
    };
    // A read does not reset the schedule; it only starts one if there is none,
    // and never for a payment left to a person (flagged, no check scheduled):
    // only a person's resolution of its flag has it asked about again.
    let now = store::now();
    let attempt = u32::try_from(payment.check_attempts).unwrap_or(0).saturating_add(1);
    let next = payment.next_check_at.or_else(|| {
        (payment.status.is_open() && payment.flagged.is_none())
            .then(|| next_check(attempt, now, expiry_deadline(&payment, w), w))
    });
    let (result, failure) = match answer {
        Ok(q) => (
            QueryResult {
                observation: Some(q.observation),
                response_code: Some(q.response_code),
                outcome: "answered (refresh)".into(),
                next_check_at: next,
            },
            None,
        ),
        Err(e) => (
            QueryResult {
                observation: None,
                response_code: error_code(&e),
                outcome: format!("error (refresh): {e}"),
                next_check_at: next,
            },
            Some(e),
        ),
    };
    let applied = state.store.apply_query(&payment.id, &owner, &result, now).await;
    if let Ok(a) = &applied {
        state.metrics.payment_changed(&Change::of(a, Via::Query));
    }
    let outcome = match (&applied, &failure) {
        (Err(_), _) => "store_error",
        (Ok(_), Some(_)) => "error",
        (Ok(a), None) => super::answer::outcome_label(&a.decision),
    };
    state
        .metrics
        .inc("finpay_qris_reconcile_attempts_total", &[("outcome", outcome)]);
    if let Some(e) = failure {
        if let Err(store_error) = applied {
            tracing::warn!(error = %store_error, "could not record a failed refresh");
        }
        return Err(e.into());
    }
    applied?;
    state
        .store
        .get_payment(&payment.id)
        .await?
        .ok_or(ReconcileError::NotFound)
}
