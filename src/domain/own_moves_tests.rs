use super::*;
use crate::domain::effect::tests::{at, pending};
use crate::domain::EventType;
use serde_json::json;

fn kinds(e: &Effect) -> Vec<&'static str> {
    e.entries.iter().map(|e| e.kind).collect()
}

#[test]
fn an_open_payment_expires_with_its_lease_and_check_cleared_and_says_so() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.lease_owner = Some("worker".into());
    p.lease_until = Some(at(90));
    p.check_attempts = 3;
    let e = expiry(&p, "validity and grace passed", at(100)).expect("an open payment expires");
    assert_eq!(e.payment.status, PaymentStatus::Expired);
    assert_eq!(e.payment.updated_at, at(100));
    assert_eq!(
        (e.payment.next_check_at, e.payment.lease_owner.as_deref()),
        (None, None)
    );
    assert_eq!(e.payment.check_attempts, 3, "expiring is not a check");
    assert_eq!((e.from, e.changed), (Some(PaymentStatus::Pending), true));
    let mut want = status_change_detail(PaymentStatus::Pending, PaymentStatus::Expired, "worker", None);
    want["reason"] = "validity and grace passed".into();
    assert_eq!(kinds(&e), ["query", "status_changed"]);
    assert_eq!(e.entries[0].detail["outcome"], "final check before expiry");
    assert_eq!(e.entries[0].detail["attempt"], 4);
    assert_eq!(e.entries[1].detail, want);
    assert_eq!(e.events, [EventType::PaymentExpired]);
}

#[test]
fn a_payment_left_open_past_its_deadline_is_no_longer_asked_about_and_is_flagged_once() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.lease_owner = Some("worker".into());
    p.next_check_at = Some(at(90));
    let e = left_open(&p, "latestTransactionStatus 03", at(100)).expect("an open payment is left open");
    assert_eq!(e.payment.status, PaymentStatus::Pending);
    assert_eq!(
        (e.payment.next_check_at, e.payment.lease_owner.as_deref()),
        (None, None)
    );
    assert!(e.payment.flagged.as_deref().is_some_and(|f| f.contains("left open")));
    assert_eq!(kinds(&e), ["query", "flagged"]);
    assert_eq!(e.entries[0].detail["outcome"], "final check; left open");
    assert_eq!(e.events, [EventType::PaymentFlagged]);

    p.flagged = Some("amount differs".into());
    let again = left_open(&p, "latestTransactionStatus 03", at(100)).unwrap();
    assert_eq!(
        again.payment.flagged.as_deref(),
        Some("amount differs"),
        "its first flag stays"
    );
    assert_eq!(kinds(&again), ["query"]);
    assert!(again.events.is_empty());
}

#[test]
fn a_settled_payment_neither_expires_nor_fails() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.status = PaymentStatus::Paid;
    assert!(expiry(&p, "validity passed", at(100)).is_none());
    assert!(left_open(&p, "validity passed", at(100)).is_none());
    assert!(generation_failed(&p, json!({}), at(100)).is_none());
}

#[test]
fn a_refused_generation_fails_a_payment_without_a_qr_only() {
    let p = pending("p1", "INV-1", None);
    let e = generation_failed(&p, json!({"responseCode": "4044711"}), at(5)).expect("fails");
    assert_eq!(e.payment.status, PaymentStatus::Failed);
    assert_eq!(e.payment.next_check_at, None);
    assert_eq!(kinds(&e), ["generate_failed", "status_changed"]);
    assert_eq!(e.entries[0].detail["responseCode"], "4044711");
    assert_eq!(e.events, [EventType::PaymentFailed]);
    let mut with_qr = p.clone();
    with_qr.qr_content = Some("000201".into());
    assert!(generation_failed(&with_qr, json!({}), at(5)).is_none(), "its QR exists");
}

#[test]
fn a_paid_payment_is_refunded_once_its_refunds_reach_its_amount() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.status = PaymentStatus::Paid;
    p.next_check_at = None;
    assert!(
        refunded(&p, p.amount_minor - 1, at(9)).is_none(),
        "partly refunded stays paid"
    );
    let e = refunded(&p, p.amount_minor, at(9)).expect("refunded in full");
    assert_eq!(e.payment.status, PaymentStatus::Refunded);
    assert_eq!(kinds(&e), ["status_changed"]);
    assert_eq!(
        e.entries[0].detail,
        status_change_detail(PaymentStatus::Paid, PaymentStatus::Refunded, "refund", None)
    );
    assert_eq!(
        e.events,
        [EventType::PaymentRefunded],
        "the payment's own event; refund.succeeded is the refund's"
    );
    p.status = PaymentStatus::Refunded;
    assert!(refunded(&p, p.amount_minor, at(9)).is_none());
}

#[test]
fn a_resolved_flag_is_cleared_with_its_reason_the_person_and_the_note_and_the_status_stays() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.flagged = Some("amount 9.00 IDR contradicts 10.00 IDR".into());
    p.next_check_at = Some(at(70));
    let e = flag_resolved(&p, "finance", "confirmed with Finpay", at(50)).expect("a flagged payment");
    assert_eq!(e.payment.next_check_at, Some(at(50)), "asked about again at once");
    assert_eq!(e.payment.flagged, None);
    assert_eq!(
        (e.payment.status, e.payment.updated_at),
        (PaymentStatus::Pending, at(50))
    );
    assert_eq!((e.from, e.changed), (Some(PaymentStatus::Pending), true));
    assert_eq!(kinds(&e), ["flag_resolved"]);
    assert_eq!(
        e.entries[0].detail,
        json!({"flag": "amount 9.00 IDR contradicts 10.00 IDR", "by": "api", "actor": "finance", "note": "confirmed with Finpay"})
    );
    assert_eq!(e.events, [EventType::PaymentFlagResolved]);
    assert!(
        flag_resolved(&e.payment, "finance", "again", at(60)).is_none(),
        "a payment not flagged has no flag to resolve"
    );
}

#[test]
fn an_open_payment_is_asked_about_again_at_once_when_its_flag_is_resolved() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.flagged = Some("Finpay reported 9.00 IDR for a payment of 10.00 IDR".into());
    p.next_check_at = None;
    let e = flag_resolved(&p, "finance", "asked Finpay to correct it", at(50)).expect("a flagged payment");
    assert_eq!(e.payment.next_check_at, Some(at(50)));

    p.next_check_at = Some(at(300));
    let e = flag_resolved(&p, "finance", "asked Finpay to correct it", at(50)).unwrap();
    assert_eq!(
        e.payment.next_check_at,
        Some(at(50)),
        "a check far off is brought forward"
    );
    p.next_check_at = Some(at(20));
    let e = flag_resolved(&p, "finance", "asked Finpay to correct it", at(50)).unwrap();
    assert_eq!(e.payment.next_check_at, Some(at(20)), "one already due stays");

    p.status = PaymentStatus::Paid;
    p.next_check_at = None;
    let e = flag_resolved(&p, "finance", "fulfilled", at(50)).expect("a flagged payment");
    assert_eq!(e.payment.next_check_at, None, "a settled payment is not asked about");
}
