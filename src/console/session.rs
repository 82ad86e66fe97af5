//! Who is signed in to the console.
//!
//! An API key is exchanged for a session ([`sign_in`](super::sign_in)): a
//! random token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when a
//! proxy reports TLS or `console.secure_cookie` says so), of which the
//! database keeps only the SHA-256. Each request extends the session; one idle for
//! `console.session_idle_secs` is over. The session remembers the key's
//! name, and the role is read from the configuration on every request.
//!
//! Every state-changing form carries a CSRF token derived from the session
//! token (which a page of another site can neither read nor guess); a form
//! without it, or with another, is refused.

use super::view::{self, Refusal};
use crate::api::auth::{ApiKeys, Role};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
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

pub(super) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The CSRF token of a session token.
pub fn csrf_of(token: &str) -> String {
    hex::encode(Sha256::digest(format!("finpay-console-csrf:{token}").as_bytes()))
}

pub(super) fn session_token(headers: &HeaderMap) -> Option<String> {
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

/// To the sign-in page, which then leads back to the page asked for (a
/// link from a ticket to a payment works after signing in); `ended` when a
/// session was presented but is over.
fn to_sign_in(parts: &Parts, ended: bool) -> Response {
    let mut query = Vec::new();
    if parts.method == Method::GET && parts.uri.path() != "/console" {
        if let Some(pq) = parts.uri.path_and_query() {
            query.push(format!("next={}", super::payments::urlencode(pq.as_str())));
        }
    }
    if ended {
        query.push("ended=1".to_string());
    }
    let to = if query.is_empty() {
        "/console/sign-in".to_string()
    } else {
        format!("/console/sign-in?{}", query.join("&"))
    };
    Redirect::to(&to).into_response()
}

/// Where signing in may lead: a console page, nothing else.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with("/console")
        && !next.starts_with("/console/sign-")
        && !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 2000;
    ok.then_some(next)
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let token = session_token(&parts.headers).ok_or_else(|| to_sign_in(parts, false))?;
        let now = crate::store::now();
        let until = now + idle(st);
        let (name, key_id) = match st.store.touch_session(&digest(&token), now, until).await {
            Ok(Some(key)) => key,
            Ok(None) => return Err(to_sign_in(parts, true)),
            Err(e) => return Err(view::store_error(&e)),
        };
        let Some(role) = ApiKeys::new(&st.settings.api).role_of(&key_id, &name) else {
            return Err(to_sign_in(parts, true));
        };
        Ok(Operator {
            name,
            role,
            csrf: csrf_of(&token),
        })
    }
}

pub(super) fn idle(st: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(st.settings.console.session_idle_secs as i64)
}

/// Whether the browser reached us over TLS (through a proxy that says so),
/// or the setting asks for `Secure` cookies anyway.
pub(super) fn secure(st: &AppState, headers: &HeaderMap) -> bool {
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

pub(super) fn cookie(value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut c = format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
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
    fn signing_in_leads_back_only_to_console_pages() {
        assert_eq!(
            safe_next("/console/payments?status=paid"),
            Some("/console/payments?status=paid")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/console//evil",
            "/consolex\\evil",
            "/api/v1/payments",
            "/console/sign-out",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
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
