//! The two writes of a refund, shared by both backends (same conventions as
//! `sql.rs`; `sql_api.rs`'s `ApiStore` calls them): reserving its amount on
//! the payment with the refund's row, and recording Finpay's answer, which
//! releases the reservation of a rejected refund and settles a payment that
//! is refunded in full (`domain::own_moves::refunded` decides that).

macro_rules! sql_refund_writes {
    ($Store:ident, $Db:ty) => {
        const _: () = {
            use crate::domain::PaymentStatus;
            use crate::store::api_store::{
                IdempotencyRef, NewRefund, Refund, RefundOutcome, RefundReservation, REFUND_COLUMNS,
            };
            use crate::store::{Payment, StoreError};
            use serde_json::json;

            impl $Store {
                async fn write_refund_reservation(
                    &self,
                    r: &NewRefund,
                    idempotency: Option<&IdempotencyRef>,
                ) -> crate::store::Result<RefundReservation> {
                    let mut tx = self.begin().await?;
                    if let Some(existing) = Self::refund_by_partner_no(&mut *tx, &r.partner_refund_no).await? {
                        return Ok(RefundReservation::Existing(existing));
                    }
                    let select = Self::sql_owned(format!(
                        "SELECT status, amount_minor, refunded_minor, flagged FROM payments WHERE id = $1{}",
                        Self::FOR_UPDATE
                    ));
                    let payment: Option<(String, i64, i64, Option<String>)> =
                        sqlx::query_as(&select).bind(&r.payment_id).fetch_optional(&mut *tx).await?;
                    let Some((status, amount, refunded, flagged)) = payment else {
                        return Ok(RefundReservation::PaymentNotFound);
                    };
                    // The invariant itself: this statement alone decides whether the amount fits.
                    // A flagged payment waits for a person: what Finpay said contradicts it.
                    let reserve = Self::sql_owned(format!(
                        "UPDATE payments SET refunded_minor = refunded_minor + $1, updated_at = $2 \
                         WHERE id = $3 AND status = 'paid' AND flagged IS NULL AND refunded_minor + $1 <= amount_minor \
                         RETURNING {PAYMENT_COLUMNS}"
                    ));
                    let reserved: Option<Payment> = sqlx::query_as(&reserve)
                        .bind(r.amount_minor)
                        .bind(r.created_at)
                        .bind(&r.payment_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some(reserved) = reserved else {
                        let status = PaymentStatus::parse(&status)
                            .ok_or_else(|| StoreError::Invalid(format!("unknown payment status {status:?}")))?;
                        return Ok(match flagged {
                            _ if status != PaymentStatus::Paid => RefundReservation::NotRefundable { status },
                            Some(reason) => RefundReservation::Flagged { reason },
                            None => RefundReservation::ExceedsRefundable { refundable_minor: amount - refunded },
                        });
                    };
                    let insert = Self::sql_owned(format!(
                        "INSERT INTO refunds (id, payment_id, partner_refund_no, amount_minor, reason, status, created_at, \
                         updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) RETURNING {REFUND_COLUMNS}"
                    ));
                    let inserted: Result<Refund, sqlx::Error> = sqlx::query_as(&insert)
                        .bind(&r.id)
                        .bind(&r.payment_id)
                        .bind(&r.partner_refund_no)
                        .bind(r.amount_minor)
                        .bind(&r.reason)
                        .bind(r.created_at)
                        .fetch_one(&mut *tx)
                        .await;
                    let refund = match inserted.map_err(StoreError::from) {
                        Ok(refund) => refund,
                        Err(StoreError::Conflict(_)) => {
                            // Same partnerRefundNo inserted concurrently: undo our reservation, answer with theirs.
                            tx.rollback().await?;
                            let mut conn = self.pool.acquire().await?;
                            return match Self::refund_by_partner_no(&mut conn, &r.partner_refund_no).await? {
                                Some(existing) => Ok(RefundReservation::Existing(existing)),
                                None => Err(StoreError::Invalid("refund vanished after a conflict".into())),
                            };
                        }
                        Err(e) => return Err(e),
                    };
                    let detail = json!({
                        "refundId": refund.id,
                        "partnerRefundNo": refund.partner_refund_no,
                        "amount": crate::domain::status::format_minor(refund.amount_minor),
                        "reason": refund.reason,
                    });
                    Self::insert_event(&mut tx, &r.payment_id, "refund_requested", &detail, r.created_at).await?;
                    let event = crate::domain::events::refund_asked();
                    Self::raise(&mut tx, &reserved, &[event], crate::domain::Cause::Api, r.created_at, Some(&refund)).await?;
                    Self::name_resource(&mut tx, idempotency, &refund.id).await?;
                    tx.commit().await?;
                    Ok(RefundReservation::Reserved(refund))
                }

                async fn write_refund_outcome(
                    &self,
                    refund_id: &str,
                    send: i32,
                    outcome: &RefundOutcome,
                ) -> crate::store::Result<Refund> {
                    let now = crate::store::now();
                    let by_id = Self::sql_owned(format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1"));
                    let mut tx = self.begin().await?;
                    let refund: Refund = sqlx::query_as(&by_id)
                        .bind(refund_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    if refund.status != "pending" {
                        return Ok(refund);
                    }
                    // Lock the payment first: completions of one payment's refunds run one at a time,
                    // so the "fully refunded" sum below sees every earlier completion.
                    let lock = Self::sql_owned(format!(
                        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{}",
                        Self::FOR_UPDATE
                    ));
                    let locked: Payment = sqlx::query_as(&lock).bind(&refund.payment_id).fetch_one(&mut *tx).await?;
                    let base = json!({
                        "refundId": refund.id,
                        "partnerRefundNo": refund.partner_refund_no,
                        "amount": crate::domain::status::format_minor(refund.amount_minor),
                    });
                    let with = |extra: serde_json::Value| {
                        let mut d = base.clone();
                        if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
                            d.extend(extra.clone());
                        }
                        d
                    };
                    // The payment's own events (refunded in full), after the refund's.
                    let mut moved = Vec::new();
                    match outcome {
                        RefundOutcome::Succeeded {
                            reference_no,
                            response_code,
                            message,
                        } => {
                            let done = sqlx::query(&Self::sql(
                                "UPDATE refunds SET status = 'succeeded', reference_no = $1, response_code = $2, \
                                 sending_until = NULL, updated_at = $3 WHERE id = $4 AND status = 'pending'",
                            ))
                            .bind(reference_no.as_deref())
                            .bind(response_code.as_deref())
                            .bind(now)
                            .bind(refund_id)
                            .execute(&mut *tx)
                            .await?;
                            if done.rows_affected() == 1 {
                                let mut detail = with(json!({"referenceNo": reference_no, "responseCode": response_code}));
                                if let (Some(m), Some(d)) = (message, detail.as_object_mut()) {
                                    d.insert("message".into(), json!(m));
                                }
                                Self::insert_event(&mut tx, &refund.payment_id, "refund_succeeded", &detail, now).await?;
                                let refunded: i64 = sqlx::query_scalar(&Self::sql(
                                    "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refunds \
                                     WHERE payment_id = $1 AND status = 'succeeded'",
                                ))
                                .bind(&refund.payment_id)
                                .fetch_one(&mut *tx)
                                .await?;
                                if let Some(e) = crate::domain::own_moves::refunded(&locked, refunded, now) {
                                    Self::write_payment(&mut tx, &e, Some(&locked)).await?;
                                    Self::insert_entries(&mut tx, &e, None, now).await?;
                                    moved = e.events;
                                }
                            }
                        }
                        RefundOutcome::Rejected { response_code, message } => {
                            // Only the latest send's refusal decides: an earlier send's,
                            // late past its hold, says nothing of the send that took over.
                            let done = sqlx::query(&Self::sql(
                                "UPDATE refunds SET status = 'failed', response_code = $1, sending_until = NULL, \
                                 updated_at = $2 WHERE id = $3 AND status = 'pending' AND sends = $4",
                            ))
                            .bind(response_code.as_deref())
                            .bind(now)
                            .bind(refund_id)
                            .bind(send)
                            .execute(&mut *tx)
                            .await?;
                            if done.rows_affected() == 1 {
                                sqlx::query(&Self::sql(
                                    "UPDATE payments SET refunded_minor = refunded_minor - $1, updated_at = $2 \
                                     WHERE id = $3 AND refunded_minor >= $1",
                                ))
                                .bind(refund.amount_minor)
                                .bind(now)
                                .bind(&refund.payment_id)
                                .execute(&mut *tx)
                                .await?;
                                let detail = with(json!({"responseCode": response_code, "message": message}));
                                Self::insert_event(&mut tx, &refund.payment_id, "refund_failed", &detail, now).await?;
                                let released = locked.refunded_minor - refund.amount_minor;
                                if let Some(e) = crate::domain::own_moves::refund_released(&locked, released, now) {
                                    Self::write_payment(&mut tx, &e, Some(&locked)).await?;
                                    Self::insert_entries(&mut tx, &e, None, now).await?;
                                    moved = e.events;
                                }
                            }
                        }
                        RefundOutcome::Unknown { reason } => {
                            // The hold ends only if it is still this send's.
                            sqlx::query(&Self::sql(
                                "UPDATE refunds SET sending_until = NULL, updated_at = $1 WHERE id = $2 AND sends = $3",
                            ))
                            .bind(now)
                            .bind(refund_id)
                            .bind(send)
                            .execute(&mut *tx)
                            .await?;
                            let detail = with(json!({"reason": reason}));
                            Self::insert_event(&mut tx, &refund.payment_id, "refund_unknown", &detail, now).await?;
                        }
                    }
                    let refund: Refund = sqlx::query_as(&by_id).bind(refund_id).fetch_one(&mut *tx).await?;
                    if refund.status != "pending" {
                        let payment_sql = Self::sql_owned(format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"));
                        let payment: Payment =
                            sqlx::query_as(&payment_sql).bind(&refund.payment_id).fetch_one(&mut *tx).await?;
                        let mut events = vec![crate::domain::events::refund_completed(refund.status == "succeeded")];
                        events.extend(moved);
                        Self::raise(&mut tx, &payment, &events, crate::domain::Cause::Api, now, Some(&refund)).await?;
                    }
                    tx.commit().await?;
                    Ok(refund)
                }
            }
        };
    };
}

pub(crate) use sql_refund_writes;
