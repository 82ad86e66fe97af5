//! `finpay-qris simulator`: flags, `--init-dir`, and running until Ctrl-C.

use super::{init, spawn, Faults, SimConfig, DEFAULT_MERCHANT_TOKEN_PATH};
use crate::config::{load_private_key, load_public_key};
use crate::secret::Secret;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct SimulatorArgs {
    /// Address for the SNAP endpoints and the /sim control API.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// Directory holding (or to receive, on first use) keys and secrets for
    /// both sides, and the service's settings in DIR/merchant.env.
    #[arg(long)]
    pub init_dir: Option<PathBuf>,
    /// The merchant service's public base URL (notifications and its token endpoint).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub merchant_url: String,
    /// Path of the merchant's notify endpoint (used when a QR names no callback URL).
    #[arg(long, default_value = "/v1.0/qr/qr-mpm-notify")]
    pub merchant_notify_path: String,
    /// Path of the merchant's B2B token endpoint.
    #[arg(long, default_value = DEFAULT_MERCHANT_TOKEN_PATH)]
    pub merchant_token_path: String,
    /// Without --init-dir: the merchant's client id at Finpay.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Without --init-dir: the secret keying the merchant's request signatures.
    #[arg(long, env = "FINPAY_SIM_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Without --init-dir: the merchant's RSA public key (PEM file or inline PEM).
    #[arg(long)]
    pub merchant_public_key: Option<String>,
    /// Without --init-dir: the simulator's ("Finpay's") RSA private key.
    #[arg(long)]
    pub finpay_private_key: Option<String>,
    /// Without --init-dir: Finpay's client id at the merchant (X-PARTNER-ID of notifications).
    #[arg(long)]
    pub notify_client_id: Option<String>,
    /// Without --init-dir: the secret keying notification signatures.
    #[arg(long, env = "FINPAY_SIM_NOTIFY_CLIENT_SECRET", hide_env_values = true)]
    pub notify_client_secret: Option<String>,
    /// Prefix of every SNAP path, e.g. `/pg`.
    #[arg(long, default_value = "")]
    pub path_prefix: String,
    /// Fault: settle payments without notifying the merchant.
    #[arg(long)]
    pub drop_notifications: bool,
    /// Fault: wait this long before notifying.
    #[arg(long, default_value_t = 0)]
    pub notify_delay_ms: u64,
    /// Fault: answer 500 General Error on generate.
    #[arg(long)]
    pub fail_generate: bool,
    /// Fault: answer 500 General Error on query.
    #[arg(long)]
    pub fail_query: bool,
    /// Fault: answer 500 General Error on refund.
    #[arg(long)]
    pub fail_refund: bool,
    /// Fault: query always answers 03 (pending).
    #[arg(long)]
    pub pending_forever: bool,
    /// Fault: tokens stop working after this many seconds (expiresIn still says 900).
    #[arg(long)]
    pub token_lifetime_secs: Option<u64>,
}

fn required(v: &Option<String>, flag: &str) -> anyhow::Result<String> {
    v.clone()
        .filter(|s| !s.is_empty())
        .with_context(|| format!("{flag} is required without --init-dir"))
}

/// Runs the simulator until Ctrl-C.
pub async fn run(args: SimulatorArgs) -> anyhow::Result<()> {
    crate::telemetry::init("pretty", "info");
    let (mut cfg, demo) = match &args.init_dir {
        Some(dir) => {
            let demo = init::init_or_load(dir)?;
            let s = &demo.secrets;
            let mut cfg = SimConfig::new(
                &s.client_id,
                &s.client_secret,
                demo.merchant_public.clone(),
                demo.finpay_key.clone(),
                &s.notify_client_id,
                &s.notify_client_secret,
            );
            cfg.merchant_id = Some(s.merchant_id.clone());
            (cfg, Some(demo))
        }
        None => {
            let public = load_public_key(
                "--merchant-public-key",
                &Secret::new(required(&args.merchant_public_key, "--merchant-public-key")?),
            )?;
            let private = load_private_key(
                "--finpay-private-key",
                &Secret::new(required(&args.finpay_private_key, "--finpay-private-key")?),
            )?;
            let cfg = SimConfig::new(
                &required(&args.client_id, "--client-id")?,
                &required(&args.client_secret, "--client-secret")?,
                public,
                private,
                &required(&args.notify_client_id, "--notify-client-id")?,
                &required(&args.notify_client_secret, "--notify-client-secret")?,
            );
            (cfg, None)
        }
    };
    let merchant = args.merchant_url.trim_end_matches('/');
    cfg.listen = args.listen;
    cfg.path_prefix = args.path_prefix.trim_end_matches('/').to_string();
    cfg.merchant_notify_url = Some(format!("{merchant}{}", args.merchant_notify_path));
    cfg.merchant_token_url = Some(format!("{merchant}{}", args.merchant_token_path));
    cfg.faults = Faults {
        drop_notifications: args.drop_notifications,
        notify_delay_ms: args.notify_delay_ms,
        fail_generate: args.fail_generate,
        fail_query: args.fail_query,
        fail_refund: args.fail_refund,
        pending_forever: args.pending_forever,
        paying_forever: false,
        refuse_query: false,
        token_lifetime_secs: args.token_lifetime_secs,
        query_delay_ms: 0,
        validity_echo_shift_secs: 0,
    };
    let handle = spawn(cfg).await?;
    let base = format!("{}{}", handle.base_url(), args.path_prefix.trim_end_matches('/'));
    eprintln!("Finpay simulator listening on {}", handle.base_url());
    if let Some(demo) = &demo {
        let env = init::write_merchant_env(demo, &base, merchant, &args.merchant_notify_path)?;
        eprintln!("Service settings written to {}; start the service with:", env.display());
        eprintln!("  set -a; . {}; set +a; cargo run --release -- serve", env.display());
        eprintln!(
            "Then open the console at http://127.0.0.1:8081/console and sign in with the API key \
             in {} (FINPAY_QRIS__API__KEYS)",
            env.display()
        );
    }
    eprintln!("Control API: GET {0}/sim/payments | POST {0}/sim/payments/<partnerReferenceNo>/pay | .../fail | .../expire | GET/POST {0}/sim/faults", handle.base_url());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    eprintln!("simulator stopping");
    handle.shutdown().await;
    Ok(())
}
