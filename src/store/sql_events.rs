//! SQL for [`EventStore`](super::EventStore), shared by both backends (same
//! conventions as `sql.rs`): reading events and their deliveries, resending,
//! and the sender's claims (its records: `sql_records.rs`). The outbox's
//! writes are `sql_outbox.rs`; the changes feed is each backend's own (`changes_page`).

macro_rules! sql_event_store {
    ($Store:ident, $Db:ty) => {
        const _: () = {
            use crate::store::events::*;
            use crate::store::StoreError;
            use chrono::{DateTime, Utc};

            const EVENT_COLUMNS: &str = "id, type, payment_id, sequence, cause, body, created_at";
            const DELIVERY_COLUMNS: &str =
                "id, event_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at";

            #[async_trait::async_trait]
            impl EventStore for $Store {
                async fn list_outbox_events(&self, f: &EventFilter) -> crate::store::Result<Vec<StoredEvent>> {
                    // As payments are listed (`list_payments`): a time range is
                    // read in creation-time order along `events_by_time`, so
                    // that a range far in the past is found without walking
                    // every newer event; those pages are keyed on (created_at,
                    // id), the cursor's event giving its place. One payment's
                    // events are few, and read by payment.
                    let by_time = (f.created_from.is_some() || f.created_to.is_some()) && f.payment_id.is_none();
                    let (filter, placeholders) = crate::store::where_given(&[
                        (f.event_type.is_some(), "type = #"),
                        (f.payment_id.is_some(), "payment_id = #"),
                        (f.created_from.is_some(), "created_at >= #"),
                        (f.created_to.is_some(), "created_at < #"),
                        (
                            f.before_id.is_some() && by_time,
                            "(created_at, id) < ((SELECT created_at FROM events WHERE id = #), #)",
                        ),
                        (f.before_id.is_some() && !by_time, "id < #"),
                    ]);
                    let sql = Self::sql_owned(format!(
                        "SELECT {EVENT_COLUMNS} FROM events {filter} ORDER BY {} LIMIT ${}",
                        if by_time { "created_at DESC, id DESC" } else { "id DESC" },
                        placeholders + 1
                    ));
                    let mut q = sqlx::query_as(&sql);
                    for v in [&f.event_type, &f.payment_id].into_iter().flatten() {
                        q = q.bind(v.as_str());
                    }
                    for t in [f.created_from, f.created_to].into_iter().flatten() {
                        q = q.bind(t);
                    }
                    if let Some(b) = &f.before_id {
                        q = q.bind(b.as_str());
                    }
                    q = q.bind(f.limit.clamp(1, 1000));
                    Ok(q.fetch_all(&self.pool).await?)
                }

                async fn get_outbox_event(&self, id: &str) -> crate::store::Result<Option<StoredEvent>> {
                    let sql = Self::sql_owned(format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1"));
                    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
                }

                async fn deliveries_of(&self, event_id: &str) -> crate::store::Result<(Vec<Delivery>, Vec<Attempt>)> {
                    let sql = Self::sql_owned(format!(
                        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE event_id = $1 ORDER BY id"
                    ));
                    let deliveries = sqlx::query_as(&sql).bind(event_id).fetch_all(&self.pool).await?;
                    let attempts = sqlx::query_as(&Self::sql(
                        "SELECT a.delivery_id, a.attempted_at, a.status_code, a.error, a.latency_ms, a.response_excerpt \
                         FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.event_id = $1 \
                         ORDER BY a.id",
                    ))
                    .bind(event_id)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok((deliveries, attempts))
                }

                async fn resend_event(
                    &self,
                    event_id: &str,
                    endpoint_id: Option<&str>,
                    now: DateTime<Utc>,
                ) -> crate::store::Result<u64> {
                    let Some(event) = self.get_outbox_event(event_id).await? else {
                        return Err(StoreError::NotFound);
                    };
                    let target = match endpoint_id {
                        Some(_) => "w.id = $4".to_string(),
                        None => format!("w.enabled = TRUE AND {}", subscribed("$2")),
                    };
                    // A delivery being sent right now is taken back: the resend holds
                    // its lease until it ends (the attempt's record is refused, and
                    // neither a sender nor a second resend sends it sooner), then it
                    // is sent again.
                    let sql = Self::sql_owned(format!(
                        "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at, \
                         updated_at) SELECT $1, w.id, 'pending', 0, CASE WHEN w.enabled THEN $3 END, $3, $3 \
                         FROM webhook_endpoints w WHERE {target}{lock} \
                         ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = 'pending', attempts = 0, \
                         next_attempt_at = CASE WHEN excluded.next_attempt_at IS NULL THEN NULL \
                           WHEN deliveries.lease_until > $3 THEN deliveries.lease_until ELSE $3 END, \
                         lease_owner = CASE WHEN deliveries.lease_until > $3 THEN 'resend' END, \
                         lease_until = CASE WHEN deliveries.lease_until > $3 THEN deliveries.lease_until END, \
                         updated_at = $3",
                        lock = Self::ENDPOINT_KEY_SHARE
                    ));
                    let mut tx = self.begin().await?;
                    let done = sqlx::query(&sql)
                        .bind(event_id)
                        .bind(&event.event_type)
                        .bind(now)
                        .bind(endpoint_id.unwrap_or_default())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected())
                }

                async fn resend_failed(
                    &self,
                    endpoint_id: &str,
                    since: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> crate::store::Result<u64> {
                    let mut tx = self.begin().await?;
                    let done = sqlx::query(&Self::sql(
                        "UPDATE deliveries SET status = 'pending', attempts = 0, updated_at = $1, \
                         next_attempt_at = CASE WHEN (SELECT enabled FROM webhook_endpoints WHERE id = $2) THEN $1 END \
                         WHERE endpoint_id = $2 AND status = 'failed' \
                         AND event_id IN (SELECT id FROM events WHERE created_at >= $3)",
                    ))
                    .bind(now)
                    .bind(endpoint_id)
                    .bind(since)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected())
                }

                async fn changes(&self, cursor: Option<&str>, limit: i64) -> crate::store::Result<ChangesPage> {
                    let after = crate::store::events::feed_cursor(cursor)?;
                    let page = self.changes_page(after, limit.clamp(1, 1000)).await?;
                    // A position past every event's was never given (another
                    // database's, or one restored from an older backup): say so
                    // rather than answer nothing until the feed reaches it.
                    if page.items.is_empty() && after > 0 {
                        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(feed_position) FROM events")
                            .fetch_one(&self.pool)
                            .await?;
                        if after > last.unwrap_or(0) {
                            return Err(StoreError::Conflict("the cursor is past every event".into()));
                        }
                    }
                    Ok(page)
                }

                async fn claim_deliveries(
                    &self,
                    owner: &str,
                    now: DateTime<Utc>,
                    lease_secs: u64,
                    limit: i64,
                ) -> crate::store::Result<Vec<ClaimedDelivery>> {
                    let until = now + chrono::Duration::seconds(lease_secs as i64);
                    let claim = Self::sql_owned(format!(
                        "UPDATE deliveries SET lease_owner = $1, lease_until = $2, next_attempt_at = $2 WHERE id IN ( \
                         SELECT d.id FROM deliveries d WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
                         AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = d.endpoint_id AND w.enabled = TRUE) \
                         ORDER BY d.next_attempt_at, d.id LIMIT $4{})",
                        Self::SKIP_LOCKED
                    ));
                    let mut tx = self.begin().await?;
                    // The claim moves each row's `next_attempt_at` to the lease's end, so the
                    // read below finds what it claimed through the due index, not by a scan.
                    sqlx::query(&claim).bind(owner).bind(until).bind(now).bind(limit).execute(&mut *tx).await?;
                    let claimed = sqlx::query_as(&Self::sql(
                        "SELECT d.id, d.attempts, e.id AS event_id, e.body, e.created_at AS event_created_at, \
                         w.id AS endpoint_id, w.url, w.secret, w.previous_secret, w.previous_secret_until \
                         FROM deliveries d JOIN events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                         WHERE d.status = 'pending' AND d.next_attempt_at = $2 AND d.lease_owner = $1 AND d.lease_until = $2 \
                         ORDER BY d.id",
                    ))
                    .bind(owner)
                    .bind(until)
                    .fetch_all(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(claimed)
                }

                async fn record_attempts(
                    &self,
                    owner: &str,
                    now: DateTime<Utc>,
                    results: &[AttemptResult],
                ) -> crate::store::Result<Vec<Recorded>> {
                    self.record_cycle(owner, now, results).await
                }

                async fn align_stranded(&self, now: DateTime<Utc>) -> crate::store::Result<u64> {
                    let mut tx = self.begin().await?;
                    let endpoints: Vec<(String, bool)> = sqlx::query_as("SELECT id, enabled FROM webhook_endpoints")
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut aligned = 0;
                    for (id, _) in endpoints.iter().filter(|(_, enabled)| *enabled) {
                        aligned += Self::park_deliveries(&mut tx, id, true, now).await?;
                    }
                    if endpoints.iter().any(|(_, enabled)| !enabled) {
                        let parked = sqlx::query(&Self::sql_owned(crate::store::endpoints::park_of_disabled_sql(
                            Self::SKIP_LOCKED,
                        )))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        aligned += parked.rows_affected();
                    }
                    tx.commit().await?;
                    Ok(aligned)
                }

                async fn delivery_backlog(&self) -> crate::store::Result<Vec<(String, i64, Option<DateTime<Utc>>)>> {
                    let rows: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT w.id, COUNT(d.id) FROM webhook_endpoints w LEFT JOIN deliveries d \
                         ON d.endpoint_id = w.id AND d.status = 'pending' GROUP BY w.id ORDER BY w.id",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for (id, pending) in rows {
                        let oldest: Option<DateTime<Utc>> = sqlx::query_scalar(&Self::sql(
                            "SELECT e.created_at FROM deliveries d JOIN events e ON e.id = d.event_id \
                             WHERE d.endpoint_id = $1 AND d.status = 'pending' ORDER BY d.created_at LIMIT 1",
                        ))
                        .bind(&id)
                        .fetch_optional(&self.pool)
                        .await?;
                        out.push((id, pending, oldest));
                    }
                    Ok(out)
                }
            }
        };
    };
}

pub(crate) use sql_event_store;
