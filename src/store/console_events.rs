//! Reads of the console's endpoint pages: an endpoint's latest deliveries,
//! each with its event, and their attempts. A supertrait of
//! [`Store`](super::Store); the SQL is shared by both backends.
//!
//! The latest deliveries are read per status along `deliveries_by_endpoint`
//! (`endpoint_id, status, created_at`), newest first and limited, then
//! merged: an endpoint with millions of deliveries costs what one with a
//! few does.

use super::events::{Attempt, Delivery};
use super::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A delivery with what the page says of its event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointDelivery {
    #[sqlx(flatten)]
    pub delivery: Delivery,
    pub event_type: String,
    pub payment_id: Option<String>,
    pub event_created_at: DateTime<Utc>,
}

#[async_trait]
pub trait ConsoleEventStore: Send + Sync + 'static {
    /// The endpoint's `limit` latest deliveries, newest first, and their
    /// attempts, oldest first.
    async fn endpoint_deliveries(&self, endpoint_id: &str, limit: i64)
        -> Result<(Vec<EndpointDelivery>, Vec<Attempt>)>;
}

/// The ids of an endpoint's `$2` latest deliveries (`$1`), per status.
pub(crate) const LATEST: &str =
    "SELECT id FROM (SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'pending' \
     ORDER BY created_at DESC LIMIT $2) p \
     UNION ALL SELECT id FROM (SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'failed' \
     ORDER BY created_at DESC LIMIT $2) f \
     UNION ALL SELECT id FROM (SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'succeeded' \
     ORDER BY created_at DESC LIMIT $2) s";

macro_rules! sql_console_event_store {
    ($Store:ident) => {
        const _: () = {
            use crate::store::console_events::{ConsoleEventStore, EndpointDelivery, LATEST};
            use crate::store::events::Attempt;

            #[async_trait::async_trait]
            impl ConsoleEventStore for $Store {
                async fn endpoint_deliveries(
                    &self,
                    endpoint_id: &str,
                    limit: i64,
                ) -> crate::store::Result<(Vec<EndpointDelivery>, Vec<Attempt>)> {
                    let limit = limit.clamp(1, 500);
                    let deliveries: Vec<EndpointDelivery> = sqlx::query_as(&Self::sql_owned(format!(
                        "SELECT d.id, d.event_id, d.endpoint_id, d.status, d.attempts, d.next_attempt_at, \
                         d.created_at, d.updated_at, e.type AS event_type, e.payment_id, \
                         e.created_at AS event_created_at \
                         FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id IN ({LATEST}) \
                         ORDER BY d.created_at DESC, d.id DESC LIMIT $2"
                    )))
                    .bind(endpoint_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    let attempts = sqlx::query_as(&Self::sql_owned(format!(
                        "SELECT delivery_id, attempted_at, status_code, error, latency_ms, response_excerpt \
                         FROM delivery_attempts WHERE delivery_id IN ({LATEST}) ORDER BY id"
                    )))
                    .bind(endpoint_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok((deliveries, attempts))
                }
            }
        };
    };
}
pub(crate) use sql_console_event_store;
