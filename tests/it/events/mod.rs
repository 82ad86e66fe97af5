//! Payment events over HTTP: delivery to a receiver, signatures checked by
//! the Standard Webhooks reference library, retries, redirects, disabling,
//! resending, the event list and the changes feed.

mod atomic;
mod changes;
mod crash;
mod delivery;
mod leases;
mod listen;
mod parked;
mod paths;
mod plans;
mod proxy;
pub(crate) mod receiver;
mod replicas;

use crate::common;

/// Settings of a server process delivering every event, at test speed, to
/// `url` as its configured endpoint.
pub(crate) fn configured_endpoint(url: String) -> Vec<(&'static str, String)> {
    vec![
        ("FINPAY_QRIS__EVENTS__ENDPOINT_URL", url),
        (
            "FINPAY_QRIS__EVENTS__ENDPOINT_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
        ),
        ("FINPAY_QRIS__EVENTS__ALLOW_HTTP", "true".to_string()),
        ("FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS", "true".to_string()),
        ("FINPAY_QRIS__EVENTS__POLL_INTERVAL_MS", "20".to_string()),
    ]
}

/// Events delivered at test speed to local (http, loopback) receivers.
pub(crate) fn events_env(env: &mut Vec<(String, String)>) {
    for (k, v) in [
        ("FINPAY_QRIS__EVENTS__ALLOW_HTTP", "true"),
        ("FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS", "true"),
        ("FINPAY_QRIS__EVENTS__POLL_INTERVAL_MS", "20"),
        ("FINPAY_QRIS__EVENTS__RETRY_SCHEDULE", "0,0"),
        ("FINPAY_QRIS__EVENTS__TIMEOUT_MS", "500"),
        ("FINPAY_QRIS__EVENTS__CONNECT_TIMEOUT_MS", "300"),
    ] {
        common::set_env(env, k, v);
    }
}

/// A disabled endpoint created when http was allowed (`old-http`), in a
/// service that now runs without `ALLOW_HTTP`; its id.
pub(crate) async fn disabled_http_endpoint(app: &common::TestApp) -> &'static str {
    crate::with_connection!(&app.db.url, |c| sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, source, enabled, disabled_by, disabled_reason, secret, created_at, \
         updated_at) VALUES ('old-http', 'http://orders.example.com/h', 'api', FALSE, 'person', 'paused', \
         'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '2026-12-06T00:00:00Z', '2026-12-06T00:00:00Z')"
    )
    .execute(&mut c)
    .await
    .unwrap()
    .rows_affected());
    "old-http"
}
