//! Reconciliation: asks Finpay about every open payment on a schedule, so a
//! lost notification cannot leave a paid payment unpaid.
//!
//! Each cycle leases due payments in the database (`claim_due`: `FOR UPDATE
//! SKIP LOCKED` on PostgreSQL, an immediate transaction on SQLite), so
//! replicas sharing a database never check the same payment at once; a
//! crashed worker's leases simply run out and are taken over. Answers go
//! through `apply_query`, the same state-machine path as notifications, and
//! every attempt is recorded. Nothing Finpay does can stop the loop: each
//! payment's check is bounded in time, failures back off, panics are caught,
//! and cancellation is honoured between and during cycles (in-flight leases
//! then lapse after `worker.lease_secs`).
//!
//! Retention (`retention.rs`) has a task of its own, which runs whether or
//! not this loop does: once a minute, notifications' raw bodies and headers
//! older than `worker.retention_days` are cleared.

mod answer;
mod check;
mod refresh;
mod retention;
pub mod schedule;

pub use refresh::{reconcile_one, ReconcileError};
pub use retention::{apply as apply_retention, run as run_retention};

use crate::finpay::FinpayClient;
use crate::state::AppState;
use futures::{FutureExt, StreamExt};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Payments of one batch checked at the same time.
const CONCURRENCY: usize = 4;

/// Starts the reconciliation loop when `worker.enabled` (default: whenever
/// Finpay credentials are configured).
pub fn spawn(state: AppState, cancel: CancellationToken) -> Vec<JoinHandle<()>> {
    let finpay = match (&state.finpay, state.settings.worker_enabled(state.finpay.is_some())) {
        (Some(f), true) => f.clone(),
        (None, _) => {
            tracing::info!(
                "reconciliation worker off: it queries Finpay, and no Finpay credentials are set \
                 (FINPAY_QRIS__FINPAY__*)"
            );
            return Vec::new();
        }
        (Some(_), false) => {
            tracing::info!("reconciliation worker off: FINPAY_QRIS__WORKER__ENABLED is false");
            return Vec::new();
        }
    };
    let owner = format!(
        "{}:{}:{}",
        host_name(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    tracing::info!(owner = %owner, "reconciliation worker started");
    vec![tokio::spawn(run(state, finpay, owner, cancel))]
}

/// Names the machine in lease owners, so a stuck lease can be traced.
pub(crate) fn host_name() -> String {
    let name = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(64)
        .collect();
    if name.is_empty() {
        "worker".into()
    } else {
        name
    }
}

async fn run(state: AppState, finpay: Arc<FinpayClient>, owner: String, cancel: CancellationToken) {
    let w = &state.settings.worker;
    let poll = Duration::from_millis(w.poll_interval_ms.max(10));
    loop {
        let cycle = AssertUnwindSafe(cycle(&state, &finpay, &owner)).catch_unwind();
        let full_batch = tokio::select! {
            _ = cancel.cancelled() => break,
            result = cycle => match result {
                Ok(Ok(claimed)) => claimed as i64 >= w.batch_size,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reconciliation cycle failed; retrying after the poll interval");
                    false
                }
                Err(_) => {
                    tracing::error!("reconciliation cycle panicked; continuing");
                    false
                }
            },
        };
        // A full batch suggests more is due: go again at once.
        if full_batch {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
    tracing::info!("reconciliation worker stopped");
}

/// Leases the due payments and checks them; returns how many were leased.
async fn cycle(state: &AppState, finpay: &FinpayClient, owner: &str) -> Result<usize, crate::store::StoreError> {
    let w = &state.settings.worker;
    let claimed = state
        .store
        .claim_due(owner, crate::store::now(), w.lease_secs, w.batch_size.max(1))
        .await?;
    let n = claimed.len();
    // Every lease of the batch started now: all checks must end well inside it,
    // so that each answer is applied while the lease is still ours. A check that
    // cannot (Finpay hanging) is recorded as failed and rescheduled.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(w.lease_secs.max(2)).mul_f64(0.75);
    futures::stream::iter(claimed)
        .for_each_concurrent(CONCURRENCY, |p| check::check_claimed(state, finpay, owner, p, deadline))
        .await;
    Ok(n)
}
