//! The sign-in and sign-out forms. Signing in exchanges an API key for a
//! session ([`session`](super::session)) and leads back to the page that was
//! asked for; wrong keys are limited per client address
//! ([`throttle`](super::throttle)).

use super::session::{cookie, digest, idle, safe_next, secure, session_token, Operator};
use super::throttle::SignInThrottle;
use super::view;
use crate::api::auth::ApiKeys;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    ended: Option<String>,
}

pub async fn sign_in_page(State(st): State<AppState>, q: Result<Query<SignInQuery>, QueryRejection>) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let ended = q
        .ended
        .is_some()
        .then_some("Your session has ended: it was idle too long, or signed out elsewhere. Sign in again to go on.");
    form(&st, StatusCode::OK, ended, q.next.as_deref().and_then(safe_next))
}

fn form(st: &AppState, status: StatusCode, problem: Option<&str>, next: Option<&str>) -> Response {
    let disabled = ApiKeys::new(&st.settings.api).is_empty();
    let body = html! {
        section.sign-in {
            h1 { "Sign in" }
            @if disabled {
                p.notice.bad role="alert" {
                    "The console is disabled: no API key is configured. Set FINPAY_QRIS__API__KEYS and restart."
                }
            } @else {
                p { "Sign in with an API key of this service. Keys with the read role see everything and change nothing." }
                @if let Some(p) = problem {
                    p.notice.bad role="alert" { (p) }
                }
                form method="post" action="/console/sign-in" {
                    @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                    label for="key" { "API key" }
                    input #key type="password" name="key" autocomplete="current-password" required autofocus;
                    button type="submit" { "Sign in" }
                }
            }
        }
    };
    (status, view::page("Sign in", None, view::Nav::None, body)).into_response()
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    key: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn sign_in(
    State(st): State<AppState>,
    Extension(throttle): Extension<Arc<SignInThrottle>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    // Without a peer (a router called in-process) every caller is one client.
    let ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |Extension(ConnectInfo(p))| p.ip());
    if let Err(too_many) = throttle.attempt(ip, std::time::Instant::now()) {
        tracing::warn!(client = %ip, "console sign-in refused: too many attempts from this address");
        let wait = too_many.retry_after.as_secs().max(1);
        let mut resp = view::error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts",
            &format!(
                "Too many wrong keys were tried from your address. Wait {wait} seconds, then sign in again. \
                 Nothing was checked."
            ),
        );
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return resp;
    }
    let Some(caller) = ApiKeys::new(&st.settings.api).caller(&f.key) else {
        tracing::info!("console sign-in refused: not a configured key");
        let problem = Some("That is not a key of this service.");
        return form(
            &st,
            StatusCode::UNAUTHORIZED,
            problem,
            f.next.as_deref().and_then(safe_next),
        );
    };
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let now = crate::store::now();
    if let Err(e) = st.store.purge_sessions(now).await {
        tracing::debug!(error = %e, "expired console sessions not purged");
    }
    if let Err(e) = st
        .store
        .create_session(&digest(&token), &caller.name, &caller.key_id, now, now + idle(&st))
        .await
    {
        return view::store_error(&e);
    }
    throttle.succeeded(ip);
    tracing::info!(actor = %caller.name, role = caller.role.as_str(), "console sign-in");
    let to = f.next.as_deref().and_then(safe_next).unwrap_or("/console");
    let mut resp = Redirect::to(to).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&token, None, secure(&st, &headers)));
    resp
}

#[derive(Deserialize)]
pub struct SignOut {
    csrf: Option<String>,
}

pub async fn sign_out(
    State(st): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Form(f): Form<SignOut>,
) -> Response {
    if let Err(refused) = op.check_csrf(f.csrf.as_deref()) {
        return refused.into_response();
    }
    if let Some(token) = session_token(&headers) {
        if let Err(e) = st.store.delete_session(&digest(&token)).await {
            return view::store_error(&e);
        }
    }
    tracing::info!(actor = %op.name, "console sign-out");
    let mut resp = Redirect::to("/console/sign-in").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie("", Some(0), secure(&st, &headers)));
    resp
}
