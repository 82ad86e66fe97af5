//! Reading the journal of refused requests: a filtered page, newest first,
//! and one refusal with the doctor's diagnosis.

use super::error::{ApiError, Problem};
use super::extract::{ApiPath, ApiQuery};
use super::payments::{decode_cursor, encode_cursor, page_limit};
use crate::state::AppState;
use crate::store::refusals::Reason as RefusalReason;
use crate::store::{Refusal, RefusalFilter};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A request the public listener refused with a 4xx.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusalView {
    pub id: String,
    #[serde(serialize_with = "crate::api::time::millis")]
    pub received_at: DateTime<Utc>,
    /// `token` or `notify`.
    #[schema(pattern = "^(token|notify)$")]
    pub route: String,
    /// The path as received, with its query string; each of the query's
    /// values (a gateway's key, say) replaced by a short hash.
    pub path: String,
    /// The SNAP `responseCode` answered.
    #[schema(pattern = "^4[0-9]{6}$")]
    pub response_code: String,
    #[schema(value_type = RefusalReason)]
    pub reason: String,
    /// The SNAP `responseMessage` answered.
    pub message: String,
    /// The sender's IP address.
    pub sender: Option<String>,
    /// The request's headers (lower-case names; an array when sent more than
    /// once). The bearer token is replaced by `Bearer sha256:` and the first 12
    /// hex digits of its SHA-256, any other credential header (a name with
    /// `secret`, `password` or `token` in it, or ending in `key`, except
    /// `x-client-key`) by `sha256:` and 12 hex digits; cookies are left out.
    #[schema(value_type = Object)]
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// The body as received (UTF-8, invalid bytes replaced), up to
    /// `refusals.body_limit_bytes`; null when it could not be read (too
    /// large or too slow).
    pub body: Option<String>,
    /// Bytes received in the body.
    pub body_bytes: i64,
    /// Whether `body` holds less than was received.
    pub body_truncated: bool,
    /// For a refused signature: the known dialects that explain it (empty:
    /// none does). Null when not diagnosed.
    pub dialects: Option<Vec<String>>,
    /// The doctor's explanation, for the sender's developer.
    pub diagnosis: Option<String>,
}

impl From<Refusal> for RefusalView {
    fn from(r: Refusal) -> Self {
        let kept = r.body.as_ref().map_or(0, Vec::len) as i64;
        Self {
            body_truncated: r.body.is_some() && kept < r.body_bytes,
            body: r.body.map(|b| String::from_utf8_lossy(&b).into_owned()),
            id: r.id,
            received_at: r.received_at,
            route: r.route,
            path: r.path,
            response_code: r.response_code,
            reason: r.reason,
            message: r.message,
            sender: r.sender,
            headers: r.headers.0,
            body_bytes: r.body_bytes,
            dialects: r.dialects.map(|d| d.0),
            diagnosis: r.diagnosis,
        }
    }
}

/// One page of refusals, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusalPage {
    pub items: Vec<RefusalView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only refusals for this reason.
    #[param(value_type = Option<RefusalReason>)]
    reason: Option<String>,
    /// Only this route: `token` or `notify`.
    #[param(pattern = "^(token|notify)$")]
    route: Option<String>,
    /// Received at or after (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Received before (RFC 3339, exclusive).
    #[param(format = DateTime)]
    to: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    cursor: Option<String>,
}

/// List refused requests
///
/// Requests to the public listener (Finpay's token and notify calls) answered
/// with a 4xx, newest first, in pages: follow `nextCursor` until it is absent.
#[utoipa::path(
    get,
    path = "/refusals",
    tag = "refusals",
    params(ListParams),
    responses(
        (status = 200, description = "A page of refusals, newest first", body = RefusalPage),
        (status = 400, description = "A bad filter, limit or cursor (see `field`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_refusals(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<RefusalPage>, ApiError> {
    let bad = |field: &str, msg: &str| ApiError::bad_request(msg.to_string()).field(field);
    if let Some(r) = q.reason.as_deref().filter(|r| RefusalReason::parse(r).is_none()) {
        return Err(bad("reason", &format!("unknown reason {r:?}")));
    }
    if q.route.as_deref().is_some_and(|r| r != "token" && r != "notify") {
        return Err(bad("route", "must be token or notify"));
    }
    let limit = page_limit(q.limit.as_deref())?;
    let filter = RefusalFilter {
        reason: q.reason,
        route: q.route,
        from: super::time::instant("from", q.from.as_deref())?,
        to: super::time::instant("to", q.to.as_deref())?,
        before_id: q
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c).ok_or_else(|| bad("cursor", "not a cursor this API gave")))
            .transpose()?,
        // One more than asked: whether it comes back says if there is a next page.
        limit: limit + 1,
    };
    let mut rows = st.store.list_refusals(&filter).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().and_then(|r| encode_cursor(&r.id))
    } else {
        None
    };
    Ok(Json(RefusalPage {
        items: rows.into_iter().map(RefusalView::from).collect(),
        next_cursor,
    }))
}

/// Get a refused request
///
/// With the headers as received (credentials removed), the body, and for a
/// refused signature the doctor's diagnosis.
#[utoipa::path(
    get,
    path = "/refusals/{id}",
    tag = "refusals",
    params(("id" = String, Path, description = "The refusal's id; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses(
        (status = 200, description = "The refusal", body = RefusalView),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_refusal(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RefusalView>, ApiError> {
    ApiError::no_control_characters("id", &id)?;
    let not_found = || {
        ApiError::new(StatusCode::NOT_FOUND, "refusal-not-found", "Refusal not found")
            .detail(format!("no refusal has the id {id:?}"))
    };
    // Ids are UUIDs: anything else names no refusal.
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(not_found());
    }
    let row = st.store.get_refusal(&id).await?.ok_or_else(not_found)?;
    Ok(Json(RefusalView::from(row)))
}
