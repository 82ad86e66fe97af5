//! Key roles in the REST API: a `read` key reads everything and changes
//! nothing; every state-changing call answers it 403.

use super::support::{spawn, READ_KEY};
use crate::api::support::{get_as, kind, paid_by_notification, refunds_path, unreachable_finpay};
use crate::common::{self, Backend};
use serde_json::json;

async fn a_read_key_reads_everything_but_changes_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let paid = paid_by_notification(&app, "10000.00").await;
    let id = paid["id"].as_str().unwrap();
    for path in [
        format!("/api/v1/payments/{id}"),
        format!("/api/v1/payments/{id}/events"),
        format!("/api/v1/payments/{id}/actions"),
        refunds_path(id),
        "/api/v1/payments?flagged=true".to_string(),
    ] {
        assert_eq!(get_as(&app, &path, Some(READ_KEY)).await.status, 200, "{path}");
    }
    let post = |path: String, body: serde_json::Value| {
        let req = app.http.post(app.api_url(&path)).bearer_auth(READ_KEY).json(&body);
        async move { req.send().await.unwrap() }
    };
    for (path, body) in [
        (refunds_path(id), json!({"amount": "1000", "reason": "x"})),
        ("/api/v1/payments".to_string(), json!({"amount": "1000"})),
        (format!("/api/v1/payments/{id}/flag-resolution"), json!({"note": "x"})),
    ] {
        let r = post(path.clone(), body).await;
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let p: serde_json::Value = r.json().await.unwrap();
        assert_eq!(kind(&p), "forbidden", "{p}");
        assert!(
            p["detail"].as_str().unwrap().contains("\"support\""),
            "names the key's name: {p}"
        );
        assert!(!p.to_string().contains(READ_KEY), "never the key");
    }
    let refresh = get_as(&app, &format!("/api/v1/payments/{id}?refresh=true"), Some(READ_KEY)).await;
    assert_eq!(kind(&refresh.problem(403)), "forbidden");
    let refunds = get_as(&app, &refunds_path(id), Some(READ_KEY)).await.json();
    assert_eq!(refunds["items"], json!([]), "nothing was refunded");
    assert!(
        app.state.store.payment_actions(id).await.unwrap().is_empty(),
        "nothing was done"
    );
    app.stop().await;
}

async fn an_operate_keys_actions_are_recorded_with_its_name(backend: Backend) {
    let app = crate::common::TestApp::spawn_with(backend, |env| {
        unreachable_finpay(env);
        super::support::roles_env(env);
    })
    .await;
    let paid = paid_by_notification(&app, "10000.00").await;
    let id = paid["id"].as_str().unwrap();
    // Finpay does not answer: the refund's outcome is unknown, but the ask is on record.
    let r = crate::api::support::refund("2500", "one item returned")
        .send(&app, id)
        .await;
    assert_eq!(r.status, 502);
    let actions = crate::api::support::get(&app, &format!("/api/v1/payments/{id}/actions"))
        .await
        .json();
    let items = actions["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{actions}");
    assert_eq!(items[0]["actor"], "finance");
    assert_eq!(items[0]["action"], "refund");
    assert_eq!(items[0]["detail"]["reason"], "one item returned");
    assert_eq!(items[0]["detail"]["amount"], "2500.00");
    assert!(!actions.to_string().contains(common::API_KEY), "never the key");
    app.stop().await;
}

on_both_backends!(
    a_read_key_reads_everything_but_changes_nothing,
    an_operate_keys_actions_are_recorded_with_its_name
);
