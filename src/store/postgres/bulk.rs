//! Group commit on PostgreSQL with set-based statements.
//!
//! The item-by-item path (`ingest_in` in `store/sql.rs`) spends five to seven
//! statements per notification, in one transaction per batch. Here a batch
//! costs two statements, whatever its size, and no explicit transaction:
//!
//! 1. The read finds every payment the batch's notifications name (with its
//!    row version, `xmin`) and the stored rows that already hold any of the
//!    batch's idempotency keys (their duplicates and conflicts are answered
//!    from them).
//! 2. Each new notification's effect is decided in Rust, in key order, with the
//!    same `domain::decide` and the same rules as `apply_observation`, on those
//!    rows, so a later notification of the batch sees an earlier one's effect
//!    exactly as it would item by item.
//! 3. The write is one statement, hence one transaction, committed before its
//!    answer (`fetch_*` reads up to `ReadyForQuery`, which PostgreSQL sends only
//!    after the commit). It inserts the payments learnt from notifications, the
//!    notifications (with their payment and outcome) and the events; updates
//!    the changed payments *only if their version is still the one read*; checks
//!    that the payments it read but did not change are still as read; and checks
//!    that every part wrote exactly what the plan expected.
//!
//! Any difference (a payment changed since the read, a key stored or a payment
//! created by another transaction meanwhile) makes the statement fail with
//! `division_by_zero` on purpose, which rolls the whole statement back; the
//! batch is then stored item by item instead. This is optimistic concurrency
//! control: the plan holds exactly when the statement commits. A payment the
//! batch changes is guarded by its update (`xmin` = the version read; a
//! concurrent update makes PostgreSQL re-check that condition on the newest
//! version, which fails), so no lock is taken before it, and no lock record is
//! written for it. A payment the batch only read (its notification changed
//! nothing) is checked against the statement's snapshot without a lock: a
//! transaction that changes it after that snapshot decided on the same row
//! this batch decided on, so the two are equivalent to this batch first.
//! Nobody is answered before the commit, so an abandoned plan told nobody anything.

use super::{PgStore, PAYMENT_COLUMNS};
use crate::domain::{decide, Decision, PaymentStatus};
use crate::store::{status_change_detail, Applied, InboundNotification, IngestOutcome, Payment, Result, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use sqlx::{FromRow, PgConnection, Row};
use std::collections::HashMap;

type Key = (String, String, NaiveDate);

fn key(n: &InboundNotification) -> Key {
    (n.partner_id.clone(), n.external_id.clone(), n.jakarta_day)
}

/// `(body_sha256, response_code, response_message)` of a stored notification.
type Stored = (Vec<u8>, String, String);

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds the notification row's own columns, one array each, in table order:
/// partner_id, external_id, jakarta_day, body_sha256, raw_body, headers,
/// verification (both batch statements insert them the same way).
pub(super) fn bind_notification_columns<'q>(query: PgQuery<'q>, ns: &[&'q InboundNotification]) -> PgQuery<'q> {
    query
        .bind(ns.iter().map(|n| n.partner_id.as_str()).collect::<Vec<_>>())
        .bind(ns.iter().map(|n| n.external_id.as_str()).collect::<Vec<_>>())
        .bind(ns.iter().map(|n| n.jakarta_day).collect::<Vec<_>>())
        .bind(ns.iter().map(|n| n.body_sha256.as_slice()).collect::<Vec<_>>())
        .bind(ns.iter().map(|n| n.raw_body.as_str()).collect::<Vec<_>>())
        .bind(ns.iter().map(|n| n.headers_json.as_str()).collect::<Vec<_>>())
        .bind(ns.iter().map(|n| n.verification.as_str()).collect::<Vec<_>>())
}

impl PgStore {
    /// The item-by-item path, which the set-based one must match: for tests
    /// that hold the two to the same effects (`tests/bulk_ingest.rs`).
    #[doc(hidden)]
    pub async fn ingest_item_by_item(&self, batch: &[InboundNotification]) -> Result<Vec<IngestOutcome>> {
        self.ingest_one_by_one(batch).await
    }

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

        // The common batch, when its assumptions hold, in one statement (in
        // the same key order; only when no key appears twice).
        if let Some(out) = self.ingest_speculatively(batch, &leaders).await? {
            return Ok(out);
        }
        // One connection for both statements (one pool check-out).
        let mut conn = self.ingest.acquire().await?;
        let (rows, existing, ids) = read(&mut conn, batch, &leaders).await?;
        let fresh: Vec<usize> = leaders
            .into_iter()
            .filter(|&i| !existing.contains_key(&keys[i]))
            .collect();
        let mut plan = Plan::default();
        if !fresh.is_empty() {
            plan.load(rows);
            for &i in &fresh {
                plan.apply(i, &batch[i])?;
            }
            if !plan.write(&mut conn, batch, &ids).await? {
                drop(conn);
                tracing::debug!(
                    batch = batch.len(),
                    "bulk plan met a concurrent writer; storing item by item"
                );
                return self.ingest_one_by_one(batch).await;
            }
        }

        Ok((0..batch.len())
            .map(|i| {
                let n = &batch[i];
                let leader = leader_of[&keys[i]];
                match existing.get(&keys[i]) {
                    Some((hash, code, message)) if *hash == n.body_sha256 => IngestOutcome::Duplicate {
                        response_code: code.clone(),
                        response_message: message.clone(),
                    },
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

/// Every payment the leaders name, with its row version, and the stored rows
/// holding any of their keys: one statement, no locks.
async fn read(
    conn: &mut PgConnection,
    batch: &[InboundNotification],
    leaders: &[usize],
) -> Result<(Vec<(Payment, String)>, HashMap<Key, Stored>, Vec<i64>)> {
    let obs = |i: &usize| &batch[*i].observation;
    // Aligned with the leaders (NULL where a notification lacks the reference).
    let prns: Vec<Option<&str>> = leaders
        .iter()
        .map(|i| obs(i).original_partner_reference_no.as_deref())
        .collect();
    let rns: Vec<Option<&str>> = leaders
        .iter()
        .map(|i| obs(i).original_reference_no.as_deref())
        .collect();
    // For each leader, the payment `find_payment_for_update` would choose: the
    // one our reference names, else the one Finpay's names. `LIMIT 1` over
    // `UNION ALL` runs the second lookup only when the first found nothing.
    // Two leaders naming one payment return it twice; it is kept once.
    // Three kinds of rows in one answer: `p` rows are payments, `n` stored
    // notifications, `i` ids drawn from the notifications' sequence, one per
    // leader (the columns of the other kinds are NULL). Drawing ids that a
    // duplicate or an abandoned plan then leaves unused only leaves a gap.
    let nulls = vec!["NULL"; PAYMENT_COLUMNS.split(',').count()].join(", ");
    let sql = format!(
        "SELECT 'p' AS row_kind, {PAYMENT_COLUMNS}, row_version, NULL::text AS n_partner_id, \
         NULL::text AS n_external_id, NULL::date AS n_jakarta_day, NULL::bytea AS n_body_sha256, \
         NULL::text AS n_response_code, NULL::text AS n_response_message, NULL::bigint AS n_id \
         FROM UNNEST($4::text[], $5::text[]) AS r(prn, rn) CROSS JOIN LATERAL ( \
           (SELECT *, xmin::text AS row_version FROM payments WHERE partner_reference_no = r.prn \
            UNION ALL SELECT *, xmin::text FROM payments WHERE reference_no = r.rn) LIMIT 1) payments \
         UNION ALL \
         SELECT 'n', {nulls}, NULL, n.partner_id, n.external_id, n.jakarta_day, n.body_sha256, n.response_code, \
         n.response_message, NULL FROM UNNEST($1::text[], $2::text[], $3::date[]) AS k(partner_id, external_id, jakarta_day) \
         CROSS JOIN LATERAL (SELECT * FROM notifications n WHERE n.partner_id = k.partner_id \
           AND n.external_id = k.external_id AND n.jakarta_day = k.jakarta_day LIMIT 1) n \
         UNION ALL \
         SELECT 'i', {nulls}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, nextval('notifications_id_seq') \
         FROM generate_series(1, cardinality($1::text[]))"
    );
    let rows = sqlx::query(&sql)
        .bind(
            leaders
                .iter()
                .map(|&i| batch[i].partner_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            leaders
                .iter()
                .map(|&i| batch[i].external_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(leaders.iter().map(|&i| batch[i].jakarta_day).collect::<Vec<_>>())
        .bind(prns)
        .bind(rns)
        .fetch_all(&mut *conn)
        .await?;
    let mut payments = Vec::new();
    let mut stored = HashMap::new();
    let mut ids = Vec::with_capacity(leaders.len());
    for row in rows {
        let kind: &str = row.try_get("row_kind")?;
        if kind == "p" {
            payments.push((Payment::from_row(&row)?, row.try_get("row_version")?));
        } else if kind == "i" {
            ids.push(row.try_get("n_id")?);
        } else {
            stored.insert(
                (
                    row.try_get("n_partner_id")?,
                    row.try_get("n_external_id")?,
                    row.try_get("n_jakarta_day")?,
                ),
                (
                    row.try_get("n_body_sha256")?,
                    row.try_get("n_response_code")?,
                    row.try_get("n_response_message")?,
                ),
            );
        }
    }
    payments.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    payments.dedup_by(|a, b| a.0.id == b.0.id);
    ids.sort_unstable();
    Ok((payments, stored, ids))
}

/// A payment as the plan sees it: the row as read plus the batch's effects so far.
struct Slot {
    payment: Payment,
    /// Status and row version as read; `None` for a payment this batch creates.
    read: Option<(PaymentStatus, String)>,
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
    /// Our references that named no payment when read: still none at the write.
    absent_partner_refs: Vec<String>,
}

impl Plan {
    fn load(&mut self, read: Vec<(Payment, String)>) {
        for (p, version) in read {
            let status = p.status;
            self.add(Slot {
                payment: p,
                read: Some((status, version)),
                changed: false,
            });
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
        if let Some(prn) = prn {
            if !self.by_partner_ref.contains_key(prn) {
                // Had a payment with this reference appeared meanwhile, item by
                // item would have chosen it: the write checks it has not.
                self.absent_partner_refs.push(prn.to_string());
            }
        }
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
            let at = self.add(Slot {
                payment,
                read: None,
                changed: true,
            });
            self.events.push(Event {
                slot: at,
                kind: by,
                detail: Detail::Notification(i),
                at: now,
            });
            self.events.push(Event {
                slot: at,
                kind: "created",
                detail: Detail::Json(json!({"from": by, "status": status.as_str(), "finpayStatus": obs.status.code()})),
                at: now,
            });
            self.rows.push((i, at, "applied"));
            let decision = Decision::Transition { to: status, flag: None };
            self.applied.insert(
                i,
                Applied {
                    payment_id,
                    created: true,
                    from: None,
                    to: status,
                    decision,
                },
            );
            return Ok(());
        };

        self.events.push(Event {
            slot: at,
            kind: by,
            detail: Detail::Notification(i),
            at: now,
        });
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
        let decision = decide(
            p.status,
            (p.amount_minor, p.currency.as_str()),
            obs.status,
            observed_amount,
        );
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
                Some(("status_changed", status_change_detail(from, *next, by, flag.as_deref())))
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
            self.events.push(Event {
                slot: at,
                kind,
                detail: Detail::Json(detail),
                at: now,
            });
        }
        let outcome = match &decision {
            Decision::Transition { .. } => "applied",
            Decision::Unchanged => "unchanged",
            Decision::Ignored { .. } => "ignored",
            Decision::Mismatch { .. } => "flagged",
        };
        self.rows.push((i, at, outcome));
        let payment_id = p.id.clone();
        self.applied.insert(
            i,
            Applied {
                payment_id,
                created: false,
                from: Some(from),
                to,
                decision,
            },
        );
        Ok(())
    }

    /// Writes the plan in one statement (one transaction); `false` when the
    /// database disagreed with an assumption, in which case nothing was written.
    async fn write(&self, conn: &mut PgConnection, batch: &[InboundNotification], ids: &[i64]) -> Result<bool> {
        let read: Vec<(&Slot, &(PaymentStatus, String))> = self
            .slots
            .iter()
            .filter_map(|s| s.read.as_ref().map(|r| (s, r)))
            .collect();
        let created: Vec<&Payment> = self
            .slots
            .iter()
            .filter(|s| s.read.is_none())
            .map(|s| &s.payment)
            .collect();
        // A payment the batch changes is guarded by its own update; the others
        // it read are checked as read.
        let (changed, only_read): (Vec<_>, Vec<_>) = read.iter().copied().partition(|(s, _)| s.changed);
        let rows = &self.rows;
        let n = |r: &(usize, usize, &str)| &batch[r.0];
        // Each new notification gets one of the ids the read drew from the
        // table's sequence, so its own event can name it without a join.
        let id_of: HashMap<usize, i64> = rows.iter().map(|r| r.0).zip(ids.iter().copied()).collect();
        let detail_of = |e: &Event| match &e.detail {
            Detail::Json(v) => v.to_string(),
            Detail::Notification(i) => notification_detail(&batch[*i], id_of[i]),
        };
        let query = sqlx::query(
            "WITH unchanged AS ( \
               SELECT 1 FROM payments p JOIN UNNEST($38::text[], $39::xid[]) AS v(id, version) \
                 ON p.id = v.id AND p.xmin = v.version WHERE p.id = ANY($38) \
             ), created AS ( \
               INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, \
                 paid_at, flagged, finpay_status, created_at, updated_at, next_check_at) \
               SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], \
                 $8::timestamptz[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[]) \
               ON CONFLICT DO NOTHING RETURNING 1 \
             ), n AS ( \
               INSERT INTO notifications (id, partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, \
                 verification, payment_id, outcome, response_code, response_message, received_at) \
               SELECT u.id, u.p, u.e, u.d, u.h, u.b, u.hd, u.v, u.pay, u.o, '2005200', 'Successful', u.r \
               FROM UNNEST($28::bigint[], $14::text[], $15::text[], $16::date[], $17::bytea[], $18::text[], $19::text[], \
                 $20::text[], $21::text[], $22::text[], $23::timestamptz[]) AS u(id, p, e, d, h, b, hd, v, pay, o, r) \
               ON CONFLICT (partner_id, external_id, jakarta_day) DO NOTHING \
               RETURNING 1 \
             ), ev AS ( \
               INSERT INTO payment_events (payment_id, kind, detail, created_at) \
               SELECT * FROM UNNEST($24::text[], $25::text[], $26::text[], $27::timestamptz[]) \
               RETURNING 1 \
             ), upd AS ( \
               UPDATE payments SET reference_no = u.rn, status = u.status, finpay_status = u.fs, paid_at = u.paid_at, \
                 flagged = u.flagged, next_check_at = u.nca, updated_at = u.updated_at \
               FROM UNNEST($29::text[], $30::text[], $31::text[], $32::text[], $33::text[], $34::timestamptz[], $35::text[], \
                 $36::timestamptz[], $37::timestamptz[], $41::xid[]) \
                 AS u(id, old_status, rn, status, fs, paid_at, flagged, nca, updated_at, version) \
               WHERE payments.id = ANY($29) AND payments.id = u.id AND payments.status = u.old_status \
                 AND payments.xmin = u.version \
               RETURNING 1 \
             ) \
             SELECT 1 / (CASE WHEN (SELECT count(*) FROM unchanged) = cardinality($38::text[]) \
               AND (SELECT count(*) FROM created) = cardinality($1::text[]) \
               AND (SELECT count(*) FROM n) = cardinality($14::text[]) \
               AND (SELECT count(*) FROM ev) = cardinality($24::text[]) \
               AND (SELECT count(*) FROM upd) = cardinality($29::text[]) \
               AND NOT EXISTS (SELECT 1 FROM payments WHERE partner_reference_no = ANY($40::text[])) \
             THEN 1 ELSE 0 END)",
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
        .bind(created.iter().map(|p| p.next_check_at).collect::<Vec<_>>());
        // The notifications, already knowing their payment and outcome.
        let query = bind_notification_columns(query, &rows.iter().map(n).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|r| self.slots[r.1].payment.id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| n(r).received_at).collect::<Vec<_>>())
            // The events, in the order item by item would have written them.
            .bind(
                self.events
                    .iter()
                    .map(|e| self.slots[e.slot].payment.id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(self.events.iter().map(|e| e.kind).collect::<Vec<_>>())
            .bind(self.events.iter().map(detail_of).collect::<Vec<_>>())
            .bind(self.events.iter().map(|e| e.at).collect::<Vec<_>>())
            // The notifications' ids, drawn from their sequence by the read.
            .bind(rows.iter().map(|r| id_of[&r.0]).collect::<Vec<_>>())
            // The payments the batch changed, guarded like item by item.
            .bind(changed.iter().map(|(s, _)| s.payment.id.as_str()).collect::<Vec<_>>())
            .bind(changed.iter().map(|(_, (st, _))| st.as_str()).collect::<Vec<_>>())
            .bind(
                changed
                    .iter()
                    .map(|(s, _)| s.payment.reference_no.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                changed
                    .iter()
                    .map(|(s, _)| s.payment.status.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                changed
                    .iter()
                    .map(|(s, _)| s.payment.finpay_status.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(changed.iter().map(|(s, _)| s.payment.paid_at).collect::<Vec<_>>())
            .bind(
                changed
                    .iter()
                    .map(|(s, _)| s.payment.flagged.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(changed.iter().map(|(s, _)| s.payment.next_check_at).collect::<Vec<_>>())
            .bind(changed.iter().map(|(s, _)| s.payment.updated_at).collect::<Vec<_>>())
            // The payments the plan read and does not change, with the version read.
            .bind(only_read.iter().map(|(s, _)| s.payment.id.as_str()).collect::<Vec<_>>())
            .bind(
                only_read
                    .iter()
                    .map(|(_, (_, version))| version.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(&self.absent_partner_refs)
            .bind(
                changed
                    .iter()
                    .map(|(_, (_, version))| version.as_str())
                    .collect::<Vec<_>>(),
            );
        let done = query.execute(&mut *conn).await;
        match done {
            Ok(_) => Ok(true),
            // The statement's own "the plan no longer holds" signal; or two
            // writers' updates of the same payments met in opposite orders
            // (`deadlock_detected`): PostgreSQL rolled this one back whole.
            Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("22012" | "40P01")) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// The detail of a notification's own event, as `ingest_in` writes it.
pub(super) fn notification_detail(n: &InboundNotification, notification_id: i64) -> String {
    notification_detail_value(n, notification_id).to_string()
}

/// `notification_detail` as a JSON value, for the one statement to add the
/// status change to (`speculative::detail_around_id`).
pub(super) fn notification_detail_value(n: &InboundNotification, notification_id: i64) -> serde_json::Value {
    json!({
        "notificationId": notification_id,
        "externalId": n.external_id,
        "latestTransactionStatus": n.observation.status.code(),
        "transactionStatusDesc": n.observation.status_desc,
        "verification": n.verification,
    })
}
