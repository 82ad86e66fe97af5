//! One scheduled check of one claimed payment: ask Finpay, apply the answer
//! through the store's single state-machine path, schedule the next check or
//! expire the payment. Every attempt is recorded in `payment_events`.

use super::answer::{about, error_code, is_final, outcome_label, query_request};
use super::schedule::{expiry_deadline, next_check};
use crate::finpay::{FinpayClient, QueryResponse};
use crate::metrics::business::{Change, Via};
use crate::snap::notify::TransactionStatus;
use crate::state::AppState;
use crate::store::{self, Payment, QueryResult, StoreError};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Checks one payment this worker has leased, finishing by `deadline` (well
/// inside the lease, so the answer is applied while the lease is still ours).
pub async fn check_claimed(state: &AppState, finpay: &FinpayClient, owner: &str, payment: Payment, deadline: Instant) {
    // Finpay was slow for the checks before this one: not an attempt. The
    // claim moved its check to the lease's end, when it comes due again.
    if Instant::now() >= deadline {
        return;
    }
    let now = store::now();
    if let Some(due) = payment.next_check_at {
        let lag = (now - due).num_milliseconds().max(0) as f64 / 1000.0;
        state.metrics.observe("finpay_qris_reconcile_lag_seconds", &[], lag);
    }
    let span = tracing::info_span!("reconcile", payment_id = %payment.id, attempt = payment.check_attempts + 1);
    let work = tracing::Instrument::instrument(check(state, finpay, owner, &payment, now), span.clone());
    let outcome = match tokio::time::timeout_at(deadline, work).await {
        Ok(outcome) => outcome,
        Err(_) => {
            let e = "error: no answer from Finpay before the lease ran short".to_string();
            record_error(state, owner, &payment, None, None, e, store::now()).await
        }
    };
    span.in_scope(|| tracing::debug!(outcome, "reconciliation attempt done"));
    state
        .metrics
        .inc("finpay_qris_reconcile_attempts_total", &[("outcome", outcome)]);
}

async fn check(state: &AppState, finpay: &FinpayClient, owner: &str, p: &Payment, now: DateTime<Utc>) -> &'static str {
    let w = &state.settings.worker;
    let deadline = expiry_deadline(p, w);
    let past_deadline = now >= deadline;
    let attempt = u32::try_from(p.check_attempts).unwrap_or(0).saturating_add(1);
    let answer = finpay.query(&query_request(p)).await.and_then(|q| about(p, q));
    let now = store::now();
    match answer {
        Ok(q) if past_deadline && !is_final(q.observation.status) => {
            let why = format!(
                "no final answer by valid_until + grace (Finpay: responseCode {}, latestTransactionStatus {})",
                q.response_code,
                q.observation.status.code()
            );
            // A payer Finpay says is still paying may yet pay: a person decides.
            let may_expire = q.observation.status != TransactionStatus::Paying;
            stop_waiting(state, owner, p, &why, may_expire, now).await
        }
        Ok(q) => {
            // A final answer past the deadline that did not settle the payment
            // (an amount mismatch) is left for a human rather than polled forever.
            let next = (!past_deadline).then(|| next_check(attempt, now, deadline, w));
            apply(state, owner, p, q, next, now).await
        }
        // Finpay has no such transaction and the QR's time is over: nothing can be paid any more.
        Err(e) if past_deadline && e.is_not_found() => {
            let why = format!("no final answer by valid_until + grace (Finpay: {e})");
            stop_waiting(state, owner, p, &why, true, now).await
        }
        // Finpay refuses the question itself, and would refuse it again: that
        // says nothing of the payment, so it is not expired; a person looks.
        Err(e) if past_deadline && e.is_refusal() => {
            let why = format!("no answer by valid_until + grace: Finpay refuses the query ({e})");
            stop_waiting(state, owner, p, &why, false, now).await
        }
        Err(e) => {
            // Not knowing is not an answer: a payment is never expired while Finpay cannot be asked.
            tracing::warn!(error = %e, "reconciliation query failed; backing off");
            let next = next_check(attempt, now, deadline, w).max(now + chrono::Duration::seconds(1));
            record_error(state, owner, p, Some(next), error_code(&e), format!("error: {e}"), now).await
        }
    }
}

async fn apply(
    state: &AppState,
    owner: &str,
    p: &Payment,
    q: QueryResponse,
    next_check_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> &'static str {
    let result = QueryResult {
        observation: Some(q.observation),
        response_code: Some(q.response_code),
        outcome: "answered".into(),
        next_check_at,
    };
    match state.store.apply_query(&p.id, owner, &result, now).await {
        Ok(applied) => {
            state.metrics.payment_changed(&Change::of(&applied, Via::Query));
            if applied.from != Some(applied.to) {
                crate::telemetry::status_changed("reconciliation", &(&applied).into(), applied.from, applied.to, None);
            }
            outcome_label(&applied.decision)
        }
        Err(e) => store_failure(&e),
    }
}

/// Records a failed attempt and releases the lease; the payment is asked
/// about again at `next` (the current schedule when `None`).
async fn record_error(
    state: &AppState,
    owner: &str,
    p: &Payment,
    next: Option<DateTime<Utc>>,
    response_code: Option<String>,
    outcome: String,
    now: DateTime<Utc>,
) -> &'static str {
    let next = next.or_else(|| {
        let attempt = u32::try_from(p.check_attempts).unwrap_or(0).saturating_add(1);
        Some(next_check(
            attempt,
            now,
            expiry_deadline(p, &state.settings.worker),
            &state.settings.worker,
        ))
    });
    let result = QueryResult {
        observation: None,
        response_code,
        outcome,
        next_check_at: next,
    };
    match state.store.apply_query(&p.id, owner, &result, now).await {
        Ok(_) => "error",
        Err(e) => store_failure(&e),
    }
}

/// No final answer by the deadline: the payment expires, or where it may not
/// (or the worker is told not to expire), stays open and flagged for a person.
async fn stop_waiting(
    state: &AppState,
    owner: &str,
    p: &Payment,
    why: &str,
    may_expire: bool,
    now: DateTime<Utc>,
) -> &'static str {
    let w = &state.settings.worker;
    // Told not to expire by itself, the worker leaves the payment to a person;
    // once a person has resolved that flag (after the deadline), the check it
    // asked for may expire it. A payer still paying or a refused query is
    // never taken as an end, whoever asked.
    let person_looked = may_expire && !w.expire_after_grace && resolved_after(state, p, expiry_deadline(p, w)).await;
    let expire = may_expire && (w.expire_after_grace || person_looked);
    let reason = if person_looked {
        format!("{why}; a person resolved its flag")
    } else if may_expire && !expire {
        format!("{why} (worker.expire_after_grace is off)")
    } else {
        why.to_string()
    };
    let why = reason.as_str();
    match state.store.stop_waiting(&p.id, owner, why, expire, now).await {
        Ok(true) if expire => {
            let to = crate::domain::PaymentStatus::Expired;
            state.metrics.payment_changed(&Change::local(p, Some(p.status), to));
            crate::telemetry::status_changed("expiry", &p.into(), Some(p.status), to, Some(why));
            "expired"
        }
        Ok(true) => {
            let mut flagged = Change::local(p, Some(p.status), p.status);
            flagged.flagged = p.flagged.is_none();
            state.metrics.payment_changed(&flagged);
            "left_open"
        }
        Ok(false) => {
            // Settled meanwhile (a notification won the race): just give the lease back.
            let release = QueryResult {
                observation: None,
                response_code: None,
                outcome: "superseded".into(),
                next_check_at: None,
            };
            if let Err(e) = state.store.apply_query(&p.id, owner, &release, now).await {
                tracing::debug!(error = %e, "lease not released after a superseded expiry");
            }
            "unchanged"
        }
        Err(e) => store_failure(&e),
    }
}

/// Whether a person resolved the payment's last flag at or after `since`
/// (its trail's latest `flagged` or `flag_resolved` entry is that resolution).
async fn resolved_after(state: &AppState, p: &Payment, since: DateTime<Utc>) -> bool {
    match state.store.payment_events(&p.id).await {
        Ok(trail) => trail
            .iter()
            .rev()
            .find(|e| e.kind == "flagged" || e.kind == "flag_resolved")
            .is_some_and(|e| e.kind == "flag_resolved" && e.created_at >= since),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the payment's trail; it is left open");
            false
        }
    }
}

fn store_failure(e: &StoreError) -> &'static str {
    if matches!(e, StoreError::Conflict(_)) {
        // The lease ran out and another worker took the payment over; its answer counts.
        tracing::warn!(error = %e, "lease lost before the answer was applied");
        "lease_lost"
    } else {
        tracing::warn!(error = %e, "could not record the reconciliation attempt");
        "store_error"
    }
}
