//! Reading: one payment, filtered pages, the audit trail, QR images.

use super::support::{attach_qr, get, insert_payment, kind, post};
use crate::common::{Backend, TestApp};
use serde_json::json;
use std::collections::HashSet;

async fn an_unknown_payment_is_a_404_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["", "/events", "/refunds", "/qr.svg", "/qr.png"] {
        let p = get(&app, &format!("/api/v1/payments/no-such-payment{path}"))
            .await
            .problem(404);
        assert_eq!(kind(&p), "payment-not-found", "{path}");
    }
    app.stop().await;
}

async fn control_characters_in_ids_and_references_are_refused_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (path, field) in [
        ("/api/v1/payments/INV%00", "id"),
        ("/api/v1/payments/INV%00/events", "id"),
        ("/api/v1/payments/INV%0A/refunds", "id"),
        ("/api/v1/payments/INV%7F/qr.svg", "id"),
        ("/api/v1/payments?reference=a%00b", "reference"),
        ("/api/v1/payments?reference=a%1Bb", "reference"),
        ("/api/v1/events/%01abc", "id"),
        ("/api/v1/webhook-endpoints/%01abc", "id"),
        ("/api/v1/refusals/%00", "id"),
        ("/api/v1/payments/%FF", "id"),
        ("/api/v1/events/%FF", "id"),
    ] {
        let p = get(&app, path).await.problem(400);
        assert_eq!(p["field"], field, "{path}");
    }
    let bad = "INV\u{0}1";
    let p = post(
        &app,
        "/api/v1/payments",
        &json!({"amount": "1", "partnerReferenceNo": bad}),
        None,
    )
    .await
    .problem(422);
    assert_eq!(p["field"], "partnerReferenceNo");
    let refund = json!({"amount": "1", "reason": "x", "partnerRefundNo": bad});
    let p = post(&app, "/api/v1/payments/INV-1/refunds", &refund, None)
        .await
        .problem(422);
    assert_eq!(p["field"], "partnerRefundNo");
    app.stop().await;
}

async fn a_payment_is_found_by_id_or_partner_reference(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = insert_payment(&app, 1_250_050).await;
    for key in [p.id.clone(), p.partner_reference_no.clone().unwrap()] {
        let r = get(&app, &format!("/api/v1/payments/{key}")).await;
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["id"], p.id.as_str());
        assert_eq!(v["amount"], "12500.50", "amounts are exact decimal strings");
        assert_eq!(v["currency"], "IDR");
        assert_eq!(v["status"], "pending");
        assert_eq!(v["refundedAmount"], "0.00");
        assert_eq!(v["refundableAmount"], "0.00");
        assert!(v.get("leaseOwner").is_none(), "internal fields stay internal");
    }
    let p = get(&app, &format!("/api/v1/payments/{}?refresh=maybe", p.id))
        .await
        .problem(400);
    assert_eq!(p["field"], "refresh");
    app.stop().await;
}

async fn refresh_without_finpay_is_503(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = insert_payment(&app, 10000).await;
    let p = get(&app, &format!("/api/v1/payments/{}?refresh=true", p.id))
        .await
        .problem(503);
    assert_eq!(kind(&p), "not-configured");
    app.stop().await;
}

async fn list_filters_by_status_reference_and_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = insert_payment(&app, 10000).await;
    let b = attach_qr(&app, &insert_payment(&app, 20000).await, "QR-B").await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let c = insert_payment(&app, 30000).await;
    let ids = |path: &str| {
        let app = &app;
        let path = path.to_string();
        async move {
            let r = get(app, &path).await;
            assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.bytes));
            r.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids("/api/v1/payments").await,
        vec![c.id.clone(), b.id.clone(), a.id.clone()],
        "newest first"
    );
    let rn = b.reference_no.clone().unwrap();
    assert_eq!(
        ids(&format!("/api/v1/payments?reference={rn}")).await,
        vec![b.id.clone()]
    );
    let prn = a.partner_reference_no.clone().unwrap();
    assert_eq!(
        ids(&format!("/api/v1/payments?reference={prn}")).await,
        vec![a.id.clone()]
    );
    assert_eq!(ids("/api/v1/payments?status=pending&limit=1").await, vec![c.id.clone()]);
    assert!(ids("/api/v1/payments?status=paid").await.is_empty());
    let t = urlencode(&between.to_rfc3339());
    assert_eq!(
        ids(&format!("/api/v1/payments?createdFrom={t}")).await,
        vec![c.id.clone()]
    );
    assert_eq!(
        ids(&format!("/api/v1/payments?createdTo={t}")).await,
        vec![b.id.clone(), a.id.clone()]
    );
    assert_eq!(
        ids(&format!("/api/v1/payments?created_to={t}")).await.len(),
        2,
        "snake_case is accepted too"
    );
    for (query, field) in [
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=AAAAAAAAAAAAAAAAAAAAAB", "cursor"),
        ("createdFrom=yesterday", "createdFrom"),
        // Year 10000 in UTC: SQLite, storing times as text, would sort it first.
        ("createdTo=9999-12-31T23:30:00-01:00", "createdTo"),
        ("colour=red", "colour"),
    ] {
        let p = get(&app, &format!("/api/v1/payments?{query}")).await.problem(400);
        assert_eq!(p["field"], field, "{query}: {p}");
    }
    // Well formed, but naming no payment: a list by status would otherwise end silently.
    let gone = get(&app, "/api/v1/payments?status=paid&cursor=AAAAAAAAAAAAAAAAAAAAAA")
        .await
        .problem(404);
    assert_eq!(
        (gone["field"].as_str(), kind(&gone)),
        (Some("cursor"), "cursor-not-found")
    );
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// Follows `nextCursor` to the end; returns the ids in order.
async fn page_through(app: &TestApp, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/payments?limit={limit}&cursor={c}"),
            None => format!("/api/v1/payments?limit={limit}"),
        };
        let r = get(app, &path).await;
        assert_eq!(r.status, 200);
        let v = r.json();
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_string()));
        match v.get("nextCursor") {
            Some(c) => cursor = Some(c.as_str().expect("a cursor, or no nextCursor at all").to_string()),
            None => return seen,
        }
    }
}

async fn pages_follow_the_cursor_to_the_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(insert_payment(&app, 100 + i).await.id);
    }
    ids.reverse();
    assert_eq!(page_through(&app, 3).await, ids);
    assert_eq!(
        page_through(&app, 7).await,
        ids,
        "an exactly full last page has no next cursor"
    );
    app.stop().await;
}

async fn pagination_neither_skips_nor_repeats_under_concurrent_inserts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut before = Vec::new();
    for i in 0..25 {
        before.push(insert_payment(&app, 100 + i).await.id);
    }
    let inserter = {
        let store = app.state.store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                let id = uuid::Uuid::now_v7();
                let now = finpay_qris::store::now();
                let p = finpay_qris::store::NewPayment {
                    id: id.to_string(),
                    partner_reference_no: format!("C{}", id.simple()),
                    amount_minor: 1_000 + i,
                    currency: "IDR".into(),
                    note: None,
                    valid_until: now + chrono::Duration::minutes(5),
                    created_at: now,
                };
                ids.push(store.create_api_payment(&p, None, None).await.unwrap().id);
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            ids
        })
    };
    let seen = page_through(&app, 4).await;
    let inserted = inserter.await.unwrap();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no payment is listed twice");
    for id in &before {
        assert!(
            unique.contains(id),
            "payment {id}, there before paging began, was skipped"
        );
    }
    let known: HashSet<&String> = before.iter().chain(&inserted).collect();
    assert!(seen.iter().all(|id| known.contains(id)));
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "strictly newest first");
    app.stop().await;
}

async fn events_are_the_audit_trail_oldest_first_as_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = insert_payment(&app, 50000).await;
    attach_qr(&app, &p, "QR").await;
    app.state
        .store
        .add_event(&p.id, "query", &serde_json::json!({"by": "test", "n": 1}))
        .await
        .unwrap();
    let r = get(
        &app,
        &format!("/api/v1/payments/{}/events", p.partner_reference_no.unwrap()),
    )
    .await;
    assert_eq!(r.status, 200);
    let items = r.json()["items"].as_array().unwrap().clone();
    let kinds: Vec<&str> = items.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "generated", "query"]);
    assert_eq!(
        items[2]["detail"],
        serde_json::json!({"by": "test", "n": 1}),
        "detail is JSON, not a string"
    );
    assert!(items[0]["createdAt"].as_str().is_some());
    app.stop().await;
}

async fn qr_images_render_the_stored_qr_content(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let content = "00020101021226590013ID.CO.QRIS.WWW011893600914000000000102150000000000000000303UMI5204541153033605406100.005802ID5907WARTEG 6007JAKARTA6304ABCD";
    let p = attach_qr(&app, &insert_payment(&app, 10000).await, content).await;
    let svg = get(&app, &format!("/api/v1/payments/{}/qr.svg", p.id)).await;
    assert_eq!(svg.status, 200);
    assert_eq!(svg.content_type(), "image/svg+xml");
    let text = String::from_utf8(svg.bytes.clone()).unwrap();
    assert!(text.contains("<svg") && text.contains("</svg>"));
    let png = get(&app, &format!("/api/v1/payments/{}/qr.png?scale=2", p.id)).await;
    assert_eq!(png.status, 200);
    assert_eq!(png.content_type(), "image/png");
    let info = png::Decoder::new(std::io::Cursor::new(png.bytes.clone()))
        .read_info()
        .unwrap()
        .info()
        .clone();
    let modules = qrcode::QrCode::with_error_correction_level(content, qrcode::EcLevel::M)
        .unwrap()
        .width() as u32;
    assert_eq!((info.width, info.height), ((modules + 8) * 2, (modules + 8) * 2));
    for bad in ["0", "17", "x"] {
        let p = get(&app, &format!("/api/v1/payments/{}/qr.png?scale={bad}", p.id))
            .await
            .problem(400);
        assert_eq!(p["field"], "scale");
    }
    app.stop().await;
}

async fn a_payment_without_a_qr_has_no_qr_image(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = insert_payment(&app, 10000).await;
    for ext in ["svg", "png"] {
        let problem = get(&app, &format!("/api/v1/payments/{}/qr.{ext}", p.id))
            .await
            .problem(404);
        assert_eq!(kind(&problem), "qr-not-found");
        assert_eq!(problem["paymentId"], p.id.as_str());
    }
    app.stop().await;
}

/// Events in a time range are listed newest first along their creation
/// times, and its pages follow one another without a repeat or a gap.
async fn events_in_a_time_range_are_paged_newest_first_by_creation_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    for amount in ["1000.00", "2000.00", "3000.00"] {
        super::support::paid_by_notification(&app, amount).await;
    }
    // The first event written tells the latest change (as one stored in a
    // batch that waited can): creation order is no longer write order.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let sql = "UPDATE events SET created_at = $1 WHERE id = (SELECT MIN(id) FROM events)";
    let moved = with_connection!(&app.db.url, |c| sqlx::query(sql)
        .bind(later)
        .execute(&mut c)
        .await
        .unwrap()
        .rows_affected());
    assert_eq!(moved, 1);
    let from = urlencode(&before.to_rfc3339());
    let page = |cursor: Option<String>| {
        let app = &app;
        let path = match cursor {
            Some(c) => format!("/api/v1/events?createdFrom={from}&limit=1&cursor={c}"),
            None => format!("/api/v1/events?createdFrom={from}&limit=200"),
        };
        async move {
            let r = get(app, &path).await;
            assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.bytes));
            r.json()
        }
    };
    let whole = page(None).await;
    let whole: Vec<(String, String)> = whole["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["createdAt"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(whole.len() >= 3, "{whole:?}");
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = whole
        .iter()
        .map(|(t, _)| chrono::DateTime::parse_from_rfc3339(t).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {whole:?}");
    // One event a page, from the first page's cursor on.
    let first = get(&app, &format!("/api/v1/events?createdFrom={from}&limit=1"))
        .await
        .json();
    let mut paged = vec![first["items"][0]["id"].as_str().unwrap().to_string()];
    let mut cursor = first["nextCursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let next = page(Some(c)).await;
        paged.extend(
            next["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        cursor = next["nextCursor"].as_str().map(str::to_string);
    }
    let ids: Vec<String> = whole.into_iter().map(|(_, id)| id).collect();
    assert_eq!(paged, ids);
    // A cursor of the right shape naming no event is refused, with or without a time range.
    let made_up = format!("evt_{}", "f".repeat(32));
    for path in [
        format!("/api/v1/events?cursor={made_up}"),
        format!("/api/v1/events?createdFrom={from}&cursor={made_up}"),
    ] {
        let problem = get(&app, &path).await.problem(404);
        assert_eq!(problem["field"], "cursor", "{path}: {problem}");
    }
    app.stop().await;
}

crate::on_both_backends!(
    events_in_a_time_range_are_paged_newest_first_by_creation_time,
    an_unknown_payment_is_a_404_problem,
    control_characters_in_ids_and_references_are_refused_naming_the_field,
    a_payment_is_found_by_id_or_partner_reference,
    refresh_without_finpay_is_503,
    list_filters_by_status_reference_and_time,
    pages_follow_the_cursor_to_the_end,
    pagination_neither_skips_nor_repeats_under_concurrent_inserts,
    events_are_the_audit_trail_oldest_first_as_json,
    qr_images_render_the_stored_qr_content,
    a_payment_without_a_qr_has_no_qr_image,
);

#[tokio::test]
async fn a_request_runs_under_the_client_s_id_only_when_it_is_a_usable_one() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (sent, kept) in [
        ("order-42".to_string(), true),
        (String::new(), false),
        ("two words".to_string(), false),
        ("a".repeat(65), false),
    ] {
        let req = app.http.get(app.api_url("/health/live")).header("x-request-id", &sent);
        let resp = super::support::send(req).await;
        let id = resp.headers["x-request-id"].to_str().unwrap();
        if kept {
            assert_eq!(id, sent);
        } else {
            assert_eq!(id.len(), 36, "{sent:?} gave {id:?}: a generated UUID is expected");
        }
    }
    app.stop().await;
}
