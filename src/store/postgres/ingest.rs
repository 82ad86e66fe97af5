//! The set-based executor: a batch of notifications in four or five statements on
//! PostgreSQL, whatever its size, with the same rows and answers as the
//! reference executor (`store/item_by_item.rs`), which a differential test
//! holds it to.
//!
//! 1. Read the stored notifications holding any of the batch's keys.
//! 2. Read and lock (`FOR UPDATE`, in id order) every payment the batch's
//!    references name.
//! 3. Judge each new notification with `domain::effect`, in key order, on
//!    those rows as the batch has changed them so far: exactly what item by
//!    item would do.
//! 4. Write: the payments learnt from notifications, then everything else in
//!    one statement, and check in Rust that each wrote what was planned. It
//!    can write less (or meet a reference's unique key) only if another
//!    transaction, after the reads, stored one of the keys, created a payment
//!    with one of the references, or gave one to another payment; then the
//!    batch is rolled back and the caller runs the reference executor, which
//!    sees that transaction's rows.
//!
//! Nobody is answered before the commit.

use super::{PgStore, PAYMENT_COLUMNS};
use crate::domain::{effect, Cause, Entry, Found, Payment};
use crate::events::payload::{payment_event, NewEvent};
use crate::store::events::subscribed;
use crate::store::{Applied, InboundNotification, IngestOutcome, Result, StoredKey};
use chrono::NaiveDate;
use std::collections::HashMap;

/// The last event number of each payment in `$1`: one index probe per
/// payment. (`payment_id = ANY($1) GROUP BY payment_id` was planned as a scan
/// of the whole table while `events` had no statistics yet, as in a new
/// deployment's first minutes: 100 ms batches once it held some tens of
/// thousands of events.)
pub const LAST_EVENT_SEQUENCES: &str = "SELECT p.id, last.sequence FROM unnest($1::text[]) AS p (id) \
    CROSS JOIN LATERAL (SELECT sequence FROM events WHERE payment_id = p.id ORDER BY sequence DESC LIMIT 1) AS last";

/// The batch's payments as the plan sees them: as read, then as changed.
#[derive(Default)]
struct Rows {
    payments: Vec<Payment>,
    /// Inserted by this batch, or changed by it.
    created: Vec<bool>,
    dirty: Vec<bool>,
    by_partner_reference: HashMap<String, usize>,
    by_reference: HashMap<String, usize>,
}

impl Rows {
    /// Puts `p` at `at` (its slot), or in a new slot; returns the slot.
    fn put(&mut self, at: Option<usize>, p: Payment, created: bool) -> usize {
        let at = at.unwrap_or(self.payments.len());
        if let Some(r) = &p.partner_reference_no {
            self.by_partner_reference.insert(r.clone(), at);
        }
        if let Some(r) = &p.reference_no {
            self.by_reference.insert(r.clone(), at);
        }
        if at == self.payments.len() {
            self.payments.push(p);
            self.created.push(created);
            self.dirty.push(false);
        } else {
            self.payments[at] = p;
        }
        at
    }

    fn found(&self, n: &InboundNotification) -> (Option<usize>, Option<usize>) {
        let obs = &n.observation;
        let a = obs
            .original_partner_reference_no
            .as_ref()
            .and_then(|r| self.by_partner_reference.get(r));
        let b = obs
            .original_reference_no
            .as_ref()
            .and_then(|r| self.by_reference.get(r));
        (a.copied(), b.copied())
    }
}

/// A notification to insert, and its audit entries.
struct Stored<'a> {
    n: &'a InboundNotification,
    payment: usize,
    outcome: &'static str,
    entries: Vec<Entry>,
}

impl PgStore {
    /// `None` when a concurrent writer got in the way (nothing was written).
    pub async fn ingest_set_based(&self, batch: &[InboundNotification]) -> Result<Option<Vec<IngestOutcome>>> {
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&a, &b| batch[a].key().cmp(&batch[b].key()));
        let mut tx = self.pool.begin().await?;

        // One lookup of the unique key per notification. `LIMIT 1` keeps the
        // lateral subquery a lookup per key (an index probe), whatever the
        // statistics said when the statement's plan was cached; as a join it
        // was cached as a hash join over a scan of the whole table, planned
        // while the table was small, and cost more with every row stored.
        let mut hashes: HashMap<StoredKey, Vec<u8>> = sqlx::query_as::<_, (String, String, NaiveDate, Vec<u8>)>(
            "SELECT k.p, k.e, k.d, n.body_sha256 FROM UNNEST($1::text[], $2::text[], $3::date[]) AS k(p, e, d) \
             CROSS JOIN LATERAL (SELECT body_sha256 FROM notifications \
               WHERE partner_id = k.p AND external_id = k.e AND jakarta_day = k.d LIMIT 1) n",
        )
        .bind(batch.iter().map(|n| n.partner_id.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|n| n.external_id.as_str()).collect::<Vec<_>>())
        .bind(batch.iter().map(|n| n.jakarta_day).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(p, e, d, h)| ((p, e, d), h))
        .collect();

        let refs = |f: fn(&InboundNotification) -> Option<&str>| batch.iter().filter_map(f).collect::<Vec<_>>();
        let read: Vec<Payment> = sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE partner_reference_no = ANY($1) OR reference_no = ANY($2) \
             ORDER BY id FOR UPDATE"
        ))
        .bind(refs(|n| n.observation.original_partner_reference_no.as_deref()))
        .bind(refs(|n| n.observation.original_reference_no.as_deref()))
        .fetch_all(&mut *tx)
        .await?;
        // Each payment's last event number, read under the locks just taken.
        let mut sequences: HashMap<String, i64> = if read.is_empty() {
            HashMap::new()
        } else {
            sqlx::query_as::<_, (String, i64)>(LAST_EVENT_SEQUENCES)
                .bind(read.iter().map(|p| p.id.as_str()).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect()
        };
        let mut rows = Rows::default();
        for p in read {
            rows.put(None, p, false);
        }
        let mut events: Vec<NewEvent> = Vec::new();

        let mut outcomes: Vec<Option<IngestOutcome>> = vec![None; batch.len()];
        let mut stored: Vec<Stored> = Vec::new();
        for &i in &order {
            let n = &batch[i];
            let key = n.stored_key();
            if let Some(hash) = hashes.get(&key) {
                outcomes[i] = Some(n.replay_of(hash));
                continue;
            }
            let (a, b) = rows.found(n);
            let found = Found {
                by_partner_reference: a.map(|k| &rows.payments[k]),
                by_reference: b.map(|k| &rows.payments[k]),
            };
            let e = match effect(
                found,
                &n.observation,
                n.entry_detail(),
                n.received_at,
                crate::store::new_payment_id,
            ) {
                Ok(e) => e,
                Err(refusal) => {
                    outcomes[i] = Some(IngestOutcome::Refused(refusal));
                    continue;
                }
            };
            outcomes[i] = Some(IngestOutcome::Applied(Applied::of(&e)));
            for t in &e.events {
                let seq = sequences.entry(e.payment.id.clone()).or_insert(0);
                *seq += 1;
                events.push(payment_event(
                    *t,
                    &e.payment,
                    Cause::Notification,
                    *seq,
                    n.received_at,
                    None,
                ));
            }
            let created = e.created();
            let at = rows.put(a.or(b), e.payment, created);
            rows.dirty[at] |= e.changed;
            hashes.insert(key, n.body_sha256.clone());
            stored.push(Stored {
                n,
                payment: at,
                outcome: e.outcome.as_str(),
                entries: e.entries,
            });
        }

        if !stored.is_empty() && !write(&mut tx, &rows, &stored).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        write_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(Some(
            outcomes
                .into_iter()
                .map(|o| o.unwrap_or(IngestOutcome::Conflict))
                .collect(),
        ))
    }
}

/// The plan in (at most) two statements; `false` when it wrote less than planned.
async fn write(tx: &mut sqlx::PgConnection, rows: &Rows, stored: &[Stored<'_>]) -> Result<bool> {
    let pick = |created: bool| -> Vec<&Payment> {
        (0..rows.payments.len())
            .filter(|&k| rows.created[k] == created && (created || rows.dirty[k]))
            .map(|k| &rows.payments[k])
            .collect()
    };
    let (new, changed) = (pick(true), pick(false));
    // Payments learnt from notifications first, on their own: the
    // notifications naming them must not be written if one was not.
    if !new.is_empty() && insert_payments(tx, &new).await? != new.len() as u64 {
        return Ok(false);
    }
    let entries: Vec<(&Stored, usize, &Entry)> = stored
        .iter()
        .flat_map(|s| s.entries.iter().enumerate().map(move |(k, e)| (s, k, e)))
        .collect();
    let counts: std::result::Result<(i64, i64, i64), sqlx::Error> = sqlx::query_as(
        "WITH changed AS ( \
           UPDATE payments p SET reference_no = u.rn, status = u.status, finpay_status = u.fs, paid_at = u.paid_at, \
             flagged = u.flagged, next_check_at = u.nca, updated_at = u.ua \
           FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], \
             $7::timestamptz[], $8::timestamptz[]) AS u(id, rn, status, fs, paid_at, flagged, nca, ua) \
           WHERE p.id = u.id RETURNING 1 \
         ), stored AS ( \
           INSERT INTO notifications (partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, \
             verification, payment_id, outcome, received_at) \
           SELECT p, e, d, h, b, hd::jsonb, v, pay, o, r FROM UNNEST($9::text[], $10::text[], $11::date[], \
             $12::bytea[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::timestamptz[]) \
             WITH ORDINALITY AS u(p, e, d, h, b, hd, v, pay, o, r, ord) ORDER BY ord \
           ON CONFLICT (partner_id, external_id, jakarta_day) DO NOTHING \
           RETURNING id, partner_id, external_id, jakarta_day \
         ), entries AS ( \
           INSERT INTO payment_events (payment_id, kind, notification_id, detail, created_at) \
           SELECT e.pay, e.kind, s.id, e.detail::jsonb, e.at FROM UNNEST($19::text[], $20::text[], $21::bool[], \
             $22::text[], $23::text[], $24::date[], $25::text[], $26::timestamptz[]) \
             WITH ORDINALITY AS e(pay, kind, own, np, ne, nd, detail, at, ord) \
           LEFT JOIN stored s ON e.own AND s.partner_id = e.np AND s.external_id = e.ne AND s.jakarta_day = e.nd \
           WHERE NOT e.own OR s.id IS NOT NULL ORDER BY e.ord RETURNING 1 \
         ) \
         SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM stored), (SELECT count(*) FROM entries)",
    )
    .bind(changed.iter().map(|p| p.id.as_str()).collect::<Vec<_>>())
    .bind(changed.iter().map(|p| p.reference_no.as_deref()).collect::<Vec<_>>())
    .bind(changed.iter().map(|p| p.status.as_str()).collect::<Vec<_>>())
    .bind(changed.iter().map(|p| p.finpay_status.as_deref()).collect::<Vec<_>>())
    .bind(changed.iter().map(|p| p.paid_at).collect::<Vec<_>>())
    .bind(changed.iter().map(|p| p.flagged.as_deref()).collect::<Vec<_>>())
    .bind(changed.iter().map(|p| p.next_check_at).collect::<Vec<_>>())
    .bind(changed.iter().map(|p| p.updated_at).collect::<Vec<_>>())
    .bind(stored.iter().map(|s| s.n.partner_id.as_str()).collect::<Vec<_>>())
    .bind(stored.iter().map(|s| s.n.external_id.as_str()).collect::<Vec<_>>())
    .bind(stored.iter().map(|s| s.n.jakarta_day).collect::<Vec<_>>())
    .bind(stored.iter().map(|s| s.n.body_sha256.as_slice()).collect::<Vec<_>>())
    .bind(stored.iter().map(|s| s.n.raw_body.as_str()).collect::<Vec<_>>())
    .bind(stored.iter().map(|s| s.n.headers_json.as_str()).collect::<Vec<_>>())
    .bind(stored.iter().map(|s| s.n.verification.as_str()).collect::<Vec<_>>())
    .bind(
        stored
            .iter()
            .map(|s| rows.payments[s.payment].id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(stored.iter().map(|s| s.outcome).collect::<Vec<_>>())
    .bind(stored.iter().map(|s| s.n.received_at).collect::<Vec<_>>())
    .bind(
        entries
            .iter()
            .map(|(s, _, _)| rows.payments[s.payment].id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(entries.iter().map(|(_, _, e)| e.kind).collect::<Vec<_>>())
    .bind(entries.iter().map(|(_, k, _)| *k == 0).collect::<Vec<_>>())
    .bind(
        entries
            .iter()
            .map(|(s, _, _)| s.n.partner_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|(s, _, _)| s.n.external_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(entries.iter().map(|(s, _, _)| s.n.jakarta_day).collect::<Vec<_>>())
    .bind(entries.iter().map(|(_, _, e)| e.detail.to_string()).collect::<Vec<_>>())
    .bind(entries.iter().map(|(s, _, _)| s.n.received_at).collect::<Vec<_>>())
    .fetch_one(&mut *tx)
    .await;
    match counts {
        Ok(counts) => Ok(counts == (changed.len() as i64, stored.len() as i64, entries.len() as i64)),
        // A reference this batch gives a payment was given to another one after
        // the read: the reference executor, run next, sees that payment.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Inserts payments learnt from notifications; how many were new.
async fn insert_payments(tx: &mut sqlx::PgConnection, new: &[&Payment]) -> Result<u64> {
    Ok(sqlx::query(
        "INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, \
           paid_at, flagged, finpay_status, created_at, updated_at, next_check_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], \
           $8::timestamptz[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(new.iter().map(|p| p.id.as_str()).collect::<Vec<_>>())
    .bind(
        new.iter()
            .map(|p| p.partner_reference_no.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(new.iter().map(|p| p.reference_no.as_deref()).collect::<Vec<_>>())
    .bind(new.iter().map(|p| p.amount_minor).collect::<Vec<_>>())
    .bind(new.iter().map(|p| p.currency.as_str()).collect::<Vec<_>>())
    .bind(new.iter().map(|p| p.status.as_str()).collect::<Vec<_>>())
    .bind(new.iter().map(|p| p.origin.as_str()).collect::<Vec<_>>())
    .bind(new.iter().map(|p| p.paid_at).collect::<Vec<_>>())
    .bind(new.iter().map(|p| p.flagged.as_deref()).collect::<Vec<_>>())
    .bind(new.iter().map(|p| p.finpay_status.as_deref()).collect::<Vec<_>>())
    .bind(new.iter().map(|p| p.created_at).collect::<Vec<_>>())
    .bind(new.iter().map(|p| p.updated_at).collect::<Vec<_>>())
    .bind(new.iter().map(|p| p.next_check_at).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// The batch's events and their deliveries, in one statement (see
/// `sql_outbox.rs`'s `write_events`, which writes the same rows one by one).
async fn write_events(tx: &mut sqlx::PgConnection, events: &[NewEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "WITH ev AS ( \
           INSERT INTO events (id, type, payment_id, sequence, cause, body, created_at) \
           SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], \
             $7::timestamptz[]) RETURNING id, type, created_at \
         ) \
         INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at) \
         SELECT ev.id, w.id, 'pending', 0, CASE WHEN w.enabled THEN ev.created_at END, ev.created_at, \
           ev.created_at FROM ev \
         JOIN webhook_endpoints w ON {}{}",
        subscribed("ev.type"),
        PgStore::ENDPOINT_KEY_SHARE
    );
    sqlx::query(&sql)
        .bind(events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.payment_id.as_deref()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.sequence).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.cause.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.body.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.created_at).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    Ok(())
}
