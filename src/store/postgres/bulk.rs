//! Group commit on PostgreSQL with set-based statements.
//!
//! The item-by-item path (`ingest_in` in `store/sql.rs`) spends five to seven
//! statements per notification. Here a batch costs four round trips, whatever
//! its size: `BEGIN`, one read, one write, `COMMIT`.
//!
//! 1. The read locks, in id order (`FOR UPDATE`), every payment the batch's
//!    notifications name, and returns the stored rows that already hold any of
//!    the batch's idempotency keys (their duplicates and conflicts are answered
//!    from them).
//! 2. Each new notification's effect is decided in Rust, in key order, with the
//!    same `domain::decide` and the same rules as `apply_observation`, on the
//!    locked rows, so a later notification of the batch sees an earlier one's
//!    effect exactly as it would item by item.
//! 3. The write is one statement whose data-modifying `WITH` clauses insert the
//!    payments learnt from notifications, the notifications (with their payment
//!    and outcome), the events, and update the changed payments, from `UNNEST`
//!    arrays; it returns how many rows each part wrote.
//!
//! The database checks every assumption the plan made: a key stored by another
//! transaction since the read, or a payment created concurrently, makes an
//! `ON CONFLICT DO NOTHING` write fewer rows than planned. Then the transaction
//! is rolled back and the batch is stored item by item instead. Nobody is
//! answered before the commit, so an abandoned plan told nobody anything.

use super::{PgStore, PAYMENT_COLUMNS};
use crate::domain::{decide, Decision, PaymentStatus};
use crate::store::{Applied, InboundNotification, IngestOutcome, Payment, Result, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;

type Key = (String, String, NaiveDate);

fn key(n: &InboundNotification) -> Key {
    (n.partner_id.clone(), n.external_id.clone(), n.jakarta_day)
}

/// `(body_sha256, response_code, response_message)` of a stored notification.
type Stored = (Vec<u8>, String, String);

impl PgStore {
    pub(in crate::store) async fn ingest_bulk(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>> {
        // Keys in a fixed order (as item by item), so that two replicas
        // inserting overlapping batches wait on each other instead of deadlocking.
        let keys: Vec<Key> = batch.iter().map(key).collect();
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        // The first copy of each key leads; later copies are answered against it.
        let mut leader_of: HashMap<&Key, usize> = HashMap::with_capacity(batch.len());
        let mut leaders = Vec::with_capacity(batch.len());
        for &i in &order {
            leader_of.entry(&keys[i]).or_insert_with(|| {
                leaders.push(i);
                i
            });
        }

        let mut tx = self.begin().await?;
        let existing = stored_rows(&mut tx, batch, &leaders).await?;
        let fresh: Vec<usize> = leaders.into_iter().filter(|&i| !existing.contains_key(&keys[i])).collect();
        let mut plan = Plan::default();
        if !fresh.is_empty() {
            plan.load(lock_payments(&mut tx, batch, &fresh).await?);
            for &i in &fresh {
                plan.apply(i, &batch[i])?;
            }
            if !plan.write(&mut tx, batch).await? {
                tx.rollback().await?;
                tracing::debug!(batch = batch.len(), "bulk plan met a concurrent writer; storing item by item");
                return self.ingest_one_by_one(batch).await;
            }
        }
        tx.commit().await?;

        Ok((0..batch.len())
            .map(|i| {
                let n = &batch[i];
                let leader = leader_of[&keys[i]];
                match existing.get(&keys[i]) {
                    Some((hash, code, message)) if *hash == n.body_sha256 => {
                        IngestOutcome::Duplicate { response_code: code.clone(), response_message: message.clone() }
                    }
                    Some(_) => IngestOutcome::Conflict,
                    None if leader == i => match plan.applied.remove(&i) {
                        Some(applied) => IngestOutcome::Applied(applied),
                        None => IngestOutcome::Conflict,
                    },
                    // Item by item, this copy would find the leader's row, stored
                    // with the answer every first delivery gets.
                    None if batch[leader].body_sha256 == n.body_sha256 => IngestOutcome::Duplicate {
                        response_code: "2005200".into(),
                        response_message: "Successful".into(),
                    },
                    None => IngestOutcome::Conflict,
                }
            })
            .collect())
    }
}

/// The stored rows holding any of the leaders' keys.
async fn stored_rows(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[InboundNotification],
    leaders: &[usize],
) -> Result<HashMap<Key, Stored>> {
    let rows: Vec<(String, String, NaiveDate, Vec<u8>, String, String)> = sqlx::query_as(
        "SELECT n.partner_id, n.external_id, n.jakarta_day, n.body_sha256, n.response_code, n.response_message \
         FROM UNNEST($1::text[], $2::text[], $3::date[]) AS k(partner_id, external_id, jakarta_day) \
         JOIN notifications n USING (partner_id, external_id, jakarta_day)",
    )
    .bind(leaders.iter().map(|&i| batch[i].partner_id.as_str()).collect::<Vec<_>>())
    .bind(leaders.iter().map(|&i| batch[i].external_id.as_str()).collect::<Vec<_>>())
    .bind(leaders.iter().map(|&i| batch[i].jakarta_day).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(p, e, d, h, c, m)| ((p, e, d), (h, c, m))).collect())
}

/// Locks, in id order, every payment the notifications could apply to.
async fn lock_payments(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[InboundNotification],
    fresh: &[usize],
) -> Result<Vec<Payment>> {
    let prns: Vec<&str> = fresh.iter().filter_map(|&i| batch[i].observation.original_partner_reference_no.as_deref()).collect();
    let rns: Vec<&str> = fresh.iter().filter_map(|&i| batch[i].observation.original_reference_no.as_deref()).collect();
    let sql = format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE partner_reference_no = ANY($1) OR reference_no = ANY($2) \
         ORDER BY id FOR UPDATE"
    );
    Ok(sqlx::query_as(&sql).bind(prns).bind(rns).fetch_all(&mut **tx).await?)
}

/// A payment as the plan sees it: the locked row plus the batch's effects so far.
struct Slot {
    payment: Payment,
    /// Status when locked; `None` for a payment this batch creates.
    locked_status: Option<PaymentStatus>,
    changed: bool,
}

enum Detail {
    /// The notification's own audit event; its detail names the notification
    /// row, whose id is known once it is inserted.
    Notification(usize),
    Json(serde_json::Value),
}

struct Event {
    slot: usize,
    kind: &'static str,
    detail: Detail,
    at: DateTime<Utc>,
}

#[derive(Default)]
struct Plan {
    slots: Vec<Slot>,
    by_partner_ref: HashMap<String, usize>,
    by_ref: HashMap<String, usize>,
    events: Vec<Event>,
    /// New notifications in key order: (batch index, payment slot, outcome).
    rows: Vec<(usize, usize, &'static str)>,
    applied: HashMap<usize, Applied>,
}

impl Plan {
    fn load(&mut self, locked: Vec<Payment>) {
        for p in locked {
            let status = p.status;
            self.add(Slot { payment: p, locked_status: Some(status), changed: false });
        }
    }

    fn add(&mut self, slot: Slot) -> usize {
        let at = self.slots.len();
        if let Some(prn) = &slot.payment.partner_reference_no {
            self.by_partner_ref.insert(prn.clone(), at);
        }
        if let Some(rn) = &slot.payment.reference_no {
            self.by_ref.insert(rn.clone(), at);
        }
        self.slots.push(slot);
        at
    }

    /// `apply_observation` for one new notification, on the plan's rows.
    fn apply(&mut self, i: usize, n: &InboundNotification) -> Result<()> {
        let obs = &n.observation;
        let now = n.received_at;
        let by = obs.source.as_str();
        let prn = obs.original_partner_reference_no.as_deref();
        let rn = obs.original_reference_no.as_deref();
        // As `find_payment_for_update`: the payment our own reference names
        // first, else the one Finpay's reference names.
        let found = prn
            .and_then(|k| self.by_partner_ref.get(k))
            .or_else(|| rn.and_then(|k| self.by_ref.get(k)))
            .copied();
        let Some(at) = found else {
            // A payment we never generated (static QR): learn it from the notification.
            let Some(amount) = obs.amount.as_ref() else {
                return Err(StoreError::Invalid("a new payment needs an amount".into()));
            };
            let status = PaymentStatus::from_finpay(obs.status).unwrap_or(PaymentStatus::Pending);
            let payment = Payment {
                id: uuid::Uuid::now_v7().to_string(),
                partner_reference_no: prn.map(str::to_string),
                reference_no: rn.map(str::to_string),
                amount_minor: amount.minor,
                currency: amount.currency.clone(),
                status,
                origin: "notification".into(),
                qr_content: None,
                qr_url: None,
                note: None,
                valid_until: None,
                paid_at: (status == PaymentStatus::Paid).then_some(now),
                refunded_minor: 0,
                flagged: None,
                finpay_status: Some(obs.status.code()),
                created_at: now,
                updated_at: now,
                next_check_at: status.is_open().then_some(now),
                check_attempts: 0,
                lease_owner: None,
                lease_until: None,
            };
            let payment_id = payment.id.clone();
            let at = self.add(Slot { payment, locked_status: None, changed: true });
            self.events.push(Event { slot: at, kind: by, detail: Detail::Notification(i), at: now });
            self.events.push(Event {
                slot: at,
                kind: "created",
                detail: Detail::Json(json!({"from": by, "status": status.as_str(), "finpayStatus": obs.status.code()})),
                at: now,
            });
            self.rows.push((i, at, "applied"));
            let decision = Decision::Transition { to: status, flag: None };
            self.applied.insert(i, Applied { payment_id, created: true, from: None, to: status, decision });
            return Ok(());
        };

        self.events.push(Event { slot: at, kind: by, detail: Detail::Notification(i), at: now });
        if self.slots[at].payment.reference_no.is_none() {
            if let Some(rn) = rn {
                self.slots[at].payment.reference_no = Some(rn.to_string());
                self.slots[at].changed = true;
                self.by_ref.insert(rn.to_string(), at);
            }
        }
        let slot = &mut self.slots[at];
        let p = &mut slot.payment;
        let from = p.status;
        let observed_amount = obs.amount.as_ref().map(|a| (a.minor, a.currency.as_str()));
        let decision = decide(p.status, (p.amount_minor, p.currency.as_str()), obs.status, observed_amount);
        let mut to = p.status;
        let event = match &decision {
            Decision::Transition { to: next, flag } => {
                // The columns exactly as the guarded UPDATE in `apply_observation` sets them.
                p.status = *next;
                p.finpay_status = Some(obs.status.code());
                if *next == PaymentStatus::Paid {
                    p.paid_at = p.paid_at.or(Some(now));
                }
                if let Some(f) = flag {
                    p.flagged = Some(f.clone());
                }
                if !next.is_open() {
                    p.next_check_at = None;
                }
                p.updated_at = now;
                slot.changed = true;
                to = *next;
                Some(("status_changed", json!({"from": from.as_str(), "to": next.as_str(), "by": by, "flag": flag})))
            }
            Decision::Mismatch { reason } => {
                p.flagged = Some(reason.clone());
                p.updated_at = now;
                slot.changed = true;
                Some(("flagged", json!({"reason": reason, "by": by})))
            }
            Decision::Ignored { reason } => Some(("ignored", json!({"reason": reason, "by": by}))),
            Decision::Unchanged => None,
        };
        if let Some((kind, detail)) = event {
            self.events.push(Event { slot: at, kind, detail: Detail::Json(detail), at: now });
        }
        let outcome = match &decision {
            Decision::Transition { .. } => "applied",
            Decision::Unchanged => "unchanged",
            Decision::Ignored { .. } => "ignored",
            Decision::Mismatch { .. } => "flagged",
        };
        self.rows.push((i, at, outcome));
        let payment_id = p.id.clone();
        self.applied.insert(i, Applied { payment_id, created: false, from: Some(from), to, decision });
        Ok(())
    }

    /// Writes the plan; `false` when the database disagreed with an assumption
    /// (the caller rolls back).
    async fn write(&self, tx: &mut Transaction<'static, Postgres>, batch: &[InboundNotification]) -> Result<bool> {
        // 1. Payments learnt from notifications, in their state at the end of the batch.
        let created: Vec<&Payment> = self.slots.iter().filter(|s| s.locked_status.is_none()).map(|s| &s.payment).collect();
        if !created.is_empty() {
            let done = sqlx::query(
                "INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, \
                 paid_at, flagged, finpay_status, created_at, updated_at, next_check_at) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], \
                 $8::timestamptz[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(created.iter().map(|p| p.id.as_str()).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.partner_reference_no.as_deref()).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.reference_no.as_deref()).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.amount_minor).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.currency.as_str()).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.status.as_str()).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.origin.as_str()).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.paid_at).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.flagged.as_deref()).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.finpay_status.as_deref()).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.created_at).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.updated_at).collect::<Vec<_>>())
            .bind(created.iter().map(|p| p.next_check_at).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() != created.len() as u64 {
                return Ok(false);
            }
        }

        // 2. The notifications, already knowing their payment and outcome.
        let rows = &self.rows;
        let n = |r: &(usize, usize, &str)| &batch[r.0];
        let inserted: Vec<(i64, String, String, NaiveDate)> = sqlx::query_as(
            "INSERT INTO notifications (partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, verification, \
             payment_id, outcome, response_code, response_message, received_at) \
             SELECT u.p, u.e, u.d, u.h, u.b, u.hd, u.v, u.pay, u.o, '2005200', 'Successful', u.r \
             FROM UNNEST($1::text[], $2::text[], $3::date[], $4::bytea[], $5::text[], $6::text[], $7::text[], $8::text[], \
             $9::text[], $10::timestamptz[]) WITH ORDINALITY AS u(p, e, d, h, b, hd, v, pay, o, r, ord) ORDER BY u.ord \
             ON CONFLICT (partner_id, external_id, jakarta_day) DO NOTHING \
             RETURNING id, partner_id, external_id, jakarta_day",
        )
        .bind(rows.iter().map(|r| n(r).partner_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| n(r).external_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| n(r).jakarta_day).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| n(r).body_sha256.as_slice()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| n(r).raw_body.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| n(r).headers_json.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| n(r).verification.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| self.slots[r.1].payment.id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| n(r).received_at).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await?;
        if inserted.len() != rows.len() {
            // Another transaction stored one of these keys since we looked.
            return Ok(false);
        }
        let ids: HashMap<Key, i64> = inserted.into_iter().map(|(id, p, e, d)| ((p, e, d), id)).collect();

        // 3. The events, in the order item by item would have written them.
        let mut details = Vec::with_capacity(self.events.len());
        for e in &self.events {
            details.push(match &e.detail {
                Detail::Json(v) => v.to_string(),
                Detail::Notification(i) => {
                    let n = &batch[*i];
                    let Some(id) = ids.get(&key(n)) else {
                        return Err(StoreError::Invalid("a planned notification was not inserted".into()));
                    };
                    json!({
                        "notificationId": id,
                        "externalId": n.external_id,
                        "latestTransactionStatus": n.observation.status.code(),
                        "transactionStatusDesc": n.observation.status_desc,
                        "verification": n.verification,
                    })
                    .to_string()
                }
            });
        }
        sqlx::query(
            "INSERT INTO payment_events (payment_id, kind, detail, created_at) \
             SELECT u.p, u.k, u.d, u.t FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[]) \
             WITH ORDINALITY AS u(p, k, d, t, ord) ORDER BY u.ord",
        )
        .bind(self.events.iter().map(|e| self.slots[e.slot].payment.id.as_str()).collect::<Vec<_>>())
        .bind(self.events.iter().map(|e| e.kind).collect::<Vec<_>>())
        .bind(details)
        .bind(self.events.iter().map(|e| e.at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;

        // 4. The locked payments the batch changed, guarded like item by item.
        let changed: Vec<&Slot> = self.slots.iter().filter(|s| s.changed && s.locked_status.is_some()).collect();
        if !changed.is_empty() {
            let done = sqlx::query(
                "UPDATE payments SET reference_no = u.rn, status = u.status, finpay_status = u.fs, paid_at = u.paid_at, \
                 flagged = u.flagged, next_check_at = u.nca, updated_at = u.updated_at \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], \
                 $8::timestamptz[], $9::timestamptz[]) AS u(id, old_status, rn, status, fs, paid_at, flagged, nca, updated_at) \
                 WHERE payments.id = u.id AND payments.status = u.old_status",
            )
            .bind(changed.iter().map(|s| s.payment.id.as_str()).collect::<Vec<_>>())
            .bind(changed.iter().map(|s| s.locked_status.map(|st| st.as_str())).collect::<Vec<_>>())
            .bind(changed.iter().map(|s| s.payment.reference_no.as_deref()).collect::<Vec<_>>())
            .bind(changed.iter().map(|s| s.payment.status.as_str()).collect::<Vec<_>>())
            .bind(changed.iter().map(|s| s.payment.finpay_status.as_deref()).collect::<Vec<_>>())
            .bind(changed.iter().map(|s| s.payment.paid_at).collect::<Vec<_>>())
            .bind(changed.iter().map(|s| s.payment.flagged.as_deref()).collect::<Vec<_>>())
            .bind(changed.iter().map(|s| s.payment.next_check_at).collect::<Vec<_>>())
            .bind(changed.iter().map(|s| s.payment.updated_at).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() != changed.len() as u64 {
                return Err(StoreError::Invalid("a payment changed under its lock".into()));
            }
        }
        Ok(true)
    }
}
