//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! attributes by the same `OpenApiRouter` that registers their routes, so the
//! document and the router cannot drift apart (a test checks it over HTTP).
//!
//! What every route shares is added here rather than on each handler: the
//! API key, and the answers that the layers in front of the handlers give
//! (401 and 503 from [`auth`](super::auth), 400/413/415 from the
//! [extractors](super::extract), 500). Constraints that utoipa's attributes
//! cannot state are added by [`rules`](super::openapi_rules). The contract is
//! checked against the running API by `.ci/contract` (schemathesis).

use super::error::{Problem, PROBLEM_JSON};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use std::sync::Arc;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

/// The security scheme's name, as the handlers' `security(...)` name it.
pub const SCHEME: &str = "api_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "finpay-qris internal API",
        version = "1",
        description = "Create QRIS payments through Finpay, read them, refund them and see what happened. \
            Authenticate with `Authorization: Bearer <API key>` (one of FINPAY_QRIS__API__KEYS, role `operate`, \
            or FINPAY_QRIS__API__READ_KEYS, role `read`: a read key is answered 403 on every POST); every route, \
            this document included, needs it. Errors are RFC 9457 problem details (`application/problem+json`): \
            branch on `type`. Amounts are decimal strings in IDR, never JSON numbers."
    ),
    servers((url = "/api/v1", description = "This listener (FINPAY_QRIS__API__LISTEN)")),
    components(schemas(Problem)),
    tags(
        (name = "payments", description = "QR payments: create, read, list, QR images, audit trail"),
        (name = "refunds", description = "Full and partial refunds of paid payments"),
        (name = "exports", description = "Payments and refunds for finance, as CSV"),
        (name = "refusals", description = "Requests from Finpay that were refused, and why (the signature doctor)"),
        (name = "events", description = "Payment events: webhook endpoints, signed delivery, resending, the changes feed"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Answers shared by many operations, as `components/responses`.
const SHARED: &[(&str, &str, &str)] = &[
    (
        "BadRequest",
        "400",
        "Malformed request: unreadable JSON, an unknown or repeated query parameter, a bad path or header \
         (`type` …:malformed-request; `field` names it)",
    ),
    (
        "Unauthorized",
        "401",
        "Missing or wrong API key (`type` …:unauthorized), with `WWW-Authenticate: Bearer`",
    ),
    (
        "Forbidden",
        "403",
        "The API key has the `read` role: it may read, not change anything (`type` …:forbidden)",
    ),
    (
        "PayloadTooLarge",
        "413",
        "The body is larger than 64 KiB (`type` …:payload-too-large)",
    ),
    (
        "UnsupportedMediaType",
        "415",
        "The body is not sent as JSON (`type` …:unsupported-media-type): use `Content-Type: application/json`",
    ),
    (
        "Internal",
        "500",
        "Internal error (`type` …:internal); logged, and safe to retry",
    ),
    (
        "Unavailable",
        "503",
        "No API key is configured (`type` …:not-configured), or the database is unavailable \
         (…:unavailable); `Retry-After` says when to retry",
    ),
];

/// Completes the document of the routed operations (modifiers in
/// `#[openapi(...)]` would run before the router adds them).
pub fn complete(doc: &mut utoipa::openapi::OpenApi) {
    Shared.modify(doc);
    super::openapi_rules::Rules.modify(doc);
}

struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API key from FINPAY_QRIS__API__KEYS: `Authorization: Bearer <key>`",
            ))
            .build();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(SCHEME, SecurityScheme::Http(scheme));
        for (name, status, description) in SHARED {
            components
                .responses
                .insert(name.to_string(), RefOr::T(problem_response(status, description)));
        }
        doc.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
        for item in doc.paths.paths.values_mut() {
            for (op, changes_state) in [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
            ] {
                let Some(op) = op else { continue };
                shared_answers(op, changes_state);
                spell_link_targets(op);
            }
        }
    }
}

/// utoipa 5.5 serializes a link's `operationId` as `operation_id`, which
/// no tool reads; the extension map carries it under its proper name.
fn spell_link_targets(op: &mut Operation) {
    for response in op.responses.responses.values_mut() {
        let RefOr::T(response) = response else { continue };
        for link in response.links.values_mut() {
            let RefOr::T(link) = link else { continue };
            if !link.operation_id.is_empty() {
                let id = std::mem::take(&mut link.operation_id);
                link.extensions
                    .get_or_insert_with(Default::default)
                    .insert("operationId".into(), id.into());
            }
        }
    }
}

/// Adds the answers of the layers in front of the handler to `op`.
fn shared_answers(op: &mut Operation, changes_state: bool) {
    let mut add = |status: &str, name: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    };
    add("401", "Unauthorized");
    if changes_state {
        add("403", "Forbidden");
    }
    add("500", "Internal");
    add("503", "Unavailable");
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    if has_params || op.request_body.is_some() {
        add("400", "BadRequest");
    }
    if op.request_body.is_some() {
        add("413", "PayloadTooLarge");
        add("415", "UnsupportedMediaType");
    }
    if op.security.is_none() {
        op.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
    }
}

fn problem_response(status: &str, description: &str) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content);
    let string = || utoipa::openapi::ObjectBuilder::new().schema_type(Type::String);
    if status == "401" {
        let h = HeaderBuilder::new()
            .schema(string())
            .description(Some("`Bearer`"))
            .build();
        response = response.header("WWW-Authenticate", h);
    }
    if status == "503" {
        let h = HeaderBuilder::new()
            .schema(string())
            .description(Some("Seconds to wait before retrying"))
            .build();
        response = response.header("Retry-After", h);
    }
    response.build()
}

/// The document as served.
#[derive(Clone)]
pub struct Document(pub Arc<String>);

/// This OpenAPI document
///
/// Needs the API key like every other route: the API never answers
/// anything without one.
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
