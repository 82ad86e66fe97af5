//! Reading payments: one (optionally refreshed from Finpay), a filtered
//! page, and a payment's audit trail.

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::extract::{ApiPath, ApiQuery};
use super::model::{EventList, EventView, PaymentPage, PaymentView};
use super::upstream;
use crate::domain::PaymentStatus;
use crate::state::AppState;
use crate::store::{Payment, PaymentFilter};
use axum::extract::State;
use axum::{Extension, Json};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use utoipa::IntoParams;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// The payment named by our id or its `partnerReferenceNo`, or 404.
pub async fn find(st: &AppState, id: &str) -> Result<Payment, ApiError> {
    ApiError::no_control_characters("id", id)?;
    lookup(st, id).await?.ok_or_else(|| ApiError::payment_not_found(id))
}

/// The payment `id` names (our id, or its partnerReferenceNo), if any.
pub async fn lookup(st: &AppState, id: &str) -> Result<Option<Payment>, ApiError> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    Ok(st.store.get_payment(id).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// `true`: ask Finpay now (the reconciliation code path) before answering
    /// (a key of the `operate` role only; recorded in the audit trail).
    #[param(value_type = Option<bool>)]
    refresh: Option<String>,
}

/// Get a payment
///
/// By our `id` or by its `partnerReferenceNo`.
#[utoipa::path(
    get,
    path = "/payments/{id}",
    tag = "payments",
    params(("id" = String, Path, description = "Our id, or the partnerReferenceNo; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"), GetParams),
    responses(
        (status = 200, description = "The payment", body = PaymentView),
        (status = 400, description = "Bad `refresh` value, or a control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`refresh=true` with a key of the `read` role", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A refresh of this payment is already running", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Finpay failed the refresh", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Finpay is not configured (refresh)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Finpay did not answer the refresh in time", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_payment(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<GetParams>,
) -> Result<Json<PaymentView>, ApiError> {
    let refresh = match q.refresh.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::bad_request("refresh must be true or false").field("refresh")),
    };
    let mut payment = find(&st, &id).await?;
    if refresh {
        if !caller.role.may_operate() {
            return Err(ApiError::forbidden(&caller));
        }
        super::audit::record(&st, &payment.id, &caller.name, "refresh", serde_json::json!({})).await?;
        payment = upstream::refresh(&st, &payment).await?;
    }
    Ok(Json(PaymentView::from(&payment)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only payments in this status.
    #[param(value_type = Option<super::model::Status>)]
    status: Option<String>,
    /// Created at or after (RFC 3339).
    #[serde(alias = "created_from")]
    #[param(format = DateTime)]
    created_from: Option<String>,
    /// Created before (RFC 3339, exclusive).
    #[serde(alias = "created_to")]
    #[param(format = DateTime)]
    created_to: Option<String>,
    /// Exactly this partnerReferenceNo or Finpay referenceNo (no control characters).
    #[param(pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    reference: Option<String>,
    /// Exactly this amount, a decimal string like a payment's amount.
    #[param(example = "25000.00", pattern = "^[0-9]{1,14}(\\.[0-9]{2})?$")]
    amount: Option<String>,
    /// `true`: only the payments waiting for a person (their `flagged` is
    /// set until someone resolves it); `false`: only the others.
    #[param(value_type = Option<bool>)]
    flagged: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    cursor: Option<String>,
}

/// List payments
///
/// Newest first, in pages: follow `nextCursor` until it is absent. Pages are
/// keyed on the last payment of the previous page (its id and creation
/// time), so payments created while you page never shift the pages: nothing
/// is skipped or repeated.
#[utoipa::path(
    get,
    path = "/payments",
    tag = "payments",
    params(ListParams),
    responses(
        (status = 200, description = "A page of payments, newest first", body = PaymentPage),
        (status = 400, description = "A bad filter, limit, cursor or reference (see `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The cursor names no payment (one kept from another database, say): list again without it", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_payments(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<PaymentPage>, ApiError> {
    let bad = |field: &str, msg: &str| ApiError::bad_request(msg.to_string()).field(field);
    let status = q
        .status
        .as_deref()
        .map(|s| PaymentStatus::parse(s).ok_or_else(|| bad("status", "unknown status")))
        .transpose()?;
    let limit = page_limit(q.limit.as_deref())?;
    let before_id = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor(c).ok_or_else(|| bad("cursor", "not a cursor this API gave")))
        .transpose()?;
    let filter = PaymentFilter {
        status,
        created_from: super::time::instant("createdFrom", q.created_from.as_deref())?,
        created_to: super::time::instant("createdTo", q.created_to.as_deref())?,
        reference: q
            .reference
            .filter(|r| !r.is_empty())
            .map(|r| ApiError::no_control_characters("reference", &r).map(|()| r))
            .transpose()?,
        amount_minor: q
            .amount
            .as_deref()
            .map(|a| super::money::parse_minor(a).map_err(|m| bad("amount", m)))
            .transpose()?,
        flagged: match q.flagged.as_deref() {
            None => None,
            Some("false") => Some(false),
            Some("true") => Some(true),
            Some(_) => return Err(bad("flagged", "must be true or false")),
        },
        before_id,
        // One more than asked: whether it comes back says if there is a next page.
        limit: limit + 1,
    };
    // A cursor names the last payment of a page: one naming none (made up, or
    // kept from another database) would otherwise end a list by time silently.
    if let Some(id) = &filter.before_id {
        if st.store.get_payment(id).await?.is_none_or(|p| p.id != *id) {
            return Err(ApiError::cursor_not_found("payment"));
        }
    }
    // No payment has a NUL in a reference (PostgreSQL would refuse the query).
    if filter.reference.as_deref().is_some_and(|r| r.contains('\0')) {
        return Ok(Json(PaymentPage {
            items: Vec::new(),
            next_cursor: None,
        }));
    }
    let mut rows = st.store.list_payments(&filter).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().and_then(|p| encode_cursor(&p.id))
    } else {
        None
    };
    Ok(Json(PaymentPage {
        items: rows.iter().map(PaymentView::from).collect(),
        next_cursor,
    }))
}

/// A page size from the query: 1 to 200, 50 when not given.
pub(super) fn page_limit(limit: Option<&str>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| ApiError::bad_request("must be a whole number from 1 to 200").field("limit")),
    }
}

/// The cursor is the last id of the page, opaque to clients: its 16 bytes
/// in base64url, so that every string of the documented pattern is one
/// (22 characters, the last carrying 2 bits).
pub(crate) fn encode_cursor(id: &str) -> Option<String> {
    uuid::Uuid::parse_str(id)
        .ok()
        .map(|u| URL_SAFE_NO_PAD.encode(u.as_bytes()))
}

pub(crate) fn decode_cursor(c: &str) -> Option<String> {
    let bytes: [u8; 16] = URL_SAFE_NO_PAD.decode(c).ok()?.try_into().ok()?;
    Some(uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
}

/// A payment's audit trail
///
/// Oldest first: creation, QR generation, notifications received (with how
/// they were verified), reconciliation attempts, refunds and status changes.
#[utoipa::path(
    get,
    path = "/payments/{id}/events",
    tag = "payments",
    params(("id" = String, Path, description = "Our id, or the partnerReferenceNo; no control characters", pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses(
        (status = 200, description = "The audit trail, oldest first", body = EventList),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_events(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EventList>, ApiError> {
    let payment = find(&st, &id).await?;
    let events = st.store.payment_events(&payment.id).await?;
    Ok(Json(EventList {
        items: events.iter().map(EventView::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = uuid::Uuid::now_v7().to_string();
        let cursor = encode_cursor(&id).unwrap();
        assert_eq!(cursor.len(), 22);
        assert_eq!(decode_cursor(&cursor), Some(id));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("x' OR 1=1 --")), None);
        // The last character carries 2 bits: one with more set is no cursor.
        assert_eq!(decode_cursor(&format!("{}B", &cursor[..21])), None);
        assert!(decode_cursor(&format!("{}w", &cursor[..21])).is_some());
    }
}
