//! SQL for [`ConsoleStore`](super::ConsoleStore), shared by both backends
//! (same conventions as `sql.rs`, whose expansion provides `PAYMENT_COLUMNS`).

macro_rules! sql_console_store {
    ($Store:ident, $Db:ty) => {
        const _: () = {
            use crate::store::console_store::{
                Backlog, ConsoleStore, ExportPayment, ExportRefund, ExportRow, HourTotals, PaymentAction, StatusTotal,
                StoredNotification,
            };
            use crate::store::{Backend, Payment, Refund};
            use chrono::{DateTime, Utc};
            use futures::TryStreamExt;
            use serde_json::json;
            use sqlx::types::Json;

            /// Hours since the epoch of a time column, in each dialect.
            fn hour_of(column: &str) -> String {
                match $Store::BACKEND {
                    Backend::Postgres => format!("CAST(floor(extract(epoch FROM {column}) / 3600) AS BIGINT)"),
                    Backend::Sqlite => format!("(CAST(strftime('%s', {column}) AS INTEGER) / 3600)"),
                }
            }

            async fn insert_action(
                conn: &mut <$Db as sqlx::Database>::Connection,
                payment_id: &str,
                actor: &str,
                action: &str,
                detail: &serde_json::Value,
                at: DateTime<Utc>,
            ) -> crate::store::Result<()> {
                sqlx::query(&$Store::sql(
                    "INSERT INTO payment_actions (payment_id, actor, action, detail, created_at) VALUES ($1, $2, $3, $4, $5)",
                ))
                .bind(payment_id)
                .bind(actor)
                .bind(action)
                .bind(Json(detail))
                .bind(at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            #[derive(sqlx::FromRow)]
            struct RefundRow {
                #[sqlx(flatten)]
                refund: Refund,
                p_partner_reference_no: Option<String>,
                p_reference_no: Option<String>,
                p_currency: String,
            }

            #[async_trait::async_trait]
            impl ConsoleStore for $Store {
                async fn create_session(
                    &self,
                    token_sha256: &[u8],
                    key_name: &str,
                    key_id: &str,
                    now: DateTime<Utc>,
                    expires_at: DateTime<Utc>,
                ) -> crate::store::Result<()> {
                    sqlx::query(&Self::sql(
                        "INSERT INTO console_sessions (token_sha256, key_name, key_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    ))
                    .bind(token_sha256)
                    .bind(key_name)
                    .bind(key_id)
                    .bind(now)
                    .bind(expires_at)
                    .execute(self.writes())
                    .await?;
                    Ok(())
                }

                async fn touch_session(
                    &self,
                    token_sha256: &[u8],
                    now: DateTime<Utc>,
                    expires_at: DateTime<Utc>,
                ) -> crate::store::Result<Option<(String, String)>> {
                    Ok(sqlx::query_as(&Self::sql(
                        "UPDATE console_sessions SET expires_at = $3 WHERE token_sha256 = $1 AND expires_at > $2 \
                         RETURNING key_name, key_id",
                    ))
                    .bind(token_sha256)
                    .bind(now)
                    .bind(expires_at)
                    .fetch_optional(self.writes())
                    .await?)
                }

                async fn delete_session(&self, token_sha256: &[u8]) -> crate::store::Result<()> {
                    sqlx::query(&Self::sql("DELETE FROM console_sessions WHERE token_sha256 = $1"))
                        .bind(token_sha256)
                        .execute(self.writes())
                        .await?;
                    Ok(())
                }

                async fn purge_sessions(&self, now: DateTime<Utc>) -> crate::store::Result<u64> {
                    let r = sqlx::query(&Self::sql("DELETE FROM console_sessions WHERE expires_at <= $1"))
                        .bind(now)
                        .execute(self.writes())
                        .await?;
                    Ok(r.rows_affected())
                }

                async fn record_action(
                    &self,
                    payment_id: &str,
                    actor: &str,
                    action: &str,
                    detail: &serde_json::Value,
                ) -> crate::store::Result<()> {
                    let mut conn = self.writes().acquire().await?;
                    insert_action(&mut *conn, payment_id, actor, action, detail, crate::store::now()).await
                }

                async fn payment_actions(&self, payment_id: &str) -> crate::store::Result<Vec<PaymentAction>> {
                    Ok(sqlx::query_as(&Self::sql(
                        "SELECT id, payment_id, actor, action, detail, created_at FROM payment_actions \
                         WHERE payment_id = $1 ORDER BY id",
                    ))
                    .bind(payment_id)
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn resolve_flag(
                    &self,
                    payment_id: &str,
                    actor: &str,
                    note: &str,
                ) -> crate::store::Result<Option<Payment>> {
                    let now = crate::store::now();
                    let mut tx = self.begin().await?;
                    let sql = Self::sql_owned(format!(
                        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{}",
                        Self::FOR_UPDATE
                    ));
                    let before: Option<Payment> = sqlx::query_as(&sql).bind(payment_id).fetch_optional(&mut *tx).await?;
                    // Judged by the domain on the payment as locked; written as any
                    // other effect is (the guarded update, its entry, its event).
                    let Some((before, e)) =
                        before.and_then(|p| crate::domain::own_moves::flag_resolved(&p, actor, note, now).map(|e| (p, e)))
                    else {
                        return Ok(None);
                    };
                    let detail = json!({"flag": before.flagged, "note": note});
                    insert_action(&mut *tx, payment_id, actor, "resolve_flag", &detail, now).await?;
                    Self::write_payment(&mut tx, &e, Some(&before)).await?;
                    Self::insert_entries(&mut tx, &e, None, now).await?;
                    Self::raise(&mut tx, &e.payment, &e.events, crate::domain::Cause::Api, now, None).await?;
                    tx.commit().await?;
                    Ok(Some(e.payment))
                }

                async fn payment_notifications(
                    &self,
                    payment_id: &str,
                ) -> crate::store::Result<Vec<StoredNotification>> {
                    Ok(sqlx::query_as(&Self::sql(
                        "SELECT id, external_id, raw_body, verification, outcome, received_at FROM notifications \
                         WHERE payment_id = $1 ORDER BY id",
                    ))
                    .bind(payment_id)
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn status_totals(
                    &self,
                    from: DateTime<Utc>,
                    to: DateTime<Utc>,
                ) -> crate::store::Result<Vec<StatusTotal>> {
                    // Amounts are rupiah: a payment in another currency is counted without its amount.
                    let totals = Self::sql_owned(format!(
                        "SELECT status, COUNT(*), {sums} FROM payments WHERE created_at >= $1 AND created_at < $2 \
                         GROUP BY status ORDER BY status",
                        sums = crate::store::console_store::rupiah_sums("$3")
                    ));
                    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(&totals)
                        .bind(from)
                        .bind(to)
                        .bind(crate::domain::payment::CURRENCY)
                        .fetch_all(&self.pool)
                        .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(status, count, high, low)| StatusTotal {
                            status,
                            count,
                            amount_minor: crate::store::console_store::joined_sum(high, low),
                        })
                        .collect())
                }

                async fn hourly_totals(
                    &self,
                    from: DateTime<Utc>,
                    to: DateTime<Utc>,
                ) -> crate::store::Result<Vec<HourTotals>> {
                    let received = Self::sql_owned(format!(
                        "SELECT {h} AS hour, COUNT(*) FROM notifications WHERE received_at >= $1 AND received_at < $2 \
                         GROUP BY {h}",
                        h = hour_of("received_at")
                    ));
                    let paid = Self::sql_owned(format!(
                        "SELECT {h} AS hour, {sums} FROM payments WHERE paid_at >= $1 AND paid_at < $2 GROUP BY {h}",
                        h = hour_of("paid_at"),
                        sums = crate::store::console_store::rupiah_sums("$3")
                    ));
                    let received: Vec<(i64, i64)> =
                        sqlx::query_as(&received).bind(from).bind(to).fetch_all(&self.pool).await?;
                    let paid = sqlx::query_as(&paid).bind(from).bind(to).bind(crate::domain::payment::CURRENCY);
                    let paid: Vec<(i64, i64, i64)> = paid.fetch_all(&self.pool).await?;
                    let mut hours = std::collections::BTreeMap::<i64, HourTotals>::new();
                    for (hour, n) in received {
                        hours.entry(hour).or_insert(HourTotals { hour, ..Default::default() }).notifications = n;
                    }
                    for (hour, high, low) in paid {
                        hours.entry(hour).or_insert(HourTotals { hour, ..Default::default() }).paid_minor =
                            crate::store::console_store::joined_sum(high, low);
                    }
                    Ok(hours.into_values().collect())
                }

                async fn reconciliation_backlog(&self, now: DateTime<Utc>) -> crate::store::Result<Backlog> {
                    let (open, due): (i64, i64) = sqlx::query_as(&Self::sql(
                        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN next_check_at <= $1 THEN 1 ELSE 0 END), 0) \
                         FROM payments WHERE next_check_at IS NOT NULL",
                    ))
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await?;
                    let earliest: Option<DateTime<Utc>> = sqlx::query_scalar(&Self::sql(
                        "SELECT next_check_at FROM payments WHERE next_check_at IS NOT NULL ORDER BY next_check_at LIMIT 1",
                    ))
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(Backlog { open, due, earliest })
                }

                async fn export(
                    &self,
                    from: DateTime<Utc>,
                    to: DateTime<Utc>,
                    out: tokio::sync::mpsc::Sender<ExportRow>,
                ) -> crate::store::Result<()> {
                    // Each payment with the body of the notification that
                    // paid it: the applied one saying success (`00`), as its
                    // own audit entry records (`payment_events_by_payment`); a
                    // later one (a refund reported by Finpay) states no fee of
                    // the payment.
                    let sql = Self::sql_owned(format!(
                        "SELECT {PAYMENT_COLUMNS}, (SELECT n.raw_body FROM payment_events e \
                         JOIN notifications n ON n.id = e.notification_id \
                         WHERE e.payment_id = payments.id AND e.kind = 'notification' \
                         AND e.detail ->> 'latestTransactionStatus' = '00' \
                         AND n.outcome = 'applied' AND n.raw_body IS NOT NULL \
                         ORDER BY e.id DESC LIMIT 1) AS paid_body \
                         FROM payments WHERE paid_at >= $1 AND paid_at < $2 ORDER BY paid_at, id"
                    ));
                    let mut rows = sqlx::query_as::<_, ExportPayment>(&sql).bind(from).bind(to).fetch(&self.pool);
                    while let Some(p) = rows.try_next().await? {
                        if out.send(ExportRow::Payment(Box::new(p))).await.is_err() {
                            return Ok(());
                        }
                    }
                    drop(rows);
                    let sql = Self::sql(
                        "SELECT r.id, r.payment_id, r.partner_refund_no, r.amount_minor, r.reason, r.status, \
                         r.reference_no, r.response_code, r.created_at, r.updated_at, \
                         p.partner_reference_no AS p_partner_reference_no, p.reference_no AS p_reference_no, \
                         p.currency AS p_currency \
                         FROM refunds r JOIN payments p ON p.id = r.payment_id \
                         WHERE r.created_at >= $1 AND r.created_at < $2 ORDER BY r.created_at, r.id",
                    );
                    let mut rows = sqlx::query_as::<_, RefundRow>(&sql).bind(from).bind(to).fetch(&self.pool);
                    while let Some(r) = rows.try_next().await? {
                        let row = ExportRow::Refund(Box::new(ExportRefund {
                            refund: r.refund,
                            partner_reference_no: r.p_partner_reference_no,
                            payment_reference_no: r.p_reference_no,
                            currency: r.p_currency,
                        }));
                        if out.send(row).await.is_err() {
                            return Ok(());
                        }
                    }
                    Ok(())
                }
            }
        };
    };
}

pub(crate) use sql_console_store;
