//! The body of `POST /api/v1/payments/{id}/refunds`, its validation into a
//! [`RefundSpec`] whose errors name the field at fault, and the refusals a
//! refund meets before Finpay is asked (judged again under a lock when the
//! amount is reserved).

use super::error::ApiError;
use super::money::parse_positive;
use super::payment_request::check_reference;
use crate::domain::PaymentStatus;
use crate::store::Payment;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRefundRequest {
    /// The amount to refund (all or part of what is left), as a decimal
    /// string like a payment's amount.
    #[schema(example = "2500.00")]
    pub amount: String,
    /// Why; sent to Finpay (1–256 characters, not all blank, no control
    /// characters; stored trimmed).
    #[schema(
        example = "Item out of stock",
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub reason: String,
    /// Your reference for the refund (1–64 of `A-Z a-z 0-9 - _`); generated
    /// when absent. Reusing it returns the same refund.
    #[schema(
        example = "RF-2024-000045",
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_-]{1,64}$"
    )]
    pub partner_refund_no: Option<String>,
}

/// A refund request, checked: what the refund path works with.
pub(super) struct RefundSpec {
    pub(super) amount_minor: i64,
    pub(super) reason: String,
    pub(super) partner_refund_no: Option<String>,
}

impl RefundSpec {
    pub(super) fn parse(r: CreateRefundRequest) -> Result<Self, ApiError> {
        let amount_minor = parse_positive(&r.amount).map_err(|m| ApiError::validation("amount", m))?;
        // Counted as sent, so that the limit is the one the schema states.
        let count = r.reason.chars().count();
        let reason = r.reason.trim().to_string();
        if reason.is_empty() || count > 256 || r.reason.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "reason",
                "1 to 256 characters, no control characters",
            ));
        }
        if let Some(no) = &r.partner_refund_no {
            check_reference(no).map_err(|m| ApiError::validation("partnerRefundNo", m))?;
        }
        Ok(Self {
            amount_minor,
            reason,
            partner_refund_no: r.partner_refund_no,
        })
    }

    /// What the audit trail records of the ask (the amount as the API writes amounts).
    pub(super) fn audit_detail(&self) -> serde_json::Value {
        json!({
            "amount": super::money::render(self.amount_minor),
            "reason": self.reason,
            "partnerRefundNo": self.partner_refund_no,
        })
    }

    pub(super) fn canonical(&self) -> serde_json::Value {
        json!({"amount": self.amount_minor, "reason": self.reason, "partnerRefundNo": self.partner_refund_no})
    }
}

pub(super) fn not_refundable(payment_id: &str, status: &str) -> ApiError {
    ApiError::conflict(
        "payment-not-refundable",
        "Payment not refundable",
        format!("only paid payments can be refunded; this one is {status}"),
    )
    .payment(payment_id)
}

/// 409: a person must look at the payment first (`reason`, its flag).
pub(super) fn flagged(payment_id: &str, reason: &str) -> ApiError {
    ApiError::conflict(
        "payment-flagged",
        "Payment flagged",
        format!(
            "this payment waits for a person ({reason}); settle it with Finpay and resolve its flag \
             (POST /payments/{{id}}/flag-resolution) before refunding it"
        ),
    )
    .payment(payment_id)
}

pub(super) fn not_in_rupiah(payment_id: &str, currency: &str) -> ApiError {
    ApiError::conflict(
        "payment-not-refundable",
        "Payment not refundable",
        format!("QRIS refunds are in IDR; Finpay reported this payment in {currency} (see its flag)"),
    )
    .payment(payment_id)
}

pub(super) fn exceeds_refundable(payment_id: &str, refundable_minor: i64) -> ApiError {
    ApiError::conflict(
        "refund-exceeds-refundable",
        "Refund exceeds the refundable amount",
        format!(
            "at most {} can still be refunded",
            super::money::render(refundable_minor.max(0))
        ),
    )
    .field("amount")
    .payment(payment_id)
}

/// What a refund would be refused for before Finpay is asked, judged on the
/// payment as read (the reservation judges it again under a lock): lets the
/// console refuse before asking for a confirmation.
pub fn precheck(p: &Payment, request: &CreateRefundRequest) -> Result<(), ApiError> {
    let spec = RefundSpec::parse(request.clone())?;
    if p.status != PaymentStatus::Paid {
        return Err(not_refundable(&p.id, p.status.as_str()));
    }
    if let Some(reason) = &p.flagged {
        return Err(flagged(&p.id, reason));
    }
    if spec.amount_minor > p.refundable_minor() {
        return Err(exceeds_refundable(&p.id, p.refundable_minor()));
    }
    Ok(())
}
