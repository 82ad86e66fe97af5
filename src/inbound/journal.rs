//! The journal of refused requests, written off the accept path.
//!
//! A handler that answers a 4xx hands the refusal to [`Journal::record`],
//! which only queues it (a bounded channel); when the queue is full the
//! refusal is dropped and counted, so a storm of bad requests cannot slow
//! the valid ones. One writer task takes what is queued, has the doctor
//! explain refused signatures (at most `refusals.diagnoses_per_sec`; the
//! rest are stored undiagnosed), stores the batch in one transaction (at most
//! ten a second), and keeps the table within `refusals.max_rows` and
//! `refusals.max_age_days`.

use super::redact::redacted_headers;
use super::suspect::{DoctorKeys, Route, Suspect};
use crate::config::RefusalSettings;
use crate::metrics::Metrics;
use crate::snap::codes::SnapStatus;
use crate::store::refusals::Reason;
use crate::store::{Refusal, Store};
use axum::body::Bytes;
use axum::http::HeaderMap;
use sqlx::types::Json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Refusals stored per transaction at most.
const BATCH: usize = 256;
/// The writer's pause after each transaction: at most ten a second, so a
/// storm of refusals takes the database (SQLite's one write lock above all)
/// from the notifications' writers for a few short moments a second.
const PAUSE: Duration = Duration::from_millis(100);
/// Rows deleted per statement when pruning.
const PRUNE_BATCH: i64 = 500;
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A refusal waiting for the writer, with what the doctor needs.
struct Pending {
    row: Refusal,
    suspect: Option<Suspect>,
}

pub struct Journal {
    queue: mpsc::Sender<Pending>,
    metrics: Arc<Metrics>,
    body_limit: usize,
}

/// What the handler knows about a refusal.
pub struct Refused<'a> {
    pub route: Route,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub peer: Option<SocketAddr>,
    pub status: &'a SnapStatus,
    /// The body, unless it could not be read (too large, too slow).
    pub body: Option<&'a Bytes>,
    /// What the doctor needs, for a refused signature.
    pub suspect: Option<Suspect>,
}

impl Journal {
    /// Starts the writer; it stops when the last `Journal` is dropped.
    pub fn start(store: Arc<dyn Store>, settings: &RefusalSettings, metrics: Arc<Metrics>, keys: DoctorKeys) -> Self {
        let (queue, rx) = mpsc::channel(settings.queue.max(1));
        let writer = Writer {
            store,
            metrics: metrics.clone(),
            keys: Arc::new(keys),
            max_rows: settings.max_rows,
            max_age: chrono::Duration::days(i64::from(settings.max_age_days)),
            per_sec: settings.diagnoses_per_sec,
        };
        tokio::spawn(writer.run(rx));
        Self {
            queue,
            metrics,
            body_limit: settings.body_limit_bytes,
        }
    }

    /// Queues a refusal; never waits.
    pub fn record(&self, r: Refused<'_>) {
        let reason = reason(r.status);
        self.metrics.inc(
            "finpay_qris_refusals_total",
            &[("route", r.route.as_str()), ("reason", reason)],
        );
        let row = Refusal {
            id: uuid::Uuid::now_v7().to_string(),
            received_at: crate::store::now(),
            route: r.route.as_str().into(),
            path: r.path.to_string(),
            response_code: r.status.code(),
            reason: reason.into(),
            message: r.status.message.clone(),
            sender: r.peer.map(|p| p.ip().to_string()),
            headers: Json(redacted_headers(r.headers)),
            body: r.body.map(|b| kept_part(b, self.body_limit).to_vec()),
            body_bytes: r.body.map_or(0, |b| b.len() as i64),
            dialects: None,
            diagnosis: None,
        };
        let suspect = r.suspect.filter(|_| reason == "invalid_signature");
        if self.queue.try_send(Pending { row, suspect }).is_err() {
            self.metrics.inc("finpay_qris_refusals_dropped_total", &[]);
        }
    }
}

/// The reason of a refusal, read from the SNAP answer.
pub fn reason(status: &SnapStatus) -> &'static str {
    let reason = match (status.http, status.case) {
        (401, _) => Reason::parse(super::error::auth_failure_reason(status)).unwrap_or(Reason::Other),
        (400, 0) => Reason::BadRequest,
        (400, 1) => Reason::InvalidField,
        (400, 2) => Reason::MissingField,
        (409, _) => Reason::Conflict,
        _ => Reason::Other,
    };
    reason.as_str()
}

struct Writer {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    keys: Arc<DoctorKeys>,
    max_rows: i64,
    max_age: chrono::Duration,
    per_sec: u32,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Pending>) {
        let mut budget = Budget::new(self.per_sec);
        // Pruning runs on its own clock, so old refusals go also when no new ones come,
        // and after every tenth of `max_rows` written, so a storm of refusals cannot
        // pile up far past it between two ticks.
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        let mut written: i64 = 0;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                received = rx.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        return;
                    }
                    let mut rows = self.diagnosed(std::mem::take(&mut batch), &mut budget).await;
                    rows.iter_mut().for_each(storable);
                    match self.store.insert_refusals(&rows).await {
                        Ok(()) => written += rows.len() as i64,
                        Err(e) => {
                            self.metrics
                                .add("finpay_qris_refusals_dropped_total", &[], rows.len() as u64);
                            tracing::warn!(error = %e, refusals = rows.len(), "refusals not journaled");
                        }
                    }
                    if written >= (self.max_rows / 10).max(1) {
                        written = 0;
                        self.prune().await;
                    }
                    tokio::time::sleep(PAUSE).await;
                }
                _ = prune.tick() => self.prune().await,
            }
        }
    }

    /// The rows of a batch, with the doctor's findings on the refused
    /// signatures the budget allows (run on a blocking thread: CPU work).
    async fn diagnosed(&self, batch: Vec<Pending>, budget: &mut Budget) -> Vec<Refusal> {
        let mut jobs = Vec::new();
        let mut rows = Vec::with_capacity(batch.len());
        for (i, p) in batch.into_iter().enumerate() {
            match p.suspect {
                Some(s) if budget.take() => jobs.push((i, s)),
                Some(_) => self
                    .metrics
                    .inc("finpay_qris_diagnoses_total", &[("dialect", "skipped")]),
                None => {}
            }
            rows.push(p.row);
        }
        if jobs.is_empty() {
            return rows;
        }
        let keys = self.keys.clone();
        let found = tokio::task::spawn_blocking(move || {
            jobs.into_iter()
                .map(|(i, s)| (i, keys.diagnose(&s)))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (i, d) in found {
            if d.dialects.is_empty() {
                self.metrics.inc("finpay_qris_diagnoses_total", &[("dialect", "none")]);
            }
            for dialect in &d.dialects {
                self.metrics
                    .inc("finpay_qris_diagnoses_total", &[("dialect", dialect.id())]);
            }
            if let Some(row) = rows.get_mut(i) {
                row.dialects = Some(Json(d.dialects.iter().map(|x| x.id().to_string()).collect()));
                row.diagnosis = Some(d.explanation);
            }
        }
        rows
    }

    /// Deletes, in small batches, what is past the age or the count.
    async fn prune(&self) {
        let before = crate::store::now() - self.max_age;
        loop {
            match self.store.prune_refusals(before, self.max_rows, PRUNE_BATCH).await {
                Ok(n) if n > 0 => tokio::task::yield_now().await,
                Ok(_) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "refusal pruning skipped");
                    return;
                }
            }
        }
    }
}

/// Diagnoses allowed per second: a bucket of `per_sec` refilled each second.
struct Budget {
    per_sec: u32,
    left: u32,
    since: Instant,
}

impl Budget {
    fn new(per_sec: u32) -> Self {
        Self {
            per_sec,
            left: per_sec,
            since: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        if self.since.elapsed() >= Duration::from_secs(1) {
            self.left = self.per_sec;
            self.since = Instant::now();
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

/// A row any backend stores: PostgreSQL's text holds no NUL, and a client
/// can put one in what the answer quotes (a JSON key in the message), which
/// would lose its whole batch. Written as `\u0000`, as the answer's JSON has it.
fn storable(row: &mut Refusal) {
    // After the doctor (which needs the path as signed): a query's values are
    // kept only as hashes, in the path and in the diagnosis that quotes it.
    if let Some((path, query)) = row.path.split_once('?') {
        let redacted = super::redact::redacted_query(query);
        if let Some(d) = row.diagnosis.as_mut() {
            *d = d.replace(query, &redacted);
        }
        row.path = format!("{path}?{redacted}");
    }
    for text in [&mut row.path, &mut row.message]
        .into_iter()
        .chain(row.sender.as_mut())
        .chain(row.diagnosis.as_mut())
    {
        if text.contains('\0') {
            *text = text.replace('\0', "\\u0000");
        }
    }
}

/// The first `limit` bytes of a body, or a little fewer so as not to end
/// inside a UTF-8 character: a text body stays text, however it is cut.
fn kept_part(body: &[u8], limit: usize) -> &[u8] {
    if body.len() <= limit {
        return body;
    }
    let mut end = limit;
    // A UTF-8 character is at most four bytes: three continuation bytes at most.
    while end > 0 && limit - end < 3 && (body[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    &body[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_read_from_the_snap_answer() {
        use crate::snap::codes::service::NOTIFY;
        assert_eq!(
            reason(&SnapStatus::unauthorized(NOTIFY, "Invalid Signature")),
            "invalid_signature"
        );
        assert_eq!(reason(&SnapStatus::invalid_token(NOTIFY)), "invalid_token");
        assert_eq!(
            reason(&SnapStatus::invalid_mandatory_field(NOTIFY, "X")),
            "missing_field"
        );
        assert_eq!(reason(&SnapStatus::invalid_field_format(NOTIFY, "X")), "invalid_field");
        assert_eq!(reason(&SnapStatus::bad_request(NOTIFY, None)), "bad_request");
        assert_eq!(reason(&SnapStatus::conflict(NOTIFY)), "conflict");
    }

    #[test]
    fn a_full_queue_drops_the_refusal_and_counts_it_without_waiting() {
        let (queue, _rx) = mpsc::channel(1);
        let metrics = Arc::new(Metrics::default());
        let journal = Journal {
            queue,
            metrics: metrics.clone(),
            body_limit: 16,
        };
        let headers = HeaderMap::new();
        let status = SnapStatus::invalid_token(crate::snap::codes::service::NOTIFY);
        for _ in 0..3 {
            journal.record(Refused {
                route: Route::Notify,
                path: "/p",
                headers: &headers,
                peer: None,
                status: &status,
                body: None,
                suspect: None,
            });
        }
        assert_eq!(metrics.counter("finpay_qris_refusals_dropped_total", &[]), 2);
        let labels = [("route", "notify"), ("reason", "invalid_token")];
        assert_eq!(metrics.counter("finpay_qris_refusals_total", &labels), 3);
    }

    #[test]
    fn a_nul_a_client_put_in_the_message_is_stored_as_its_escape() {
        let mut row = Refusal {
            id: "r".into(),
            received_at: chrono::Utc::now(),
            route: "notify".into(),
            path: "/p".into(),
            response_code: "4005200".into(),
            reason: "bad_request".into(),
            message: "Bad Request. duplicate key `k\0`".into(),
            sender: None,
            headers: sqlx::types::Json(Default::default()),
            body: None,
            body_bytes: 0,
            dialects: None,
            diagnosis: Some("quoted \0".into()),
        };
        storable(&mut row);
        assert_eq!(row.message, "Bad Request. duplicate key `k\\u0000`");
        assert_eq!(row.diagnosis.as_deref(), Some("quoted \\u0000"));
    }

    #[test]
    fn a_kept_body_is_cut_between_characters() {
        let body = "aé€😀".repeat(100);
        for limit in 0..body.len() + 2 {
            let kept = kept_part(body.as_bytes(), limit);
            assert!(
                kept.len() <= limit && limit.min(body.len()) - kept.len() <= 3,
                "{limit}"
            );
            assert!(std::str::from_utf8(kept).is_ok(), "cut inside a character at {limit}");
        }
        let binary = [0x80u8; 10];
        assert_eq!(kept_part(&binary, 5).len(), 2, "never more than three bytes less");
    }

    #[test]
    fn the_budget_allows_per_second_then_refuses() {
        let mut b = Budget::new(2);
        assert!(b.take() && b.take());
        assert!(!b.take());
        assert!(!Budget::new(0).take());
    }
}
