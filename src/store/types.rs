//! Rows and values the store reads and writes.

use crate::domain::{Decision, Observation, PaymentStatus, Refusal};
use chrono::{DateTime, NaiveDate, Utc};

pub use crate::domain::Payment;

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
    pub next_check_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub status: Option<PaymentStatus>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Matches `partnerReferenceNo` or `referenceNo` exactly.
    pub reference: Option<String>,
    /// Exactly this amount (minor units).
    pub amount_minor: Option<i64>,
    /// `Some(true)`: only payments waiting for a person (`flagged` set);
    /// `Some(false)`: only those that are not.
    pub flagged: Option<bool>,
    /// Keyset cursor: ids sort by creation time (UUIDv7); newest first.
    pub before_id: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct PaymentEvent {
    pub id: i64,
    pub payment_id: String,
    pub kind: String,
    /// The stored notification a `notification` entry records.
    pub notification_id: Option<i64>,
    #[sqlx(json)]
    pub detail: serde_json::Value,
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

/// A notification's idempotency key: partner, `X-EXTERNAL-ID`, Jakarta day.
pub type NotificationKey<'a> = (&'a str, &'a str, NaiveDate);

/// The same key, owned: what both executors' maps of stored body hashes hold.
pub type StoredKey = (String, String, NaiveDate);

/// The id of a payment an executor creates at `at` (learnt from a
/// notification or a query answer), as stored.
pub(crate) fn new_payment_id(at: DateTime<Utc>) -> String {
    crate::domain::payment::new_id(at).to_string()
}

impl InboundNotification {
    pub fn key(&self) -> NotificationKey<'_> {
        (&self.partner_id, &self.external_id, self.jakarta_day)
    }

    pub fn stored_key(&self) -> StoredKey {
        (self.partner_id.clone(), self.external_id.clone(), self.jakarta_day)
    }

    /// The answer to this notification when its key is already stored with
    /// the body hash `stored`: the same body is a replay, another a conflict.
    pub fn replay_of(&self, stored: &[u8]) -> IngestOutcome {
        if stored == self.body_sha256.as_slice() {
            IngestOutcome::Duplicate
        } else {
            IngestOutcome::Conflict
        }
    }

    /// The detail of the notification's own audit entry.
    pub fn entry_detail(&self) -> serde_json::Value {
        serde_json::json!({
            "externalId": self.external_id,
            "latestTransactionStatus": self.observation.status.code(),
            "transactionStatusDesc": self.observation.status_desc,
            "verification": self.verification,
        })
    }

    /// The received headers, as the JSON they were recorded in.
    pub fn headers(&self) -> Result<&serde_json::value::RawValue, super::StoreError> {
        serde_json::from_str(&self.headers_json)
            .map_err(|e| super::StoreError::Invalid(format!("notification headers are not JSON: {e}")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// First delivery: stored, effect applied.
    Applied(Applied),
    /// Same key, same body: answered as the first time, no second effect.
    Duplicate,
    /// Same key, another body.
    Conflict,
    /// Names no payment and cannot create one; not stored.
    Refused(Refusal),
}

/// The effect of one observation on one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub payment_id: String,
    pub partner_reference_no: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    /// `generated` or `notification`, as in `payments.origin`.
    pub origin: String,
    pub created: bool,
    pub from: Option<PaymentStatus>,
    pub to: PaymentStatus,
    pub decision: Decision,
}

impl Applied {
    /// What an effect did, as the executors report it.
    pub fn of(e: &crate::domain::Effect) -> Self {
        Self {
            payment_id: e.payment.id.clone(),
            partner_reference_no: e.payment.partner_reference_no.clone(),
            amount_minor: e.payment.amount_minor,
            currency: e.payment.currency.clone(),
            origin: e.payment.origin.clone(),
            created: e.created(),
            from: e.from,
            to: e.payment.status,
            decision: e.decision.clone(),
        }
    }
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
