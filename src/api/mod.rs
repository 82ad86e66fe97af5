//! The internal listener: metrics and (soon) the merchant REST API.

use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::Router;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(crate::inbound::live))
        .route("/health/ready", get(crate::inbound::ready))
        .with_state(state)
}

async fn metrics(State(st): State<AppState>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], st.metrics.render())
}
