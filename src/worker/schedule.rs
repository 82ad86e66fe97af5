//! When to ask Finpay again about an open payment.
//!
//! The first check is `first_check_secs` after creation (set again when the
//! QR is generated), capped and bounded by the deadline as every interval is. After the n-th check the next one waits
//! `first_check_secs × backoff_factor^n`, capped at `max_interval_secs`,
//! floored at one second, with ±10 % jitter so that payments created
//! together (or failing together while Finpay is down) spread out. Checks
//! never go past the payment's expiry deadline (`valid_until + grace_secs`):
//! the last one lands exactly on it, and that check decides about expiry.

use crate::config::WorkerSettings;
use crate::store::Payment;
use chrono::{DateTime, Utc};
use rand::Rng;
use std::time::Duration;

/// No payment is asked about more often than this.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Jitter: the interval is multiplied by a factor in [1 - J, 1 + J].
const JITTER: f64 = 0.1;

/// The pause after the `attempt`-th check (1-based), before jitter.
pub fn base_interval(attempt: u32, w: &WorkerSettings) -> Duration {
    let first = w.first_check_secs as f64;
    let cap = w.max_interval_secs as f64;
    // powi on a bounded exponent: f64 only for the schedule, never for money.
    let secs = (first * w.backoff_factor.powi(attempt.min(64) as i32)).min(cap);
    Duration::from_secs_f64(secs.max(0.0)).max(MIN_INTERVAL)
}

/// `base` scaled by a jitter factor drawn in [1 - JITTER, 1 + JITTER].
fn jittered(base: Duration) -> Duration {
    base.mul_f64(rand::thread_rng().gen_range(1.0 - JITTER..=1.0 + JITTER))
}

/// When Finpay's silence stops being "not yet": the QR's validity (or the
/// default validity after creation, for payments learnt from a static QR)
/// plus the grace period.
pub fn expiry_deadline(p: &Payment, w: &WorkerSettings) -> DateTime<Utc> {
    deadline_of(p.valid_until, p.created_at, w)
}

/// The first check of a payment created (or given its QR) at `now`: after
/// `first_check_secs`, capped as every interval is, and never past its
/// deadline.
pub fn first_check(now: DateTime<Utc>, deadline: DateTime<Utc>, w: &WorkerSettings) -> DateTime<Utc> {
    next_check_with(base_interval(0, w), now, deadline)
}

/// The deadline of a payment valid until `valid_until` (`None`: the default
/// validity from `created_at`), as [`expiry_deadline`] computes it.
pub fn deadline_of(valid_until: Option<DateTime<Utc>>, created_at: DateTime<Utc>, w: &WorkerSettings) -> DateTime<Utc> {
    valid_until.unwrap_or_else(|| created_at + chrono::Duration::seconds(w.default_validity_secs as i64))
        + chrono::Duration::seconds(w.grace_secs as i64)
}

/// The next check after the `attempt`-th one made at `now`.
pub fn next_check(attempt: u32, now: DateTime<Utc>, deadline: DateTime<Utc>, w: &WorkerSettings) -> DateTime<Utc> {
    next_check_with(jittered(base_interval(attempt, w)), now, deadline)
}

fn next_check_with(interval: Duration, now: DateTime<Utc>, deadline: DateTime<Utc>) -> DateTime<Utc> {
    let at = now + chrono::Duration::milliseconds(interval.as_millis().min(i64::MAX as u128) as i64);
    if now < deadline {
        at.min(deadline)
    } else {
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(first: u64, factor: f64, max: u64) -> WorkerSettings {
        let env = [
            ("FINPAY_QRIS__WORKER__FIRST_CHECK_SECS", first.to_string()),
            ("FINPAY_QRIS__WORKER__BACKOFF_FACTOR", factor.to_string()),
            ("FINPAY_QRIS__WORKER__MAX_INTERVAL_SECS", max.to_string()),
        ];
        let env = env.into_iter().map(|(k, v)| (k.to_string(), v));
        crate::config::Settings::load_from(None, env).unwrap().worker
    }

    #[test]
    fn intervals_grow_by_the_factor_up_to_the_cap() {
        let w = settings(30, 2.0, 600);
        let secs: Vec<u64> = (1..=6).map(|n| base_interval(n, &w).as_secs()).collect();
        assert_eq!(secs, vec![60, 120, 240, 480, 600, 600]);
    }

    #[test]
    fn the_shortest_interval_the_configuration_allows_is_a_second() {
        // The configuration refuses a first check under a second (config::checks).
        let w = settings(1, 1.0, 600);
        assert_eq!(base_interval(3, &w), Duration::from_secs(1));
    }

    #[test]
    fn huge_attempt_counts_stay_at_the_cap() {
        let w = settings(30, 10.0, 600);
        assert_eq!(base_interval(u32::MAX, &w), Duration::from_secs(600));
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..200 {
            let j = jittered(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn the_first_check_is_capped_by_the_longest_interval_and_by_the_deadline() {
        let now = Utc::now();
        let far = now + chrono::Duration::days(1);
        let w = settings(3600, 2.0, 600);
        assert_eq!(first_check(now, far, &w), now + chrono::Duration::seconds(600));
        let soon = now + chrono::Duration::seconds(120);
        assert_eq!(first_check(now, soon, &w), soon);
        let w = settings(30, 2.0, 600);
        assert_eq!(first_check(now, far, &w), now + chrono::Duration::seconds(30));
    }

    #[test]
    fn checks_stop_at_the_deadline_and_continue_after_it() {
        let now = Utc::now();
        let deadline = now + chrono::Duration::seconds(10);
        assert_eq!(next_check_with(Duration::from_secs(60), now, deadline), deadline);
        let early = next_check_with(Duration::from_secs(5), now, deadline);
        assert_eq!(early, now + chrono::Duration::seconds(5));
        let late = now + chrono::Duration::seconds(20);
        assert_eq!(
            next_check_with(Duration::from_secs(5), late, deadline),
            late + chrono::Duration::seconds(5)
        );
    }
}
