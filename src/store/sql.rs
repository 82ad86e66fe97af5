//! The SQL both backends share, written once and expanded for each.
//!
//! The statements use PostgreSQL's `$n` placeholders (SQLite gets `?n`) and
//! only syntax both dialects accept; the differences (row locks, how a
//! transaction starts) come from the store's `FOR_UPDATE`, `SKIP_LOCKED` and
//! `begin`.

macro_rules! sql_store {
    ($Store:ident, $Db:ty) => {
        use crate::domain::{decide, Decision, Observation, ObservationSource, PaymentStatus};
        use crate::store::{
            Applied, Backend, GeneratedQr, InboundNotification, IngestOutcome, NewPayment, Payment,
            PaymentEvent, PaymentFilter, QueryResult, Store, StoreError,
        };
        use chrono::{DateTime, Utc};
        use serde_json::json;

        const PAYMENT_COLUMNS: &str = "id, partner_reference_no, reference_no, amount_minor, currency, status, origin, \
             qr_content, qr_url, note, valid_until, paid_at, refunded_minor, flagged, finpay_status, created_at, \
             updated_at, next_check_at, check_attempts, lease_owner, lease_until";

        impl $Store {
            async fn find_payment_for_update(
                tx: &mut sqlx::Transaction<'static, $Db>,
                partner_reference_no: Option<&str>,
                reference_no: Option<&str>,
            ) -> crate::store::Result<Option<Payment>> {
                // Our own reference first, else Finpay's: two lookups, each on its
                // unique index. (One `… = $1 OR … = $2` let SQLite's planner scan
                // the whole table once ANALYZE had seen mostly NULL reference_no.)
                for (column, value) in [("partner_reference_no", partner_reference_no), ("reference_no", reference_no)] {
                    let Some(value) = value else { continue };
                    let sql = Self::sql_owned(format!(
                        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE {column} = $1{}",
                        Self::FOR_UPDATE
                    ));
                    let found: Option<Payment> = sqlx::query_as(&sql).bind(value).fetch_optional(&mut **tx).await?;
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                Ok(None)
            }

            /// A payment we generate, pending, with its `created` event.
            pub(crate) async fn insert_generated_payment(
                tx: &mut sqlx::Transaction<'static, $Db>,
                p: &NewPayment,
                next_check_at: Option<DateTime<Utc>>,
            ) -> crate::store::Result<Payment> {
                let sql = Self::sql_owned(format!(
                    "INSERT INTO payments (id, partner_reference_no, amount_minor, currency, status, origin, note, \
                     valid_until, created_at, updated_at, next_check_at) \
                     VALUES ($1, $2, $3, $4, 'pending', 'generated', $5, $6, $7, $7, $8) RETURNING {PAYMENT_COLUMNS}"
                ));
                let row: Payment = sqlx::query_as(&sql)
                    .bind(&p.id)
                    .bind(&p.partner_reference_no)
                    .bind(p.amount_minor)
                    .bind(&p.currency)
                    .bind(p.note.as_deref())
                    .bind(p.valid_until)
                    .bind(p.created_at)
                    .bind(next_check_at)
                    .fetch_one(&mut **tx)
                    .await?;
                let detail = json!({
                    "from": "api",
                    "status": "pending",
                    "amount": crate::domain::status::format_minor(p.amount_minor),
                    "partnerReferenceNo": p.partner_reference_no,
                });
                Self::insert_event(tx, &row.id, "created", &detail, p.created_at).await?;
                Ok(row)
            }

            async fn insert_event(
                tx: &mut sqlx::Transaction<'static, $Db>,
                payment_id: &str,
                kind: &str,
                detail: &serde_json::Value,
                now: DateTime<Utc>,
            ) -> crate::store::Result<()> {
                sqlx::query(&Self::sql(
                    "INSERT INTO payment_events (payment_id, kind, detail, created_at) VALUES ($1, $2, $3, $4)",
                ))
                .bind(payment_id)
                .bind(kind)
                .bind(detail.to_string())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// The one code path by which Finpay's word changes a payment,
            /// for notifications and queries alike.
            async fn apply_observation(
                tx: &mut sqlx::Transaction<'static, $Db>,
                known: Option<Payment>,
                obs: &Observation,
                source_detail: serde_json::Value,
                now: DateTime<Utc>,
            ) -> crate::store::Result<Applied> {
                let prn = obs.original_partner_reference_no.as_deref();
                let rn = obs.original_reference_no.as_deref();
                let found = match known {
                    Some(p) => Some(p),
                    None => Self::find_payment_for_update(tx, prn, rn).await?,
                };
                let observed_amount = obs.amount.as_ref().map(|a| (a.minor, a.currency.as_str()));
                let Some(payment) = found else {
                    // A payment we never generated (static QR): learn it from the notification.
                    let Some(amount) = obs.amount.as_ref() else {
                        return Err(StoreError::Invalid("a new payment needs an amount".into()));
                    };
                    let status = PaymentStatus::from_finpay(obs.status).unwrap_or(PaymentStatus::Pending);
                    let id = uuid::Uuid::now_v7().to_string();
                    let paid_at = (status == PaymentStatus::Paid).then_some(now);
                    let next_check = status.is_open().then_some(now);
                    let sql = format!(
                        "INSERT INTO payments (id, partner_reference_no, reference_no, amount_minor, currency, status, origin, \
                         paid_at, finpay_status, created_at, updated_at, next_check_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'notification', $7, $8, $9, $9, $10) \
                         ON CONFLICT DO NOTHING RETURNING {PAYMENT_COLUMNS}"
                    );
                    let sql = Self::sql_owned(sql);
                    let created: Option<Payment> = sqlx::query_as(&sql)
                        .bind(&id)
                        .bind(prn)
                        .bind(rn)
                        .bind(amount.minor)
                        .bind(&amount.currency)
                        .bind(status.as_str())
                        .bind(paid_at)
                        .bind(obs.status.code())
                        .bind(now)
                        .bind(next_check)
                        .fetch_optional(&mut **tx)
                        .await?;
                    let Some(created) = created else {
                        // Another transaction created it a moment ago: apply to that one.
                        let again = Self::find_payment_for_update(tx, prn, rn).await?;
                        let Some(again) = again else {
                            return Err(StoreError::Invalid("payment vanished while being created".into()));
                        };
                        return Box::pin(Self::apply_observation(tx, Some(again), obs, source_detail, now)).await;
                    };
                    Self::insert_event(tx, &created.id, obs.source.as_str(), &source_detail, now).await?;
                    Self::insert_event(
                        tx,
                        &created.id,
                        "created",
                        &json!({"from": obs.source.as_str(), "status": status.as_str(), "finpayStatus": obs.status.code()}),
                        now,
                    )
                    .await?;
                    return Ok(Applied {
                        payment_id: created.id,
                        created: true,
                        from: None,
                        to: status,
                        decision: Decision::Transition { to: status, flag: None },
                    });
                };

                Self::insert_event(tx, &payment.id, obs.source.as_str(), &source_detail, now).await?;
                if payment.reference_no.is_none() {
                    if let Some(rn) = rn {
                        sqlx::query(&Self::sql("UPDATE payments SET reference_no = $1 WHERE id = $2 AND reference_no IS NULL"))
                            .bind(rn)
                            .bind(&payment.id)
                            .execute(&mut **tx)
                            .await?;
                    }
                }
                let decision = decide(
                    payment.status,
                    (payment.amount_minor, payment.currency.as_str()),
                    obs.status,
                    observed_amount,
                );
                let mut to = payment.status;
                match &decision {
                    Decision::Transition { to: next, flag } => {
                        let done = sqlx::query(&Self::sql(
                            "UPDATE payments SET status = $1, finpay_status = $2, \
                             paid_at = CASE WHEN $1 = 'paid' THEN COALESCE(paid_at, $3) ELSE paid_at END, \
                             flagged = COALESCE($4, flagged), \
                             next_check_at = CASE WHEN $1 IN ('initiated', 'pending', 'paying') THEN next_check_at ELSE NULL END, \
                             updated_at = $3 WHERE id = $5 AND status = $6",
                        ))
                        .bind(next.as_str())
                        .bind(obs.status.code())
                        .bind(now)
                        .bind(flag.as_deref())
                        .bind(&payment.id)
                        .bind(payment.status.as_str())
                        .execute(&mut **tx)
                        .await?;
                        if done.rows_affected() != 1 {
                            return Err(StoreError::Invalid(format!("payment {} changed under its lock", payment.id)));
                        }
                        to = *next;
                        Self::insert_event(
                            tx,
                            &payment.id,
                            "status_changed",
                            &crate::store::status_change_detail(payment.status, *next, obs.source.as_str(), flag.as_deref()),
                            now,
                        )
                        .await?;
                    }
                    Decision::Mismatch { reason } => {
                        sqlx::query(&Self::sql("UPDATE payments SET flagged = $1, updated_at = $2 WHERE id = $3"))
                            .bind(reason)
                            .bind(now)
                            .bind(&payment.id)
                            .execute(&mut **tx)
                            .await?;
                        Self::insert_event(tx, &payment.id, "flagged", &json!({"reason": reason, "by": obs.source.as_str()}), now)
                            .await?;
                    }
                    Decision::Ignored { reason } => {
                        Self::insert_event(tx, &payment.id, "ignored", &json!({"reason": reason, "by": obs.source.as_str()}), now)
                            .await?;
                    }
                    Decision::Unchanged => {}
                }
                Ok(Applied { payment_id: payment.id, created: false, from: Some(payment.status), to, decision })
            }

            /// The whole batch in one transaction, one notification after the other.
            async fn ingest_one_by_one(&self, batch: &[InboundNotification]) -> crate::store::Result<Vec<IngestOutcome>> {
                // Keys in a fixed order, so two replicas inserting overlapping
                // batches wait on each other instead of deadlocking.
                let mut order: Vec<usize> = (0..batch.len()).collect();
                order.sort_by(|&a, &b| {
                    let (x, y) = (&batch[a], &batch[b]);
                    (&x.partner_id, &x.external_id, x.jakarta_day).cmp(&(&y.partner_id, &y.external_id, y.jakarta_day))
                });
                let mut tx = self.begin().await?;
                let mut out: Vec<Option<IngestOutcome>> = vec![None; batch.len()];
                for i in order {
                    out[i] = Some(Self::ingest_in(&mut tx, &batch[i]).await?);
                }
                tx.commit().await?;
                Ok(out.into_iter().map(|o| o.unwrap_or(IngestOutcome::Conflict)).collect())
            }

            async fn ingest_in(
                tx: &mut sqlx::Transaction<'static, $Db>,
                n: &InboundNotification,
            ) -> crate::store::Result<IngestOutcome> {
                let inserted: Option<i64> = sqlx::query_scalar(&Self::sql(
                    "INSERT INTO notifications (partner_id, external_id, jakarta_day, body_sha256, raw_body, headers, \
                     verification, outcome, response_code, response_message, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', '2005200', 'Successful', $8) \
                     ON CONFLICT (partner_id, external_id, jakarta_day) DO NOTHING RETURNING id",
                ))
                .bind(&n.partner_id)
                .bind(&n.external_id)
                .bind(n.jakarta_day)
                .bind(&n.body_sha256)
                .bind(&n.raw_body)
                .bind(&n.headers_json)
                .bind(&n.verification)
                .bind(n.received_at)
                .fetch_optional(&mut **tx)
                .await?;
                let Some(notification_id) = inserted else {
                    let (hash, code, message): (Vec<u8>, String, String) = sqlx::query_as(&Self::sql(
                        "SELECT body_sha256, response_code, response_message FROM notifications \
                         WHERE partner_id = $1 AND external_id = $2 AND jakarta_day = $3",
                    ))
                    .bind(&n.partner_id)
                    .bind(&n.external_id)
                    .bind(n.jakarta_day)
                    .fetch_one(&mut **tx)
                    .await?;
                    return Ok(if hash == n.body_sha256 {
                        IngestOutcome::Duplicate { response_code: code, response_message: message }
                    } else {
                        IngestOutcome::Conflict
                    });
                };
                let detail = json!({
                    "notificationId": notification_id,
                    "externalId": n.external_id,
                    "latestTransactionStatus": n.observation.status.code(),
                    "transactionStatusDesc": n.observation.status_desc,
                    "verification": n.verification,
                });
                let applied = Self::apply_observation(tx, None, &n.observation, detail, n.received_at).await?;
                let outcome = match &applied.decision {
                    Decision::Transition { .. } => "applied",
                    Decision::Unchanged => "unchanged",
                    Decision::Ignored { .. } => "ignored",
                    Decision::Mismatch { .. } => "flagged",
                };
                sqlx::query(&Self::sql("UPDATE notifications SET payment_id = $1, outcome = $2 WHERE id = $3"))
                    .bind(&applied.payment_id)
                    .bind(outcome)
                    .bind(notification_id)
                    .execute(&mut **tx)
                    .await?;
                Ok(IngestOutcome::Applied(applied))
            }
        }

        #[async_trait::async_trait]
        impl Store for $Store {
            fn backend(&self) -> Backend {
                Self::BACKEND
            }

            async fn migrate(&self) -> crate::store::Result<()> {
                self.run_migrations().await
            }

            async fn ping(&self) -> crate::store::Result<()> {
                let mut conn = self.pool.acquire().await?;
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
                Ok(())
            }

            fn one_statement_batches(&self) -> Option<(u64, u64)> {
                self.one_statement_counts()
            }

            fn pool_usage(&self) -> (u32, u32) {
                self.pools().iter().fold((0, 0), |(used, idle), pool| {
                    let (size, free) = (pool.size(), pool.num_idle() as u32);
                    (used + size.saturating_sub(free), idle + free)
                })
            }

            async fn insert_token(
                &self,
                token_sha256: &[u8],
                client_id: &str,
                issued_at: DateTime<Utc>,
                expires_at: DateTime<Utc>,
            ) -> crate::store::Result<()> {
                sqlx::query(&Self::sql(
                    "INSERT INTO access_tokens (token_sha256, client_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
                ))
                .bind(token_sha256)
                .bind(client_id)
                .bind(issued_at)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_token(&self, token_sha256: &[u8]) -> crate::store::Result<Option<(String, DateTime<Utc>)>> {
                Ok(sqlx::query_as(&Self::sql("SELECT client_id, expires_at FROM access_tokens WHERE token_sha256 = $1"))
                    .bind(token_sha256)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> crate::store::Result<u64> {
                Ok(sqlx::query(&Self::sql("DELETE FROM access_tokens WHERE expires_at < $1"))
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            async fn ingest_notifications(
                &self,
                batch: &[InboundNotification],
            ) -> crate::store::Result<Vec<IngestOutcome>> {
                // PostgreSQL stores a batch with two set-based statements
                // (store/postgres/bulk.rs), with the same effects as the
                // item-by-item path below, which SQLite uses (and PostgreSQL
                // falls back to when a concurrent writer got in the way).
                if let Some(pg) = (self as &dyn std::any::Any).downcast_ref::<crate::store::PgStore>() {
                    return pg.ingest_bulk(batch).await;
                }
                self.ingest_one_by_one(batch).await
            }

            async fn insert_payment(&self, p: &NewPayment) -> crate::store::Result<Payment> {
                let mut tx = self.begin().await?;
                let row = Self::insert_generated_payment(&mut tx, p, None).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn get_payment(&self, id_or_reference: &str) -> crate::store::Result<Option<Payment>> {
                let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 OR partner_reference_no = $1 ORDER BY (id = $1) DESC LIMIT 1");
                let sql = Self::sql_owned(sql);
                Ok(sqlx::query_as(&sql).bind(id_or_reference).fetch_optional(&self.pool).await?)
            }

            async fn list_payments(&self, f: &PaymentFilter) -> crate::store::Result<Vec<Payment>> {
                let sql = format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE ($1 IS NULL OR status = $1) \
                     AND ($2 IS NULL OR created_at >= $2) AND ($3 IS NULL OR created_at < $3) \
                     AND ($4 IS NULL OR partner_reference_no = $4 OR reference_no = $4) \
                     AND ($5 IS NULL OR id < $5) ORDER BY id DESC LIMIT $6"
                );
                let sql = Self::sql_owned(sql);
                Ok(sqlx::query_as(&sql)
                    .bind(f.status.map(|s| s.as_str()))
                    .bind(f.created_from)
                    .bind(f.created_to)
                    .bind(f.reference.as_deref())
                    .bind(f.before_id.as_deref())
                    .bind(f.limit.clamp(1, 1000))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn payment_events(&self, payment_id: &str) -> crate::store::Result<Vec<PaymentEvent>> {
                let rows = sqlx::query_as(&Self::sql(
                    "SELECT id, payment_id, kind, detail, created_at FROM payment_events WHERE payment_id = $1 ORDER BY id",
                ))
                .bind(payment_id)
                .fetch_all(&self.pool)
                .await?;
                // A notification may be stored with its status change in one row.
                Ok(crate::store::expand_stored_events(rows))
            }

            async fn add_event(&self, payment_id: &str, kind: &str, detail: &serde_json::Value) -> crate::store::Result<()> {
                let mut tx = self.begin().await?;
                Self::insert_event(&mut tx, payment_id, kind, detail, crate::store::now()).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn attach_generated(&self, payment_id: &str, g: &GeneratedQr) -> crate::store::Result<Payment> {
                let sql = format!(
                    "UPDATE payments SET reference_no = COALESCE($1, reference_no), qr_content = $2, qr_url = $3, \
                     valid_until = COALESCE($4, valid_until), next_check_at = CASE WHEN status IN ('initiated', 'pending', 'paying') THEN $5 ELSE NULL END, \
                     updated_at = $6 WHERE id = $7 RETURNING {PAYMENT_COLUMNS}"
                );
                let sql = Self::sql_owned(sql);
                let now = crate::store::now();
                let mut tx = self.begin().await?;
                let row: Option<Payment> = sqlx::query_as(&sql)
                    .bind(g.reference_no.as_deref())
                    .bind(&g.qr_content)
                    .bind(g.qr_url.as_deref())
                    .bind(g.valid_until)
                    .bind(g.next_check_at)
                    .bind(now)
                    .bind(payment_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let row = row.ok_or(StoreError::NotFound)?;
                Self::insert_event(&mut tx, payment_id, "generated", &json!({"referenceNo": g.reference_no}), now).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn count_notifications(&self) -> crate::store::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM notifications").fetch_one(&self.pool).await?)
            }

            async fn claim_due(
                &self,
                owner: &str,
                now: DateTime<Utc>,
                lease_secs: u64,
                limit: i64,
            ) -> crate::store::Result<Vec<Payment>> {
                let until = now + chrono::Duration::seconds(lease_secs as i64);
                // `payment_checks_due` is the database's copy of `next_check_at`
                // for the payments that have one (migrations 0005 and 0007 keep
                // it): the index of what is due, kept off `payments` so that a
                // settlement does not write to it. A cleared check leaves its row
                // behind (stale) until `sweep_cleared_checks`; requiring the
                // payment's own `next_check_at` to be due means a claim never
                // returns one.
                let select = format!(
                    "SELECT p.id FROM payment_checks_due d JOIN payments p ON p.id = d.payment_id \
                     WHERE d.due_at <= $1 AND p.next_check_at <= $1 \
                     AND p.status IN ('initiated', 'pending', 'paying') AND (p.lease_until IS NULL OR p.lease_until < $1) \
                     ORDER BY d.due_at LIMIT $2{}",
                    Self::SKIP_LOCKED
                );
                let update = format!(
                    "UPDATE payments SET lease_owner = $1, lease_until = $2 WHERE id = $3 RETURNING {PAYMENT_COLUMNS}"
                );
                let select = Self::sql_owned(select);
                let update = Self::sql_owned(update);
                let mut tx = self.begin().await?;
                let ids: Vec<String> = sqlx::query_scalar(&select).bind(now).bind(limit).fetch_all(&mut *tx).await?;
                let mut claimed = Vec::with_capacity(ids.len());
                for id in ids {
                    let p: Payment = sqlx::query_as(&update).bind(owner).bind(until).bind(&id).fetch_one(&mut *tx).await?;
                    claimed.push(p);
                }
                tx.commit().await?;
                Ok(claimed)
            }

            async fn sweep_cleared_checks(&self, now: DateTime<Utc>, window: i64) -> crate::store::Result<u64> {
                // Only the first `window` rows in due order are looked at, so a
                // sweep costs the same however many checks are due (a backlog
                // while Finpay is down); stale rows further back come into the
                // window as the ones ahead are claimed and rescheduled. Locking
                // the payment (on PostgreSQL) makes a statement that is setting a
                // new check at that moment either wait for the sweep or be
                // skipped by it; its trigger then writes the row anew.
                let sql = format!(
                    "DELETE FROM payment_checks_due WHERE payment_id IN ( \
                     SELECT d.payment_id FROM ( \
                       SELECT payment_id FROM payment_checks_due WHERE due_at <= $1 ORDER BY due_at LIMIT $2) d \
                     JOIN payments p ON p.id = d.payment_id WHERE p.next_check_at IS NULL{})",
                    Self::SKIP_LOCKED
                );
                let sql = Self::sql_owned(sql);
                let mut tx = self.begin().await?;
                let swept = sqlx::query(&sql).bind(now).bind(window).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok(swept)
            }

            async fn claim_one(
                &self,
                payment_id: &str,
                owner: &str,
                now: DateTime<Utc>,
                lease_secs: u64,
            ) -> crate::store::Result<Option<Payment>> {
                let until = now + chrono::Duration::seconds(lease_secs as i64);
                let sql = format!(
                    "UPDATE payments SET lease_owner = $1, lease_until = $2 WHERE id = $3 \
                     AND (lease_until IS NULL OR lease_until < $4) RETURNING {PAYMENT_COLUMNS}"
                );
                let sql = Self::sql_owned(sql);
                let mut tx = self.begin().await?;
                let p: Option<Payment> = sqlx::query_as(&sql)
                    .bind(owner)
                    .bind(until)
                    .bind(payment_id)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(p)
            }

            async fn apply_query(
                &self,
                payment_id: &str,
                owner: &str,
                result: &QueryResult,
                now: DateTime<Utc>,
            ) -> crate::store::Result<Applied> {
                let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{}", Self::FOR_UPDATE);
                let sql = Self::sql_owned(sql);
                let mut tx = self.begin().await?;
                let payment: Payment = sqlx::query_as(&sql)
                    .bind(payment_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
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
                let applied = match &result.observation {
                    Some(obs) => {
                        let mut obs = obs.clone();
                        obs.source = ObservationSource::Query;
                        Self::apply_observation(&mut tx, Some(payment.clone()), &obs, detail, now).await?
                    }
                    None => {
                        Self::insert_event(&mut tx, payment_id, "query", &detail, now).await?;
                        Applied {
                            payment_id: payment_id.to_string(),
                            created: false,
                            from: Some(payment.status),
                            to: payment.status,
                            decision: Decision::Unchanged,
                        }
                    }
                };
                sqlx::query(&Self::sql(
                    "UPDATE payments SET check_attempts = check_attempts + 1, lease_owner = NULL, lease_until = NULL, \
                     next_check_at = CASE WHEN status IN ('initiated', 'pending', 'paying') THEN $1 ELSE NULL END \
                     WHERE id = $2",
                ))
                .bind(result.next_check_at)
                .bind(payment_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(applied)
            }

            async fn expire_payment(
                &self,
                payment_id: &str,
                owner: &str,
                reason: &str,
                now: DateTime<Utc>,
            ) -> crate::store::Result<bool> {
                let mut tx = self.begin().await?;
                let done = sqlx::query(&Self::sql(
                    "UPDATE payments SET status = 'expired', next_check_at = NULL, lease_owner = NULL, lease_until = NULL, \
                     updated_at = $1 WHERE id = $2 AND lease_owner = $3 AND status IN ('initiated', 'pending', 'paying')",
                ))
                .bind(now)
                .bind(payment_id)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
                let expired = done.rows_affected() == 1;
                if expired {
                    Self::insert_event(&mut tx, payment_id, "status_changed", &json!({"to": "expired", "by": "worker", "reason": reason}), now)
                        .await?;
                }
                tx.commit().await?;
                Ok(expired)
            }
        }
    };
}

pub(crate) use sql_store;
