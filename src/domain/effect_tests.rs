use super::*;
use crate::domain::ObservationSource;
use crate::snap::notify::{Amount, TransactionStatus as T};

pub(in crate::domain) fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

pub(in crate::domain) fn pending(id: &str, partner: &str, reference: Option<&str>) -> Payment {
    Payment {
        id: id.into(),
        partner_reference_no: Some(partner.into()),
        reference_no: reference.map(str::to_string),
        amount_minor: 1_000_000,
        currency: "IDR".into(),
        status: PaymentStatus::Pending,
        origin: "generated".into(),
        qr_content: None,
        qr_url: None,
        note: None,
        valid_until: None,
        paid_at: None,
        refunded_minor: 0,
        flagged: None,
        finpay_status: None,
        created_at: at(0),
        updated_at: at(0),
        next_check_at: Some(at(60)),
        check_attempts: 0,
        lease_owner: None,
        lease_until: None,
    }
}

fn notified(status: T, partner: Option<&str>, reference: Option<&str>, minor: i64) -> Observation {
    Observation {
        source: ObservationSource::Notification,
        original_reference_no: reference.map(str::to_string),
        original_partner_reference_no: partner.map(str::to_string),
        status,
        status_desc: None,
        amount: Some(Amount {
            minor,
            currency: "IDR".into(),
        }),
        paid_time: None,
    }
}

fn run(found: Found<'_>, obs: &Observation) -> Result<Effect, Refusal> {
    effect(found, obs, json!({"externalId": "x"}), at(10), |_| "new-id".into())
}

/// Both references name `p`.
fn by_both(p: &Payment) -> Found<'_> {
    Found {
        by_partner_reference: Some(p),
        by_reference: Some(p),
    }
}

fn kinds(e: &Effect) -> Vec<&'static str> {
    e.entries.iter().map(|e| e.kind).collect()
}

#[test]
fn a_success_settles_a_pending_payment_and_stops_its_checks() {
    let p = pending("p1", "INV-1", Some("R1"));
    let obs = notified(T::Success, Some("INV-1"), Some("R1"), 1_000_000);
    let e = run(by_both(&p), &obs).unwrap();
    assert_eq!(e.payment.status, PaymentStatus::Paid);
    assert_eq!(e.payment.paid_at, Some(at(10)));
    assert_eq!(e.payment.next_check_at, None);
    assert_eq!(e.outcome, Outcome::Applied);
    assert!(e.changed && !e.created());
    assert_eq!(kinds(&e), ["notification", "status_changed"]);
}

#[test]
fn a_payment_is_paid_when_finpay_says_it_was_paid_not_when_we_heard() {
    let p = pending("p1", "INV-1", Some("R1"));
    let mut obs = notified(T::Success, Some("INV-1"), Some("R1"), 1_000_000);
    // at(5) in Jakarta time.
    obs.paid_time = Some("2027-01-15T15:00:05+07:00".into());
    assert_eq!(at(5).to_rfc3339(), "2027-01-15T08:00:05+00:00");
    assert_eq!(run(by_both(&p), &obs).unwrap().payment.paid_at, Some(at(5)));

    obs.paid_time = Some("2027-01-15T15:00:55+07:00".into());
    assert_eq!(
        run(by_both(&p), &obs).unwrap().payment.paid_at,
        Some(at(10)),
        "never later than we heard"
    );
    obs.paid_time = Some("yesterday".into());
    assert_eq!(run(by_both(&p), &obs).unwrap().payment.paid_at, Some(at(10)));
}

#[test]
fn a_repeated_success_changes_nothing_and_writes_only_its_own_entry() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.status = PaymentStatus::Paid;
    let obs = notified(T::Success, Some("INV-1"), Some("R1"), 1_000_000);
    let e = run(by_both(&p), &obs).unwrap();
    assert_eq!(e.outcome, Outcome::Unchanged);
    assert!(!e.changed);
    assert_eq!(kinds(&e), ["notification"]);
}

#[test]
fn finpays_reference_is_learnt_from_the_first_observation_naming_it() {
    let p = pending("p1", "INV-1", None);
    let obs = notified(T::Pending, Some("INV-1"), Some("R9"), 1_000_000);
    let e = run(
        Found {
            by_partner_reference: Some(&p),
            by_reference: None,
        },
        &obs,
    )
    .unwrap();
    assert_eq!(e.payment.reference_no.as_deref(), Some("R9"));
    assert!(e.changed);
}

#[test]
fn references_naming_two_payments_flag_ours_and_apply_nothing() {
    let a = pending("a", "INV-A", None);
    let b = pending("b", "INV-B", Some("R-B"));
    let obs = notified(T::Success, Some("INV-A"), Some("R-B"), 1_000_000);
    let e = run(
        Found {
            by_partner_reference: Some(&a),
            by_reference: Some(&b),
        },
        &obs,
    )
    .unwrap();
    assert_eq!(e.payment.id, "a");
    assert_eq!(e.payment.status, PaymentStatus::Pending);
    assert_eq!(e.payment.reference_no, None, "B's reference is not copied onto A");
    assert!(e.payment.flagged.as_deref().unwrap().contains("references contradict"));
    assert_eq!(e.outcome, Outcome::Flagged);
    assert_eq!(kinds(&e), ["notification", "flagged"]);
}

#[test]
fn a_finpay_reference_other_than_the_stored_one_is_a_contradiction() {
    let a = pending("a", "INV-A", Some("R-A"));
    let obs = notified(T::Success, Some("INV-A"), Some("R-OTHER"), 1_000_000);
    let e = run(
        Found {
            by_partner_reference: Some(&a),
            by_reference: None,
        },
        &obs,
    )
    .unwrap();
    assert_eq!(e.outcome, Outcome::Flagged);
    assert_eq!(e.payment.status, PaymentStatus::Pending);
}

#[test]
fn a_success_after_a_stored_failure_is_flagged_not_ignored() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.status = PaymentStatus::Failed;
    p.next_check_at = None;
    let obs = notified(T::Success, Some("INV-1"), Some("R1"), 1_000_000);
    let e = run(by_both(&p), &obs).unwrap();
    assert_eq!(e.payment.status, PaymentStatus::Failed);
    assert!(e.payment.flagged.is_some());
    assert_eq!(e.outcome, Outcome::Flagged);
}

#[test]
fn a_contradiction_already_flagged_changes_nothing_and_raises_no_second_event() {
    let p = pending("p1", "INV-1", Some("R1"));
    let wrong_amount = notified(T::Success, Some("INV-1"), Some("R1"), 999_900);
    let first = run(by_both(&p), &wrong_amount).unwrap();
    assert_eq!(first.outcome, Outcome::Flagged);
    assert_eq!(first.events, [EventType::PaymentFlagged]);

    let again = run(by_both(&first.payment), &wrong_amount).unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    assert!(!again.changed, "the flag keeps the time it was raised");
    assert!(again.events.is_empty());
    assert_eq!(kinds(&again), ["notification"]);

    let other_reason = notified(T::Success, Some("INV-1"), Some("R-OTHER"), 1_000_000);
    let news = run(by_both(&first.payment), &other_reason).unwrap();
    assert_eq!(news.outcome, Outcome::Flagged, "a new contradiction is news");
    assert_eq!(news.events, [EventType::PaymentFlagged]);
}

#[test]
fn an_unknown_payment_is_learnt_from_its_notification() {
    let obs = notified(T::Success, Some("STATIC-1"), Some("R1"), 25_000);
    let e = run(Found::default(), &obs).unwrap();
    assert!(e.created());
    assert_eq!(e.payment.id, "new-id");
    assert_eq!(e.payment.origin, "notification");
    assert_eq!(e.payment.status, PaymentStatus::Paid);
    assert_eq!(e.payment.amount_minor, 25_000);
    assert_eq!(kinds(&e), ["notification", "created"]);
}

#[test]
fn an_unknown_payment_is_paid_when_it_is_learnt_never_before() {
    // It is created when we learn it, and nothing is paid before it exists
    // here: not a minute earlier, nor in a year nobody can write in RFC 3339.
    for paid_time in [
        "2027-01-15T15:00:05+07:00",
        "2020-01-01T00:00:00+07:00",
        "0000-01-01T00:00:00+07:00",
    ] {
        let mut obs = notified(T::Success, Some("STATIC-1"), Some("R1"), 25_000);
        obs.paid_time = Some(paid_time.into());
        let e = run(Found::default(), &obs).unwrap();
        assert_eq!(
            (e.payment.created_at, e.payment.paid_at),
            (at(10), Some(at(10))),
            "{paid_time}"
        );
    }
}

#[test]
fn a_leap_second_in_paid_time_is_read_as_the_next_second() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.created_at = at(-100);
    let mut obs = notified(T::Success, Some("INV-1"), Some("R1"), 1_000_000);
    // 14:59:60 in Jakarta, a leap second: at(0) is 15:00:00.
    obs.paid_time = Some("2027-01-15T14:59:60+07:00".into());
    let paid = run(by_both(&p), &obs).unwrap().payment.paid_at.unwrap();
    assert_eq!(paid, at(0));
    assert_eq!(paid.to_rfc3339(), "2027-01-15T08:00:00+00:00");
}

#[test]
fn an_unknown_payment_first_reported_refunded_is_learnt_flagged() {
    let obs = notified(T::Refunded, Some("STATIC-1"), Some("R1"), 25_000);
    let e = run(Found::default(), &obs).unwrap();
    assert_eq!(e.payment.status, PaymentStatus::Refunded);
    assert_eq!(e.payment.flagged.as_deref(), Some(REFUNDED_UNSEEN));
    assert_eq!(e.events.last(), Some(&EventType::PaymentFlagged), "{:?}", e.events);
}

#[test]
fn an_unknown_payment_in_another_currency_than_rupiah_is_learnt_flagged() {
    for status in [T::Success, T::Pending] {
        let mut obs = notified(status, Some("STATIC-1"), Some("R1"), 1_000);
        obs.amount.as_mut().unwrap().currency = "USD".into();
        let e = run(Found::default(), &obs).unwrap();
        assert!(e.created());
        assert_eq!(e.payment.currency, "USD", "stored as Finpay said");
        assert!(e.payment.flagged.as_deref().unwrap().contains("USD"));
        assert_eq!(e.entries[1].detail["flag"], e.payment.flagged.as_deref().unwrap());
        assert_eq!(e.events.last(), Some(&EventType::PaymentFlagged), "{:?}", e.events);
    }
}

#[test]
fn an_unknown_payment_with_a_zero_amount_is_refused() {
    let obs = notified(T::Success, Some("STATIC-1"), Some("R1"), 0);
    assert_eq!(run(Found::default(), &obs).unwrap_err().field, "amount.value");
}

#[test]
fn an_unknown_payment_with_an_unknown_status_is_refused() {
    let obs = notified(T::Other(*b"42"), Some("STATIC-1"), Some("R1"), 10_000);
    assert_eq!(
        run(Found::default(), &obs).unwrap_err().field,
        "latestTransactionStatus"
    );
}

#[test]
fn an_open_payment_is_checked_again_after_a_query_and_a_settled_one_is_not() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.lease_owner = Some("w".into());
    p.lease_until = Some(at(30));
    record_check(&mut p, Some(at(120)));
    assert_eq!(
        (p.check_attempts, p.next_check_at, p.lease_owner.as_deref()),
        (1, Some(at(120)), None)
    );
    p.status = PaymentStatus::Paid;
    record_check(&mut p, Some(at(240)));
    assert_eq!(p.next_check_at, None);
}

#[test]
fn finpay_refunding_more_than_was_asked_here_flags_the_payment() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.status = PaymentStatus::Paid;
    p.refunded_minor = 250_000;
    let obs = notified(T::Refunded, Some("INV-1"), Some("R1"), 1_000_000);

    let e = run(by_both(&p), &obs).unwrap();
    assert_eq!(e.payment.status, PaymentStatus::Refunded);
    assert_eq!(
        e.payment.flagged.as_deref(),
        Some("refunded by Finpay, but the refunds asked here cover 2500.00 of 10000.00; check what happened")
    );

    p.refunded_minor = p.amount_minor;
    let e = run(by_both(&p), &obs).unwrap();
    assert_eq!((e.payment.status, e.payment.flagged), (PaymentStatus::Refunded, None));
}

#[test]
fn a_payment_is_never_paid_before_it_was_created() {
    let p = pending("p1", "INV-1", Some("R1"));
    let mut obs = notified(T::Success, Some("INV-1"), Some("R1"), 1_000_000);
    // at(-1): Finpay's whole seconds can fall before the payment's creation.
    obs.paid_time = Some("2027-01-15T14:59:59+07:00".into());
    assert_eq!(run(by_both(&p), &obs).unwrap().payment.paid_at, Some(p.created_at));
}

#[test]
fn a_refund_made_elsewhere_keeps_an_open_flag_instead_of_replacing_it() {
    let mut p = pending("p1", "INV-1", Some("R1"));
    p.status = PaymentStatus::Paid;
    p.flagged = Some("paid after the local expiry; check fulfilment".into());
    let obs = notified(T::Refunded, Some("INV-1"), Some("R1"), 1_000_000);
    let e = run(by_both(&p), &obs).unwrap();
    assert_eq!(e.payment.status, PaymentStatus::Refunded);
    assert_eq!(e.payment.flagged, p.flagged);
}
