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
//! Every answer's `responseCode` is checked. The report gives requests/s,
//! p50/p99/max latency and the count of answers other than the expected code,
//! then one JSON line for scripts. The client runs on its own small runtime
//! (`--threads`, default 1) so it takes little CPU from the server it measures.

use crate::snap::{body, keys, signature, timestamp};
use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
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
    /// Answers whose responseCode was not the expected one (including transport errors).
    pub unexpected: u64,
    pub transport_errors: u64,
    pub unexpected_codes: std::collections::BTreeMap<String, u64>,
    /// Some connection ran through its share of `--payments` (payments ÷
    /// connections) and notified a payment a second time, under a new
    /// external id: that payment was already paid, so such requests measure
    /// another path than a first delivery. Give more `--payments`.
    pub payments_renotified: bool,
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.duplicates) {
        bail!("--duplicates must be between 0.0 and 1.0");
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
    println!(
        "answers other than expected: {} (transport errors: {}) {:?}",
        report.unexpected, report.transport_errors, report.unexpected_codes
    );
    if report.payments_renotified {
        println!(
            "warning: a connection used up its share of the payments (--payments / --connections) and notified \
             some a second time, when they were already paid; give more --payments"
        );
    }
    println!("{}", serde_json::to_string(&report)?);
    if report.unexpected > 0 {
        bail!("{} answers were not the expected responseCode", report.unexpected);
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
    let mut all = Tally::default();
    for w in workers {
        all.merge(w.await?);
    }
    Ok(all.report(args.connections, (end - measure_from).as_secs_f64()))
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

/// One worker's counts and latencies (microseconds) in the measured window.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    duplicates: u64,
    unexpected: u64,
    transport_errors: u64,
    codes: std::collections::BTreeMap<String, u64>,
    /// This connection used up its share of the payments and started over.
    payments_renotified: bool,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.latencies_us.extend(o.latencies_us);
        self.duplicates += o.duplicates;
        self.unexpected += o.unexpected;
        self.transport_errors += o.transport_errors;
        self.payments_renotified |= o.payments_renotified;
        for (k, v) in o.codes {
            *self.codes.entry(k).or_default() += v;
        }
    }

    fn report(mut self, connections: usize, secs: f64) -> Report {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies_us.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies_us.len() as f64 * p).ceil() as usize).clamp(1, self.latencies_us.len()) - 1;
            self.latencies_us[i] as f64 / 1000.0
        };
        let n = self.latencies_us.len() as u64;
        Report {
            connections,
            duration_secs: secs,
            requests: n,
            duplicates_sent: self.duplicates,
            requests_per_sec: n as f64 / secs,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            max_ms: pct(1.0),
            unexpected: self.unexpected,
            transport_errors: self.transport_errors,
            unexpected_codes: self.codes,
            payments_renotified: self.payments_renotified,
        }
    }
}

/// A small xorshift generator: the worker's choices need no cryptographic quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// The payments one connection notifies: its own contiguous share of the
/// bodies, each once, so that no payment is notified twice (under two external
/// ids) while any share lasts. A second notification would find its payment
/// already paid, which is not the first delivery the benchmark measures.
struct Share {
    first: usize,
    len: usize,
    sent: usize,
    bodies: usize,
}

impl Share {
    fn of(connection: usize, connections: usize, bodies: usize) -> Self {
        let bodies = bodies.max(1);
        let len = (bodies / connections.max(1)).max(1);
        Self {
            first: (connection * len) % bodies,
            len,
            sent: 0,
            bodies,
        }
    }

    /// The next body to send, and whether the share was used up and started over.
    fn next(&mut self) -> (usize, bool) {
        let again = self.sent == self.len;
        if again {
            self.sent = 0;
        }
        let i = (self.first + self.sent) % self.bodies;
        self.sent += 1;
        (i, again)
    }
}

/// Sends requests one after another on one connection until `end`.
async fn worker(plan: Arc<Plan>, w: usize, connections: usize, measure_from: Instant, end: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut seq: u64 = 0;
    let mut share = Share::of(w, connections, plan.bodies.len());
    // Acknowledged (external id, body index) pairs this worker may replay.
    let mut acked: Vec<(String, usize)> = Vec::new();
    let mut stamp = Stamp::default();
    let mut conn: Option<http1::SendRequest<Full<Bytes>>> = None;
    while Instant::now() < end {
        let sender = match conn.as_mut() {
            Some(s) => s,
            None => match connect(plan.addr).await {
                Ok(s) => conn.insert(s),
                Err(_) => {
                    tally.transport_errors += 1;
                    tally.unexpected += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let replay = !acked.is_empty() && rng.chance(plan.duplicates);
        let (external_id, idx) = if replay {
            acked[(rng.next() % acked.len() as u64) as usize].clone()
        } else {
            seq += 1;
            let (idx, again) = share.next();
            tally.payments_renotified |= again;
            (format!("{:08}{:04}{seq}", plan.run_id, w), idx)
        };
        let (body, hash) = &plan.bodies[idx];
        let ts = stamp.now();
        let to_sign = signature::symmetric_string_to_sign("POST", &plan.path, &plan.token, hash, ts);
        let req = hyper::Request::post(plan.path.as_str())
            .header("host", plan.authority.as_str())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", plan.token))
            .header("x-timestamp", ts)
            .header("x-signature", plan.hmac.sign(&to_sign))
            .header("x-partner-id", plan.partner_id.as_str())
            .header("x-external-id", external_id.as_str())
            .header("channel-id", plan.channel_id.as_str())
            .body(Full::new(body.clone()))
            .expect("a well-formed request");
        let started = Instant::now();
        let answer = send(sender, req).await;
        let done = Instant::now();
        let measured = started >= measure_from && done <= end;
        match answer {
            Ok(code) if code == plan.expect => {
                if !replay {
                    if acked.len() < 1024 {
                        acked.push((external_id, idx));
                    } else {
                        let slot = (rng.next() % 1024) as usize;
                        acked[slot] = (external_id, idx);
                    }
                }
            }
            Ok(code) => {
                tally.unexpected += 1;
                *tally.codes.entry(code).or_default() += 1;
            }
            Err(_) => {
                conn = None;
                tally.transport_errors += 1;
                tally.unexpected += 1;
            }
        }
        if measured {
            tally
                .latencies_us
                .push((done - started).as_micros().min(u32::MAX as u128) as u32);
            tally.duplicates += replay as u64;
        }
    }
    tally
}

async fn connect(addr: SocketAddr) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and returns the answer's `responseCode`.
async fn send(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    req: hyper::Request<Full<Bytes>>,
) -> anyhow::Result<String> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok(response_code(&bytes).unwrap_or_else(|| format!("http-{status}")))
}

/// `responseCode` from a SNAP answer, without parsing the whole JSON.
fn response_code(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"responseCode\":\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &body[at..];
    let len = rest.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&rest[..len]).ok().map(str::to_string)
}

/// The `X-TIMESTAMP` value, formatted at most once a second.
#[derive(Default)]
struct Stamp {
    at: Option<Instant>,
    value: String,
}

impl Stamp {
    fn now(&mut self) -> &str {
        if self.at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            self.value = timestamp::format_jakarta(chrono::Utc::now());
            self.at = Some(Instant::now());
        }
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_code_is_read_from_a_snap_answer() {
        assert_eq!(
            response_code(br#"{"responseCode":"2005200","responseMessage":"Successful"}"#).as_deref(),
            Some("2005200")
        );
        assert_eq!(response_code(b"not json"), None);
    }

    #[test]
    fn each_connection_notifies_its_own_payments_until_its_share_is_used_up() {
        let (connections, bodies) = (64, 100_000);
        let share = bodies / connections;
        let mut seen = std::collections::HashSet::new();
        for w in 0..connections {
            let mut s = Share::of(w, connections, bodies);
            for _ in 0..share {
                let (i, again) = s.next();
                assert!(!again, "connection {w} started over inside its share");
                assert!(seen.insert(i), "payment {i} notified by two connections");
            }
            let (i, again) = s.next();
            assert!(again, "connection {w} went past its share without saying so");
            assert_eq!(
                i,
                w * share,
                "connection {w} starts over at the beginning of its own share"
            );
        }
    }

    #[test]
    fn more_connections_than_payments_still_send() {
        let mut s = Share::of(5, 8, 3);
        let (first, _) = s.next();
        assert!(first < 3);
        assert!(s.next().1, "a share of one payment is used up by the second request");
    }

    #[test]
    fn one_connection_that_started_over_flags_the_whole_report() {
        let mut all = Tally::default();
        all.merge(Tally::default());
        all.merge(Tally {
            payments_renotified: true,
            ..Default::default()
        });
        all.merge(Tally::default());
        assert!(all.report(3, 1.0).payments_renotified);
        let mut none = Tally::default();
        none.merge(Tally::default());
        assert!(!none.report(1, 1.0).payments_renotified);
    }

    #[test]
    fn percentiles_come_from_the_sorted_latencies() {
        let t = Tally {
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            ..Default::default()
        };
        let r = t.report(1, 1.0);
        assert_eq!((r.p50_ms, r.p99_ms, r.max_ms), (50.0, 99.0, 100.0));
        assert_eq!(r.requests, 100);
    }
}
