//! When a failed delivery is tried again: the configured waits in order
//! (`events.retry_schedule`), each jittered by up to ±10 % so that the
//! retries of a burst of failures do not all arrive at once.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

/// The next attempt after `attempts` failed ones, or `None` when that was the last.
pub fn next_attempt(waits: &[u64], attempts: usize, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let wait_ms = waits.get(attempts.checked_sub(1)?)?.saturating_mul(1000) as i64;
    let spread = wait_ms / 10;
    let jitter = if spread > 0 {
        rand::thread_rng().gen_range(-spread..=spread)
    } else {
        0
    };
    Some(now + Duration::milliseconds(wait_ms + jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_within_the_jitter_then_stop() {
        let now = Utc::now();
        let waits = [5, 300];
        let first = next_attempt(&waits, 1, now).unwrap() - now;
        assert!((4500..=5500).contains(&first.num_milliseconds()), "{first}");
        let second = next_attempt(&waits, 2, now).unwrap() - now;
        assert!((270_000..=330_000).contains(&second.num_milliseconds()), "{second}");
        assert_eq!(next_attempt(&waits, 3, now), None);
    }

    #[test]
    fn an_empty_schedule_means_one_attempt() {
        assert_eq!(next_attempt(&[], 1, Utc::now()), None);
    }
}
