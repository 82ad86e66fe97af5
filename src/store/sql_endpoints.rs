//! SQL for [`EndpointStore`](super::endpoints::EndpointStore), shared by
//! both backends (same conventions as `sql.rs`). An endpoint's subscribed
//! types are rows of `webhook_endpoint_types`; none means every type.

macro_rules! sql_endpoint_store {
    ($Store:ident, $Db:ty) => {
        const _: () = {
            use crate::store::endpoints::*;
            use crate::store::StoreError;
            use chrono::{DateTime, Utc};

            const ENDPOINT_COLUMNS: &str = "id, url, description, source, enabled, disabled_reason, secret, \
                 previous_secret, previous_secret_until, failing_since, created_at, updated_at";

            impl $Store {
                /// Brings the endpoint's pending deliveries in line with its
                /// `enabled`, after any change of it: parked while it is
                /// disabled, scheduled once it is enabled again
                /// ([`park_sql`], [`unpark_sql`]). One being sent or recorded
                /// is left to its sender, which records it as the endpoint then
                /// is.
                pub(crate) async fn park_deliveries(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    endpoint_id: &str,
                    enabled: bool,
                    now: DateTime<Utc>,
                ) -> crate::store::Result<u64> {
                    let sql = if enabled {
                        unpark_sql(Self::SKIP_LOCKED)
                    } else {
                        park_sql(Self::SKIP_LOCKED)
                    };
                    let done = sqlx::query(&Self::sql_owned(sql))
                        .bind(endpoint_id)
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                    Ok(done.rows_affected())
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
            impl EndpointStore for $Store {
                async fn create_endpoint(
                    &self,
                    e: &NewEndpoint,
                    idempotency: Option<&crate::store::IdempotencyRef>,
                ) -> crate::store::Result<Endpoint> {
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
                    Self::name_resource(&mut tx, idempotency, &e.id).await?;
                    tx.commit().await?;
                    self.get_endpoint(&e.id).await?.ok_or(StoreError::NotFound)
                }

                async fn configure_endpoint(
                    &self,
                    url: &str,
                    secret: &str,
                    old_until: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> crate::store::Result<Endpoint> {
                    let configured = "SELECT id FROM webhook_endpoints WHERE source = 'config'";
                    let mut tx = self.begin().await?;
                    let existing: Option<String> = sqlx::query_scalar(configured).fetch_optional(&mut *tx).await?;
                    match existing {
                        Some(id) => {
                            // A new secret in the configuration is a rotation: the old one
                            // keeps signing alongside until `old_until`. A start does not undo
                            // a disable (a person's, or the sender's after failing too long)
                            // unless the URL changed; the one that removing the endpoint from
                            // the configuration caused is lifted.
                            let kept_disabled = "(url = $1 AND NOT enabled AND disabled_by <> 'configuration')";
                            let enabled: bool = sqlx::query_scalar(&Self::sql_owned(format!(
                                "UPDATE webhook_endpoints SET url = $1, \
                                 enabled = CASE WHEN {kept_disabled} THEN FALSE ELSE TRUE END, \
                                 disabled_reason = CASE WHEN {kept_disabled} THEN disabled_reason END, \
                                 disabled_by = CASE WHEN {kept_disabled} THEN disabled_by END, \
                                 failing_since = CASE WHEN {kept_disabled} OR (url = $1 AND enabled) THEN failing_since END, \
                                 previous_secret = CASE WHEN secret = $2 THEN previous_secret ELSE secret END, \
                                 previous_secret_until = CASE WHEN secret = $2 THEN previous_secret_until ELSE $3 END, \
                                 secret = $2, updated_at = $4 WHERE id = $5 RETURNING enabled",
                            )))
                            .bind(url)
                            .bind(secret)
                            .bind(old_until)
                            .bind(now)
                            .bind(&id)
                            .fetch_one(&mut *tx)
                            .await?;
                            Self::park_deliveries(&mut tx, &id, enabled, now).await?;
                        }
                        None => {
                            // Another replica starting at the same time may insert it first.
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
                        }
                    }
                    tx.commit().await?;
                    let id: String = sqlx::query_scalar(configured).fetch_one(&self.pool).await?;
                    self.get_endpoint(&id).await?.ok_or(StoreError::NotFound)
                }

                async fn unconfigure_endpoint(&self, now: DateTime<Utc>) -> crate::store::Result<()> {
                    let mut tx = self.begin().await?;
                    let disabled: Option<String> = sqlx::query_scalar(&Self::sql(
                        "UPDATE webhook_endpoints SET enabled = FALSE, disabled_by = 'configuration', disabled_reason = \
                         'no longer in the configuration', updated_at = $1 WHERE source = 'config' AND enabled = TRUE \
                         RETURNING id",
                    ))
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(id) = disabled {
                        Self::park_deliveries(&mut tx, &id, false, now).await?;
                    }
                    tx.commit().await?;
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
                    if let Some(url) = u.url.as_ref().filter(|url| **url != e.url) {
                        // Another address starts its own streak, as a configured one's does.
                        e.url = url.clone();
                        e.failing_since = None;
                    }
                    if let Some(d) = &u.description {
                        e.description = d.clone();
                    }
                    match u.enabled {
                        // Enabling what is enabled changes nothing: the streak that
                        // disables a failing endpoint is not restarted by it.
                        Some(true) if !e.enabled => {
                            e.enabled = true;
                            e.disabled_reason = None;
                            e.failing_since = None;
                        }
                        Some(false) if e.enabled => {
                            e.enabled = false;
                            e.disabled_reason = Some(match &u.by {
                                Some(who) => format!("disabled by {who}"),
                                None => "disabled through the API".into(),
                            });
                        }
                        _ => {}
                    }
                    sqlx::query(&Self::sql(
                        "UPDATE webhook_endpoints SET url = $1, description = $2, enabled = $3, disabled_reason = $4, \
                         disabled_by = CASE WHEN $3 THEN NULL WHEN enabled THEN 'person' ELSE disabled_by END, \
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
                    if u.enabled.is_some() {
                        Self::park_deliveries(&mut tx, id, e.enabled, now).await?;
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
                    idempotency: Option<&crate::store::IdempotencyRef>,
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
                    if done.rows_affected() == 0 {
                        return Ok(None);
                    }
                    Self::name_resource(&mut tx, idempotency, id).await?;
                    tx.commit().await?;
                    self.get_endpoint(id).await
                }
            }
        };
    };
}

pub(crate) use sql_endpoint_store;
