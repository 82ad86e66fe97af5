//! The reference executor: Finpay's word applied item by item, in one
//! transaction per batch. SQLite stores every batch this way; PostgreSQL's
//! set-based executor (`postgres/ingest.rs`) must leave the same rows and
//! give the same answers, and falls back to this one when a concurrent
//! writer got in its way.
//!
//! Nothing here decides: each observation is judged by `domain::effect` on
//! the payments it names, read under a row lock, and its result is written.
//! The executor is written once, over the statements it needs
//! (`ItemWrites`); each backend gives them in its own terms: PostgreSQL's
//! through its pool (`postgres/item_writes.rs`), SQLite's as calls on the
//! write connection's handle (`sqlite_batch.rs`).

use super::{Applied, InboundNotification, IngestOutcome, Payment, Result, StoreError, StoredKey};
use crate::domain::{effect, Cause, Effect, EventType, Found, Observation};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// How many times a batch that met a concurrent writer is run again.
const ATTEMPTS: usize = 3;

/// The statements of the reference executor, all in one transaction.
#[allow(async_fn_in_trait)] // used by static dispatch only
pub(crate) trait ItemWrites {
    async fn begin(&mut self) -> Result<()>;
    async fn commit(&mut self) -> Result<()>;
    async fn rollback(&mut self) -> Result<()>;
    /// The body hashes stored under the batch's keys, read at once; the
    /// batch is not empty.
    async fn stored_hashes(&mut self, batch: &[InboundNotification]) -> Result<HashMap<StoredKey, Vec<u8>>>;
    /// The payments an observation's references name (none, one, or two
    /// that contradict each other), locked, in id order; it names at least
    /// one.
    async fn payments_named(&mut self, obs: &Observation) -> Result<Vec<Payment>>;
    /// The payment an effect produced: inserted when learnt, updated (guarded
    /// on the status it was judged on) when changed. A payment created or a
    /// reference taken meanwhile by another transaction is `Raced`.
    async fn write_payment(&mut self, e: &Effect, judged_on: Option<&Payment>) -> Result<()>;
    /// The notification with its outcome; `None` when its key was stored
    /// meanwhile by another transaction.
    async fn insert_notification(&mut self, n: &InboundNotification, e: &Effect) -> Result<Option<i64>>;
    /// The effect's audit entries; the first names the stored notification.
    async fn insert_entries(&mut self, e: &Effect, notification_id: Option<i64>, at: DateTime<Utc>) -> Result<()>;
    /// The events about the payment as it is now, with their deliveries.
    async fn raise(&mut self, payment: &Payment, types: &[EventType], cause: Cause, at: DateTime<Utc>) -> Result<()>;
}

/// The batch in one transaction, one notification after the other, in key
/// order (so two replicas storing the same notifications wait on each other
/// instead of deadlocking; batches naming the same payments in another order
/// can still deadlock, and the batcher then stores their notifications one by
/// one). A batch that met a concurrent writer of the same key or payment is
/// run again, and then sees that writer's rows.
pub(crate) async fn ingest<W: ItemWrites>(w: &mut W, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| batch[a].key().cmp(&batch[b].key()));
    let mut attempt = 0;
    loop {
        attempt += 1;
        w.begin().await?;
        match in_order(w, batch, &order).await {
            Ok(out) => {
                w.commit().await?;
                return Ok(out);
            }
            Err(StoreError::Raced(_)) if attempt < ATTEMPTS => w.rollback().await?,
            Err(e) => {
                // The statement's error is the one worth reporting; nothing was committed either way.
                let _ = w.rollback().await;
                return Err(e);
            }
        }
    }
}

async fn in_order<W: ItemWrites>(
    w: &mut W,
    batch: &[InboundNotification],
    order: &[usize],
) -> Result<Vec<IngestOutcome>> {
    let mut out: Vec<Option<IngestOutcome>> = vec![None; batch.len()];
    // The caller adds each key it stores, so a key repeated in the batch is a
    // replay of its first; one stored meanwhile by another transaction makes
    // the insert find it taken (`Raced`), and the batch runs again.
    let mut stored = if batch.is_empty() {
        HashMap::new()
    } else {
        w.stored_hashes(batch).await?
    };
    for &i in order {
        let n = &batch[i];
        let key = n.stored_key();
        if let Some(hash) = stored.get(&key) {
            out[i] = Some(n.replay_of(hash));
            continue;
        }
        let o = one(w, n).await?;
        if matches!(o, IngestOutcome::Applied(_)) {
            stored.insert(key, n.body_sha256.clone());
        }
        out[i] = Some(o);
    }
    Ok(out.into_iter().map(|o| o.unwrap_or(IngestOutcome::Conflict)).collect())
}

/// A notification whose key is not stored yet.
async fn one<W: ItemWrites>(w: &mut W, n: &InboundNotification) -> Result<IngestOutcome> {
    let obs = &n.observation;
    let named = if obs.original_partner_reference_no.is_none() && obs.original_reference_no.is_none() {
        Vec::new()
    } else {
        w.payments_named(obs).await?
    };
    let by = |hit: fn(&Payment, &Observation) -> bool| named.iter().find(|p| hit(p, obs));
    let a = by(|p, o| p.partner_reference_no.is_some() && p.partner_reference_no == o.original_partner_reference_no);
    let b = by(|p, o| p.reference_no.is_some() && p.reference_no == o.original_reference_no);
    let found = Found {
        by_partner_reference: a,
        by_reference: b,
    };
    let e = match effect(found, obs, n.entry_detail(), n.received_at, super::new_payment_id) {
        Ok(e) => e,
        Err(refusal) => return Ok(IngestOutcome::Refused(refusal)),
    };
    if e.changed {
        w.write_payment(&e, a.or(b)).await?;
    }
    let Some(id) = w.insert_notification(n, &e).await? else {
        return Err(StoreError::Raced("the same notification was stored meanwhile"));
    };
    w.insert_entries(&e, Some(id), n.received_at).await?;
    w.raise(&e.payment, &e.events, Cause::Notification, n.received_at)
        .await?;
    Ok(IngestOutcome::Applied(Applied::of(&e)))
}
