//! Rows and values the store reads and writes.

use crate::domain::{Decision, Observation, PaymentStatus};
use chrono::{DateTime, NaiveDate, Utc};

impl TryFrom<String> for PaymentStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        PaymentStatus::parse(&s).ok_or_else(|| format!("unknown payment status {s:?}"))
    }
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Payment {
    pub id: String,
    pub partner_reference_no: Option<String>,
    pub reference_no: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    #[sqlx(try_from = "String")]
    #[serde(serialize_with = "ser_status")]
    pub status: PaymentStatus,
    /// `generated` (we asked Finpay for the QR) or `notification` (static QR).
    pub origin: String,
    pub qr_content: Option<String>,
    pub qr_url: Option<String>,
    pub note: Option<String>,
    pub valid_until: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub refunded_minor: i64,
    pub flagged: Option<String>,
    pub finpay_status: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub check_attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
}

fn ser_status<S: serde::Serializer>(s: &PaymentStatus, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

#[derive(Debug, Clone)]
pub struct NewPayment {
    pub id: String,
    pub partner_reference_no: String,
    pub amount_minor: i64,
    pub currency: String,
    pub note: Option<String>,
    pub valid_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct GeneratedQr {
    pub reference_no: Option<String>,
    pub qr_content: String,
    pub qr_url: Option<String>,
    pub valid_until: Option<DateTime<Utc>>,
    pub next_check_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub status: Option<PaymentStatus>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Matches `partnerReferenceNo` or `referenceNo` exactly.
    pub reference: Option<String>,
    /// Keyset cursor: ids sort by creation time (UUIDv7); newest first.
    pub before_id: Option<String>,
    pub limit: i64,
}

/// The detail of the `status_changed` event an observation's transition
/// writes, on every path that applies one (the differential tests compare them).
pub fn status_change_detail(from: PaymentStatus, to: PaymentStatus, by: &str, flag: Option<&str>) -> serde_json::Value {
    serde_json::json!({"from": from.as_str(), "to": to.as_str(), "by": by, "flag": flag})
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct PaymentEvent {
    pub id: i64,
    pub payment_id: String,
    pub kind: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

/// A verified notification, ready to be stored.
#[derive(Debug, Clone)]
pub struct InboundNotification {
    pub partner_id: String,
    pub external_id: String,
    pub jakarta_day: NaiveDate,
    pub body_sha256: Vec<u8>,
    pub raw_body: String,
    /// Received headers as JSON, without the bearer token.
    pub headers_json: String,
    /// How it was verified, e.g. `symmetric:hmac-sha512`.
    pub verification: String,
    pub received_at: DateTime<Utc>,
    pub observation: Observation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// First delivery: stored, effect applied.
    Applied(Applied),
    /// Same key, same body: answer as the first time, no second effect.
    Duplicate {
        response_code: String,
        response_message: String,
    },
    /// Same key, another body.
    Conflict,
}

/// The effect of one observation on one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub payment_id: String,
    pub created: bool,
    pub from: Option<PaymentStatus>,
    pub to: PaymentStatus,
    pub decision: Decision,
}

/// One reconciliation attempt's result, as the worker saw it.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Finpay's answer, when it gave a usable one.
    pub observation: Option<Observation>,
    pub response_code: Option<String>,
    /// `applied`, `unchanged`, `error: …`, etc., for the audit trail.
    pub outcome: String,
    /// When to ask again; `None` stops asking.
    pub next_check_at: Option<DateTime<Utc>>,
}
