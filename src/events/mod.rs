//! Payment events for the merchant's systems, delivered as signed webhooks.
//!
//! - [`payload`]: the body of an event (the API's payment representation);
//! - [`signing`]: Standard Webhooks v1 secrets, signatures and verification;
//! - [`schedule`]: when a failed delivery is tried again;
//! - [`target`]: which URLs may receive events (scheme, private networks);
//! - [`delivery`]: the sender loops, and `post`: one signed POST of an event;
//! - [`listen`]: `finpay-qris listen`, a receiver that verifies and prints events.
//!
//! The events themselves are decided by `domain::events` and written by the
//! store in the transaction of each change (the outbox).

pub mod delivery;
pub mod listen;
pub mod payload;
mod post;
pub mod schedule;
pub mod signing;
pub mod target;

use crate::state::AppState;

/// Longest the previous secret may sign alongside the new one after a
/// rotation (the API's `previousSecretSeconds`, `events.rotation_overlap_secs`): a week.
pub const MAX_OVERLAP_SECS: i64 = 7 * 86_400;

/// Brings the endpoint the configuration names (`events.endpoint_url`,
/// `events.endpoint_secret`) into the store, or disables the one it named
/// before if it names none now. A failure stops the start: running on would
/// raise events with no delivery to the configured endpoint, or sign with a
/// secret the configuration no longer holds.
pub async fn apply_configuration(state: &AppState) -> Result<(), crate::store::StoreError> {
    let s = &state.settings.events;
    let now = crate::store::now();
    let done = match (&s.endpoint_url, &s.endpoint_secret) {
        (Some(url), Some(secret)) => state
            .store
            .configure_endpoint(
                url,
                secret.expose(),
                now + chrono::Duration::seconds(s.rotation_overlap_secs as i64),
                now,
            )
            .await
            .map(|e| {
                tracing::info!(endpoint = %e.id, "webhook endpoint from the configuration");
            }),
        _ => state.store.unconfigure_endpoint(now).await,
    };
    done
}
