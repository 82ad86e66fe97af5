//! What the API answers: payments, refunds and events as JSON (camelCase,
//! amounts as decimal strings, times in RFC 3339 UTC).

use super::money::render;
use crate::domain::PaymentStatus;
use crate::store::{Payment, PaymentEvent, Refund};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A payment's status. Open: `initiated`, `pending`, `paying`; final: the rest
/// (`paid` may still become `refunded`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = PaymentStatus)]
pub enum Status {
    Initiated,
    Pending,
    Paying,
    Paid,
    Refunded,
    Cancelled,
    Failed,
    Expired,
}

impl From<PaymentStatus> for Status {
    fn from(s: PaymentStatus) -> Self {
        match s {
            PaymentStatus::Initiated => Self::Initiated,
            PaymentStatus::Pending => Self::Pending,
            PaymentStatus::Paying => Self::Paying,
            PaymentStatus::Paid => Self::Paid,
            PaymentStatus::Refunded => Self::Refunded,
            PaymentStatus::Cancelled => Self::Cancelled,
            PaymentStatus::Failed => Self::Failed,
            PaymentStatus::Expired => Self::Expired,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    /// Our id (UUIDv7: sorts by creation time).
    #[schema(example = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    /// The merchant's reference sent to Finpay.
    pub partner_reference_no: Option<String>,
    /// Finpay's reference.
    pub reference_no: Option<String>,
    pub status: Status,
    #[schema(example = "10000.00")]
    pub amount: String,
    #[schema(example = "IDR")]
    pub currency: String,
    /// Refunded or being refunded (pending refunds included).
    #[schema(example = "0.00")]
    pub refunded_amount: String,
    /// What can still be refunded (zero unless `paid`, in IDR and not flagged).
    #[schema(example = "0.00")]
    pub refundable_amount: String,
    /// `generated` (through this API) or `notification` (static QR).
    pub origin: String,
    /// The QRIS payload to show as a QR code (also at `qr.svg` / `qr.png`).
    pub qr_content: Option<String>,
    pub qr_url: Option<String>,
    pub note: Option<String>,
    #[serde(serialize_with = "crate::api::time::opt_millis")]
    pub valid_until: Option<DateTime<Utc>>,
    /// When Finpay says it was paid (its `paidTime`), else when we learnt it; never
    /// before `createdAt` (a payment learnt from a notification: when it arrived).
    #[serde(serialize_with = "crate::api::time::opt_millis")]
    pub paid_at: Option<DateTime<Utc>>,
    /// Set when something needs a person (amount mismatch, paid after expiry).
    pub flagged: Option<String>,
    /// Finpay's last `latestTransactionStatus`.
    pub finpay_status: Option<String>,
    #[serde(serialize_with = "crate::api::time::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::api::time::millis")]
    pub updated_at: DateTime<Utc>,
    /// When the reconciliation worker asks Finpay next (open payments).
    #[serde(serialize_with = "crate::api::time::opt_millis")]
    pub next_check_at: Option<DateTime<Utc>>,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id.clone(),
            partner_reference_no: p.partner_reference_no.clone(),
            reference_no: p.reference_no.clone(),
            status: p.status.into(),
            amount: render(p.amount_minor),
            currency: p.currency.clone(),
            refunded_amount: render(p.refunded_minor),
            refundable_amount: render(p.refundable_minor()),
            origin: p.origin.clone(),
            qr_content: p.qr_content.clone(),
            qr_url: p.qr_url.clone(),
            note: p.note.clone(),
            valid_until: p.valid_until,
            paid_at: p.paid_at,
            flagged: p.flagged.clone(),
            finpay_status: p.finpay_status.clone(),
            created_at: p.created_at,
            updated_at: p.updated_at,
            next_check_at: p.next_check_at,
        }
    }
}

/// One page of payments, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPage {
    pub items: Vec<PaymentView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RefundStatus {
    /// Asked; Finpay's answer is not known yet (the amount stays reserved).
    Pending,
    Succeeded,
    /// Finpay refused it; the amount is refundable again.
    Failed,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    pub id: String,
    pub payment_id: String,
    pub partner_refund_no: String,
    #[schema(example = "2500.00")]
    pub amount: String,
    #[schema(example = "IDR")]
    pub currency: String,
    pub reason: String,
    pub status: RefundStatus,
    /// Finpay's reference of the refund.
    pub reference_no: Option<String>,
    /// Finpay's SNAP `responseCode` for the refund.
    pub response_code: Option<String>,
    #[serde(serialize_with = "crate::api::time::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::api::time::millis")]
    pub updated_at: DateTime<Utc>,
}

impl RefundView {
    pub fn new(r: &Refund, currency: &str) -> Self {
        let status = match r.status.as_str() {
            "succeeded" => RefundStatus::Succeeded,
            "failed" => RefundStatus::Failed,
            _ => RefundStatus::Pending,
        };
        Self {
            id: r.id.clone(),
            payment_id: r.payment_id.clone(),
            partner_refund_no: r.partner_refund_no.clone(),
            amount: render(r.amount_minor),
            currency: currency.to_string(),
            reason: r.reason.clone(),
            status,
            reference_no: r.reference_no.clone(),
            response_code: r.response_code.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundList {
    pub items: Vec<RefundView>,
}

/// One entry of a payment's audit trail.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub id: i64,
    /// `created`, `generated`, `notification`, `query`, `status_changed`,
    /// `flagged`, `ignored`, `flag_resolved`, `refund_requested`, `refund_succeeded`, …
    #[schema(example = "status_changed")]
    pub kind: String,
    /// What happened, as recorded (JSON object).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// For a `notification` entry: the stored notification it records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<i64>,
    #[serde(serialize_with = "crate::api::time::millis")]
    pub created_at: DateTime<Utc>,
}

impl From<&PaymentEvent> for EventView {
    fn from(e: &PaymentEvent) -> Self {
        Self {
            id: e.id,
            kind: e.kind.clone(),
            detail: e.detail.clone(),
            notification_id: e.notification_id,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub items: Vec<EventView>,
}
