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
//! fail its neighbours.

use crate::store::{InboundNotification, IngestOutcome, Store, StoreError};
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
    pub fn start(store: Arc<dyn Store>, writers: usize, max_batch: usize, observer: Option<BatchObserver>) -> Self {
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
                    run_batch(store.as_ref(), std::mem::take(&mut jobs)).await;
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

async fn run_batch(store: &dyn Store, jobs: Vec<Job>) {
    let commits: Vec<Option<tracing::Span>> = jobs.iter().map(|j| commit_span(j, jobs.len())).collect();
    let (items, replies): (Vec<InboundNotification>, Vec<Reply>) = jobs.into_iter().map(|j| (j.item, j.reply)).unzip();
    match store.ingest_notifications(&items).await {
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
                let one = store.ingest_notifications(std::slice::from_ref(item)).await;
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
