//! SNAP client for Finpay: what we call at Finpay (`qr-mpm-generate`,
//! `qr-mpm-query`, `qr-mpm-refund`, and the B2B access token they need).
//!
//! - `token`: the access token, cached, refreshed before expiry, one
//!   refresh shared by all concurrent callers.
//! - `transport`: one signed POST (headers, HMAC over the exact bytes sent)
//!   and how an answer is judged.
//! - [`wire`]: request bodies in Finpay's field order, lenient answer parsing.
//!
//! Retry policy: a query has no effect at Finpay, so it is retried with
//! backoff on timeouts and 5xx. Generate and refund are never retried here:
//! the caller repeats them with the same `partnerReferenceNo` /
//! `partnerRefundNo` once it knows (by querying) that repeating is safe. The
//! only automatic repeat of those is after an invalid-token answer, which
//! Finpay gives before doing anything.

mod token;
mod transport;
pub mod wire;

use crate::config::{FinpayCredentials, FinpaySettings};
use crate::domain::Observation;
use crate::metrics::Metrics;
use crate::snap::notify::Amount;
use chrono::{DateTime, Utc};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use token::TokenSlot;
use tracing::Instrument;
use transport::{Op, Transport};

/// Query attempts per call (the first one included).
const QUERY_ATTEMPTS: u32 = 3;
/// Delay before the second query attempt; doubled for each later one.
const QUERY_BACKOFF: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub partner_reference_no: String,
    pub amount: Amount,
    pub valid_until: DateTime<Utc>,
    pub note: Option<String>,
    pub tips: Option<Tips>,
}

/// How the customer may add a tip (`additionalInfo.tips_indikator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tips {
    /// `01` with `tips_fixamount`.
    Fixed(Amount),
    /// `02` with `tips_percentage`, e.g. `"10.00"`.
    Percentage(String),
    /// The customer types the tip. Finpay documents only `01` (fixed) and
    /// `02` (percentage); we send `01` with a zero amount, which is what an
    /// open tip looks like in its scheme. Confirm with Finpay before use.
    Open,
}

#[derive(Debug, Clone)]
pub struct GenerateResponse {
    pub response_code: String,
    pub reference_no: Option<String>,
    pub qr_content: String,
    pub qr_url: Option<String>,
    pub valid_until: Option<DateTime<Utc>>,
    pub raw: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub original_partner_reference_no: Option<String>,
    pub original_reference_no: Option<String>,
    /// Sent only when `finpay.query_sends_amount` is set.
    pub amount: Amount,
}

#[derive(Debug, Clone)]
pub struct QueryResponse {
    pub response_code: String,
    /// What Finpay said, with `source` = query.
    pub observation: Observation,
    pub raw: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub original_partner_reference_no: Option<String>,
    pub original_reference_no: Option<String>,
    pub partner_refund_no: String,
    pub amount: Amount,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct RefundResponse {
    pub response_code: String,
    pub reference_no: Option<String>,
    pub refund_time: Option<String>,
    pub raw: serde_json::Value,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum FinpayError {
    /// No answer in time: the outcome is UNKNOWN (a generate or refund may
    /// have been carried out).
    #[error("Finpay did not answer in time")]
    Timeout,
    /// Connection failure, or HTTP 5xx.
    #[error("Finpay unavailable: {0}")]
    Unavailable(String),
    /// Finpay answered with a non-success SNAP code.
    #[error("Finpay refused: HTTP {http}, responseCode {response_code} ({message})")]
    Rejected {
        http: u16,
        response_code: String,
        message: String,
    },
    /// An answer we cannot read (not JSON, fields missing).
    #[error("unreadable answer from Finpay: {0}")]
    InvalidResponse(String),
}

impl FinpayError {
    /// The `kind` label of `finpay_qris_finpay_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unavailable(_) => "unavailable",
            Self::Rejected { .. } => "rejected",
            Self::InvalidResponse(_) => "invalid_response",
        }
    }

    /// Worth asking again soon: the failure was on the way, not in the answer.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout | Self::Unavailable(_))
    }

    /// Finpay refused the request itself, in SNAP's words: a 4xx with a
    /// response code of that status (`400xxyy`), other than a refused token
    /// (which the client already renewed once), a timeout, a conflict or a
    /// rate limit, which pass. Asked the same again, Finpay is expected to
    /// refuse again. A 4xx without such a code (a gateway's page) and an
    /// answer we cannot read are not counted: they may pass too.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Rejected {
                http, response_code, ..
            } => {
                (400..500).contains(http)
                    && !matches!(http, 401 | 408 | 409 | 429)
                    && crate::snap::codes::parse_code(response_code).is_some_and(|c| c.http == *http)
            }
            Self::Timeout | Self::Unavailable(_) | Self::InvalidResponse(_) => false,
        }
    }

    /// Finpay says it has no such transaction (`404xx01`). Only that case:
    /// other 404s (`404xx08` "Invalid merchant", a gateway's 404 for a wrong
    /// path) say nothing about the transaction.
    pub fn is_not_found(&self) -> bool {
        self.is_case(404, "01")
    }

    /// Finpay already holds a transaction under this reference (`409xx01`,
    /// "Duplicate partnerReferenceNo").
    pub fn is_duplicate_reference(&self) -> bool {
        self.is_case(409, "01")
    }

    /// A refusal with HTTP `status` and a code `{status}{service}{case}`,
    /// whatever the service digits.
    fn is_case(&self, status: u16, case: &str) -> bool {
        matches!(self, Self::Rejected { http, response_code, .. }
            if *http == status && response_code.len() == 7
                && response_code.starts_with(&status.to_string()) && response_code.ends_with(case))
    }
}

pub struct FinpayClient {
    transport: Transport,
    tokens: TokenSlot,
    settings: FinpaySettings,
}

impl FinpayClient {
    /// The longest one call can take: waiting for a token another caller is
    /// fetching, then a token and the request, and both once more after an
    /// invalid-token answer, each bounded by `timeout_secs`; plus a margin.
    /// A send held for this long is over, or its holder is gone.
    pub fn longest_call(settings: &FinpaySettings) -> chrono::Duration {
        chrono::Duration::seconds(5 * settings.timeout_secs.max(1) as i64 + 5)
    }

    /// The longest [`ensure_token`](Self::ensure_token) can take: waiting
    /// for a token another caller is fetching, then fetching one.
    pub fn longest_token_wait(settings: &FinpaySettings) -> chrono::Duration {
        chrono::Duration::seconds(2 * settings.timeout_secs.max(1) as i64)
    }

    /// Gets an access token now unless one is cached, so that a generate or
    /// refund is taken for a send only once it can be sent: a token Finpay
    /// refuses (our credentials, our clock) is not an answer about it.
    pub async fn ensure_token(&self) -> Result<(), FinpayError> {
        self.tokens.get(|| self.transport.fetch_token()).await.map(|_| ())
    }

    pub fn new(creds: FinpayCredentials, settings: &FinpaySettings, metrics: Arc<Metrics>) -> Self {
        Self {
            transport: Transport::new(creds, settings, metrics),
            tokens: TokenSlot::default(),
            settings: settings.clone(),
        }
    }

    /// `qr-mpm-generate`. Never retried here (see the module docs).
    pub async fn generate(&self, req: &GenerateRequest) -> Result<GenerateResponse, FinpayError> {
        let body = wire::generate_body(req, &self.settings);
        let answer = self.call(Op::Generate, &self.settings.generate_path, &body).await?;
        wire::parse_generate(answer, req)
    }

    /// `qr-mpm-query`, retried with backoff and jitter on timeouts and 5xx,
    /// each attempt with a fresh `X-EXTERNAL-ID` and signature.
    pub async fn query(&self, req: &QueryRequest) -> Result<QueryResponse, FinpayError> {
        let body = wire::query_body(req, &self.settings);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.call(Op::Query, &self.settings.query_path, &body).await {
                Ok(answer) => return wire::parse_query(answer, req),
                Err(e) if e.is_transient() && attempt < QUERY_ATTEMPTS => {
                    let base = QUERY_BACKOFF * 2u32.pow(attempt - 1);
                    // Full jitter in [base/2, base]: replicas that failed together do not retry together.
                    let delay = base.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
                    tracing::debug!(attempt, error = %e, ?delay, "query failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `qr-mpm-refund`. Never retried here (see the module docs).
    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundResponse, FinpayError> {
        let body = wire::refund_body(req, &self.settings);
        let answer = self.call(Op::Refund, &self.settings.refund_path, &body).await?;
        wire::parse_refund(answer, req)
    }

    /// One signed call, plus exactly one refresh-and-retry when Finpay says
    /// the token is invalid (it may expire tokens before `expiresIn`).
    async fn call(&self, op: Op, path: &str, body: &[u8]) -> Result<transport::Answer, FinpayError> {
        let span = tracing::info_span!("finpay_call", op = op.as_str(), error = tracing::field::Empty);
        let result = async {
            let mut refreshed = false;
            loop {
                let token = self.tokens.get(|| self.transport.fetch_token()).await?;
                let answer = self.transport.post_signed(op, path, body, &token).await?;
                if answer.is_invalid_token() && !refreshed {
                    tracing::info!(op = op.as_str(), "Finpay refused the access token; refreshing it once");
                    self.transport.count_error(op, "invalid_token");
                    self.tokens.invalidate(&token);
                    refreshed = true;
                    continue;
                }
                return answer.judge();
            }
        }
        .instrument(span.clone())
        .await;
        if let Err(e) = &result {
            span.record("error", e.kind());
            self.transport.count_error(op, e.kind());
        }
        result
    }
}
