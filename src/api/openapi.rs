//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! attributes by the same `OpenApiRouter` that registers their routes, so the
//! document and the router cannot drift apart (a test checks it over HTTP).

use super::error::Problem;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "finpay-qris internal API",
        version = "1",
        description = "Create QRIS payments through Finpay, read them, refund them and see what happened. \
            Authenticate with `Authorization: Bearer <API key>`. Errors are RFC 9457 problem details \
            (`application/problem+json`). Amounts are decimal strings in IDR."
    ),
    servers((url = "/api/v1", description = "This listener (FINPAY_QRIS__API__LISTEN)")),
    modifiers(&BearerKey),
    components(schemas(Problem)),
    tags(
        (name = "payments", description = "QR payments: create, read, list, QR images, audit trail"),
        (name = "refunds", description = "Full and partial refunds of paid payments"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An API key from FINPAY_QRIS__API__KEYS"))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("api_key", SecurityScheme::Http(scheme));
    }
}

/// The document as served.
#[derive(Clone)]
pub struct Document(pub Arc<String>);

/// This OpenAPI document
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object)),
    security(("api_key" = []))
)]
pub async fn document(Extension(doc): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0.as_str().to_owned())
}
