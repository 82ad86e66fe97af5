//! API keys: `Authorization: Bearer <key>`, checked against every configured
//! key in constant time. The keys' SHA-256 digests are compared, so neither
//! the content nor the length of a key leaks through timing.
//!
//! With no key configured the API answers 503 (never runs open); the listener
//! still serves health and metrics.

use super::error::ApiError;
use crate::secret::Secret;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::{Choice, ConstantTimeEq};

/// The configured keys, as digests.
#[derive(Clone)]
pub struct ApiKeys(Arc<Vec<[u8; 32]>>);

impl ApiKeys {
    pub fn new(keys: &[Secret]) -> Self {
        Self(Arc::new(
            keys.iter()
                .filter(|k| !k.is_empty())
                .map(|k| digest(k.expose().trim()))
                .collect(),
        ))
    }

    /// Whether `presented` is one of the keys; every key is compared.
    fn accepts(&self, presented: &[u8; 32]) -> bool {
        let mut found = Choice::from(0);
        for k in self.0.iter() {
            found |= k.ct_eq(presented);
        }
        found.into()
    }
}

/// Who is calling: a stable, non-secret id of the API key (the first eight
/// bytes of its SHA-256, hex). Idempotency keys are scoped by it.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: String,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Middleware guarding `/api/v1`.
pub async fn require_key(State(keys): State<ApiKeys>, mut req: Request, next: Next) -> Response {
    if keys.0.is_empty() {
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
    let Some(presented) = presented else {
        return ApiError::unauthorized().into_response();
    };
    let d = digest(presented);
    if !keys.accepts(&d) {
        return ApiError::unauthorized().into_response();
    }
    req.extensions_mut().insert(Caller {
        key_id: hex::encode(&d[..8]),
    });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_keys_are_accepted() {
        let keys = ApiKeys::new(&[Secret::new("alpha"), Secret::new(" "), Secret::new("beta")]);
        assert_eq!(keys.0.len(), 2, "blank keys are ignored");
        assert!(keys.accepts(&digest("alpha")));
        assert!(keys.accepts(&digest("beta")));
        assert!(!keys.accepts(&digest("alph")));
        assert!(!keys.accepts(&digest("")));
    }
}
