//! The headers of a refused request as the journal keeps them: everything
//! but credentials. Signatures and timestamps stay (they are not secrets and
//! the doctor needs them); the bearer token is replaced by a short hash.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

/// Header name → value (an array when sent more than once), with the bearer
/// token replaced by the first 12 hex digits of its SHA-256 and cookies
/// left out.
pub fn redacted_headers(headers: &HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut map = serde_json::Map::new();
    for name in headers.keys() {
        let n = name.as_str();
        if matches!(n, "cookie" | "proxy-authorization") {
            continue;
        }
        let values: Vec<Value> = headers
            .get_all(name)
            .iter()
            .map(|v| {
                let text = String::from_utf8_lossy(v.as_bytes());
                Value::String(if n == "authorization" {
                    redact_authorization(&text)
                } else {
                    text.into_owned()
                })
            })
            .collect();
        let value = match <[Value; 1]>::try_from(values) {
            Ok([one]) => one,
            Err(many) => Value::Array(many),
        };
        map.insert(n.to_string(), value);
    }
    map
}

/// `Bearer sha256:<12 hex digits>`: enough to tell tokens apart, not to use one.
fn redact_authorization(value: &str) -> String {
    let (scheme, credential) = value.split_once(' ').unwrap_or(("", value));
    let digest = hex::encode(Sha256::digest(credential.trim().as_bytes()));
    let scheme = if scheme.is_empty() { "" } else { scheme };
    format!("{scheme} sha256:{}", &digest[..12]).trim_start().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_is_replaced_by_a_short_hash_and_cookies_dropped() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer secret-token-value".parse().unwrap());
        h.insert("cookie", "a=b".parse().unwrap());
        h.insert("x-signature", "c2ln".parse().unwrap());
        h.append("x-timestamp", "one".parse().unwrap());
        h.append("x-timestamp", "two".parse().unwrap());
        let map = redacted_headers(&h);
        let auth = map["authorization"].as_str().unwrap();
        let digest = hex::encode(Sha256::digest(b"secret-token-value"));
        assert_eq!(auth, format!("Bearer sha256:{}", &digest[..12]));
        assert!(!auth.contains("secret-token-value"));
        assert!(!map.contains_key("cookie"));
        assert_eq!(map["x-signature"], "c2ln");
        assert_eq!(map["x-timestamp"], serde_json::json!(["one", "two"]));
    }
}
