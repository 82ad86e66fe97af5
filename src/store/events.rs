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
    /// Events after `cursor` (`None`: from the start), in commit order,
    /// never skipping one a concurrent transaction commits later.
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
    /// Schedules (due since their creation) pending deliveries left parked although their
    /// endpoint is enabled: on PostgreSQL an event written by a transaction
    /// that read the endpoint just before an enable committed is parked
    /// after that enable scheduled the others. How many.
    async fn schedule_stranded(&self, now: DateTime<Utc>) -> Result<u64>;
}
