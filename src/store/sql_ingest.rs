//! The reference executor: Finpay's word applied item by item, in one
//! transaction per batch, on both backends. SQLite stores every batch this
//! way; PostgreSQL's set-based executor (`postgres/ingest.rs`) must leave the
//! same rows and give the same answers, and falls back to this one when a
//! concurrent writer got in its way.
//!
//! Nothing here decides: each observation is judged by `domain::effect` on
//! the payments it names, read under a row lock, and its result is written.

macro_rules! sql_ingest {
    ($Store:ident, $Db:ty) => {
        use crate::domain::{effect, record_check, Cause, Effect, Entry, Found, Observation, ObservationSource};
        use crate::store::{Applied, InboundNotification, IngestOutcome, QueryResult};
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

            /// The payments a notification's references name (none, one, or
            /// two that contradict each other), locked in id order: one
            /// statement, because on SQLite every statement is a round trip to
            /// the database's own thread. (A payment's last event number is read
            /// by `raise`, after the lock: on PostgreSQL a statement that waited
            /// for a row lock still reads other rows as of its start.)
            async fn payments_named(
                tx: &mut sqlx::Transaction<'static, $Db>,
                obs: &Observation,
            ) -> crate::store::Result<Vec<Payment>> {
                if obs.original_partner_reference_no.is_none() && obs.original_reference_no.is_none() {
                    return Ok(Vec::new());
                }
                let sql = Self::sql_owned(format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE partner_reference_no = $1 OR reference_no = $2 \
                     ORDER BY id{}",
                    Self::FOR_UPDATE
                ));
                Ok(sqlx::query_as(&sql)
                    .bind(obs.original_partner_reference_no.as_deref())
                    .bind(obs.original_reference_no.as_deref())
                    .fetch_all(&mut **tx)
                    .await?)
            }

            /// One entry of a payment's audit trail.
            pub(crate) async fn insert_event(
                tx: &mut sqlx::Transaction<'static, $Db>,
                payment_id: &str,
                kind: &str,
                detail: &serde_json::Value,
                at: DateTime<Utc>,
            ) -> crate::store::Result<()> {
                Self::insert_entry(tx, payment_id, kind, None, detail, at).await
            }

            async fn insert_entry(
                tx: &mut sqlx::Transaction<'static, $Db>,
                payment_id: &str,
                kind: &str,
                notification_id: Option<i64>,
                detail: &serde_json::Value,
                at: DateTime<Utc>,
            ) -> crate::store::Result<()> {
                sqlx::query(&Self::sql(
                    "INSERT INTO payment_events (payment_id, kind, notification_id, detail, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                ))
                .bind(payment_id)
                .bind(kind)
                .bind(notification_id)
                .bind(Json(detail))
                .bind(at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Writes the payment an effect produced: inserted when learnt,
            /// updated (guarded on the status it was judged on) when changed.
            async fn write_payment(
                tx: &mut sqlx::Transaction<'static, $Db>,
                e: &Effect,
                judged_on: Option<&Payment>,
            ) -> crate::store::Result<()> {
                let p = &e.payment;
                if e.created() {
                    let inserted = sqlx::query(&Self::sql(
                        "INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, \
                         origin, paid_at, flagged, finpay_status, created_at, updated_at, next_check_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING",
                    ))
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
                let updated = sqlx::query(&Self::sql(
                    "UPDATE payments SET reference_no = $1, status = $2, finpay_status = $3, paid_at = $4, flagged = $5, \
                     next_check_at = $6, updated_at = $7, check_attempts = $8, lease_owner = $9, lease_until = $10 \
                     WHERE id = $11 AND status = $12",
                ))
                .bind(p.reference_no.as_deref())
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
                .await;
                let updated = match updated {
                    Ok(u) => u,
                    // A payment holding the reference this one learns was committed
                    // after our read: run the batch again, which then sees it.
                    Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                        return Err(StoreError::Raced("a payment with this reference was created meanwhile"))
                    }
                    Err(e) => return Err(e.into()),
                };
                if updated.rows_affected() != 1 {
                    return Err(StoreError::Invalid(format!("payment {} changed under its lock", p.id)));
                }
                Ok(())
            }

            /// The reference executor: the batch in one transaction, one
            /// notification after the other, in key order (so two replicas
            /// storing the same notifications wait on each other instead of
            /// deadlocking; batches naming the same payments in another order
            /// can still deadlock, and the batcher then stores their
            /// notifications one by one). A batch that met a concurrent writer
            /// of the same key or payment is run again, and then sees that
            /// writer's rows.
            pub async fn ingest_item_by_item(
                &self,
                batch: &[InboundNotification],
            ) -> crate::store::Result<Vec<IngestOutcome>> {
                let mut order: Vec<usize> = (0..batch.len()).collect();
                order.sort_by(|&a, &b| batch[a].key().cmp(&batch[b].key()));
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let mut tx = self.begin().await?;
                    let mut out: Vec<Option<IngestOutcome>> = vec![None; batch.len()];
                    let mut raced = None;
                    let mut stored = Self::stored_hashes(&mut tx, batch).await?;
                    for &i in &order {
                        let n = &batch[i];
                        let key = n.stored_key();
                        if let Some(hash) = stored.get(&key) {
                            out[i] = Some(n.replay_of(hash));
                            continue;
                        }
                        match Self::ingest_one(&mut tx, n).await {
                            Ok(o) => {
                                if matches!(o, IngestOutcome::Applied(_)) {
                                    stored.insert(key, n.body_sha256.clone());
                                }
                                out[i] = Some(o)
                            }
                            Err(StoreError::Raced(why)) => {
                                raced = Some(why);
                                break;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    match raced {
                        None => {
                            tx.commit().await?;
                            return Ok(out.into_iter().map(|o| o.unwrap_or(IngestOutcome::Conflict)).collect());
                        }
                        Some(why) if attempt >= 3 => return Err(StoreError::Raced(why)),
                        Some(_) => tx.rollback().await?,
                    }
                }
            }

            /// The body hashes stored under the batch's keys, read in one statement (on
            /// SQLite every statement is a round trip to the database's own thread). The
            /// caller adds each key it stores, so a key repeated in the batch is a replay
            /// of its first; one stored meanwhile by another transaction makes the insert
            /// below find it taken (`Raced`), and the batch runs again.
            async fn stored_hashes(
                tx: &mut sqlx::Transaction<'static, $Db>,
                batch: &[InboundNotification],
            ) -> crate::store::Result<std::collections::HashMap<crate::store::StoredKey, Vec<u8>>> {
                if batch.is_empty() {
                    return Ok(Default::default());
                }
                let sql = Self::sql_owned(format!(
                    "SELECT n.partner_id, n.external_id, n.jakarta_day, n.body_sha256 FROM (VALUES {}) AS k \
                     JOIN notifications n ON n.partner_id = k.column1 AND n.external_id = k.column2 \
                     AND n.jakarta_day = k.column3",
                    crate::store::value_rows(batch.len(), 3, 1)
                ));
                // Statements of every size: not kept prepared, so they do not push the hot ones out.
                let mut q = sqlx::query_as::<_, (String, String, chrono::NaiveDate, Vec<u8>)>(&sql).persistent(false);
                for n in batch {
                    q = q.bind(&n.partner_id).bind(&n.external_id).bind(n.jakarta_day);
                }
                Ok(q.fetch_all(&mut **tx).await?.into_iter().map(|(p, e, d, h)| ((p, e, d), h)).collect())
            }

            /// A notification whose key is not stored yet.
            async fn ingest_one(
                tx: &mut sqlx::Transaction<'static, $Db>,
                n: &InboundNotification,
            ) -> crate::store::Result<IngestOutcome> {
                let obs = &n.observation;
                let named = Self::payments_named(tx, obs).await?;
                let by = |hit: fn(&Payment, &Observation) -> bool| named.iter().find(|p| hit(p, obs));
                let a = by(|p, o| p.partner_reference_no.is_some() && p.partner_reference_no == o.original_partner_reference_no);
                let b = by(|p, o| p.reference_no.is_some() && p.reference_no == o.original_reference_no);
                let found = Found { by_partner_reference: a, by_reference: b };
                let e = match effect(found, obs, n.entry_detail(), n.received_at, crate::store::new_payment_id) {
                    Ok(e) => e,
                    Err(refusal) => return Ok(IngestOutcome::Refused(refusal)),
                };
                let judged_on = a.or(b);
                if e.changed {
                    Self::write_payment(tx, &e, judged_on).await?;
                }
                let id: Option<i64> = sqlx::query_scalar(&Self::sql(
                    "INSERT INTO notifications (partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, \
                     verification, payment_id, outcome, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (partner_id, external_id, jakarta_day) DO NOTHING RETURNING id",
                ))
                .bind(&n.partner_id)
                .bind(&n.external_id)
                .bind(n.jakarta_day)
                .bind(&n.body_sha256)
                .bind(&n.raw_body)
                .bind(Json(n.headers()?))
                .bind(&n.verification)
                .bind(&e.payment.id)
                .bind(e.outcome.as_str())
                .bind(n.received_at)
                .fetch_optional(&mut **tx)
                .await?;
                let Some(id) = id else {
                    return Err(StoreError::Raced("the same notification was stored meanwhile"));
                };
                Self::insert_entries(tx, &e, Some(id), n.received_at).await?;
                Self::raise(tx, &e.payment, &e.events, Cause::Notification, n.received_at, None).await?;
                Ok(IngestOutcome::Applied(Applied::of(&e)))
            }

            /// The entries of an effect; the first is the observation's own,
            /// which names the stored notification when there is one.
            async fn insert_entries(
                tx: &mut sqlx::Transaction<'static, $Db>,
                e: &Effect,
                notification_id: Option<i64>,
                at: DateTime<Utc>,
            ) -> crate::store::Result<()> {
                if e.entries.is_empty() {
                    return Ok(());
                }
                let rows: Vec<String> = (0..e.entries.len())
                    .map(|k| format!("($1, ${}, ${}, ${}, $2)", 3 * k + 3, 3 * k + 4, 3 * k + 5))
                    .collect();
                let sql = Self::sql_owned(format!(
                    "INSERT INTO payment_events (payment_id, kind, notification_id, detail, created_at) VALUES {}",
                    rows.join(", ")
                ));
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

pub(crate) use sql_ingest;
