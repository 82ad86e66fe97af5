//! Bearer tokens we issue to Finpay.
//!
//! A token is 256 random bits; only its SHA-256 is stored. Verified tokens are
//! cached in memory until they expire (tokens are never revoked early), so a
//! notification costs no database read for its token; a token issued by
//! another replica is found in the database on first use.

use crate::store::{Store, StoreError};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;

const CACHE_LIMIT: usize = 10_000;

/// Token hash → (client id, expiry).
type Known = HashMap<[u8; 32], (String, DateTime<Utc>)>;

#[derive(Default)]
pub struct TokenCache {
    known: RwLock<Known>,
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn new_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub enum TokenCheck {
    Valid,
    /// Unknown, expired, or issued to another client.
    Invalid,
}

impl TokenCache {
    pub fn remember(&self, hash: [u8; 32], client_id: &str, expires_at: DateTime<Utc>) {
        let Ok(mut map) = self.known.write() else { return };
        if map.len() >= CACHE_LIMIT {
            let now = Utc::now();
            map.retain(|_, (_, exp)| *exp > now);
            if map.len() >= CACHE_LIMIT {
                map.clear();
            }
        }
        map.insert(hash, (client_id.to_string(), expires_at));
    }

    pub async fn check(
        &self,
        store: &dyn Store,
        token: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenCheck, StoreError> {
        let hash = token_hash(token);
        let cached = self.known.read().ok().and_then(|m| m.get(&hash).cloned());
        let entry = match cached {
            Some(e) => Some(e),
            None => {
                let found = store.find_token(&hash).await?;
                if let Some((cid, exp)) = &found {
                    if *exp > now {
                        self.remember(hash, cid, *exp);
                    }
                }
                found
            }
        };
        Ok(match entry {
            // Expiry is checked on every use: "expires_at > now" means valid.
            Some((cid, exp)) if cid == client_id && exp > now => TokenCheck::Valid,
            _ => TokenCheck::Invalid,
        })
    }
}
