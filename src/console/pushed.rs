//! A payment's pushed events as timeline entries: each event (type,
//! sequence, cause, the body sent) with its deliveries, one line per
//! endpoint (status, attempts, the last answer), and the event's id for the
//! `resend` action.

use super::json_text::indent_json;
use super::timeline::Entry;
use super::view;
use crate::state::AppState;
use crate::store::endpoints::Endpoint;
use crate::store::events::{Attempt, Delivery, EventFilter, StoredEvent};
use crate::store::StoreError;

/// At most this many of a payment's events are shown (a payment has a few).
const SHOWN: i64 = 100;

/// A payment's events, each with its deliveries and their attempts.
pub struct Pushed {
    pub events: Vec<(StoredEvent, Vec<Delivery>, Vec<Attempt>)>,
    pub endpoints: Vec<Endpoint>,
}

pub async fn load(st: &AppState, payment_id: &str) -> Result<Pushed, StoreError> {
    let filter = EventFilter {
        payment_id: Some(payment_id.to_string()),
        limit: SHOWN,
        ..Default::default()
    };
    let (events, endpoints) = tokio::try_join!(st.store.list_outbox_events(&filter), st.store.list_endpoints())?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let (deliveries, attempts) = st.store.deliveries_of(&e.id).await?;
        out.push((e, deliveries, attempts));
    }
    Ok(Pushed { events: out, endpoints })
}

/// One delivery in a few words.
fn delivery_line(d: &Delivery, attempts: &[Attempt]) -> String {
    let mine: Vec<&Attempt> = attempts.iter().filter(|a| a.delivery_id == d.id).collect();
    let tries = match d.attempts {
        1 => "1 attempt".to_string(),
        n => format!("{n} attempts"),
    };
    let last = mine.last().map(|a| match (a.status_code, &a.error) {
        (Some(code), _) => format!("; last: HTTP {code} in {} ms", a.latency_ms),
        (None, Some(err)) => format!("; last: {err}"),
        (None, None) => String::new(),
    });
    let next = match d.next_attempt_at {
        Some(t) => format!("; next try {}", view::jakarta(t)),
        None if d.status == "pending" => "; parked until its endpoint is enabled".to_string(),
        None => String::new(),
    };
    format!("{} ({tries}{}{next})", d.status, last.unwrap_or_default())
}

impl Pushed {
    pub fn entries(&self) -> Vec<Entry> {
        let url = |id: &str| {
            self.endpoints
                .iter()
                .find(|e| e.id == id)
                .map_or_else(|| id.to_string(), |e| e.url.clone())
        };
        self.events
            .iter()
            .map(|(e, deliveries, attempts)| {
                let mut facts = vec![
                    ("event".to_string(), e.id.clone()),
                    ("cause".to_string(), e.cause.clone()),
                ];
                if let Some(s) = e.sequence {
                    facts.push(("sequence".into(), s.to_string()));
                }
                if deliveries.is_empty() {
                    facts.push(("delivered to".into(), "no endpoint was subscribed".into()));
                }
                for d in deliveries {
                    facts.push((format!("to {}", url(&d.endpoint_id)), delivery_line(d, attempts)));
                }
                Entry {
                    at: e.created_at,
                    kind: format!("pushed:{}", e.event_type),
                    title: format!("Event {} pushed", e.event_type),
                    actor: None,
                    facts,
                    // Indented in its own order: the bytes a consumer's signature check saw.
                    body: Some(indent_json(&e.body).unwrap_or_else(|| e.body.clone())),
                    resend: Some(e.id.clone()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushed_event_s_body_is_shown_in_the_order_it_was_sent() {
        let body =
            r#"{"type":"payment.paid","timestamp":"2026-12-07T01:02:03.000Z","data":{"id":"p1","url":"https:\/\/x"}}"#;
        let event = StoredEvent {
            id: "e1".into(),
            event_type: "payment.paid".into(),
            payment_id: Some("p1".into()),
            sequence: Some(2),
            cause: "notification".into(),
            body: body.into(),
            created_at: chrono::Utc::now(),
        };
        let pushed = Pushed {
            events: vec![(event, Vec::new(), Vec::new())],
            endpoints: Vec::new(),
        };
        let shown = pushed.entries().remove(0).body.unwrap();
        assert_eq!(
            shown,
            "{\n  \"type\": \"payment.paid\",\n  \"timestamp\": \"2026-12-07T01:02:03.000Z\",\n  \"data\": {\n    \
             \"id\": \"p1\",\n    \"url\": \"https:\\/\\/x\"\n  }\n}"
        );
    }
}
