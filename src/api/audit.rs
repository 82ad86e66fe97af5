//! Who did what to a payment: every action a person takes (refund, refresh,
//! flag resolution) is recorded with the API key's name before it is
//! carried out; an action that cannot be recorded is not carried out.

use super::error::ApiError;
use crate::state::AppState;

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
