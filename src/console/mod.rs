//! The operator console: server-rendered pages for the merchant's support
//! and finance staff, at `/console` on the internal listener.
//!
//! Pages are built with `maud` (checked at compile time, every value
//! escaped), the stylesheet is compiled into the binary, and nothing is
//! fetched from another host; no page needs JavaScript. Every response
//! carries a strict Content-Security-Policy (no script at all), refuses to
//! be framed, and is not stored by caches; a form posted from another site
//! is refused.
//!
//! - [`session`]: the session cookie, who is signed in, CSRF tokens;
//!   [`sign_in`]: signing in with an API key, and out; [`throttle`]: how
//!   many wrong keys one address may try;
//! - [`view`]: the page shell, navigation, and how money, times and
//!   statuses are shown;
//! - [`overview`], [`payments`], [`payment`], [`flagged`], [`export`]: the pages;
//!   [`listing`]: what the list pages share (filters, pages);
//! - [`refusals`], [`refusal`]: the journal of refused requests, and one
//!   refusal with the signature doctor's diagnosis;
//! - [`endpoints`]: webhook endpoints and their deliveries;
//!   [`endpoint_actions`]: disable/enable, resend what failed, resend an
//!   event; [`pushed`]: a payment's events in its timeline;
//! - [`timeline`]: a payment's audit trail, rendered entry by entry by kind;
//! - [`actions`]: refresh, resolve a flag; [`refund_actions`]: refund, settle a
//!   pending refund (confirmation, then the act).

pub mod actions;
pub mod chart;
pub mod endpoint_actions;
pub mod endpoints;
pub mod export;
pub mod flagged;
pub mod json_text;
pub mod listing;
pub mod overview;
pub mod payment;
pub mod payments;
pub mod pushed;
pub mod refund_actions;
pub mod refusal;
pub mod refusals;
pub mod session;
pub mod sign_in;
pub mod throttle;
pub mod timeline;
pub mod view;

use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use std::sync::Arc;

/// Forms are a few short fields.
const BODY_LIMIT: usize = 16 * 1024;

/// The policy every console response carries: only this origin's stylesheet
/// and images, no script, no frames, forms only to this origin.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/", get(overview::page))
        .route(
            "/console/sign-in",
            get(sign_in::sign_in_page)
                .post(sign_in::sign_in)
                .layer(Extension(Arc::new(throttle::SignInThrottle::default()))),
        )
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/payments", get(payments::page))
        .route("/console/payments/{id}", get(payment::page))
        .route("/console/payments/{id}/refund", post(refund_actions::refund))
        .route("/console/payments/{id}/refresh", post(actions::refresh))
        .route("/console/payments/{id}/resolve", post(actions::resolve))
        .route(
            "/console/payments/{id}/settle-refund",
            post(refund_actions::settle_refund),
        )
        .route("/console/flagged", get(flagged::page))
        .route("/console/refusals", get(refusals::page))
        .route("/console/refusals/{id}", get(refusal::page))
        .route("/console/endpoints", get(endpoints::page))
        .route("/console/endpoints/{id}", get(endpoints::endpoint_page))
        .route("/console/endpoints/{id}/enabled", post(endpoint_actions::set_enabled))
        .route(
            "/console/endpoints/{id}/resend-failed",
            post(endpoint_actions::resend_failed),
        )
        .route("/console/events/{id}/resend", post(endpoint_actions::resend_event))
        .route("/console/export", get(export::page))
        .route("/console/export.csv", get(export::download))
        .route("/console/console.css", get(stylesheet))
        // Only under /console: the rest of the listener keeps its own answers.
        .route("/console/{*rest}", get(view::not_found).post(view::not_found))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            std::time::Duration::from_millis(state.settings.api.body_timeout_ms),
            body_in_time,
        ))
        .layer(middleware::from_fn(same_origin_posts))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("assets/console.css"),
    )
        .into_response()
}

/// A post that the browser says came from another site is refused before
/// anything reads it: the sign-in form has no session to bind a CSRF token
/// to, and the other forms get a second line of defence.
async fn same_origin_posts(req: Request, next: Next) -> Response {
    let cross = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none");
    if req.method() == Method::POST && cross {
        tracing::warn!("console: a form posted from another site was refused");
        return view::error_page(
            StatusCode::FORBIDDEN,
            "This form cannot be accepted",
            "It was sent from another site. Nothing was changed.",
        );
    }
    next.run(req).await
}

/// Reads a form's body within `api.body_timeout_ms`, before any handler
/// (sign-in included) runs: a client trickling a byte a minute would
/// otherwise hold one of the internal listener's connections as long as it
/// liked, and enough of them would shut out the API.
async fn body_in_time(
    axum::extract::State(deadline): axum::extract::State<std::time::Duration>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, bytes.into())).await,
        Ok(Err(_)) => view::error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "This form is too large",
            "Nothing was changed.",
        ),
        Err(_) => {
            let mut resp = view::error_page(
                StatusCode::REQUEST_TIMEOUT,
                "This form did not arrive in time",
                "Nothing was changed.",
            );
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Pages show payment data: nothing is kept by a browser or proxy cache,
    // except the stylesheet, which says so itself.
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}
