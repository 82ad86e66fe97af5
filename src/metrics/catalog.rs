//! The catalog of what this service exposes: each metric family's name, type
//! and help, the histograms' buckets, and the counters shown before their
//! first increment. Only what is listed here is rendered.

/// Latency buckets in seconds.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Notifications per committed transaction.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// How late a reconciliation check ran, in seconds.
const LAG_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

/// The metrics this service exposes: name, type, help. Only these are rendered.
pub(super) const HELP: &[(&str, &str, &str)] = &[
    (
        "finpay_qris_event_deliveries_total",
        "counter",
        "Event delivery attempts, by outcome: delivered (2xx), rejected (another status), timeout, unreachable.",
    ),
    (
        "finpay_qris_event_deliveries_failed_total",
        "counter",
        "Event deliveries given up after their last attempt (resend them through the API).",
    ),
    (
        "finpay_qris_event_delivery_duration_seconds",
        "histogram",
        "Time of one delivery attempt, from sending to the end of the answer.",
    ),
    (
        "finpay_qris_event_lag_seconds",
        "histogram",
        "From an event's commit to its endpoint's 2xx.",
    ),
    (
        "finpay_qris_event_backlog",
        "gauge",
        "Undelivered events, per endpoint (a disabled one's parked ones too).",
    ),
    (
        "finpay_qris_event_oldest_pending_seconds",
        "gauge",
        "Age of the oldest undelivered event, per endpoint.",
    ),
    (
        "finpay_qris_event_endpoints_disabled_total",
        "counter",
        "Endpoints disabled for failing without a success for too long.",
    ),
    (
        "finpay_qris_notifications_total",
        "counter",
        "Notifications answered, by SNAP responseCode.",
    ),
    (
        "finpay_qris_auth_failures_total",
        "counter",
        "Token and signature failures on SNAP endpoints, by reason.",
    ),
    (
        "finpay_qris_refusals_total",
        "counter",
        "Requests refused with a 4xx on the public listener, by route and reason.",
    ),
    (
        "finpay_qris_refusals_dropped_total",
        "counter",
        "Refusals not journaled: the journal's queue was full, or the database refused the batch.",
    ),
    (
        "finpay_qris_diagnoses_total",
        "counter",
        "Refused signatures diagnosed, by dialect found (none: no known dialect; skipped: over the budget).",
    ),
    (
        "finpay_qris_duplicate_notifications_total",
        "counter",
        "Duplicate notifications answered from the stored first answer.",
    ),
    (
        "finpay_qris_tokens_issued_total",
        "counter",
        "B2B access tokens issued to Finpay.",
    ),
    (
        "finpay_qris_notify_batch_size",
        "histogram",
        "Notifications committed per transaction (group commit).",
    ),
    (
        "finpay_qris_notify_batch_duration_seconds",
        "histogram",
        "Time to store one group-commit batch, from taking it off the queue to its commit (read, plan, write).",
    ),
    (
        "finpay_qris_http_request_duration_seconds",
        "histogram",
        "Request latency by route.",
    ),
    (
        "finpay_qris_reconcile_attempts_total",
        "counter",
        "Reconciliation queries, by outcome.",
    ),
    (
        "finpay_qris_reconcile_lag_seconds",
        "histogram",
        "How late a due reconciliation check ran.",
    ),
    (
        "finpay_qris_finpay_request_duration_seconds",
        "histogram",
        "Calls to Finpay, by operation.",
    ),
    (
        "finpay_qris_finpay_errors_total",
        "counter",
        "Failed calls to Finpay, by operation and kind.",
    ),
    (
        "finpay_qris_db_pool_connections",
        "gauge",
        "Database connections, by state, over all pools (on PostgreSQL the notification writers have their own; sampled when scraped).",
    ),
];

pub(super) fn buckets(name: &str) -> &'static [f64] {
    match name {
        "finpay_qris_notify_batch_size" => BATCH_BUCKETS,
        "finpay_qris_reconcile_lag_seconds" => LAG_BUCKETS,
        _ => super::business::buckets(name).unwrap_or(LATENCY_BUCKETS),
    }
}

/// The counters without labels: shown at 0 from the start, so that a query
/// sees 0 rather than no data before their first increment.
pub(super) const UNLABELLED_COUNTERS: &[&str] = &[
    "finpay_qris_duplicate_notifications_total",
    "finpay_qris_event_deliveries_failed_total",
    "finpay_qris_event_endpoints_disabled_total",
    "finpay_qris_refusals_dropped_total",
    "finpay_qris_tokens_issued_total",
];
