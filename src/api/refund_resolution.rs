//! Refunds waiting for a person: `POST /payments/{id}/refunds/{refundId}/resolution`.
//!
//! A refund whose outcome Finpay never told us (a lost answer, then a
//! refusal or a "duplicate" when it was sent again) stays pending with its
//! amount reserved: sending it again proves nothing. Someone asks Finpay
//! (its dashboard, its support) whether the refund was made, and records the
//! answer here with a note: `succeeded` keeps the amount as refunded (and
//! makes the payment `refunded` once its refunds cover it), `failed` frees
//! it. Who and why land in the audit trail before the refund is settled,
//! through the same write as Finpay's own answers.

use super::audit;
use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiPath};
use super::flags::check_note;
use super::model::RefundView;
use super::payments::find;
use crate::state::AppState;
use crate::store::{Payment, Refund, RefundOutcome};
use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Settled {
    /// Finpay made the refund.
    Succeeded,
    /// Finpay did not: the amount can be refunded again.
    Failed,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRefundRequest {
    /// What Finpay says became of the refund.
    pub outcome: Settled,
    /// How it was checked (1–1000 characters, not all blank, no control
    /// characters; stored trimmed).
    #[schema(
        example = "Finpay support: refund made on 7 Dec, their ref 88213",
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub note: String,
}

/// Settle a pending refund
///
/// For a refund whose outcome only Finpay knows: record what Finpay says
/// became of it. The note and the API key's name go to the payment's audit
/// trail; `refund.succeeded` or `refund.failed` is raised as for Finpay's own
/// answers.
#[utoipa::path(
    post,
    path = "/payments/{id}/refunds/{refundId}/resolution",
    tag = "refunds",
    request_body = ResolveRefundRequest,
    params(
        ("id" = String, Path, description = "Our id, or the partnerReferenceNo; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"),
        ("refundId" = String, Path, description = "The refund's id; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"),
    ),
    responses(
        (status = 200, description = "Settled: the refund as it now is", body = RefundView),
        (status = 400, description = "A control character in `id` or `refundId`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time (`api.body_timeout_ms`); the connection is closed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The refund is not pending, or is being sent to Finpay right now", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad `outcome` or `note`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn resolve_refund(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath((id, refund_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ResolveRefundRequest>,
) -> Result<Json<RefundView>, ApiError> {
    let note = check_note(&body.note).map_err(|m| ApiError::validation("note", m))?;
    ApiError::no_control_characters("refundId", &refund_id)?;
    let payment = find(&st, &id).await?;
    let stored = settle(&st, &payment, &refund_id, &caller.name, body.outcome, &note).await?;
    Ok(Json(RefundView::new(&stored, &payment.currency)))
}

/// Settles `payment`'s pending refund `refund_id` as Finpay says, on behalf
/// of `actor` (the API and the console): recorded first, then written as
/// Finpay's own answers are.
pub async fn settle(
    st: &AppState,
    payment: &Payment,
    refund_id: &str,
    actor: &str,
    outcome: Settled,
    note: &str,
) -> Result<Refund, ApiError> {
    let not_found = || {
        ApiError::new(axum::http::StatusCode::NOT_FOUND, "not-found", "Not found")
            .detail(format!("payment {} has no refund {refund_id:?}", payment.id))
            .payment(&payment.id)
    };
    let refund = st
        .store
        .get_refund(refund_id)
        .await?
        .filter(|r| r.payment_id == payment.id)
        .ok_or_else(not_found)?;
    let not_pending = |status: &str| {
        ApiError::conflict(
            "refund-not-pending",
            "Refund not pending",
            format!("the refund is {status}: there is nothing to settle"),
        )
        .payment(&payment.id)
        .refund(&refund.id)
    };
    if refund.status != "pending" {
        return Err(not_pending(&refund.status));
    }
    // Taken as a send is: no send to Finpay runs beside a person's word.
    let now = crate::store::now();
    let hold = now + chrono::Duration::seconds(30);
    let Some(send) = st.store.claim_refund_send(&refund.id, now, hold).await? else {
        return Err(match st.store.get_refund(&refund.id).await? {
            Some(r) if r.status != "pending" => not_pending(&r.status),
            _ => super::refunds::in_progress(&payment.id, &refund.id),
        });
    };
    let detail = serde_json::json!({"refundId": refund.id, "outcome": outcome, "note": note});
    audit::record(st, &payment.id, actor, "resolve_refund", detail).await?;
    let written = match outcome {
        Settled::Succeeded => RefundOutcome::Succeeded {
            reference_no: None,
            response_code: None,
            message: Some(format!("settled as succeeded by {actor}: {note}")),
        },
        Settled::Failed => RefundOutcome::Rejected {
            response_code: None,
            message: format!("settled as failed by {actor}: {note}"),
        },
    };
    Ok(st.store.complete_refund(&refund.id, send, &written).await?)
}
