//! A payment as the service knows it: one row of `payments`.

use super::PaymentStatus;
use chrono::{DateTime, Utc};

/// QRIS payments are in rupiah: the only currency we create payments in.
pub const CURRENCY: &str = "IDR";

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
