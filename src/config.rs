//! Layered, validated configuration.
//!
//! Built-in defaults, then an optional TOML file (`--config PATH` or
//! `FINPAY_QRIS_CONFIG`), then `DATABASE_URL`, then `FINPAY_QRIS__SECTION__KEY`
//! environment variables, which win. [`Settings::load`] only reads;
//! the typed, parsed form (keys decoded, modes checked) comes from the
//! `validate*` methods, whose errors always name the offending key.

use crate::secret::Secret;
use crate::snap::keys;
use crate::snap::signature::HmacKey;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub mod api_keys;
mod events;
pub mod known;

pub use events::EventSettings;

/// A configuration problem, naming the key as an operator would set it.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: env_name(key),
            message: message.into(),
        }
    }
}

/// `inbound.client_id` → `FINPAY_QRIS__INBOUND__CLIENT_ID`.
pub fn env_name(dotted: &str) -> String {
    format!("FINPAY_QRIS__{}", dotted.replace('.', "__").to_uppercase())
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub inbound: InboundSettings,
    pub finpay: FinpaySettings,
    pub worker: WorkerSettings,
    pub api: ApiSettings,
    pub console: ConsoleSettings,
    pub events: EventSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
    pub refusals: RefusalSettings,
}

/// The journal of refused requests and its signature doctor.
#[derive(Debug, Clone, Deserialize)]
pub struct RefusalSettings {
    /// Refusals kept at most; the oldest beyond are deleted.
    pub max_rows: i64,
    /// Refusals older than this are deleted.
    pub max_age_days: u32,
    /// Bytes of a refused request's body kept in the journal.
    pub body_limit_bytes: usize,
    /// Refusals waiting for the journal's writer; more are dropped (and counted).
    pub queue: usize,
    /// Refused signatures diagnosed per second at most; others are stored undiagnosed.
    pub diagnoses_per_sec: u32,
    /// Gateway prefixes the doctor tries when a sender signed a path we did not receive.
    pub path_prefixes: Vec<String>,
    /// Tokens this process issued that the doctor remembers (in memory only) to name `stale-token`.
    pub recent_tokens: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Public listener: SNAP token + notify endpoints and health.
    pub listen: String,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    /// Group commit: most notifications committed in one transaction.
    pub max_batch: usize,
    /// Group commit: concurrent writer transactions.
    pub writers: usize,
    pub shutdown_grace_secs: u64,
    /// Public listener: connections open at once; more wait in the backlog.
    pub max_connections: usize,
    /// Both listeners: a connection silent this long after accept is closed.
    pub first_byte_timeout_ms: u64,
    /// Both listeners: a connection with no request this long is closed
    /// (HTTP/1.1 also by hyper's header timeout, `request_timeout_secs`).
    pub idle_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureMode {
    Symmetric,
    Asymmetric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternalIdFormat {
    /// ASPI v1.0.2: alphanumeric (and `-`), up to 36 characters.
    Alphanumeric,
    /// Finpay's pages: digits only, up to 32.
    Numeric,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InboundSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub public_key: Option<Secret>,
    pub public_key_next: Option<Secret>,
    pub signature: SignatureMode,
    pub timestamp_tolerance_secs: u64,
    pub token_ttl_secs: u64,
    pub token_path: String,
    pub notify_paths: Vec<String>,
    pub external_id_format: ExternalIdFormat,
    /// Encoding of a received HMAC: `base64` (ASPI), `hex` (Finpay's outline) or `any`.
    pub hmac_encoding: crate::snap::signature::MacEncoding,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FinpaySettings {
    pub base_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub private_key: Option<Secret>,
    pub merchant_id: Option<String>,
    pub sub_merchant_id: Option<String>,
    pub terminal_id: Option<String>,
    pub channel_id: String,
    pub origin: String,
    pub token_path: String,
    pub generate_path: String,
    pub query_path: String,
    pub refund_path: String,
    /// Where Finpay should deliver notifications (`callback_payment`).
    pub callback_url: Option<String>,
    /// `snake` (`qr_type`, `callback_payment`) or `camel` (`qrType`, `callbackUrl`).
    pub additional_info_style: String,
    /// Whether query requests carry the `amount` object (Indonesian hub page).
    pub query_sends_amount: bool,
    pub timeout_secs: u64,
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSettings {
    /// `None`: on exactly when Finpay credentials are configured.
    pub enabled: Option<bool>,
    pub poll_interval_ms: u64,
    pub batch_size: i64,
    /// Days a notification's raw body and headers are kept; older ones are
    /// cleared in small batches (key, body hash, payment and outcome stay).
    /// 0 keeps them forever.
    pub retention_days: u32,
    pub lease_secs: u64,
    /// First query this long after creation.
    pub first_check_secs: u64,
    /// Each later interval is multiplied by this factor ...
    pub backoff_factor: f64,
    /// ... up to this cap.
    pub max_interval_secs: u64,
    /// After `valid_until + grace` with no final answer the payment expires.
    pub grace_secs: u64,
    pub expire_after_grace: bool,
    /// Default QR validity when the merchant gives none.
    pub default_validity_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiSettings {
    pub listen: String,
    /// Keys with the `operate` role, each `KEY` or `NAME:KEY` ([`api_keys`]).
    pub keys: Vec<Secret>,
    /// Keys with the `read` role (see everything, change nothing).
    pub read_keys: Vec<Secret>,
    /// Internal listener: connections open at once; more wait in the backlog.
    pub max_connections: usize,
    /// A request body not received this long after its head is answered 408.
    pub body_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsoleSettings {
    /// A console session ends after this long without a request.
    pub session_idle_secs: u64,
    /// Mark the session cookie `Secure` even when no proxy reports TLS.
    pub secure_cookie: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `pretty` or `json`.
    pub format: String,
    pub level: String,
}

/// Business metrics and the state gauges (`src/metrics/business.rs`, `state.rs`).
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// Count payments, amounts, refunds and notification delays.
    pub business: bool,
    /// How often the state gauges are read from the database.
    pub state_interval_secs: u64,
}

const DEFAULTS: &[(&str, &str)] = &[
    ("server.listen", "127.0.0.1:8080"),
    ("server.body_limit_bytes", "65536"),
    ("server.request_timeout_secs", "10"),
    ("server.max_batch", "256"),
    ("server.writers", "2"),
    ("server.shutdown_grace_secs", "20"),
    ("server.max_connections", "512"),
    ("server.first_byte_timeout_ms", "5000"),
    ("server.idle_timeout_ms", "10000"),
    ("database.url", "sqlite://data/finpay-qris.db"),
    ("database.max_connections", "16"),
    ("database.acquire_timeout_secs", "3"),
    ("database.migrate_on_start", "true"),
    ("inbound.signature", "symmetric"),
    ("inbound.timestamp_tolerance_secs", "300"),
    ("inbound.token_ttl_secs", "900"),
    ("inbound.token_path", "/v1.0/access-token/b2b"),
    ("inbound.external_id_format", "alphanumeric"),
    ("inbound.hmac_encoding", "any"),
    ("finpay.channel_id", "95221"),
    ("finpay.origin", "localhost"),
    ("finpay.token_path", "/snap/oauth/v1.0/access-token/b2b"),
    ("finpay.generate_path", "/pg/payment/card/v1.0/qr/qr-mpm-generate"),
    ("finpay.query_path", "/pg/payment/card/v1.0/qr/qr-mpm-query"),
    ("finpay.refund_path", "/pg/payment/card/v1.0/qr/qr-mpm-refund"),
    ("finpay.additional_info_style", "snake"),
    ("finpay.query_sends_amount", "false"),
    ("finpay.timeout_secs", "15"),
    ("finpay.connect_timeout_secs", "5"),
    ("worker.poll_interval_ms", "1000"),
    ("worker.batch_size", "16"),
    ("worker.retention_days", "90"),
    ("worker.lease_secs", "60"),
    ("worker.first_check_secs", "30"),
    ("worker.backoff_factor", "2.0"),
    ("worker.max_interval_secs", "600"),
    ("worker.grace_secs", "600"),
    ("worker.expire_after_grace", "true"),
    ("worker.default_validity_secs", "900"),
    ("api.listen", "127.0.0.1:8081"),
    ("api.max_connections", "64"),
    ("api.body_timeout_ms", "10000"),
    ("console.session_idle_secs", "1800"),
    ("console.secure_cookie", "false"),
    ("log.format", "pretty"),
    ("log.level", "info"),
    ("refusals.max_rows", "10000"),
    ("refusals.max_age_days", "30"),
    ("refusals.body_limit_bytes", "16384"),
    ("refusals.queue", "1024"),
    ("refusals.diagnoses_per_sec", "20"),
    ("refusals.recent_tokens", "16"),
    ("metrics.business", "true"),
    ("metrics.state_interval_secs", "15"),
];

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "inbound.notify_paths",
    "api.keys",
    "api.read_keys",
    "refusals.path_prefixes",
];

impl Settings {
    /// Loads defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Same as [`Settings::load`] with an explicit environment (tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        known::check_environment(&env)?;
        let mut b = config::Config::builder();
        for (k, v) in DEFAULTS.iter().chain(events::DEFAULTS) {
            b = b.set_default(*k, *v).map_err(|e| ConfigError::new(k, e.to_string()))?;
        }
        b = b
            .set_default("inbound.notify_paths", vec!["/v1.0/qr/qr-mpm-notify"])
            .and_then(|b| b.set_default("api.keys", Vec::<String>::new()))
            .and_then(|b| b.set_default("api.read_keys", Vec::<String>::new()))
            .and_then(|b| b.set_default("refusals.path_prefixes", vec!["/pg"]))
            .map_err(|e| ConfigError::new("inbound.notify_paths", e.to_string()))?;
        let file = file.map(PathBuf::from).or_else(|| {
            env.iter()
                .find(|(k, _)| k == "FINPAY_QRIS_CONFIG")
                .map(|(_, v)| PathBuf::from(v))
        });
        if let Some(path) = &file {
            if !path.exists() {
                return Err(ConfigError {
                    key: "--config / FINPAY_QRIS_CONFIG".into(),
                    message: format!("file {} does not exist", path.display()),
                });
            }
            known::check_file(path)?;
            b = b.add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml));
        }
        if let Some((_, url)) = env.iter().find(|(k, _)| k == "DATABASE_URL") {
            b = b
                .set_override("database.url", url.as_str())
                .map_err(|e| ConfigError::new("database.url", e.to_string()))?;
        }
        for (k, v) in &env {
            let Some(rest) = k.strip_prefix("FINPAY_QRIS__") else {
                continue;
            };
            let dotted = rest.to_lowercase().replace("__", ".");
            b = if LIST_KEYS.contains(&dotted.as_str()) {
                let items: Vec<String> = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                b.set_override(dotted.as_str(), items)
            } else {
                b.set_override(dotted.as_str(), v.as_str())
            }
            .map_err(|e| ConfigError {
                key: k.clone(),
                message: e.to_string(),
            })?;
        }
        let cfg = b.build().map_err(|e| ConfigError {
            key: "configuration".into(),
            message: e.to_string(),
        })?;
        known::check_enums(&cfg)?;
        let settings: Settings = cfg.try_deserialize().map_err(|e| {
            let msg = e.to_string();
            // The config crate names the dotted key in its message (`for key
            // `server.max_batch``); the longest known key it contains is that key.
            let key = known::all()
                .filter(|k| msg.contains(&format!("`{k}`")))
                .max_by_key(|k| k.len())
                .map(env_name)
                .unwrap_or_else(|| "configuration".into());
            ConfigError { key, message: msg }
        })?;
        settings.check()?;
        Ok(settings)
    }

    /// Checks that hold whatever is enabled.
    fn check(&self) -> Result<(), ConfigError> {
        self.events.check()?;
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "server.listen",
                "expected HOST:PORT, e.g. 127.0.0.1:8080",
            ));
        }
        if self.api.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "api.listen",
                "expected HOST:PORT, e.g. 127.0.0.1:8081",
            ));
        }
        if self.server.max_batch == 0 || self.server.writers == 0 {
            return Err(ConfigError::new(
                "server.max_batch",
                "max_batch and writers must be at least 1",
            ));
        }
        // Bounded above too: a semaphore of more permits, or a deadline past
        // what a clock can add, would panic instead of serving.
        const DAY_MS: u64 = 86_400_000;
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
        ] {
            if !(1..=max).contains(&value) {
                return Err(ConfigError::new(key, format!("must be from 1 to {max}")));
            }
        }
        if self.inbound.timestamp_tolerance_secs == 0 {
            return Err(ConfigError::new(
                "inbound.timestamp_tolerance_secs",
                "must be at least 1",
            ));
        }
        if self.inbound.token_ttl_secs < 60 {
            return Err(ConfigError::new("inbound.token_ttl_secs", "must be at least 60"));
        }
        for p in std::iter::once(&self.inbound.token_path).chain(&self.inbound.notify_paths) {
            if !p.starts_with('/') {
                return Err(ConfigError::new(
                    "inbound.notify_paths",
                    format!("path {p:?} must start with '/'"),
                ));
            }
        }
        if self.inbound.notify_paths.is_empty() {
            return Err(ConfigError::new("inbound.notify_paths", "at least one path is needed"));
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

    /// The verified inbound credentials, `None` when not configured at all
    /// (the SNAP endpoints then answer General Error).
    pub fn inbound_credentials(&self) -> Result<Option<InboundCredentials>, ConfigError> {
        let i = &self.inbound;
        let client_id = i.client_id.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let secret = i.client_secret.as_ref().filter(|s| !s.is_empty());
        let key = i.public_key.as_ref().filter(|s| !s.is_empty());
        let Some(client_id) = client_id else {
            if secret.is_some() || key.is_some() {
                return Err(ConfigError::new(
                    "inbound.client_id",
                    "is required when other inbound credentials are set",
                ));
            }
            return Ok(None);
        };
        let Some(key) = key else {
            return Err(ConfigError::new(
                "inbound.public_key",
                "Finpay's RSA public key is required (it signs token requests)",
            ));
        };
        let mut public_keys = vec![load_public_key("inbound.public_key", key)?];
        if let Some(next) = i.public_key_next.as_ref().filter(|s| !s.is_empty()) {
            public_keys.push(load_public_key("inbound.public_key_next", next)?);
        }
        let hmac = match (i.signature, secret) {
            (SignatureMode::Symmetric, None) => {
                return Err(ConfigError::new(
                    "inbound.client_secret",
                    "is required with inbound.signature = symmetric",
                ));
            }
            (_, Some(s)) => Some(HmacKey::new(s.expose().as_bytes())),
            (SignatureMode::Asymmetric, None) => None,
        };
        Ok(Some(InboundCredentials {
            client_id: client_id.to_string(),
            hmac,
            public_keys,
        }))
    }

    /// Outbound Finpay credentials, `None` when not configured.
    pub fn finpay_credentials(&self) -> Result<Option<FinpayCredentials>, ConfigError> {
        let f = &self.finpay;
        let required = [
            ("finpay.base_url", f.base_url.clone()),
            ("finpay.client_id", f.client_id.clone()),
            (
                "finpay.client_secret",
                f.client_secret.as_ref().map(|s| s.expose().to_string()),
            ),
            (
                "finpay.private_key",
                f.private_key.as_ref().map(|s| s.expose().to_string()),
            ),
            ("finpay.merchant_id", f.merchant_id.clone()),
        ];
        let present: Vec<_> = required
            .iter()
            .filter(|(_, v)| v.as_deref().is_some_and(|v| !v.trim().is_empty()))
            .collect();
        if present.is_empty() {
            return Ok(None);
        }
        if let Some((k, _)) = required
            .iter()
            .find(|(_, v)| v.as_deref().is_none_or(|v| v.trim().is_empty()))
        {
            return Err(ConfigError::new(k, "is required when any Finpay credential is set"));
        }
        let base_url = f.base_url.clone().unwrap_or_default();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ConfigError::new(
                "finpay.base_url",
                "must start with http:// or https://",
            ));
        }
        let pem = f
            .private_key
            .as_ref()
            .map(|s| s.expose().to_string())
            .unwrap_or_default();
        let private_key = load_private_key("finpay.private_key", &Secret::new(pem))?;
        Ok(Some(FinpayCredentials {
            base_url: base_url.trim_end_matches('/').to_string(),
            client_id: f.client_id.clone().unwrap_or_default(),
            hmac: HmacKey::new(
                f.client_secret
                    .as_ref()
                    .map(|s| s.expose())
                    .unwrap_or_default()
                    .as_bytes(),
            ),
            private_key,
        }))
    }

    pub fn worker_enabled(&self, finpay_configured: bool) -> bool {
        self.worker.enabled.unwrap_or(finpay_configured) && finpay_configured
    }
}

/// Inbound (Finpay → us) verification material.
#[derive(Clone, Debug)]
pub struct InboundCredentials {
    pub client_id: String,
    pub hmac: Option<HmacKey>,
    /// Active key first, then the rotation key.
    pub public_keys: Vec<RsaPublicKey>,
}

/// Outbound (us → Finpay) signing material.
#[derive(Clone)]
pub struct FinpayCredentials {
    pub base_url: String,
    pub client_id: String,
    pub hmac: HmacKey,
    pub private_key: RsaPrivateKey,
}

impl std::fmt::Debug for FinpayCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinpayCredentials")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("hmac", &"<redacted>")
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// A key is given inline (PEM text) or as a path to a PEM file.
fn pem_text(key: &str, value: &Secret) -> Result<String, ConfigError> {
    let v = value.expose().trim();
    if v.contains("-----BEGIN") {
        return Ok(v.to_string());
    }
    std::fs::read_to_string(v)
        .map_err(|e| ConfigError::new(key, format!("neither inline PEM nor a readable file path ({e})")))
}

pub fn load_public_key(key: &str, value: &Secret) -> Result<RsaPublicKey, ConfigError> {
    keys::parse_public_key(&pem_text(key, value)?).map_err(|e| ConfigError::new(key, e.to_string()))
}

pub fn load_private_key(key: &str, value: &Secret) -> Result<RsaPrivateKey, ConfigError> {
    keys::parse_private_key(&pem_text(key, value)?).map_err(|e| ConfigError::new(key, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "first-api-key-0123456789abcdef012345";
    const K2: &str = "second-api-key-0123456789abcdef01234";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:8080");
        assert_eq!(s.api.listen, "127.0.0.1:8081");
        assert_eq!(s.inbound.notify_paths, vec!["/v1.0/qr/qr-mpm-notify"]);
        assert_eq!(s.inbound.signature, SignatureMode::Symmetric);
        assert!(s.database.url.expose().starts_with("sqlite://data/"));
        assert!(s.inbound_credentials().unwrap().is_none());
        assert!(s.finpay_credentials().unwrap().is_none());
    }

    #[test]
    fn environment_wins_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:9000\"\nmax_batch = 7\n[inbound]\ntimestamp_tolerance_secs = 60\n",
        )
        .unwrap();
        let s = Settings::load_from(
            Some(&file),
            env(&[
                ("FINPAY_QRIS__SERVER__LISTEN", "127.0.0.1:9100"),
                ("FINPAY_QRIS__INBOUND__NOTIFY_PATHS", "/a, /b"),
                ("FINPAY_QRIS__API__KEYS", &format!("{K1},{K2}")),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:9100");
        assert_eq!(s.server.max_batch, 7);
        assert_eq!(s.inbound.timestamp_tolerance_secs, 60);
        assert_eq!(s.inbound.notify_paths, vec!["/a", "/b"]);
        assert_eq!(s.api.keys.len(), 2);
    }

    #[test]
    fn database_url_is_read_from_database_url_unless_ours_is_set() {
        let s = Settings::load_from(None, env(&[("DATABASE_URL", "postgres://a@h/db")])).unwrap();
        assert_eq!(s.database.url.expose(), "postgres://a@h/db");
        let s = Settings::load_from(
            None,
            env(&[
                ("DATABASE_URL", "postgres://a@h/db"),
                ("FINPAY_QRIS__DATABASE__URL", "sqlite://x.db"),
            ]),
        )
        .unwrap();
        assert_eq!(s.database.url.expose(), "sqlite://x.db");
    }

    #[test]
    fn a_bad_value_is_reported_with_its_key() {
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__SERVER__LISTEN", "nowhere")])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__SERVER__LISTEN");
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__INBOUND__SIGNATURE", "rot13")])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__INBOUND__SIGNATURE");
        let e =
            Settings::load_from(None, env(&[("FINPAY_QRIS__INBOUND__TIMESTAMP_TOLERANCE_SECS", "soon")])).unwrap_err();
        assert!(e.to_string().contains("timestamp_tolerance_secs"), "{e}");
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__API__MAX_CONNECTIONS", "0")])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__API__MAX_CONNECTIONS");
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__SERVER__IDLE_TIMEOUT_MS", "0")])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__SERVER__IDLE_TIMEOUT_MS");
        let e = Settings::load_from(
            None,
            env(&[("FINPAY_QRIS__API__BODY_TIMEOUT_MS", "18446744073709551615")]),
        )
        .unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__API__BODY_TIMEOUT_MS");
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__SERVER__MAX_CONNECTIONS", "-1")])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__SERVER__MAX_CONNECTIONS", "{e}");
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__WORKER__RETENTION_DAYS", "40000")])).unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.message.as_str()),
            (
                "FINPAY_QRIS__WORKER__RETENTION_DAYS",
                "must be at most 36500 (0 keeps forever)"
            )
        );
    }

    #[test]
    fn partial_inbound_credentials_name_the_missing_key() {
        let s = Settings::load_from(None, env(&[("FINPAY_QRIS__INBOUND__CLIENT_ID", "X")])).unwrap();
        assert_eq!(
            s.inbound_credentials().unwrap_err().key,
            "FINPAY_QRIS__INBOUND__PUBLIC_KEY"
        );
        let s = Settings::load_from(
            None,
            env(&[
                ("FINPAY_QRIS__INBOUND__CLIENT_ID", "X"),
                ("FINPAY_QRIS__INBOUND__PUBLIC_KEY", "/does/not/exist.pem"),
            ]),
        )
        .unwrap();
        let e = s.inbound_credentials().unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__INBOUND__PUBLIC_KEY");
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let s = Settings::load_from(
            None,
            env(&[
                ("FINPAY_QRIS__INBOUND__CLIENT_SECRET", "super-secret-value"),
                ("FINPAY_QRIS__API__KEYS", "api-key-value-0123456789abcdef0123"),
                ("FINPAY_QRIS__DATABASE__URL", "postgres://u:db-password@h/db"),
            ]),
        )
        .unwrap();
        let dbg = format!("{s:?}");
        for secret in ["super-secret-value", "api-key-value", "db-password"] {
            assert!(!dbg.contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn a_misspelt_variable_stops_the_start_naming_the_nearest_setting() {
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__SERVER__LISTN", "127.0.0.1:1")])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__SERVER__LISTN");
        assert!(e.message.contains("did you mean FINPAY_QRIS__SERVER__LISTEN?"), "{e}");
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS_API__KEYS", K1)])).unwrap_err();
        assert!(e.message.contains("FINPAY_QRIS__API__KEYS"), "{e}");
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__DATABASE__ULR", "sqlite://x.db")])).unwrap_err();
        assert!(e.message.contains("FINPAY_QRIS__DATABASE__URL"), "{e}");
        // Not settings: the file's path and the sign command's secret.
        Settings::load_from(None, env(&[("FINPAY_QRIS_SIGN_SECRET", "s"), ("OTHER", "x")])).unwrap();
    }

    #[test]
    fn every_settings_field_is_a_known_key() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        let (mut section, mut fields) = (String::new(), Vec::new());
        for line in format!("{s:#?}").lines() {
            let indent = line.len() - line.trim_start().len();
            let Some((name, _)) = line.trim().split_once(": ") else {
                continue;
            };
            match indent {
                4 => section = name.to_string(),
                8 => fields.push(format!("{section}.{name}")),
                _ => {}
            }
        }
        assert!(fields.len() > 40, "{fields:?}");
        for f in fields {
            assert!(known::all().any(|k| k == f), "{f} is missing from the known keys");
            let var = env_name(&f);
            let e = Settings::load_from(None, env(&[(&var, "x")])).err();
            assert!(e.is_none_or(|e| !e.message.contains("unknown setting")), "{var}");
        }
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named_with_the_nearest_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:9000\"\n[worker]\npoll_interval = 5\n",
        )
        .unwrap();
        let e = Settings::load_from(Some(&file), env(&[])).unwrap_err();
        assert!(e.key.starts_with("worker.poll_interval (in "), "{e}");
        assert!(e.message.contains("did you mean worker.poll_interval_ms?"), "{e}");
        std::fs::write(&file, "[servr]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let e = Settings::load_from(Some(&file), env(&[])).unwrap_err();
        assert!(e.message.contains("did you mean server.listen?"), "{e}");
    }

    #[test]
    fn an_enum_setting_lists_its_valid_values() {
        for (key, words) in known::ENUMS {
            let var = env_name(key);
            let e = Settings::load_from(None, env(&[(&var, "rot13")])).unwrap_err();
            assert_eq!(e.key, var);
            assert!(e.message.contains(&words.join(", ")), "{e}");
            for w in *words {
                Settings::load_from(None, env(&[(&var, w)])).unwrap_or_else(|e| panic!("{var}={w}: {e}"));
            }
        }
    }

    #[test]
    fn a_short_api_key_is_refused_by_position_never_shown() {
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__API__KEYS", &format!("{K1},short-key"))])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__API__KEYS");
        assert!(e.message.contains("key 2 of 2"), "{e}");
        assert!(!e.to_string().contains("short-key"), "{e}");
    }

    #[test]
    fn a_bad_value_of_a_setting_without_default_names_it() {
        let e = Settings::load_from(None, env(&[("FINPAY_QRIS__WORKER__ENABLED", "maybe")])).unwrap_err();
        assert_eq!(e.key, "FINPAY_QRIS__WORKER__ENABLED", "{e}");
    }
}
