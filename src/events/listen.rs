//! `finpay-qris listen`: a small receiver for payment events, like
//! `stripe listen`. It verifies each request as Standard Webhooks v1 (the
//! same `signing` module the sender uses), answers 204 (or 401 when the
//! signature does not hold), and prints one line per event. On exit (Ctrl-C
//! or SIGTERM) it prints how many arrived and their lag, from the event's
//! `timestamp` (its commit) to arrival.

use super::signing::{verify, SigningKey};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::Args;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Args, Debug)]
pub struct ListenArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub listen: String,
    /// The endpoint's signing secret (`whsec_…`); the simulator's demo
    /// settings name it as FINPAY_QRIS__EVENTS__ENDPOINT_SECRET.
    #[arg(long, env = "FINPAY_QRIS_LISTEN_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Accepted age of `webhook-timestamp`, in seconds.
    #[arg(long, default_value_t = 300)]
    pub tolerance_secs: i64,
    /// Print nothing per event, only the summary on exit.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Default)]
struct Seen {
    verified: u64,
    refused: u64,
    lags_ms: Vec<i64>,
}

struct Listener {
    key: SigningKey,
    tolerance_secs: i64,
    quiet: bool,
    seen: Mutex<Seen>,
}

pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let key = SigningKey::parse(&args.secret)?;
    let state = Arc::new(Listener {
        key,
        tolerance_secs: args.tolerance_secs,
        quiet: args.quiet,
        seen: Mutex::new(Seen::default()),
    });
    let app = axum::Router::new().fallback(receive).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on http://{} for payment events", listener.local_addr()?);
    let _ = std::io::stdout().flush();
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::commands::shutdown_signal())
        .await?;
    let seen = state.seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut lags = seen.lags_ms.clone();
    lags.sort_unstable();
    let pct = |p: usize| {
        lags.get((lags.len() * p / 100).min(lags.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "events verified: {}, refused: {}, lag p50: {} ms, p99: {} ms",
        seen.verified,
        seen.refused,
        pct(50),
        pct(99)
    );
    Ok(())
}

async fn receive(State(l): State<Arc<Listener>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now();
    let checked = verify(
        std::slice::from_ref(&l.key),
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        now.timestamp(),
        l.tolerance_secs,
    );
    let Ok(mut seen) = l.seen.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    if let Err(e) = checked {
        seen.refused += 1;
        if !l.quiet {
            println!("refused: {e}");
        }
        return StatusCode::UNAUTHORIZED;
    }
    seen.verified += 1;
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(at) = event["timestamp"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    {
        seen.lags_ms
            .push((now - at.with_timezone(&chrono::Utc)).num_milliseconds().max(0));
    }
    if !l.quiet {
        let d = &event["data"];
        let field = |k: &str| d[k].as_str().map(str::to_string).unwrap_or_else(|| d[k].to_string());
        // A refund's event names the refund's own amount too: the payment's alone misleads.
        let refund = d["refund"]["amount"]
            .as_str()
            .map(|a| format!(" refund={a}"))
            .unwrap_or_default();
        println!(
            "{} {} payment={} partnerReferenceNo={} status={} amount={}{refund} sequence={} cause={}",
            header("webhook-id").unwrap_or_default(),
            event["type"].as_str().unwrap_or_default(),
            field("id"),
            field("partnerReferenceNo"),
            field("status"),
            field("amount"),
            field("sequence"),
            field("cause"),
        );
        let _ = std::io::stdout().flush();
    }
    StatusCode::NO_CONTENT
}
