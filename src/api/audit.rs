//! Who did what to a payment: every action a person takes (refund, refresh,
//! flag resolution) is recorded with the API key's name before it is
//! carried out; an action that cannot be recorded is not carried out.
//! `GET /payments/{id}/actions` lists them.

use super::error::{ApiError, Problem};
use super::extract::ApiPath;
use super::payments::find;
use crate::state::AppState;
use crate::store::PaymentAction;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionView {
    pub id: i64,
    /// `refund`, `refresh`, `resolve_flag`, `resolve_refund` or `resend_event`.
    #[schema(example = "refund")]
    pub action: String,
    /// The name of the API key that asked (never the key).
    #[schema(example = "finance")]
    pub actor: String,
    /// What was asked (amount, reason, note), as recorded.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    #[serde(serialize_with = "crate::api::time::millis")]
    pub created_at: DateTime<Utc>,
}

impl From<&PaymentAction> for ActionView {
    fn from(a: &PaymentAction) -> Self {
        Self {
            id: a.id,
            action: a.action.clone(),
            actor: a.actor.clone(),
            detail: a.detail.clone(),
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionList {
    pub items: Vec<ActionView>,
}

/// Who did what to a payment
///
/// The actions people asked for (refunds, refreshes, flag resolutions),
/// oldest first, with the name of the API key that asked. What each action
/// then did is in the payment's events.
#[utoipa::path(
    get,
    path = "/payments/{id}/actions",
    tag = "payments",
    params(("id" = String, Path, description = "Our id, or the partnerReferenceNo; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses(
        (status = 200, description = "The actions, oldest first", body = ActionList),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_actions(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ActionList>, ApiError> {
    let payment = find(&st, &id).await?;
    let actions = st.store.payment_actions(&payment.id).await?;
    Ok(Json(ActionList {
        items: actions.iter().map(ActionView::from).collect(),
    }))
}

pub async fn record(
    st: &AppState,
    payment_id: &str,
    actor: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    st.store.record_action(payment_id, actor, action, &detail).await?;
    tracing::info!(payment_id, actor, action, "action recorded");
    Ok(())
}
