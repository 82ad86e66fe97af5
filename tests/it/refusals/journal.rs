//! What the journal keeps (and what it never keeps), how it is read, and how
//! it stays bounded.

use super::*;
use finpay_qris::store::{Refusal, RefusalFilter};
use sqlx::types::Json;

const BODY: &str = r#"{"originalReferenceNo":"2020102977770000000009","latestTransactionStatus":"00","amount":{"value":"1.00","currency":"IDR"}}"#;

async fn a_refused_notification_is_journaled_without_its_bearer_token(b: Backend) {
    let app = TestApp::spawn_with(b, journal_env).await;
    let token = app.token().await;
    let ts = now_ts();
    // A valid notification first: it must not be journaled.
    let (status, _) = app
        .notify(&token, &unique_digits(), &notify_body("P-1", "R-1", "00", "1.00"))
        .await;
    assert_eq!(status, 200);
    let sig = Signing::as_sent(NOTIFY_PATH, Some(&token), BODY, &ts).hmac("wrong secret");
    let (status, v) = send_notify(&app, NOTIFY_PATH, Some(&token), &ts, &sig, BODY, "redaction").await;
    assert_eq!((status, v["responseCode"].as_str()), (401, Some("4015200")));

    let found = diagnosed(&app, 1).await;
    let r = &found["redaction"];
    let (_, all) = api_get(&app, "/api/v1/refusals").await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        1,
        "only the refusal is journaled: {all}"
    );
    assert_eq!(r["route"], "notify");
    assert_eq!(r["path"], NOTIFY_PATH);
    assert_eq!(r["responseCode"], "4015200");
    assert_eq!(r["reason"], "invalid_signature");
    assert_eq!(r["sender"], "127.0.0.1");
    assert_eq!(r["body"], BODY);
    assert_eq!(r["bodyBytes"], BODY.len());
    assert_eq!(r["bodyTruncated"], false);
    assert_eq!(r["headers"]["x-signature"], sig.as_str());
    let digest = super::raw_hash(&token);
    assert_eq!(
        r["headers"]["authorization"],
        format!("Bearer sha256:{}", &digest[..12])
    );

    let (status, one) = api_get(&app, &format!("/api/v1/refusals/{}", r["id"].as_str().unwrap())).await;
    assert_eq!(status, 200);
    assert_eq!(&one, r);
    for text in [all.to_string(), one.to_string()] {
        assert!(!text.contains(&token), "the bearer token was stored whole: {text}");
    }
    let stored = app
        .state
        .store
        .list_refusals(&RefusalFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!format!("{stored:?}").contains(&token));
    app.stop().await;
}

async fn refusals_are_filtered_by_reason_route_and_time_and_paged(b: Backend) {
    let app = TestApp::spawn_with(b, journal_env).await;
    let ts = now_ts();
    // No Authorization: refused before the handler reads the body, which is journaled all the same.
    let (status, _) = send_notify(&app, NOTIFY_PATH, None, &ts, "c2ln", BODY, "missing").await;
    assert_eq!(status, 400);
    let resp = app.token_request("SOMEONE-ELSE", &ts).await;
    assert_eq!(resp.status(), 401);
    let token = app.token().await;
    let sig = Signing::as_sent(NOTIFY_PATH, Some(&token), BODY, &ts).hmac("wrong secret");
    send_notify(&app, NOTIFY_PATH, Some(&token), &ts, &sig, BODY, "signature").await;
    diagnosed(&app, 1).await;

    let (_, page) = api_get(&app, "/api/v1/refusals?reason=missing_field").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["responseCode"], "4005202");
    assert_eq!(items[0]["body"], BODY, "{page}");
    assert!(
        items[0]["dialects"].is_null(),
        "not a signature refusal: not diagnosed: {page}"
    );
    let (_, page) = api_get(&app, "/api/v1/refusals?route=token").await;
    assert_eq!(page["items"][0]["reason"], "unknown_client", "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page) = api_get(&app, "/api/v1/refusals?from=2999-01-01T00:00:00Z").await;
    assert!(page["items"].as_array().unwrap().is_empty());

    let (_, first) = api_get(&app, "/api/v1/refusals?limit=2").await;
    assert_eq!(
        first["items"][0]["reason"], "invalid_signature",
        "newest first: {first}"
    );
    let cursor = first["nextCursor"].as_str().expect("a next page");
    let (_, second) = api_get(&app, &format!("/api/v1/refusals?limit=2&cursor={cursor}")).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["nextCursor"].is_null());
    assert_eq!(second["items"][0]["reason"], "missing_field");

    let (status, p) = api_get(&app, "/api/v1/refusals?reason=teapot").await;
    assert_eq!((status, p["field"].as_str()), (400, Some("reason")));
    let (status, _) = api_get(&app, &format!("/api/v1/refusals/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// A client can put a NUL in what the answer quotes (a JSON key): the
/// refusal is journaled all the same, on PostgreSQL too, whose text holds none.
async fn a_refusal_quoting_a_nul_is_journaled(b: Backend) {
    let app = TestApp::spawn_with(b, journal_env).await;
    let token = app.token().await;
    let (status, v) = app
        .notify(&token, &unique_digits(), r#"{"k\u0000":1,"k\u0000":2}"#)
        .await;
    assert_eq!((status, v["responseCode"].as_str()), (400, Some("4005200")), "{v}");
    let journaled = eventually("the refusal to be journaled", Duration::from_secs(10), || async {
        let (_, page) = api_get(&app, "/api/v1/refusals?reason=bad_request").await;
        page["items"].as_array().and_then(|items| items.first().cloned())
    })
    .await;
    assert!(
        journaled["message"].as_str().unwrap().contains("\\u0000"),
        "{journaled}"
    );
    app.stop().await;
}

async fn a_long_body_is_kept_up_to_the_bound(b: Backend) {
    let app = TestApp::spawn_with(b, |env| {
        journal_env(env);
        set_env(env, "FINPAY_QRIS__REFUSALS__BODY_LIMIT_BYTES", "16");
    })
    .await;
    let token = app.token().await;
    let ts = now_ts();
    let sig = Signing::as_sent(NOTIFY_PATH, Some(&token), BODY, &ts).hmac("wrong secret");
    send_notify(&app, NOTIFY_PATH, Some(&token), &ts, &sig, BODY, "long").await;
    let r = &diagnosed(&app, 1).await["long"];
    assert_eq!(r["body"], &BODY[..16]);
    assert_eq!(r["bodyBytes"], BODY.len());
    assert_eq!(r["bodyTruncated"], true);
    // The doctor saw the whole body: its string to sign names the full hash.
    let full_hash = finpay_qris::snap::body::body_hash(BODY.as_bytes());
    assert!(r["diagnosis"].as_str().unwrap().contains(&full_hash), "{r}");
    app.stop().await;
}

async fn refusals_and_diagnoses_are_counted_by_reason_and_dialect(b: Backend) {
    let app = TestApp::spawn_with(b, journal_env).await;
    refuse_one(&app, BODY, "lower", |s| s.method = "post").await;
    let m = &app.state.metrics;
    let refused = [("route", "notify"), ("reason", "invalid_signature")];
    assert_eq!(m.counter("finpay_qris_refusals_total", &refused), 1);
    assert_eq!(
        m.counter("finpay_qris_diagnoses_total", &[("dialect", "method-lowercase")]),
        1
    );
    let text = app
        .http
        .get(app.api_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"finpay_qris_diagnoses_total{dialect="method-lowercase"} 1"#),
        "{text}"
    );
    app.stop().await;
}

async fn over_the_doctors_budget_a_refusal_is_journaled_undiagnosed(b: Backend) {
    let app = TestApp::spawn_with(b, |env| set_env(env, "FINPAY_QRIS__REFUSALS__DIAGNOSES_PER_SEC", "0")).await;
    let token = app.token().await;
    let ts = now_ts();
    let sig = Signing::as_sent(NOTIFY_PATH, Some(&token), BODY, &ts).hmac(CLIENT_SECRET);
    send_notify(
        &app,
        NOTIFY_PATH,
        Some(&token),
        &ts,
        &sig.to_lowercase(),
        BODY,
        "skipped",
    )
    .await;
    let mut page = Value::Null;
    for _ in 0..400 {
        page = api_get(&app, "/api/v1/refusals").await.1;
        if !page["items"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = &page["items"][0];
    assert_eq!(r["reason"], "invalid_signature", "{page}");
    assert!(r["dialects"].is_null() && r["diagnosis"].is_null(), "{page}");
    let skipped = app
        .state
        .metrics
        .counter("finpay_qris_diagnoses_total", &[("dialect", "skipped")]);
    assert_eq!(skipped, 1);
    app.stop().await;
}

fn refusal(id: uuid::Uuid, received_at: chrono::DateTime<chrono::Utc>) -> Refusal {
    Refusal {
        id: id.to_string(),
        received_at,
        route: "notify".into(),
        path: NOTIFY_PATH.into(),
        response_code: "4015200".into(),
        reason: "invalid_signature".into(),
        message: "Unauthorized. Invalid Signature".into(),
        sender: None,
        headers: Json(serde_json::Map::new()),
        body: Some(b"{}".to_vec()),
        body_bytes: 2,
        dialects: Some(Json(vec!["token-missing".into()])),
        diagnosis: Some("The signature matches a string to sign without the access token".into()),
    }
}

async fn the_journal_is_pruned_by_age_and_by_count(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = &app.state.store;
    let now = finpay_qris::store::now();
    let rows: Vec<Refusal> = (0..6)
        .map(|i| refusal(uuid::Uuid::now_v7(), now - chrono::Duration::days(10 - i)))
        .collect();
    store.insert_refusals(&rows).await.unwrap();
    let all = RefusalFilter {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        store.list_refusals(&all).await.unwrap(),
        rows.iter().rev().cloned().collect::<Vec<_>>()
    );
    // Older than 8 days: the first two go; then only the newest 3 stay.
    let deleted = store
        .prune_refusals(now - chrono::Duration::days(8) - chrono::Duration::hours(1), 1000, 500)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let deleted = store
        .prune_refusals(now - chrono::Duration::days(365), 3, 500)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let left: Vec<String> = store
        .list_refusals(&all)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, rows[3..].iter().rev().map(|r| r.id.clone()).collect::<Vec<_>>());
    assert_eq!(store.get_refusal(&rows[5].id).await.unwrap(), Some(rows[5].clone()));
    app.stop().await;
}

async fn the_journal_writer_deletes_old_and_surplus_refusals(b: Backend) {
    let db = TestDb::new(b).await;
    let now = finpay_qris::store::now();
    let rows: Vec<Refusal> = [40, 3, 2, 1]
        .into_iter()
        .map(|days| refusal(uuid::Uuid::now_v7(), now - chrono::Duration::days(days)))
        .collect();
    {
        let store = finpay_qris::store::connect(&db.url, 2, 5).await.unwrap();
        store.migrate().await.unwrap();
        store.insert_refusals(&rows).await.unwrap();
    }
    let mut env = base_env(&db.url);
    set_env(&mut env, "FINPAY_QRIS__REFUSALS__MAX_ROWS", "2");
    let app = TestApp::spawn_env(db, env).await;
    let all = RefusalFilter {
        limit: 100,
        ..Default::default()
    };
    let mut left = Vec::new();
    for _ in 0..400 {
        left = app.state.store.list_refusals(&all).await.unwrap();
        if left.len() <= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids: Vec<&str> = left.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [rows[3].id.as_str(), rows[2].id.as_str()], "the newest two stay");
    app.stop().await;
}

/// A gateway's key in the query string is kept only as a hash, in the path
/// and in the diagnosis that quotes it.
async fn a_key_in_the_query_string_is_journaled_only_as_a_hash(b: Backend) {
    let app = TestApp::spawn_with(b, journal_env).await;
    let token = app.token().await;
    let ts = now_ts();
    let path = format!("{NOTIFY_PATH}?code=GatewayKey0123456789");
    let sig = Signing::as_sent(&path, Some(&token), BODY, &ts).hmac("wrong secret");
    let (status, _) = send_notify(&app, &path, Some(&token), &ts, &sig, BODY, "query-key").await;
    assert_eq!(status, 401);
    let token_path = format!("{TOKEN_PATH}?apikey=GatewayKey0123456789");
    let (status, _) = send_token(&app, &token_path, &ts, "bm90IGEgc2lnbmF0dXJl", "token-query-key").await;
    assert_eq!(status, 401);
    let found = diagnosed(&app, 2).await;
    let r = &found["query-key"];
    let stored = r["path"].as_str().unwrap();
    assert!(stored.starts_with(&format!("{NOTIFY_PATH}?code=sha256:")), "{stored}");
    assert!(!r.to_string().contains("GatewayKey0123456789"), "{r}");
    let t = &found["token-query-key"];
    let stored = t["path"].as_str().unwrap();
    assert!(
        stored.starts_with(&format!("{TOKEN_PATH}?apikey=sha256:")),
        "the path as received: {stored}"
    );
    assert!(!t.to_string().contains("GatewayKey0123456789"), "{t}");
    app.stop().await;
}

/// A storm of refusals is cut back to the count as it is written, not a
/// minute later (the clock's prune ran when the service started).
async fn a_storm_of_refusals_is_kept_to_the_count_as_it_is_written(b: Backend) {
    let app = TestApp::spawn_with(b, |env| {
        journal_env(env);
        set_env(env, "FINPAY_QRIS__REFUSALS__MAX_ROWS", "2");
    })
    .await;
    let token = app.token().await;
    let ts = now_ts();
    let sig = Signing::as_sent(NOTIFY_PATH, Some(&token), BODY, &ts).hmac("wrong secret");
    for i in 0..12 {
        let (status, _) = send_notify(&app, NOTIFY_PATH, Some(&token), &ts, &sig, BODY, &format!("storm-{i}")).await;
        assert_eq!(status, 401);
    }
    let all = RefusalFilter {
        limit: 100,
        ..Default::default()
    };
    let store = app.state.store.clone();
    eventually("the journal cut back to two", Duration::from_secs(10), || {
        let store = store.clone();
        let all = all.clone();
        async move { (store.list_refusals(&all).await.unwrap().len() <= 2).then_some(()) }
    })
    .await;
    app.stop().await;
}

on_both_backends!(
    a_key_in_the_query_string_is_journaled_only_as_a_hash,
    a_storm_of_refusals_is_kept_to_the_count_as_it_is_written,
    the_journal_writer_deletes_old_and_surplus_refusals,
    a_refused_notification_is_journaled_without_its_bearer_token,
    refusals_are_filtered_by_reason_route_and_time_and_paged,
    a_long_body_is_kept_up_to_the_bound,
    a_refusal_quoting_a_nul_is_journaled,
    refusals_and_diagnoses_are_counted_by_reason_and_dialect,
    over_the_doctors_budget_a_refusal_is_journaled_undiagnosed,
    the_journal_is_pruned_by_age_and_by_count,
);
