//! Payments waiting for a person: `POST /payments/{id}/flag-resolution`.
//!
//! A payment is flagged when what Finpay said contradicts it (amount,
//! references) or a success arrives after a final failure; the status was
//! left as it was. Someone looks, decides, and resolves the flag with a
//! note: the flag is cleared and the note, the flag's reason and who
//! resolved it land in the payment's audit trail, in one transaction.
//! `GET /payments?flagged=true` lists what is waiting.

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiPath};
use super::model::PaymentView;
use super::payments::find;
use crate::state::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::ToSchema;

/// The longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveFlagRequest {
    /// What was checked and decided (1–1000 characters, not all blank, no
    /// control characters; stored trimmed).
    #[schema(
        example = "Customer showed the bank receipt; amount confirmed with Finpay support",
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub note: String,
}

/// The note as stored, or why it cannot be.
pub fn check_note(note: &str) -> Result<String, String> {
    let trimmed = note.trim();
    if trimmed.is_empty() || note.chars().count() > MAX_NOTE_CHARS || note.chars().any(char::is_control) {
        return Err(format!("1 to {MAX_NOTE_CHARS} characters, no control characters"));
    }
    Ok(trimmed.to_string())
}

/// Resolve a payment's flag
///
/// Clears the flag and records the note, the flag's reason and the API
/// key's name in the audit trail. The payment's status is not changed.
#[utoipa::path(
    post,
    path = "/payments/{id}/flag-resolution",
    tag = "payments",
    request_body = ResolveFlagRequest,
    params(("id" = String, Path, description = "Our id, or the partnerReferenceNo; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses(
        (status = 200, description = "Resolved: the payment, no longer flagged", body = PaymentView),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive in time (`api.body_timeout_ms`); the connection is closed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payment is not flagged (never was, or already resolved)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad `note`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn resolve_flag(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ResolveFlagRequest>,
) -> Result<Json<PaymentView>, ApiError> {
    let note = check_note(&body.note).map_err(|m| ApiError::validation("note", m))?;
    let payment = find(&st, &id).await?;
    resolve(&st, &payment.id, &caller.name, &note).await.map(Json)
}

/// Resolves the flag of the payment with id `payment_id` on behalf of `actor`.
pub async fn resolve(st: &AppState, payment_id: &str, actor: &str, note: &str) -> Result<PaymentView, ApiError> {
    match st.store.resolve_flag(payment_id, actor, note).await? {
        Some(p) => {
            tracing::info!(payment_id = %p.id, actor, "flag resolved");
            Ok(PaymentView::from(&p))
        }
        None => Err(ApiError::conflict(
            "payment-not-flagged",
            "Payment not flagged",
            "this payment is not waiting for anyone: it was never flagged, or its flag was resolved already",
        )
        .payment(payment_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_trimmed_and_must_say_something_printable() {
        assert!(check_note("checked\nwith Finpay").unwrap_err().contains("control"));
        assert_eq!(check_note("  checked with Finpay  ").unwrap(), "checked with Finpay");
        assert!(check_note("   ").is_err());
        assert!(check_note(&"x".repeat(MAX_NOTE_CHARS + 1)).is_err());
        assert!(check_note(&"x".repeat(MAX_NOTE_CHARS)).is_ok());
    }
}
