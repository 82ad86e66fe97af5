//! One statement per batch for the common case, decided before any read.
//!
//! Almost every notification Finpay sends is the first delivery of a final
//! status (usually success) for a payment we generated and that is still
//! `pending`, with the amount we asked for. For such a notification
//! `domain::decide` gives the same answer whatever else is true of the
//! payment: a transition from `pending` to the reported status, no flag.
//! So the decision, the events and the new column values can be made in Rust
//! before the payment is read, *assuming* it is pending with that amount, and
//! the one statement that writes them checks the assumption itself:
//!
//! - it finds each notification's payment by the rule `find_payment_for_update`
//!   follows (our reference first, else Finpay's) and requires one distinct
//!   payment per notification;
//! - it updates each payment only if it is `pending` with the notified amount
//!   and currency (a concurrent update makes PostgreSQL re-check that on the
//!   newest version);
//! - it inserts each notification only if its key is new (`ON CONFLICT DO
//!   NOTHING`), and only for those inserted writes the audit event and the
//!   update; a key already stored is a replay, answered from the stored row
//!   (its body hash, code and message) exactly as item by item answers it;
//! - and it fails with `division_by_zero` on purpose unless every count adds
//!   up (each notification applied or a replay of a row the statement can
//!   see, one event row and one update per applied notification), which rolls
//!   the whole statement back.
//!
//! The event row holds both entries item by item writes as two rows, the
//! notification and the status change it caused (`store::event_pairs`, which
//! every reader of a payment's events goes through, shows it as those two).
//!
//! No decision is made in SQL: it only checks the facts the Rust decision
//! assumed. When any fact differs (a payment not pending, an amount that does
//! not match, a static-QR payment not yet known, two new notifications for one
//! payment, a key being stored by a concurrent transaction) nothing was written
//! and nobody was answered; the batch takes the read-then-write path of
//! `bulk.rs`, and the next few batches go there directly (see
//! `PAUSE_AFTER_MISS`), so a stream of such batches does not pay for a failed
//! statement per batch.

use super::PgStore;
use crate::domain::{Decision, PaymentStatus};
use crate::store::{
    status_change_detail, Applied, InboundNotification, IngestOutcome, Result, StoreError, PAIRED_STATUS_CHANGE,
};
use sqlx::Row;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Batches sent straight to the read-then-write path after a speculation missed.
const PAUSE_AFTER_MISS: u32 = 16;

/// The one-statement path's state in a store: shared by its writers.
pub(crate) struct Speculation {
    /// Batches left to send straight to the read-then-write path.
    pause: AtomicU32,
    /// What a miss sets `pause` to.
    pause_after_miss: AtomicU32,
    /// Batches stored by one statement / tried and rolled back.
    held: AtomicU64,
    missed: AtomicU64,
}

impl Default for Speculation {
    fn default() -> Self {
        Self {
            pause: AtomicU32::new(0),
            pause_after_miss: AtomicU32::new(PAUSE_AFTER_MISS),
            held: AtomicU64::new(0),
            missed: AtomicU64::new(0),
        }
    }
}

/// What the speculation assumes of one notification: the status it moves the
/// payment to, when that follows from a pending payment with the notified amount.
fn assumed_transition(n: &InboundNotification) -> Option<PaymentStatus> {
    let obs = &n.observation;
    if obs.original_partner_reference_no.is_none() && obs.original_reference_no.is_none() {
        return None;
    }
    let amount = obs.amount.as_ref().map(|a| (a.minor, a.currency.as_str()))?;
    match crate::domain::decide(PaymentStatus::Pending, amount, obs.status, Some(amount)) {
        Decision::Transition { to, flag: None } => Some(to),
        _ => None,
    }
}

/// An `array_agg` column of the statement's answer; NULL (nothing to
/// aggregate) is the empty list.
fn array_column<T>(row: &sqlx::postgres::PgRow, column: &str) -> Result<Vec<T>>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    Vec<T>: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    Ok(row.try_get::<Option<Vec<T>>, _>(column)?.unwrap_or_default())
}

/// The detail of the event row that stands for the notification and the
/// status change to `to` it caused, around the notification's id, which the
/// statement draws: `prefix || id || suffix` is `bulk::notification_detail`
/// with the status change's detail (as item by item writes it) under
/// `PAIRED_STATUS_CHANGE`.
fn detail_around_id(n: &InboundNotification, to: PaymentStatus) -> Option<(String, String)> {
    let mut detail = super::bulk::notification_detail_value(n, 0);
    detail[PAIRED_STATUS_CHANGE] =
        status_change_detail(PaymentStatus::Pending, to, n.observation.source.as_str(), None);
    let whole = detail.to_string();
    let key = "\"notificationId\":";
    // Inside a JSON string every quote is escaped, so `"notificationId":0`
    // can only be the key itself.
    let at = whole.find(&format!("{key}0"))? + key.len();
    Some((whole[..at].to_string(), whole[at + 1..].to_string()))
}

impl PgStore {
    /// Batches stored by one speculative statement, and speculations rolled
    /// back (their batches then took the read-then-write path): for tests.
    #[doc(hidden)]
    pub fn speculation_counts(&self) -> (u64, u64) {
        let s = &self.speculation;
        (s.held.load(Ordering::Relaxed), s.missed.load(Ordering::Relaxed))
    }

    /// How many batches skip speculation after a miss (16 unless set): tests
    /// set 0 so that every eligible batch is tried.
    #[doc(hidden)]
    pub fn set_speculation_pause_after_miss(&self, batches: u32) {
        self.speculation.pause_after_miss.store(batches, Ordering::Relaxed);
        self.speculation.pause.store(0, Ordering::Relaxed);
    }

    /// Stores the batch in one statement if every notification in it is of the
    /// common kind and every assumption holds; `None` when the batch must take
    /// the read-then-write path (nothing was written then). `order` is the
    /// first copy of each key, in key order (`ingest_bulk`'s leaders): the
    /// fixed order makes two replicas inserting overlapping batches wait on
    /// each other instead of deadlocking, and the events come out in the order
    /// item by item writes them.
    pub(super) async fn ingest_speculatively(
        &self,
        batch: &[InboundNotification],
        order: &[usize],
    ) -> Result<Option<Vec<IngestOutcome>>> {
        // A key twice in one batch is answered against its first copy: the
        // read-then-write path does that.
        if batch.is_empty() || order.len() != batch.len() {
            return Ok(None);
        }
        let mut to = Vec::with_capacity(batch.len());
        for n in batch {
            match assumed_transition(n) {
                Some(status) => to.push(status),
                None => return Ok(None),
            }
        }
        if self
            .speculation
            .pause
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| p.checked_sub(1))
            .is_ok()
        {
            return Ok(None);
        }

        let at = |i: &usize| &batch[*i];
        let obs = |i: &usize| &batch[*i].observation;
        let Some((prefixes, suffixes)): Option<(Vec<String>, Vec<String>)> = order
            .iter()
            .map(|&i| detail_around_id(&batch[i], to[i]))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().unzip())
        else {
            return Ok(None);
        };
        // Like the read-then-write statements, every table access has an index
        // condition on the batch's own keys, whatever the cached plan: the
        // update finds its payments by `id = ANY(the ids found)`, and tests
        // `status` with `IS NOT DISTINCT FROM`, which no index serves, so that
        // a plan made on small tables cannot scan every pending payment.
        let query = sqlx::query(
            "WITH k AS ( \
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::bytea[], $7::text[], \
                 $8::text[], $9::text[], $10::timestamptz[], $11::bigint[], $12::text[], $13::text[], $14::text[], \
                 $15::text[], $16::text[], $17::text[]) WITH ORDINALITY \
                 AS k(prn, rn, partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, verification, \
                   received_at, amount_minor, currency, to_status, finpay_status, kind, prefix, suffix, ord) \
             ), found AS MATERIALIZED ( \
               SELECT k.*, p.id, nextval('notifications_id_seq') AS nid FROM k CROSS JOIN LATERAL ( \
                 (SELECT id FROM payments WHERE partner_reference_no = k.prn \
                  UNION ALL SELECT id FROM payments WHERE reference_no = k.rn) LIMIT 1) p \
               ORDER BY k.ord \
             ), n AS ( \
               INSERT INTO notifications (id, partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, \
                 verification, payment_id, outcome, response_code, response_message, received_at) \
               SELECT nid, partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, verification, id, \
                 'applied', '2005200', 'Successful', received_at \
               FROM found ORDER BY ord \
               ON CONFLICT (partner_id, external_id, jakarta_day) DO NOTHING \
               RETURNING id \
             ), new AS MATERIALIZED ( \
               SELECT ord, id, nid, rn, to_status, finpay_status, received_at, amount_minor, currency, kind, \
                 prefix, suffix \
               FROM found WHERE nid IN (SELECT id FROM n) \
             ), replays AS MATERIALIZED ( \
               SELECT f.ord, s.body_sha256, s.response_code, s.response_message FROM found f CROSS JOIN LATERAL ( \
                 SELECT body_sha256, response_code, response_message FROM notifications s \
                 WHERE s.partner_id = f.partner_id AND s.external_id = f.external_id AND s.jakarta_day = f.jakarta_day \
                 LIMIT 1) s \
               WHERE f.nid NOT IN (SELECT id FROM n) \
             ), ev AS ( \
               INSERT INTO payment_events (payment_id, kind, detail, created_at) \
               SELECT f.id, f.kind, f.prefix || f.nid || f.suffix, f.received_at \
               FROM new f ORDER BY f.ord \
               RETURNING 1 \
             ), upd AS ( \
               UPDATE payments SET reference_no = COALESCE(payments.reference_no, f.rn), status = f.to_status, \
                 finpay_status = f.finpay_status, \
                 paid_at = CASE WHEN f.to_status = 'paid' THEN COALESCE(payments.paid_at, f.received_at) ELSE payments.paid_at END, \
                 next_check_at = CASE WHEN f.to_status IN ('initiated', 'pending', 'paying') THEN payments.next_check_at ELSE NULL END, \
                 updated_at = f.received_at \
               FROM new f \
               WHERE payments.id = ANY ((SELECT array_agg(id) FROM new)::text[]) AND payments.id = f.id \
                 AND payments.status IS NOT DISTINCT FROM 'pending' \
                 AND payments.amount_minor = f.amount_minor AND payments.currency = f.currency \
               RETURNING 1 \
             ) \
             SELECT 1 / (CASE WHEN (SELECT count(*) FROM found) = cardinality($3::text[]) \
               AND (SELECT count(*) FROM new) + (SELECT count(*) FROM replays) = cardinality($3::text[]) \
               AND (SELECT count(DISTINCT id) FROM new) = (SELECT count(*) FROM new) \
               AND (SELECT count(*) FROM ev) = (SELECT count(*) FROM new) \
               AND (SELECT count(*) FROM upd) = (SELECT count(*) FROM new) \
             THEN 1 ELSE 0 END) AS ok, \
             (SELECT array_agg(ord ORDER BY ord) FROM new) AS applied_ords, \
             (SELECT array_agg(id ORDER BY ord) FROM new) AS applied_ids, \
             (SELECT array_agg(ord ORDER BY ord) FROM replays) AS replay_ords, \
             (SELECT array_agg(body_sha256 ORDER BY ord) FROM replays) AS replay_hashes, \
             (SELECT array_agg(response_code ORDER BY ord) FROM replays) AS replay_codes, \
             (SELECT array_agg(response_message ORDER BY ord) FROM replays) AS replay_messages",
        )
        .bind(order.iter().map(|i| obs(i).original_partner_reference_no.as_deref()).collect::<Vec<_>>())
        .bind(order.iter().map(|i| obs(i).original_reference_no.as_deref()).collect::<Vec<_>>());
        let row = super::bulk::bind_notification_columns(query, &order.iter().map(at).collect::<Vec<_>>())
            .bind(order.iter().map(|i| at(i).received_at).collect::<Vec<_>>())
            .bind(
                order
                    .iter()
                    .map(|i| obs(i).amount.as_ref().map(|a| a.minor))
                    .collect::<Vec<_>>(),
            )
            .bind(
                order
                    .iter()
                    .map(|i| obs(i).amount.as_ref().map(|a| a.currency.as_str()))
                    .collect::<Vec<_>>(),
            )
            .bind(order.iter().map(|&i| to[i].as_str()).collect::<Vec<_>>())
            .bind(order.iter().map(|i| obs(i).status.code()).collect::<Vec<_>>())
            .bind(order.iter().map(|i| obs(i).source.as_str()).collect::<Vec<_>>())
            .bind(&prefixes)
            .bind(&suffixes)
            .fetch_one(&mut *self.ingest.acquire().await?)
            .await;
        let row = match row {
            Ok(row) => row,
            // The statement's own "an assumption does not hold" signal; a
            // deadlock with another writer; or a reference this batch would set
            // already taken (the read-then-write path meets it again and
            // reports it). PostgreSQL rolled the statement back whole.
            Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("22012" | "40P01" | "23505")) => {
                let s = &self.speculation;
                s.missed.fetch_add(1, Ordering::Relaxed);
                s.pause
                    .store(s.pause_after_miss.load(Ordering::Relaxed), Ordering::Relaxed);
                tracing::debug!(batch = batch.len(), "a speculative batch did not hold; reading first");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        self.speculation.held.fetch_add(1, Ordering::Relaxed);
        // Committed. Every notification is either applied (its key was new) or
        // a replay of a stored one (the statement checked the two add up).
        let applied_ords: Vec<i64> = array_column(&row, "applied_ords")?;
        let applied_ids: Vec<String> = array_column(&row, "applied_ids")?;
        let replay_ords: Vec<i64> = array_column(&row, "replay_ords")?;
        let hashes: Vec<Vec<u8>> = array_column(&row, "replay_hashes")?;
        let codes: Vec<String> = array_column(&row, "replay_codes")?;
        let messages: Vec<String> = array_column(&row, "replay_messages")?;
        // `ord` is the 1-based position in `order`.
        let index = |ord: i64| usize::try_from(ord - 1).ok().and_then(|o| order.get(o).copied());
        let mut out: Vec<Option<IngestOutcome>> = vec![None; batch.len()];
        for (ord, payment_id) in applied_ords.into_iter().zip(applied_ids) {
            let Some(i) = index(ord) else { continue };
            out[i] = Some(IngestOutcome::Applied(Applied {
                payment_id,
                created: false,
                from: Some(PaymentStatus::Pending),
                to: to[i],
                decision: Decision::Transition { to: to[i], flag: None },
            }));
        }
        for (((ord, hash), response_code), response_message) in
            replay_ords.into_iter().zip(hashes).zip(codes).zip(messages)
        {
            let Some(i) = index(ord) else { continue };
            // As item by item: the same body is answered as the first time, another body is a conflict.
            out[i] = Some(if hash == batch[i].body_sha256 {
                IngestOutcome::Duplicate {
                    response_code,
                    response_message,
                }
            } else {
                IngestOutcome::Conflict
            });
        }
        let out: Option<Vec<IngestOutcome>> = out.into_iter().collect();
        let Some(out) = out else {
            return Err(StoreError::Invalid(
                "a committed batch did not account for every notification".into(),
            ));
        };
        Ok(Some(out))
    }
}
