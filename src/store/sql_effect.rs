//! The writes of an effect (`domain::effect`), shared by every path that
//! applies one (same conventions as `sql.rs`): the payment, its audit
//! entries, and a query answer applied under the worker's lease. The
//! statements the reference executor shares with SQLite's own run of it
//! (`sqlite_batch.rs`) are the constants below, written once.

/// A payment learnt from an observation (static QR).
pub(crate) const INSERT_LEARNT_PAYMENT: &str = "INSERT INTO payments (id, partner_reference_no, reference_no, \
     amount_minor, currency, status, origin, paid_at, flagged, finpay_status, created_at, updated_at, next_check_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING";

/// A changed payment, guarded on the status it was judged on.
pub(crate) const UPDATE_JUDGED_PAYMENT: &str = "UPDATE payments SET status = $1, \
     finpay_status = $2, paid_at = $3, flagged = $4, next_check_at = $5, updated_at = $6, check_attempts = $7, \
     lease_owner = $8, lease_until = $9 WHERE id = $10 AND status = $11";

/// The reference a payment learnt, written only when it is new: SQLite
/// rewrites the entry of every index whose column an UPDATE sets, even to
/// the same value, and a payment's reference rarely changes.
pub(crate) const LEARN_REFERENCE: &str = "UPDATE payments SET reference_no = $1 WHERE id = $2";

/// A notification and its outcome; no row when its key is taken.
pub(crate) const INSERT_NOTIFICATION: &str = "INSERT INTO notifications (partner_id, external_id, jakarta_day, \
     body_sha256, raw_body, headers, verification, payment_id, outcome, received_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (partner_id, external_id, jakarta_day) DO NOTHING RETURNING id";

/// The body hashes stored under `keys` keys (partner, external id, day).
pub(crate) fn stored_hashes_sql(keys: usize) -> String {
    format!(
        "SELECT n.partner_id, n.external_id, n.jakarta_day, n.body_sha256 FROM (VALUES {}) AS k \
         JOIN notifications n ON n.partner_id = k.column1 AND n.external_id = k.column2 \
         AND n.jakarta_day = k.column3",
        crate::store::value_rows(keys, 3, 1)
    )
}

/// The payments a notification's references name, in id order (the order
/// their locks are taken in).
pub(crate) fn payments_named_sql(columns: &str, for_update: &str) -> String {
    format!(
        "SELECT {columns} FROM payments WHERE partner_reference_no = $1 OR reference_no = $2 ORDER BY id{for_update}"
    )
}

/// `entries` audit entries of one payment: `$1` the payment, `$2` the time,
/// then kind, notification and detail of each.
pub(crate) fn insert_entries_sql(entries: usize) -> String {
    let rows: Vec<String> = (0..entries)
        .map(|k| format!("($1, ${}, ${}, ${}, $2)", 3 * k + 3, 3 * k + 4, 3 * k + 5))
        .collect();
    format!(
        "INSERT INTO payment_events (payment_id, kind, notification_id, detail, created_at) VALUES {}",
        rows.join(", ")
    )
}

macro_rules! sql_effect_writes {
    ($Store:ident, $Db:ty) => {
        use crate::domain::{effect, record_check, Cause, Effect, Entry, Found, Observation, ObservationSource};
        use crate::store::{Applied, QueryResult};
        use sqlx::types::Json;

        impl $Store {
            async fn payment_by(
                tx: &mut sqlx::Transaction<'static, $Db>,
                column: &str,
                value: Option<&str>,
            ) -> crate::store::Result<Option<Payment>> {
                let Some(value) = value else { return Ok(None) };
                let sql = Self::sql_owned(format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE {column} = $1{}",
                    Self::FOR_UPDATE
                ));
                Ok(sqlx::query_as(&sql).bind(value).fetch_optional(&mut **tx).await?)
            }

            /// One entry of a payment's audit trail.
            pub(crate) async fn insert_event(
                tx: &mut sqlx::Transaction<'static, $Db>,
                payment_id: &str,
                kind: &str,
                detail: &serde_json::Value,
                at: DateTime<Utc>,
            ) -> crate::store::Result<()> {
                sqlx::query(&Self::sql(
                    "INSERT INTO payment_events (payment_id, kind, detail, created_at) VALUES ($1, $2, $3, $4)",
                ))
                .bind(payment_id)
                .bind(kind)
                .bind(Json(detail))
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Writes the payment an effect produced: inserted when learnt,
            /// updated (guarded on the status it was judged on) when changed.
            pub(crate) async fn write_payment(
                tx: &mut sqlx::Transaction<'static, $Db>,
                e: &Effect,
                judged_on: Option<&Payment>,
            ) -> crate::store::Result<()> {
                let p = &e.payment;
                if e.created() {
                    let inserted = sqlx::query(&Self::sql(crate::store::sql_effect::INSERT_LEARNT_PAYMENT))
                    .bind(&p.id)
                    .bind(p.partner_reference_no.as_deref())
                    .bind(p.reference_no.as_deref())
                    .bind(p.amount_minor)
                    .bind(&p.currency)
                    .bind(p.status.as_str())
                    .bind(&p.origin)
                    .bind(p.paid_at)
                    .bind(p.flagged.as_deref())
                    .bind(p.finpay_status.as_deref())
                    .bind(p.created_at)
                    .bind(p.updated_at)
                    .bind(p.next_check_at)
                    .execute(&mut **tx)
                    .await?;
                    if inserted.rows_affected() != 1 {
                        return Err(StoreError::Raced("a payment with these references was created meanwhile"));
                    }
                    return Ok(());
                }
                let Some(before) = judged_on else { return Ok(()) };
                if p.reference_no != before.reference_no {
                    let learnt = sqlx::query(&Self::sql(crate::store::sql_effect::LEARN_REFERENCE))
                        .bind(p.reference_no.as_deref())
                        .bind(&p.id)
                        .execute(&mut **tx)
                        .await;
                    match learnt {
                        Ok(_) => {}
                        // A payment holding the reference this one learns was committed
                        // after our read: run the batch again, which then sees it.
                        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                            return Err(StoreError::Raced("a payment with this reference was created meanwhile"))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                let updated = sqlx::query(&Self::sql(crate::store::sql_effect::UPDATE_JUDGED_PAYMENT))
                .bind(p.status.as_str())
                .bind(p.finpay_status.as_deref())
                .bind(p.paid_at)
                .bind(p.flagged.as_deref())
                .bind(p.next_check_at)
                .bind(p.updated_at)
                .bind(p.check_attempts)
                .bind(p.lease_owner.as_deref())
                .bind(p.lease_until)
                .bind(&p.id)
                .bind(before.status.as_str())
                .execute(&mut **tx)
                .await?;
                if updated.rows_affected() != 1 {
                    return Err(StoreError::Invalid(format!("payment {} changed under its lock", p.id)));
                }
                Ok(())
            }

            /// The entries of an effect; the first is the observation's own,
            /// which names the stored notification when there is one.
            pub(crate) async fn insert_entries(
                tx: &mut sqlx::Transaction<'static, $Db>,
                e: &Effect,
                notification_id: Option<i64>,
                at: DateTime<Utc>,
            ) -> crate::store::Result<()> {
                if e.entries.is_empty() {
                    return Ok(());
                }
                let sql = Self::sql_owned(crate::store::sql_effect::insert_entries_sql(e.entries.len()));
                let mut insert = sqlx::query(&sql).bind(&e.payment.id).bind(at);
                for (k, Entry { kind, detail }) in e.entries.iter().enumerate() {
                    let names = if k == 0 { notification_id } else { None };
                    insert = insert.bind(*kind).bind(names).bind(Json(detail));
                }
                insert.execute(&mut **tx).await?;
                Ok(())
            }

            /// A query answer (or a failed attempt), applied under the lease.
            async fn apply_query_in(
                tx: &mut sqlx::Transaction<'static, $Db>,
                payment_id: &str,
                owner: &str,
                result: &QueryResult,
                now: DateTime<Utc>,
            ) -> crate::store::Result<Applied> {
                let sql = Self::sql_owned(format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{}", Self::FOR_UPDATE));
                let payment: Payment =
                    sqlx::query_as(&sql).bind(payment_id).fetch_optional(&mut **tx).await?.ok_or(StoreError::NotFound)?;
                if payment.lease_owner.as_deref() != Some(owner) {
                    // Our lease expired and another worker took over: it owns the answer now.
                    return Err(StoreError::Conflict(format!("lease on {payment_id} is no longer ours")));
                }
                let detail = json!({
                    "attempt": payment.check_attempts + 1,
                    "responseCode": result.response_code,
                    "outcome": result.outcome,
                    "latestTransactionStatus": result.observation.as_ref().map(|o| o.status.code()),
                });
                let mut e = match &result.observation {
                    Some(obs) => {
                        let obs = Observation { source: ObservationSource::Query, ..obs.clone() };
                        let b = Self::payment_by(tx, "reference_no", obs.original_reference_no.as_deref()).await?;
                        let found = Found { by_partner_reference: Some(&payment), by_reference: b.as_ref() };
                        effect(found, &obs, detail, now, crate::store::new_payment_id)
                            .map_err(|r| StoreError::Invalid(r.to_string()))?
                    }
                    None => Effect {
                        payment: payment.clone(),
                        from: Some(payment.status),
                        changed: false,
                        decision: Decision::Unchanged,
                        outcome: crate::domain::Outcome::Unchanged,
                        entries: vec![Entry { kind: "query", detail }],
                        events: Vec::new(),
                    },
                };
                record_check(&mut e.payment, result.next_check_at);
                Self::write_payment(tx, &e, Some(&payment)).await?;
                Self::insert_entries(tx, &e, None, now).await?;
                Self::raise(tx, &e.payment, &e.events, Cause::Query, now, None).await?;
                Ok(Applied::of(&e))
            }
        }
    };
}

pub(crate) use sql_effect_writes;
