//! Storage for the operators' state gauges: a few counts read on a timer by
//! one task (`metrics::state`), each served by an index (`payments_by_status`
//! for open payments, `payments_flagged` for flagged ones), so the cost does
//! not grow with the history of settled payments.

use super::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Upper bounds (exclusive) of the open-payment age buckets, in seconds,
/// with their labels; the last bucket is everything older.
pub const OPEN_AGE_BUCKETS: [(&str, Option<i64>); 4] = [
    ("under_5m", Some(300)),
    ("5m_to_1h", Some(3_600)),
    ("1h_to_24h", Some(86_400)),
    ("over_24h", None),
];

/// What the state gauges show, as read at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentGauges {
    /// Open payments per [`OPEN_AGE_BUCKETS`] entry, in that order.
    pub open_by_age: [i64; 4],
    /// Payments flagged for a person.
    pub flagged: i64,
    /// When the longest-waiting flagged payment last changed.
    pub oldest_flagged: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait OpsStore: Send + Sync + 'static {
    async fn payment_gauges(&self, now: DateTime<Utc>) -> Result<PaymentGauges>;
}

macro_rules! sql_ops_store {
    ($Store:ident) => {
        #[async_trait::async_trait]
        impl crate::store::OpsStore for $Store {
            async fn payment_gauges(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> crate::store::Result<crate::store::PaymentGauges> {
                use crate::store::ops_store::OPEN_AGE_BUCKETS;
                let before = |secs: Option<i64>| secs.map(|s| now - chrono::Duration::seconds(s));
                let sql = Self::sql_owned(format!(
                    "SELECT COUNT(CASE WHEN created_at > $1 THEN 1 END), \
                            COUNT(CASE WHEN created_at <= $1 AND created_at > $2 THEN 1 END), \
                            COUNT(CASE WHEN created_at <= $2 AND created_at > $3 THEN 1 END), \
                            COUNT(CASE WHEN created_at <= $3 THEN 1 END) \
                     FROM payments WHERE status IN {}",
                    crate::domain::PaymentStatus::OPEN_SQL
                ));
                let open: (i64, i64, i64, i64) = sqlx::query_as(&sql)
                    .bind(before(OPEN_AGE_BUCKETS[0].1))
                    .bind(before(OPEN_AGE_BUCKETS[1].1))
                    .bind(before(OPEN_AGE_BUCKETS[2].1))
                    .fetch_one(&self.pool)
                    .await?;
                let (flagged, oldest_flagged): (i64, Option<chrono::DateTime<chrono::Utc>>) =
                    sqlx::query_as("SELECT COUNT(*), MIN(updated_at) FROM payments WHERE flagged IS NOT NULL")
                        .fetch_one(&self.pool)
                        .await?;
                Ok(crate::store::PaymentGauges {
                    open_by_age: [open.0, open.1, open.2, open.3],
                    flagged,
                    oldest_flagged,
                })
            }
        }
    };
}

pub(crate) use sql_ops_store;
