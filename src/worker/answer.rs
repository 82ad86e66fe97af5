//! Turning a stored payment into a query, and Finpay's answer into something
//! safe to apply to that payment.

use crate::domain::{Decision, PaymentStatus};
use crate::finpay::{FinpayError, QueryRequest, QueryResponse};
use crate::snap::notify::{Amount, TransactionStatus};
use crate::store::Payment;

pub fn query_request(p: &Payment) -> QueryRequest {
    QueryRequest {
        original_partner_reference_no: p.partner_reference_no.clone(),
        original_reference_no: p.reference_no.clone(),
        amount: Amount {
            minor: p.amount_minor,
            currency: p.currency.clone(),
        },
    }
}

/// An answer must be about the payment we asked about. Finpay's published
/// query sample swaps `originalReferenceNo` and `originalPartnerReferenceNo`;
/// that exact shape is put right. Any other disagreement is refused, so a
/// wrong answer can never settle (or rename) the wrong payment.
pub fn about(p: &Payment, mut q: QueryResponse) -> Result<QueryResponse, FinpayError> {
    let ours_partner = p.partner_reference_no.as_deref();
    let ours_ref = p.reference_no.as_deref();
    let obs = &mut q.observation;
    let swapped = ours_partner.is_some()
        && obs.original_reference_no.as_deref() == ours_partner
        && obs.original_partner_reference_no.as_deref() != ours_partner
        && (ours_ref.is_none() || obs.original_partner_reference_no.as_deref() == ours_ref);
    if swapped {
        std::mem::swap(&mut obs.original_reference_no, &mut obs.original_partner_reference_no);
    }
    let mismatch = |field: &str, theirs: &str, ours: &str| {
        FinpayError::InvalidResponse(format!(
            "query answer names {field} {theirs:?}, we asked about {ours:?}"
        ))
    };
    if let (Some(theirs), Some(ours)) = (obs.original_partner_reference_no.as_deref(), ours_partner) {
        if theirs != ours {
            return Err(mismatch("originalPartnerReferenceNo", theirs, ours));
        }
    }
    if let (Some(theirs), Some(ours)) = (obs.original_reference_no.as_deref(), ours_ref) {
        if theirs != ours {
            return Err(mismatch("originalReferenceNo", theirs, ours));
        }
    }
    Ok(q)
}

/// A status after which Finpay will not change its mind on its own
/// (`paid → refunded` aside, which refresh-on-read still picks up).
pub fn is_final(s: TransactionStatus) -> bool {
    PaymentStatus::from_finpay(s).is_some_and(|st| !st.is_open())
}

/// The `outcome` label of `finpay_qris_reconcile_attempts_total`.
pub fn outcome_label(d: &Decision) -> &'static str {
    crate::domain::Outcome::of(d).as_str()
}

/// The SNAP code of a refusal, for the audit record.
pub fn error_code(e: &FinpayError) -> Option<String> {
    match e {
        FinpayError::Rejected { response_code, .. } if !response_code.is_empty() => Some(response_code.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Observation, ObservationSource};

    fn payment(partner: &str, reference: Option<&str>) -> Payment {
        let now = chrono::Utc::now();
        Payment {
            id: "p".into(),
            partner_reference_no: Some(partner.into()),
            reference_no: reference.map(str::to_string),
            amount_minor: 100,
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
            created_at: now,
            updated_at: now,
            next_check_at: None,
            check_attempts: 0,
            lease_owner: None,
            lease_until: None,
        }
    }

    fn answer(partner: Option<&str>, reference: Option<&str>) -> QueryResponse {
        QueryResponse {
            response_code: "2005300".into(),
            observation: Observation {
                source: ObservationSource::Query,
                original_reference_no: reference.map(str::to_string),
                original_partner_reference_no: partner.map(str::to_string),
                status: TransactionStatus::Success,
                status_desc: None,
                amount: None,
                paid_time: None,
            },
            raw: serde_json::Value::Null,
        }
    }

    #[test]
    fn matching_answers_pass() {
        assert!(about(&payment("INV1", Some("R1")), answer(Some("INV1"), Some("R1"))).is_ok());
        assert!(about(&payment("INV1", None), answer(Some("INV1"), Some("R1"))).is_ok());
    }

    #[test]
    fn finpays_swapped_sample_shape_is_put_right() {
        let q = about(
            &payment("INV012021", Some("weoOiX7R")),
            answer(Some("weoOiX7R"), Some("INV012021")),
        )
        .unwrap();
        assert_eq!(
            q.observation.original_partner_reference_no.as_deref(),
            Some("INV012021")
        );
        assert_eq!(q.observation.original_reference_no.as_deref(), Some("weoOiX7R"));
    }

    #[test]
    fn answers_about_another_payment_are_refused() {
        assert!(about(&payment("INV1", Some("R1")), answer(Some("INV2"), Some("R1"))).is_err());
        assert!(about(&payment("INV1", Some("R1")), answer(Some("INV1"), Some("R2"))).is_err());
    }

    #[test]
    fn only_settled_statuses_are_final() {
        assert!(is_final(TransactionStatus::Success));
        assert!(is_final(TransactionStatus::Failed));
        assert!(!is_final(TransactionStatus::Pending));
        assert!(!is_final(TransactionStatus::NotFound));
        assert!(!is_final(TransactionStatus::Other(*b"08")));
    }
}
