//! Reading SNAP headers with the precise error for each problem.

use crate::snap::codes::SnapStatus;
use axum::http::HeaderMap;

/// A mandatory header's value: missing → `400xx02`, not visible ASCII → `400xx01`.
///
/// A security header sent twice is refused as malformed: which copy was
/// signed would otherwise be a guess.
pub fn required<'a>(headers: &'a HeaderMap, name: &str, service: u8) -> Result<&'a str, SnapStatus> {
    if headers.get_all(name).iter().nth(1).is_some() {
        return Err(SnapStatus::invalid_field_format(service, name));
    }
    match headers.get(name) {
        None => Err(SnapStatus::invalid_mandatory_field(service, name)),
        Some(v) => match v.to_str() {
            Ok(s) if !s.trim().is_empty() => Ok(s),
            Ok(_) => Err(SnapStatus::invalid_mandatory_field(service, name)),
            Err(_) => Err(SnapStatus::invalid_field_format(service, name)),
        },
    }
}

/// `Content-Type` must be JSON (`application/json`, optionally with parameters).
pub fn json_content_type(headers: &HeaderMap, service: u8) -> Result<(), SnapStatus> {
    let ct = required(headers, "Content-Type", service)?;
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(SnapStatus::invalid_field_format(service, "Content-Type"))
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme's name
/// is case-insensitive (HTTP authentication schemes are); `None` for another
/// scheme or no token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The headers as JSON for the audit record, without credentials.
pub fn headers_for_audit(headers: &HeaderMap) -> String {
    let mut map = serde_json::Map::new();
    for (name, value) in headers {
        let n = name.as_str();
        if super::redact::credential(n).is_some() {
            continue;
        }
        map.insert(
            n.to_string(),
            serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_read_whatever_the_case_of_its_scheme() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn a_stored_notification_keeps_its_headers_but_no_credential() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer tok".parse().unwrap());
        h.insert("x-api-key", "APIKEYVALUE123".parse().unwrap());
        h.insert("cookie", "a=b".parse().unwrap());
        h.insert("x-signature", "c2ln".parse().unwrap());
        h.insert("x-external-id", "123".parse().unwrap());
        let stored: serde_json::Value = serde_json::from_str(&headers_for_audit(&h)).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"x-signature": "c2ln", "x-external-id": "123"})
        );
    }
}
