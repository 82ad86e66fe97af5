//! Signing in to the console with an API key.
//!
//! The key is exchanged for a session: a random token in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` when a proxy reports TLS or
//! `console.secure_cookie` says so), of which the database keeps only the
//! SHA-256. Each request extends the session; one idle for
//! `console.session_idle_secs` is over. The session remembers the key's
//! name, and the role is read from the configuration on every request.
//!
//! Every state-changing form carries a CSRF token derived from the session
//! token (which a page of another site can neither read nor guess); a form
//! without it, or with another, is refused.

use super::view::{self, Refusal};
use crate::api::auth::{ApiKeys, Role};
use crate::state::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "finpay_console";

/// The signed-in person: the API key's name and role, and the CSRF token
/// their forms carry.
#[derive(Debug, Clone)]
pub struct Operator {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

impl Operator {
    /// Refuses a state-changing form whose CSRF token is missing or wrong.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), Refusal> {
        let ok = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(self.csrf.as_bytes())));
        if ok {
            return Ok(());
        }
        tracing::warn!(actor = %self.name, "console form refused: missing or wrong CSRF token");
        Err(Refusal {
            code: StatusCode::FORBIDDEN,
            title: "This form cannot be accepted",
            detail: "It did not come from a console page of this session (its security token is missing or wrong). \
                     Nothing was changed. Open the page again and resubmit."
                .into(),
        })
    }

    /// Refuses an action to a key of the `read` role.
    pub fn check_operate(&self) -> Result<(), Refusal> {
        if self.role.may_operate() {
            return Ok(());
        }
        Err(Refusal {
            code: StatusCode::FORBIDDEN,
            title: "Not allowed with this key",
            detail: format!(
                "You signed in with the key \u{201c}{}\u{201d}, which has the read role: it shows everything \
                 and changes nothing. Nothing was changed.",
                self.name
            ),
        })
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The CSRF token of a session token.
pub fn csrf_of(token: &str) -> String {
    hex::encode(Sha256::digest(format!("finpay-console-csrf:{token}").as_bytes()))
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn to_sign_in() -> Response {
    Redirect::to("/console/sign-in").into_response()
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let token = session_token(&parts.headers).ok_or_else(to_sign_in)?;
        let now = crate::store::now();
        let until = now + idle(st);
        let name = match st.store.touch_session(&digest(&token), now, until).await {
            Ok(Some(name)) => name,
            Ok(None) => return Err(to_sign_in()),
            Err(e) => return Err(view::store_error(&e)),
        };
        let role = ApiKeys::new(&st.settings.api).role_of(&name).ok_or_else(to_sign_in)?;
        Ok(Operator {
            name,
            role,
            csrf: csrf_of(&token),
        })
    }
}

fn idle(st: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(st.settings.console.session_idle_secs as i64)
}

/// Whether the browser reached us over TLS (through a proxy that says so),
/// or the setting asks for `Secure` cookies anyway.
fn secure(st: &AppState, headers: &HeaderMap) -> bool {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
        || headers
            .get(header::FORWARDED)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    st.settings.console.secure_cookie || forwarded_https
}

fn cookie(value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

pub async fn sign_in_page(State(st): State<AppState>) -> Response {
    form(&st, StatusCode::OK, None)
}

fn form(st: &AppState, status: StatusCode, problem: Option<&str>) -> Response {
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
}

pub async fn sign_in(State(st): State<AppState>, headers: HeaderMap, Form(f): Form<SignIn>) -> Response {
    let Some(caller) = ApiKeys::new(&st.settings.api).caller(&f.key) else {
        tracing::info!("console sign-in refused: not a configured key");
        return form(
            &st,
            StatusCode::UNAUTHORIZED,
            Some("That is not a key of this service."),
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
        .create_session(&digest(&token), &caller.name, now, now + idle(&st))
        .await
    {
        return view::store_error(&e);
    }
    tracing::info!(actor = %caller.name, role = caller.role.as_str(), "console sign-in");
    let mut resp = Redirect::to("/console").into_response();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_session_cookie_is_read() {
        let mut h = HeaderMap::new();
        let token = "ab".repeat(32);
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={token}")).unwrap(),
        );
        assert_eq!(session_token(&h), Some(token));
        h.insert(header::COOKIE, HeaderValue::from_static("finpay_console=<script>"));
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_session() {
        let op = Operator {
            name: "a".into(),
            role: Role::Operate,
            csrf: csrf_of("one"),
        };
        assert!(op.check_csrf(Some(&csrf_of("one"))).is_ok());
        assert!(op.check_csrf(Some(&csrf_of("two"))).is_err());
        assert!(op.check_csrf(None).is_err());
        assert!(op.check_csrf(Some("")).is_err());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_when_asked() {
        let c = cookie("t", None, true);
        let c = c.to_str().unwrap();
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"),
            "{c}"
        );
        assert!(!cookie("t", None, false).to_str().unwrap().contains("Secure"));
    }
}
