//! Webhook endpoints: where payment events are sent. Create (the answer
//! holds the signing secret, shown only then and to a retry with its
//! `Idempotency-Key`), list, read, update (which also
//! disables and enables), delete, rotate the secret (the old one signs
//! alongside for `events.rotation_overlap_secs`), and resend what failed.

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::events_model::*;
use super::extract::{ApiJson, ApiPath};
use super::idempotency::{self, Begin, Reply};
use crate::domain::EventType;
use crate::events::signing::new_secret;
use crate::events::target::check_url;
use crate::state::AppState;
use crate::store::endpoints::{Endpoint, EndpointUpdate, NewEndpoint};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::events::MAX_OVERLAP_SECS;

fn valid_url(st: &AppState, url: &str) -> Result<String, ApiError> {
    check_url(url, &st.settings.events)
        .map(|_| url.to_string())
        .map_err(|e| ApiError::validation("url", format!("url {e}")))
}

/// Enabling an endpoint whose URL the settings refuse now (say, http after
/// `EVENTS__ALLOW_HTTP` was turned off) would only fail every attempt, and
/// one removed from the configuration is enabled by configuring it again:
/// the API and the console both ask this first.
pub fn may_enable(st: &AppState, endpoint: &Endpoint) -> Result<(), ApiError> {
    still_configured(st, endpoint)?;
    valid_url(st, &endpoint.url).map(|_| ())
}

/// An endpoint removed from the configuration would sign with a secret
/// nobody configures any more: configuring it again enables it.
fn still_configured(st: &AppState, endpoint: &Endpoint) -> Result<(), ApiError> {
    if endpoint.source != "config" || st.settings.events.endpoint_url.is_some() {
        return Ok(());
    }
    Err(ApiError::conflict(
        "configured-endpoint",
        "Endpoint from the configuration",
        "it was removed from the configuration: set FINPAY_QRIS__EVENTS__ENDPOINT_URL again, or delete it",
    )
    .field("enabled"))
}

fn valid_types(types: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let mut types = types.unwrap_or_default();
    if let Some(bad) = types.iter().find(|t| EventType::parse(t).is_none()) {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        return Err(ApiError::validation(
            "eventTypes",
            format!("unknown event type {bad:?}; known: {}", known.join(", ")),
        ));
    }
    types.sort();
    types.dedup();
    Ok(types)
}

fn valid_description(d: Option<String>) -> Result<Option<String>, ApiError> {
    match d {
        Some(d) if d.chars().count() > 500 || d.chars().any(char::is_control) => Err(ApiError::validation(
            "description",
            "at most 500 characters, none of them control characters",
        )),
        other => Ok(other),
    }
}

/// What the configuration sets of its endpoint changes only there: a restart
/// would put it back (a new secret there signs alongside the old one for
/// `events.rotation_overlap_secs`), and it receives every event type.
fn only_in_the_configuration(endpoint: &Endpoint, field: &str, what: &str) -> Result<(), ApiError> {
    if endpoint.source != "config" {
        return Ok(());
    }
    Err(ApiError::conflict(
        "configured-endpoint",
        "Endpoint from the configuration",
        format!("its {what}"),
    )
    .field(field))
}

async fn find(st: &AppState, id: &str) -> Result<Endpoint, ApiError> {
    possible_id(id)?;
    st.store.get_endpoint(id).await?.ok_or_else(|| not_found(id))
}

/// A control character in an id is the client's mistake (and PostgreSQL
/// would refuse a NUL byte); no endpoint has an id over 128 characters.
fn possible_id(id: &str) -> Result<(), ApiError> {
    ApiError::no_control_characters("id", id)?;
    if id.len() > 128 {
        return Err(not_found(id));
    }
    Ok(())
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(format!("no webhook endpoint {id:?}"))
}

/// Create a webhook endpoint
///
/// Events of the subscribed types are POSTed to `url`, signed as Standard
/// Webhooks v1 with the `secret` in the answer, which is shown only now (and
/// to a retry with the same `Idempotency-Key`).
/// Events raised before the endpoint existed are not sent unless resent.
#[utoipa::path(
    post,
    path = "/webhook-endpoints",
    tag = "events",
    request_body = CreateEndpointRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body → the \
        same endpoint and secret, not a second endpoint, for 24 hours after the first request. 1–255 visible ASCII characters", min_length = 1, max_length = 255,
        pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 201, description = "Created; keep the secret", body = EndpointWithSecret),
        (status = 400, description = "Unreadable body or header", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The same Idempotency-Key is in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid (see `field`), or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_endpoint(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateEndpointRequest>,
) -> Result<Response, ApiError> {
    let new = NewEndpoint {
        id: uuid::Uuid::now_v7().to_string(),
        url: valid_url(&st, &body.url)?,
        description: valid_description(body.description)?,
        event_types: valid_types(body.event_types)?,
        secret: new_secret(),
        created_at: crate::store::now(),
    };
    // A retry after a lost answer gets the first answer (its secret too, kept
    // with the key as the endpoint keeps it), not a second endpoint; a retry
    // of a request that ended before answering (the process died) gets the
    // endpoint it made, named on the key in the endpoint's own transaction.
    let key = idempotency::key_from(&headers, &caller, "POST /api/v1/webhook-endpoints")?;
    let mut made = None;
    if let Some(k) = &key {
        let canonical = serde_json::json!([new.url, new.description, new.event_types]);
        match idempotency::begin(&st, k, &idempotency::fingerprint(&canonical)).await? {
            Begin::Answer(first) => return Ok(first),
            Begin::Proceed { resource_id: Some(id) } => made = st.store.get_endpoint(&id).await?,
            Begin::Proceed { resource_id: None } => {}
        }
    }
    let created = match made {
        Some(e) => Ok(e),
        None => st.store.create_endpoint(&new, key.as_ref()).await,
    };
    let reply = match created {
        Ok(e) => Reply::json(
            StatusCode::CREATED,
            &EndpointWithSecret {
                endpoint: (&e).into(),
                secret: e.secret.clone(),
            },
        ),
        Err(e) => Reply::error(e.into(), false),
    };
    if let Some(k) = &key {
        idempotency::finish(&st, k, &reply).await;
    }
    Ok(reply.into_response())
}

/// List webhook endpoints
#[utoipa::path(
    get,
    path = "/webhook-endpoints",
    tag = "events",
    responses((status = 200, description = "Every endpoint", body = EndpointList)),
    security(("api_key" = []))
)]
pub async fn list_endpoints(State(st): State<AppState>) -> Result<Json<EndpointList>, ApiError> {
    let items = st.store.list_endpoints().await?;
    Ok(Json(EndpointList {
        items: items.iter().map(EndpointView::from).collect(),
    }))
}

/// Get a webhook endpoint
#[utoipa::path(
    get,
    path = "/webhook-endpoints/{id}",
    tag = "events",
    params(("id" = String, Path, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_endpoint(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EndpointView>, ApiError> {
    Ok(Json((&find(&st, &id).await?).into()))
}

/// Update, disable or enable a webhook endpoint
#[utoipa::path(
    patch,
    path = "/webhook-endpoints/{id}",
    tag = "events",
    params(("id" = String, Path, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    request_body = UpdateEndpointRequest,
    responses(
        (status = 200, description = "The endpoint as updated", body = EndpointView),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A new `url`, or `eventTypes` other than every type, for the endpoint from the configuration (see `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid (see `field`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn update_endpoint(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateEndpointRequest>,
) -> Result<Json<EndpointView>, ApiError> {
    let endpoint = find(&st, &id).await?;
    if body.url.as_deref().is_some_and(|u| u != endpoint.url) {
        only_in_the_configuration(
            &endpoint,
            "url",
            "URL is FINPAY_QRIS__EVENTS__ENDPOINT_URL: change it there",
        )?;
    }
    if body.event_types.as_ref().is_some_and(|t| !t.is_empty()) {
        only_in_the_configuration(
            &endpoint,
            "eventTypes",
            "event types are every type: subscribe another endpoint",
        )?;
    }
    match (body.enabled, &body.url) {
        (Some(true), None) => may_enable(&st, &endpoint)?,
        // The new URL is checked below; the configuration's word holds whatever the URL.
        (Some(true), Some(_)) => still_configured(&st, &endpoint)?,
        _ => {}
    }
    let update = EndpointUpdate {
        url: body.url.map(|u| valid_url(&st, &u)).transpose()?,
        description: body.description.map(valid_description).transpose()?,
        event_types: body.event_types.map(|t| valid_types(Some(t))).transpose()?,
        enabled: body.enabled,
        by: Some(caller.name),
    };
    let e = st
        .store
        .update_endpoint(&id, &update, crate::store::now())
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json((&e).into()))
}

/// Delete a webhook endpoint
///
/// Its deliveries and their attempts go with it.
#[utoipa::path(
    delete,
    path = "/webhook-endpoints/{id}",
    tag = "events",
    params(("id" = String, Path, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn delete_endpoint(State(st): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    possible_id(&id)?;
    if st.store.delete_endpoint(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// Rotate a webhook endpoint's secret
///
/// The answer holds the new secret (shown only now); the previous one keeps
/// signing alongside (a second signature in `webhook-signature`) until
/// `previousSecretUntil` (send `{}` for the configured period). Send an
/// `Idempotency-Key`: a retry after a lost answer then gets the same new
/// secret instead of rotating again, which would end the overlap of the
/// secret the receiver still holds.
#[utoipa::path(
    post,
    path = "/webhook-endpoints/{id}/rotate-secret",
    tag = "events",
    params(
        ("id" = String, Path, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body → the \
            same new secret, not a second rotation, for 24 hours after the first request. 1–255 visible ASCII characters",
            min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$"),
    ),
    request_body = RotateRequest,
    responses(
        (status = 200, description = "Rotated; keep the new secret", body = EndpointWithSecret),
        (status = 400, description = "A control character in `id`, or a malformed Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint comes from the configuration: change its secret there; or the same Idempotency-Key is in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`previousSecretSeconds` is out of range, or the Idempotency-Key was used with another body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn rotate_secret(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RotateRequest>,
) -> Result<Response, ApiError> {
    let overlap = match body.previous_secret_seconds.map(i64::try_from) {
        None => st.settings.events.rotation_overlap_secs as i64,
        Some(Ok(s)) if (0..=MAX_OVERLAP_SECS).contains(&s) => s,
        Some(_) => {
            return Err(ApiError::validation(
                "previousSecretSeconds",
                format!("must be from 0 to {MAX_OVERLAP_SECS}"),
            ))
        }
    };
    only_in_the_configuration(
        &find(&st, &id).await?,
        "secret",
        "secret is FINPAY_QRIS__EVENTS__ENDPOINT_SECRET: change it there",
    )?;
    let key = idempotency::key_from(
        &headers,
        &caller,
        &format!("POST /api/v1/webhook-endpoints/{id}/rotate-secret"),
    )?;
    // A retry of a rotation that ended before answering (the client went
    // away, the process died) finds the key naming the endpoint, and gets the
    // secret that rotation made rather than a second rotation.
    let mut done = None;
    if let Some(k) = &key {
        let canonical = serde_json::json!([id, body.previous_secret_seconds]);
        match idempotency::begin(&st, k, &idempotency::fingerprint(&canonical)).await? {
            Begin::Answer(first) => return Ok(first),
            Begin::Proceed { resource_id: Some(_) } => done = st.store.get_endpoint(&id).await?,
            Begin::Proceed { resource_id: None } => {}
        }
    }
    let rotated = match done {
        Some(e) => Ok(Some(e)),
        None => {
            let now = crate::store::now();
            let until = now + chrono::Duration::seconds(overlap);
            st.store
                .rotate_secret(&id, &new_secret(), until, now, key.as_ref())
                .await
        }
    };
    let reply = match rotated {
        Ok(Some(e)) => Reply::json(
            StatusCode::OK,
            &EndpointWithSecret {
                endpoint: (&e).into(),
                secret: e.secret.clone(),
            },
        ),
        Ok(None) => Reply::error(not_found(&id), false),
        Err(e) => Reply::error(e.into(), false),
    };
    if let Some(k) = &key {
        idempotency::finish(&st, k, &reply).await;
    }
    Ok(reply.into_response())
}

/// Resend what failed for an endpoint
///
/// Every delivery to this endpoint that failed (after its last attempt), of
/// events created at or after `since`, is sent again from now. A disabled
/// endpoint is refused (409): enable it first (what is still pending for it
/// then goes out on its own).
#[utoipa::path(
    post,
    path = "/webhook-endpoints/{id}/resend-failed",
    tag = "events",
    params(("id" = String, Path, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$")),
    request_body = ResendFailedRequest,
    responses(
        (status = 202, description = "Scheduled", body = Scheduled),
        (status = 400, description = "A control character in `id`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled: enable it first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`since` is not an RFC 3339 time in years 1 to 9999", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn resend_failed(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ResendFailedRequest>,
) -> Result<(StatusCode, Json<Scheduled>), ApiError> {
    let since = super::time::utc_instant(&body.since)
        .ok_or_else(|| ApiError::validation("since", "must be an RFC 3339 time in years 1 to 9999"))?;
    if !find(&st, &id).await?.enabled {
        return Err(disabled(&id));
    }
    let scheduled = st.store.resend_failed(&id, since, crate::store::now()).await?;
    Ok((StatusCode::ACCEPTED, Json(Scheduled { scheduled })))
}

/// A resend to a disabled endpoint would wait unseen: refused.
pub(super) fn disabled(id: &str) -> ApiError {
    ApiError::conflict(
        "endpoint-disabled",
        "Endpoint disabled",
        format!("webhook endpoint {id:?} is disabled: enable it (PATCH with \"enabled\": true), then resend"),
    )
}
