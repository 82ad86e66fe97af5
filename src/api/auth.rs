//! API keys: `Authorization: Bearer <key>`, checked against every configured
//! key in constant time. The keys' SHA-256 digests are compared, so neither
//! the content nor the length of a key leaks through timing.
//!
//! Each key has a name (what the audit trail records) and a role: a `read`
//! key may only read; any other method is answered 403, whatever the route,
//! so that a new state-changing endpoint cannot forget the check.
//!
//! With no key configured the API answers 503 (never runs open); the listener
//! still serves health and metrics.

use super::error::ApiError;
pub use crate::config::api_keys::Role;
use crate::config::api_keys::{api_keys, ApiKey};
use crate::config::ApiSettings;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::{ConditionallySelectable, ConstantTimeEq};

struct Entry {
    digest: [u8; 32],
    name: String,
    role: Role,
}

/// The configured keys, as digests with their names and roles.
#[derive(Clone)]
pub struct ApiKeys(Arc<Vec<Entry>>);

impl ApiKeys {
    /// The keys of validated settings (an invalid entry, refused at start-up,
    /// is left out).
    pub fn new(api: &ApiSettings) -> Self {
        Self::from_keys(api_keys(api).unwrap_or_default())
    }

    pub fn from_keys(keys: Vec<ApiKey>) -> Self {
        Self(Arc::new(
            keys.into_iter()
                .map(|k| Entry {
                    digest: digest(k.secret.expose()),
                    name: k.name,
                    role: k.role,
                })
                .collect(),
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Who holds `presented`, if it is a key; every key is compared.
    pub fn caller(&self, presented: &str) -> Option<Caller> {
        let d = digest(presented.trim());
        let mut found = subtle::CtOption::new(0u32, 0.into());
        for (i, k) in self.0.iter().enumerate() {
            let here = subtle::CtOption::new(i as u32, k.digest.ct_eq(&d));
            found = subtle::CtOption::conditional_select(&found, &here, here.is_some());
        }
        let i = Option::<u32>::from(found)? as usize;
        let k = &self.0[i];
        Some(Caller {
            key_id: key_id_of(&d),
            name: k.name.clone(),
            role: k.role,
        })
    }

    /// The role now of the key with this id and name: a session outlives no
    /// key, and a key replaced under the same name is another key.
    pub fn role_of(&self, key_id: &str, name: &str) -> Option<Role> {
        self.0
            .iter()
            .find(|k| k.name == name && key_id_of(&k.digest) == key_id)
            .map(|k| k.role)
    }
}

/// Who is calling: a stable, non-secret id of the API key (the first eight
/// bytes of its SHA-256, hex; idempotency keys are scoped by it), its name
/// and its role.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: String,
    pub name: String,
    pub role: Role,
}

/// A key's stable, non-secret id: the first eight bytes of its SHA-256, hex.
fn key_id_of(digest: &[u8; 32]) -> String {
    hex::encode(&digest[..8])
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Whether a request with this method changes state.
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware guarding `/api/v1`.
pub async fn require_key(State(keys): State<ApiKeys>, mut req: Request, next: Next) -> Response {
    if keys.is_empty() {
        return ApiError::not_configured(
            "the internal API is disabled: set FINPAY_QRIS__API__KEYS (comma-separated API keys) and restart",
        )
        .into_response();
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|key| !key.is_empty());
    let Some(caller) = presented.and_then(|p| keys.caller(p)) else {
        return ApiError::unauthorized().into_response();
    };
    if changes_state(req.method()) && !caller.role.may_operate() {
        return ApiError::forbidden(&caller).into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn keys() -> ApiKeys {
        ApiKeys::from_keys(vec![
            ApiKey {
                name: "finance".into(),
                role: Role::Operate,
                secret: Secret::new("alpha"),
            },
            ApiKey {
                name: "support".into(),
                role: Role::Read,
                secret: Secret::new("beta"),
            },
        ])
    }

    #[test]
    fn only_configured_keys_are_accepted_each_with_its_name_and_role() {
        let keys = keys();
        let a = keys.caller("alpha").unwrap();
        assert_eq!((a.name.as_str(), a.role), ("finance", Role::Operate));
        let b = keys.caller(" beta ").unwrap();
        assert_eq!((b.name.as_str(), b.role), ("support", Role::Read));
        assert!(keys.caller("alph").is_none());
        assert!(keys.caller("").is_none());
        assert_eq!(keys.role_of(&b.key_id, "support"), Some(Role::Read));
        assert_eq!(keys.role_of(&b.key_id, "gone"), None);
    }

    #[test]
    fn a_key_replaced_under_the_same_name_is_another_key() {
        let before = keys().caller("alpha").unwrap();
        let rotated = ApiKeys::from_keys(vec![ApiKey {
            name: "finance".into(),
            role: Role::Operate,
            secret: Secret::new("gamma"),
        }]);
        assert_eq!(rotated.role_of(&before.key_id, "finance"), None);
        let after = rotated.caller("gamma").unwrap();
        assert_eq!(rotated.role_of(&after.key_id, "finance"), Some(Role::Operate));
    }

    #[test]
    fn reading_methods_change_nothing() {
        assert!(!changes_state(&Method::GET) && !changes_state(&Method::HEAD));
        assert!(changes_state(&Method::POST) && changes_state(&Method::DELETE));
    }
}
