//! Which events a change of a payment raises: the one definition every path
//! that changes a payment uses (`effect` for notifications and query answers,
//! and the store's paths for a generated QR, an expiry, a failed generation,
//! a refund asked and completed, a flag resolved). The store writes what this names, in the
//! transaction of the change (the outbox), and delivery sends it.

use super::{Decision, PaymentStatus};

/// What the merchant's systems are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    PaymentPending,
    PaymentPaid,
    PaymentFailed,
    PaymentExpired,
    PaymentCancelled,
    /// The payment was refunded in full: by refunds asked here, or as Finpay
    /// reported it.
    PaymentRefunded,
    PaymentFlagged,
    /// A person looked into a flagged payment and cleared its flag.
    PaymentFlagResolved,
    /// A refund was asked of Finpay: its amount is reserved on the payment.
    RefundPending,
    RefundSucceeded,
    RefundFailed,
    /// An endpoint failed for too long without a success and was disabled.
    EndpointDisabled,
}

impl EventType {
    pub const ALL: [EventType; 12] = [
        Self::PaymentPending,
        Self::PaymentPaid,
        Self::PaymentFailed,
        Self::PaymentExpired,
        Self::PaymentCancelled,
        Self::PaymentRefunded,
        Self::PaymentFlagged,
        Self::PaymentFlagResolved,
        Self::RefundPending,
        Self::RefundSucceeded,
        Self::RefundFailed,
        Self::EndpointDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentPending => "payment.pending",
            Self::PaymentPaid => "payment.paid",
            Self::PaymentFailed => "payment.failed",
            Self::PaymentExpired => "payment.expired",
            Self::PaymentCancelled => "payment.cancelled",
            Self::PaymentRefunded => "payment.refunded",
            Self::PaymentFlagged => "payment.flagged",
            Self::PaymentFlagResolved => "payment.flag_resolved",
            Self::RefundPending => "refund.pending",
            Self::RefundSucceeded => "refund.succeeded",
            Self::RefundFailed => "refund.failed",
            Self::EndpointDisabled => "endpoint.disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What caused an event: Finpay's notification, the worker's query (refresh
/// on read included), a call of the internal API, or the worker on its own
/// (an expiry, an endpoint disabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Notification,
    Query,
    Api,
    Worker,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notification => "notification",
            Self::Query => "query",
            Self::Api => "api",
            Self::Worker => "worker",
        }
    }
}

/// The event a payment reaching `to` raises, if any. Open statuses raise
/// nothing (a QR generated or a payment learnt open raises `pending`, see
/// [`raised`] and [`qr_generated`]).
fn on_status(to: PaymentStatus) -> Option<EventType> {
    match to {
        PaymentStatus::Paid => Some(EventType::PaymentPaid),
        PaymentStatus::Failed => Some(EventType::PaymentFailed),
        PaymentStatus::Expired => Some(EventType::PaymentExpired),
        PaymentStatus::Cancelled => Some(EventType::PaymentCancelled),
        PaymentStatus::Refunded => Some(EventType::PaymentRefunded),
        PaymentStatus::Initiated | PaymentStatus::Pending | PaymentStatus::Paying => None,
    }
}

/// The events a payment moved to `to` by a path of its own (an expiry, a
/// failed generation) raises.
pub fn moved_to(to: PaymentStatus) -> Vec<EventType> {
    on_status(to).into_iter().collect()
}

/// The events a decision on a payment raises. `from` is `None` when the
/// payment was learnt from this observation (static QR): it is announced as
/// `pending` while open, or by its final status.
pub fn raised(from: Option<PaymentStatus>, decision: &Decision) -> Vec<EventType> {
    match (from, decision) {
        (_, Decision::Transition { to, flag }) => {
            let mut out = match from {
                None if to.is_open() => vec![EventType::PaymentPending],
                _ => moved_to(*to),
            };
            if flag.is_some() {
                out.push(EventType::PaymentFlagged);
            }
            out
        }
        (_, Decision::Flagged { .. }) => vec![EventType::PaymentFlagged],
        (_, Decision::Unchanged | Decision::Ignored { .. }) => Vec::new(),
    }
}

/// Finpay generated the QR of a payment we created: it can be paid now.
pub fn qr_generated() -> EventType {
    EventType::PaymentPending
}

/// A refund of the payment was asked of Finpay (its amount now reserved).
pub fn refund_asked() -> EventType {
    EventType::RefundPending
}

/// A refund of the payment completed.
pub fn refund_completed(succeeded: bool) -> EventType {
    if succeeded {
        EventType::RefundSucceeded
    } else {
        EventType::RefundFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(s: PaymentStatus) -> Decision {
        Decision::Transition { to: s, flag: None }
    }

    #[test]
    fn each_final_status_raises_its_own_event() {
        assert_eq!(
            raised(Some(PaymentStatus::Pending), &to(PaymentStatus::Paid)),
            [EventType::PaymentPaid]
        );
        assert_eq!(
            raised(Some(PaymentStatus::Pending), &to(PaymentStatus::Failed)),
            [EventType::PaymentFailed]
        );
        assert_eq!(
            raised(Some(PaymentStatus::Paying), &to(PaymentStatus::Expired)),
            [EventType::PaymentExpired]
        );
        assert_eq!(
            raised(Some(PaymentStatus::Pending), &to(PaymentStatus::Cancelled)),
            [EventType::PaymentCancelled]
        );
    }

    #[test]
    fn a_payment_refunded_raises_refunded() {
        assert_eq!(
            raised(Some(PaymentStatus::Paid), &to(PaymentStatus::Refunded)),
            [EventType::PaymentRefunded]
        );
    }

    #[test]
    fn moving_between_open_statuses_raises_nothing() {
        assert!(raised(Some(PaymentStatus::Pending), &to(PaymentStatus::Paying)).is_empty());
        assert!(raised(Some(PaymentStatus::Pending), &Decision::Unchanged).is_empty());
        assert!(raised(Some(PaymentStatus::Paid), &Decision::Ignored { reason: "x".into() }).is_empty());
    }

    #[test]
    fn a_payment_learnt_open_is_pending_and_one_learnt_paid_is_paid() {
        assert_eq!(raised(None, &to(PaymentStatus::Paying)), [EventType::PaymentPending]);
        assert_eq!(raised(None, &to(PaymentStatus::Paid)), [EventType::PaymentPaid]);
    }

    #[test]
    fn a_contradiction_or_a_flagged_transition_raises_flagged() {
        let flagged = Decision::Flagged {
            reason: "amount".into(),
        };
        assert_eq!(
            raised(Some(PaymentStatus::Pending), &flagged),
            [EventType::PaymentFlagged]
        );
        let paid_late = Decision::Transition {
            to: PaymentStatus::Paid,
            flag: Some("after expiry".into()),
        };
        assert_eq!(
            raised(Some(PaymentStatus::Expired), &paid_late),
            [EventType::PaymentPaid, EventType::PaymentFlagged]
        );
    }

    #[test]
    fn event_types_round_trip_through_their_names() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("payment.paying"), None);
    }
}
