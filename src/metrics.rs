//! Prometheus metrics, rendered as text at `GET /metrics` on the internal
//! listener. Counters, gauges and histograms are kept in a small registry of
//! our own: label sets are few and known, and the text format is simple.
//!
//! Recording is on the request path, so it allocates only the first time a
//! series is seen: a series is found by comparing its labels as `&str`.

pub mod business;
mod catalog;
pub mod state;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use catalog::{buckets, HELP, UNLABELLED_COUNTERS};

type Labels = Vec<(&'static str, String)>;

/// The series of one metric, found by their labels.
type Family<T> = Vec<(Labels, T)>;

struct Histogram {
    /// Non-cumulative count per bucket; rendered cumulatively.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<&'static str, Family<u64>>>,
    gauges: Mutex<BTreeMap<&'static str, Family<f64>>>,
    histograms: Mutex<BTreeMap<&'static str, Family<Histogram>>>,
    /// `metrics.business = false` (business.rs).
    business_off: AtomicBool,
}

fn same(labels: &Labels, wanted: &[(&'static str, &str)]) -> bool {
    labels.len() == wanted.len() && labels.iter().zip(wanted).all(|((k, v), (wk, wv))| k == wk && v == wv)
}

/// The series with these labels, created on first use.
fn series<'a, T>(
    map: &'a mut BTreeMap<&'static str, Family<T>>,
    name: &'static str,
    labels: &[(&'static str, &str)],
    new: impl FnOnce() -> T,
) -> &'a mut T {
    let family = map.entry(name).or_default();
    let at = match family.iter().position(|(l, _)| same(l, labels)) {
        Some(at) => at,
        None => {
            family.push((labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(), new()));
            family.len() - 1
        }
    };
    &mut family[at].1
}

impl Metrics {
    /// The service's metrics, the counters without labels at 0.
    pub fn new() -> Self {
        let m = Self::default();
        for name in UNLABELLED_COUNTERS {
            m.add(name, &[], 0);
        }
        m
    }

    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1);
    }

    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        if let Ok(mut m) = self.counters.lock() {
            *series(&mut m, name, labels, || 0) += n;
        }
    }

    /// A counter kept elsewhere (the store's), copied at scrape time.
    pub fn set_counter(&self, name: &'static str, labels: &[(&'static str, &str)], v: u64) {
        if let Ok(mut m) = self.counters.lock() {
            *series(&mut m, name, labels, || 0) = v;
        }
    }

    pub fn set_gauge(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        if let Ok(mut m) = self.gauges.lock() {
            *series(&mut m, name, labels, || 0.0) = v;
        }
    }

    /// Drops a gauge's series (what it measured is gone), so it is no longer rendered.
    pub fn remove_gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        if let Ok(mut m) = self.gauges.lock() {
            if let Some(family) = m.get_mut(name) {
                family.retain(|(l, _)| !same(l, labels));
            }
        }
    }

    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        let bounds = buckets(name);
        if let Ok(mut m) = self.histograms.lock() {
            let h = series(&mut m, name, labels, || Histogram {
                counts: vec![0; bounds.len()],
                sum: 0.0,
                count: 0,
            });
            if let Some(i) = bounds.iter().position(|b| value <= *b) {
                h.counts[i] += 1;
            }
            h.sum += value;
            h.count += 1;
        }
    }

    pub fn observe_duration(&self, name: &'static str, labels: &[(&'static str, &str)], d: Duration) {
        self.observe(name, labels, d.as_secs_f64());
    }

    /// Database pool usage, sampled by whoever knows the pool (the `/metrics`
    /// handler just before rendering, so a scrape always sees the present).
    pub fn record_pool(&self, in_use: u32, idle: u32) {
        self.set_gauge(
            "finpay_qris_db_pool_connections",
            &[("state", "in_use")],
            f64::from(in_use),
        );
        self.set_gauge("finpay_qris_db_pool_connections", &[("state", "idle")], f64::from(idle));
    }

    /// Every metric this service renders: name and type (the dashboard and
    /// the alert rules are checked against them).
    pub fn families() -> impl Iterator<Item = (&'static str, &'static str)> {
        HELP.iter().chain(business::HELP).map(|(name, kind, _)| (*name, *kind))
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        self.counters
            .lock()
            .ok()
            .and_then(|m| {
                m.get(name)
                    .and_then(|f| f.iter().find(|(l, _)| same(l, labels)).map(|(_, v)| *v))
            })
            .unwrap_or(0)
    }

    /// A gauge's value, if that series exists.
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Option<f64> {
        let m = self.gauges.lock().ok()?;
        m.get(name)?.iter().find(|(l, _)| same(l, labels)).map(|(_, v)| *v)
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help) in HELP.iter().chain(business::HELP) {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            match *kind {
                "counter" => {
                    if let Ok(m) = self.counters.lock() {
                        for (labels, v) in sorted(m.get(name)) {
                            let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
                        }
                    }
                }
                "gauge" => {
                    if let Ok(m) = self.gauges.lock() {
                        for (labels, v) in sorted(m.get(name)) {
                            let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
                        }
                    }
                }
                _ => {
                    if let Ok(m) = self.histograms.lock() {
                        for (labels, h) in sorted(m.get(name)) {
                            let mut cumulative = 0;
                            for (b, n) in buckets(name).iter().zip(&h.counts) {
                                cumulative += n;
                                let le = b.to_string();
                                let _ = writeln!(out, "{name}_bucket{} {cumulative}", fmt_labels(labels, Some(&le)));
                            }
                            let _ = writeln!(out, "{name}_bucket{} {}", fmt_labels(labels, Some("+Inf")), h.count);
                            let _ = writeln!(out, "{name}_sum{} {}", fmt_labels(labels, None), h.sum);
                            let _ = writeln!(out, "{name}_count{} {}", fmt_labels(labels, None), h.count);
                        }
                    }
                }
            }
        }
        out
    }
}

/// A family's series in label order, for a stable exposition.
fn sorted<T>(family: Option<&Family<T>>) -> Vec<&(Labels, T)> {
    let mut v: Vec<&(Labels, T)> = family.map(|f| f.iter().collect()).unwrap_or_default();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
            )
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_gauge_series_is_no_longer_rendered() {
        let m = Metrics::default();
        m.set_gauge("finpay_qris_event_backlog", &[("endpoint", "we_a")], 3.0);
        m.set_gauge("finpay_qris_event_backlog", &[("endpoint", "we_b")], 1.0);
        m.remove_gauge("finpay_qris_event_backlog", &[("endpoint", "we_a")]);
        let text = m.render();
        assert!(!text.contains("endpoint=\"we_a\""), "{text}");
        assert!(
            text.contains("finpay_qris_event_backlog{endpoint=\"we_b\"} 1"),
            "{text}"
        );
        assert_eq!(m.gauge("finpay_qris_event_backlog", &[("endpoint", "we_a")]), None);
    }

    #[test]
    fn counters_without_labels_are_shown_at_zero_before_their_first_increment() {
        let text = Metrics::new().render();
        for name in UNLABELLED_COUNTERS {
            assert!(text.contains(&format!("\n{name} 0\n")), "{name} missing:\n{text}");
        }
    }

    #[test]
    fn counters_and_histograms_render_as_prometheus_text() {
        let m = Metrics::default();
        m.inc("finpay_qris_notifications_total", &[("code", "2005200")]);
        m.inc("finpay_qris_notifications_total", &[("code", "2005200")]);
        m.inc("finpay_qris_notifications_total", &[("code", "4015200")]);
        m.observe(
            "finpay_qris_http_request_duration_seconds",
            &[("route", "notify")],
            0.003,
        );
        let text = m.render();
        assert!(text.contains("finpay_qris_notifications_total{code=\"2005200\"} 2"));
        assert!(text.contains("finpay_qris_notifications_total{code=\"4015200\"} 1"));
        assert!(text.contains("finpay_qris_http_request_duration_seconds_bucket{route=\"notify\",le=\"0.005\"} 1"));
        assert!(text.contains("finpay_qris_http_request_duration_seconds_bucket{route=\"notify\",le=\"10\"} 1"));
        assert!(text.contains("finpay_qris_http_request_duration_seconds_bucket{route=\"notify\",le=\"0.001\"} 0"));
        assert_eq!(m.counter("finpay_qris_notifications_total", &[("code", "2005200")]), 2);
    }

    #[test]
    fn batch_sizes_have_buckets_of_their_own() {
        let m = Metrics::default();
        for n in [1.0, 3.0, 40.0, 40.0, 1000.0] {
            m.observe("finpay_qris_notify_batch_size", &[], n);
        }
        let text = m.render();
        assert!(text.contains("finpay_qris_notify_batch_size_bucket{le=\"1\"} 1"));
        assert!(text.contains("finpay_qris_notify_batch_size_bucket{le=\"4\"} 2"));
        assert!(text.contains("finpay_qris_notify_batch_size_bucket{le=\"64\"} 4"));
        assert!(text.contains("finpay_qris_notify_batch_size_bucket{le=\"512\"} 4"));
        assert!(text.contains("finpay_qris_notify_batch_size_bucket{le=\"+Inf\"} 5"));
        assert!(text.contains("finpay_qris_notify_batch_size_count 5"));
    }

    #[test]
    fn pool_usage_is_a_gauge_by_state() {
        let m = Metrics::default();
        m.record_pool(3, 5);
        m.record_pool(2, 6);
        let text = m.render();
        assert!(text.contains("finpay_qris_db_pool_connections{state=\"idle\"} 6"));
        assert!(text.contains("finpay_qris_db_pool_connections{state=\"in_use\"} 2"));
    }
}
