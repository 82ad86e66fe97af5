//! Retention: a notification's raw body and headers are kept for
//! `worker.retention_days`, then cleared. Its idempotency key, body hash,
//! payment and outcome stay, so a late replay is still recognised and the
//! audit trail still says what it did.

use crate::state::AppState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often retention runs.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Rows cleared per transaction: short transactions, no long row locks.
const BATCH: i64 = 500;
/// How long one run goes on clearing batches back to back. A backlog
/// (retention just turned on) is worked off over several runs, and a run
/// keeps up with any steady rate the service stores: a fixed number of
/// batches a run would fall behind above some hundreds of notifications a
/// second.
const RUN_BUDGET: Duration = Duration::from_secs(20);

/// Applies retention at start and then every `INTERVAL`, until cancelled. It
/// runs whether or not the reconciliation loop does: without Finpay
/// credentials, or with the worker off, notifications still arrive.
pub async fn run(state: AppState, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = apply(&state) => {}
        }
    }
}

/// Clears what has outlived the retention period; returns how many rows.
pub async fn apply(state: &AppState) -> u64 {
    let days = state.settings.worker.retention_days;
    if days == 0 {
        return 0;
    }
    let before = crate::store::now() - chrono::Duration::days(i64::from(days));
    let mut cleared = 0;
    let started = std::time::Instant::now();
    loop {
        match state.store.clear_notification_bodies(before, BATCH).await {
            Ok(n) => {
                cleared += n;
                if n < BATCH as u64 || started.elapsed() >= RUN_BUDGET {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention: clearing old notification bodies failed; retrying later");
                break;
            }
        }
    }
    if cleared > 0 {
        tracing::info!(cleared, days, "retention: cleared old notification bodies");
    }
    cleared
}
