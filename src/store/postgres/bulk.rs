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
use sqlx::{FromRow, Postgres, Row, Transaction};
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

        let t0 = std::time::Instant::now();
        let mut tx = self.begin().await?;
        let t1 = std::time::Instant::now();
        let (locked, existing) = read(&mut tx, batch, &leaders).await?;
        let t2 = std::time::Instant::now();
        let fresh: Vec<usize> = leaders.into_iter().filter(|&i| !existing.contains_key(&keys[i])).collect();
        let mut plan = Plan::default();
        if !fresh.is_empty() {
            plan.load(locked);
            for &i in &fresh {
                plan.apply(i, &batch[i])?;
            }
            let t3 = std::time::Instant::now();
            let ok = plan.write(&mut tx, batch).await?;
            PROF[3].fetch_add(t3.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
            PROF[2].fetch_add((t3-t2).as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
            if !ok {
                tx.rollback().await?;
                tracing::debug!(batch = batch.len(), "bulk plan met a concurrent writer; storing item by item");
                return self.ingest_one_by_one(batch).await;
            }
        }
        let t4 = std::time::Instant::now();
        tx.commit().await?;
        PROF[0].fetch_add((t1 - t0).as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        PROF[1].fetch_add((t2 - t1).as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        PROF[4].fetch_add(t4.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        PROF[5].fetch_add(t0.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        PROF[6].fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let n = PROF[7].fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n % 500 == 0 {
            let v: Vec<u64> = PROF.iter().map(|a| a.swap(0, std::sync::atomic::Ordering::Relaxed)).collect();
            eprintln!("PROF per batch us: begin {} read {} plan {} write {} commit {} total {} items/batch {}", v[0]/500, v[1]/500, v[2]/500, v[3]/500, v[4]/500, v[5]/500, v[6] as f64/500.0);
        }

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

/// Locks (in id order) every payment the leaders name, and finds the stored
/// rows holding any of their keys: one round trip.
async fn read(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[InboundNotification],
    leaders: &[usize],
) -> Result<(Vec<Payment>, HashMap<Key, Stored>)> {
    let obs = |i: &usize| &batch[*i].observation;
    let prns: Vec<&str> = leaders.iter().filter_map(|i| obs(i).original_partner_reference_no.as_deref()).collect();
    let rns: Vec<&str> = leaders.iter().filter_map(|i| obs(i).original_reference_no.as_deref()).collect();
    // Two kinds of rows in one answer: `p` rows are locked payments, `n` rows
    // stored notifications (the columns of the other kind are NULL).
    let sql = format!(
        "WITH locked AS MATERIALIZED (SELECT {PAYMENT_COLUMNS} FROM payments \
         WHERE partner_reference_no = ANY($4) OR reference_no = ANY($5) ORDER BY id FOR UPDATE) \
         SELECT 'p' AS row_kind, locked.*, NULL::text AS n_partner_id, NULL::text AS n_external_id, \
         NULL::date AS n_jakarta_day, NULL::bytea AS n_body_sha256, NULL::text AS n_response_code, \
         NULL::text AS n_response_message FROM locked \
         UNION ALL \
         SELECT 'n', {nulls}, n.partner_id, n.external_id, n.jakarta_day, n.body_sha256, n.response_code, n.response_message \
         FROM UNNEST($1::text[], $2::text[], $3::date[]) AS k(partner_id, external_id, jakarta_day) \
         JOIN notifications n USING (partner_id, external_id, jakarta_day)",
        nulls = vec!["NULL"; PAYMENT_COLUMNS.split(',').count()].join(", ")
    );
    let rows = sqlx::query(&sql)
        .bind(leaders.iter().map(|&i| batch[i].partner_id.as_str()).collect::<Vec<_>>())
        .bind(leaders.iter().map(|&i| batch[i].external_id.as_str()).collect::<Vec<_>>())
        .bind(leaders.iter().map(|&i| batch[i].jakarta_day).collect::<Vec<_>>())
        .bind(prns)
        .bind(rns)
        .fetch_all(&mut **tx)
        .await?;
    let mut locked = Vec::new();
    let mut stored = HashMap::new();
    for row in rows {
        if row.try_get::<&str, _>("row_kind")? == "p" {
            locked.push(Payment::from_row(&row)?);
        } else {
            stored.insert(
                (row.try_get("n_partner_id")?, row.try_get("n_external_id")?, row.try_get("n_jakarta_day")?),
                (row.try_get("n_body_sha256")?, row.try_get("n_response_code")?, row.try_get("n_response_message")?),
            );
        }
    }
    Ok((locked, stored))
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

    /// Writes the plan in one statement; `false` when the database disagreed
    /// with an assumption (the caller rolls back).
    async fn write(&self, tx: &mut Transaction<'static, Postgres>, batch: &[InboundNotification]) -> Result<bool> {
        let created: Vec<&Payment> = self.slots.iter().filter(|s| s.locked_status.is_none()).map(|s| &s.payment).collect();
        let changed: Vec<&Slot> = self.slots.iter().filter(|s| s.changed && s.locked_status.is_some()).collect();
        let rows = &self.rows;
        let n = |r: &(usize, usize, &str)| &batch[r.0];
        // A notification's own event names its row, whose id exists only once
        // inserted: the detail is rendered with id 0 and the statement puts the
        // id in. The key `"notificationId":0` cannot occur inside a JSON string
        // (its quotes would be escaped), so the replacement is exact.
        let detail_of = |e: &Event| match &e.detail {
            Detail::Json(v) => v.to_string(),
            Detail::Notification(i) => notification_detail(&batch[*i], 0),
        };
        let source = |e: &Event| match e.detail {
            Detail::Notification(i) => Some(&batch[i]),
            Detail::Json(_) => None,
        };
        let (created_n, inserted_n, updated_n): (i64, i64, i64) = sqlx::query_as(
            "WITH created AS ( \
               INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, \
                 paid_at, flagged, finpay_status, created_at, updated_at, next_check_at) \
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], \
                 $8::timestamptz[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[]) \
               ON CONFLICT DO NOTHING RETURNING 1 \
             ), n AS ( \
               INSERT INTO notifications (partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, verification, \
                 payment_id, outcome, response_code, response_message, received_at) \
               SELECT u.p, u.e, u.d, u.h, u.b, u.hd, u.v, u.pay, u.o, '2005200', 'Successful', u.r \
               FROM UNNEST($14::text[], $15::text[], $16::date[], $17::bytea[], $18::text[], $19::text[], $20::text[], \
                 $21::text[], $22::text[], $23::timestamptz[]) WITH ORDINALITY AS u(p, e, d, h, b, hd, v, pay, o, r, ord) \
               ORDER BY u.ord \
               ON CONFLICT (partner_id, external_id, jakarta_day) DO NOTHING \
               RETURNING id, partner_id, external_id, jakarta_day \
             ), ev AS ( \
               INSERT INTO payment_events (payment_id, kind, detail, created_at) \
               SELECT e.p, e.k, CASE WHEN n.id IS NULL THEN e.d \
                 ELSE replace(e.d, '\"notificationId\":0', '\"notificationId\":' || n.id) END, e.t \
               FROM UNNEST($24::text[], $25::text[], $26::text[], $27::timestamptz[], $28::text[], $29::text[], $30::date[]) \
                 WITH ORDINALITY AS e(p, k, d, t, np, ne, nd, ord) \
               LEFT JOIN n ON n.partner_id = e.np AND n.external_id = e.ne AND n.jakarta_day = e.nd \
               ORDER BY e.ord \
               RETURNING 1 \
             ), upd AS ( \
               UPDATE payments SET reference_no = u.rn, status = u.status, finpay_status = u.fs, paid_at = u.paid_at, \
                 flagged = u.flagged, next_check_at = u.nca, updated_at = u.updated_at \
               FROM UNNEST($31::text[], $32::text[], $33::text[], $34::text[], $35::text[], $36::timestamptz[], $37::text[], \
                 $38::timestamptz[], $39::timestamptz[]) AS u(id, old_status, rn, status, fs, paid_at, flagged, nca, updated_at) \
               WHERE payments.id = u.id AND payments.status = u.old_status \
               RETURNING 1 \
             ) \
             SELECT (SELECT count(*) FROM created), (SELECT count(*) FROM n), (SELECT count(*) FROM upd)",
        )
        // Payments learnt from notifications, in their state at the end of the batch.
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
        // The notifications, already knowing their payment and outcome.
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
        // The events, in the order item by item would have written them.
        .bind(self.events.iter().map(|e| self.slots[e.slot].payment.id.as_str()).collect::<Vec<_>>())
        .bind(self.events.iter().map(|e| e.kind).collect::<Vec<_>>())
        .bind(self.events.iter().map(detail_of).collect::<Vec<_>>())
        .bind(self.events.iter().map(|e| e.at).collect::<Vec<_>>())
        .bind(self.events.iter().map(|e| source(e).map(|n| n.partner_id.as_str())).collect::<Vec<_>>())
        .bind(self.events.iter().map(|e| source(e).map(|n| n.external_id.as_str())).collect::<Vec<_>>())
        .bind(self.events.iter().map(|e| source(e).map(|n| n.jakarta_day)).collect::<Vec<_>>())
        // The locked payments the batch changed, guarded like item by item.
        .bind(changed.iter().map(|s| s.payment.id.as_str()).collect::<Vec<_>>())
        .bind(changed.iter().map(|s| s.locked_status.map(|st| st.as_str())).collect::<Vec<_>>())
        .bind(changed.iter().map(|s| s.payment.reference_no.as_deref()).collect::<Vec<_>>())
        .bind(changed.iter().map(|s| s.payment.status.as_str()).collect::<Vec<_>>())
        .bind(changed.iter().map(|s| s.payment.finpay_status.as_deref()).collect::<Vec<_>>())
        .bind(changed.iter().map(|s| s.payment.paid_at).collect::<Vec<_>>())
        .bind(changed.iter().map(|s| s.payment.flagged.as_deref()).collect::<Vec<_>>())
        .bind(changed.iter().map(|s| s.payment.next_check_at).collect::<Vec<_>>())
        .bind(changed.iter().map(|s| s.payment.updated_at).collect::<Vec<_>>())
        .fetch_one(&mut **tx)
        .await?;
        if updated_n != changed.len() as i64 {
            return Err(StoreError::Invalid("a payment changed under its lock".into()));
        }
        // Fewer rows than planned: another transaction stored one of these keys
        // or created one of these payments since the read.
        Ok(created_n == created.len() as i64 && inserted_n == rows.len() as i64)
    }
}

/// The detail of a notification's own event, as `ingest_in` writes it.
fn notification_detail(n: &InboundNotification, notification_id: i64) -> String {
    json!({
        "notificationId": notification_id,
        "externalId": n.external_id,
        "latestTransactionStatus": n.observation.status.code(),
        "transactionStatusDesc": n.observation.status_desc,
        "verification": n.verification,
    })
    .to_string()
}

static PROF: [std::sync::atomic::AtomicU64; 8] = [const { std::sync::atomic::AtomicU64::new(0) }; 8];
