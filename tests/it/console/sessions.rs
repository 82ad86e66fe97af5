//! Signing in and out, the session cookie, expiry after inactivity, the
//! headers every page carries, and CSRF on every form.

use super::support::{flagged_payment, sign_in_form, sign_in_raw, spawn, Console, READ_KEY};
use crate::common::{self, Backend};
use chrono::Duration;
use finpay_qris::console::CSP;

async fn signing_in_exchanges_a_key_for_a_strict_session_cookie(backend: Backend) {
    let app = spawn(backend).await;
    let wrong = sign_in_raw(&app, "not-a-key-of-this-service-0123456789", &[]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_empty());
    assert!(wrong.body.contains("not a key of this service"));

    let ok = sign_in_raw(&app, common::API_KEY, &[]).await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header("location"), "/console");
    let cookie = ok.header("set-cookie");
    for part in ["finpay_console=", "HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP without a proxy: {cookie}");
    assert!(!cookie.contains(common::API_KEY), "the cookie is not the key");
    let cross_site = sign_in_raw(&app, common::API_KEY, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(cross_site.status, 403, "a sign-in posted from another site");
    assert!(cross_site.header("set-cookie").is_empty());
    let behind_tls = sign_in_raw(&app, common::API_KEY, &[("x-forwarded-proto", "https")]).await;
    assert!(behind_tls.header("set-cookie").contains("; Secure"));
    app.stop().await;
}

async fn pages_need_a_session_and_carry_strict_headers(backend: Backend) {
    let app = spawn(backend).await;
    let anonymous = super::support::client()
        .get(app.api_url("/console/payments"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(
        anonymous.headers()["location"],
        "/console/sign-in?next=%2Fconsole%2Fpayments"
    );

    let c = Console::sign_in(&app, common::API_KEY).await;
    for path in [
        "/console",
        "/console/payments",
        "/console/flagged",
        "/console/export",
        "/console/nope",
    ] {
        let p = c.get(path).await;
        assert_eq!(p.header("content-security-policy"), CSP, "{path}");
        assert_eq!(p.header("x-frame-options"), "DENY", "{path}");
        assert_eq!(p.header("cache-control"), "no-store", "{path}");
        assert!(!p.body.contains("<script"), "{path}: no script at all");
    }
    assert!(CSP.contains("default-src 'none'") && !CSP.contains("unsafe"));
    app.stop().await;
}

async fn signing_out_or_idling_ends_the_session(backend: Backend) {
    let app = spawn(backend).await;
    let c = Console::sign_in(&app, common::API_KEY).await;
    let out = c.submit("/console/sign-out", &[]).await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(c.get("/console").await.status, 303, "the old cookie no longer works");

    let idle = Console::sign_in(&app, common::API_KEY).await;
    assert_eq!(idle.get("/console").await.status, 200);
    // Everything idle longer than the setting (30 minutes) is over.
    let later = finpay_qris::store::now() + Duration::minutes(31);
    assert_eq!(app.state.store.purge_sessions(later).await.unwrap(), 1);
    let ended = idle.get("/console/payments?status=paid").await;
    assert_eq!(ended.status, 303);
    let to = ended.header("location");
    assert_eq!(
        to,
        "/console/sign-in?next=%2Fconsole%2Fpayments%3Fstatus%3Dpaid&ended=1"
    );
    let page = super::support::client()
        .get(app.api_url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Your session has ended"), "{page}");
    assert!(
        page.contains(r#"name="next" value="/console/payments?status=paid""#),
        "{page}"
    );
    // Signing in again leads back there, and only ever to a console page.
    let back = sign_in_raw(&app, common::API_KEY, &[]).await;
    assert_eq!(back.header("location"), "/console");
    let led = sign_in_form(
        &app,
        &[("key", common::API_KEY), ("next", "/console/payments?status=paid")],
        &[],
    )
    .await;
    assert_eq!(led.header("location"), "/console/payments?status=paid");
    let kept = sign_in_form(&app, &[("key", common::API_KEY), ("next", "//evil.example/")], &[]).await;
    assert_eq!(kept.header("location"), "/console", "never to another site");
    app.stop().await;
}

async fn a_session_expires_after_inactivity_and_is_never_revived(backend: Backend) {
    let app = spawn(backend).await;
    let store = &app.state.store;
    let hash = [7u8; 32];
    let t0 = finpay_qris::store::now();
    store
        .create_session(&hash, "finance", "0123456789abcdef", t0, t0 + Duration::minutes(30))
        .await
        .unwrap();
    let touched = store
        .touch_session(&hash, t0 + Duration::minutes(29), t0 + Duration::minutes(59))
        .await;
    assert_eq!(
        touched.unwrap(),
        Some(("finance".to_string(), "0123456789abcdef".to_string())),
        "activity extends it"
    );
    let idle = store
        .touch_session(&hash, t0 + Duration::minutes(60), t0 + Duration::minutes(90))
        .await;
    assert_eq!(idle.unwrap(), None, "idle past its end: over");
    let retried = store
        .touch_session(&hash, t0 + Duration::minutes(61), t0 + Duration::minutes(91))
        .await;
    assert_eq!(retried.unwrap(), None, "and it stays over");
    assert_eq!(store.touch_session(&[8u8; 32], t0, t0).await.unwrap(), None);
    app.stop().await;
}

async fn a_form_without_its_csrf_token_changes_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let p = flagged_payment(&app).await;
    let c = Console::sign_in(&app, common::API_KEY).await;
    let path = format!("/console/payments/{}/resolve", p.id);
    let fields = [("note", "checked"), ("confirm", "yes")];
    let missing = c.post(&path, &fields).await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("Nothing was changed"));
    let other = c
        .post(
            &path,
            &[("csrf", &"0".repeat(64)), ("note", "checked"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(other.status, 403);
    assert!(common::status_of(&app, &p.id).await.flagged.is_some(), "still flagged");

    let asked = c.submit(&path, &[("note", "checked with Finpay")]).await;
    assert_eq!(asked.status, 200, "first, a confirmation");
    assert!(asked.body.contains("Confirm the resolution") && asked.body.contains("checked with Finpay"));
    assert!(common::status_of(&app, &p.id).await.flagged.is_some(), "nothing yet");
    let done = c
        .submit(&path, &[("note", "checked with Finpay"), ("confirm", "yes")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(common::status_of(&app, &p.id).await.flagged.is_none());
    let actions = app.state.store.payment_actions(&p.id).await.unwrap();
    assert_eq!(
        (actions[0].actor.as_str(), actions[0].action.as_str()),
        ("finance", "resolve_flag")
    );
    assert_eq!(actions[0].detail["note"], "checked with Finpay");
    let page = c.get(&format!("/console/payments/{}", p.id)).await;
    assert!(page.body.contains("Flag resolution asked") && page.body.contains("finance"));
    assert!(page.body.contains("Flag resolved"), "the audit trail's entry");
    app.stop().await;
}

async fn a_read_session_sees_a_payment_but_cannot_act_on_it(backend: Backend) {
    let app = spawn(backend).await;
    let p = flagged_payment(&app).await;
    let c = Console::sign_in(&app, READ_KEY).await;
    let page = c.get(&format!("/console/payments/{}", p.id)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("has the read role"));
    assert!(!page.body.contains("/resolve\""), "no action forms");
    let tried = c
        .submit(
            &format!("/console/payments/{}/resolve", p.id),
            &[("note", "x"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(tried.status, 403);
    assert!(tried.body.contains("read role"));
    assert!(common::status_of(&app, &p.id).await.flagged.is_some());
    app.stop().await;
}

on_both_backends!(
    signing_in_exchanges_a_key_for_a_strict_session_cookie,
    pages_need_a_session_and_carry_strict_headers,
    signing_out_or_idling_ends_the_session,
    a_session_expires_after_inactivity_and_is_never_revived,
    a_form_without_its_csrf_token_changes_nothing,
    a_read_session_sees_a_payment_but_cannot_act_on_it
);
