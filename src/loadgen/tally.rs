//! What the connections measured, merged into the run's report.

use super::Report;

/// One worker's counts and latencies (microseconds) in the measured window.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) latencies_us: Vec<u32>,
    /// The slowest request (microseconds) that started in each second of the
    /// window, so a stall can be placed in time.
    pub(super) slowest_us_by_second: Vec<u32>,
    pub(super) duplicates: u64,
    pub(super) unexpected: u64,
    pub(super) transport_errors: u64,
    pub(super) codes: std::collections::BTreeMap<String, u64>,
    /// This connection used up its share of the payments and started over.
    pub(super) payments_renotified: bool,
}

impl Tally {
    pub(super) fn merge(&mut self, o: Tally) {
        self.latencies_us.extend(o.latencies_us);
        if self.slowest_us_by_second.len() < o.slowest_us_by_second.len() {
            self.slowest_us_by_second.resize(o.slowest_us_by_second.len(), 0);
        }
        for (mine, theirs) in self.slowest_us_by_second.iter_mut().zip(o.slowest_us_by_second) {
            *mine = (*mine).max(theirs);
        }
        self.duplicates += o.duplicates;
        self.unexpected += o.unexpected;
        self.transport_errors += o.transport_errors;
        self.payments_renotified |= o.payments_renotified;
        for (k, v) in o.codes {
            *self.codes.entry(k).or_default() += v;
        }
    }

    /// One measured request, started `second` seconds into the window.
    pub(super) fn record(&mut self, second: usize, latency_us: u32) {
        self.latencies_us.push(latency_us);
        if self.slowest_us_by_second.len() <= second {
            self.slowest_us_by_second.resize(second + 1, 0);
        }
        self.slowest_us_by_second[second] = self.slowest_us_by_second[second].max(latency_us);
    }

    pub(super) fn report(mut self, connections: usize, secs: f64) -> Report {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if self.latencies_us.is_empty() {
                return 0.0;
            }
            let i = ((self.latencies_us.len() as f64 * p).ceil() as usize).clamp(1, self.latencies_us.len()) - 1;
            self.latencies_us[i] as f64 / 1000.0
        };
        let n = self.latencies_us.len() as u64;
        Report {
            connections,
            duration_secs: secs,
            requests: n,
            duplicates_sent: self.duplicates,
            requests_per_sec: n as f64 / secs,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            max_ms: pct(1.0),
            over_250_ms: self.latencies_us.iter().filter(|&&us| us > 250_000).count() as u64,
            slowest_ms_by_second: self.slowest_us_by_second.iter().map(|&us| us as f64 / 1000.0).collect(),
            unexpected: self.unexpected,
            transport_errors: self.transport_errors,
            unexpected_codes: self.codes,
            payments_renotified: self.payments_renotified,
            flood_requests: 0,
            flood_requests_per_sec: 0.0,
            flood_unexpected: 0,
            window_start: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_connection_that_started_over_flags_the_whole_report() {
        let mut all = Tally::default();
        all.merge(Tally::default());
        all.merge(Tally {
            payments_renotified: true,
            ..Default::default()
        });
        all.merge(Tally::default());
        assert!(all.report(3, 1.0).payments_renotified);
        let mut none = Tally::default();
        none.merge(Tally::default());
        assert!(!none.report(1, 1.0).payments_renotified);
    }

    #[test]
    fn percentiles_come_from_the_sorted_latencies() {
        let t = Tally {
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            ..Default::default()
        };
        let r = t.report(1, 1.0);
        assert_eq!((r.p50_ms, r.p99_ms, r.max_ms), (50.0, 99.0, 100.0));
        assert_eq!(r.requests, 100);
    }

    #[test]
    fn a_stall_is_placed_in_the_second_it_started() {
        let mut one = Tally::default();
        one.record(0, 2_000);
        one.record(2, 300_000);
        let mut other = Tally::default();
        other.record(0, 5_000);
        let mut all = Tally::default();
        all.merge(one);
        all.merge(other);
        let r = all.report(2, 3.0);
        assert_eq!(r.slowest_ms_by_second, vec![5.0, 0.0, 300.0]);
        assert_eq!(r.over_250_ms, 1);
    }
}
