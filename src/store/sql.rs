//! The SQL both backends share, written once and expanded for each.
//!
//! The statements use PostgreSQL's `$n` placeholders (SQLite gets `?n`) and
//! only syntax both dialects accept; the differences (row locks, how a
//! transaction starts) come from the store's `FOR_UPDATE`, `SKIP_LOCKED` and
//! `begin`. How a batch of notifications is stored is each store's own
//! `ingest_batch`.

macro_rules! sql_store {
    ($Store:ident, $Db:ty) => {
        use crate::domain::{Decision, PaymentStatus};
        use crate::store::{
            Backend, GeneratedQr, InboundNotification, IngestOutcome, NewPayment, Payment, PaymentEvent, PaymentFilter, Store,
            StoreError,
        };
        use chrono::{DateTime, Utc};
        use serde_json::json;

        pub(crate) const PAYMENT_COLUMNS: &str = "id, partner_reference_no, reference_no, amount_minor, currency, status, \
             origin, qr_content, qr_url, note, valid_until, paid_at, refunded_minor, flagged, finpay_status, created_at, \
             updated_at, next_check_at, check_attempts, lease_owner, lease_until";

        crate::store::sql_effect::sql_effect_writes!($Store, $Db);

        impl $Store {
            /// A payment we generate, pending, with its `created` entry.
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

            async fn pending_migrations(&self, migrating: bool) -> crate::store::Result<Vec<String>> {
                // Read-only: sqlx's own check would create its table first.
                let has_table: bool = sqlx::query_scalar(Self::MIGRATIONS_TABLE_EXISTS).fetch_one(&self.pool).await?;
                let applied: Vec<(i64, Vec<u8>, bool)> = if has_table {
                    sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
                        .fetch_all(&self.pool)
                        .await?
                } else {
                    Vec::new()
                };
                // What `migrate` would stop at, found here too, so that
                // `check-config` passes only what `serve` starts on. A newer
                // version's migration is no obstacle to running on its schema
                // (a rollback), only to migrating it.
                use sqlx::migrate::MigrateError;
                for (version, checksum, success) in &applied {
                    let ours = MIGRATOR.iter().find(|m| m.version == *version && !m.migration_type.is_down_migration());
                    match ours {
                        None if migrating => return Err(MigrateError::VersionMissing(*version).into()),
                        None => {}
                        Some(_) if !success => return Err(MigrateError::Dirty(*version).into()),
                        Some(m) if *m.checksum != **checksum => {
                            return Err(MigrateError::VersionMismatch(*version).into())
                        }
                        Some(_) => {}
                    }
                }
                Ok(MIGRATOR
                    .iter()
                    .filter(|m| !m.migration_type.is_down_migration() && !applied.iter().any(|a| a.0 == m.version))
                    .map(|m| format!("{}_{}", m.version, m.description))
                    .collect())
            }

            async fn close(&self) {
                // The log first, while the write connection is certainly open:
                // a connection some task still holds would keep the last close
                // (SQLite's own checkpoint) from coming.
                if let Err(e) = self.checkpoint_log().await {
                    tracing::warn!(error = %e, "moving the write-ahead log into the database file failed");
                }
                futures::future::join_all(self.pools().map(|pool| pool.close())).await;
            }

            fn pool_usage(&self) -> (u32, u32) {
                self.pools().iter().fold((0, 0), |(busy, idle), pool| {
                    let (size, free) = (pool.size(), pool.num_idle() as u32);
                    (busy + size.saturating_sub(free), idle + free)
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
                .execute(self.writes())
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
                    .execute(self.writes())
                    .await?
                    .rows_affected())
            }

            async fn ingest_notifications(
                &self,
                batch: &[InboundNotification],
            ) -> crate::store::Result<Vec<IngestOutcome>> {
                self.ingest_batch(batch).await
            }

            async fn clear_notification_bodies(&self, before: DateTime<Utc>, limit: i64) -> crate::store::Result<u64> {
                let mut tx = self.begin().await?;
                let cleared = sqlx::query(&Self::sql(
                    "UPDATE notifications SET raw_body = NULL, headers = NULL WHERE id IN ( \
                     SELECT id FROM notifications WHERE raw_body IS NOT NULL AND received_at < $1 \
                     ORDER BY received_at LIMIT $2)",
                ))
                .bind(before)
                .bind(limit)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(cleared)
            }

            async fn get_payment(&self, id_or_reference: &str) -> crate::store::Result<Option<Payment>> {
                let sql = format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 OR partner_reference_no = $1 \
                     ORDER BY (id = $1) DESC LIMIT 1"
                );
                let sql = Self::sql_owned(sql);
                Ok(sqlx::query_as(&sql).bind(id_or_reference).fetch_optional(&self.pool).await?)
            }

            async fn list_payments(&self, f: &PaymentFilter) -> crate::store::Result<Vec<Payment>> {
                // Only the filters given become conditions, so each query is
                // planned for what it asks (by reference: the unique indexes;
                // by amount: `payments_by_amount`; flagged: `payments_flagged`).
                // A status or a time range (or both) is read in creation-time
                // order along `payments_by_status` or `payments_by_created`,
                // so that a range far in the past is found without walking
                // every newer row; those pages are keyed on (created_at, id),
                // the cursor's row giving its place.
                let by_time = (f.status.is_some() || f.created_from.is_some() || f.created_to.is_some())
                    && f.reference.is_none()
                    && f.amount_minor.is_none()
                    && f.flagged != Some(true);
                let (filter, placeholders) = crate::store::where_given(&[
                    (f.status.is_some(), "status = #"),
                    (f.created_from.is_some(), "created_at >= #"),
                    (f.created_to.is_some(), "created_at < #"),
                    (f.reference.is_some(), "(partner_reference_no = # OR reference_no = #)"),
                    (f.amount_minor.is_some(), "amount_minor = #"),
                    (
                        f.before_id.is_some() && by_time,
                        "(created_at, id) < ((SELECT created_at FROM payments WHERE id = #), #)",
                    ),
                    (f.before_id.is_some() && !by_time, "id < #"),
                    (f.flagged == Some(true), "flagged IS NOT NULL"),
                    (f.flagged == Some(false), "flagged IS NULL"),
                ]);
                let sql = Self::sql_owned(format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments {filter} ORDER BY {} LIMIT ${}",
                    if by_time { "created_at DESC, id DESC" } else { "id DESC" },
                    placeholders + 1
                ));
                let mut q = sqlx::query_as(&sql);
                if let Some(status) = f.status {
                    q = q.bind(status.as_str());
                }
                if let Some(from) = f.created_from {
                    q = q.bind(from);
                }
                if let Some(to) = f.created_to {
                    q = q.bind(to);
                }
                if let Some(reference) = f.reference.as_deref() {
                    q = q.bind(reference);
                }
                if let Some(amount) = f.amount_minor {
                    q = q.bind(amount);
                }
                if let Some(before) = f.before_id.as_deref() {
                    q = q.bind(before);
                }
                q = q.bind(f.limit.clamp(1, 1000));
                Ok(q.fetch_all(&self.pool).await?)
            }

            async fn payment_events(&self, payment_id: &str) -> crate::store::Result<Vec<PaymentEvent>> {
                Ok(sqlx::query_as(&Self::sql(
                    "SELECT id, payment_id, kind, notification_id, detail, created_at FROM payment_events \
                     WHERE payment_id = $1 ORDER BY id",
                ))
                .bind(payment_id)
                .fetch_all(&self.pool)
                .await?)
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
                     next_check_at = CASE WHEN status IN {open} THEN $4 ELSE NULL END, \
                     updated_at = $5, generating_until = NULL WHERE id = $6 RETURNING {PAYMENT_COLUMNS}",
                    open = PaymentStatus::OPEN_SQL
                );
                let sql = Self::sql_owned(sql);
                let now = crate::store::now();
                let mut tx = self.begin().await?;
                let row: Option<Payment> = sqlx::query_as(&sql)
                    .bind(g.reference_no.as_deref())
                    .bind(&g.qr_content)
                    .bind(g.qr_url.as_deref())
                    .bind(g.next_check_at)
                    .bind(now)
                    .bind(payment_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let row = row.ok_or(StoreError::NotFound)?;
                Self::insert_event(&mut tx, payment_id, "generated", &json!({"referenceNo": g.reference_no}), now).await?;
                if row.status.is_open() {
                    let pending = [crate::domain::events::qr_generated()];
                    Self::raise(&mut tx, &row, &pending, crate::domain::Cause::Api, now, None).await?;
                }
                tx.commit().await?;
                Ok(row)
            }

            async fn claim_due(
                &self,
                owner: &str,
                now: DateTime<Utc>,
                lease_secs: u64,
                limit: i64,
            ) -> crate::store::Result<Vec<Payment>> {
                // Only open payments have a check scheduled (a CHECK says so),
                // and a claim moves the check to the lease's end: should this
                // worker die, the payment comes due again then. So the claim
                // reads the due end of `payments_due` and nothing else. A payment
                // a refresh on read holds (its lease runs, its check is left as
                // it was) is not taken from it.
                let until = now + chrono::Duration::seconds(lease_secs as i64);
                let sql = Self::sql_owned(format!(
                    "UPDATE payments SET lease_owner = $1, lease_until = $2, next_check_at = $2 WHERE id IN ( \
                     SELECT id FROM payments WHERE next_check_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
                     ORDER BY next_check_at LIMIT $4{}) \
                     RETURNING {PAYMENT_COLUMNS}",
                    Self::SKIP_LOCKED
                ));
                let mut tx = self.begin().await?;
                let mut claimed: Vec<Payment> =
                    sqlx::query_as(&sql).bind(owner).bind(until).bind(now).bind(limit).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                claimed.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(claimed)
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
                let mut tx = self.begin().await?;
                let applied = Self::apply_query_in(&mut tx, payment_id, owner, result, now).await?;
                tx.commit().await?;
                Ok(applied)
            }

            async fn stop_waiting(
                &self,
                payment_id: &str,
                owner: &str,
                reason: &str,
                expire: bool,
                now: DateTime<Utc>,
            ) -> crate::store::Result<bool> {
                // Judged by the domain on the payment as locked; written as any
                // other effect is (the guarded update, its entry, its event).
                let mut tx = self.begin().await?;
                let sql = Self::sql_owned(format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{}", Self::FOR_UPDATE));
                let locked: Option<Payment> = sqlx::query_as(&sql).bind(payment_id).fetch_optional(&mut *tx).await?;
                let Some(p) = locked.filter(|p| p.lease_owner.as_deref() == Some(owner)) else {
                    return Ok(false);
                };
                let moved = if expire {
                    crate::domain::own_moves::expiry(&p, reason, now)
                } else {
                    crate::domain::own_moves::left_open(&p, reason, now)
                };
                let Some(e) = moved else {
                    return Ok(false);
                };
                Self::write_payment(&mut tx, &e, Some(&p)).await?;
                Self::insert_entries(&mut tx, &e, None, now).await?;
                Self::raise(&mut tx, &e.payment, &e.events, crate::domain::Cause::Worker, now, None).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

pub(crate) use sql_store;
