//! The checks a loaded configuration must pass before the service starts:
//! each names the setting at fault.

use super::*;

/// Whether two listeners would bind the same port on a shared address. Port
/// 0 asks the system for a free one, which never clashes; `0.0.0.0` covers
/// every IPv4 address, `[::]` every address (dual-stack, Linux's default).
fn listeners_clash(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    let covers = |x: std::net::IpAddr, y: std::net::IpAddr| x.is_unspecified() && (x.is_ipv6() || y.is_ipv4());
    a.port() == b.port() && a.port() != 0 && (a.ip() == b.ip() || covers(a.ip(), b.ip()) || covers(b.ip(), a.ip()))
}

impl Settings {
    /// Checks that hold whatever is enabled.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        self.events.check()?;
        let Ok(server) = self.server.listen.parse::<std::net::SocketAddr>() else {
            return Err(ConfigError::new(
                "server.listen",
                "expected HOST:PORT, e.g. 127.0.0.1:8080",
            ));
        };
        let Ok(api) = self.api.listen.parse::<std::net::SocketAddr>() else {
            return Err(ConfigError::new(
                "api.listen",
                "expected HOST:PORT, e.g. 127.0.0.1:8081",
            ));
        };
        if crate::store::Backend::of_url(self.database.url.expose()).is_none() {
            // The URL itself is not repeated: it may hold a password.
            return Err(ConfigError::new(
                "database.url",
                "must start with postgres://, postgresql:// or sqlite: (e.g. sqlite://data/finpay-qris.db)",
            ));
        }
        if listeners_clash(server, api) {
            return Err(ConfigError::new(
                "api.listen",
                format!(
                    "{} takes the port of {} ({}): the two listeners need different ports",
                    self.api.listen,
                    super::env_name("server.listen"),
                    self.server.listen
                ),
            ));
        }

        // Bounded above too: a semaphore of more permits, or a deadline past
        // what a clock can add, would panic instead of serving.
        const DAY_MS: u64 = 86_400_000;
        const MONTH_SECS: u64 = 30 * 86_400;
        for (key, value, max) in [
            ("server.max_connections", self.server.max_connections as u64, 1_000_000),
            ("api.max_connections", self.api.max_connections as u64, 1_000_000),
            (
                "server.first_byte_timeout_ms",
                self.server.first_byte_timeout_ms,
                DAY_MS,
            ),
            ("server.idle_timeout_ms", self.server.idle_timeout_ms, DAY_MS),
            ("api.body_timeout_ms", self.api.body_timeout_ms, DAY_MS),
            (
                "console.session_idle_secs",
                self.console.session_idle_secs,
                7 * 24 * 3600,
            ),
            ("refusals.max_rows", self.refusals.max_rows.max(0) as u64, 100_000_000),
            ("refusals.queue", self.refusals.queue as u64, 1_000_000),
            ("metrics.state_interval_secs", self.metrics.state_interval_secs, 86_400),
            // SQLite binds three values per notification of a batch, and
            // takes at most 32,766 in one statement.
            ("server.max_batch", self.server.max_batch as u64, 10_000),
            ("server.writers", self.server.writers as u64, 1_000),
            ("server.request_timeout_secs", self.server.request_timeout_secs, 3_600),
            ("database.max_connections", self.database.max_connections as u64, 10_000),
            (
                "database.acquire_timeout_secs",
                self.database.acquire_timeout_secs,
                3_600,
            ),
            ("finpay.timeout_secs", self.finpay.timeout_secs, 3_600),
            ("finpay.connect_timeout_secs", self.finpay.connect_timeout_secs, 3_600),
            ("worker.batch_size", self.worker.batch_size.max(0) as u64, 1_000),
        ] {
            if !(1..=max).contains(&value) {
                return Err(ConfigError::new(key, format!("must be from 1 to {max}")));
            }
        }
        // Below these, a value would be raised silently where it is used (or,
        // for the body limit, refuse every request Finpay sends).
        for (key, value, min, max) in [
            (
                "server.body_limit_bytes",
                self.server.body_limit_bytes as u64,
                1_024,
                16 << 20,
            ),
            ("worker.poll_interval_ms", self.worker.poll_interval_ms, 10, DAY_MS),
            // A cycle's checks must end within ¾ of the lease, a second at least.
            ("worker.lease_secs", self.worker.lease_secs, 2, 86_400),
            // The schedule adds these to instants: bounded, they cannot overflow
            // the clock (a panic in every cycle, and in every payment creation).
            ("worker.first_check_secs", self.worker.first_check_secs, 1, MONTH_SECS),
            ("worker.max_interval_secs", self.worker.max_interval_secs, 1, MONTH_SECS),
            ("worker.grace_secs", self.worker.grace_secs, 0, MONTH_SECS),
            // Added to the clock too: a token's expiry, the journal's horizon.
            ("inbound.token_ttl_secs", self.inbound.token_ttl_secs, 60, 86_400),
            (
                "refusals.max_age_days",
                u64::from(self.refusals.max_age_days),
                1,
                36_500,
            ),
            // The doctor tries each against every other way of signing a
            // refused request: bounded by that cost.
            ("refusals.recent_tokens", self.refusals.recent_tokens as u64, 0, 64),
            (
                "worker.default_validity_secs",
                self.worker.default_validity_secs,
                60,
                30 * 86_400,
            ),
        ] {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::new(key, format!("must be from {min} to {max}")));
            }
        }
        if self.inbound.timestamp_tolerance_secs == 0 {
            return Err(ConfigError::new(
                "inbound.timestamp_tolerance_secs",
                "must be at least 1",
            ));
        }
        if let Some(why) = log_level_problem(&self.log.level) {
            return Err(ConfigError::new("log.level", why));
        }
        let paths = std::iter::once(("inbound.token_path", &self.inbound.token_path))
            .chain(self.inbound.notify_paths.iter().map(|p| ("inbound.notify_paths", p)))
            .chain(
                self.refusals
                    .path_prefixes
                    .iter()
                    .map(|p| ("refusals.path_prefixes", p)),
            );
        for (key, p) in paths {
            if let Some(why) = path_problem(p) {
                return Err(ConfigError::new(key, format!("path {p:?} {why}")));
            }
        }
        if self.inbound.notify_paths.is_empty() {
            return Err(ConfigError::new("inbound.notify_paths", "at least one path is needed"));
        }
        // Each path is one route: a repeat, or the token's path, cannot be served twice.
        for (k, p) in self.inbound.notify_paths.iter().enumerate() {
            if self.inbound.notify_paths[..k].contains(p) || *p == self.inbound.token_path {
                return Err(ConfigError::new(
                    "inbound.notify_paths",
                    format!("path {p:?} is given twice, or is the token path"),
                ));
            }
        }
        if self.worker.retention_days > 36_500 {
            return Err(ConfigError::new(
                "worker.retention_days",
                "must be at most 36500 (0 keeps forever)",
            ));
        }
        if !(self.worker.backoff_factor >= 1.0 && self.worker.backoff_factor <= 10.0) {
            return Err(ConfigError::new(
                "worker.backoff_factor",
                "must be between 1.0 and 10.0",
            ));
        }
        // log.format and finpay.additional_info_style are checked with the
        // other enum settings, before deserializing (known::check_enums).
        api_keys::api_keys(&self.api).map(|_| ())
    }
}

/// Why `log.level` would not log what it says, if it would not: each of its
/// comma-separated directives is a level, or `target=level`. A lone word
/// that is no level (`verbose`) would be read as a target and silence the
/// rest of the log.
fn log_level_problem(level: &str) -> Option<String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    level
        .split(',')
        .find(|d| match d.split_once('=') {
            Some((target, l)) => target.trim().is_empty() || !is_level(l),
            None => !is_level(d),
        })
        .map(|d| format!("{d:?} is not a level (trace, debug, info, warn, error, off) or target=level"))
}

/// What is wrong with a path the public listener serves (or a prefix the
/// doctor tries), if anything. Each is served as written: a query string
/// would never match, and `{`, `}` or `*` would make a pattern of it.
fn path_problem(p: &str) -> Option<&'static str> {
    const ALSO: &str = "/-._~@!$&'()+,;=";
    if !p.starts_with('/') {
        Some("must start with '/'")
    } else if !p.chars().all(|c| c.is_ascii_alphanumeric() || ALSO.contains(c)) {
        Some("may hold only letters, digits and /-._~@!$&'()+,;= (no query string, no ':', '{', '}' or '*')")
    } else {
        None
    }
}
