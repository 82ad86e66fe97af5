//! The event as sent: Standard Webhooks' `{"type", "timestamp", "data"}`,
//! where `data` is the payment as `GET /api/v1/payments/{id}` shows it (the
//! API's own representation), plus what caused the event and its per-payment
//! `sequence`. Built once, in the transaction of the change, and stored as
//! the exact bytes every attempt sends.

use crate::api::model::{PaymentView, RefundView};
use crate::domain::{Cause, EventType};
use crate::store::{Payment, Refund};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// An event row, ready to be inserted.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Sent as `webhook-id`: consumers deduplicate on it.
    pub id: String,
    pub event_type: EventType,
    pub payment_id: Option<String>,
    pub sequence: Option<i64>,
    pub cause: Cause,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

pub fn new_event_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

/// An event about a payment in the state `p` (after the change).
pub fn payment_event(
    event_type: EventType,
    p: &Payment,
    cause: Cause,
    sequence: i64,
    at: DateTime<Utc>,
    refund: Option<&Refund>,
) -> NewEvent {
    let mut data = match serde_json::to_value(PaymentView::from(p)) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    data.insert("cause".into(), cause.as_str().into());
    data.insert("sequence".into(), sequence.into());
    if let Some(r) = refund {
        data.insert(
            "refund".into(),
            serde_json::to_value(RefundView::new(r, &p.currency)).unwrap_or(Value::Null),
        );
    }
    NewEvent {
        id: new_event_id(),
        event_type,
        payment_id: Some(p.id.clone()),
        sequence: Some(sequence),
        cause,
        body: body(event_type, at, Value::Object(data)),
        created_at: at,
    }
}

/// `endpoint.disabled`: the endpoint failed without a success since `failing_since`.
pub fn endpoint_disabled(endpoint_id: &str, reason: &str, failing_since: DateTime<Utc>, at: DateTime<Utc>) -> NewEvent {
    let data = json!({
        "endpointId": endpoint_id,
        "reason": reason,
        "failingSince": failing_since.to_rfc3339_opts(SecondsFormat::Millis, true),
        "cause": Cause::Worker.as_str(),
    });
    NewEvent {
        id: new_event_id(),
        event_type: EventType::EndpointDisabled,
        payment_id: None,
        sequence: None,
        cause: Cause::Worker,
        body: body(EventType::EndpointDisabled, at, data),
        created_at: at,
    }
}

fn body(event_type: EventType, at: DateTime<Utc>, data: Value) -> String {
    json!({
        "type": event_type.as_str(),
        "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string()
}
