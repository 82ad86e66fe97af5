//! The public listener: what Finpay calls (token, notify) and health checks.

pub mod batcher;
pub mod body;
pub mod error;
pub mod headers;
pub mod issued;
pub mod journal;
pub mod notify;
pub mod redact;
pub mod suspect;
pub mod token;
pub mod tokens;

use crate::app::catch_panics;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::time::Duration;

pub fn router(state: AppState) -> Router {
    let cfg = &state.settings.inbound;
    let mut r = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route(&cfg.token_path, post(token::issue).layer(catch_panics(token::on_panic)));
    for p in &cfg.notify_paths {
        if p != &cfg.token_path {
            r = r.route(p, post(notify::receive).layer(catch_panics(notify::on_panic)));
        }
    }
    r.with_state(state)
}

pub async fn live() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the database answers within two seconds.
pub async fn ready(State(st): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(2), st.store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ok", "database": "ok"})),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database not reachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "database": "unreachable"})),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "database": "timeout"})),
        ),
    }
}
