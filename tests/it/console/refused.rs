//! The Refused requests pages: the journal as the REST list filters it, one
//! refusal with its headers, its body as inert text and the doctor's
//! dialects in words; today's refusals on the overview; and wrong keys on
//! the sign-in form limited per address.

use super::support::{roles_env, sign_in_raw, Console, READ_KEY};
use crate::common::{self, Backend, TestApp};
use crate::refusals::{journal_env, raw_hash, refuse_one, send_notify, Signing};

/// A body whose text is markup, and a header whose value is markup.
const HOSTILE_BODY: &str = r#"{"originalReferenceNo":"R-1","latestTransactionStatus":"<script>alert('x')</script>","amount":{"value":"1.00","currency":"IDR"}}"#;
const HOSTILE_CASE: &str = "<img src=x onerror=alert(1)>";

async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |env| {
        roles_env(env);
        journal_env(env);
    })
    .await
}

async fn a_refused_signature_is_shown_with_its_dialect_and_its_body_inert(backend: Backend) {
    let app = spawn(backend).await;
    let refusal = refuse_one(&app, HOSTILE_BODY, HOSTILE_CASE, |s| s.method = "post").await;
    let id = refusal["id"].as_str().unwrap();
    // Any role reads it.
    let c = Console::sign_in(&app, READ_KEY).await;

    let list = c.get("/console/refusals").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("Refused requests"));
    assert!(
        list.body.contains(&format!("href=\"/console/refusals/{id}\"")),
        "{}",
        list.body
    );
    assert!(list.body.contains("Invalid signature") && list.body.contains("4015200"));
    assert!(list.body.contains("<code>method-lowercase</code>"));
    assert!(list.body.contains("+07:00"), "times in Jakarta with the offset");

    let page = c.get(&format!("/console/refusals/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(page.header("content-security-policy").contains("default-src 'none'"));
    assert!(page.body.contains("method-lowercase"));
    assert!(
        page.body.contains("the HTTP method in lower case"),
        "the dialect's sentence"
    );
    assert!(
        page.body.contains("write the method in upper case"),
        "and what to change"
    );
    assert!(page.body.contains(common::NOTIFY_PATH) && page.body.contains("127.0.0.1"));
    assert!(page.body.contains("+07:00"));
    // The body and the header, as text: escaped, never markup.
    assert!(
        page.body.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!page.body.contains("<script") && !page.body.contains("<img src=x"));
    // Indented, members in the order sent.
    assert!(page
        .body
        .contains("{\n  &quot;originalReferenceNo&quot;: &quot;R-1&quot;,\n  &quot;latestTransactionStatus&quot;"));
    // The bearer token only as the start of its hash.
    let auth = refusal["headers"]["authorization"].as_str().unwrap();
    assert!(auth.starts_with("Bearer sha256:") && page.body.contains(auth));
    app.stop().await;
}

async fn a_signature_no_dialect_explains_says_so_plainly(backend: Backend) {
    let app = spawn(backend).await;
    let token = app.token().await;
    let ts = common::now_ts();
    let sig = Signing::as_sent(common::NOTIFY_PATH, Some(&token), HOSTILE_BODY, &ts).hmac("another secret");
    let (status, _) = send_notify(
        &app,
        common::NOTIFY_PATH,
        Some(&token),
        &ts,
        &sig,
        HOSTILE_BODY,
        "wrong",
    )
    .await;
    assert_eq!(status, 401);
    let found = crate::refusals::diagnosed(&app, 1).await;
    let id = found["wrong"]["id"].as_str().unwrap();
    let c = Console::sign_in(&app, common::API_KEY).await;
    let page = c.get(&format!("/console/refusals/{id}")).await;
    assert!(
        page.body.contains("No known dialect explains this signature."),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&token), "the token is never shown");
    assert!(
        !page.body.contains(&raw_hash(&token)[..20]),
        "only a short prefix of its hash"
    );
    let list = c.get("/console/refusals").await;
    assert!(list.body.contains("no known dialect"));
    app.stop().await;
}

async fn refusals_are_filtered_and_counted_on_the_overview(backend: Backend) {
    let app = spawn(backend).await;
    refuse_one(&app, HOSTILE_BODY, "lowercase", |s| s.method = "post").await;
    // A token request from a client this service does not know.
    let resp = app.token_request("SOMEONE-ELSE", &common::now_ts()).await;
    assert_eq!(resp.status(), 401);
    // The journal is written in the background.
    common::eventually(
        "the token refusal journaled",
        std::time::Duration::from_secs(10),
        || async {
            let (_, page) = crate::refusals::api_get(&app, "/api/v1/refusals?route=token").await;
            (page["items"].as_array().map_or(0, Vec::len) == 1).then_some(())
        },
    )
    .await;
    let c = Console::sign_in(&app, common::API_KEY).await;

    let only_tokens = c.get("/console/refusals?route=token").await;
    // A row's reason cell (the form's options name every reason).
    let (token_row, signature_row) = ("<td>Unknown client</td>", "<td>Invalid signature</td>");
    assert!(only_tokens.body.contains(token_row) && !only_tokens.body.contains(signature_row));
    let signatures = c.get("/console/refusals?reason=invalid_signature").await;
    assert!(signatures.body.contains(signature_row) && !signatures.body.contains(token_row));
    let future = c.get("/console/refusals?from=2999-01-01T00:00").await;
    assert!(future.body.contains("No refused requests match."));
    let bad = c.get("/console/refusals?reason=%3Cb%3E&cursor=nope").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Reason: not a reason.") && !bad.body.contains("<b>"));
    let unknown = c.get("/console/refusals/not-an-id").await;
    assert_eq!(unknown.status, 404);

    let overview = c.get("/console").await;
    assert!(overview.body.contains("Requests refused today, by reason"));
    let row =
        regex::Regex::new(r#"reason=invalid_signature&amp;from=[^"]+">Invalid signature</a></td><td class="num">1<"#)
            .unwrap();
    assert!(row.is_match(&overview.body), "{}", overview.body);
    assert!(overview.body.contains("href=\"/console/refusals\""));
    app.stop().await;
}

async fn wrong_keys_from_one_address_are_refused_for_a_while(backend: Backend) {
    let app = spawn(backend).await;
    for _ in 0..finpay_qris::console::throttle::ATTEMPTS {
        let wrong = sign_in_raw(&app, "not-a-key-of-this-service-0123456789", &[]).await;
        assert_eq!(wrong.status, 401);
    }
    let throttled = sign_in_raw(&app, "not-a-key-of-this-service-0123456789", &[]).await;
    assert_eq!(throttled.status, 429);
    assert!(throttled.body.contains("Too many sign-in attempts"));
    let wait: u64 = throttled.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Even the right key waits: the form checks nothing until then.
    let right = sign_in_raw(&app, common::API_KEY, &[]).await;
    assert_eq!(right.status, 429);
    assert!(right.header("set-cookie").is_empty());
    app.stop().await;
}

async fn right_keys_do_not_use_up_the_attempts(backend: Backend) {
    let app = spawn(backend).await;
    for _ in 0..finpay_qris::console::throttle::ATTEMPTS * 2 {
        assert_eq!(sign_in_raw(&app, READ_KEY, &[]).await.status, 303);
    }
    app.stop().await;
}

on_both_backends!(
    a_refused_signature_is_shown_with_its_dialect_and_its_body_inert,
    a_signature_no_dialect_explains_says_so_plainly,
    refusals_are_filtered_and_counted_on_the_overview,
    wrong_keys_from_one_address_are_refused_for_a_while,
    right_keys_do_not_use_up_the_attempts
);
