//! A payment as the service knows it: one row of `payments`.

use super::PaymentStatus;
use chrono::{DateTime, Utc};

/// QRIS payments are in rupiah: the only currency we create payments in.
pub const CURRENCY: &str = "IDR";

/// The id of a payment created at `created_at`: a UUIDv7 of that time, so
/// that lists in id order are in creation order, whichever path created it
/// (a payment learnt from a notification is created at its receipt, which
/// can be a batch earlier than it is stored).
pub fn new_id(created_at: DateTime<Utc>) -> uuid::Uuid {
    let seconds = u64::try_from(created_at.timestamp()).unwrap_or(0);
    let at = uuid::Timestamp::from_unix(uuid::NoContext, seconds, created_at.timestamp_subsec_nanos());
    uuid::Uuid::new_v7(at)
}

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

impl Payment {
    /// What can still be refunded: nothing unless paid, nothing of a payment
    /// Finpay reported in another currency than rupiah (flagged when learnt:
    /// QRIS moves rupiah only), nothing while flagged (a person decides
    /// first); pending refunds' reservations count as used.
    pub fn refundable_minor(&self) -> i64 {
        match self.status {
            PaymentStatus::Paid if self.currency == CURRENCY && self.flagged.is_none() => {
                (self.amount_minor - self.refunded_minor).max(0)
            }
            _ => 0,
        }
    }
}

fn ser_status<S: serde::Serializer>(s: &PaymentStatus, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_payment_id_carries_its_creation_time_so_ids_sort_as_creations() {
        let earlier = Utc.timestamp_millis_opt(1_796_000_000_123).unwrap();
        let later = earlier + chrono::Duration::milliseconds(1);
        let (a, b) = (new_id(earlier), new_id(later));
        let (seconds, nanos) = a.get_timestamp().unwrap().to_unix();
        assert_eq!((seconds, nanos / 1_000_000), (1_796_000_000, 123));
        assert!(a.to_string() < b.to_string());
    }
}
