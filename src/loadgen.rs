//! `finpay-qris loadgen`: signed notifications against a running server.
//!
//! It obtains a bearer token the way Finpay does (RSA over `clientId|X-TIMESTAMP`),
//! builds `--payments` distinct notification bodies (one per payment reference,
//! hashed once), and sends them from `--connections` keep-alive HTTP/1.1
//! connections for `--duration-secs`, each request with its own `X-EXTERNAL-ID`.
//! Each connection notifies its own share of the payments, each payment once;
//! one that has used up its share starts over, and the report says so (a second
//! notification finds the payment already paid, which is not what a run of first
//! deliveries means to measure).
//! Signing is lazy: every request is signed (HMAC-SHA512, about a microsecond)
//! with a timestamp refreshed once a second, so a run of any length stays inside
//! the server's timestamp tolerance. With `--duplicates F`, a fraction F of the
//! requests replays an already acknowledged notification (same external id, same
//! body), which must also be answered `2005200`.
//!
//! With `--flood-rate R`, `--flood-connections` more connections send R badly
//! signed notifications a second in all (`loadgen/flood.rs`), not measured
//! with the valid ones.
//!
//! Every answer's `responseCode` is checked. The report gives requests/s,
//! p50/p99/max latency and the count of answers other than the expected code,
//! then one JSON line for scripts. The client runs on its own small runtime
//! (`--threads`, default 1) so it takes little CPU from the server it measures.

mod connection;
mod flood;
mod tally;

use connection::{connect, send, worker, Stamp};
use tally::Tally;

use crate::snap::{body, keys, signature, timestamp};
use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::Full;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct LoadgenArgs {
    /// Base URL of the server's public listener (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The client id Finpay presents (X-CLIENT-KEY / X-PARTNER-ID).
    #[arg(long, env = "FINPAY_QRIS__INBOUND__CLIENT_ID")]
    pub client_id: String,
    /// The shared secret for the HMAC-SHA512 signatures.
    #[arg(long, env = "FINPAY_QRIS__INBOUND__CLIENT_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Finpay's private key (PEM file or inline PEM), to sign the token request.
    #[arg(long)]
    pub private_key: String,
    #[arg(long, default_value = "/v1.0/access-token/b2b")]
    pub token_path: String,
    #[arg(long, default_value = "/v1.0/qr/qr-mpm-notify")]
    pub notify_path: String,
    #[arg(long, default_value = "95221")]
    pub channel_id: String,
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Measured duration.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Unmeasured warm-up before the measured window.
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Distinct notification bodies, one per payment `{ref_prefix}{1..=N}`.
    #[arg(long, default_value_t = 20_000)]
    pub payments: usize,
    /// `originalPartnerReferenceNo` prefix (the bench seeds payments `PRN1..PRNn`).
    #[arg(long, default_value = "PRN")]
    pub ref_prefix: String,
    /// `originalReferenceNo` prefix (Finpay's reference; the bench seeds `FP1..FPn`).
    /// Prefixes naming no stored payment make every notification a static-QR
    /// payment the service learns from it.
    #[arg(long, default_value = "FP")]
    pub finpay_ref_prefix: String,
    /// `latestTransactionStatus` of every notification.
    #[arg(long, default_value = "00")]
    pub status: String,
    /// `amount.value` of every notification.
    #[arg(long, default_value = "10000.00")]
    pub amount: String,
    /// Fraction of requests that replay an acknowledged notification (0.0–1.0).
    #[arg(long, default_value_t = 0.0)]
    pub duplicates: f64,
    /// Threads of the load generator's own runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// The responseCode every answer must carry.
    #[arg(long, default_value = "2005200")]
    pub expect: String,
    /// Badly signed notifications a second, alongside the valid ones (0: none).
    #[arg(long, default_value_t = 0.0)]
    pub flood_rate: f64,
    /// Connections of their own that carry the flood.
    #[arg(long, default_value_t = 8)]
    pub flood_connections: usize,
}

/// The measured result (also printed as one JSON line).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub connections: usize,
    pub duration_secs: f64,
    pub requests: u64,
    pub duplicates_sent: u64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Requests slower than 250 ms.
    pub over_250_ms: u64,
    /// The slowest request that started in each second of the window, from
    /// `window_start`.
    pub slowest_ms_by_second: Vec<f64>,
    /// When the measured window began (UTC), to place a stall beside the
    /// database's and the service's logs.
    pub window_start: String,
    /// Answers whose responseCode was not the expected one (including transport errors).
    pub unexpected: u64,
    pub transport_errors: u64,
    pub unexpected_codes: std::collections::BTreeMap<String, u64>,
    /// Some connection ran through its share of `--payments` (payments ÷
    /// connections) and notified a payment a second time, under a new
    /// external id: that payment was already paid, so such requests measure
    /// another path than a first delivery. Give more `--payments`.
    pub payments_renotified: bool,
    /// Badly signed notifications sent in the measured window (`--flood-rate`).
    pub flood_requests: u64,
    pub flood_requests_per_sec: f64,
    /// Flood answers other than `4015200`.
    pub flood_unexpected: u64,
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.duplicates) {
        bail!("--duplicates must be between 0.0 and 1.0");
    }
    if !(args.flood_rate >= 0.0 && args.flood_rate.is_finite()) {
        bail!("--flood-rate must be a number of requests a second, 0 or more");
    }
    let threads = args.threads.max(1);
    // A runtime of our own, so the client's CPU is bounded by --threads.
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<Report> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?;
        rt.block_on(drive(args))
    })
    .await??;
    println!(
        "loadgen: {} connections, {:.1} s measured, {} requests ({} duplicate replays)",
        report.connections, report.duration_secs, report.requests, report.duplicates_sent
    );
    println!("requests/s: {:.0}", report.requests_per_sec);
    println!(
        "latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        report.p50_ms, report.p99_ms, report.max_ms
    );
    if report.over_250_ms > 0 {
        let stalls: Vec<String> = report
            .slowest_ms_by_second
            .iter()
            .enumerate()
            .filter(|(_, &ms)| ms > 250.0)
            .map(|(s, ms)| format!("{s} s: {ms:.0} ms"))
            .collect();
        println!(
            "{} requests slower than 250 ms; seconds after {} where they started: {}",
            report.over_250_ms,
            report.window_start,
            stalls.join(", ")
        );
    }
    println!(
        "answers other than expected: {} (transport errors: {}) {:?}",
        report.unexpected, report.transport_errors, report.unexpected_codes
    );
    if report.flood_requests > 0 {
        println!(
            "flood: {} badly signed notifications ({:.0}/s), answers other than 4015200: {}",
            report.flood_requests, report.flood_requests_per_sec, report.flood_unexpected
        );
    }
    if report.payments_renotified {
        println!(
            "warning: a connection used up its share of the payments (--payments / --connections) and notified \
             some a second time, when they were already paid; give more --payments"
        );
    }
    println!("{}", serde_json::to_string(&report)?);
    if report.unexpected > 0 || report.flood_unexpected > 0 {
        bail!(
            "{} answers were not the expected responseCode ({} of the flood's)",
            report.unexpected + report.flood_unexpected,
            report.flood_unexpected
        );
    }
    Ok(())
}

/// Everything a worker needs, shared read-only.
struct Plan {
    addr: SocketAddr,
    authority: String,
    path: String,
    token: String,
    hmac: signature::HmacKey,
    partner_id: String,
    channel_id: String,
    /// `(body, hex(sha256(minified body)))`.
    bodies: Vec<(Bytes, String)>,
    duplicates: f64,
    expect: String,
    /// A per-run prefix so that external ids never repeat across runs on one day.
    run_id: u32,
}

impl Plan {
    /// A notification of body `idx`, signed with `key` (the secret, or a
    /// wrong one for the flood).
    fn request(
        &self,
        key: &signature::HmacKey,
        external_id: &str,
        idx: usize,
        ts: &str,
    ) -> hyper::Request<Full<Bytes>> {
        let (body, hash) = &self.bodies[idx % self.bodies.len()];
        let to_sign = signature::symmetric_string_to_sign("POST", &self.path, &self.token, hash, ts);
        hyper::Request::post(self.path.as_str())
            .header("host", self.authority.as_str())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.token))
            .header("x-timestamp", ts)
            .header("x-signature", key.sign(&to_sign))
            .header("x-partner-id", self.partner_id.as_str())
            .header("x-external-id", external_id)
            .header("channel-id", self.channel_id.as_str())
            .body(Full::new(body.clone()))
            .expect("a well-formed request")
    }
}

pub async fn drive(args: LoadgenArgs) -> anyhow::Result<Report> {
    let authority = args
        .url
        .strip_prefix("http://")
        .context("--url must start with http://")?
        .trim_end_matches('/');
    let addr = tokio::net::lookup_host(authority)
        .await?
        .next()
        .context("--url host does not resolve")?;
    let key = keys::parse_private_key(&read_pem(&args.private_key)?)?;
    let token = obtain_token(&args, &key).await?;
    let bodies = (1..=args.payments.max(1))
        .map(|i| {
            let b = format!(
                r#"{{"originalReferenceNo":"{finpay_prefix}{i}","originalPartnerReferenceNo":"{prefix}{i}","latestTransactionStatus":"{status}","transactionStatusDesc":"loadgen","amount":{{"value":"{amount}","currency":"IDR"}},"additionalInfo":{{"merchantName":"LOADGEN","rrn":"{i:012}"}}}}"#,
                prefix = args.ref_prefix,
                finpay_prefix = args.finpay_ref_prefix,
                status = args.status,
                amount = args.amount
            );
            let hash = body::body_hash(b.as_bytes());
            (Bytes::from(b), hash)
        })
        .collect();
    let plan = Arc::new(Plan {
        addr,
        authority: authority.to_string(),
        path: args.notify_path.clone(),
        token,
        hmac: signature::HmacKey::new(args.secret.as_bytes()),
        partner_id: args.client_id.clone(),
        channel_id: args.channel_id.clone(),
        bodies,
        duplicates: args.duplicates,
        expect: args.expect.clone(),
        run_id: rand::random::<u32>() % 100_000_000,
    });
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_secs);
    let end = measure_from + Duration::from_secs(args.duration_secs.max(1));
    let workers: Vec<_> = (0..args.connections.max(1))
        .map(|w| tokio::spawn(worker(plan.clone(), w, args.connections.max(1), measure_from, end)))
        .collect();
    let flooders = args.flood_connections.max(1);
    let flood: Vec<_> = (0..flooders)
        .filter(|_| args.flood_rate > 0.0)
        .map(|w| {
            let per_connection = args.flood_rate / flooders as f64;
            tokio::spawn(flood::flood(plan.clone(), w, per_connection, measure_from, end))
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        all.merge(w.await?);
    }
    let secs = (end - measure_from).as_secs_f64();
    let mut report = all.report(args.connections, secs);
    report.window_start = (chrono::Utc::now() - chrono::Duration::from_std(Instant::now() - measure_from)?)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for f in flood {
        let f = f.await?;
        report.flood_requests += f.sent;
        report.flood_unexpected += f.unexpected;
    }
    report.flood_requests_per_sec = report.flood_requests as f64 / secs;
    Ok(report)
}

async fn obtain_token(args: &LoadgenArgs, key: &rsa::RsaPrivateKey) -> anyhow::Result<String> {
    let ts = timestamp::format_jakarta(chrono::Utc::now());
    let sig = signature::rsa_sign(key, &signature::token_string_to_sign(&args.client_id, &ts));
    let url = format!("{}{}", args.url.trim_end_matches('/'), args.token_path);
    let resp = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("X-TIMESTAMP", &ts)
        .header("X-CLIENT-KEY", &args.client_id)
        .header("X-SIGNATURE", sig)
        .body(r#"{"grantType":"client_credentials"}"#)
        .send()
        .await
        .with_context(|| format!("token request to {url}"))?;
    let v: serde_json::Value = resp.json().await.context("token answer is not JSON")?;
    match v["accessToken"].as_str() {
        Some(t) => Ok(t.to_string()),
        None => bail!("no token from {url}: {v}"),
    }
}

fn read_pem(value: &str) -> anyhow::Result<String> {
    if value.contains("-----BEGIN") {
        Ok(value.to_string())
    } else {
        std::fs::read_to_string(value).with_context(|| format!("reading {value}"))
    }
}
