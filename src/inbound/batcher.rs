//! Group commit for notifications.
//!
//! Handlers verify a notification, then hand it to a writer and wait. A writer
//! takes whatever is queued (up to `max_batch`), stores the whole batch in one
//! transaction, and only after the commit tells each waiting request its own
//! outcome (new, duplicate, or conflict). One commit then carries many
//! notifications instead of one, which is what lets throughput exceed the
//! database's per-transaction ceiling, with every rule unchanged: nobody is
//! answered before the commit that holds its row.
//!
//! If a batch fails for a reason other than the database being unreachable,
//! its items are retried one per transaction, so one odd notification cannot
//! fail its neighbours. A batch that panics is answered General Error (its
//! transaction never committed) and its writer takes the next one.

use crate::store::{InboundNotification, IngestOutcome, Store, StoreError};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Mutex};

type Reply = oneshot::Sender<Result<IngestOutcome, Arc<StoreError>>>;

struct Job {
    item: InboundNotification,
    reply: Reply,
    /// The submitter's span (`batch_wait` when traces are exported, else
    /// disabled): the batch's `commit` span is recorded under it.
    span: tracing::Span,
}

#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Job>,
}

/// Observes every stored batch (for metrics): its size, and the time from
/// taking it off the queue to its commit (read, plan, write).
pub type BatchObserver = Arc<dyn Fn(usize, Duration) + Send + Sync>;

impl Batcher {
    /// Starts `writers` writer tasks. They stop once every `Batcher` clone is
    /// dropped and the queue is drained.
    pub fn start<S: Ingest + ?Sized>(
        store: Arc<S>,
        writers: usize,
        max_batch: usize,
        observer: Option<BatchObserver>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(16_384);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            let rx = rx.clone();
            let store = store.clone();
            let observer = observer.clone();
            tokio::spawn(async move {
                let mut jobs = Vec::with_capacity(max_batch);
                loop {
                    let n = rx.lock().await.recv_many(&mut jobs, max_batch).await;
                    if n == 0 {
                        break;
                    }
                    let started = Instant::now();
                    let batch = AssertUnwindSafe(run_batch(store.as_ref(), std::mem::take(&mut jobs)));
                    if batch.catch_unwind().await.is_err() {
                        // Its requests lost their replies unanswered, so they are
                        // answered General Error and Finpay retries: nothing was
                        // acknowledged. The writer goes on with the next batch.
                        tracing::error!(batch = n, "storing a batch of notifications panicked");
                    }
                    if let Some(o) = &observer {
                        o(n, started.elapsed());
                    }
                    jobs.reserve(max_batch);
                }
            });
        }
        Self { tx }
    }

    /// Stores one notification; resolves after the commit that holds it.
    pub async fn submit(&self, item: InboundNotification) -> Result<IngestOutcome, Arc<StoreError>> {
        let (reply, rx) = oneshot::channel();
        let span = tracing::Span::current();
        if self.tx.send(Job { item, reply, span }).await.is_err() {
            return Err(Arc::new(StoreError::Invalid("notification writer stopped".into())));
        }
        rx.await.unwrap_or_else(|_| {
            Err(Arc::new(StoreError::Invalid(
                "notification writer dropped the request".into(),
            )))
        })
    }
}

/// A `commit` span for a traced request (`None` when it is not traced). It
/// ends when the request's notification has been stored, before the request
/// is answered, so that it ends within the request's span.
fn commit_span(job: &Job, batch: usize) -> Option<tracing::Span> {
    (!job.span.is_disabled()).then(|| tracing::debug_span!(parent: &job.span, "commit", batch))
}

/// What a writer stores batches with: the store, or a stand-in in tests.
#[async_trait::async_trait]
pub trait Ingest: Send + Sync + 'static {
    async fn ingest(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>, StoreError>;
}

#[async_trait::async_trait]
impl Ingest for dyn Store {
    async fn ingest(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>, StoreError> {
        self.ingest_notifications(batch).await
    }
}

async fn run_batch<S: Ingest + ?Sized>(store: &S, jobs: Vec<Job>) {
    let commits: Vec<Option<tracing::Span>> = jobs.iter().map(|j| commit_span(j, jobs.len())).collect();
    let (items, replies): (Vec<InboundNotification>, Vec<Reply>) = jobs.into_iter().map(|j| (j.item, j.reply)).unzip();
    match store.ingest(&items).await {
        Ok(outcomes) => {
            drop(commits);
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) if items.len() == 1 || e.is_unavailable() => {
            drop(commits);
            tracing::error!(error = %e, batch = items.len(), "storing notifications failed");
            let e = Arc::new(e);
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, batch = items.len(), "batch failed; retrying its notifications one by one");
            for ((item, reply), commit) in items.iter().zip(replies).zip(commits) {
                let one = store.ingest(std::slice::from_ref(item)).await;
                drop(commit);
                let _ = reply.send(match one {
                    Ok(mut v) => v
                        .pop()
                        .ok_or_else(|| Arc::new(StoreError::Invalid("no outcome".into()))),
                    Err(e) => {
                        tracing::error!(error = %e, external_id = %item.external_id, "storing notification failed");
                        Err(Arc::new(e))
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Observation, ObservationSource};
    use crate::snap::notify::TransactionStatus;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Panics on the first batch it is given; stores every later one as a replay.
    struct PanicsOnce(AtomicUsize);

    #[async_trait::async_trait]
    impl Ingest for PanicsOnce {
        async fn ingest(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>, StoreError> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a bug in storing a batch");
            }
            Ok(batch.iter().map(|_| IngestOutcome::Duplicate).collect())
        }
    }

    fn notification(external_id: &str) -> InboundNotification {
        InboundNotification {
            partner_id: "FINPAY".into(),
            external_id: external_id.into(),
            jakarta_day: chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
            body_sha256: vec![0; 32],
            raw_body: "{}".into(),
            headers_json: "{}".into(),
            verification: "symmetric:HMAC-SHA512".into(),
            received_at: crate::store::now(),
            observation: Observation {
                source: ObservationSource::Notification,
                original_reference_no: Some("FP-1".into()),
                original_partner_reference_no: None,
                status: TransactionStatus::from_code("00").unwrap(),
                status_desc: None,
                amount: None,
                paid_time: None,
            },
        }
    }

    #[tokio::test]
    async fn a_batch_that_panics_fails_its_own_requests_and_the_writer_goes_on() {
        let batcher = Batcher::start(Arc::new(PanicsOnce(AtomicUsize::new(0))), 1, 16, None);
        let first = batcher.submit(notification("1")).await;
        assert!(first.is_err(), "not acknowledged: {first:?}");
        let second = batcher.submit(notification("2")).await;
        assert!(matches!(second, Ok(IngestOutcome::Duplicate)), "{second:?}");
    }
}
