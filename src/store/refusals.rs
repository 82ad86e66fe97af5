//! The journal of refused requests (table `refusals`): its
//! rows, its reads, and how it is kept bounded. A supertrait of
//! [`Store`](super::Store); the SQL is shared by both backends.

use super::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;

/// One refused request, as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Refusal {
    /// UUIDv7: sorts by time.
    pub id: String,
    pub received_at: DateTime<Utc>,
    /// `token` or `notify`.
    pub route: String,
    pub path: String,
    pub response_code: String,
    /// One of [`Reason`], as stored.
    pub reason: String,
    pub message: String,
    pub sender: Option<String>,
    /// Header name → value, without credentials.
    pub headers: Json<serde_json::Map<String, serde_json::Value>>,
    pub body: Option<Vec<u8>>,
    pub body_bytes: i64,
    /// `None`: not diagnosed.
    pub dialects: Option<Json<Vec<String>>>,
    pub diagnosis: Option<String>,
}

/// Why a request was refused: the `reason` of a refusal (a CHECK in the
/// schema holds the same list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RefusalReason)]
pub enum Reason {
    InvalidSignature,
    InvalidToken,
    StaleTimestamp,
    UnknownClient,
    MissingField,
    InvalidField,
    BadRequest,
    Conflict,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Self::InvalidSignature,
        Self::InvalidToken,
        Self::StaleTimestamp,
        Self::UnknownClient,
        Self::MissingField,
        Self::InvalidField,
        Self::BadRequest,
        Self::Conflict,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidToken => "invalid_token",
            Self::StaleTimestamp => "stale_timestamp",
            Self::UnknownClient => "unknown_client",
            Self::MissingField => "missing_field",
            Self::InvalidField => "invalid_field",
            Self::BadRequest => "bad_request",
            Self::Conflict => "conflict",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Refusals of one reason in a period.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReasonTotal {
    pub reason: String,
    pub count: i64,
}

/// A page of the journal, newest first.
#[derive(Debug, Clone, Default)]
pub struct RefusalFilter {
    pub reason: Option<String>,
    pub route: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Keyset cursor: the last id of the previous page.
    pub before_id: Option<String>,
    pub limit: i64,
}

#[async_trait]
pub trait RefusalStore: Send + Sync + 'static {
    /// Stores a batch of refusals in one transaction.
    async fn insert_refusals(&self, rows: &[Refusal]) -> Result<()>;
    async fn list_refusals(&self, filter: &RefusalFilter) -> Result<Vec<Refusal>>;
    async fn get_refusal(&self, id: &str) -> Result<Option<Refusal>>;
    /// How many refusals were received in `[from, to)`, by reason (most first).
    async fn refusal_totals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<ReasonTotal>>;
    /// Deletes up to `limit` of the oldest refusals that are received before
    /// `before` or beyond the newest `keep`. Returns how many it deleted.
    async fn prune_refusals(&self, before: DateTime<Utc>, keep: i64, limit: i64) -> Result<u64>;
}

pub(crate) const COLUMNS: &str =
    "id, received_at, route, path, response_code, reason, message, sender, headers, body, \
     body_bytes, dialects, diagnosis";

/// The `WHERE` clause of a filter, numbered from `$1`, in the order
/// [`bind_filter`] binds.
pub(crate) fn filter_sql(f: &RefusalFilter) -> (String, usize) {
    crate::store::where_given(&[
        (f.reason.is_some(), "reason = #"),
        (f.route.is_some(), "route = #"),
        (f.from.is_some(), "received_at >= #"),
        (f.to.is_some(), "received_at < #"),
        (f.before_id.is_some(), "id < #"),
    ])
}

macro_rules! sql_refusal_store {
    ($Store:ident, $Db:ty) => {
        const _: () = {
            use crate::store::refusals::{filter_sql, ReasonTotal, Refusal, RefusalFilter, RefusalStore, COLUMNS};
            use chrono::{DateTime, Utc};

            #[async_trait::async_trait]
            impl RefusalStore for $Store {
                async fn insert_refusals(&self, rows: &[Refusal]) -> crate::store::Result<()> {
                    let mut tx = self.begin().await?;
                    let sql = Self::sql_owned(format!(
                        "INSERT INTO refusals ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                    ));
                    for r in rows {
                        sqlx::query(&sql)
                            .bind(&r.id)
                            .bind(r.received_at)
                            .bind(&r.route)
                            .bind(&r.path)
                            .bind(&r.response_code)
                            .bind(&r.reason)
                            .bind(&r.message)
                            .bind(r.sender.as_deref())
                            .bind(&r.headers)
                            .bind(r.body.as_deref())
                            .bind(r.body_bytes)
                            .bind(r.dialects.as_ref())
                            .bind(r.diagnosis.as_deref())
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn list_refusals(&self, f: &RefusalFilter) -> crate::store::Result<Vec<Refusal>> {
                    let (filter, placeholders) = filter_sql(f);
                    let sql = Self::sql_owned(format!(
                        "SELECT {COLUMNS} FROM refusals {filter} ORDER BY id DESC LIMIT ${}",
                        placeholders + 1
                    ));
                    let mut q = sqlx::query_as(&sql);
                    for text in [&f.reason, &f.route].into_iter().flatten() {
                        q = q.bind(text);
                    }
                    for time in [f.from, f.to].into_iter().flatten() {
                        q = q.bind(time);
                    }
                    if let Some(id) = &f.before_id {
                        q = q.bind(id);
                    }
                    q = q.bind(f.limit.clamp(1, 1000));
                    Ok(q.fetch_all(&self.pool).await?)
                }

                async fn get_refusal(&self, id: &str) -> crate::store::Result<Option<Refusal>> {
                    let sql = Self::sql_owned(format!("SELECT {COLUMNS} FROM refusals WHERE id = $1"));
                    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
                }

                async fn refusal_totals(
                    &self,
                    from: DateTime<Utc>,
                    to: DateTime<Utc>,
                ) -> crate::store::Result<Vec<ReasonTotal>> {
                    let sql = Self::sql(
                        "SELECT reason, COUNT(*) AS count FROM refusals \
                         WHERE received_at >= $1 AND received_at < $2 \
                         GROUP BY reason ORDER BY count DESC, reason",
                    );
                    Ok(sqlx::query_as(&sql).bind(from).bind(to).fetch_all(&self.pool).await?)
                }

                async fn prune_refusals(&self, before: DateTime<Utc>, keep: i64, limit: i64) -> crate::store::Result<u64> {
                    let limit = limit.max(1);
                    let old = sqlx::query(&Self::sql(
                        "DELETE FROM refusals WHERE id IN \
                         (SELECT id FROM refusals WHERE received_at < $1 ORDER BY received_at LIMIT $2)",
                    ))
                    .bind(before)
                    .bind(limit)
                    .execute(self.writes())
                    .await?
                    .rows_affected();
                    let beyond = sqlx::query(&Self::sql(
                        "DELETE FROM refusals WHERE id IN \
                         (SELECT id FROM refusals ORDER BY id DESC LIMIT $1 OFFSET $2)",
                    ))
                    .bind(limit)
                    .bind(keep.max(0))
                    .execute(self.writes())
                    .await?
                    .rows_affected();
                    Ok(old + beyond)
                }
            }
        };
    };
}
pub(crate) use sql_refusal_store;
