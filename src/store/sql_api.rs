//! SQL for [`ApiStore`](super::ApiStore), shared by both backends (same
//! conventions as `sql.rs`, whose expansion in the same module provides
//! `PAYMENT_COLUMNS` and `Self::insert_event`; a refund's two writes are in
//! `sql_refunds.rs`). The items sit in an anonymous
//! `const` block so that their imports cannot collide with `sql.rs`'s.

macro_rules! sql_api_store {
    ($Store:ident, $Db:ty) => {
        const _: () = {
            use crate::domain::PaymentStatus;
            use crate::store::api_store::{
                IdempotencyClaim, IdempotencyRef, NewRefund, Refund, RefundOutcome, RefundReservation, REFUND_COLUMNS,
            };
            use crate::store::{NewPayment, Payment};
            use chrono::{DateTime, Utc};

            type IdempotencyRow = (Vec<u8>, Option<i32>, Option<String>, Option<String>, Option<DateTime<Utc>>);

            impl $Store {
                /// Ends the hold of a payment's generate, its answer stored, while
                /// the hold is still that of `send` (the number its claim gave):
                /// `false` when a later send took over, since a send that outlived
                /// its hold may not end the next one's, nor decide for it.
                async fn release_generate(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    payment_id: &str,
                    send: i32,
                ) -> crate::store::Result<bool> {
                    let released = sqlx::query(&Self::sql(
                        "UPDATE payments SET generating_until = NULL WHERE id = $1 AND generate_sends = $2",
                    ))
                    .bind(payment_id)
                    .bind(send)
                    .execute(&mut **tx)
                    .await?;
                    Ok(released.rows_affected() == 1)
                }

                async fn refund_by_partner_no(
                    conn: &mut <$Db as sqlx::Database>::Connection,
                    partner_refund_no: &str,
                ) -> crate::store::Result<Option<Refund>> {
                    let sql = Self::sql_owned(format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE partner_refund_no = $1"));
                    Ok(sqlx::query_as(&sql).bind(partner_refund_no).fetch_optional(&mut *conn).await?)
                }

                async fn name_resource(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    key: Option<&IdempotencyRef>,
                    resource_id: &str,
                ) -> crate::store::Result<()> {
                    if let Some(k) = key {
                        sqlx::query(&Self::sql(
                            "UPDATE api_idempotency SET resource_id = $1 WHERE scope = $2 AND \"key\" = $3 AND status_code IS NULL",
                        ))
                        .bind(resource_id)
                        .bind(&k.scope)
                        .bind(&k.key)
                        .execute(&mut **tx)
                        .await?;
                    }
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl crate::store::ApiStore for $Store {
                async fn idempotency_claim(
                    &self,
                    key: &IdempotencyRef,
                    request_sha256: &[u8],
                    locked_until: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> crate::store::Result<IdempotencyClaim> {
                    // A release may delete the row between our insert and our read: try again.
                    for _ in 0..3 {
                        let inserted = sqlx::query(&Self::sql(
                            "INSERT INTO api_idempotency (scope, \"key\", request_sha256, created_at, locked_until) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        ))
                        .bind(&key.scope)
                        .bind(&key.key)
                        .bind(request_sha256)
                        .bind(now)
                        .bind(locked_until)
                        .execute(self.writes())
                        .await?;
                        if inserted.rows_affected() == 1 {
                            return Ok(IdempotencyClaim::Claimed { resource_id: None });
                        }
                        let row: Option<IdempotencyRow> = sqlx::query_as(&Self::sql(
                            "SELECT request_sha256, status_code, response_body, resource_id, locked_until \
                             FROM api_idempotency WHERE scope = $1 AND \"key\" = $2",
                        ))
                        .bind(&key.scope)
                        .bind(&key.key)
                        .fetch_optional(&self.pool)
                        .await?;
                        let Some((hash, status, body, resource_id, lock)) = row else {
                            continue;
                        };
                        if hash != request_sha256 {
                            return Ok(IdempotencyClaim::Mismatch);
                        }
                        if let Some(code) = status {
                            return Ok(IdempotencyClaim::Completed {
                                status_code: u16::try_from(code).unwrap_or(500),
                                body: body.unwrap_or_default(),
                            });
                        }
                        if lock.is_some_and(|t| t > now) {
                            return Ok(IdempotencyClaim::InProgress);
                        }
                        // Released, or its holder died: take it over, one taker only.
                        let taken = sqlx::query(&Self::sql(
                            "UPDATE api_idempotency SET locked_until = $1 WHERE scope = $2 AND \"key\" = $3 \
                             AND status_code IS NULL AND (locked_until IS NULL OR locked_until <= $4)",
                        ))
                        .bind(locked_until)
                        .bind(&key.scope)
                        .bind(&key.key)
                        .bind(now)
                        .execute(self.writes())
                        .await?;
                        return Ok(if taken.rows_affected() == 1 {
                            IdempotencyClaim::Claimed { resource_id }
                        } else {
                            IdempotencyClaim::InProgress
                        });
                    }
                    Ok(IdempotencyClaim::InProgress)
                }

                async fn idempotency_complete(
                    &self,
                    key: &IdempotencyRef,
                    status_code: u16,
                    body: &str,
                ) -> crate::store::Result<()> {
                    sqlx::query(&Self::sql(
                        "UPDATE api_idempotency SET status_code = $1, response_body = $2, locked_until = NULL \
                         WHERE scope = $3 AND \"key\" = $4 AND status_code IS NULL",
                    ))
                    .bind(i32::from(status_code))
                    .bind(body)
                    .bind(&key.scope)
                    .bind(&key.key)
                    .execute(self.writes())
                    .await?;
                    Ok(())
                }

                async fn idempotency_release(&self, key: &IdempotencyRef) -> crate::store::Result<()> {
                    sqlx::query(&Self::sql(
                        "UPDATE api_idempotency SET locked_until = NULL WHERE scope = $1 AND \"key\" = $2 AND status_code IS NULL",
                    ))
                    .bind(&key.scope)
                    .bind(&key.key)
                    .execute(self.writes())
                    .await?;
                    Ok(())
                }

                async fn purge_idempotency(&self, before: DateTime<Utc>) -> crate::store::Result<u64> {
                    Ok(sqlx::query(&Self::sql(
                        "DELETE FROM api_idempotency WHERE created_at < $1 AND (locked_until IS NULL OR locked_until < $1)",
                    ))
                    .bind(before)
                    .execute(self.writes())
                    .await?
                    .rows_affected())
                }

                async fn create_api_payment(
                    &self,
                    p: &NewPayment,
                    next_check_at: Option<DateTime<Utc>>,
                    idempotency: Option<&IdempotencyRef>,
                ) -> crate::store::Result<Payment> {
                    let mut tx = self.begin().await?;
                    let row = Self::insert_generated_payment(&mut tx, p, next_check_at).await?;
                    Self::name_resource(&mut tx, idempotency, &row.id).await?;
                    tx.commit().await?;
                    Ok(row)
                }

                async fn fail_generation(
                    &self,
                    payment_id: &str,
                    send: i32,
                    detail: &serde_json::Value,
                ) -> crate::store::Result<Option<Payment>> {
                    let now = crate::store::now();
                    let select = Self::sql_owned(format!(
                        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{}",
                        Self::FOR_UPDATE
                    ));
                    let mut tx = self.begin().await?;
                    let current: Option<Payment> = sqlx::query_as(&select).bind(payment_id).fetch_optional(&mut *tx).await?;
                    // A later send took over (this one outlived its hold): its
                    // answer may be the QR, so this refusal decides nothing.
                    if !Self::release_generate(&mut tx, payment_id, send).await? {
                        return Ok(None);
                    }
                    let failed = current.as_ref().and_then(|p| crate::domain::own_moves::generation_failed(p, detail.clone(), now));
                    if let Some(e) = &failed {
                        Self::write_payment(&mut tx, e, current.as_ref()).await?;
                        Self::insert_entries(&mut tx, e, None, now).await?;
                        Self::raise(&mut tx, &e.payment, &e.events, crate::domain::Cause::Api, now, None).await?;
                    }
                    tx.commit().await?;
                    Ok(failed.map(|e| e.payment))
                }

                async fn claim_generate_send(
                    &self,
                    payment_id: &str,
                    now: DateTime<Utc>,
                    until: DateTime<Utc>,
                ) -> crate::store::Result<Option<i32>> {
                    let sql = format!(
                        "UPDATE payments SET generate_sends = generate_sends + 1, generating_until = $1 \
                         WHERE id = $2 AND origin = 'generated' AND qr_content IS NULL AND status IN {} \
                         AND (generating_until IS NULL OR generating_until <= $3) RETURNING generate_sends",
                        PaymentStatus::OPEN_SQL
                    );
                    Ok(sqlx::query_scalar(&Self::sql_owned(sql))
                        .bind(until)
                        .bind(payment_id)
                        .bind(now)
                        .fetch_optional(self.writes())
                        .await?)
                }

                async fn generation_unknown(
                    &self,
                    payment_id: &str,
                    send: i32,
                    next_check_at: DateTime<Utc>,
                    detail: &serde_json::Value,
                ) -> crate::store::Result<()> {
                    let now = crate::store::now();
                    let mut tx = self.begin().await?;
                    let sql = format!(
                        "UPDATE payments SET next_check_at = $1, updated_at = $2 WHERE id = $3 AND status IN {}",
                        PaymentStatus::OPEN_SQL
                    );
                    sqlx::query(&Self::sql_owned(sql))
                    .bind(next_check_at)
                    .bind(now)
                    .bind(payment_id)
                    .execute(&mut *tx)
                    .await?;
                    Self::release_generate(&mut tx, payment_id, send).await?;
                    Self::insert_event(&mut tx, payment_id, "generate_unknown", detail, now).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn reserve_refund(
                    &self,
                    r: &NewRefund,
                    idempotency: Option<&IdempotencyRef>,
                ) -> crate::store::Result<RefundReservation> {
                    self.write_refund_reservation(r, idempotency).await
                }

                async fn complete_refund(
                    &self,
                    refund_id: &str,
                    send: i32,
                    outcome: &RefundOutcome,
                ) -> crate::store::Result<Refund> {
                    self.write_refund_outcome(refund_id, send, outcome).await
                }

                async fn claim_refund_send(
                    &self,
                    refund_id: &str,
                    now: DateTime<Utc>,
                    until: DateTime<Utc>,
                ) -> crate::store::Result<Option<i32>> {
                    Ok(sqlx::query_scalar(&Self::sql(
                        "UPDATE refunds SET sends = sends + 1, sending_until = $1 WHERE id = $2 \
                         AND status = 'pending' AND (sending_until IS NULL OR sending_until <= $3) RETURNING sends",
                    ))
                    .bind(until)
                    .bind(refund_id)
                    .bind(now)
                    .fetch_optional(self.writes())
                    .await?)
                }

                async fn get_refund(&self, refund_id: &str) -> crate::store::Result<Option<Refund>> {
                    let sql = Self::sql_owned(format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1"));
                    Ok(sqlx::query_as(&sql).bind(refund_id).fetch_optional(&self.pool).await?)
                }

                async fn find_refund_by_partner_no(&self, partner_refund_no: &str) -> crate::store::Result<Option<Refund>> {
                    let mut conn = self.pool.acquire().await?;
                    Self::refund_by_partner_no(&mut conn, partner_refund_no).await
                }

                async fn list_refunds(&self, payment_id: &str) -> crate::store::Result<Vec<Refund>> {
                    let sql = Self::sql_owned(format!(
                        "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, id"
                    ));
                    Ok(sqlx::query_as(&sql).bind(payment_id).fetch_all(&self.pool).await?)
                }
            }
        };
    };
}

pub(crate) use sql_api_store;
