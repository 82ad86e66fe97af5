//! Unit tests for `snap::notify`, kept beside it so the module stays readable.

use super::*;
use crate::snap::test_vectors::V3_BODY;
use proptest::prelude::*;
use serde_json::json;

fn parse_json(v: Value) -> Result<NotifyBody, FieldError> {
    parse_notify(v.to_string().as_bytes())
}

/// The V3 body with `edit` applied to its top-level object.
fn v3_with(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<NotifyBody, FieldError> {
    let mut v: Value = serde_json::from_str(V3_BODY).unwrap();
    edit(v.as_object_mut().unwrap());
    parse_json(v)
}

fn format(f: &str) -> FieldError {
    FieldError::Format(f.into())
}

#[test]
fn v3_sample_notify_parses_completely() {
    let n = parse_notify(V3_BODY.as_bytes()).unwrap();
    assert_eq!(n.original_reference_no, "2020102977770000000009");
    assert_eq!(
        n.original_partner_reference_no.as_deref(),
        Some("2020102900000000000001")
    );
    assert_eq!(n.latest_transaction_status, TransactionStatus::Success);
    assert_eq!(n.transaction_status_desc.as_deref(), Some("success"));
    assert_eq!(
        n.amount,
        Amount {
            minor: 1_234_567_800,
            currency: "IDR".into()
        }
    );
    assert_eq!(n.transaction_date, None);
    assert_eq!(n.paid_time.as_deref(), Some("2024-06-07T10:03:54+07:00"));
    assert_eq!(n.additional_info.unwrap()["rrn"], "000019001390");
}

#[test]
fn finpay_misspelled_partner_reference_is_accepted() {
    let n = v3_with(|o| {
        let v = o.remove("originalPartnerReferenceNo").unwrap();
        o.insert("originalPartnerReferanceNo".into(), v);
    })
    .unwrap();
    assert_eq!(
        n.original_partner_reference_no.as_deref(),
        Some("2020102900000000000001")
    );
}

#[test]
fn null_or_empty_partner_reference_is_absent() {
    let n = v3_with(|o| drop(o.insert("originalPartnerReferenceNo".into(), Value::Null))).unwrap();
    assert_eq!(n.original_partner_reference_no, None);
    let n = v3_with(|o| drop(o.insert("originalPartnerReferenceNo".into(), json!("")))).unwrap();
    assert_eq!(n.original_partner_reference_no, None);
}

#[test]
fn mandatory_fields_missing_null_or_empty_are_named() {
    for key in ["originalReferenceNo", "latestTransactionStatus", "amount"] {
        assert_eq!(
            v3_with(|o| drop(o.remove(key))).unwrap_err(),
            FieldError::Missing(key.into())
        );
        assert_eq!(
            v3_with(|o| drop(o.insert(key.into(), Value::Null))).unwrap_err(),
            FieldError::Missing(key.into())
        );
    }
    assert_eq!(
        v3_with(|o| drop(o.insert("originalReferenceNo".into(), json!("")))).unwrap_err(),
        FieldError::Missing("originalReferenceNo".into())
    );
    assert_eq!(
        v3_with(|o| drop(o.insert("amount".into(), json!({"currency": "IDR"})))).unwrap_err(),
        FieldError::Missing("amount.value".into())
    );
    assert_eq!(
        v3_with(|o| drop(o.insert("amount".into(), json!({"value": "1.00"})))).unwrap_err(),
        FieldError::Missing("amount.currency".into())
    );
}

#[test]
fn present_fields_with_the_wrong_type_or_shape_are_format_errors() {
    let cases: [(&str, Value, &str); 10] = [
        ("originalReferenceNo", json!(2020102977u64), "originalReferenceNo"),
        ("originalReferenceNo", json!("x".repeat(65)), "originalReferenceNo"),
        ("originalPartnerReferenceNo", json!(12), "originalPartnerReferenceNo"),
        ("latestTransactionStatus", json!(0), "latestTransactionStatus"),
        ("latestTransactionStatus", json!("0"), "latestTransactionStatus"),
        ("amount", json!("12345678.00"), "amount"),
        ("amount", json!({"value": 100, "currency": "IDR"}), "amount.value"),
        ("amount", json!({"value": "100", "currency": "IDR"}), "amount.value"),
        ("amount", json!({"value": "1.00", "currency": "idr"}), "amount.currency"),
        ("additionalInfo", json!([1]), "additionalInfo"),
    ];
    for (key, value, field) in cases {
        let got = v3_with(|o| drop(o.insert(key.into(), value.clone())));
        assert_eq!(got.unwrap_err(), format(field), "{key} = {value}");
    }
    let long_desc = v3_with(|o| drop(o.insert("transactionStatusDesc".into(), json!("d".repeat(257)))));
    assert_eq!(long_desc.unwrap_err(), format("transactionStatusDesc"));
    let bad_paid = v3_with(|o| drop(o.insert("additionalInfo".into(), json!({"paidTime": 1}))));
    assert_eq!(bad_paid.unwrap_err(), format("additionalInfo.paidTime"));
}

#[test]
fn references_blank_or_with_control_or_unseen_characters_are_format_errors_naming_the_field() {
    for bad in [
        "INV\u{0}",
        "a\u{0}b",
        "INV\n1",
        "\u{7f}",
        "INV\u{9b}",
        "A\u{200b}B",
        "INV\u{2028}1",
        "\u{feff}INV",
        "INV\u{a0}1",
        "INV\u{202e}1",
        "INV\u{ad}1",
        "INV-1 ",
        " INV-1",
        "INVÉ",
    ] {
        for key in [
            "originalReferenceNo",
            "originalPartnerReferenceNo",
            "originalPartnerReferanceNo",
        ] {
            let got = v3_with(|o| {
                o.remove("originalPartnerReferenceNo");
                o.insert(key.into(), json!(bad));
            });
            assert_eq!(got.unwrap_err(), format(key), "{key} = {bad:?}");
        }
    }
    assert_eq!(format("originalReferenceNo").snap_status(52).code(), "4005201");
    let spaced = v3_with(|o| drop(o.insert("originalReferenceNo".into(), json!("INV 1"))));
    assert!(spaced.is_ok(), "a space inside a reference is kept");
    let blank = v3_with(|o| drop(o.insert("originalReferenceNo".into(), json!("   "))));
    assert_eq!(blank.unwrap_err(), format("originalReferenceNo"));
    let no_partner = v3_with(|o| drop(o.insert("originalPartnerReferenceNo".into(), json!("   "))));
    assert_eq!(
        no_partner.unwrap().original_partner_reference_no,
        None,
        "a blank partner reference is absent (a static QR has none)"
    );
}

#[test]
fn both_spellings_of_the_partner_reference_must_agree() {
    let both = |a: &str, b: &str| {
        v3_with(|o| {
            o.insert("originalPartnerReferenceNo".into(), json!(a));
            o.insert("originalPartnerReferanceNo".into(), json!(b));
        })
    };
    assert_eq!(
        both("INV-A", "INV-B").unwrap_err(),
        format("originalPartnerReferanceNo")
    );
    let same = both("INV-A", "INV-A").unwrap();
    assert_eq!(same.original_partner_reference_no.as_deref(), Some("INV-A"));
    let one_blank = both("", "INV-A").unwrap();
    assert_eq!(one_blank.original_partner_reference_no.as_deref(), Some("INV-A"));
}

#[test]
fn body_that_is_not_a_json_object_is_rejected() {
    assert!(matches!(parse_notify(b"{\"a\":"), Err(FieldError::NotJson(_))));
    assert!(matches!(parse_notify(b""), Err(FieldError::NotJson(_))));
    for not_an_object in [&b"[1,2]"[..], b"\"x\"", b"null", b"42"] {
        let e = parse_notify(not_an_object).unwrap_err();
        assert_eq!(e, FieldError::NotObject);
        assert_eq!(e.snap_status(52).code(), "4005200");
    }
}

#[test]
fn minimal_body_parses_and_unknown_fields_are_tolerated() {
    let n = parse_json(json!({
        "originalReferenceNo": "R1",
        "latestTransactionStatus": "08",
        "amount": {"value": "0.50", "currency": "IDR", "extra": true},
        "transactionDate": "2024-06-07T10:03:54+07:00",
        "somethingNew": [1, 2, 3]
    }))
    .unwrap();
    assert_eq!(n.latest_transaction_status, TransactionStatus::Other(*b"08"));
    assert_eq!(n.amount.minor, 50);
    assert_eq!(n.transaction_date.as_deref(), Some("2024-06-07T10:03:54+07:00"));
    assert_eq!(
        (n.additional_info, n.paid_time, n.original_partner_reference_no),
        (None, None, None)
    );
}

#[test]
fn field_errors_map_to_snap_codes() {
    assert_eq!(
        FieldError::Missing("amount.value".into()).snap_status(52).code(),
        "4005202"
    );
    let status = format("amount.value").snap_status(52);
    assert_eq!(
        (status.code().as_str(), status.message.as_str()),
        ("4005201", "Invalid Field Format amount.value")
    );
    assert_eq!(FieldError::NotJson("eof".into()).snap_status(52).code(), "4005200");
}

#[test]
fn transaction_status_codes_round_trip() {
    for (code, status) in [
        ("00", TransactionStatus::Success),
        ("01", TransactionStatus::Initiated),
        ("02", TransactionStatus::Paying),
        ("03", TransactionStatus::Pending),
        ("04", TransactionStatus::Refunded),
        ("05", TransactionStatus::Cancelled),
        ("06", TransactionStatus::Failed),
        ("07", TransactionStatus::NotFound),
        ("09", TransactionStatus::Other(*b"09")),
    ] {
        assert_eq!(TransactionStatus::from_code(code), Some(status));
        assert_eq!(status.code(), code);
    }
    for bad in ["", "0", "000", "0a", " 0", "٠٠"] {
        assert_eq!(TransactionStatus::from_code(bad), None, "{bad:?}");
    }
}

#[test]
fn amounts_are_exact_minor_units() {
    let a = Amount::parse("12345678.00", "IDR").unwrap();
    assert_eq!((a.minor, a.value_string()), (1_234_567_800, "12345678.00".to_string()));
    assert_eq!(Amount::parse("0.01", "USD").unwrap().minor, 1);
    let max = Amount::parse("99999999999999.99", "IDR").unwrap();
    assert_eq!(
        (max.minor, max.value_string()),
        (9_999_999_999_999_999, "99999999999999.99".to_string())
    );
    assert_eq!(
        Amount {
            minor: -5,
            currency: "IDR".into()
        }
        .value_string(),
        "-0.05"
    );
}

#[test]
fn malformed_amounts_are_rejected() {
    for bad in [
        "10000",
        "10000.0",
        "10000.000",
        "-1.00",
        "+1.00",
        "1e3",
        "1,000.00",
        ".50",
        "1.",
        "",
        " 1.00",
        "100000000000000.00",
        "1.0O",
        "١.00",
    ] {
        assert_eq!(Amount::parse(bad, "IDR"), Err("value"), "{bad:?}");
    }
    for bad in ["", "ID", "IDRR", "idr", "I D", "IDŘ"] {
        assert_eq!(Amount::parse("1.00", bad), Err("currency"), "{bad:?}");
    }
}

#[test]
fn external_id_rules_follow_aspi_and_finpay() {
    assert!(check_external_id("550e8400-e29b-41d4-a716-446655440000", false));
    assert!(check_external_id("41807553358950093184162180797837", true));
    assert!(!check_external_id("418075533589500931841621807978371", true));
    assert!(!check_external_id("ABC123", true));
    assert!(!check_external_id("", false));
    assert!(!check_external_id(&"a".repeat(37), false));
    assert!(!check_external_id("abc 123", false));
    assert!(!check_external_id("abc_123", false));
}

#[test]
fn partner_and_channel_ids_are_checked() {
    assert!(check_partner_id("FINPAY-PARTNER-ID"));
    assert!(!check_partner_id("FINPAY PARTNER"));
    assert!(!check_partner_id(""));
    assert!(!check_partner_id(&"p".repeat(37)));
    assert!(!check_partner_id("pärtner"));
    assert!(check_channel_id("95221"));
    assert!(!check_channel_id("952210"));
    assert!(!check_channel_id("95-2"));
    assert!(!check_channel_id(""));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn parse_notify_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_notify(&bytes);
    }

    #[test]
    fn parse_notify_never_panics_on_mutated_sample(cut in 0..V3_BODY.len(), insert in "[\\[\\]{}\":,0-9a-zé\\\\ ]{0,8}") {
        let mut body = V3_BODY.as_bytes().to_vec();
        body.splice(cut..cut, insert.bytes());
        let _ = parse_notify(&body);
    }

    #[test]
    fn valid_amounts_round_trip(minor in 0i64..10_000_000_000_000_000) {
        let value = Amount { minor, currency: "IDR".into() }.value_string();
        prop_assert_eq!(Amount::parse(&value, "IDR").unwrap().minor, minor);
    }
}
