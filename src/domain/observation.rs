//! What Finpay said about a payment, from a notification or a query.

use crate::snap::notify::{Amount, NotifyBody, TransactionStatus};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationSource {
    Notification,
    Query,
}

impl ObservationSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "notification",
            Self::Query => "query",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Observation {
    pub source: ObservationSource,
    pub original_reference_no: Option<String>,
    pub original_partner_reference_no: Option<String>,
    pub status: TransactionStatus,
    pub status_desc: Option<String>,
    pub amount: Option<Amount>,
    pub paid_time: Option<String>,
}

impl Observation {
    pub fn from_notification(n: &NotifyBody) -> Self {
        Self {
            source: ObservationSource::Notification,
            original_reference_no: Some(n.original_reference_no.clone()),
            original_partner_reference_no: n.original_partner_reference_no.clone(),
            status: n.latest_transaction_status,
            status_desc: n.transaction_status_desc.clone(),
            amount: Some(n.amount.clone()),
            paid_time: n.paid_time.clone(),
        }
    }
}

impl Observation {
    /// When the payment was paid: Finpay's `paidTime` when it gives a readable
    /// one, else `now` (when we learnt it). Never later than `now`: a payment
    /// is not paid after we heard of it, whatever the two clocks say; nor
    /// before `created` (`paidTime` has whole seconds, and a payment learnt
    /// from this observation is created `now`). A leap second (`:60`) is read
    /// as the next second, as both backends store it.
    pub fn paid_at(&self, created: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        let paid = self
            .paid_time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| DateTime::from_timestamp_millis(t.timestamp_millis()))
            .map_or(now, |t| t.min(now));
        paid.max(created)
    }
}
