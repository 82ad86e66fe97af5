//! Extractors whose rejections are problems too: a bad JSON body, query
//! string or path never falls through to axum's plain-text answers.

use super::error::ApiError;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How long a request body may take to arrive after its head (`api.body_timeout_ms`).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

const DEFAULT_BODY_DEADLINE: Duration = Duration::from_secs(10);
use serde::Deserialize;

/// A JSON body: 415 without a JSON content type, 400 when it is not JSON,
/// 422 naming the field when it does not fit the request type, 408 when it
/// does not arrive by the [`BodyDeadline`] (a slow sender holds no task longer).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .is_some_and(|m| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")));
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .detail("send the body as JSON with Content-Type: application/json"));
        }
        let deadline = req
            .extensions()
            .get::<BodyDeadline>()
            .map_or(DEFAULT_BODY_DEADLINE, |d| d.0);
        let read = tokio::time::timeout(deadline, Bytes::from_request(req, state));
        let bytes = read.await.map_err(|_| ApiError::request_timeout())?.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large")
                    .detail("the body is larger than the API accepts")
            } else {
                ApiError::bad_request("the body could not be read")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Deserializes `bytes`, naming the field at fault on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // JSON is UTF-8; serde_json checks it only in the strings it keeps, not in
    // those it skips, and a broken body would be taken for a bad value.
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::bad_request(format!(
            "the body is not valid JSON: it is not UTF-8 ({e})"
        )));
    }
    // Request bodies are objects (serde would also read a struct from an array).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => ApiError::validation("body", "must be a JSON object"),
            Err(e) => ApiError::bad_request(format!("the body is not valid JSON: {e}")),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let field = field_name(&e.path().to_string(), &message);
                ApiError::validation(&field, strip_position(&message))
            }
            // serde_json reports a number or `null` where a named value (an
            // enum) belongs as a syntax error; the JSON itself is valid.
            _ if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
                let field = field_name(&e.path().to_string(), "");
                ApiError::validation(&field, "must be one of the names the API documents")
            }
            _ => ApiError::bad_request(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// A whole number, also when written `900.0` or `9e2`: JSON has one number
/// type, and the schema's `integer` admits those.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
            .map(|f| f as u64)
    });
    whole
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("must be a whole number of seconds, not {n}")))
}

/// A field of a change that may be left out (no change: `None`) or be
/// `null` (remove the value: `Some(None)`).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The path serde reports, completed with the name from "missing field `x`"
/// (reported at the parent's path; an unknown or repeated field's path names
/// it already).
fn field_name(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    let named = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next());
    let missing = named("missing field `");
    let unknown = named("unknown field `").or_else(|| named("duplicate field `"));
    match (missing, unknown) {
        (Some(name), _) if parent.is_empty() => name.to_string(),
        (Some(name), _) => format!("{parent}.{name}"),
        (None, Some(name)) if parent.is_empty() => name.to_string(),
        _ if parent.is_empty() => "body".to_string(),
        _ => parent.to_string(),
    }
}

/// serde_json appends " at line 1 column 17"; the field already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// A query string; the request types hold strings, parsed by the handler
/// with field-naming errors, so this fails only on unknown or repeated keys.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        let text = e.body_text();
        let message = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text);
        // axum puts the path first ("colour: unknown field `colour`, …").
        let message = ["unknown field `", "missing field `", "duplicate field `"]
            .iter()
            .find_map(|p| message.find(p).map(|i| &message[i..]))
            .unwrap_or(message);
        let field = field_name(".", message);
        let err = ApiError::bad_request(format!("invalid query string: {message}"));
        if field == "body" {
            err
        } else {
            err.field(field)
        }
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        let problem = ApiError::bad_request(format!("invalid path: {}", e.body_text()));
        let PathRejection::FailedToDeserializePathParams(inner) = &e else {
            return problem;
        };
        match inner.kind() {
            // The segment at fault is named, as a bad field of a body is.
            ErrorKind::InvalidUtf8InPathParam { key }
            | ErrorKind::ParseErrorAtKey { key, .. }
            | ErrorKind::DeserializeError { key, .. } => problem.field(key),
            _ => problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        mode: String,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Outcome {
        Succeeded,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        amount: String,
        tips: Option<Inner>,
        outcome: Option<Outcome>,
    }

    fn field_of(body: &str) -> (u16, Option<String>) {
        let e = parse_json::<Body>(body.as_bytes()).unwrap_err();
        (e.problem().status, e.problem().field.clone())
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        assert_eq!(field_of(r#"{"amount": 10000.5}"#), (422, Some("amount".into())));
        assert_eq!(field_of(r#"{}"#), (422, Some("amount".into())));
        assert_eq!(field_of(r#"{"amount":"1","colour":1}"#), (422, Some("colour".into())));
        assert_eq!(
            field_of(r#"{"amount":"1","tips":{"mode":1}}"#),
            (422, Some("tips.mode".into()))
        );
        assert_eq!(field_of(r#"{"amount":"1","tips":{}}"#), (422, Some("tips.mode".into())));
        assert_eq!(field_of(r#"[1]"#), (422, Some("body".into())));
    }

    #[test]
    fn a_named_value_of_another_type_is_named_not_called_broken_json() {
        for v in ["1", "true", "[\"succeeded\"]", "{}", "\"done\""] {
            let body = format!(r#"{{"amount":"1","outcome":{v}}}"#);
            assert_eq!(field_of(&body), (422, Some("outcome".into())), "{body}");
        }
        assert_eq!(
            field_of(r#"{"amount":"1","outcome":"succeeded"}"#.trim_end_matches('}')).0,
            400
        );
    }

    #[derive(serde::Deserialize)]
    struct Seconds {
        #[serde(default, deserialize_with = "whole_number")]
        s: Option<u64>,
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        let read = |v: serde_json::Value| serde_json::from_value::<Seconds>(serde_json::json!({"s": v})).map(|x| x.s);
        for (v, want) in [
            (serde_json::json!(900), 900),
            (serde_json::json!(900.0), 900),
            (serde_json::json!(9e2), 900),
        ] {
            assert_eq!(read(v).unwrap(), Some(want));
        }
        assert_eq!(read(serde_json::Value::Null).unwrap(), None);
        for bad in [
            serde_json::json!(900.5),
            serde_json::json!(-900),
            serde_json::json!("900"),
            serde_json::json!(1e300),
        ] {
            assert!(read(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn broken_json_is_a_bad_request() {
        assert_eq!(field_of(r#"{"amount": "#).0, 400);
        assert_eq!(field_of(r#"{"amount":"1"} trailing"#).0, 400);
        assert_eq!(field_of("").0, 400);
        let not_utf8 = parse_json::<Body>(b"{\"amount\":\"1\xff\"}").unwrap_err();
        assert_eq!(
            (not_utf8.problem().status, not_utf8.problem().field.clone()),
            (400, None)
        );
    }
}
