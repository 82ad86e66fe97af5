//! Payments waiting for a person, through the REST API: the `flagged`
//! filter and the resolution with a note.

use super::support::{flagged_payment, spawn, READ_KEY};
use crate::api::support::{get, kind, paid_by_notification, post};
use crate::common::{self, Backend};
use serde_json::json;

/// The ids of the payments `GET path` lists.
async fn listed(app: &common::TestApp, path: &str) -> Vec<String> {
    let list = get(app, path).await.json();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

async fn a_flag_is_listed_until_resolved_with_a_note(backend: Backend) {
    let app = spawn(backend).await;
    let flagged = flagged_payment(&app).await;
    let fine = paid_by_notification(&app, "5000.00").await;
    let ids = listed(&app, "/api/v1/payments?flagged=true").await;
    assert_eq!(ids, [flagged.id.as_str()]);
    assert!(!ids.iter().any(|id| id == fine["id"].as_str().unwrap()));
    let others = listed(&app, "/api/v1/payments?flagged=false").await;
    assert_eq!(
        others,
        [fine["id"].as_str().unwrap()],
        "flagged=false: only the payments not flagged"
    );
    get(&app, "/api/v1/payments?flagged=maybe").await.problem(400);

    let path = format!("/api/v1/payments/{}/flag-resolution", flagged.id);
    let r = app
        .http
        .post(app.api_url(&path))
        .bearer_auth(READ_KEY)
        .json(&json!({"note": "looks fine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let blank = post(&app, &path, &json!({"note": "  "}), None).await.problem(422);
    assert_eq!(blank["field"], "note");

    let resolved = post(
        &app,
        &path,
        &json!({"note": " Amount confirmed with Finpay support "}),
        None,
    )
    .await;
    assert_eq!(resolved.status, 200, "{}", String::from_utf8_lossy(&resolved.bytes));
    assert!(resolved.json().get("flagged").is_none_or(|f| f.is_null()));
    let again = post(&app, &path, &json!({"note": "twice"}), None).await.problem(409);
    assert_eq!(kind(&again), "payment-not-flagged");
    let listed = get(&app, "/api/v1/payments?flagged=true").await.json();
    assert_eq!(listed["items"], json!([]));

    let actions = app.state.store.payment_actions(&flagged.id).await.unwrap();
    assert_eq!(actions.len(), 1, "the refused attempts left nothing");
    assert_eq!(actions[0].actor, "finance");
    assert_eq!(actions[0].detail["note"], "Amount confirmed with Finpay support");
    assert_eq!(actions[0].detail["flag"].as_str(), flagged.flagged.as_deref());
    let still = common::status_of(&app, &flagged.id).await;
    assert_eq!(still.status, flagged.status, "the status is not changed");
    app.stop().await;
}

on_both_backends!(a_flag_is_listed_until_resolved_with_a_note);
