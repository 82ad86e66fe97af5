//! The one state machine every status change goes through.
//!
//! A notification and a reconciliation query both become an
//! [`Observation`](super::Observation) and are judged here, so they can never
//! disagree about the result. Terminal states stay terminal; the only moves out
//! of one are `paid → refunded` (Finpay reports the refund) and
//! `expired → paid`: our expiry is a local inference from the QR's validity,
//! while a success from Finpay means real money moved, so it wins and the
//! payment is flagged for a human to look at.

use crate::snap::notify::TransactionStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Initiated,
    Pending,
    Paying,
    Paid,
    Refunded,
    Cancelled,
    Failed,
    Expired,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 8] = [
        Self::Initiated,
        Self::Pending,
        Self::Paying,
        Self::Paid,
        Self::Refunded,
        Self::Cancelled,
        Self::Failed,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiated => "initiated",
            Self::Pending => "pending",
            Self::Paying => "paying",
            Self::Paid => "paid",
            Self::Refunded => "refunded",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Still waiting for Finpay's final word: the worker keeps asking.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Initiated | Self::Pending | Self::Paying)
    }

    /// The open statuses as an SQL list, for statements that guard on them
    /// (`… AND status IN {OPEN_SQL}`); a test holds it to [`Self::is_open`].
    pub const OPEN_SQL: &'static str = "('initiated', 'pending', 'paying')";

    /// What Finpay's `latestTransactionStatus` means for a payment;
    /// `None` for "not found" and unknown codes, which change nothing.
    pub fn from_finpay(s: TransactionStatus) -> Option<Self> {
        match s {
            TransactionStatus::Success => Some(Self::Paid),
            TransactionStatus::Initiated => Some(Self::Initiated),
            TransactionStatus::Paying => Some(Self::Paying),
            TransactionStatus::Pending => Some(Self::Pending),
            TransactionStatus::Refunded => Some(Self::Refunded),
            TransactionStatus::Cancelled => Some(Self::Cancelled),
            TransactionStatus::Failed => Some(Self::Failed),
            TransactionStatus::NotFound | TransactionStatus::Other(_) => None,
        }
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a payment given what Finpay says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Move to the new status.
    Transition { to: PaymentStatus, flag: Option<String> },
    /// Already there (a retry, a duplicate settlement): no second effect.
    Unchanged,
    /// Finpay said something that cannot apply (a terminal state would be
    /// left, or a status we do not act on); recorded, not applied.
    Ignored { reason: String },
    /// Finpay's word contradicts what is stored (the amount or currency, the
    /// references, or a success after a final failure): recorded and flagged
    /// for a human, never applied silently.
    Flagged { reason: String },
}

/// Why a payment Finpay reports refunded before it was known here as paid
/// (an open one, or one learnt from that report) is flagged: money moved
/// twice unseen.
pub const REFUNDED_UNSEEN: &str = "refunded by Finpay before it was known here as paid; check what happened";

/// Judges one observation against the stored payment.
///
/// `observed_amount` is `(minor units, currency)` when Finpay sent one.
pub fn decide(
    current: PaymentStatus,
    stored_amount: (i64, &str),
    observed: TransactionStatus,
    observed_amount: Option<(i64, &str)>,
) -> Decision {
    if let Some((minor, currency)) = observed_amount {
        if currency != stored_amount.1 || minor != stored_amount.0 {
            return Decision::Flagged {
                reason: format!(
                    "Finpay reported {} {} for a payment of {} {}",
                    format_minor(minor),
                    currency,
                    format_minor(stored_amount.0),
                    stored_amount.1
                ),
            };
        }
    }
    let Some(to) = PaymentStatus::from_finpay(observed) else {
        return Decision::Ignored {
            reason: format!("latestTransactionStatus {} changes nothing", observed.code()),
        };
    };
    if to == current {
        return Decision::Unchanged;
    }
    use PaymentStatus::*;
    match (current, to) {
        // Paid and refunded without our hearing of the payment. Our expiry is
        // only an inference, so it gives way as it does to a success.
        (Initiated | Pending | Paying | Expired, Refunded) => Decision::Transition {
            to,
            flag: Some(REFUNDED_UNSEEN.into()),
        },
        (Initiated | Pending | Paying, _) => Decision::Transition { to, flag: None },
        (Paid, Refunded) => Decision::Transition { to, flag: None },
        (Expired, Paid) => Decision::Transition {
            to,
            flag: Some("paid after the local expiry; check fulfilment".into()),
        },
        // Finpay's own final failure, then a success or a refund: money may
        // have moved. Neither word is taken over the other; a person must look.
        (Failed | Cancelled, Paid) => Decision::Flagged {
            reason: format!("Finpay reported success after {current}; check whether money moved"),
        },
        (Failed | Cancelled, Refunded) => Decision::Flagged {
            reason: format!("Finpay reported a refund after {current}; check whether money moved"),
        },
        (from, to) => Decision::Ignored {
            reason: format!("{from} is final; Finpay's {to} is not applied"),
        },
    }
}

/// Minor units as the SNAP decimal string (`1234567800` → `12345678.00`).
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:02}", m / 100, m % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransactionStatus as T;

    const AMT: (i64, &str) = (1_000_000, "IDR");

    #[test]
    fn success_moves_a_pending_payment_to_paid() {
        assert_eq!(
            decide(PaymentStatus::Pending, AMT, T::Success, Some(AMT)),
            Decision::Transition {
                to: PaymentStatus::Paid,
                flag: None
            }
        );
    }

    #[test]
    fn a_second_success_has_no_second_effect() {
        assert_eq!(
            decide(PaymentStatus::Paid, AMT, T::Success, Some(AMT)),
            Decision::Unchanged
        );
    }

    #[test]
    fn terminal_states_stay_terminal() {
        for from in [
            PaymentStatus::Paid,
            PaymentStatus::Failed,
            PaymentStatus::Cancelled,
            PaymentStatus::Refunded,
        ] {
            for obs in [T::Pending, T::Initiated, T::Paying, T::Failed, T::Cancelled] {
                let d = decide(from, AMT, obs, None);
                assert!(
                    matches!(d, Decision::Ignored { .. } | Decision::Unchanged),
                    "{from} + {obs:?} gave {d:?}"
                );
            }
        }
    }

    #[test]
    fn a_paid_payment_can_be_refunded() {
        assert_eq!(
            decide(PaymentStatus::Paid, AMT, T::Refunded, None),
            Decision::Transition {
                to: PaymentStatus::Refunded,
                flag: None
            }
        );
    }

    #[test]
    fn an_open_payment_refunded_by_finpay_is_refunded_and_flagged() {
        for from in [PaymentStatus::Initiated, PaymentStatus::Pending, PaymentStatus::Paying] {
            let d = decide(from, AMT, T::Refunded, None);
            assert!(
                matches!(
                    &d,
                    Decision::Transition {
                        to: PaymentStatus::Refunded,
                        flag: Some(_)
                    }
                ),
                "{from}: {d:?}"
            );
        }
    }

    #[test]
    fn a_refund_after_local_expiry_wins_and_is_flagged() {
        assert_eq!(
            decide(PaymentStatus::Expired, AMT, T::Refunded, Some(AMT)),
            Decision::Transition {
                to: PaymentStatus::Refunded,
                flag: Some(REFUNDED_UNSEEN.into())
            }
        );
    }

    #[test]
    fn a_refund_after_a_final_failure_is_flagged_and_not_applied() {
        for from in [PaymentStatus::Failed, PaymentStatus::Cancelled] {
            let d = decide(from, AMT, T::Refunded, Some(AMT));
            assert!(matches!(d, Decision::Flagged { .. }), "{from}: {d:?}");
        }
    }

    #[test]
    fn a_success_after_local_expiry_wins_and_is_flagged() {
        assert!(matches!(
            decide(PaymentStatus::Expired, AMT, T::Success, None),
            Decision::Transition {
                to: PaymentStatus::Paid,
                flag: Some(_)
            }
        ));
    }

    #[test]
    fn a_contradicting_amount_is_flagged_not_applied() {
        assert!(matches!(
            decide(PaymentStatus::Pending, AMT, T::Success, Some((999, "IDR"))),
            Decision::Flagged { .. }
        ));
        assert!(matches!(
            decide(PaymentStatus::Pending, AMT, T::Success, Some((1_000_000, "USD"))),
            Decision::Flagged { .. }
        ));
    }

    #[test]
    fn a_success_after_a_final_failure_is_flagged_and_not_applied() {
        for from in [PaymentStatus::Failed, PaymentStatus::Cancelled] {
            assert!(matches!(
                decide(from, AMT, T::Success, Some(AMT)),
                Decision::Flagged { .. }
            ));
        }
    }

    #[test]
    fn the_open_statuses_in_sql_are_the_open_statuses() {
        let open: Vec<String> = PaymentStatus::ALL
            .into_iter()
            .filter(|s| s.is_open())
            .map(|s| format!("'{s}'"))
            .collect();
        assert_eq!(PaymentStatus::OPEN_SQL, format!("({})", open.join(", ")));
    }

    /// The schema states the statuses again, as checks the database holds
    /// every row to: they must be the domain's, on both backends.
    #[test]
    fn the_schemas_checks_name_the_domains_statuses_and_open_statuses() {
        let all: Vec<String> = PaymentStatus::ALL.into_iter().map(|s| format!("'{s}'")).collect();
        let all = format!("CHECK (status IN\n                             ({}))", all.join(", "));
        let open = format!("next_check_at IS NULL OR status IN {}", PaymentStatus::OPEN_SQL);
        for schema in [
            include_str!("../../migrations/postgres/0001_init.sql"),
            include_str!("../../migrations/sqlite/0001_init.sql"),
        ] {
            assert!(schema.contains(&all), "payments.status is not checked against {all}");
            assert!(schema.contains(&open), "next_check_at is not checked against {open}");
        }
    }

    #[test]
    fn not_found_and_unknown_codes_change_nothing() {
        assert!(matches!(
            decide(PaymentStatus::Pending, AMT, T::NotFound, None),
            Decision::Ignored { .. }
        ));
        assert!(matches!(
            decide(PaymentStatus::Pending, AMT, T::Other(*b"08"), None),
            Decision::Ignored { .. }
        ));
    }

    #[test]
    fn minor_units_format_as_snap_decimals() {
        assert_eq!(format_minor(1_234_567_800), "12345678.00");
        assert_eq!(format_minor(5), "0.05");
    }
}
