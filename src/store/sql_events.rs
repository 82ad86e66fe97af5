//! SQL for [`EventStore`](super::EventStore) and the outbox writes, shared by
//! both backends (same conventions as `sql.rs`). `write_events` is what every
//! path changing a payment calls inside its own transaction: the event rows
//! and, for each, a delivery to every enabled endpoint subscribed to its type.

macro_rules! sql_event_store {
    ($Store:ident, $Db:ty) => {
        const _: () = {
            use crate::domain::{Cause, EventType};
            use crate::events::payload::{endpoint_disabled, payment_event, NewEvent};
            use crate::store::events::*;
            use crate::store::{Payment, Refund, StoreError};
            use chrono::{DateTime, Utc};

            const ENDPOINT_COLUMNS: &str = "id, url, description, source, enabled, disabled_reason, secret, \
                 previous_secret, previous_secret_until, failing_since, created_at, updated_at";
            const EVENT_COLUMNS: &str = "id, type, payment_id, sequence, cause, body, created_at";
            const DELIVERY_COLUMNS: &str =
                "id, event_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at";
            /// The endpoints `w` that receive an event of type `$2`.
            const SUBSCRIBED: &str = "w.enabled = TRUE AND (NOT EXISTS (SELECT 1 FROM webhook_endpoint_types t \
                 WHERE t.endpoint_id = w.id) OR EXISTS (SELECT 1 FROM webhook_endpoint_types t \
                 WHERE t.endpoint_id = w.id AND t.event_type = $2))";

            impl $Store {
                /// The next `sequence` of a payment's events; the caller holds its row lock.
                pub(crate) async fn next_sequence(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    payment_id: &str,
                ) -> crate::store::Result<i64> {
                    let last: Option<i64> =
                        sqlx::query_scalar(&Self::sql("SELECT MAX(sequence) FROM events WHERE payment_id = $1"))
                            .bind(payment_id)
                            .fetch_one(&mut **tx)
                            .await?;
                    Ok(last.unwrap_or(0) + 1)
                }

                /// The events `types` about `payment` (as it is after the change), written
                /// with their deliveries in the caller's transaction.
                pub(crate) async fn raise(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    payment: &Payment,
                    types: &[EventType],
                    cause: Cause,
                    at: DateTime<Utc>,
                    refund: Option<&Refund>,
                ) -> crate::store::Result<()> {
                    if types.is_empty() {
                        return Ok(());
                    }
                    let first = Self::next_sequence(tx, &payment.id).await?;
                    let events: Vec<NewEvent> = types
                        .iter()
                        .zip(first..)
                        .map(|(t, seq)| payment_event(*t, payment, cause, seq, at, refund))
                        .collect();
                    Self::write_events(tx, &events).await
                }

                pub(crate) async fn write_events(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    events: &[NewEvent],
                ) -> crate::store::Result<()> {
                    let insert = Self::sql_owned(format!(
                        "INSERT INTO events (id, type, payment_id, sequence, cause, body, created_at{}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7{})",
                        Self::FEED_COLUMN,
                        Self::FEED_VALUE
                    ));
                    let fan_out = Self::sql_owned(format!(
                        "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at, \
                         updated_at) SELECT $1, w.id, 'pending', 0, $3, $3, $3 FROM webhook_endpoints w WHERE {SUBSCRIBED}"
                    ));
                    for e in events {
                        sqlx::query(&insert)
                            .bind(&e.id)
                            .bind(e.event_type.as_str())
                            .bind(e.payment_id.as_deref())
                            .bind(e.sequence)
                            .bind(e.cause.as_str())
                            .bind(&e.body)
                            .bind(e.created_at)
                            .execute(&mut **tx)
                            .await?;
                        sqlx::query(&fan_out)
                            .bind(&e.id)
                            .bind(e.event_type.as_str())
                            .bind(e.created_at)
                            .execute(&mut **tx)
                            .await?;
                    }
                    Ok(())
                }

                async fn with_types(&self, mut endpoints: Vec<Endpoint>) -> crate::store::Result<Vec<Endpoint>> {
                    let rows: Vec<(String, String)> = sqlx::query_as(
                        "SELECT endpoint_id, event_type FROM webhook_endpoint_types ORDER BY endpoint_id, event_type",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    for e in &mut endpoints {
                        e.event_types =
                            rows.iter().filter(|(id, _)| *id == e.id).map(|(_, t)| t.clone()).collect();
                    }
                    Ok(endpoints)
                }

                async fn set_types(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    id: &str,
                    types: &[String],
                ) -> crate::store::Result<()> {
                    sqlx::query(&Self::sql("DELETE FROM webhook_endpoint_types WHERE endpoint_id = $1"))
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    for t in types {
                        sqlx::query(&Self::sql(
                            "INSERT INTO webhook_endpoint_types (endpoint_id, event_type) VALUES ($1, $2) \
                             ON CONFLICT DO NOTHING",
                        ))
                        .bind(id)
                        .bind(t)
                        .execute(&mut **tx)
                        .await?;
                    }
                    Ok(())
                }

                /// One attempt's record, in the caller's transaction (`record_attempts`).
                async fn record_in(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    owner: &str,
                    r: &AttemptResult,
                ) -> crate::store::Result<Recorded> {
                    let now = r.attempt.attempted_at;
                    let delivery_id = r.attempt.delivery_id;
                    let lock = Self::sql_owned(format!(
                        "SELECT endpoint_id FROM deliveries WHERE id = $1 AND status = 'pending' AND lease_owner = $2{}",
                        Self::FOR_UPDATE
                    ));
                    let endpoint: Option<String> =
                        sqlx::query_scalar(&lock).bind(delivery_id).bind(owner).fetch_optional(&mut **tx).await?;
                    let Some(endpoint) = endpoint else {
                        return Ok(Recorded::LeaseLost);
                    };
                    let a = &r.attempt;
                    sqlx::query(&Self::sql(
                        "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, error, latency_ms, \
                         response_excerpt) VALUES ($1, $2, $3, $4, $5, $6)",
                    ))
                    .bind(delivery_id)
                    .bind(a.attempted_at)
                    .bind(a.status_code)
                    .bind(a.error.as_deref())
                    .bind(a.latency_ms)
                    .bind(a.response_excerpt.as_deref())
                    .execute(&mut **tx)
                    .await?;
                    let status = match (r.succeeded, r.next_attempt_at) {
                        (true, _) => "succeeded",
                        (false, Some(_)) => "pending",
                        (false, None) => "failed",
                    };
                    sqlx::query(&Self::sql(
                        "UPDATE deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
                         lease_owner = NULL, lease_until = NULL, updated_at = $3 WHERE id = $4",
                    ))
                    .bind(status)
                    .bind(if r.succeeded { None } else { r.next_attempt_at })
                    .bind(now)
                    .bind(delivery_id)
                    .execute(&mut **tx)
                    .await?;
                    let mut disabled = false;
                    if r.succeeded {
                        sqlx::query(&Self::sql(
                            "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
                        ))
                        .bind(&endpoint)
                        .execute(&mut **tx)
                        .await?;
                    } else {
                        let since: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(&Self::sql(
                            "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2 \
                             AND enabled = TRUE RETURNING failing_since",
                        ))
                        .bind(now)
                        .bind(&endpoint)
                        .fetch_optional(&mut **tx)
                        .await?;
                        if let Some(Some(since)) = since.filter(|s| s.is_some_and(|s| s <= r.disable_if_failing_since)) {
                            let reason = format!("no successful delivery since {}", since.to_rfc3339());
                            sqlx::query(&Self::sql(
                                "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $1, updated_at = $2 \
                                 WHERE id = $3",
                            ))
                            .bind(&reason)
                            .bind(now)
                            .bind(&endpoint)
                            .execute(&mut **tx)
                            .await?;
                            Self::write_events(tx, &[endpoint_disabled(&endpoint, &reason, since, now)]).await?;
                            disabled = true;
                        }
                    }
                    Ok(Recorded::Recorded { failed: status == "failed", endpoint_disabled: disabled })
                }

                async fn endpoint_in(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    id: &str,
                ) -> crate::store::Result<Option<Endpoint>> {
                    let sql = Self::sql_owned(format!(
                        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1{}",
                        Self::FOR_UPDATE
                    ));
                    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&mut **tx).await?)
                }
            }

            #[async_trait::async_trait]
            impl EventStore for $Store {
                async fn create_endpoint(&self, e: &NewEndpoint) -> crate::store::Result<Endpoint> {
                    let mut tx = self.begin().await?;
                    sqlx::query(&Self::sql(
                        "INSERT INTO webhook_endpoints (id, url, description, source, enabled, secret, created_at, \
                         updated_at) VALUES ($1, $2, $3, 'api', TRUE, $4, $5, $5)",
                    ))
                    .bind(&e.id)
                    .bind(&e.url)
                    .bind(e.description.as_deref())
                    .bind(&e.secret)
                    .bind(e.created_at)
                    .execute(&mut *tx)
                    .await?;
                    Self::set_types(&mut tx, &e.id, &e.event_types).await?;
                    tx.commit().await?;
                    self.get_endpoint(&e.id).await?.ok_or(StoreError::NotFound)
                }

                async fn configure_endpoint(
                    &self,
                    url: &str,
                    secret: &str,
                    now: DateTime<Utc>,
                ) -> crate::store::Result<Endpoint> {
                    let mut tx = self.begin().await?;
                    let existing: Option<String> =
                        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE source = 'config'")
                            .fetch_optional(&mut *tx)
                            .await?;
                    let id = match existing {
                        Some(id) => {
                            sqlx::query(&Self::sql(
                                "UPDATE webhook_endpoints SET url = $1, secret = $2, enabled = TRUE, \
                                 disabled_reason = NULL, updated_at = $3 WHERE id = $4",
                            ))
                            .bind(url)
                            .bind(secret)
                            .bind(now)
                            .bind(&id)
                            .execute(&mut *tx)
                            .await?;
                            id
                        }
                        None => {
                            let id = uuid::Uuid::now_v7().to_string();
                            sqlx::query(&Self::sql(
                                "INSERT INTO webhook_endpoints (id, url, description, source, enabled, secret, \
                                 created_at, updated_at) VALUES ($1, $2, 'from the configuration', 'config', TRUE, $3, \
                                 $4, $4) ON CONFLICT DO NOTHING",
                            ))
                            .bind(&id)
                            .bind(url)
                            .bind(secret)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                            id
                        }
                    };
                    tx.commit().await?;
                    self.get_endpoint(&id).await?.ok_or(StoreError::NotFound)
                }

                async fn unconfigure_endpoint(&self, now: DateTime<Utc>) -> crate::store::Result<()> {
                    sqlx::query(&Self::sql(
                        "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = \
                         'no longer in the configuration', updated_at = $1 WHERE source = 'config' AND enabled = TRUE",
                    ))
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn list_endpoints(&self) -> crate::store::Result<Vec<Endpoint>> {
                    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id");
                    let rows = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
                    self.with_types(rows).await
                }

                async fn get_endpoint(&self, id: &str) -> crate::store::Result<Option<Endpoint>> {
                    let sql = Self::sql_owned(format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"));
                    let row: Option<Endpoint> = sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?;
                    Ok(match row {
                        Some(e) => self.with_types(vec![e]).await?.pop(),
                        None => None,
                    })
                }

                async fn update_endpoint(
                    &self,
                    id: &str,
                    u: &EndpointUpdate,
                    now: DateTime<Utc>,
                ) -> crate::store::Result<Option<Endpoint>> {
                    let mut tx = self.begin().await?;
                    let Some(mut e) = Self::endpoint_in(&mut tx, id).await? else {
                        return Ok(None);
                    };
                    if let Some(url) = &u.url {
                        e.url = url.clone();
                    }
                    if let Some(d) = &u.description {
                        e.description = d.clone();
                    }
                    match u.enabled {
                        Some(true) => {
                            e.enabled = true;
                            e.disabled_reason = None;
                            e.failing_since = None;
                        }
                        Some(false) if e.enabled => {
                            e.enabled = false;
                            e.disabled_reason = Some("disabled through the API".into());
                        }
                        _ => {}
                    }
                    sqlx::query(&Self::sql(
                        "UPDATE webhook_endpoints SET url = $1, description = $2, enabled = $3, disabled_reason = $4, \
                         failing_since = $5, updated_at = $6 WHERE id = $7",
                    ))
                    .bind(&e.url)
                    .bind(e.description.as_deref())
                    .bind(e.enabled)
                    .bind(e.disabled_reason.as_deref())
                    .bind(e.failing_since)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    if let Some(types) = &u.event_types {
                        Self::set_types(&mut tx, id, types).await?;
                    }
                    tx.commit().await?;
                    self.get_endpoint(id).await
                }

                async fn delete_endpoint(&self, id: &str) -> crate::store::Result<bool> {
                    let mut tx = self.begin().await?;
                    let done = sqlx::query(&Self::sql("DELETE FROM webhook_endpoints WHERE id = $1"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn rotate_secret(
                    &self,
                    id: &str,
                    secret: &str,
                    old_until: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> crate::store::Result<Option<Endpoint>> {
                    let mut tx = self.begin().await?;
                    let done = sqlx::query(&Self::sql(
                        "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = $1, \
                         secret = $2, updated_at = $3 WHERE id = $4",
                    ))
                    .bind(old_until)
                    .bind(secret)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    if done.rows_affected() == 0 {
                        return Ok(None);
                    }
                    self.get_endpoint(id).await
                }

                async fn list_outbox_events(&self, f: &EventFilter) -> crate::store::Result<Vec<StoredEvent>> {
                    let mut conditions = Vec::new();
                    let mut n = 0;
                    let mut next = |condition: &str| {
                        n += 1;
                        conditions.push(condition.replace('#', &format!("${n}")));
                    };
                    if f.event_type.is_some() {
                        next("type = #");
                    }
                    if f.payment_id.is_some() {
                        next("payment_id = #");
                    }
                    if f.created_from.is_some() {
                        next("created_at >= #");
                    }
                    if f.created_to.is_some() {
                        next("created_at < #");
                    }
                    if f.before_id.is_some() {
                        next("id < #");
                    }
                    let filter =
                        if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
                    let sql = Self::sql_owned(format!(
                        "SELECT {EVENT_COLUMNS} FROM events {filter} ORDER BY id DESC LIMIT {}",
                        f.limit.clamp(1, 1000)
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
                    let target = if endpoint_id.is_some() { "w.id = $4" } else { SUBSCRIBED };
                    // A delivery being sent right now keeps its lease: it is sent again after.
                    let sql = Self::sql_owned(format!(
                        "INSERT INTO deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at, \
                         updated_at) SELECT $1, w.id, 'pending', 0, $3, $3, $3 FROM webhook_endpoints w WHERE {target} \
                         ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = 'pending', attempts = 0, \
                         next_attempt_at = CASE WHEN deliveries.lease_until > $3 THEN deliveries.lease_until ELSE $3 END, \
                         updated_at = $3"
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
                        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1 \
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
                    self.changes_page(cursor, limit.clamp(1, 1000)).await
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
                         AND d.endpoint_id IN (SELECT id FROM webhook_endpoints WHERE enabled = TRUE) \
                         ORDER BY d.next_attempt_at LIMIT $4{})",
                        Self::SKIP_LOCKED
                    ));
                    let mut tx = self.begin().await?;
                    sqlx::query(&claim).bind(owner).bind(until).bind(now).bind(limit).execute(&mut *tx).await?;
                    let claimed = sqlx::query_as(&Self::sql(
                        "SELECT d.id, d.attempts, e.id AS event_id, e.body, e.created_at AS event_created_at, \
                         w.id AS endpoint_id, w.url, w.secret, w.previous_secret, w.previous_secret_until \
                         FROM deliveries d JOIN events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                         WHERE d.lease_owner = $1 AND d.lease_until = $2 AND d.status = 'pending' ORDER BY d.id",
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
                    results: &[AttemptResult],
                ) -> crate::store::Result<Vec<Recorded>> {
                    let mut tx = self.begin().await?;
                    // In delivery order: a replica's deliveries are its own (leased), so
                    // the only rows two replicas' records share are endpoints, which the
                    // record of each delivery touches after its own row.
                    let mut order: Vec<usize> = (0..results.len()).collect();
                    order.sort_by_key(|&i| results[i].attempt.delivery_id);
                    let mut out = vec![Recorded::LeaseLost; results.len()];
                    for i in order {
                        out[i] = Self::record_in(&mut tx, owner, &results[i]).await?;
                    }
                    tx.commit().await?;
                    Ok(out)
                }

                async fn backlog(&self) -> crate::store::Result<Vec<(String, i64, Option<DateTime<Utc>>)>> {
                    let rows: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT w.id, COUNT(d.id) FROM webhook_endpoints w LEFT JOIN deliveries d \
                         ON d.endpoint_id = w.id AND d.status = 'pending' WHERE w.enabled = TRUE GROUP BY w.id ORDER BY w.id",
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
