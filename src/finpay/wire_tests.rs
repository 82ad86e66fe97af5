use super::*;
use serde_json::json;

fn settings(extra: &[(&str, &str)]) -> FinpaySettings {
    let mut env: Vec<(String, String)> = vec![
        ("FINPAY_QRIS__FINPAY__MERCHANT_ID".into(), "FM2103300001".into()),
        ("FINPAY_QRIS__FINPAY__SUB_MERCHANT_ID".into(), "FM2007160001".into()),
        ("FINPAY_QRIS__FINPAY__TERMINAL_ID".into(), "213141251124".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    crate::config::Settings::load_from(None, env).unwrap().finpay
}

fn idr(minor: i64) -> Amount {
    Amount {
        minor,
        currency: "IDR".into(),
    }
}

fn generate_request() -> GenerateRequest {
    GenerateRequest {
        partner_reference_no: "INV112024033108340012600007".into(),
        amount: idr(1_000_000),
        valid_until: chrono::DateTime::parse_from_rfc3339("2024-04-17T12:03:38+07:00")
            .unwrap()
            .to_utc(),
        note: None,
        tips: None,
    }
}

#[test]
fn generate_body_follows_finpays_field_order_with_snake_case_info() {
    let s = settings(&[(
        "FINPAY_QRIS__FINPAY__CALLBACK_URL",
        "https://m.example/v1.0/qr/qr-mpm-notify",
    )]);
    let body = String::from_utf8(generate_body(&generate_request(), &s)).unwrap();
    assert_eq!(
        body,
        r#"{"partnerReferenceNo":"INV112024033108340012600007","amount":{"value":"10000.00","currency":"IDR"},"FeeAmount":{"value":"0.00","currency":"IDR"},"merchantId":"FM2103300001","subMerchantId":"FM2007160001","terminalId":"213141251124","validityPeriod":"2024-04-17T12:03:38+07:00","additionalInfo":{"tips_indikator":"00","tips_fixamount":"0","tips_percentage":"0","note":"","qr_type":"12","callback_payment":"https://m.example/v1.0/qr/qr-mpm-notify"}}"#
    );
}

#[test]
fn camel_case_style_reproduces_the_docs_finpay_sample_body() {
    // The docs.finpay.id sample (vector V2 in docs/protocol.md) apart from its
    // negative validity offset, which our +07:00 timestamps never produce.
    let s = settings(&[
        ("FINPAY_QRIS__FINPAY__ADDITIONAL_INFO_STYLE", "camel"),
        (
            "FINPAY_QRIS__FINPAY__CALLBACK_URL",
            "https://demos.finnet.co.id/apiqrismerchanct/qr/callback-qris-static/index.php",
        ),
    ]);
    let body = String::from_utf8(generate_body(&generate_request(), &s)).unwrap();
    assert_eq!(
        body,
        r#"{"partnerReferenceNo":"INV112024033108340012600007","amount":{"value":"10000.00","currency":"IDR"},"FeeAmount":{"value":"0.00","currency":"IDR"},"merchantId":"FM2103300001","subMerchantId":"FM2007160001","terminalId":"213141251124","validityPeriod":"2024-04-17T12:03:38+07:00","additionalInfo":{"tipsIndikator":"00","tipsFixamount":"0","tipsPercentage":"0","note":"","qrType":"12","callbackUrl":"https://demos.finnet.co.id/apiqrismerchanct/qr/callback-qris-static/index.php"}}"#
    );
}

#[test]
fn tips_set_the_indicator_and_its_amount() {
    let mut req = generate_request();
    let s = settings(&[]);
    req.tips = Some(Tips::Fixed(idr(500_000)));
    let v: Value = serde_json::from_slice(&generate_body(&req, &s)).unwrap();
    assert_eq!(v["additionalInfo"]["tips_indikator"], "01");
    assert_eq!(v["additionalInfo"]["tips_fixamount"], "5000.00");
    req.tips = Some(Tips::Percentage("10.00".into()));
    let v: Value = serde_json::from_slice(&generate_body(&req, &s)).unwrap();
    assert_eq!(v["additionalInfo"]["tips_indikator"], "02");
    assert_eq!(v["additionalInfo"]["tips_percentage"], "10.00");
    assert!(v["additionalInfo"].get("callback_payment").is_none());
}

#[test]
fn query_body_sends_the_amount_only_when_configured() {
    let req = QueryRequest {
        original_partner_reference_no: Some("INV012021".into()),
        original_reference_no: Some("weoOiX7RIjSBA31QGcUxrJLyaKFH0z5T".into()),
        amount: idr(1_000_000),
    };
    let plain = String::from_utf8(query_body(&req, &settings(&[]))).unwrap();
    assert_eq!(
        plain,
        r#"{"originalReferenceNo":"weoOiX7RIjSBA31QGcUxrJLyaKFH0z5T","originalPartnerReferenceNo":"INV012021","serviceCode":"47","merchantId":"FM2103300001","subMerchantId":"FM2007160001"}"#
    );
    let with_amount = query_body(&req, &settings(&[("FINPAY_QRIS__FINPAY__QUERY_SENDS_AMOUNT", "true")]));
    let v: Value = serde_json::from_slice(&with_amount).unwrap();
    assert_eq!(v["amount"], json!({"value": "10000.00", "currency": "IDR"}));
}

fn refund_request() -> RefundRequest {
    RefundRequest {
        original_partner_reference_no: Some("INV012021123123123".into()),
        original_reference_no: Some("weoOiX7RIjSBA31QGcUxrJLyaKFH0z5T".into()),
        partner_refund_no: "4716238712631127".into(),
        amount: idr(1_000_000),
        reason: "Refund Reason".into(),
    }
}

#[test]
fn refund_body_follows_finpays_sample() {
    let req = refund_request();
    let s = settings(&[("FINPAY_QRIS__FINPAY__MERCHANT_ID", "FM2007160001")]);
    assert_eq!(
        String::from_utf8(refund_body(&req, &s)).unwrap(),
        r#"{"merchantId":"FM2007160001","subMerchantId":"FM2007160001","originalPartnerReferenceNo":"INV012021123123123","originalReferenceNo":"weoOiX7RIjSBA31QGcUxrJLyaKFH0z5T","partnerRefundNo":"4716238712631127","refundAmount":{"value":"10000.00","currency":"IDR"},"reason":"Refund Reason"}"#
    );
}

fn ok(body: Value) -> Answer {
    Answer { http: 200, body }
}

#[test]
fn a_success_about_another_refund_or_amount_settles_nothing() {
    let req = refund_request();
    let answer = |extra: Value| {
        let mut body = json!({"responseCode": "2007800", "referenceNo": "F1", "partnerRefundNo": "4716238712631127",
            "originalPartnerReferenceNo": "INV012021123123123", "refundAmount": {"value": "10000.00", "currency": "IDR"}});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        parse_refund(ok(body), &req)
    };
    assert!(answer(json!({})).is_ok());
    for wrong in [
        json!({"partnerRefundNo": "SOMETHING-ELSE"}),
        json!({"originalPartnerReferenceNo": "INV-OTHER"}),
        json!({"refundAmount": "5000.00"}),
        json!({"refundAmount": {"value": "abc", "currency": "IDR"}}),
        json!({"refundAmount": {"value": "5000.00", "currency": "IDR"}}),
        json!({"refundAmount": {"value": "10000.00", "currency": "USD"}}),
    ] {
        assert!(
            matches!(answer(wrong.clone()), Err(FinpayError::InvalidResponse(_))),
            "{wrong}"
        );
    }
    let other_payment = json!({"responseCode": "2004700", "qrContent": "000201", "partnerReferenceNo": "SOMEONE-ELSE"});
    assert!(matches!(
        parse_generate(ok(other_payment), &generate_request()),
        Err(FinpayError::InvalidResponse(_))
    ));
}

#[test]
fn generate_answers_are_read_with_validity_at_either_place() {
    let top = parse_generate(ok(json!({"responseCode": "2004700", "referenceNo": "R1", "qrContent": "000201", "validityPeriod": "2024-04-17T12:03:38+07:00"})), &generate_request()).unwrap();
    assert_eq!(top.valid_until.unwrap().to_rfc3339(), "2024-04-17T05:03:38+00:00");
    let nested = parse_generate(ok(json!({"responseCode": "2004700", "qrContent": "000201", "qrUrl": "https://q", "additionalInfo": {"validity_period": "2024-04-17T12:03:38+07:00"}})), &generate_request()).unwrap();
    assert!(nested.valid_until.is_some());
    assert_eq!(nested.qr_url.as_deref(), Some("https://q"));
    assert!(matches!(
        parse_generate(ok(json!({"responseCode": "2004700"})), &generate_request()),
        Err(FinpayError::InvalidResponse(_))
    ));
}

fn query_request() -> QueryRequest {
    QueryRequest {
        original_partner_reference_no: Some("P1".into()),
        original_reference_no: None,
        amount: idr(100),
    }
}

#[test]
fn query_answers_become_observations() {
    let answer = ok(json!({
        "responseCode": "2005300", "originalReferenceNo": "R1", "originalPartnerReferenceNo": "P1",
        "serviceCode": "47", "latestTransactionStatus": "00", "transactionStatusDesc": "success",
        "amount": {"value": "1.00", "currency": "IDR"}, "additionalInfo": {"paid_time": "2024-06-07T10:03:54+07:00"}
    }));
    let q = parse_query(answer, &query_request()).unwrap();
    assert_eq!(q.response_code, "2005300");
    assert_eq!(q.observation.status, TransactionStatus::Success);
    assert_eq!(q.observation.source, ObservationSource::Query);
    assert_eq!(q.observation.amount, Some(idr(100)));
    assert_eq!(q.observation.original_reference_no.as_deref(), Some("R1"));
    assert_eq!(q.observation.paid_time.as_deref(), Some("2024-06-07T10:03:54+07:00"));
}

#[test]
fn query_answers_missing_fields_fall_back_or_fail_loudly() {
    let minimal = parse_query(
        ok(json!({"responseCode": "2005100", "transactionStatus": "03"})),
        &query_request(),
    )
    .unwrap();
    assert_eq!(minimal.observation.status, TransactionStatus::Pending);
    assert_eq!(minimal.observation.original_partner_reference_no.as_deref(), Some("P1"));
    assert_eq!(minimal.observation.amount, None);
    let no_status = parse_query(ok(json!({"responseCode": "2005300"})), &query_request());
    assert!(matches!(no_status, Err(FinpayError::InvalidResponse(_))));
    let bad_amount = json!({"responseCode": "2005300", "latestTransactionStatus": "00", "amount": {"value": "1,00", "currency": "IDR"}});
    assert!(matches!(
        parse_query(ok(bad_amount), &query_request()),
        Err(FinpayError::InvalidResponse(_))
    ));
}
