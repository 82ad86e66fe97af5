//! `--init-dir DIR`: everything both sides need for a local run, generated
//! once and reused: Finpay's (the simulator's) key pair, the merchant's key
//! pair, client ids and secrets for both directions, and `merchant.env`,
//! which the service loads.

use crate::snap::keys;
use anyhow::Context;
use rand::distributions::{Alphanumeric, DistString};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Identifiers and shared secrets of the demo (`DIR/simulator.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSecrets {
    /// The merchant's client id at Finpay (`X-CLIENT-KEY`, `X-PARTNER-ID` of our calls).
    pub client_id: String,
    /// Keys HMAC-SHA512 on our calls to Finpay.
    pub client_secret: String,
    /// Finpay's client id at the merchant (`X-PARTNER-ID` of notifications).
    pub notify_client_id: String,
    /// Keys HMAC-SHA512 on notifications.
    pub notify_client_secret: String,
    pub merchant_id: String,
    pub sub_merchant_id: String,
    pub terminal_id: String,
    /// For the service's internal API (`FINPAY_QRIS__API__KEYS`).
    pub api_key: String,
}

pub struct Demo {
    pub dir: PathBuf,
    pub secrets: DemoSecrets,
    pub finpay_key: RsaPrivateKey,
    pub merchant_public: RsaPublicKey,
}

/// Where the demo's event receiver (`finpay-qris listen`) listens.
pub const DEMO_LISTEN: &str = "127.0.0.1:8082";

fn secret() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 40)
}

fn write_file(path: &Path, contents: &str, private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// Loads the demo material from `dir`, generating whatever is missing.
pub fn init_or_load(dir: &Path) -> anyhow::Result<Demo> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let secrets_path = dir.join("simulator.json");
    let secrets: DemoSecrets = if secrets_path.exists() {
        let text = std::fs::read_to_string(&secrets_path)?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", secrets_path.display()))?
    } else {
        let s = DemoSecrets {
            client_id: "FINPAY-DEMO-MERCHANT".into(),
            client_secret: secret(),
            notify_client_id: "FINPAY-SIMULATOR".into(),
            notify_client_secret: secret(),
            merchant_id: "FM2103300001".into(),
            sub_merchant_id: "FM2007160001".into(),
            terminal_id: "213141251124".into(),
            api_key: secret(),
        };
        write_file(&secrets_path, &serde_json::to_string_pretty(&s)?, true)?;
        s
    };
    let finpay_key = key_pair(&dir, "finpay")?;
    let merchant_key = key_pair(&dir, "merchant")?;
    Ok(Demo {
        dir,
        secrets,
        finpay_key,
        merchant_public: merchant_key.to_public_key(),
    })
}

/// `DIR/NAME_private.pem` and `DIR/NAME_public.pem`, generated if absent.
fn key_pair(dir: &Path, name: &str) -> anyhow::Result<RsaPrivateKey> {
    let private_path = dir.join(format!("{name}_private.pem"));
    if private_path.exists() {
        let pem = std::fs::read_to_string(&private_path)?;
        return keys::parse_private_key(&pem).with_context(|| format!("reading {}", private_path.display()));
    }
    let key = keys::generate_private_key();
    write_file(&private_path, &keys::private_key_pem(&key), true)?;
    write_file(
        &dir.join(format!("{name}_public.pem")),
        &keys::public_key_pem(&key.to_public_key()),
        false,
    )?;
    Ok(key)
}

/// `http://127.0.0.1:8080` → `127.0.0.1:8080`; `None` for host names (the
/// service's listen address must be an IP).
fn listen_addr(merchant_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(merchant_url).ok()?;
    let ip: std::net::IpAddr = url.host_str()?.trim_matches(['[', ']']).parse().ok()?;
    Some(std::net::SocketAddr::new(ip, url.port_or_known_default()?).to_string())
}

fn quoted(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// Writes `DIR/merchant.env`: the service's settings for talking to this
/// simulator (rewritten on every start, so it follows `--listen`).
pub fn write_merchant_env(
    demo: &Demo,
    simulator_url: &str,
    merchant_url: &str,
    notify_path: &str,
) -> anyhow::Result<PathBuf> {
    let s = &demo.secrets;
    let d = |file: &str| demo.dir.join(file).display().to_string();
    let vars = [
        (
            "FINPAY_QRIS__DATABASE__URL",
            format!("sqlite://{}", d("finpay-qris.db")),
        ),
        ("FINPAY_QRIS__API__KEYS", s.api_key.clone()),
        ("FINPAY_QRIS__INBOUND__CLIENT_ID", s.notify_client_id.clone()),
        ("FINPAY_QRIS__INBOUND__CLIENT_SECRET", s.notify_client_secret.clone()),
        ("FINPAY_QRIS__INBOUND__PUBLIC_KEY", d("finpay_public.pem")),
        ("FINPAY_QRIS__FINPAY__BASE_URL", simulator_url.to_string()),
        ("FINPAY_QRIS__FINPAY__CLIENT_ID", s.client_id.clone()),
        ("FINPAY_QRIS__FINPAY__CLIENT_SECRET", s.client_secret.clone()),
        ("FINPAY_QRIS__FINPAY__PRIVATE_KEY", d("merchant_private.pem")),
        ("FINPAY_QRIS__FINPAY__MERCHANT_ID", s.merchant_id.clone()),
        ("FINPAY_QRIS__FINPAY__SUB_MERCHANT_ID", s.sub_merchant_id.clone()),
        ("FINPAY_QRIS__FINPAY__TERMINAL_ID", s.terminal_id.clone()),
        (
            "FINPAY_QRIS__FINPAY__CALLBACK_URL",
            format!("{}{notify_path}", merchant_url.trim_end_matches('/')),
        ),
        // Demo pace: first check after 15 s, then at most a minute apart.
        ("FINPAY_QRIS__WORKER__FIRST_CHECK_SECS", "15".into()),
        ("FINPAY_QRIS__WORKER__MAX_INTERVAL_SECS", "60".into()),
        ("FINPAY_QRIS__WORKER__GRACE_SECS", "60".into()),
        // Payment events to `finpay-qris listen` on this machine (a new secret each start).
        ("FINPAY_QRIS__EVENTS__ENDPOINT_URL", format!("http://{DEMO_LISTEN}/")),
        (
            "FINPAY_QRIS__EVENTS__ENDPOINT_SECRET",
            crate::events::signing::new_secret(),
        ),
        ("FINPAY_QRIS__EVENTS__ALLOW_HTTP", "true".into()),
        ("FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS", "true".into()),
    ];
    let mut vars = vars.to_vec();
    // The service must listen where the simulator sends notifications.
    if let Some(listen) = listen_addr(merchant_url) {
        vars.insert(0, ("FINPAY_QRIS__SERVER__LISTEN", listen));
    }
    let mut text = format!(
        "# Generated by `finpay-qris simulator --init-dir`: the service's side of the local demo.\n\
         # Load it with:  set -a; . {}; set +a\n",
        d("merchant.env")
    );
    for (k, v) in vars {
        text.push_str(&format!("{k}={}\n", quoted(&v)));
    }
    let path = demo.dir.join("merchant.env");
    write_file(&path, &text, true)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_listens_where_notifications_are_sent() {
        assert_eq!(
            listen_addr("http://127.0.0.1:18080").as_deref(),
            Some("127.0.0.1:18080")
        );
        assert_eq!(listen_addr("http://localhost:8080"), None);
    }

    /// Reads `KEY='value'` lines back as the shell would.
    fn parse_env(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').replace(r"'\''", "'")))
            .collect()
    }

    #[test]
    fn the_demo_material_is_made_once_and_the_env_file_is_a_working_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let first = init_or_load(dir.path()).unwrap();
        let again = init_or_load(dir.path()).unwrap();
        assert_eq!(first.secrets.client_secret, again.secrets.client_secret);
        assert_eq!(first.finpay_key, again.finpay_key);
        let env_path = write_merchant_env(
            &again,
            "http://127.0.0.1:9090",
            "http://127.0.0.1:8080",
            "/v1.0/qr/qr-mpm-notify",
        )
        .unwrap();
        let env = parse_env(&std::fs::read_to_string(env_path).unwrap());
        let settings = crate::config::Settings::load_from(None, env).unwrap();
        let finpay = settings.finpay_credentials().unwrap().expect("Finpay configured");
        assert_eq!(finpay.private_key.to_public_key(), again.merchant_public);
        let inbound = settings.inbound_credentials().unwrap().expect("inbound configured");
        assert_eq!(inbound.public_keys[0], again.finpay_key.to_public_key());
        assert_eq!(inbound.client_id, again.secrets.notify_client_id);
        assert!(settings.worker_enabled(true));
    }

    #[test]
    fn single_quotes_survive_shell_quoting() {
        assert_eq!(quoted("a'b"), r"'a'\''b'");
    }
}
