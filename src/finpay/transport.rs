//! One HTTP exchange with Finpay: the access-token request (RSA-signed) and
//! signed transactional POSTs (HMAC over exactly the bytes sent), with the
//! metrics every call records and the rule by which an answer is judged.

use super::token::{parse_token, Issued};
use super::FinpayError;
use crate::config::{FinpayCredentials, FinpaySettings};
use crate::metrics::Metrics;
use crate::snap::codes::parse_code;
use crate::snap::{body_hash, rsa_sign, symmetric_string_to_sign, timestamp, token_string_to_sign};
use rand::Rng;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answers larger than this are not Finpay's; reading stops there.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// Asia/Jakarta (UTC+7, no daylight saving): Finpay's day for `X-EXTERNAL-ID`.
const JAKARTA: chrono::FixedOffset = match chrono::FixedOffset::east_opt(7 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+7 is a valid offset"),
};

#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Token,
    Generate,
    Query,
    Refund,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Token => "token",
            Op::Generate => "generate",
            Op::Query => "query",
            Op::Refund => "refund",
        }
    }
}

/// An HTTP answer whose body is JSON.
pub(super) struct Answer {
    pub http: u16,
    pub body: Value,
}

impl Answer {
    fn code(&self) -> Option<&str> {
        self.body.get("responseCode").and_then(Value::as_str)
    }

    fn message(&self) -> String {
        self.body
            .get("responseMessage")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// `401xx01` / `401xx03`: the token is unknown or expired at Finpay.
    pub fn is_invalid_token(&self) -> bool {
        let parsed = self.code().and_then(parse_code);
        parsed.is_some_and(|c| c.is_invalid_token() || (self.http == 401 && matches!(c.case, 1 | 3)))
    }

    /// Success is HTTP 2xx and a `200xx00` code. The service digits are not
    /// checked: Finpay answers a query with `2005300` (service 53, not 51).
    pub fn judge(self) -> Result<Answer, FinpayError> {
        if self.http >= 500 {
            let code = self.code().unwrap_or("-").to_string();
            return Err(FinpayError::Unavailable(format!(
                "HTTP {}, responseCode {code}",
                self.http
            )));
        }
        let parsed = self.code().and_then(parse_code);
        match parsed {
            Some(c) if c.is_success() && (200..300).contains(&self.http) => Ok(self),
            None if (200..300).contains(&self.http) => Err(FinpayError::InvalidResponse(
                "HTTP 2xx without a valid responseCode".into(),
            )),
            _ => Err(FinpayError::Rejected {
                http: self.http,
                response_code: self.code().unwrap_or_default().to_string(),
                message: self.message(),
            }),
        }
    }
}

pub(super) struct Transport {
    http: reqwest::Client,
    creds: FinpayCredentials,
    settings: FinpaySettings,
    metrics: Arc<Metrics>,
    timeout: Duration,
}

impl Transport {
    pub fn new(creds: FinpayCredentials, settings: &FinpaySettings, metrics: Arc<Metrics>) -> Self {
        let timeout = Duration::from_secs(settings.timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
            // A redirect would turn our POST into a GET elsewhere; Finpay does not redirect.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "HTTP client options refused; using defaults (timeouts still apply per request)");
                reqwest::Client::new()
            });
        Self {
            http,
            creds,
            settings: settings.clone(),
            metrics,
            timeout,
        }
    }

    pub fn count_error(&self, op: Op, kind: &str) {
        self.metrics.inc(
            "finpay_qris_finpay_errors_total",
            &[("op", op.as_str()), ("kind", kind)],
        );
    }

    /// `POST {token_path}` with `X-SIGNATURE = SHA256withRSA(clientId|X-TIMESTAMP)`.
    pub async fn fetch_token(&self) -> Result<Issued, FinpayError> {
        let ts = timestamp::format_jakarta(chrono::Utc::now());
        let signature = rsa_sign(
            &self.creds.private_key,
            &token_string_to_sign(&self.creds.client_id, &ts),
        );
        let url = format!("{}{}", self.creds.base_url, self.settings.token_path);
        let req = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("X-TIMESTAMP", &ts)
            .header("X-CLIENT-KEY", &self.creds.client_id)
            .header("X-SIGNATURE", signature)
            .body(r#"{"grantType":"client_credentials"}"#);
        let result = self
            .exchange(Op::Token, req)
            .await
            .and_then(Answer::judge)
            .and_then(|a| parse_token(a.body));
        if let Err(e) = &result {
            self.count_error(Op::Token, e.kind());
            tracing::warn!(error = %e, "could not obtain a Finpay access token");
        }
        result
    }

    /// One signed transactional POST. `path` is appended to the base URL;
    /// the path signed is the full path of that URL, base path included.
    pub async fn post_signed(&self, op: Op, path: &str, body: &[u8], token: &str) -> Result<Answer, FinpayError> {
        let url = format!("{}{}", self.creds.base_url, path);
        let parsed =
            reqwest::Url::parse(&url).map_err(|e| FinpayError::Unavailable(format!("bad Finpay URL {url}: {e}")))?;
        let signed_path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let ts = timestamp::format_jakarta(chrono::Utc::now());
        let external_id = external_id(chrono::Utc::now());
        let to_sign = symmetric_string_to_sign("POST", &signed_path, token, &body_hash(body), &ts);
        let req = self
            .http
            .post(parsed)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("X-TIMESTAMP", &ts)
            .header("X-SIGNATURE", self.creds.hmac.sign(&to_sign))
            .header("ORIGIN", &self.settings.origin)
            .header("X-EXTERNAL-ID", &external_id)
            .header("X-PARTNER-ID", &self.creds.client_id)
            .header("CHANNEL-ID", &self.settings.channel_id)
            .body(body.to_vec());
        let answer = self.exchange(op, req).await?;
        tracing::debug!(
            op = op.as_str(),
            external_id = %external_id,
            http = answer.http,
            response_code = answer.code().unwrap_or("-"),
            "Finpay answered"
        );
        Ok(answer)
    }

    /// Sends, reads a bounded JSON answer, records the duration.
    async fn exchange(&self, op: Op, req: reqwest::RequestBuilder) -> Result<Answer, FinpayError> {
        let started = Instant::now();
        let result = async {
            let mut resp = req.timeout(self.timeout).send().await.map_err(transport_error)?;
            let http = resp.status().as_u16();
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
                if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(FinpayError::InvalidResponse(format!(
                        "answer larger than {MAX_ANSWER_BYTES} bytes"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(body) => Ok(Answer { http, body }),
                Err(_) if http >= 500 => Err(FinpayError::Unavailable(format!("HTTP {http}"))),
                Err(e) => Err(FinpayError::InvalidResponse(format!(
                    "HTTP {http}, body is not JSON: {e}"
                ))),
            }
        }
        .await;
        self.metrics.observe_duration(
            "finpay_qris_finpay_request_duration_seconds",
            &[("op", op.as_str())],
            started.elapsed(),
        );
        result
    }
}

/// A connection that never opened is `Unavailable` (nothing reached Finpay);
/// anything later is a `Timeout`: the request may have been carried out.
fn transport_error(e: reqwest::Error) -> FinpayError {
    if e.is_connect() {
        FinpayError::Unavailable(format!("cannot connect: {e}"))
    } else if e.is_timeout() {
        FinpayError::Timeout
    } else {
        tracing::debug!(error = %e, "Finpay exchange broke off; its outcome is unknown");
        FinpayError::Timeout
    }
}

/// `X-EXTERNAL-ID`: 32 digits, Finpay's limit. The Jakarta date and time to
/// the millisecond, then 15 random digits: unique within the day without
/// any shared counter between replicas.
pub(super) fn external_id(now: chrono::DateTime<chrono::Utc>) -> String {
    let mut id = now.with_timezone(&JAKARTA).format("%Y%m%d%H%M%S%3f").to_string();
    let mut rng = rand::thread_rng();
    while id.len() < 32 {
        id.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(http: u16, body: Value) -> Answer {
        Answer { http, body }
    }

    #[test]
    fn external_ids_are_32_digits_and_differ() {
        let now = chrono::Utc::now();
        let (a, b) = (external_id(now), external_id(now));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_digit()));
        assert_ne!(a, b);
    }

    #[test]
    fn success_ignores_the_service_digits() {
        assert!(answer(200, json!({"responseCode": "2005300"})).judge().is_ok());
        assert!(answer(200, json!({"responseCode": "2004700"})).judge().is_ok());
    }

    #[test]
    fn only_case_01_of_a_404_says_finpay_has_no_such_transaction() {
        let not_found = |http, code: &str| {
            answer(http, json!({"responseCode": code, "responseMessage": "x"}))
                .judge()
                .err()
                .is_some_and(|e| e.is_not_found())
        };
        assert!(not_found(404, "4045101"));
        assert!(
            !not_found(404, "4045108"),
            "an invalid merchant is a configuration to fix"
        );
        assert!(
            !not_found(404, ""),
            "a gateway's 404 for a wrong path says nothing of the payment"
        );
        assert!(!not_found(400, "4005101"));
    }

    #[test]
    fn only_finpays_own_4xx_refusals_would_be_refused_again() {
        let refusal = |http, body: serde_json::Value| answer(http, body).judge().err().is_some_and(|e| e.is_refusal());
        assert!(refusal(
            400,
            json!({"responseCode": "4005102", "responseMessage": "Invalid Mandatory Field"})
        ));
        assert!(refusal(
            403,
            json!({"responseCode": "4035100", "responseMessage": "Transaction Expired"})
        ));
        for (http, code, why) in [
            (401, "4015101", "a refused token, renewed already, may pass"),
            (429, "4295100", "a rate limit passes"),
            (409, "4095100", "a conflict passes"),
            (408, "4085100", "a timeout passes"),
            (403, "", "a gateway's page says nothing of Finpay's answer"),
            (400, "5005100", "a code of another status is not Finpay's refusal"),
            (500, "5005100", "a 5xx is an outage"),
            (202, "2025100", "in progress"),
        ] {
            assert!(!refusal(http, json!({"responseCode": code})), "{why}");
        }
    }

    #[test]
    fn answers_are_judged_by_http_status_and_case_code() {
        let rejected = answer(
            404,
            json!({"responseCode": "4045101", "responseMessage": "Transaction Not Found"}),
        )
        .judge();
        assert!(matches!(rejected, Err(FinpayError::Rejected { http: 404, .. })));
        assert!(matches!(
            answer(503, json!({})).judge(),
            Err(FinpayError::Unavailable(_))
        ));
        assert!(matches!(
            answer(200, json!({"x": 1})).judge(),
            Err(FinpayError::InvalidResponse(_))
        ));
        // A success code on a non-2xx status is not a success.
        assert!(matches!(
            answer(400, json!({"responseCode": "2005300"})).judge(),
            Err(FinpayError::Rejected { .. })
        ));
    }

    #[test]
    fn invalid_token_answers_are_recognised() {
        assert!(answer(401, json!({"responseCode": "4014701"})).is_invalid_token());
        assert!(answer(401, json!({"responseCode": "4015103"})).is_invalid_token());
        assert!(!answer(401, json!({"responseCode": "4014700"})).is_invalid_token());
        assert!(!answer(200, json!({"responseCode": "2005300"})).is_invalid_token());
    }
}
