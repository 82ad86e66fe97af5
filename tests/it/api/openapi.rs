//! The OpenAPI document is generated from the routes: every documented
//! operation is routed, and the documented set is exactly the API's. The
//! document also states what the layers in front of the handlers answer and
//! the bounds the handlers enforce (`.ci/contract` checks it against the
//! running API with schemathesis; these tests keep its key facts in
//! `cargo test`).

use super::support::{get, get_as, kind};
use crate::common::{Backend, TestApp};
use serde_json::Value;
use std::collections::BTreeSet;

/// The API as promised to integrators.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/changes"),
    ("get", "/events"),
    ("get", "/events/{id}"),
    ("post", "/events/{id}/resend"),
    ("get", "/openapi.json"),
    ("get", "/payments"),
    ("post", "/payments"),
    ("get", "/payments/{id}"),
    ("get", "/payments/{id}/events"),
    ("get", "/payments/{id}/actions"),
    ("get", "/payments/{id}/qr.png"),
    ("get", "/payments/{id}/qr.svg"),
    ("get", "/payments/{id}/refunds"),
    ("post", "/payments/{id}/refunds"),
    ("post", "/payments/{id}/refunds/{refundId}/resolution"),
    ("post", "/payments/{id}/flag-resolution"),
    ("get", "/exports/payments.csv"),
    ("get", "/refusals"),
    ("get", "/refusals/{id}"),
    ("get", "/webhook-endpoints"),
    ("post", "/webhook-endpoints"),
    ("delete", "/webhook-endpoints/{id}"),
    ("get", "/webhook-endpoints/{id}"),
    ("patch", "/webhook-endpoints/{id}"),
    ("post", "/webhook-endpoints/{id}/resend-failed"),
    ("post", "/webhook-endpoints/{id}/rotate-secret"),
];

async fn the_openapi_document_matches_the_routes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
        {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let promised: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, promised);
    // Every documented operation is routed: the router answers it with
    // something other than its no-route (404) or wrong-method (405) problem.
    for (method, path) in &documented {
        let url = app.api_url(&format!(
            "/api/v1{}",
            path.replace("{id}", "no-such-payment")
                .replace("{refundId}", "no-such-refund")
        ));
        let req = match method.as_str() {
            "post" => app.http.post(url).json(&serde_json::json!({})),
            "patch" => app.http.patch(url).json(&serde_json::json!({})),
            "delete" => app.http.delete(url),
            _ => app.http.get(url),
        };
        let resp = req.bearer_auth(crate::common::API_KEY).send().await.unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path}");
        assert_ne!(kind(&body), "route-not-found", "{method} {path}");
    }
    // Each documented operation needs the API key.
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        assert!(
            op["security"].as_array().is_some_and(|s| !s.is_empty()),
            "{method} {path} documents no security"
        );
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    // Every reference resolves.
    let text = doc.to_string();
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref to {name}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    app.stop().await;
}

/// `#/components/responses/X` resolved, or the response itself.
fn resolve<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(r) => &doc["components"]["responses"][r.rsplit('/').next().unwrap()],
        None => response,
    }
}

fn parameter<'a>(doc: &'a Value, method: &str, path: &str, name: &str) -> &'a Value {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("{method} {path} documents no {name}"))
}

async fn the_document_states_auth_errors_bounds_and_links(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = get(&app, "/api/v1/openapi.json").await.json();
    let scheme = &doc["components"]["securitySchemes"]["api_key"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(doc["security"], serde_json::json!([{"api_key": []}]));
    for (method, path) in ROUTES {
        let op = &doc["paths"][path][method];
        assert_eq!(op["security"], serde_json::json!([{"api_key": []}]), "{method} {path}");
        let responses = op["responses"].as_object().unwrap();
        let mut expected = vec!["401", "500", "503"];
        if *method == "post" {
            expected.extend(["400", "413", "415", "422"]);
        }
        for status in expected {
            assert!(
                responses.contains_key(status),
                "{method} {path} does not document {status}"
            );
        }
        // Every error is a problem, in its media type.
        for (status, response) in responses.iter().filter(|(s, _)| !s.starts_with('2')) {
            let content = &resolve(&doc, response)["content"];
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                "{method} {path} {status}: {content}"
            );
        }
    }
    let limit = &parameter(&doc, "get", "/payments", "limit")["schema"];
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(200))
    );
    let scale = &parameter(&doc, "get", "/payments/{id}/qr.png", "scale")["schema"];
    assert_eq!(
        (scale["minimum"].as_i64(), scale["maximum"].as_i64()),
        (Some(1), Some(16))
    );
    let create = &doc["components"]["schemas"]["CreatePaymentRequest"];
    assert_eq!(
        create["properties"]["amount"]["pattern"],
        finpay_qris::api::money::AMOUNT_PATTERN
    );
    assert!(
        create["properties"]["amount"]["not"]["pattern"].is_string(),
        "zero is refused"
    );
    assert_eq!(
        create["not"]["required"],
        serde_json::json!(["validitySeconds", "validUntil"]),
        "validitySeconds and validUntil are not given together"
    );
    // `not: {pattern}` alone holds for null too, and would refuse a null note the handler accepts.
    assert_eq!(
        create["properties"]["note"]["not"]["type"], "string",
        "a null note stays allowed: {}",
        create["properties"]["note"]
    );
    assert_eq!(
        doc["components"]["schemas"]["TipsRequest"]["oneOf"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    // Links from creation to the payment's routes, by operationId, with its id.
    let operation_ids: BTreeSet<&str> = ROUTES
        .iter()
        .filter_map(|(m, p)| doc["paths"][p][m]["operationId"].as_str())
        .collect();
    for status in ["201", "200"] {
        let links = doc["paths"]["/payments"]["post"]["responses"][status]["links"]
            .as_object()
            .unwrap_or_else(|| panic!("POST /payments {status} has no links"));
        for (name, link) in links {
            let target = link["operationId"].as_str().unwrap_or_default();
            assert!(operation_ids.contains(target), "link {name} targets {target:?}");
            assert_eq!(link["parameters"]["id"], "$response.body#/id", "{name}");
        }
        for target in ["get_payment", "list_events", "list_refunds", "create_refund"] {
            assert!(
                links.values().any(|l| l["operationId"] == target),
                "{status} → {target}"
            );
        }
    }
    // The document itself answers as it says: 401 without the key.
    let r = get_as(&app, "/api/v1/openapi.json", None).await;
    assert_eq!(kind(&r.problem(401)), "unauthorized");
    app.stop().await;
}

crate::on_both_backends!(
    the_openapi_document_matches_the_routes,
    the_document_states_auth_errors_bounds_and_links,
);
