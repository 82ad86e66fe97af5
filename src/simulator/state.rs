//! What the simulated Finpay remembers: QRs and their payments, issued
//! tokens, used `X-EXTERNAL-ID`s, fault switches and counters. All behind
//! one mutex that is never held across an `.await`.

use super::SimConfig;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

/// Fault switches, settable by flags, the control API and [`super::SimHandle`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Payments are settled but the merchant is never notified.
    pub drop_notifications: bool,
    /// Wait this long before notifying.
    pub notify_delay_ms: u64,
    /// Answer `500` General Error on generate / query / refund.
    pub fail_generate: bool,
    pub fail_query: bool,
    pub fail_refund: bool,
    /// Query answers `03` Pending whatever happened to the payment.
    pub pending_forever: bool,
    /// Query answers `02` Paying whatever happened to the payment.
    pub paying_forever: bool,
    /// Query is refused: `400` Invalid Mandatory Field.
    pub refuse_query: bool,
    /// Tokens stop working after this many seconds, though `expiresIn` still says 900.
    pub token_lifetime_secs: Option<u64>,
    /// Extra latency on every query, to make overlapping queries observable.
    pub query_delay_ms: u64,
    /// Generate echoes `validityPeriod` this many seconds off what was asked
    /// (as a wrong time-zone offset would).
    pub validity_echo_shift_secs: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimRefund {
    pub partner_refund_no: String,
    pub reference_no: String,
    pub amount_minor: i64,
    pub refund_time: String,
}

/// One generated QR and what happened to it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimPayment {
    pub partner_reference_no: String,
    pub reference_no: String,
    pub amount_minor: i64,
    pub currency: String,
    /// `latestTransactionStatus`: `03` until paid (`00`) or failed (`06`); `04` once fully refunded.
    pub status: String,
    pub status_desc: String,
    pub valid_until: DateTime<Utc>,
    pub qr_content: String,
    pub callback_url: Option<String>,
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub refunded_minor: i64,
    pub refunds: Vec<SimRefund>,
    pub queries: u64,
}

/// One notification and how its delivery went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    pub partner_reference_no: String,
    pub external_id: String,
    pub status: String,
    pub attempts: u32,
    pub dropped: bool,
    pub delivered: bool,
    pub last_http: Option<u16>,
    pub last_response_code: Option<String>,
    pub last_error: Option<String>,
}

/// Counters for tests and for `GET /sim/stats`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    pub token_requests: u64,
    pub tokens_issued: u64,
    /// Transactional calls refused with `401xx01` (token unknown or expired).
    pub invalid_token_answers: u64,
    /// Transactional calls refused for a bad signature (`401xx00`).
    pub invalid_signatures: u64,
    pub generate_requests: u64,
    pub query_requests: u64,
    pub refund_requests: u64,
    pub injected_failures: u64,
    /// Queries that arrived while another query for the same payment was in progress.
    pub concurrent_queries: u64,
}

/// A request as received, for tests that check what the client sent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub op: String,
    pub path: String,
    pub external_id: String,
    pub body: String,
}

#[derive(Default)]
pub(crate) struct Book {
    pub payments: HashMap<String, SimPayment>,
    /// referenceNo → partnerReferenceNo.
    pub by_reference: HashMap<String, String>,
    /// Bearer token → when it stops working.
    pub tokens: HashMap<String, DateTime<Utc>>,
    pub external_ids: HashSet<(NaiveDate, String)>,
    pub faults: Faults,
    pub stats: SimStats,
    pub queries_in_flight: HashMap<String, u32>,
    pub notifications: Vec<NotificationRecord>,
    pub requests: Vec<RecordedRequest>,
    pub merchant_notify_url: Option<String>,
    pub merchant_token_url: Option<String>,
}

impl Book {
    pub fn find(&self, partner_reference_no: Option<&str>, reference_no: Option<&str>) -> Option<&SimPayment> {
        let by_ref = reference_no.and_then(|r| self.by_reference.get(r));
        let key = partner_reference_no.map(str::to_string).or_else(|| by_ref.cloned())?;
        let p = self.payments.get(&key)?;
        // Both given: they must name the same transaction.
        match reference_no {
            Some(r) if r != p.reference_no => None,
            _ => Some(p),
        }
    }
}

pub(crate) struct Sim {
    pub cfg: SimConfig,
    pub base_url: String,
    pub http: reqwest::Client,
    pub cancel: CancellationToken,
    book: Mutex<Book>,
}

impl Sim {
    pub fn new(cfg: SimConfig, base_url: String, cancel: CancellationToken) -> Self {
        let book = Book {
            faults: cfg.faults.clone(),
            merchant_notify_url: cfg.merchant_notify_url.clone(),
            merchant_token_url: cfg.merchant_token_url.clone(),
            ..Book::default()
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .connect_timeout(std::time::Duration::from_secs(3))
            .build()
            .unwrap_or_default();
        Self {
            cfg,
            base_url,
            http,
            cancel,
            book: Mutex::new(book),
        }
    }

    /// The simulator's state; a poisoned lock (a panicked handler) is still usable.
    pub fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn faults(&self) -> Faults {
        self.book().faults.clone()
    }

    /// Marks a query for `key` as running; the guard ends it. A query that
    /// starts while another for the same payment runs is counted.
    pub fn begin_query(&self, key: &str) -> QueryGuard<'_> {
        let mut book = self.book();
        let running = book.queries_in_flight.entry(key.to_string()).or_default();
        *running += 1;
        if *running > 1 {
            book.stats.concurrent_queries += 1;
        }
        QueryGuard {
            sim: self,
            key: key.to_string(),
        }
    }
}

pub(crate) struct QueryGuard<'a> {
    sim: &'a Sim,
    key: String,
}

impl Drop for QueryGuard<'_> {
    fn drop(&mut self) {
        let mut book = self.sim.book();
        if let Some(n) = book.queries_in_flight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                book.queries_in_flight.remove(&self.key);
            }
        }
    }
}
