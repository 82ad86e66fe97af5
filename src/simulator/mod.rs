//! A Finpay of our own (`finpay-qris simulator`): the SNAP QRIS API as
//! Finpay serves it, over real HTTP, for tests and for a local demo.
//!
//! - `server` and `auth`, `ops`: access token, generate, query and
//!   refund, verifying the merchant's RSA and HMAC signatures and answering
//!   with Finpay's field names and codes; [`qris`]: the QR payload.
//! - `control`: `/sim/...` to pay, fail or expire a QR and to flip fault
//!   switches; `notifier`: notifies the merchant as Finpay does.
//! - [`init`]: `--init-dir` generates keys and secrets for both sides;
//!   `cli`: the command's flags.
//!
//! Tests start one in-process with [`spawn`].

mod auth;
mod cli;
mod control;
pub mod init;
mod notifier;
mod ops;
pub mod qris;
mod server;
mod state;

pub use cli::{run, SimulatorArgs};
pub use control::{ControlError, Settled};
pub use notifier::FirstDelivery;
pub use state::{Faults, NotificationRecord, RecordedRequest, SimPayment, SimRefund, SimStats};

use crate::snap::signature::HmacKey;
use anyhow::Context;
use rsa::{RsaPrivateKey, RsaPublicKey};
use state::Sim;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Where the merchant service issues tokens to Finpay (`inbound.token_path`'s default).
pub const DEFAULT_MERCHANT_TOKEN_PATH: &str = "/v1.0/access-token/b2b";

/// Everything a simulator needs; [`SimConfig::new`] fills in the defaults.
#[derive(Clone)]
pub struct SimConfig {
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// The merchant's client id at Finpay and the secret keying its HMAC signatures.
    pub client_id: String,
    pub client_secret: String,
    /// Verifies the merchant's token requests.
    pub merchant_public_key: RsaPublicKey,
    /// "Finpay's key": signs the simulator's token requests to the merchant.
    pub finpay_private_key: RsaPrivateKey,
    /// Finpay's client id at the merchant and the secret keying notification signatures.
    pub notify_client_id: String,
    pub notify_client_secret: String,
    /// Notify URL when the QR carried no callback; the token URL defaults to
    /// the notify URL's origin + [`DEFAULT_MERCHANT_TOKEN_PATH`].
    pub merchant_notify_url: Option<String>,
    pub merchant_token_url: Option<String>,
    /// When set, requests must name this `merchantId`.
    pub merchant_id: Option<String>,
    pub merchant_name: String,
    pub merchant_city: String,
    pub nmid: String,
    pub channel_id: String,
    /// `expiresIn` of issued tokens.
    pub token_ttl_secs: u64,
    /// Prepended to every SNAP path (Finpay's own URLs start with `/pg`).
    pub path_prefix: String,
    pub token_path: String,
    pub generate_path: String,
    pub query_path: String,
    pub refund_path: String,
    /// Notification attempts, and the first pause between them (doubling).
    pub notify_attempts: u32,
    pub notify_backoff_ms: u64,
    pub timestamp_tolerance_secs: u64,
    pub faults: Faults,
}

impl SimConfig {
    pub fn new(
        client_id: &str,
        client_secret: &str,
        merchant_public_key: RsaPublicKey,
        finpay_private_key: RsaPrivateKey,
        notify_client_id: &str,
        notify_client_secret: &str,
    ) -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            merchant_public_key,
            finpay_private_key,
            notify_client_id: notify_client_id.into(),
            notify_client_secret: notify_client_secret.into(),
            merchant_notify_url: None,
            merchant_token_url: None,
            merchant_id: None,
            merchant_name: "FINPAY SIMULATED MERCHANT".into(),
            merchant_city: "JAKARTA".into(),
            nmid: "ID1023249949984".into(),
            channel_id: "95221".into(),
            token_ttl_secs: 900,
            path_prefix: String::new(),
            token_path: "/snap/oauth/v1.0/access-token/b2b".into(),
            generate_path: "/pg/payment/card/v1.0/qr/qr-mpm-generate".into(),
            query_path: "/pg/payment/card/v1.0/qr/qr-mpm-query".into(),
            refund_path: "/pg/payment/card/v1.0/qr/qr-mpm-refund".into(),
            notify_attempts: 6,
            notify_backoff_ms: 1000,
            timestamp_tolerance_secs: 300,
            faults: Faults::default(),
        }
    }

    pub(crate) fn hmac(&self) -> HmacKey {
        HmacKey::new(self.client_secret.as_bytes())
    }

    pub(crate) fn notify_hmac(&self) -> HmacKey {
        HmacKey::new(self.notify_client_secret.as_bytes())
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("client_id", &self.client_id)
            .field("notify_client_id", &self.notify_client_id)
            .field("merchant_notify_url", &self.merchant_notify_url)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// A running simulator.
pub struct SimHandle {
    base_url: String,
    addr: SocketAddr,
    sim: Arc<Sim>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts a simulator (SNAP endpoints and control API on one listener).
pub async fn spawn(config: SimConfig) -> anyhow::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("simulator cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    let base_url = format!("http://{}", SocketAddr::new(host, addr.port()));
    let cancel = CancellationToken::new();
    let sim = Arc::new(Sim::new(config, base_url.clone(), cancel.clone()));
    let app = server::routes(sim.clone()).merge(control::routes(sim.clone()));
    let task = tokio::spawn(async move {
        let stop = async move { cancel.cancelled().await };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::error!(error = %e, "simulator server failed");
        }
    });
    Ok(SimHandle {
        base_url,
        addr,
        sim,
        task,
    })
}

impl SimHandle {
    /// E.g. `http://127.0.0.1:40123`: Finpay's base URL for the service.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The customer pays; the merchant is notified in the background (fault
    /// switches permitting). `POST /sim/payments/{ref}/pay` waits instead.
    pub fn pay(&self, partner_reference_no: &str) -> Result<SimPayment, ControlError> {
        control::settle(&self.sim, partner_reference_no, control::Outcome::Paid).map(|(p, _)| p)
    }

    /// The payment fails (`06`); the merchant is notified in the background.
    pub fn fail(&self, partner_reference_no: &str) -> Result<SimPayment, ControlError> {
        control::settle(&self.sim, partner_reference_no, control::Outcome::Failed).map(|(p, _)| p)
    }

    /// The QR's validity ends now.
    pub fn expire(&self, partner_reference_no: &str) -> Result<SimPayment, ControlError> {
        control::expire(&self.sim, partner_reference_no)
    }

    pub fn payment(&self, partner_reference_no: &str) -> Option<SimPayment> {
        self.sim.book().payments.get(partner_reference_no).cloned()
    }

    pub fn faults(&self) -> Faults {
        self.sim.faults()
    }

    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.sim.book().faults);
    }

    /// Every issued token stops working now (Finpay expiring tokens early).
    pub fn revoke_tokens(&self) {
        self.sim.book().tokens.clear();
    }

    pub fn stats(&self) -> SimStats {
        self.sim.book().stats.clone()
    }

    pub fn notifications(&self) -> Vec<NotificationRecord> {
        self.sim.book().notifications.clone()
    }

    /// Transactional requests as received (the last thousand).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.sim.book().requests.clone()
    }

    /// Where notifications go when a QR names no callback, and where the
    /// merchant's token endpoint is.
    pub fn set_merchant(&self, notify_url: &str, token_url: &str) {
        let mut book = self.sim.book();
        book.merchant_notify_url = Some(notify_url.into());
        book.merchant_token_url = Some(token_url.into());
    }

    /// Stops serving and abandons pending notifications.
    pub async fn shutdown(self) {
        self.sim.cancel.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }
}
