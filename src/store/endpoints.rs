//! Storage for webhook endpoints: where events are sent, their subscribed
//! types and signing secrets. A supertrait of [`Store`](super::Store).

use super::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Parks a disabled endpoint's pending deliveries (`$1` the endpoint, `$2`
/// now): no next attempt, so claims never walk past them. One being sent is
/// left to its sender. `lock` is the backend's `FOR UPDATE SKIP LOCKED`:
/// a delivery whose sender is recording it right now is skipped, and that
/// sender records it as the endpoint then is; waiting for it would deadlock,
/// since a sender locks its deliveries before their endpoint, and this runs
/// after the endpoint's change.
pub fn park_sql(lock: &str) -> String {
    format!(
        "UPDATE deliveries SET next_attempt_at = NULL, updated_at = $2 WHERE id IN (SELECT id FROM deliveries \
         WHERE endpoint_id = $1 AND status = 'pending' AND next_attempt_at IS NOT NULL \
         AND (lease_until IS NULL OR lease_until <= $2){lock})"
    )
}

/// Parks scheduled deliveries of disabled endpoints (`$1` now), as
/// [`park_sql`] does for one, at most 500 a call: the minute's sweep. It walks
/// what is scheduled in the claims' order (`deliveries_due`), never what waits
/// parked, which grows for as long as an endpoint stays disabled.
pub fn park_of_disabled_sql(lock: &str) -> String {
    format!(
        "UPDATE deliveries SET next_attempt_at = NULL, updated_at = $1 WHERE id IN (SELECT d.id FROM deliveries d \
         WHERE d.next_attempt_at IS NOT NULL AND d.status = 'pending' \
         AND (d.lease_until IS NULL OR d.lease_until <= $1) \
         AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = d.endpoint_id AND NOT w.enabled) \
         ORDER BY d.next_attempt_at, d.id LIMIT 500{lock})"
    )
}

/// Makes an enabled endpoint's parked deliveries due since their creation,
/// so that they go out at once, oldest first (on PostgreSQL it reads
/// `deliveries_parked`). The endpoint is read again here: the sweep of
/// stranded deliveries lists the enabled endpoints first, and one disabled
/// meanwhile keeps its deliveries parked. `lock` as for [`park_sql`].
pub fn unpark_sql(lock: &str) -> String {
    format!(
        "UPDATE deliveries SET next_attempt_at = created_at, updated_at = $2 WHERE id IN (SELECT id FROM deliveries \
         WHERE endpoint_id = $1 AND status = 'pending' AND next_attempt_at IS NULL \
         AND (lease_until IS NULL OR lease_until <= $2) \
         AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = $1 AND w.enabled){lock})"
    )
}

/// A webhook endpoint as stored (its secrets included: `Debug` hides them).
#[derive(Clone, sqlx::FromRow)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// `api` or `config`.
    pub source: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Subscribed types; empty means every type.
    #[sqlx(skip)]
    pub event_types: Vec<String>,
}

#[derive(Clone)]
pub struct NewEndpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

/// What an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
    /// Who asked (an API key's name): a disabled endpoint says so.
    pub by: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait EndpointStore: Send + Sync + 'static {
    /// A new endpoint; `idempotency` names it on the request's key in the
    /// same transaction, so a retry finds it rather than making another.
    async fn create_endpoint(&self, e: &NewEndpoint, idempotency: Option<&super::IdempotencyRef>) -> Result<Endpoint>;
    /// The endpoint the configuration names: created, or brought to this URL
    /// and secret (enabled) if it exists; a changed secret is a rotation (the
    /// old one signs alongside until `old_until`).
    async fn configure_endpoint(
        &self,
        url: &str,
        secret: &str,
        old_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Endpoint>;
    /// The configuration names no endpoint any more: disable the one it named.
    async fn unconfigure_endpoint(&self, now: DateTime<Utc>) -> Result<()>;
    async fn list_endpoints(&self) -> Result<Vec<Endpoint>>;
    async fn get_endpoint(&self, id: &str) -> Result<Option<Endpoint>>;
    async fn update_endpoint(&self, id: &str, u: &EndpointUpdate, now: DateTime<Utc>) -> Result<Option<Endpoint>>;
    /// Deletes the endpoint and its deliveries; `false` when there was none.
    async fn delete_endpoint(&self, id: &str) -> Result<bool>;
    /// A new secret; the current one keeps signing alongside until
    /// `old_until`. The idempotency key, if any, names the endpoint in the
    /// same transaction: a retry after an answer that was lost finds the
    /// rotation done instead of rotating again.
    async fn rotate_secret(
        &self,
        id: &str,
        secret: &str,
        old_until: DateTime<Utc>,
        now: DateTime<Utc>,
        idempotency: Option<&super::IdempotencyRef>,
    ) -> Result<Option<Endpoint>>;
}
