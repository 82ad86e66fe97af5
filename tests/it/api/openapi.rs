//! The OpenAPI document is generated from the routes: every documented
//! operation is routed, and the documented set is exactly the API's.

use crate::common::{Backend, TestApp};
use super::support::{get, kind};
use std::collections::BTreeSet;

/// The API as promised to integrators.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/openapi.json"),
    ("get", "/payments"),
    ("post", "/payments"),
    ("get", "/payments/{id}"),
    ("get", "/payments/{id}/events"),
    ("get", "/payments/{id}/qr.png"),
    ("get", "/payments/{id}/qr.svg"),
    ("get", "/payments/{id}/refunds"),
    ("post", "/payments/{id}/refunds"),
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
        let url = app.api_url(&format!("/api/v1{}", path.replace("{id}", "no-such-payment")));
        let req = match method.as_str() {
            "post" => app.http.post(url).json(&serde_json::json!({})),
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

crate::on_both_backends!(the_openapi_document_matches_the_routes);
