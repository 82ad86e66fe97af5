use super::*;
use crate::domain::Decision;

fn applied(origin: &str, from: Option<PaymentStatus>, to: PaymentStatus, decision: Decision) -> Applied {
    Applied {
        payment_id: "pay-1".into(),
        partner_reference_no: Some("INV-1".into()),
        amount_minor: 1_500_000,
        currency: "IDR".into(),
        origin: origin.into(),
        created: from.is_none(),
        from,
        to,
        decision,
    }
}

/// `finpay_qris_payments_total{event, origin}`.
fn events(m: &Metrics, event: &str, origin: &str) -> u64 {
    m.counter("finpay_qris_payments_total", &[("event", event), ("origin", origin)])
}

/// `finpay_qris_payments_settled_by_query_total{status="paid", origin="generated"}`.
fn settled_paid_by_query(m: &Metrics) -> u64 {
    m.counter(
        "finpay_qris_payments_settled_by_query_total",
        &[("status", "paid"), ("origin", "generated")],
    )
}

/// A generated payment's pending → paid, as the executors report it.
fn pending_paid() -> Applied {
    applied(
        "generated",
        Some(PaymentStatus::Pending),
        PaymentStatus::Paid,
        transition(PaymentStatus::Paid),
    )
}

/// Metrics after counting `a` as made `via`.
fn counted(a: &Applied, via: Via) -> Metrics {
    let m = Metrics::default();
    m.payment_changed(&Change::of(a, via));
    m
}

fn transition(to: PaymentStatus) -> Decision {
    Decision::Transition { to, flag: None }
}

#[test]
fn a_notification_that_pays_a_generated_payment_counts_one_paid_event_and_its_rupiah() {
    let m = counted(&pending_paid(), Via::Notification);
    let paid = [("event", "paid"), ("origin", "generated")];
    assert_eq!(m.counter("finpay_qris_payments_total", &paid), 1);
    assert_eq!(m.counter("finpay_qris_payments_rupiah_total", &paid), 15_000);
    assert_eq!(settled_paid_by_query(&m), 0, "a notification is not a query");
}

#[test]
fn a_static_qr_payment_learnt_as_paid_counts_as_created_and_paid() {
    let m = Metrics::default();
    let a = applied(
        "notification",
        None,
        PaymentStatus::Paid,
        transition(PaymentStatus::Paid),
    );
    m.payment_changed(&Change::of(&a, Via::Notification));
    assert_eq!(events(&m, "created", "static"), 1);
    assert_eq!(events(&m, "paid", "static"), 1);
}

#[test]
fn a_query_that_settles_an_open_payment_counts_as_settled_by_query() {
    let m = counted(&pending_paid(), Via::Query);
    assert_eq!(settled_paid_by_query(&m), 1);
}

#[test]
fn an_unchanged_answer_counts_nothing() {
    let m = Metrics::default();
    let a = applied(
        "generated",
        Some(PaymentStatus::Paid),
        PaymentStatus::Paid,
        Decision::Unchanged,
    );
    m.payment_changed(&Change::of(&a, Via::Query));
    assert!(
        !m.render().lines().any(|l| l.starts_with("finpay_qris_payments")),
        "{}",
        m.render()
    );
}

#[test]
fn a_flag_counts_as_flagged_whether_or_not_the_status_moved() {
    let m = Metrics::default();
    let contradicted = applied(
        "generated",
        Some(PaymentStatus::Pending),
        PaymentStatus::Pending,
        Decision::Flagged {
            reason: "amount".into(),
        },
    );
    m.payment_changed(&Change::of(&contradicted, Via::Notification));
    let late = applied(
        "generated",
        Some(PaymentStatus::Expired),
        PaymentStatus::Paid,
        Decision::Transition {
            to: PaymentStatus::Paid,
            flag: Some("paid after expiry".into()),
        },
    );
    m.payment_changed(&Change::of(&late, Via::Notification));
    let flagged = [("event", "flagged"), ("origin", "generated")];
    assert_eq!(m.counter("finpay_qris_payments_total", &flagged), 2);
    assert_eq!(events(&m, "paid", "generated"), 1);
}

#[test]
fn amounts_in_another_currency_are_counted_without_their_amount() {
    let m = Metrics::default();
    let mut a = applied(
        "generated",
        Some(PaymentStatus::Pending),
        PaymentStatus::Failed,
        transition(PaymentStatus::Failed),
    );
    a.currency = "USD".into();
    m.payment_changed(&Change::of(&a, Via::Notification));
    let failed = [("event", "failed"), ("origin", "generated")];
    assert_eq!(m.counter("finpay_qris_payments_total", &failed), 1);
    assert_eq!(m.counter("finpay_qris_payments_rupiah_total", &failed), 0);
}

#[test]
fn notification_delay_is_observed_from_paid_time_to_receipt() {
    let m = Metrics::default();
    let received = DateTime::parse_from_rfc3339("2024-06-07T03:04:39Z")
        .unwrap()
        .with_timezone(&Utc);
    m.notification_delay(Some("2024-06-07T10:03:54+07:00"), received);
    m.notification_delay(Some("not a time"), received);
    m.notification_delay(Some("2024-06-07T10:05:00+07:00"), received);
    m.notification_delay(None, received);
    let text = m.render();
    assert!(
        text.contains("finpay_qris_notification_delay_seconds_bucket{le=\"30\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("finpay_qris_notification_delay_seconds_bucket{le=\"60\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("finpay_qris_notification_delay_seconds_count 1"),
        "{text}"
    );
}

#[test]
fn refunds_are_counted_by_outcome_with_their_rupiah() {
    let m = Metrics::default();
    let ok = RefundOutcome::Succeeded {
        reference_no: None,
        response_code: None,
        message: None,
    };
    m.refund_answered(&ok, 250_000, "IDR");
    m.refund_answered(
        &RefundOutcome::Unknown {
            reason: "timeout".into(),
        },
        100,
        "IDR",
    );
    assert_eq!(m.counter("finpay_qris_refunds_total", &[("outcome", "succeeded")]), 1);
    assert_eq!(
        m.counter("finpay_qris_refunds_rupiah_total", &[("outcome", "succeeded")]),
        2_500
    );
    assert_eq!(m.counter("finpay_qris_refunds_total", &[("outcome", "unknown")]), 1);
}

#[test]
fn switched_off_business_metrics_count_nothing() {
    let m = Metrics::default();
    m.set_business(false);
    let a = pending_paid();
    m.payment_changed(&Change::of(&a, Via::Notification));
    m.refund_answered(&RefundOutcome::Unknown { reason: "x".into() }, 100, "IDR");
    assert_eq!(events(&m, "paid", "generated"), 0);
    assert_eq!(m.counter("finpay_qris_refunds_total", &[("outcome", "unknown")]), 0);
}
