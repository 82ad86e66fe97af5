//! A sending cycle's records, shared by both backends (same conventions as
//! `sql.rs`): every attempt of the cycle closed on its delivery and stored in
//! one statement each, whatever the cycle's size; then what the attempts say
//! about each endpoint (a failing streak started or ended, the endpoint
//! disabled after failing for too long).

macro_rules! sql_records {
    ($Store:ident, $Db:ty) => {
        const _: () = {
            use crate::events::payload::endpoint_disabled;
            use crate::store::events::{endpoint_cycles, AttemptResult, EndpointCycle, Recorded};
            use chrono::{DateTime, Utc};

            impl $Store {
                /// `record_attempts`: one transaction for a sending cycle's records.
                pub(crate) async fn record_cycle(
                    &self,
                    owner: &str,
                    now: DateTime<Utc>,
                    results: &[AttemptResult],
                ) -> crate::store::Result<Vec<Recorded>> {
                    let mut out = vec![Recorded::LeaseLost; results.len()];
                    if results.is_empty() {
                        return Ok(out);
                    }
                    // Deliveries first (each is leased to this sender alone), then their
                    // endpoints in id order: endpoints are shared with the other senders
                    // (loops and replicas), whose records lock them in the same order and
                    // wait on each other instead of deadlocking.
                    let mut tx = self.begin().await?;
                    let recorded = Self::close_attempts(&mut tx, owner, now, results).await?;
                    for &i in &recorded {
                        let r = &results[i];
                        let failed = !r.succeeded && r.next_attempt_at.is_none();
                        out[i] = Recorded::Recorded { failed, endpoint_disabled: false };
                    }
                    for (endpoint, cycle) in endpoint_cycles(results, &recorded) {
                        if let Some(i) = Self::judge_endpoint(&mut tx, endpoint, &cycle, now).await? {
                            if let Recorded::Recorded { endpoint_disabled, .. } = &mut out[i] {
                                *endpoint_disabled = true;
                            }
                        }
                    }
                    tx.commit().await?;
                    Ok(out)
                }

                /// Closes the attempts of a cycle on their deliveries, in one statement
                /// for them all: only while the lease lasts (once it ends, or a resend
                /// took the delivery back, another may hold it). Then stores every
                /// attempt, closed or not, whose delivery still exists: each was sent.
                /// The indexes of the results closed.
                async fn close_attempts(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    owner: &str,
                    recorded_at: DateTime<Utc>,
                    results: &[AttemptResult],
                ) -> crate::store::Result<Vec<usize>> {
                    let status = |r: &AttemptResult| match (r.succeeded, r.next_attempt_at) {
                        (true, _) => "succeeded",
                        (false, Some(_)) => "pending",
                        (false, None) => "failed",
                    };
                    // A disabled endpoint's delivery waits parked, with no next attempt.
                    let close = Self::sql_owned(format!(
                        "UPDATE deliveries SET status = v.column2, attempts = attempts + 1, \
                         next_attempt_at = CASE WHEN (SELECT enabled FROM webhook_endpoints WHERE id = deliveries.endpoint_id) \
                         THEN v.column3 END, lease_owner = NULL, lease_until = NULL, updated_at = v.column4 \
                         FROM (VALUES {}) AS v \
                         WHERE deliveries.id = v.column1 AND deliveries.status = 'pending' \
                         AND deliveries.lease_owner = $1 AND deliveries.lease_until > $2 RETURNING deliveries.id",
                        crate::store::value_rows(results.len(), 4, 3)
                    ));
                    // Statements of every size: not kept prepared, so they do not push the hot ones out.
                    let mut q = sqlx::query_scalar(&close).persistent(false).bind(owner).bind(recorded_at);
                    for r in results {
                        q = q
                            .bind(r.attempt.delivery_id)
                            .bind(status(r))
                            .bind(if r.succeeded { None } else { r.next_attempt_at })
                            .bind(r.attempt.attempted_at);
                    }
                    let closed: std::collections::HashSet<i64> = q.fetch_all(&mut **tx).await?.into_iter().collect();
                    let recorded: Vec<usize> =
                        (0..results.len()).filter(|&i| closed.contains(&results[i].attempt.delivery_id)).collect();
                    let insert = Self::sql_owned(format!(
                        "INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, error, latency_ms, \
                         response_excerpt) SELECT * FROM (VALUES {}) AS v \
                         WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = v.column1)",
                        crate::store::value_rows(results.len(), 6, 1)
                    ));
                    let mut q = sqlx::query(&insert).persistent(false);
                    for r in results {
                        let a = &r.attempt;
                        q = q
                            .bind(a.delivery_id)
                            .bind(a.attempted_at)
                            .bind(a.status_code)
                            .bind(a.error.as_deref())
                            .bind(a.latency_ms)
                            .bind(a.response_excerpt.as_deref());
                    }
                    q.execute(&mut **tx).await?;
                    Ok(recorded)
                }

                /// What a cycle's attempts say about their endpoint: a success ends its
                /// failing streak; failures start one, and one running for too long
                /// disables the endpoint (parking its deliveries, raising
                /// `endpoint.disabled`). If it was disabled, the attempt whose answer says so.
                async fn judge_endpoint(
                    tx: &mut sqlx::Transaction<'static, $Db>,
                    endpoint: &str,
                    cycle: &EndpointCycle,
                    now: DateTime<Utc>,
                ) -> crate::store::Result<Option<usize>> {
                    if cycle.succeeded {
                        sqlx::query(&Self::sql(
                            "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
                        ))
                        .bind(endpoint)
                        .execute(&mut **tx)
                        .await?;
                    }
                    let Some(failing) = &cycle.failing else { return Ok(None) };
                    let since: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(&Self::sql(
                        "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2 \
                         AND enabled = TRUE RETURNING failing_since",
                    ))
                    .bind(failing.since)
                    .bind(endpoint)
                    .fetch_optional(&mut **tx)
                    .await?;
                    let Some(since) = since.flatten().filter(|s| *s <= failing.disable_if_since) else {
                        return Ok(None);
                    };
                    let reason = format!("no successful delivery since {}", since.to_rfc3339());
                    sqlx::query(&Self::sql(
                        "UPDATE webhook_endpoints SET enabled = FALSE, disabled_by = 'failures', disabled_reason = $1, \
                         updated_at = $2 WHERE id = $3",
                    ))
                    .bind(&reason)
                    .bind(now)
                    .bind(endpoint)
                    .execute(&mut **tx)
                    .await?;
                    Self::park_deliveries(tx, endpoint, false, now).await?;
                    Self::write_events(tx, &[endpoint_disabled(endpoint, &reason, since, now)]).await?;
                    Ok(Some(failing.last))
                }
            }

        };
    };
}

pub(crate) use sql_records;
