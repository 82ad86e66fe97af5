//! API keys: health and metrics are open, `/api/v1` is not, and without a
//! configured key the API refuses to serve rather than run open.

use super::support::{get, get_as, kind};
use crate::common::{self, Backend, TestApp};

async fn health_and_metrics_need_no_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/health/live", "/health/ready", "/metrics"] {
        let r = get_as(&app, path, None).await;
        assert_eq!(r.status, 200, "{path}");
    }
    app.stop().await;
}

async fn api_routes_require_a_valid_bearer_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = "/api/v1/payments";
    for key in [None, Some("wrong-key"), Some(""), Some("test-api-key-012345678")] {
        let r = get_as(&app, path, key).await;
        let p = r.problem(401);
        assert_eq!(kind(&p), "unauthorized");
        assert!(p.get("detail").is_none(), "401 says nothing more: {p}");
        assert_eq!(
            r.headers.get("www-authenticate").and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
    }
    // Another scheme with the right key is not accepted either.
    let r = app
        .http
        .get(app.api_url(path))
        .header("Authorization", format!("Basic {}", common::API_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(get_as(&app, path, Some(common::API_KEY)).await.status, 200);
    app.stop().await;
}

async fn any_of_several_keys_is_accepted(backend: Backend) {
    let app = TestApp::spawn_with(backend, |env| {
        env.retain(|(k, _)| k != "FINPAY_QRIS__API__KEYS");
        env.push((
            "FINPAY_QRIS__API__KEYS".into(),
            "first-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaa, second-key-bbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
        ));
    })
    .await;
    for key in [
        "first-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "second-key-bbbbbbbbbbbbbbbbbbbbbbbbbbb",
    ] {
        assert_eq!(get_as(&app, "/api/v1/payments", Some(key)).await.status, 200, "{key}");
    }
    assert_eq!(
        get_as(&app, "/api/v1/payments", Some(common::API_KEY)).await.status,
        401
    );
    app.stop().await;
}

async fn without_keys_the_api_answers_503_naming_the_setting(backend: Backend) {
    let app = TestApp::spawn_with(backend, |env| env.retain(|(k, _)| k != "FINPAY_QRIS__API__KEYS")).await;
    for key in [None, Some(common::API_KEY)] {
        let p = get_as(&app, "/api/v1/payments", key).await.problem(503);
        assert_eq!(kind(&p), "not-configured");
        assert!(
            p["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("FINPAY_QRIS__API__KEYS"),
            "{p}"
        );
    }
    // The rest of the service works: health on the internal listener, the receiver on the public one.
    assert_eq!(get_as(&app, "/health/live", None).await.status, 200);
    assert!(!app.token().await.is_empty());
    app.stop().await;
}

async fn unknown_routes_and_methods_are_problems(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = get(&app, "/api/v1/nothing-here").await.problem(404);
    assert_eq!(kind(&p), "route-not-found");
    let r = app
        .http
        .delete(app.api_url("/api/v1/payments"))
        .bearer_auth(common::API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    app.stop().await;
}

crate::on_both_backends!(
    health_and_metrics_need_no_key,
    api_routes_require_a_valid_bearer_key,
    any_of_several_keys_is_accepted,
    without_keys_the_api_answers_503_naming_the_setting,
    unknown_routes_and_methods_are_problems,
);
