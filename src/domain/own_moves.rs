//! The moves made without Finpay's word about the payment: it expires when
//! its validity (and grace) passed, it fails when Finpay definitely refused
//! to generate its QR, it is refunded when its refunds add up to its amount,
//! and a person clears its flag. Each returns the effect to write, as
//! [`effect`](super::effect) does for an observation, or `None` when the
//! payment is no longer in a state it applies to.

use super::effect::{status_change_detail, Effect, Entry, Outcome};
use super::events::{moved_to, EventType};
use super::{Decision, Payment, PaymentStatus};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The worker expires an open payment whose validity and grace passed, after
/// a last query whose answer (`reason`) was not final: that check is recorded
/// with the expiry, so a payment settled meanwhile shows none.
pub fn expiry(payment: &Payment, reason: &str, now: DateTime<Utc>) -> Option<Effect> {
    if !payment.status.is_open() {
        return None;
    }
    let mut detail = status_change_detail(payment.status, PaymentStatus::Expired, "worker", None);
    detail["reason"] = reason.into();
    let entries = vec![
        final_check(payment, "final check before expiry", reason),
        Entry {
            kind: "status_changed",
            detail,
        },
    ];
    let mut e = moved(payment, PaymentStatus::Expired, now, entries);
    // The worker's lease ends with it (expiring is not a check: no attempt counted).
    e.payment.lease_owner = None;
    e.payment.lease_until = None;
    Some(e)
}

/// Where the worker is told not to expire (`worker.expire_after_grace` off),
/// an open payment past its validity and grace with no final answer
/// (`reason`) stays open, no longer asked about, and flagged for a person:
/// resolving the flag has it asked about again.
pub fn left_open(payment: &Payment, reason: &str, now: DateTime<Utc>) -> Option<Effect> {
    if !payment.status.is_open() {
        return None;
    }
    let mut p = payment.clone();
    p.next_check_at = None;
    p.lease_owner = None;
    p.lease_until = None;
    p.updated_at = now;
    let mut entries = vec![final_check(payment, "final check; left open", reason)];
    let (decision, events) = if payment.flagged.is_some() {
        (Decision::Unchanged, Vec::new())
    } else {
        let flag = format!("{reason}; left open");
        p.flagged = Some(flag.clone());
        entries.push(Entry {
            kind: "flagged",
            detail: json!({"reason": flag, "by": "worker"}),
        });
        (Decision::Flagged { reason: flag }, vec![EventType::PaymentFlagged])
    };
    Some(Effect {
        payment: p,
        from: Some(payment.status),
        changed: true,
        decision,
        outcome: Outcome::Applied,
        entries,
        events,
    })
}

/// The worker's last query of a payment past its deadline, recorded with
/// what it decided (`outcome`).
fn final_check(payment: &Payment, outcome: &str, answer: &str) -> Entry {
    Entry {
        kind: "query",
        detail: json!({"attempt": payment.check_attempts + 1, "outcome": outcome, "detail": answer}),
    }
}

/// Finpay definitely refused to generate the QR of an open payment that has
/// none: it fails. `detail` is Finpay's answer, recorded first.
pub fn generation_failed(payment: &Payment, detail: Value, now: DateTime<Utc>) -> Option<Effect> {
    if !payment.status.is_open() || payment.qr_content.is_some() {
        return None;
    }
    let change = status_change_detail(payment.status, PaymentStatus::Failed, "api", None);
    let entries = vec![
        Entry {
            kind: "generate_failed",
            detail,
        },
        Entry {
            kind: "status_changed",
            detail: change,
        },
    ];
    Some(moved(payment, PaymentStatus::Failed, now, entries))
}

/// A refund succeeded and the payment's succeeded refunds now total
/// `refunded_minor`: a paid payment refunded in full becomes `refunded`.
pub fn refunded(payment: &Payment, refunded_minor: i64, now: DateTime<Utc>) -> Option<Effect> {
    if payment.status != PaymentStatus::Paid || refunded_minor < payment.amount_minor {
        return None;
    }
    let change = status_change_detail(PaymentStatus::Paid, PaymentStatus::Refunded, "refund", None);
    let entries = vec![Entry {
        kind: "status_changed",
        detail: change,
    }];
    Some(moved(payment, PaymentStatus::Refunded, now, entries))
}

/// A refund was refused and its amount released, leaving the refunds asked
/// here at `refunded_minor`: a payment Finpay had already reported refunded
/// (while that refund's reservation covered its amount) was then refunded
/// elsewhere for the rest, which `refundedAmount` cannot show, so a person is
/// asked to look. An open flag is kept.
pub fn refund_released(payment: &Payment, refunded_minor: i64, now: DateTime<Utc>) -> Option<Effect> {
    if payment.status != PaymentStatus::Refunded || refunded_minor >= payment.amount_minor || payment.flagged.is_some()
    {
        return None;
    }
    let reason = super::effect::refunded_elsewhere_reason(refunded_minor, payment.amount_minor);
    let mut p = payment.clone();
    p.refunded_minor = refunded_minor;
    p.flagged = Some(reason.clone());
    p.updated_at = now;
    Some(Effect {
        payment: p,
        from: Some(payment.status),
        changed: true,
        decision: Decision::Flagged { reason: reason.clone() },
        outcome: Outcome::Applied,
        entries: vec![Entry {
            kind: "flagged",
            detail: json!({"reason": reason, "by": "refund"}),
        }],
        events: vec![EventType::PaymentFlagged],
    })
}

/// A person looked into a flagged payment and resolved its flag with a
/// note: the flag is cleared, the status stays. The entry keeps the flag's
/// reason, who resolved it and the note. An open payment is asked about
/// again now (its checks may have stopped at the flag, or be far off), so
/// that it settles or expires rather than staying open with nobody asking.
pub fn flag_resolved(payment: &Payment, actor: &str, note: &str, now: DateTime<Utc>) -> Option<Effect> {
    let flag = payment.flagged.as_deref()?;
    let mut p = payment.clone();
    p.flagged = None;
    p.updated_at = now;
    if p.status.is_open() {
        p.next_check_at = Some(p.next_check_at.map_or(now, |due| due.min(now)));
    }
    Some(Effect {
        payment: p,
        from: Some(payment.status),
        changed: true,
        decision: Decision::Unchanged,
        outcome: Outcome::Applied,
        entries: vec![Entry {
            kind: "flag_resolved",
            detail: json!({"flag": flag, "by": "api", "actor": actor, "note": note}),
        }],
        events: vec![EventType::PaymentFlagResolved],
    })
}

/// `payment` moved to the final status `to` by the service's own decision.
fn moved(payment: &Payment, to: PaymentStatus, now: DateTime<Utc>, entries: Vec<Entry>) -> Effect {
    let mut p = payment.clone();
    p.status = to;
    p.next_check_at = None;
    p.updated_at = now;
    Effect {
        payment: p,
        from: Some(payment.status),
        changed: true,
        decision: Decision::Transition { to, flag: None },
        outcome: Outcome::Applied,
        entries,
        events: moved_to(to),
    }
}

#[cfg(test)]
#[path = "own_moves_tests.rs"]
mod tests;
