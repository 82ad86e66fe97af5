//! The headers of a refused request as the journal keeps them: everything
//! but credentials. Signatures and timestamps stay (they are not secrets and
//! the doctor needs them); credentials are replaced by a short hash, enough to
//! tell two apart, and cookies are left out.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

/// The credential a header carries, by its (lowercase) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A session: never kept.
    Cookie,
    /// A scheme and a credential (`Authorization`, `Proxy-Authorization`, …).
    Authorization,
    /// A secret, password, token, session or key by its name, as gateways in
    /// front of the service add them (`x-api-key`, `x-client-secret`,
    /// `ocp-apim-subscription-key`, `x-session-id`, …).
    Other,
}

/// The credential a header carries, if any. SNAP's `X-CLIENT-KEY` names the
/// client and is not one.
pub fn credential(name: &str) -> Option<Credential> {
    const WORDS: [&str; 7] = ["secret", "pass", "token", "credential", "session", "jwt", "auth"];
    if name.contains("cookie") {
        Some(Credential::Cookie)
    } else if name.contains("authorization") || name.contains("authentication") {
        Some(Credential::Authorization)
    } else if WORDS.iter().any(|w| name.contains(w)) || (name.ends_with("key") && name != "x-client-key") {
        Some(Credential::Other)
    } else {
        None
    }
}

/// Header name → value (an array when sent more than once), with each
/// credential replaced by the first 12 hex digits of its SHA-256 (after its
/// scheme, for an authorization) and cookies left out.
pub fn redacted_headers(headers: &HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut map = serde_json::Map::new();
    for name in headers.keys() {
        let n = name.as_str();
        let kind = credential(n);
        if kind == Some(Credential::Cookie) {
            continue;
        }
        let values: Vec<Value> = headers
            .get_all(name)
            .iter()
            .map(|v| {
                let text = String::from_utf8_lossy(v.as_bytes());
                Value::String(match kind {
                    Some(Credential::Authorization) => redact_authorization(&text),
                    Some(_) => short_hash(&text),
                    None => text.into_owned(),
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

/// A path with each value of its query string replaced by its short hash
/// (a parameter without `=` wholly): SNAP's paths have none, so a query is a
/// gateway's, and gateways put keys there (`?code=…`, `?access_token=…`).
pub fn redacted_query(query: &str) -> String {
    query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, value)) => format!("{name}={}", short_hash(value)),
            None if param.is_empty() => String::new(),
            None => short_hash(param),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `Bearer sha256:<12 hex digits>`: enough to tell tokens apart, not to use one.
fn redact_authorization(value: &str) -> String {
    let (scheme, credential) = value.split_once(' ').unwrap_or(("", value));
    format!("{scheme} {}", short_hash(credential)).trim_start().to_string()
}

/// `sha256:<12 hex digits>` of a credential.
fn short_hash(credential: &str) -> String {
    let digest = hex::encode(Sha256::digest(credential.trim().as_bytes()));
    format!("sha256:{}", &digest[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_keeps_its_names_and_hashes_its_values() {
        let q = redacted_query("code=AzureFunctionKey&flag&x=");
        let hash = |v: &str| short_hash(v);
        assert_eq!(
            q,
            format!("code={}&{}&x={}", hash("AzureFunctionKey"), hash("flag"), hash(""))
        );
        assert!(!q.contains("AzureFunctionKey"));
    }

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

    #[test]
    fn a_gateway_s_key_or_secret_header_is_kept_only_as_a_short_hash() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "APIKEYVALUE123".parse().unwrap());
        h.insert("x-client-secret", "MYCLIENTSECRETVALUE".parse().unwrap());
        h.insert("authorization-customer", "Bearer customer-token".parse().unwrap());
        h.insert("set-cookie", "s=1".parse().unwrap());
        h.insert("x-client-key", "FINPAY-CLIENT".parse().unwrap());
        h.insert("ocp-apim-subscription-key", "SUBSCRIPTIONKEY".parse().unwrap());
        let map = redacted_headers(&h);
        let digest = hex::encode(Sha256::digest(b"APIKEYVALUE123"));
        assert_eq!(map["x-api-key"], format!("sha256:{}", &digest[..12]));
        assert!(!serde_json::to_string(&map).unwrap().contains("MYCLIENTSECRETVALUE"));
        assert!(map["authorization-customer"]
            .as_str()
            .unwrap()
            .starts_with("Bearer sha256:"));
        assert!(!map.contains_key("set-cookie"));
        assert_eq!(
            map["x-client-key"], "FINPAY-CLIENT",
            "the client's name is not a credential"
        );
        assert!(map["ocp-apim-subscription-key"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
    }

    #[test]
    fn headers_named_for_other_credentials_are_kept_only_as_a_short_hash() {
        let mut h = HeaderMap::new();
        for name in [
            "x-credential",
            "x-passphrase",
            "x-session-id",
            "x-jwt",
            "x-auth-user",
            "x-amz-security-token",
        ] {
            h.insert(name, "CREDENTIAL-VALUE".parse().unwrap());
        }
        h.insert("authentication", "Bearer the-token".parse().unwrap());
        let map = redacted_headers(&h);
        let text = serde_json::to_string(&map).unwrap();
        assert!(
            !text.contains("CREDENTIAL-VALUE") && !text.contains("the-token"),
            "{text}"
        );
        assert!(map["authentication"].as_str().unwrap().starts_with("Bearer sha256:"));
        assert!(map["x-session-id"].as_str().unwrap().starts_with("sha256:"));
    }
}
