//! The outbox's writes, shared by both backends (same conventions as
//! `sql.rs`): what every path changing a payment calls inside its own
//! transaction. `raise` numbers a payment's events (the caller holds its row
//! lock) and builds their bodies; `write_events` inserts them, each with a
//! delivery to every endpoint subscribed to its type (a disabled endpoint's
//! waits, parked with no next attempt, until it is enabled again).

/// A payment's last event number.
pub(crate) const LAST_SEQUENCE: &str = "SELECT MAX(sequence) FROM events WHERE payment_id = $1";

/// The events `types` about `payment` (as it is after the change), numbered
/// on from its last event number (`last`, read under its row lock).
pub(crate) fn numbered_events(
    payment: &crate::store::Payment,
    types: &[crate::domain::EventType],
    last: Option<i64>,
    cause: crate::domain::Cause,
    at: chrono::DateTime<chrono::Utc>,
    refund: Option<&crate::store::Refund>,
) -> Vec<crate::events::payload::NewEvent> {
    let first = last.unwrap_or(0) + 1;
    types
        .iter()
        .zip(first..)
        .map(|(t, sequence)| crate::events::payload::payment_event(*t, payment, cause, sequence, at, refund))
        .collect()
}

/// An event; `feed` is the store's column and value for its place in the
/// changes feed (`FEED_COLUMN`, `FEED_VALUE`).
pub(crate) fn insert_event_sql(feed: (&str, &str)) -> String {
    format!(
        "INSERT INTO events (id, type, payment_id, sequence, cause, body, created_at{}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7{})",
        feed.0, feed.1
    )
}

/// An event's deliveries (`$1` the event, `$2` its type, `$3` the time): one
/// to every endpoint subscribed to its type. `lock` is the store's
/// `ENDPOINT_KEY_SHARE`.
pub(crate) fn fan_out_sql(lock: &str) -> String {
    format!(
        "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at) \
         SELECT $1, w.id, 'pending', 0, CASE WHEN w.enabled THEN $3 END, $3, $3 \
         FROM webhook_endpoints w WHERE {}{lock}",
        crate::store::events::subscribed("$2")
    )
}

macro_rules! sql_outbox {
    ($Store:ident, $Db:ty) => {
        const _: () = {
            use crate::domain::{Cause, EventType};
            use crate::events::payload::NewEvent;
            use crate::store::{Payment, Refund};
            use chrono::{DateTime, Utc};

            impl $Store {
                /// The events `types` about `payment` (as it is after the change), written
                /// with their deliveries in the caller's transaction.
                pub(crate) async fn raise(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    payment: &Payment,
                    types: &[EventType],
                    cause: Cause,
                    at: DateTime<Utc>,
                    refund: Option<&Refund>,
                ) -> crate::store::Result<()> {
                    if types.is_empty() {
                        return Ok(());
                    }
                    let last: Option<i64> = sqlx::query_scalar(&Self::sql(crate::store::sql_outbox::LAST_SEQUENCE))
                        .bind(&payment.id)
                        .fetch_one(&mut **tx)
                        .await?;
                    let events = crate::store::sql_outbox::numbered_events(payment, types, last, cause, at, refund);
                    Self::write_events(tx, &events).await
                }

                pub(crate) async fn write_events(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    events: &[NewEvent],
                ) -> crate::store::Result<()> {
                    let insert = Self::sql_owned(crate::store::sql_outbox::insert_event_sql((
                        Self::FEED_COLUMN,
                        Self::FEED_VALUE,
                    )));
                    let fan_out = Self::sql_owned(crate::store::sql_outbox::fan_out_sql(Self::ENDPOINT_KEY_SHARE));
                    for e in events {
                        sqlx::query(&insert)
                            .bind(&e.id)
                            .bind(e.event_type.as_str())
                            .bind(e.payment_id.as_deref())
                            .bind(e.sequence)
                            .bind(e.cause.as_str())
                            .bind(&e.body)
                            .bind(e.created_at)
                            .execute(&mut **tx)
                            .await?;
                        sqlx::query(&fan_out)
                            .bind(&e.id)
                            .bind(e.event_type.as_str())
                            .bind(e.created_at)
                            .execute(&mut **tx)
                            .await?;
                    }
                    Ok(())
                }
            }
        };
    };
}

pub(crate) use sql_outbox;
