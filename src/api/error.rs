//! The one error shape of the internal API: RFC 9457 problem details
//! (`application/problem+json`), plus `field` naming the input at fault and
//! `finpayResponseCode` when Finpay refused or failed.
//!
//! Database and internal errors are logged with their cause and answered
//! opaquely; a client's mistake is always a 4xx.

use crate::finpay::FinpayError;
use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem. `type` identifies the kind of problem: branch on it,
/// not on `title` or `detail`, which are for people.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "urn:finpay-qris:problem:validation")]
    pub kind: String,
    #[schema(example = "Invalid request")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request field at fault (`amount`, `tips.percentage`, `cursor`,
    /// `Idempotency-Key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Finpay's SNAP `responseCode` when Finpay refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finpay_response_code: Option<String>,
    /// The payment concerned, when one exists (e.g. its QR generation failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The refund concerned, when one exists (e.g. its outcome is unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
}

/// An error answered as a [`Problem`].
#[derive(Debug, Clone)]
pub struct ApiError(Box<Problem>);

impl ApiError {
    pub fn new(status: StatusCode, slug: &str, title: &str) -> Self {
        Self(Box::new(Problem {
            kind: format!("urn:finpay-qris:problem:{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: None,
            field: None,
            finpay_response_code: None,
            payment_id: None,
            refund_id: None,
        }))
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.0.field = Some(field.into());
        self
    }

    pub fn payment(mut self, id: &str) -> Self {
        self.0.payment_id = Some(id.to_string());
        self
    }

    pub fn refund(mut self, id: &str) -> Self {
        self.0.refund_id = Some(id.to_string());
        self
    }

    pub fn finpay_code(mut self, code: Option<String>) -> Self {
        self.0.finpay_response_code = code.filter(|c| !c.is_empty());
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn problem(&self) -> &Problem {
        &self.0
    }

    /// 422: well-formed JSON whose `field` has a value we cannot accept.
    pub fn validation(field: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", "Invalid request")
            .field(field)
            .detail(detail)
    }

    /// 400: a request we cannot read at all (bad JSON, query string, path or header).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-request", "Malformed request").detail(detail)
    }

    /// Ids and references never hold control characters; one in a lookup is a
    /// client's mistake (and a NUL could not even be sent to PostgreSQL).
    pub fn no_control_characters(field: &str, value: &str) -> Result<(), Self> {
        if value.chars().any(char::is_control) {
            return Err(Self::bad_request(format!("{field} must not contain control characters")).field(field));
        }
        Ok(())
    }

    /// 408: the body did not arrive in time; the connection is closed after it.
    pub fn request_timeout() -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "request-timeout", "Request timeout")
            .field("body")
            .detail("the request body did not arrive in time")
    }

    /// 401, deliberately without detail.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
    }

    /// 403: the key may read but not change anything.
    pub fn forbidden(caller: &super::auth::Caller) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").detail(format!(
            "the API key {:?} has the role {}: it may read, not change anything",
            caller.name,
            caller.role.as_str()
        ))
    }

    pub fn payment_not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "payment-not-found", "Payment not found")
            .detail(format!("no payment has the id or partnerReferenceNo {id:?}"))
    }

    /// 404: a list's `cursor` names no `item` (made up, or kept from another
    /// database): said, rather than ending or restarting the list silently.
    pub fn cursor_not_found(item: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "cursor-not-found",
            &format!("Cursor names no {item}"),
        )
        .detail(format!(
            "the {item} this cursor follows is not here; list again without it"
        ))
        .field("cursor")
    }

    pub fn conflict(slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, title).detail(detail)
    }

    pub fn not_configured(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not-configured", "Not configured").detail(detail)
    }

    pub fn finpay_not_configured() -> Self {
        Self::not_configured(
            "Finpay is not configured: set FINPAY_QRIS__FINPAY__BASE_URL, __CLIENT_ID, __CLIENT_SECRET, \
             __PRIVATE_KEY and __MERCHANT_ID",
        )
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error")
            .detail("the request could not be completed; it is logged and safe to retry")
    }

    /// A failed call to Finpay: 504 when it did not answer in time; 502
    /// `finpay-rejected` when it refused (nothing was done,
    /// [`definitely_refused`](super::upstream::definitely_refused)); 502
    /// `finpay-unavailable` otherwise (a 5xx, an unreadable answer, a
    /// "duplicate": the outcome is unknown).
    pub fn finpay(e: &FinpayError, what: &str) -> Self {
        Self::from_finpay(e, what, super::upstream::definitely_refused(e))
    }

    /// The same for a refusal that settles nothing (it answered a request
    /// sent again after an unknown outcome): never `finpay-rejected`.
    pub fn finpay_outcome_unknown(e: &FinpayError, what: &str) -> Self {
        Self::from_finpay(e, what, false)
    }

    fn from_finpay(e: &FinpayError, what: &str, refused: bool) -> Self {
        let (status, slug, title) = match e {
            FinpayError::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "finpay-timeout",
                "Finpay did not answer in time",
            ),
            _ if refused => (StatusCode::BAD_GATEWAY, "finpay-rejected", "Finpay refused the request"),
            _ => (StatusCode::BAD_GATEWAY, "finpay-unavailable", "Finpay failed"),
        };
        let code = match e {
            FinpayError::Rejected { response_code, .. } => Some(response_code.clone()),
            _ => None,
        };
        Self::new(status, slug, title)
            .detail(format!("{what}: {e}"))
            .finpay_code(code)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            return Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable")
                .detail("the database is unavailable; retry later");
        }
        tracing::error!(error = ?e, "store error");
        Self::internal()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&*self.0).unwrap_or_default();
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a late body must not be read as the next request.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

/// Not-found and method-not-allowed for `/api/v1/*`, in the problem shape.
pub async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route-not-found", "Not found")
        .detail("no such route; see /api/v1/openapi.json")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
    )
    .detail("this route does not accept that method; see /api/v1/openapi.json")
}
