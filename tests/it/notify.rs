//! The SNAP receiver over real HTTP, on both backends: the B2B token
//! endpoint and `qr-mpm-notify`.

use crate::common::*;
use finpay_qris::snap::{body, signature, timestamp};
use serde_json::Value;

/// Vector V3 (docs/protocol.md): the published notify sample, token and signature.
const V3_TOKEN: &str = "gp9HjjEj813Y9JGoqwOeOPWbnt4CUpvIJbU1mMU4a11MNDZ7Sg5u9a";
const V3_TIMESTAMP: &str = "2024-06-07T10:03:55+07:00";
const V3_SIGNATURE: &str = "Hg462Fq/P13QFIxSYa0TaaaEdQOIkcF0fkno/Xqpcn6aOXfeq5KwfCmUItemmh8dRFICK7x/1vd27iSLoJkJpA==";
const V3_PRETTY: &str = r#"{
"originalReferenceNo":"2020102977770000000009",
"originalPartnerReferenceNo":"2020102900000000000001",
"latestTransactionStatus":"00",
"transactionStatusDesc":"success",
"amount":{"value":"12345678.00","currency":"IDR"},
"additionalInfo":{
"cust_name": "CANDRA GUNAWAN GAHO",
"merchantName": "BB011 WARTEG MUSTIKA",
"rrn": "000019001390",
"nns_issuer": "93600014",
"nns_acquirer": "93600777",
"mpan": "9360077732302230011",
"cpan": "9360001410190013903",
"nmid": "ID1023249949984",
"sof_id": "qr_statis",
"invoice": "2020102900000000000001",
"issuer": "BCA",
"acquirer": "Finpay",
"note": "Transaction Remark",
"merchantId":"FM1234567700",
"FeeAmount":{"value":"1234.00","currency":"IDR"},
"paidTime":"2024-06-07T10:03:54+07:00",
"qr_type": "12",
"tips_indikator": "00"
}
}"#;

fn code(v: &Value) -> &str {
    v["responseCode"].as_str().unwrap_or("")
}

async fn store_token(app: &TestApp, token: &str, client: &str, valid_for_secs: i64) {
    let now = finpay_qris::store::now();
    app.state
        .store
        .insert_token(
            &finpay_qris::inbound::tokens::token_hash(token),
            client,
            now - chrono::Duration::seconds(1000),
            now + chrono::Duration::seconds(valid_for_secs),
        )
        .await
        .unwrap();
}

async fn the_published_v3_notification_is_accepted_as_sent(b: Backend) {
    // The sample is from 2024: widen the clock window so only the signature is judged.
    let app = TestApp::spawn_with(b, |env| {
        env.push((
            "FINPAY_QRIS__INBOUND__TIMESTAMP_TOLERANCE_SECS".into(),
            "1000000000".into(),
        ))
    })
    .await;
    store_token(&app, V3_TOKEN, CLIENT_ID, 600).await;
    let published = [
        ("X-TIMESTAMP", V3_TIMESTAMP.to_string()),
        ("X-SIGNATURE", V3_SIGNATURE.to_string()),
        ("X-EXTERNAL-ID", "41807553358950093184".to_string()),
    ];
    let resp = build(&app, V3_TOKEN, V3_PRETTY, &published).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), "2005200");
    assert_eq!(v["responseMessage"], "Successful");
    let p = app
        .state
        .store
        .get_payment("2020102900000000000001")
        .await
        .unwrap()
        .expect("static payment created");
    assert_eq!(p.status.as_str(), "paid");
    assert_eq!(p.amount_minor, 1_234_567_800);
    assert_eq!(p.origin, "notification");
    // Learnt now, so paid now: Finpay's paidTime (2024) is before the payment
    // existed here, and stays in the stored notification.
    assert_eq!(p.paid_at, Some(p.created_at));
    app.stop().await;
}

async fn token_endpoint_issues_a_bearer_token_for_finpay(b: Backend) {
    let app = TestApp::spawn(b).await;
    let resp = app.token_request(CLIENT_ID, &now_ts()).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-timestamp").is_some());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), "2007300");
    assert_eq!(v["tokenType"], "Bearer");
    assert_eq!(v["expiresIn"], "900");
    let token = v["accessToken"].as_str().unwrap();
    assert!(token.len() >= 43, "at least 256 bits");
    // Only the hash is stored.
    let hash = finpay_qris::inbound::tokens::token_hash(token);
    assert!(app.state.store.find_token(&hash).await.unwrap().is_some());
    assert!(app.state.store.find_token(token.as_bytes()).await.unwrap().is_none());
    app.stop().await;
}

async fn token_endpoint_refuses_bad_requests_with_precise_codes(b: Backend) {
    let app = TestApp::spawn(b).await;
    let ts = now_ts();
    // Wrong client key.
    let v: Value = app.token_request("SOMEONE-ELSE", &ts).await.json().await.unwrap();
    assert_eq!(code(&v), "4017300");
    assert_eq!(v["responseMessage"], "Unauthorized. Unknown Client");
    // Signature by another key.
    let other = finpay_qris::snap::keys::generate_private_key();
    let r = token_request_by(&app, &other, &ts, GRANT).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "4017300");
    assert_eq!(v["responseMessage"], "Unauthorized. Invalid Signature");
    for (body, expected) in [
        (r#"{"grantType":"password"}"#, "4007301"),
        (r#"{"other":1}"#, "4007302"),
        (r#"not json"#, "4007300"),
        (
            r#"{"grantType":"password","grantType":"client_credentials"}"#,
            "4007300",
        ),
    ] {
        let r = token_request_by(&app, &finpay_key(), &ts, body).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(code(&r.json::<Value>().await.unwrap()), expected, "{body}");
    }
    // A stale timestamp, correctly signed.
    let stale = finpay_qris::snap::timestamp::format_jakarta(chrono::Utc::now() - chrono::Duration::seconds(3600));
    let r = token_request_by(&app, &finpay_key(), &stale, GRANT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Missing header.
    let r = app
        .http
        .post(app.url(TOKEN_PATH))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "4007302");
    assert_eq!(v["responseMessage"], "Invalid Mandatory Field X-TIMESTAMP");
    app.stop().await;
}

async fn the_rotation_key_is_accepted_on_token_requests(b: Backend) {
    let next = finpay_qris::snap::keys::generate_private_key();
    let next_pem = finpay_qris::snap::keys::public_key_pem(&next.to_public_key());
    let app = TestApp::spawn_with(b, |env| {
        env.push(("FINPAY_QRIS__INBOUND__PUBLIC_KEY_NEXT".into(), next_pem))
    })
    .await;
    let r = token_request_by(&app, &next, &now_ts(), GRANT).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn a_paid_notification_settles_a_generated_payment_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = insert_pending_payment(app.state.store.as_ref(), "INV-1001", 1_000_000).await;
    let token = app.token().await;
    let body = notify_body("INV-1001", "FP-1001", "00", "10000.00");
    let (status, v) = app.notify(&token, &unique_digits(), &body).await;
    assert_eq!((status, code(&v)), (200, "2005200"));
    // Finpay retrying the settlement with a new X-EXTERNAL-ID: acknowledged, no second effect.
    let (status, v) = app.notify(&token, &unique_digits(), &body).await;
    assert_eq!((status, code(&v)), (200, "2005200"));
    let paid = app.state.store.get_payment(&p.id).await.unwrap().unwrap();
    assert_eq!(paid.status.as_str(), "paid");
    assert_eq!(paid.reference_no.as_deref(), Some("FP-1001"));
    let events = app.state.store.payment_events(&p.id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "status_changed").count(), 1);
    assert_eq!(events.iter().filter(|e| e.kind == "notification").count(), 2);
    app.stop().await;
}

async fn a_later_status_never_leaves_a_terminal_state(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let (_, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-T", "FP-T", "00", "5000.00"))
        .await;
    assert_eq!(code(&v), "2005200");
    let (_, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-T", "FP-T", "06", "5000.00"))
        .await;
    assert_eq!(code(&v), "2005200", "acknowledged, but not applied");
    let p = app.state.store.get_payment("INV-T").await.unwrap().unwrap();
    assert_eq!(p.status.as_str(), "paid");
    assert!(app
        .state
        .store
        .payment_events(&p.id)
        .await
        .unwrap()
        .iter()
        .any(|e| e.kind == "ignored"));
    app.stop().await;
}

async fn a_contradicting_amount_is_stored_and_flagged_not_applied(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let (_, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-M", "FP-M", "03", "5000.00"))
        .await;
    assert_eq!(code(&v), "2005200");
    let (_, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-M", "FP-M", "00", "4000.00"))
        .await;
    assert_eq!(code(&v), "2005200");
    let p = app.state.store.get_payment("INV-M").await.unwrap().unwrap();
    assert_eq!(p.status.as_str(), "pending");
    assert!(p.flagged.as_deref().unwrap_or("").contains("40.00") || p.flagged.is_some());
    assert_eq!(count_notifications(&app.db.url).await, 2);
    app.stop().await;
}

async fn same_external_id_and_body_is_answered_as_the_first_time(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let ext = unique_digits();
    let body = notify_body("INV-D", "FP-D", "00", "1500.00");
    let first = app.notify(&token, &ext, &body).await;
    let second = app.notify(&token, &ext, &body).await;
    assert_eq!(first, second);
    assert_eq!(code(&first.1), "2005200");
    assert_eq!(count_notifications(&app.db.url).await, 1);
    // The same document spaced otherwise is signed the same: the same body.
    let spaced = body.replace(",\"", ", \"").replace("\":", "\": ");
    assert_ne!(spaced, body);
    assert_eq!(app.notify(&token, &ext, &spaced).await, first);
    assert_eq!(count_notifications(&app.db.url).await, 1);
    // Same key, other body.
    let (status, v) = app
        .notify(&token, &ext, &notify_body("INV-D", "FP-D", "06", "1500.00"))
        .await;
    assert_eq!((status, code(&v)), (409, "4095200"));
    app.stop().await;
}

async fn an_external_id_is_unique_within_the_senders_day_not_ours(b: Backend) {
    // Two days of X-TIMESTAMP are accepted only with a wide clock window.
    let app = TestApp::spawn_with(b, |env| {
        env.push(("FINPAY_QRIS__INBOUND__TIMESTAMP_TOLERANCE_SECS".into(), "200000".into()))
    })
    .await;
    let token = app.token().await;
    let ext = unique_digits();
    let url = app.url(NOTIFY_PATH);
    let yesterday = timestamp::format_jakarta(chrono::Utc::now() - chrono::Duration::days(1));
    let sent = |body: String, ts: String| {
        let req = signed_notify(&app.http, &url, NOTIFY_PATH, &token, &ext, &body, &ts);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = sent(notify_body("INV-Y1", "FP-Y1", "00", "1000.00"), yesterday).await;
    assert_eq!((s, code(&v)), (200, "2005200"));
    // The same X-EXTERNAL-ID, used again by the sender the next day for another notification.
    let (s, v) = sent(notify_body("INV-Y2", "FP-Y2", "00", "1000.00"), now_ts()).await;
    assert_eq!((s, code(&v)), (200, "2005200"), "{v}");
    assert_eq!(count_notifications(&app.db.url).await, 2);
    app.stop().await;
}

async fn identical_deliveries_at_the_same_moment_have_one_effect(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let ext = unique_digits();
    let body = notify_body("INV-C", "FP-C", "00", "2500.00");
    let ts = now_ts();
    let sends =
        (0..16).map(|_| signed_notify(&app.http, &app.url(NOTIFY_PATH), NOTIFY_PATH, &token, &ext, &body, &ts).send());
    for r in futures::future::join_all(sends).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(code(&r.json::<Value>().await.unwrap()), "2005200");
    }
    assert_eq!(count_notifications(&app.db.url).await, 1);
    let p = app.state.store.get_payment("INV-C").await.unwrap().unwrap();
    let events = app.state.store.payment_events(&p.id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "notification").count(), 1);
    app.stop().await;
}

async fn bodies_are_verified_as_received_not_re_serialized(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    // Non-ASCII, escaped slashes, a \u escape and spaces inside strings, pretty-printed by the sender.
    let body = "{\n  \"originalReferenceNo\" : \"FP-U\",\n  \"originalPartnerReferenceNo\": \"INV-U\",\n  \"latestTransactionStatus\": \"00\",\n  \"transactionStatusDesc\": \"sukses  dibayar\",\n  \"amount\": { \"value\": \"750.00\", \"currency\": \"IDR\" },\n  \"additionalInfo\": { \"cust_name\": \"D\u{e9}d\u{e9} Caf\\u00e9\", \"callback\": \"https:\\/\\/shop.example\\/cb\" }\n}";
    let (status, v) = app.notify(&token, &unique_digits(), body).await;
    assert_eq!((status, code(&v)), (200, "2005200"), "{v}");
    // The same body signed over a re-serialized form is refused.
    let reserialized = serde_json::to_string(&serde_json::from_str::<Value>(body).unwrap()).unwrap();
    let ts = now_ts();
    let hash = body::body_hash(reserialized.as_bytes());
    let sig = signature::HmacKey::new(CLIENT_SECRET.as_bytes()).sign(&signature::symmetric_string_to_sign(
        "POST",
        NOTIFY_PATH,
        &token,
        &hash,
        &ts,
    ));
    let r = build(&app, &token, body, &[("X-TIMESTAMP", ts), ("X-SIGNATURE", sig)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(code(&r.json::<Value>().await.unwrap()), "4015200");
    app.stop().await;
}

async fn the_signed_path_includes_the_query_string(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let path = format!("{NOTIFY_PATH}?merchant=7");
    let body = notify_body("INV-Q", "FP-Q", "00", "100.00");
    let r = signed_notify(
        &app.http,
        &app.url(&path),
        &path,
        &token,
        &unique_digits(),
        &body,
        &now_ts(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // Signed without the query string: refused.
    let r = signed_notify(
        &app.http,
        &app.url(&path),
        NOTIFY_PATH,
        &token,
        &unique_digits(),
        &body,
        &now_ts(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

async fn forged_stale_and_malformed_notifications_are_refused_precisely(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let body = notify_body("INV-X", "FP-X", "00", "100.00");
    let url = app.url(NOTIFY_PATH);
    let send = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let ok = |ts: &str| signed_notify(&app.http, &url, NOTIFY_PATH, &token, &unique_digits(), &body, ts);

    // Bad signature: signed with another secret.
    let ts = now_ts();
    let sts = signature::symmetric_string_to_sign("POST", NOTIFY_PATH, &token, &body::body_hash(body.as_bytes()), &ts);
    let forged = signature::HmacKey::new(b"guessed-secret").sign(&sts);
    let (s, v) = send(build(
        &app,
        &token,
        &body,
        &[("X-SIGNATURE", forged), ("X-TIMESTAMP", ts)],
    ))
    .await;
    assert_eq!((s, code(&v)), (401, "4015200"));
    assert_eq!(v["responseMessage"], "Unauthorized. Invalid Signature");
    // Stale and future timestamps, correctly signed.
    for secs in [-3600i64, 3600] {
        let ts = finpay_qris::snap::timestamp::format_jakarta(chrono::Utc::now() + chrono::Duration::seconds(secs));
        let (s, v) = send(ok(&ts)).await;
        assert_eq!((s, code(&v)), (401, "4015200"), "{secs}");
        assert!(v["responseMessage"].as_str().unwrap().contains("Timestamp"));
    }
    // Timestamp forms: Z and milliseconds are accepted when signed verbatim.
    let z = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let (s, _) = send(ok(&z)).await;
    assert_eq!(s, 200);
    // Unknown, expired and foreign tokens.
    for (t, valid) in [("never-issued", 0), ("expired-token", -10)] {
        if valid != 0 {
            store_token(&app, t, CLIENT_ID, valid).await;
        }
        let req = signed_notify(&app.http, &url, NOTIFY_PATH, t, &unique_digits(), &body, &now_ts());
        let (s, v) = send(req).await;
        assert_eq!((s, code(&v)), (401, "4015201"), "{t}");
        assert_eq!(v["responseMessage"], "Invalid Token (B2B)");
    }
    store_token(&app, "other-client-token", "ANOTHER-CLIENT", 600).await;
    let req = signed_notify(
        &app.http,
        &url,
        NOTIFY_PATH,
        "other-client-token",
        &unique_digits(),
        &body,
        &now_ts(),
    );
    assert_eq!(code(&send(req).await.1), "4015201");
    // Missing and malformed headers.
    for h in [
        "X-TIMESTAMP",
        "X-SIGNATURE",
        "X-PARTNER-ID",
        "X-EXTERNAL-ID",
        "CHANNEL-ID",
        "Authorization",
    ] {
        let (s, v) = send(build_without(&app, &token, &body, &[], &[h])).await;
        assert_eq!((s, code(&v)), (400, "4005202"), "{h}");
        assert_eq!(v["responseMessage"], format!("Invalid Mandatory Field {h}"));
    }
    for (h, bad) in [
        ("X-TIMESTAMP", "07/06/2024 10:03"),
        ("X-EXTERNAL-ID", "not valid!"),
        ("Authorization", "Basic abc"),
    ] {
        let (s, v) = send(build(&app, &token, &body, &[(h, bad.to_string())])).await;
        assert_eq!((s, code(&v)), (400, "4005201"), "{h}");
        assert_eq!(v["responseMessage"], format!("Invalid Field Format {h}"));
    }
    // A security header sent twice is refused, whichever copy is genuine.
    let (s, v) = send(ok(&now_ts()).header("X-SIGNATURE", "AAAA")).await;
    assert_eq!((s, code(&v)), (400, "4005201"));
    // Wrong content type.
    let (s, v) = send(build(
        &app,
        &token,
        &body,
        &[("Content-Type", "text/plain".to_string())],
    ))
    .await;
    assert_eq!((s, code(&v)), (400, "4005201"));
    assert_eq!(v["responseMessage"], "Invalid Field Format Content-Type");
    app.stop().await;
}

/// A notification as Finpay sends it (fresh timestamp, new X-EXTERNAL-ID,
/// HMAC over `body` with the client secret), with some headers replaced.
fn build(app: &TestApp, token: &str, body: &str, replace: &[(&str, String)]) -> reqwest::RequestBuilder {
    build_without(app, token, body, replace, &[])
}

/// As `build`, and the headers named in `omit` are not sent at all.
fn build_without(
    app: &TestApp,
    token: &str,
    body: &str,
    replace: &[(&str, String)],
    omit: &[&str],
) -> reqwest::RequestBuilder {
    let ts = replace
        .iter()
        .find(|(k, _)| *k == "X-TIMESTAMP")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(now_ts);
    let mut headers = notify_headers(NOTIFY_PATH, token, &unique_digits(), body, &ts);
    for (k, v) in replace {
        if let Some(slot) = headers.iter_mut().find(|(name, _)| name == k) {
            slot.1 = v.clone();
        }
    }
    let mut req = app.http.post(app.url(NOTIFY_PATH));
    for (k, v) in headers.into_iter().filter(|(k, _)| !omit.contains(k)) {
        req = req.header(k, v);
    }
    req.body(body.to_string())
}

/// A B2B token request for `CLIENT_ID` at `ts`, signed by `key`.
fn token_request_by(app: &TestApp, key: &rsa::RsaPrivateKey, ts: &str, body: &'static str) -> reqwest::RequestBuilder {
    signed_token_request(&app.http, &app.url(TOKEN_PATH), key, CLIENT_ID, ts, body)
}

async fn signed_bodies_with_bad_fields_name_the_field(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let cases = [
        (
            r#"{"originalPartnerReferenceNo":"A","latestTransactionStatus":"00","amount":{"value":"1.00","currency":"IDR"}}"#,
            "4005202",
            "originalReferenceNo",
        ),
        (
            r#"{"originalReferenceNo":"R","latestTransactionStatus":"00","amount":{"value":"1.5","currency":"IDR"}}"#,
            "4005201",
            "amount.value",
        ),
        (
            r#"{"originalReferenceNo":"R","latestTransactionStatus":"00","amount":{"value":"1.50"}}"#,
            "4005202",
            "amount.currency",
        ),
        (
            r#"{"originalReferenceNo":"R","amount":{"value":"1.50","currency":"IDR"}}"#,
            "4005202",
            "latestTransactionStatus",
        ),
    ];
    for (body, expected, field) in cases {
        let (s, v) = app.notify(&token, &unique_digits(), body).await;
        assert_eq!((s, code(&v)), (400, expected), "{body}");
        assert!(v["responseMessage"].as_str().unwrap().contains(field), "{v}");
    }
    let (s, v) = app.notify(&token, &unique_digits(), "[1,2").await;
    assert_eq!((s, code(&v)), (400, "4005200"));
    // JSON, but not an object: the same answer as the token endpoint gives.
    let (s, v) = app.notify(&token, &unique_digits(), "[1,2]").await;
    assert_eq!((s, code(&v)), (400, "4005200"), "{v}");
    assert_eq!(v["responseMessage"], "Bad Request. Body is not a JSON object", "{v}");
    // A key given twice: the stored body would say one amount and the
    // effect another, so neither is taken.
    let twice = r#"{"originalReferenceNo":"R","latestTransactionStatus":"00","amount":{"value":"10000.00","currency":"IDR"},"amount":{"value":"1.00","currency":"IDR"}}"#;
    let (s, v) = app.notify(&token, &unique_digits(), twice).await;
    assert_eq!((s, code(&v)), (400, "4005200"), "{v}");
    assert!(
        v["responseMessage"]
            .as_str()
            .unwrap()
            .contains("duplicate key `amount`"),
        "{v}"
    );
    assert_eq!(count_notifications(&app.db.url).await, 0);
    app.stop().await;
}

async fn references_with_control_characters_are_refused_before_storage(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let nul = r"FP-\u0000-1";
    let cases = [
        (notify_body("INV-CC-1", nul, "00", "1.00"), "originalReferenceNo"),
        (notify_body(nul, "FP-CC-2", "00", "1.00"), "originalPartnerReferenceNo"),
        (
            notify_body(r"INV-\u001b[2J", "FP-CC-3", "00", "1.00"),
            "originalPartnerReferenceNo",
        ),
    ];
    for (body, field) in cases {
        let (s, v) = app.notify(&token, &unique_digits(), &body).await;
        assert_eq!((s, code(&v)), (400, "4005201"), "{body}: {v}");
        assert!(v["responseMessage"].as_str().unwrap().contains(field), "{v}");
    }
    assert_eq!(count_notifications(&app.db.url).await, 0);
    app.stop().await;
}

async fn a_nul_in_the_status_description_still_settles_the_payment(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = insert_pending_payment(app.state.store.as_ref(), "INV-NUL", 1_000_000).await;
    let token = app.token().await;
    let body = notify_body("INV-NUL", "FP-NUL", "00", "10000.00").replace(r#""success""#, r#""paid\u0000ok""#);
    let (status, v) = app.notify(&token, &unique_digits(), &body).await;
    assert_eq!((status, code(&v)), (200, "2005200"), "{v}");
    let paid = app.state.store.get_payment(&p.id).await.unwrap().unwrap();
    assert_eq!(paid.status.as_str(), "paid");
    let entry = &events_of(&app, &p.id, "notification").await[0];
    assert_eq!(entry["transactionStatusDesc"], "paid\u{FFFD}ok", "{entry}");
    app.stop().await;
}

async fn an_oversized_body_is_refused_without_being_stored(b: Backend) {
    let app = TestApp::spawn_with(b, |env| {
        env.push(("FINPAY_QRIS__SERVER__BODY_LIMIT_BYTES".into(), "4096".into()))
    })
    .await;
    let token = app.token().await;
    let filler = "x".repeat(8000);
    let body = format!(
        r#"{{"originalReferenceNo":"R","latestTransactionStatus":"00","amount":{{"value":"1.00","currency":"IDR"}},"additionalInfo":{{"pad":"{filler}"}}}}"#
    );
    let (s, v) = app.notify(&token, &unique_digits(), &body).await;
    assert_eq!((s, code(&v)), (400, "4005200"));
    assert_eq!(count_notifications(&app.db.url).await, 0);
    app.stop().await;
}

async fn asymmetric_mode_verifies_finpays_rsa_signature_without_a_token(b: Backend) {
    let app = TestApp::spawn_with(b, |env| {
        env.push(("FINPAY_QRIS__INBOUND__SIGNATURE".into(), "asymmetric".into()))
    })
    .await;
    let body = notify_body("INV-A", "FP-A", "00", "100.00");
    let ts = now_ts();
    let sts = signature::asymmetric_string_to_sign("POST", NOTIFY_PATH, &body::body_hash(body.as_bytes()), &ts);
    // No bearer token in this mode: the RSA signature alone authenticates Finpay.
    let req = |sig: String| {
        build_without(
            &app,
            "",
            &body,
            &[("X-TIMESTAMP", ts.clone()), ("X-SIGNATURE", sig)],
            &["Authorization"],
        )
        .send()
    };
    assert_eq!(
        req(signature::rsa_sign(&finpay_key(), &sts)).await.unwrap().status(),
        200
    );
    let other = finpay_qris::snap::keys::generate_private_key();
    assert_eq!(req(signature::rsa_sign(&other, &sts)).await.unwrap().status(), 401);
    app.stop().await;
}

async fn without_inbound_credentials_snap_answers_general_error_and_health_is_up(b: Backend) {
    let app = TestApp::spawn_with(b, |env| env.retain(|(k, _)| !k.starts_with("FINPAY_QRIS__INBOUND__"))).await;
    assert_eq!(
        app.http.get(app.url("/health/live")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        app.http.get(app.url("/health/ready")).send().await.unwrap().status(),
        200
    );
    let r = app.token_request(CLIENT_ID, &now_ts()).await;
    assert_eq!(r.status(), 500);
    assert_eq!(code(&r.json::<Value>().await.unwrap()), "5007300");
    let (s, v) = app.notify("t", &unique_digits(), "{}").await;
    assert_eq!((s, code(&v)), (500, "5005200"));
    app.stop().await;
}

/// The database keeps a currency to three capital letters, on both backends.
async fn a_currency_is_three_capital_letters(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = insert_pending_payment(app.state.store.as_ref(), "INV-CUR", 1_000).await;
    for (currency, allowed) in [
        ("USD", true),
        ("1DR", false),
        ("idr", false),
        ("IDRX", false),
        ("ID", false),
    ] {
        let result = with_connection!(&app.db.url, |c| sqlx::query(
            "UPDATE payments SET currency = $1 WHERE id = $2"
        )
        .bind(currency)
        .bind(&p.id)
        .execute(&mut c)
        .await
        .err());
        match result {
            None => assert!(allowed, "{currency} was accepted"),
            Some(e) => assert!(
                !allowed && e.as_database_error().is_some_and(|d| d.is_check_violation()),
                "{currency}: {e}"
            ),
        }
    }
    app.stop().await;
}

/// Each column holds values of its type on both backends (SQLite's tables
/// are STRICT): an amount is an integer, never text or a fraction, and the
/// day of a notification's key is a date, so a lookalike cannot slip past
/// the unique key.
async fn an_amount_is_an_integer_and_a_key_day_is_a_date(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = insert_pending_payment(app.state.store.as_ref(), "INV-INT", 1_000).await;
    let set_amount = |amount: &'static str| {
        let (url, id) = (app.db.url.clone(), p.id.clone());
        async move {
            with_connection!(&url, |c| sqlx::query(
                "UPDATE payments SET amount_minor = $1 WHERE id = $2"
            )
            .bind(amount)
            .bind(&id)
            .execute(&mut c)
            .await
            .err())
        }
    };
    assert!(set_amount("abc").await.is_some(), "text stored as an amount");
    assert!(set_amount("150.5").await.is_some(), "a fraction stored as an amount");

    let token = app.token().await;
    let body = notify_body("INV-INT", "FP-INT", "00", "10.00");
    let (status, _) = app.notify(&token, &unique_digits(), &body).await;
    assert_eq!(status, 200);
    let refused = with_connection!(&app.db.url, |c| sqlx::query(
        "UPDATE notifications SET jakarta_day = '2026-01-01 '"
    )
    .execute(&mut c)
    .await
    .err());
    match b {
        Backend::Sqlite => assert!(refused.is_some(), "a day with a trailing space was stored"),
        // The date type reads the lookalike as the date it names.
        Backend::Postgres => {
            assert!(refused.is_none());
            let day: String = with_connection!(&app.db.url, |c| sqlx::query_scalar(
                "SELECT jakarta_day::text FROM notifications"
            )
            .fetch_one(&mut c)
            .await
            .unwrap());
            assert_eq!(day, "2026-01-01");
        }
    }
    app.stop().await;
}

/// A payment's audit trail refers to it by a foreign key: the database
/// refuses to delete a payment that has one (every payment does).
async fn a_payment_with_an_audit_trail_cannot_be_deleted(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = insert_pending_payment(app.state.store.as_ref(), "INV-KEEP", 1_000).await;
    let refused = with_connection!(&app.db.url, |c| sqlx::query("DELETE FROM payments WHERE id = $1")
        .bind(&p.id)
        .execute(&mut c)
        .await
        .err())
    .expect("deleting a payment must fail");
    assert!(
        refused
            .as_database_error()
            .is_some_and(|e| e.is_foreign_key_violation()),
        "{refused}"
    );
    assert!(app.state.store.get_payment(&p.id).await.unwrap().is_some());
    app.stop().await;
}

/// A notification's audit entry and the notification it names are about
/// one payment: the database refuses an entry naming another payment's
/// notification, and moving a notification that has an entry.
async fn an_audit_entry_names_a_notification_of_its_own_payment(b: Backend) {
    let app = TestApp::spawn(b).await;
    let a = insert_pending_payment(app.state.store.as_ref(), "INV-A", 1_000).await;
    let other = insert_pending_payment(app.state.store.as_ref(), "INV-B", 1_000).await;
    let token = app.token().await;
    let (status, _) = app
        .notify(&token, &unique_digits(), &notify_body("INV-A", "FP-A", "00", "10.00"))
        .await;
    assert_eq!(status, 200);
    let refused = with_connection!(&app.db.url, |c| sqlx::query(
        "INSERT INTO payment_events (payment_id, kind, notification_id, detail, created_at) \
         SELECT $1, 'notification', id, '{}', received_at FROM notifications WHERE payment_id = $2"
    )
    .bind(&other.id)
    .bind(&a.id)
    .execute(&mut c)
    .await
    .err())
    .expect("an entry naming another payment's notification must be refused");
    assert!(
        refused
            .as_database_error()
            .is_some_and(|e| e.is_foreign_key_violation()),
        "{refused}"
    );
    let moved = with_connection!(&app.db.url, |c| sqlx::query("UPDATE notifications SET payment_id = $1")
        .bind(&other.id)
        .execute(&mut c)
        .await
        .err())
    .expect("moving a notification away from its entry must be refused");
    assert!(
        moved.as_database_error().is_some_and(|e| e.is_foreign_key_violation()),
        "{moved}"
    );
    app.stop().await;
}

/// Retention clears a notification's raw body and headers once it is older
/// than the retention period, and keeps what the service still needs: the key
/// and body hash (a late replay is still answered as a replay), the payment
/// and the outcome. Younger notifications keep their body.
async fn old_notification_bodies_are_cleared_and_their_replays_still_recognised(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert_eq!(app.state.settings.worker.retention_days, 90, "the default");
    let token = app.token().await;
    let (old, young) = (unique_digits(), unique_digits());
    let old_body = notify_body("INV-OLD", "FP-OLD", "00", "1500.00");
    assert_eq!(code(&app.notify(&token, &old, &old_body).await.1), "2005200");
    let young_body = notify_body("INV-NEW", "FP-NEW", "00", "1500.00");
    assert_eq!(code(&app.notify(&token, &young, &young_body).await.1), "2005200");
    let url = app.db.url.as_str();
    let hundred_days_ago = finpay_qris::store::now() - chrono::Duration::days(100);
    with_connection!(url, |c| sqlx::query(
        "UPDATE notifications SET received_at = $1 WHERE external_id = $2"
    )
    .bind(hundred_days_ago)
    .bind(&old)
    .execute(&mut c)
    .await
    .unwrap()
    .rows_affected());

    let cleared = finpay_qris::worker::apply_retention(&app.state).await;
    assert_eq!(cleared, 1);
    /// External id, raw body, headers, outcome, payment's reference.
    type Kept = (String, Option<String>, Option<String>, String, String);
    let kept: Vec<Kept> = with_connection!(url, |c| {
        sqlx::query_as(
            "SELECT n.external_id, n.raw_body, CAST(n.headers AS TEXT), n.outcome, p.partner_reference_no \
             FROM notifications n JOIN payments p ON p.id = n.payment_id ORDER BY n.received_at",
        )
        .fetch_all(&mut c)
        .await
        .unwrap()
    });
    assert_eq!(
        (kept[0].0.as_str(), &kept[0].1, &kept[0].2),
        (old.as_str(), &None, &None)
    );
    assert_eq!((kept[0].3.as_str(), kept[0].4.as_str()), ("applied", "INV-OLD"));
    assert!(
        kept[1].1.is_some() && kept[1].2.is_some(),
        "a young notification keeps its body"
    );
    // The same key and body again: a replay, not a second effect.
    assert_eq!(code(&app.notify(&token, &old, &old_body).await.1), "2005200");
    assert_eq!(count_notifications(url).await, 2);
    app.stop().await;
}

/// Retention runs on its own: here with no Finpay credentials and the
/// reconciliation worker off (a first start on the embedded default), a
/// replica starting on the database clears what has outlived the period.
async fn retention_runs_without_finpay_credentials_or_the_worker(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert!(app.state.finpay.is_none());
    let token = app.token().await;
    let old = unique_digits();
    let body = notify_body("INV-RET", "FP-RET", "00", "1500.00");
    assert_eq!(code(&app.notify(&token, &old, &body).await.1), "2005200");
    let url = app.db.url.clone();
    let long_ago = finpay_qris::store::now() - chrono::Duration::days(100);
    with_connection!(&url, |c| sqlx::query("UPDATE notifications SET received_at = $1")
        .bind(long_ago)
        .execute(&mut c)
        .await
        .unwrap()
        .rows_affected());

    let settings = finpay_qris::Settings::load_from(None, base_env(&url)).unwrap();
    let replica = finpay_qris::Application::build(settings).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(replica.run(stop.clone()));
    eventually(
        "the old body to be cleared",
        std::time::Duration::from_secs(20),
        || async {
            let left: i64 = with_connection!(&url, |c| sqlx::query_scalar(
                "SELECT COUNT(*) FROM notifications WHERE raw_body IS NOT NULL"
            )
            .fetch_one(&mut c)
            .await
            .unwrap());
            (left == 0).then_some(())
        },
    )
    .await;
    stop.cancel();
    running.await.unwrap().unwrap();
    app.stop().await;
}

/// A notification whose references name two payments (ours of A, Finpay's
/// of B) is stored and flags A; neither payment is paid.
async fn references_naming_two_payments_flag_ours_and_pay_neither(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    for (ours, theirs) in [("INV-A", "FP-A"), ("INV-B", "FP-B")] {
        let (_, v) = app
            .notify(&token, &unique_digits(), &notify_body(ours, theirs, "03", "1500.00"))
            .await;
        assert_eq!(code(&v), "2005200");
    }
    let (_, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-A", "FP-B", "00", "1500.00"))
        .await;
    assert_eq!(code(&v), "2005200", "stored: nothing acknowledged is lost");
    let a = app.state.store.get_payment("INV-A").await.unwrap().unwrap();
    let b_ = app.state.store.get_payment("INV-B").await.unwrap().unwrap();
    assert_eq!((a.status.as_str(), b_.status.as_str()), ("pending", "pending"));
    assert!(
        a.flagged.as_deref().unwrap_or("").contains("references contradict"),
        "{a:?}"
    );
    assert_eq!(count_notifications(&app.db.url).await, 3);
    app.stop().await;
}

/// Finpay said failed, then success: money may have moved. The payment stays
/// failed and is flagged for a person (it used to be only "ignored").
async fn a_success_after_a_stored_failure_is_flagged(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let (_, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-F", "FP-F", "06", "1500.00"))
        .await;
    assert_eq!(code(&v), "2005200");
    let (_, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-F", "FP-F", "00", "1500.00"))
        .await;
    assert_eq!(code(&v), "2005200");
    let p = app.state.store.get_payment("INV-F").await.unwrap().unwrap();
    assert_eq!(p.status.as_str(), "failed");
    assert!(
        p.flagged.as_deref().unwrap_or("").contains("success after failed"),
        "{p:?}"
    );
    assert_eq!(events_of(&app, &p.id, "flagged").await.len(), 1);
    app.stop().await;
}

/// A notification for a payment we do not know creates it (static QR), but
/// not with a zero amount or a status that names no payment state: refused
/// with 4005201 naming the field, and nothing stored.
async fn an_unknown_payment_with_a_zero_amount_or_unknown_status_is_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let (status, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-Z", "FP-Z", "00", "0.00"))
        .await;
    assert_eq!((status, code(&v)), (400, "4005201"), "{v}");
    assert!(v["responseMessage"].as_str().unwrap().contains("amount.value"), "{v}");
    let (status, v) = app
        .notify(&token, &unique_digits(), &notify_body("INV-U", "FP-U", "07", "1500.00"))
        .await;
    assert_eq!((status, code(&v)), (400, "4005201"), "{v}");
    assert!(
        v["responseMessage"]
            .as_str()
            .unwrap()
            .contains("latestTransactionStatus"),
        "{v}"
    );
    assert_eq!(count_notifications(&app.db.url).await, 0);
    assert!(app.state.store.get_payment("INV-Z").await.unwrap().is_none());
    app.stop().await;
}

/// QRIS payments are in rupiah: one we never generated, said to be paid in
/// another currency, is stored as Finpay said and flagged for a person.
async fn an_unknown_payment_in_another_currency_is_stored_flagged(b: Backend) {
    let app = TestApp::spawn(b).await;
    let token = app.token().await;
    let body = notify_body("INV-USD", "FP-USD", "00", "10.00").replace("\"IDR\"", "\"USD\"");
    let (status, v) = app.notify(&token, &unique_digits(), &body).await;
    assert_eq!((status, code(&v)), (200, "2005200"), "{v}");
    let p = app.state.store.get_payment("INV-USD").await.unwrap().expect("stored");
    assert_eq!((p.currency.as_str(), p.amount_minor), ("USD", 1_000));
    assert!(
        p.flagged.as_deref().is_some_and(|f| f.contains("USD")),
        "{:?}",
        p.flagged
    );
    app.stop().await;
}

on_both_backends!(
    an_external_id_is_unique_within_the_senders_day_not_ours,
    an_audit_entry_names_a_notification_of_its_own_payment,
    an_unknown_payment_in_another_currency_is_stored_flagged,
    a_payment_with_an_audit_trail_cannot_be_deleted,
    references_naming_two_payments_flag_ours_and_pay_neither,
    a_success_after_a_stored_failure_is_flagged,
    an_unknown_payment_with_a_zero_amount_or_unknown_status_is_refused,
    old_notification_bodies_are_cleared_and_their_replays_still_recognised,
    the_published_v3_notification_is_accepted_as_sent,
    token_endpoint_issues_a_bearer_token_for_finpay,
    token_endpoint_refuses_bad_requests_with_precise_codes,
    the_rotation_key_is_accepted_on_token_requests,
    a_paid_notification_settles_a_generated_payment_once,
    a_later_status_never_leaves_a_terminal_state,
    a_contradicting_amount_is_stored_and_flagged_not_applied,
    same_external_id_and_body_is_answered_as_the_first_time,
    identical_deliveries_at_the_same_moment_have_one_effect,
    bodies_are_verified_as_received_not_re_serialized,
    the_signed_path_includes_the_query_string,
    forged_stale_and_malformed_notifications_are_refused_precisely,
    signed_bodies_with_bad_fields_name_the_field,
    references_with_control_characters_are_refused_before_storage,
    a_currency_is_three_capital_letters,
    an_amount_is_an_integer_and_a_key_day_is_a_date,
    retention_runs_without_finpay_credentials_or_the_worker,
    a_nul_in_the_status_description_still_settles_the_payment,
    an_oversized_body_is_refused_without_being_stored,
    asymmetric_mode_verifies_finpays_rsa_signature_without_a_token,
    without_inbound_credentials_snap_answers_general_error_and_health_is_up,
);
