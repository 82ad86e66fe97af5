//! `events.*`: delivering payment events to the merchant's endpoints.

use super::ConfigError;
use crate::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Run the delivery loop in this process (events are written either way).
    pub delivery_enabled: bool,
    /// Accept `http://` endpoint URLs (local and test use); otherwise https only.
    pub allow_http: bool,
    /// Accept endpoints on loopback, link-local and private addresses.
    pub allow_private_networks: bool,
    pub connect_timeout_ms: u64,
    /// The whole attempt: connect, send, answer.
    pub timeout_ms: u64,
    /// Seconds to wait before each retry, comma-separated; after the last the
    /// delivery is marked failed. Each wait is jittered by up to ±10 %.
    pub retry_schedule: String,
    /// An endpoint failing with no success for this long is disabled.
    pub disable_after_secs: u64,
    /// After a rotation the previous secret signs alongside for this long.
    pub rotation_overlap_secs: u64,
    pub poll_interval_ms: u64,
    /// Deliveries claimed per cycle; their leases cover the whole cycle.
    pub batch_size: i64,
    /// Deliveries of one cycle sent at the same time.
    pub concurrency: usize,
    /// Sending loops in this process, each with its own claims: while one
    /// records its cycle in the database, another sends.
    pub senders: usize,
    /// One endpoint from the configuration, for simple deployments.
    pub endpoint_url: Option<String>,
    pub endpoint_secret: Option<Secret>,
}

pub(super) const DEFAULTS: &[(&str, &str)] = &[
    ("events.delivery_enabled", "true"),
    ("events.allow_http", "false"),
    ("events.allow_private_networks", "false"),
    ("events.connect_timeout_ms", "5000"),
    ("events.timeout_ms", "15000"),
    ("events.retry_schedule", "5,300,1800,7200,18000,36000,36000"),
    ("events.disable_after_secs", "432000"),
    ("events.rotation_overlap_secs", "86400"),
    ("events.poll_interval_ms", "250"),
    ("events.batch_size", "64"),
    ("events.concurrency", "16"),
    ("events.senders", "4"),
];

impl EventSettings {
    /// The retry waits, in seconds.
    pub fn retry_waits(&self) -> Vec<u64> {
        self.retry_schedule
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let parts: Vec<&str> = self.retry_schedule.split(',').map(str::trim).collect();
        if parts.iter().any(|p| p.parse::<u64>().map_or(true, |s| s > 7 * 86_400)) {
            return Err(ConfigError::new(
                "events.retry_schedule",
                "expected seconds separated by commas, each at most a week, e.g. 5,300,1800",
            ));
        }
        // Bounded above too: the times are added to the clock, and past what
        // it can hold they would panic or wrap around.
        const DAY: u64 = 86_400;
        for (key, value, range, unit) in [
            ("events.connect_timeout_ms", self.connect_timeout_ms, 1..=300_000, "ms"),
            ("events.timeout_ms", self.timeout_ms, 1..=300_000, "ms"),
            ("events.poll_interval_ms", self.poll_interval_ms, 10..=3_600_000, "ms"),
            ("events.disable_after_secs", self.disable_after_secs, 0..=365 * DAY, "s"),
            (
                "events.rotation_overlap_secs",
                self.rotation_overlap_secs,
                0..=crate::events::MAX_OVERLAP_SECS as u64,
                "s",
            ),
        ] {
            if !range.contains(&value) {
                let (from, to) = range.into_inner();
                return Err(ConfigError::new(key, format!("expected {from} to {to} ({unit})")));
            }
        }
        if !(1..=1000).contains(&self.batch_size) {
            return Err(ConfigError::new("events.batch_size", "expected 1 to 1000"));
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err(ConfigError::new("events.concurrency", "expected 1 to 256"));
        }
        if !(1..=32).contains(&self.senders) {
            return Err(ConfigError::new("events.senders", "expected 1 to 32"));
        }
        match (&self.endpoint_url, &self.endpoint_secret) {
            (Some(_), None) => Err(ConfigError::new(
                "events.endpoint_secret",
                "missing: events.endpoint_url and events.endpoint_secret go together",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "events.endpoint_url",
                "missing: events.endpoint_url and events.endpoint_secret go together",
            )),
            (Some(url), Some(secret)) => {
                crate::events::target::check_url(url, self).map_err(|e| ConfigError::new("events.endpoint_url", e))?;
                crate::events::signing::SigningKey::parse(secret.expose())
                    .map(|_| ())
                    .map_err(|e| ConfigError::new("events.endpoint_secret", e.to_string()))
            }
            (None, None) => Ok(()),
        }
    }
}
