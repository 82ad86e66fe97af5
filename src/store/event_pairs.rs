//! A notification's audit event and the status change it caused, stored as
//! one row and read as the two entries they are.
//!
//! The one-statement notify path on PostgreSQL (`postgres/speculative.rs`)
//! writes, for each notification it applies, a single `payment_events` row of
//! kind `notification` whose detail carries the status change under
//! [`PAIRED_STATUS_CHANGE`]. One row instead of two saves a heap tuple and two
//! index entries per notification, the largest piece of row work left on the
//! notify path that is not a rule of its own. Everything that reads a
//! payment's events reads them through [`expand_stored_events`], which shows
//! such a row as the notification (under the row's id) followed by the
//! `status_changed` entry (under id + 1, which migration 0009 keeps free), so
//! the audit trail, its order and its ids are what two rows would have given.
//! Every other path still writes two rows, and a database written before the
//! change holds only such rows; both forms read the same.

use super::PaymentEvent;
use crate::domain::ObservationSource;

/// The member of a `notification` event's detail that holds the status change
/// stored in the same row.
pub const PAIRED_STATUS_CHANGE: &str = "statusChanged";

/// The kind of the event a notification's status change is shown as.
const STATUS_CHANGED: &str = "status_changed";

/// The entries the stored rows stand for, in the rows' order: each row as it
/// is, except a notification stored with its status change, which becomes the
/// two entries it would have been written as.
pub fn expand_stored_events(rows: Vec<PaymentEvent>) -> Vec<PaymentEvent> {
    let mut out = Vec::with_capacity(rows.len() * 2);
    for row in rows {
        match split_pair(&row) {
            Some((notification, change)) => {
                let change = PaymentEvent {
                    id: row.id + 1,
                    payment_id: row.payment_id.clone(),
                    kind: STATUS_CHANGED.to_string(),
                    detail: change,
                    created_at: row.created_at,
                };
                out.push(PaymentEvent {
                    detail: notification,
                    ..row
                });
                out.push(change);
            }
            None => out.push(row),
        }
    }
    out
}

/// The notification's own detail and the status change's, if `row` holds both.
fn split_pair(row: &PaymentEvent) -> Option<(String, String)> {
    // Only the notify path writes pairs, and only as `notification` events;
    // the text test spares parsing every other row.
    if row.kind != ObservationSource::Notification.as_str() || !row.detail.contains(PAIRED_STATUS_CHANGE) {
        return None;
    }
    let serde_json::Value::Object(mut detail) = serde_json::from_str(&row.detail).ok()? else {
        return None;
    };
    let change = detail.remove(PAIRED_STATUS_CHANGE)?;
    if !change.is_object() {
        return None;
    }
    Some((serde_json::Value::Object(detail).to_string(), change.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn row(id: i64, kind: &str, detail: Value) -> PaymentEvent {
        PaymentEvent {
            id,
            payment_id: "pay-1".into(),
            kind: kind.into(),
            detail: detail.to_string(),
            created_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    fn shown(events: &[PaymentEvent]) -> Vec<(i64, String, Value)> {
        events
            .iter()
            .map(|e| (e.id, e.kind.clone(), serde_json::from_str(&e.detail).unwrap()))
            .collect()
    }

    #[test]
    fn a_paired_row_reads_as_the_notification_then_its_status_change() {
        let change = json!({"from": "pending", "to": "paid", "by": "notification", "flag": null});
        let rows = vec![
            row(10, "created", json!({"amount": "10000.00"})),
            row(
                12,
                "notification",
                json!({"notificationId": 7, "externalId": "E1", "statusChanged": change}),
            ),
            row(14, "query", json!({"status": "00"})),
        ];
        assert_eq!(
            shown(&expand_stored_events(rows)),
            vec![
                (10, "created".into(), json!({"amount": "10000.00"})),
                (
                    12,
                    "notification".into(),
                    json!({"notificationId": 7, "externalId": "E1"})
                ),
                (13, "status_changed".into(), change),
                (14, "query".into(), json!({"status": "00"})),
            ]
        );
    }

    #[test]
    fn both_entries_of_a_pair_keep_the_rows_payment_and_time() {
        let rows = vec![row(
            4,
            "notification",
            json!({"notificationId": 1, "statusChanged": {"to": "paid"}}),
        )];
        let out = expand_stored_events(rows.clone());
        assert_eq!(out.len(), 2);
        for e in &out {
            assert_eq!(e.payment_id, rows[0].payment_id);
            assert_eq!(e.created_at, rows[0].created_at);
        }
    }

    #[test]
    fn rows_written_as_two_read_unchanged() {
        let rows = vec![
            row(1, "notification", json!({"notificationId": 1, "externalId": "E1"})),
            row(2, "status_changed", json!({"from": "pending", "to": "paid"})),
            // A status change that is not a pair's member is an ordinary row.
            row(3, "status_changed", json!({"statusChanged": {"to": "paid"}})),
            // Text that merely mentions the member's name is not a pair.
            row(4, "notification", json!({"transactionStatusDesc": "statusChanged"})),
        ];
        assert_eq!(shown(&expand_stored_events(rows.clone())), shown(&rows));
    }
}
