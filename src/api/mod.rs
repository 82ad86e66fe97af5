//! The internal listener: the merchant REST API under `/api/v1` (API keys,
//! problem-details errors, OpenAPI at `/api/v1/openapi.json`), the operator
//! console under `/console` ([`crate::console`]), plus metrics and health,
//! which need no key.
//!
//! - [`create`], [`payments`], [`refunds`], [`refund_resolution`], [`qr`], [`flags`], [`export`]: the handlers;
//! - [`auth`]: API keys and their roles; [`idempotency`]: `Idempotency-Key`;
//! - [`error`], [`extract`]: one error shape for everything, bad input included;
//! - [`model`], [`money`], [`payment_request`]: what goes in and out;
//! - [`upstream`]: the calls to Finpay and to reconciliation.

pub mod audit;
pub mod auth;
pub mod create;
pub mod error;
pub mod events;
pub mod events_model;
pub mod export;
pub mod extract;
pub mod flags;
pub mod idempotency;
pub mod model;
pub mod money;
pub mod openapi;
pub mod openapi_rules;
pub mod payment_request;
pub mod payments;
pub mod qr;
pub mod refund_request;
pub mod refund_resolution;
pub mod refunds;
pub mod refusals;
pub mod time;
pub mod upstream;
pub mod webhook_endpoints;

use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::get;
use axum::{middleware, Extension, Router};
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Request bodies of the API are small JSON objects.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let (api, _) = api_router(state.clone());
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(crate::inbound::live))
        .route("/health/ready", get(crate::inbound::ready))
        .with_state(state.clone())
        .nest("/api/v1", api)
        .merge(crate::console::router(state))
}

/// Every `/api/v1` route, registered together with its OpenAPI operation.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(create::create_payment, payments::list_payments))
        .routes(routes!(payments::get_payment))
        .routes(routes!(payments::list_events))
        .routes(routes!(audit::list_actions))
        .routes(routes!(refunds::create_refund, refunds::list_refunds))
        .routes(routes!(flags::resolve_flag))
        .routes(routes!(refund_resolution::resolve_refund))
        .routes(routes!(export::export_csv))
        .routes(routes!(qr::qr_svg))
        .routes(routes!(qr::qr_png))
        .routes(routes!(refusals::list_refusals))
        .routes(routes!(refusals::get_refusal))
        .routes(routes!(
            webhook_endpoints::create_endpoint,
            webhook_endpoints::list_endpoints
        ))
        .routes(routes!(
            webhook_endpoints::get_endpoint,
            webhook_endpoints::update_endpoint,
            webhook_endpoints::delete_endpoint
        ))
        .routes(routes!(webhook_endpoints::rotate_secret))
        .routes(routes!(webhook_endpoints::resend_failed))
        .routes(routes!(events::list_webhook_events))
        .routes(routes!(events::get_webhook_event))
        .routes(routes!(events::resend_webhook_event))
        .routes(routes!(events::list_changes))
        .routes(routes!(openapi::document))
}

/// The `/api/v1` router (paths relative to it) and its OpenAPI document.
pub fn api_router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = api_routes().split_for_parts();
    openapi::complete(&mut doc);
    let json = doc.to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "OpenAPI document could not be serialized");
        "{}".into()
    });
    let keys = auth::ApiKeys::new(&state.settings.api);
    let router = routes
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(Extension(openapi::Document(Arc::new(json))))
        .layer(Extension(extract::BodyDeadline(Duration::from_millis(
            state.settings.api.body_timeout_ms,
        ))))
        .layer(middleware::from_fn_with_state(keys, auth::require_key))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state);
    (router, doc)
}

async fn metrics(State(st): State<AppState>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    // Pool usage is sampled now, so every scrape sees the present.
    let (in_use, idle) = st.store.pool_usage();
    st.metrics.record_pool(in_use, idle);
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
}
