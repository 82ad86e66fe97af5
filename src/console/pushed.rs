//! A payment's pushed events as timeline entries: each event (type,
//! sequence, cause, the body sent) with its deliveries, one line per
//! endpoint (status, attempts, the last answer), and the event's id for the
//! `resend` action.

use super::timeline::{pretty, Entry};
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
                    body: Some(pretty(&e.body)),
                    resend: Some(e.id.clone()),
                }
            })
            .collect()
    }
}
