//! Reading the settings: built-in defaults, the file, the environment; and
//! turning them into their typed, checked form.

use super::*;

pub(super) const DEFAULTS: &[(&str, &str)] = &[
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

fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Keys whose environment value is a comma-separated list.
pub(super) const LIST_KEYS: &[&str] = &[
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
        let mut file_only = None;
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
            let in_file = known::check_file(path)?;
            b = b.add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml));
            // A list written in the file as one string reads as it does in the
            // environment: comma-separated. (The environment, set below, still wins.)
            for key in LIST_KEYS {
                if let Ok(text) = in_file.get_string(key) {
                    b = b
                        .set_override(*key, comma_list(&text))
                        .map_err(|e| ConfigError::new(key, e.to_string()))?;
                }
            }
            file_only = Some((path.clone(), in_file));
        }
        if let Some((_, url)) = env.iter().find(|(k, _)| k == "DATABASE_URL") {
            b = b
                .set_override("database.url", url.as_str())
                .map_err(|e| ConfigError::new("database.url", e.to_string()))?;
        }
        for (k, v) in &env {
            let Some(dotted) = dotted_name(k) else {
                continue;
            };
            b = if LIST_KEYS.contains(&dotted.as_str()) {
                b.set_override(dotted.as_str(), comma_list(v))
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
        Self::from_checked(cfg).map_err(|e| named_where_set(e, &env, file_only.as_ref()))
    }

    /// The typed settings, checked.
    fn from_checked(cfg: config::Config) -> Result<Self, ConfigError> {
        known::check_enums(&cfg)?;
        let mut settings: Settings = cfg.try_deserialize().map_err(|e| {
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
        // Empty is unset, as for the credentials.
        let events = &mut settings.events;
        events.endpoint_url = events.endpoint_url.take().filter(|u| !u.trim().is_empty());
        events.endpoint_secret = events.endpoint_secret.take().filter(|s| !s.is_empty());
        settings.check()?;
        Ok(settings)
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
        // Finpay sends it as every notification's `X-PARTNER-ID`: one the
        // notify endpoint refuses would leave every notification refused.
        if !crate::snap::notify::check_partner_id(client_id) {
            return Err(ConfigError::new(
                "inbound.client_id",
                "must be 1 to 36 visible ASCII characters without spaces (it arrives as X-PARTNER-ID)",
            ));
        }
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

/// An error about a key the file sets, and the environment does not, is
/// named as the file writes it (`server.listen (in c.toml)`): that is where
/// it is fixed.
fn named_where_set(e: ConfigError, env: &[(String, String)], file: Option<&(PathBuf, config::Config)>) -> ConfigError {
    let Some((path, in_file)) = file else { return e };
    let Some(dotted) = dotted_name(&e.key) else {
        return e;
    };
    let from_env = env
        .iter()
        .any(|(k, _)| *k == e.key || (dotted == "database.url" && k == "DATABASE_URL"));
    if from_env || in_file.get::<config::Value>(&dotted).is_err() {
        return e;
    }
    ConfigError {
        key: format!("{dotted} (in {})", path.display()),
        message: e.message,
    }
}
