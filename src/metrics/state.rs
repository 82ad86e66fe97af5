//! The state gauges (open payments by age, flagged payments waiting, whether
//! the database answers), read by one task on a timer: a scrape never runs a
//! query, and several scrapers cost nothing more.

use super::Metrics;
use crate::state::AppState;
use crate::store::ops_store::OPEN_AGE_BUCKETS;
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The gauges every replica reads from the shared database, so that each
/// reports the whole: across replicas they are taken with `max`, never summed.
pub const DATABASE_WIDE: [&str; 5] = [
    "finpay_qris_open_payments",
    "finpay_qris_flagged_payments",
    "finpay_qris_flagged_payment_oldest_seconds",
    "finpay_qris_event_backlog",
    "finpay_qris_event_oldest_pending_seconds",
];

/// Samples every `metrics.state_interval_secs` until `cancel` fires.
pub async fn run(state: AppState, cancel: CancellationToken) {
    let every = Duration::from_secs(state.settings.metrics.state_interval_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Bounded: a hanging database shows as down rather than as stale gauges.
        let read = tokio::time::timeout(every, sample(state.store.as_ref(), &state.metrics, crate::store::now()));
        if read.await.is_err() {
            state.metrics.set_gauge("finpay_qris_database_up", &[], 0.0);
            tracing::warn!("state gauges: the database did not answer in time");
        }
    }
}

/// Reads the gauges once and records them; a failure records the database
/// as down and leaves the other gauges as they were.
pub async fn sample(store: &dyn Store, metrics: &Metrics, now: DateTime<Utc>) {
    match store.payment_gauges(now).await {
        Ok(g) => {
            for ((age, _), n) in OPEN_AGE_BUCKETS.iter().zip(g.open_by_age) {
                metrics.set_gauge("finpay_qris_open_payments", &[("age", age)], n as f64);
            }
            metrics.set_gauge("finpay_qris_flagged_payments", &[], g.flagged as f64);
            let oldest = g
                .oldest_flagged
                .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
            metrics.set_gauge("finpay_qris_flagged_payment_oldest_seconds", &[], oldest);
            metrics.set_gauge("finpay_qris_database_up", &[], 1.0);
        }
        Err(e) => {
            metrics.set_gauge("finpay_qris_database_up", &[], 0.0);
            tracing::warn!(error = %e, "state gauges: the database query failed");
        }
    }
}
