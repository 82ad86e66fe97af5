//! What the event and webhook-endpoint routes take and answer.

use crate::store::endpoints::Endpoint;
use crate::store::events::{Attempt, Delivery, StoredEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An event type.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = EventType)]
pub enum EventTypeName {
    #[serde(rename = "payment.pending")]
    PaymentPending,
    #[serde(rename = "payment.paid")]
    PaymentPaid,
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    #[serde(rename = "payment.expired")]
    PaymentExpired,
    #[serde(rename = "payment.cancelled")]
    PaymentCancelled,
    #[serde(rename = "payment.refunded")]
    PaymentRefunded,
    #[serde(rename = "payment.flagged")]
    PaymentFlagged,
    #[serde(rename = "payment.flag_resolved")]
    PaymentFlagResolved,
    #[serde(rename = "refund.pending")]
    RefundPending,
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
    #[serde(rename = "refund.failed")]
    RefundFailed,
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled,
}

/// A webhook endpoint (its secret is shown only when created or rotated).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Subscribed event types; empty: every type.
    #[schema(value_type = Vec<EventTypeName>)]
    pub event_types: Vec<String>,
    /// `api`, or `config` for the endpoint FINPAY_QRIS__EVENTS__ENDPOINT_URL names.
    pub source: String,
    pub enabled: bool,
    /// Why it is disabled: by whom (an API key's name), or for failing too long.
    pub disabled_reason: Option<String>,
    /// Until when the previous secret still signs alongside, after a rotation.
    #[serde(serialize_with = "crate::api::time::opt_millis")]
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// The first failed attempt since the last success.
    #[serde(serialize_with = "crate::api::time::opt_millis")]
    pub failing_since: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::api::time::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::api::time::millis")]
    pub updated_at: DateTime<Utc>,
}

impl From<&Endpoint> for EndpointView {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            source: e.source.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            previous_secret_until: e.previous_secret_until,
            failing_since: e.failing_since,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// Standard Webhooks secret (`whsec_` + base64): verify `webhook-signature` with it.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub items: Vec<EndpointView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// Where events are POSTed. `https` to a public address; `http`, and
    /// loopback, link-local or private addresses, are refused (422) unless
    /// the configuration allows them (`events.allow_http`,
    /// `events.allow_private_networks`).
    #[schema(
        example = "https://orders.example.com/finpay-events",
        max_length = 2048,
        pattern = "^https?://(([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?|(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?(\\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$"
    )]
    pub url: String,
    /// Event types to receive; absent or empty: every type.
    #[serde(default)]
    #[schema(example = json!(["payment.paid", "payment.expired"]), value_type = Option<Vec<EventTypeName>>)]
    pub event_types: Option<Vec<String>>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    /// As when creating the endpoint; the endpoint from the configuration
    /// keeps `FINPAY_QRIS__EVENTS__ENDPOINT_URL` (409).
    #[schema(
        max_length = 2048,
        pattern = "^https?://(([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?|(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?(\\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$"
    )]
    pub url: Option<String>,
    /// Replaces the subscribed types; empty: every type.
    #[schema(value_type = Option<Vec<EventTypeName>>)]
    pub event_types: Option<Vec<String>>,
    /// The new description; `null` removes it.
    #[schema(value_type = Option<String>, max_length = 500)]
    #[serde(default, deserialize_with = "super::extract::nullable")]
    pub description: Option<Option<String>>,
    /// `false` disables the endpoint (its deliveries wait); `true` enables it again.
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the previous secret keeps signing alongside, in seconds
    /// (0 to 604800); absent: `events.rotation_overlap_secs`.
    #[schema(minimum = 0, maximum = 604800)]
    #[serde(default, deserialize_with = "super::extract::whole_number")]
    pub previous_secret_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResendFailedRequest {
    /// Resend failed deliveries of events created at or after this time (RFC 3339).
    #[schema(format = DateTime)]
    pub since: String,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResendRequest {
    /// Only to this endpoint (which need not be subscribed); absent: every
    /// enabled endpoint subscribed to the event's type.
    pub endpoint_id: Option<String>,
}

/// How many deliveries were scheduled.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scheduled {
    pub scheduled: u64,
}

/// An event, as sent: `payload` is the body of every delivery.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEventView {
    /// Sent as `webhook-id`.
    pub id: String,
    #[serde(rename = "type")]
    #[schema(example = "payment.paid")]
    pub event_type: String,
    pub payment_id: Option<String>,
    /// The payment's event number: a consumer drops an event older than one it has.
    pub sequence: Option<i64>,
    /// `notification`, `query`, `api` or `worker`.
    pub cause: String,
    #[serde(serialize_with = "crate::api::time::millis")]
    pub created_at: DateTime<Utc>,
    /// `{"type", "timestamp", "data"}`; `data` is the payment as `GET /payments/{id}` shows it.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<&StoredEvent> for WebhookEventView {
    fn from(e: &StoredEvent) -> Self {
        Self {
            id: e.id.clone(),
            event_type: e.event_type.clone(),
            payment_id: e.payment_id.clone(),
            sequence: e.sequence,
            cause: e.cause.clone(),
            created_at: e.created_at,
            payload: serde_json::from_str(&e.body).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEventPage {
    pub items: Vec<WebhookEventView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    #[serde(serialize_with = "crate::api::time::millis")]
    pub attempted_at: DateTime<Utc>,
    /// The endpoint's answer, when it answered.
    pub status_code: Option<i32>,
    /// Why there was no answer (timeout, connection refused, …).
    pub error: Option<String>,
    pub latency_ms: i64,
    /// The start of the answer's body (at most 1024 bytes).
    pub response_excerpt: Option<String>,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> Self {
        Self {
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            error: a.error.clone(),
            latency_ms: a.latency_ms,
            response_excerpt: a.response_excerpt.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub endpoint_id: String,
    /// `pending`, `succeeded` or `failed` (after the last attempt).
    pub status: String,
    /// When the next attempt is due. Null once delivered or failed, and while
    /// `pending` for a disabled endpoint: parked until it is enabled.
    #[serde(serialize_with = "crate::api::time::opt_millis")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEventDetail {
    #[serde(flatten)]
    pub event: WebhookEventView,
    pub deliveries: Vec<DeliveryView>,
}

impl WebhookEventDetail {
    pub fn new(e: &StoredEvent, deliveries: &[Delivery], attempts: &[Attempt]) -> Self {
        Self {
            event: e.into(),
            deliveries: deliveries
                .iter()
                .map(|d| DeliveryView {
                    endpoint_id: d.endpoint_id.clone(),
                    status: d.status.clone(),
                    next_attempt_at: d.next_attempt_at,
                    attempts: attempts
                        .iter()
                        .filter(|a| a.delivery_id == d.id)
                        .map(AttemptView::from)
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A page of the changes feed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangesPageView {
    /// Events in feed order (see `GET /changes`); within one payment, order by `sequence`.
    pub items: Vec<WebhookEventView>,
    /// Pass as `cursor` to read what changed after these (always present).
    pub next_cursor: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventType;

    #[test]
    fn the_documented_event_types_are_the_domains() {
        let documented = [
            EventTypeName::PaymentPending,
            EventTypeName::PaymentPaid,
            EventTypeName::PaymentFailed,
            EventTypeName::PaymentExpired,
            EventTypeName::PaymentCancelled,
            EventTypeName::PaymentRefunded,
            EventTypeName::PaymentFlagged,
            EventTypeName::PaymentFlagResolved,
            EventTypeName::RefundPending,
            EventTypeName::RefundSucceeded,
            EventTypeName::RefundFailed,
            EventTypeName::EndpointDisabled,
        ]
        .map(|t| serde_json::to_value(t).unwrap());
        let domain = EventType::ALL.map(|t| serde_json::Value::from(t.as_str()));
        assert_eq!(documented, domain);
    }

    #[test]
    fn the_event_list_filters_by_every_type_the_domain_has() {
        let (_, doc) = crate::api::api_routes().split_for_parts();
        let doc = serde_json::to_value(doc).unwrap();
        let (_, list) = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(path, _)| path.ends_with("/events") && !path.contains('{'))
            .expect("the event list is documented");
        let pattern = list["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "type")
            .and_then(|p| p["schema"]["pattern"].as_str())
            .expect("the type filter has a pattern");
        let pattern = regex::Regex::new(pattern).unwrap();
        // Every pairing of the names' two halves: the pattern admits exactly
        // the domain's types among them.
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        let halves = |k: usize| -> Vec<&str> { names.iter().filter_map(|n| n.split('.').nth(k)).collect() };
        for subject in halves(0) {
            for what in halves(1) {
                let name = format!("{subject}.{what}");
                assert_eq!(pattern.is_match(&name), names.contains(&name.as_str()), "{name}");
            }
        }
    }

    #[test]
    fn the_documented_url_pattern_is_the_one_checked() {
        let (_, doc) = crate::api::api_routes().split_for_parts();
        let doc = serde_json::to_value(doc).unwrap();
        let schemas = &doc["components"]["schemas"];
        for schema in ["CreateEndpointRequest", "UpdateEndpointRequest"] {
            assert_eq!(
                schemas[schema]["properties"]["url"]["pattern"],
                crate::events::target::URL_PATTERN,
                "{schema}"
            );
        }
    }
}
