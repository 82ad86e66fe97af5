//! The sender: claims due deliveries, POSTs each signed event, records the
//! attempt and schedules the next one, in the reconciliation worker's style.
//!
//! Claims are leases in the database (`claim_deliveries`: `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, an immediate transaction on SQLite) covering the
//! whole cycle (every round of sends, then the record), so two replicas never
//! send one attempt at the same time; a record after the lease's end is
//! refused (`Recorded::LeaseLost`). An attempt is not started when its lease
//! could end before it does, nor once an attempt to its endpoint got no
//! answer in the same cycle (it waits for the lease's end). A crashed
//! sender's deliveries come due again when its leases end: delivery is at
//! least once. An attempt succeeds on a 2xx; any other
//! status, a timeout or a refused connection is retried on
//! `events.retry_schedule`. Redirects are not followed. The answer is read up
//! to `post::EXCERPT_BYTES`, which is what the attempt records.

use super::post::{client, send};
use super::schedule::next_attempt;
use crate::state::AppState;
use crate::store::events::{Attempt, AttemptResult, ClaimedDelivery, Recorded};
use futures::{FutureExt, StreamExt};
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Time a lease keeps beyond the cycle's sends, for claiming and recording.
const LEASE_MARGIN_SECS: u64 = 10;
/// How often the backlog gauges are refreshed.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);
/// How often one loop looks for deliveries parked although their endpoint is
/// enabled, or scheduled although it is disabled (`Store::align_stranded`):
/// rare, and cheap to look for.
const STRANDED_EVERY: Duration = Duration::from_secs(60);

/// Starts the sending loops (`events.senders`) when `events.delivery_enabled`.
pub fn spawn(state: AppState, cancel: CancellationToken) -> Vec<JoinHandle<()>> {
    if !state.settings.events.delivery_enabled {
        tracing::info!("event delivery off: FINPAY_QRIS__EVENTS__DELIVERY_ENABLED is false");
        return Vec::new();
    }
    let client = match client(&state) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "event delivery off: its HTTP client could not be built");
            return Vec::new();
        }
    };
    // Each loop is a lease owner of its own, as a replica is: a loop reads and
    // records only what it claimed.
    (0..state.settings.events.senders.max(1))
        .map(|k| {
            let owner = format!(
                "{}:{}:{}",
                crate::worker::host_name(),
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            );
            tokio::spawn(run(state.clone(), client.clone(), owner, k == 0, cancel.clone()))
        })
        .collect()
}

/// One sending loop; the first (`gauges`) also refreshes the backlog gauges
/// and schedules deliveries left parked for an enabled endpoint.
async fn run(state: AppState, client: reqwest::Client, owner: String, gauges: bool, cancel: CancellationToken) {
    let s = &state.settings.events;
    let poll = Duration::from_millis(s.poll_interval_ms);
    let mut last_backlog: Option<Instant> = None;
    let mut last_stranded: Option<Instant> = None;
    let mut reported = BTreeSet::new();
    loop {
        if gauges && last_backlog.is_none_or(|t| t.elapsed() >= BACKLOG_EVERY) {
            record_backlog(&state, &mut reported).await;
            last_backlog = Some(Instant::now());
        }
        if gauges && last_stranded.is_none_or(|t| t.elapsed() >= STRANDED_EVERY) {
            match state.store.align_stranded(crate::store::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deliveries = n,
                    "deliveries brought in line with their endpoint's enabled"
                ),
                Err(e) => tracing::warn!(error = %e, "looking for deliveries out of line with their endpoint failed"),
            }
            last_stranded = Some(Instant::now());
        }
        let cycle = AssertUnwindSafe(cycle(&state, &client, &owner)).catch_unwind();
        let full = tokio::select! {
            _ = cancel.cancelled() => break,
            result = cycle => match result {
                Ok(Ok(n)) => n as i64 >= s.batch_size,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "event delivery cycle failed; retrying after the poll interval");
                    false
                }
                Err(_) => {
                    tracing::error!("event delivery cycle panicked; continuing");
                    false
                }
            },
        };
        if full {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(poll) => {}
            _ = state.events_wakeup.notified() => {}
        }
    }
    tracing::info!("event delivery stopped");
}

/// Lease long enough for a whole cycle: `batch_size` deliveries sent
/// `concurrency` at a time, each attempt bounded by `events.timeout_ms`, then
/// recorded together.
pub fn lease_secs(s: &crate::config::EventSettings) -> u64 {
    let rounds = (s.batch_size.max(1) as u64).div_ceil(s.concurrency.max(1) as u64);
    rounds * s.timeout_ms.div_ceil(1000) + LEASE_MARGIN_SECS
}

/// One cycle: claim what is due, send it (concurrently), then record every
/// attempt in one transaction (one commit per cycle, not per delivery).
async fn cycle(state: &AppState, client: &reqwest::Client, owner: &str) -> crate::store::Result<usize> {
    let s = &state.settings.events;
    let now = crate::store::now();
    let lease = lease_secs(s);
    let claimed = state.store.claim_deliveries(owner, now, lease, s.batch_size).await?;
    let n = claimed.len();
    if n == 0 {
        return Ok(0);
    }
    // The lease covers the worst case; should the cycle still run late, an
    // attempt that could outlast the lease is left for its end (not sent).
    let last_start = now + chrono::Duration::seconds(lease as i64)
        - chrono::Duration::milliseconds(s.timeout_ms as i64)
        - chrono::Duration::seconds(LEASE_MARGIN_SECS as i64 / 2);
    // An endpoint that did not answer (timeout, refused connection) is not
    // tried again in this cycle: its other deliveries wait for the lease's
    // end, so that one dead endpoint holds a sender for one timeout, not for
    // one per round of its backlog.
    let silent = std::sync::Mutex::new(BTreeSet::new());
    let attempted: Vec<(ClaimedDelivery, AttemptResult)> = futures::stream::iter(claimed)
        .map(|d| {
            let silent = &silent;
            async move {
                if crate::store::now() > last_start || silent.lock().unwrap().contains(&d.endpoint_id) {
                    return None;
                }
                let r = attempt(state, client, &d).await;
                if r.attempt.status_code.is_none() {
                    silent.lock().unwrap().insert(d.endpoint_id.clone());
                }
                Some((d, r))
            }
        })
        .buffer_unordered(s.concurrency.max(1))
        .filter_map(|a| async move { a })
        .collect()
        .await;
    let results: Vec<AttemptResult> = attempted.iter().map(|(_, r)| r.clone()).collect();
    let recorded = state
        .store
        .record_attempts(owner, crate::store::now(), &results)
        .await?;
    for ((d, r), outcome) in attempted.iter().zip(recorded) {
        count(state, d, r, outcome);
    }
    Ok(n)
}

/// Sends one delivery; what happened, and what comes next.
async fn attempt(state: &AppState, client: &reqwest::Client, d: &ClaimedDelivery) -> AttemptResult {
    let s = &state.settings.events;
    let attempted_at = crate::store::now();
    let started = Instant::now();
    let (status_code, error, excerpt) = match send(state, client, d, attempted_at).await {
        Ok((status, excerpt)) => (Some(i32::from(status)), None, Some(excerpt)),
        Err(e) => (None, Some(e), None),
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    let succeeded = status_code.is_some_and(|c| (200..300).contains(&c));
    let now = crate::store::now();
    AttemptResult {
        attempt: Attempt {
            delivery_id: d.id,
            attempted_at,
            status_code,
            error,
            latency_ms,
            response_excerpt: excerpt,
        },
        endpoint_id: d.endpoint_id.clone(),
        succeeded,
        next_attempt_at: if succeeded {
            None
        } else {
            next_attempt(&s.retry_waits(), d.attempts as usize + 1, now)
        },
        disable_if_failing_since: now - chrono::Duration::seconds(s.disable_after_secs as i64),
    }
}

/// The metrics of one recorded attempt.
fn count(state: &AppState, d: &ClaimedDelivery, r: &AttemptResult, outcome: Recorded) {
    let m = &state.metrics;
    let a = &r.attempt;
    let kind = match (a.status_code, a.error.as_deref()) {
        _ if r.succeeded => "delivered",
        (Some(_), _) => "rejected",
        (None, Some(e)) if e.starts_with("timeout") => "timeout",
        (None, _) => "unreachable",
    };
    m.inc("finpay_qris_event_deliveries_total", &[("outcome", kind)]);
    m.observe_duration(
        "finpay_qris_event_delivery_duration_seconds",
        &[],
        Duration::from_millis(a.latency_ms.max(0) as u64),
    );
    match outcome {
        Recorded::LeaseLost => tracing::warn!(
            delivery = d.id,
            "a delivery's lease ran out, or a resend took it back, while it was sent: it is sent again"
        ),
        Recorded::Recorded {
            failed,
            endpoint_disabled,
        } => {
            if r.succeeded {
                m.observe_duration("finpay_qris_event_lag_seconds", &[], lag(d, a));
            }
            if failed {
                m.inc("finpay_qris_event_deliveries_failed_total", &[]);
            }
            if endpoint_disabled {
                m.inc("finpay_qris_event_endpoints_disabled_total", &[]);
                tracing::warn!(endpoint = %d.endpoint_id, "webhook endpoint disabled: no successful delivery for too long");
            }
        }
    }
}

/// From the event's commit to its endpoint's answer: not to the record of the
/// attempt, which waits for the slowest attempt of its cycle.
fn lag(d: &ClaimedDelivery, a: &Attempt) -> Duration {
    let answered = a.attempted_at + chrono::Duration::milliseconds(a.latency_ms);
    (answered - d.event_created_at).to_std().unwrap_or_default()
}

/// Per endpoint (a disabled one's parked deliveries too): undelivered events
/// and the oldest one's age. The series of endpoints deleted since the last
/// refresh (`reported`) are removed.
pub async fn record_backlog(state: &AppState, reported: &mut BTreeSet<String>) {
    let Ok(rows) = state.store.delivery_backlog().await else {
        return;
    };
    let now = crate::store::now();
    let current: BTreeSet<String> = rows.iter().map(|(id, _, _)| id.clone()).collect();
    for gone in reported.difference(&current) {
        for name in ["finpay_qris_event_backlog", "finpay_qris_event_oldest_pending_seconds"] {
            state.metrics.remove_gauge(name, &[("endpoint", gone)]);
        }
    }
    *reported = current;
    for (endpoint, pending, oldest) in rows {
        let age = oldest.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        state
            .metrics
            .set_gauge("finpay_qris_event_backlog", &[("endpoint", &endpoint)], pending as f64);
        state.metrics.set_gauge(
            "finpay_qris_event_oldest_pending_seconds",
            &[("endpoint", &endpoint)],
            age,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_lag_ends_when_the_endpoint_answered_not_when_the_cycle_was_recorded() {
        let t = |ms: i64| chrono::Utc.timestamp_millis_opt(1_800_000_000_000 + ms).unwrap();
        let d = ClaimedDelivery {
            id: 1,
            attempts: 0,
            event_id: "evt".into(),
            body: "{}".into(),
            event_created_at: t(0),
            endpoint_id: "ep".into(),
            url: "https://orders.example.com/".into(),
            secret: "whsec_x".into(),
            previous_secret: None,
            previous_secret_until: None,
        };
        let a = Attempt {
            delivery_id: 1,
            attempted_at: t(40),
            status_code: Some(204),
            error: None,
            latency_ms: 80,
            response_excerpt: None,
        };
        assert_eq!(lag(&d, &a), Duration::from_millis(120));
    }
}
