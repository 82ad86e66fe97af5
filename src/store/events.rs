//! Storage for payment events: the outbox's events, their deliveries and
//! attempts, and the changes feed (endpoints: `endpoints.rs`). A supertrait of
//! [`Store`](super::Store), so `dyn Store` offers these too.
//!
//! Events are written by the paths that change payments, in their own
//! transactions (`sql_outbox.rs`: `write_events`); this trait reads them
//! and runs delivery: claims are leases taken with
//! `FOR UPDATE SKIP LOCKED` (PostgreSQL) or in an immediate transaction
//! (SQLite), so two replicas never send one attempt at the same time.

use super::Result;

/// The endpoints `w` subscribed to events of the type `event_type` (an SQL
/// expression) names, enabled or not: every executor that writes events
/// (`sql_outbox.rs`, `postgres/ingest.rs`) and resends them uses this one
/// filter. A disabled endpoint's deliveries wait, parked, until it is enabled.
pub(crate) fn subscribed(event_type: &str) -> String {
    format!(
        "(NOT EXISTS (SELECT 1 FROM webhook_endpoint_types t WHERE t.endpoint_id = w.id) \
         OR EXISTS (SELECT 1 FROM webhook_endpoint_types t WHERE t.endpoint_id = w.id AND t.event_type = {event_type}))"
    )
}
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// An event as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: String,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub payment_id: Option<String>,
    pub sequence: Option<i64>,
    pub cause: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub payment_id: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Keyset cursor: older than this event (ids sort by creation time).
    pub before_id: Option<String>,
    pub limit: i64,
}

/// One event to one endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub endpoint_id: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    pub delivery_id: i64,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
}

/// A delivery leased for sending, with what sending needs (`Debug` hides the secrets).
#[derive(Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub attempts: i32,
    pub event_id: String,
    pub body: String,
    pub event_created_at: DateTime<Utc>,
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
}

/// What happened to an attempt, and what comes next.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub attempt: Attempt,
    /// The delivery's endpoint: a cycle's records lock endpoints in this order.
    pub endpoint_id: String,
    pub succeeded: bool,
    /// When to try again; `None` after a success or the last attempt.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Disable the endpoint if it has failed without a success since before this.
    pub disable_if_failing_since: DateTime<Utc>,
}

/// What one cycle's recorded attempts say about their endpoint, taken in
/// delivery order: a success ends a failing streak; failures after the last
/// success start one, unless one is running (so a cycle whose last success
/// came after its failures never disables the endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointCycle {
    pub succeeded: bool,
    pub failing: Option<Failing>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failing {
    /// The first failure after the last success.
    pub since: DateTime<Utc>,
    /// Disable the endpoint if its streak started at or before this (the latest
    /// of those failures' thresholds).
    pub disable_if_since: DateTime<Utc>,
    /// The last of those failures: its answer tells that the endpoint was disabled.
    pub last: usize,
}

/// The attempts `recorded` (indexes into `results`), per endpoint in id order.
pub(crate) fn endpoint_cycles<'a>(
    results: &'a [AttemptResult],
    recorded: &[usize],
) -> std::collections::BTreeMap<&'a str, EndpointCycle> {
    let mut order = recorded.to_vec();
    order.sort_by_key(|&i| (results[i].endpoint_id.as_str(), results[i].attempt.delivery_id));
    let mut cycles = std::collections::BTreeMap::new();
    for i in order {
        let r = &results[i];
        let cycle = cycles.entry(r.endpoint_id.as_str()).or_insert(EndpointCycle {
            succeeded: false,
            failing: None,
        });
        if r.succeeded {
            cycle.succeeded = true;
            cycle.failing = None;
            continue;
        }
        let failing = cycle.failing.get_or_insert(Failing {
            since: r.attempt.attempted_at,
            disable_if_since: r.disable_if_failing_since,
            last: i,
        });
        failing.disable_if_since = failing.disable_if_since.max(r.disable_if_failing_since);
        failing.last = i;
    }
    cycles
}

/// What recording an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Our lease ran out and another sender took the delivery over.
    LeaseLost,
    Recorded {
        failed: bool,
        endpoint_disabled: bool,
    },
}

/// One page of the changes feed.
#[derive(Debug, Clone)]
pub struct ChangesPage {
    pub items: Vec<StoredEvent>,
    /// Where the next read starts (the same cursor when nothing was new).
    pub cursor: String,
}

/// The position a changes feed cursor names (0: before the first event).
pub(crate) fn feed_cursor(cursor: Option<&str>) -> Result<i64> {
    cursor.map_or(Ok(0), |c| {
        c.parse::<i64>()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| super::StoreError::Invalid("cursor is not one this feed gave".into()))
    })
}

impl std::fmt::Debug for ClaimedDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedDelivery")
            .field("id", &self.id)
            .field("event_id", &self.event_id)
            .field("endpoint_id", &self.endpoint_id)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    // ---- events ----
    async fn list_outbox_events(&self, f: &EventFilter) -> Result<Vec<StoredEvent>>;
    async fn get_outbox_event(&self, id: &str) -> Result<Option<StoredEvent>>;
    /// An event's deliveries and their attempts, oldest first.
    async fn deliveries_of(&self, event_id: &str) -> Result<(Vec<Delivery>, Vec<Attempt>)>;
    /// Sends the event again, now: to `endpoint_id`, or to every enabled
    /// endpoint subscribed to its type. How many deliveries were scheduled.
    /// A delivery being sent loses its lease and is sent again at its end.
    async fn resend_event(&self, event_id: &str, endpoint_id: Option<&str>, now: DateTime<Utc>) -> Result<u64>;
    /// Sends again every delivery to the endpoint that failed, of events
    /// created at or after `since`.
    async fn resend_failed(&self, endpoint_id: &str, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64>;
    /// Events after `cursor` (`None`: from the start), a payment's in
    /// `sequence` order; an event committed later is listed after what was
    /// read before, so one a concurrent transaction commits late is never
    /// skipped.
    async fn changes(&self, cursor: Option<&str>, limit: i64) -> Result<ChangesPage>;

    // ---- delivery ----
    /// Leases up to `limit` due deliveries to enabled endpoints, earliest first.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_secs: u64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>>;
    /// Records attempts on deliveries we hold the lease of (one transaction
    /// for them all): for each, schedules the next attempt or closes it, and
    /// disables an endpoint failing for too long (raising
    /// `endpoint.disabled`). An answer per attempt, in order.
    /// A delivery whose lease ended before `now` is not recorded (`LeaseLost`).
    async fn record_attempts(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        results: &[AttemptResult],
    ) -> Result<Vec<Recorded>>;
    /// Per endpoint (disabled ones too): pending deliveries and the oldest one's event time.
    async fn delivery_backlog(&self) -> Result<Vec<(String, i64, Option<DateTime<Utc>>)>>;
    /// Brings stranded deliveries in line with their endpoint, as an enable or
    /// a disable does: schedules (due since their creation) pending ones left
    /// parked although their endpoint is enabled, and parks scheduled ones of
    /// a disabled endpoint. On PostgreSQL an event written by a transaction
    /// that read the endpoint just before an enable committed is parked after
    /// that enable scheduled the others, and a delivery whose record was under
    /// way when its endpoint was disabled is recorded as scheduled. How many.
    async fn align_stranded(&self, now: DateTime<Utc>) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(endpoint: &str, delivery_id: i64, succeeded: bool, at_secs: i64) -> AttemptResult {
        let at = DateTime::from_timestamp(1_800_000_000 + at_secs, 0).unwrap();
        AttemptResult {
            attempt: Attempt {
                delivery_id,
                attempted_at: at,
                status_code: Some(if succeeded { 204 } else { 500 }),
                error: None,
                latency_ms: 1,
                response_excerpt: None,
            },
            endpoint_id: endpoint.into(),
            succeeded,
            next_attempt_at: None,
            disable_if_failing_since: at - chrono::Duration::seconds(100),
        }
    }

    #[test]
    fn a_success_after_failures_ends_the_endpoints_streak() {
        let results = [attempt("we_a", 2, true, 5), attempt("we_a", 1, false, 9)];
        let cycles = endpoint_cycles(&results, &[0, 1]);
        assert_eq!(
            cycles["we_a"],
            EndpointCycle {
                succeeded: true,
                failing: None
            }
        );
    }

    #[test]
    fn failures_after_the_last_success_start_a_streak_at_the_first_of_them() {
        let results = [
            attempt("we_a", 3, false, 7),
            attempt("we_a", 1, true, 1),
            attempt("we_a", 2, false, 4),
        ];
        let cycles = endpoint_cycles(&results, &[0, 1, 2]);
        let failing = cycles["we_a"].failing.clone().expect("failing");
        assert!(cycles["we_a"].succeeded);
        assert_eq!(failing.since, results[2].attempt.attempted_at);
        assert_eq!(failing.disable_if_since, results[0].disable_if_failing_since);
        assert_eq!(
            failing.last, 0,
            "the last failure in delivery order carries the disable"
        );
    }

    #[test]
    fn endpoints_are_judged_apart_and_only_on_recorded_attempts() {
        let results = [
            attempt("we_b", 1, false, 1),
            attempt("we_a", 2, true, 2),
            attempt("we_a", 3, false, 3),
        ];
        let cycles = endpoint_cycles(&results, &[0, 1]);
        assert_eq!(cycles.keys().copied().collect::<Vec<_>>(), ["we_a", "we_b"]);
        assert_eq!(
            cycles["we_a"],
            EndpointCycle {
                succeeded: true,
                failing: None
            }
        );
        assert!(!cycles["we_b"].succeeded);
        assert_eq!(cycles["we_b"].failing.as_ref().map(|f| f.last), Some(0));
    }

    #[test]
    fn value_rows_number_their_placeholders_from_the_first() {
        assert_eq!(crate::store::value_rows(2, 2, 3), "($3, $4), ($5, $6)");
        assert_eq!(crate::store::value_rows(1, 3, 1), "($1, $2, $3)");
    }
}
