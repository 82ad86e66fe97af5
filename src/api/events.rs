//! Payment events: list and read them (with every delivery attempt), resend
//! one, and the changes feed for a consumer catching up or pulling.

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::events_model::*;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::domain::EventType;
use crate::state::AppState;
use crate::store::events::EventFilter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

fn bad(field: &str, msg: &str) -> ApiError {
    ApiError::bad_request(msg.to_string()).field(field)
}

fn limit(l: Option<&str>) -> Result<i64, ApiError> {
    match l {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| bad("limit", "must be a whole number from 1 to 200")),
    }
}

/// The events list pages by event id (`evt_` and 32 hex digits, in creation order).
fn event_id_cursor(c: &str) -> Result<(), ApiError> {
    let hex = c.strip_prefix("evt_").unwrap_or_default();
    if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(bad("cursor", "not a cursor this API gave"))
    }
}

/// The changes feed's cursor: a position (`^[0-9]{1,18}$`, as documented).
fn changes_cursor(c: &str) -> bool {
    (1..=18).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit())
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(format!("no event {id:?}"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only events of this type (`payment.paid`, …).
    #[serde(rename = "type")]
    #[param(
        pattern = "^(payment\\.(pending|paid|failed|expired|cancelled|refunded|flagged|flag_resolved)|refund\\.(pending|succeeded|failed)|endpoint\\.disabled)$"
    )]
    event_type: Option<String>,
    /// Only events about this payment (our id, or its partnerReferenceNo).
    #[param(pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    payment_id: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(format = DateTime)]
    created_from: Option<String>,
    /// Created before (RFC 3339, exclusive).
    #[param(format = DateTime)]
    created_to: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    #[param(pattern = "^evt_[0-9a-f]{32}$")]
    cursor: Option<String>,
}

/// List events
///
/// Newest first, in pages: follow `nextCursor` until it is absent. "Newest"
/// is the order events were written (their ids); `createdAt` is the time of
/// the change they tell, which for notifications stored together can differ
/// by the time a batch waited, so neighbours may show it out of order. With
/// `createdFrom` or `createdTo` (and no `paymentId`), "newest" is by
/// `createdAt`, then id.
#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    params(ListParams),
    responses(
        (status = 200, description = "A page of events, newest first", body = WebhookEventPage),
        (status = 400, description = "A bad filter, limit or cursor (see `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The cursor names no event (`cursor-not-found`): list again without it", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_webhook_events(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<WebhookEventPage>, ApiError> {
    if q.event_type.as_deref().is_some_and(|t| EventType::parse(t).is_none()) {
        return Err(bad("type", "unknown event type"));
    }
    if q.payment_id.as_deref().is_some_and(|p| p.chars().any(char::is_control)) {
        return Err(bad("paymentId", "must not contain control characters"));
    }
    let limit = limit(q.limit.as_deref())?;
    // A partnerReferenceNo names the payment as on the other payment routes.
    let payment_id = match q.payment_id {
        Some(p) => Some(super::payments::lookup(&st, &p).await?.map_or(p, |payment| payment.id)),
        None => None,
    };
    let filter = EventFilter {
        event_type: q.event_type,
        payment_id,
        created_from: super::time::instant("createdFrom", q.created_from.as_deref())?,
        created_to: super::time::instant("createdTo", q.created_to.as_deref())?,
        before_id: q.cursor.map(|c| event_id_cursor(&c).map(|()| c)).transpose()?,
        limit: limit + 1,
    };
    // As on the payments list: a cursor naming no event would otherwise end a
    // list by time at once, and list everything from the top without one.
    if let Some(id) = &filter.before_id {
        if st.store.get_outbox_event(id).await?.is_none() {
            return Err(ApiError::cursor_not_found("event"));
        }
    }
    let mut rows = st.store.list_outbox_events(&filter).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok(Json(WebhookEventPage {
        next_cursor: if more { rows.last().map(|e| e.id.clone()) } else { None },
        items: rows.iter().map(WebhookEventView::from).collect(),
    }))
}

/// Get an event with its deliveries
///
/// Every delivery (one per endpoint) with every attempt: time, status,
/// latency and the start of the answer.
#[utoipa::path(
    get,
    path = "/events/{id}",
    tag = "events",
    params(("id" = String, Path, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses(
        (status = 200, description = "The event", body = WebhookEventDetail),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_webhook_event(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookEventDetail>, ApiError> {
    ApiError::no_control_characters("id", &id)?;
    if id.len() > 128 {
        return Err(not_found(&id));
    }
    let e = st.store.get_outbox_event(&id).await?.ok_or_else(|| not_found(&id))?;
    let (deliveries, attempts) = st.store.deliveries_of(&id).await?;
    Ok(Json(WebhookEventDetail::new(&e, &deliveries, &attempts)))
}

/// Resend an event
///
/// To one endpoint, or to every enabled endpoint subscribed to its type,
/// from now, with a fresh retry schedule. A delivery being sent at this
/// moment is sent again once that attempt's lease ends. A disabled endpoint
/// is refused (409): enable it first.
#[utoipa::path(
    post,
    path = "/events/{id}/resend",
    tag = "events",
    params(("id" = String, Path, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    request_body = ResendRequest,
    responses(
        (status = 202, description = "Scheduled", body = Scheduled),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event or endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint `endpointId` is disabled: enable it first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`endpointId` is not a string", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn resend_webhook_event(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ResendRequest>,
) -> Result<(StatusCode, Json<Scheduled>), ApiError> {
    ApiError::no_control_characters("id", &id)?;
    if id.len() > 128 {
        return Err(not_found(&id));
    }
    let Some(event) = st.store.get_outbox_event(&id).await? else {
        return Err(not_found(&id));
    };
    if let Some(endpoint) = &body.endpoint_id {
        let found = match endpoint.chars().any(char::is_control) {
            true => None,
            false => st.store.get_endpoint(endpoint).await?,
        };
        let Some(found) = found else {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not found")
                .detail(format!("no webhook endpoint {endpoint:?}"))
                .field("endpointId"));
        };
        if !found.enabled {
            return Err(super::webhook_endpoints::disabled(endpoint).field("endpointId"));
        }
    }
    // A person's action on a payment is on record, with the key's name, before it is carried out.
    if let Some(payment_id) = &event.payment_id {
        let detail = serde_json::json!({ "event": event.id, "type": event.event_type, "endpoint": body.endpoint_id });
        super::audit::record(&st, payment_id, &caller.name, "resend_event", detail).await?;
    }
    let scheduled = st
        .store
        .resend_event(&id, body.endpoint_id.as_deref(), crate::store::now())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Scheduled { scheduled })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// `nextCursor` of the previous read; absent: from the first event. A
    /// position past every event was never given by this database: 409.
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

/// What changed since a cursor
///
/// Every event (each holding the payment's state at that change) after the
/// cursor, a payment's in `sequence` order. An event committed after a read
/// is listed after everything that read returned; one whose transaction is
/// still running when you read is returned by a later read, never skipped:
/// keep the cursor and read again.
#[utoipa::path(
    get,
    path = "/changes",
    tag = "events",
    params(ChangesParams),
    responses(
        (status = 200, description = "The next changes", body = ChangesPageView),
        (status = 400, description = "A bad limit or cursor (see `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The cursor is past every event: this database never gave it (another deployment's, or a database restored from an older backup)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_changes(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ChangesParams>,
) -> Result<Json<ChangesPageView>, ApiError> {
    let limit = limit(q.limit.as_deref())?;
    if q.cursor.as_deref().is_some_and(|c| !changes_cursor(c)) {
        return Err(bad("cursor", "not a cursor this API gave"));
    }
    let page = match st.store.changes(q.cursor.as_deref(), limit).await {
        Err(crate::store::StoreError::Invalid(_)) => return Err(bad("cursor", "not a cursor this API gave")),
        Err(crate::store::StoreError::Conflict(why)) => {
            return Err(ApiError::conflict("cursor-ahead", "Cursor past every event", why).field("cursor"))
        }
        other => other?,
    };
    Ok(Json(ChangesPageView {
        items: page.items.iter().map(WebhookEventView::from).collect(),
        next_cursor: page.cursor,
    }))
}
