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
mod checks;
mod events;
pub mod known;
mod load;

pub use events::EventSettings;
use load::{DEFAULTS, LIST_KEYS};

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

/// The other way: `FINPAY_QRIS__INBOUND__CLIENT_ID` → `inbound.client_id`;
/// `None` for a variable that names no setting's key.
fn dotted_name(var: &str) -> Option<String> {
    var.strip_prefix("FINPAY_QRIS__")
        .map(|rest| rest.to_lowercase().replace("__", "."))
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
mod tests;
