//! Prometheus metrics, rendered as text at `GET /metrics` on the internal
//! listener. Counters and histograms are kept in a small registry of our own:
//! label sets are few and known, and the text format is simple.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    gauges: Mutex<BTreeMap<(&'static str, Labels), f64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
}

const HELP: &[(&str, &str, &str)] = &[
    ("finpay_qris_notifications_total", "counter", "Notifications answered, by SNAP responseCode."),
    ("finpay_qris_auth_failures_total", "counter", "Token and signature failures on SNAP endpoints, by reason."),
    ("finpay_qris_duplicate_notifications_total", "counter", "Duplicate notifications answered from the stored first answer."),
    ("finpay_qris_tokens_issued_total", "counter", "B2B access tokens issued to Finpay."),
    ("finpay_qris_notify_batch_size", "histogram", "Notifications committed per transaction (group commit)."),
    ("finpay_qris_http_request_duration_seconds", "histogram", "Request latency by route."),
    ("finpay_qris_reconcile_attempts_total", "counter", "Reconciliation queries, by outcome."),
    ("finpay_qris_reconcile_lag_seconds", "histogram", "How late a due reconciliation check ran."),
    ("finpay_qris_finpay_request_duration_seconds", "histogram", "Calls to Finpay, by operation."),
    ("finpay_qris_finpay_errors_total", "counter", "Failed calls to Finpay, by operation and kind."),
    ("finpay_qris_db_pool_connections", "gauge", "Database pool connections, by state."),
];

impl Metrics {
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        self.add(name, labels, 1);
    }

    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        let key = (name, own(labels));
        if let Ok(mut m) = self.counters.lock() {
            *m.entry(key).or_default() += n;
        }
    }

    pub fn set_gauge(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        if let Ok(mut m) = self.gauges.lock() {
            m.insert((name, own(labels)), v);
        }
    }

    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        let key = (name, own(labels));
        if let Ok(mut m) = self.histograms.lock() {
            let h = m.entry(key).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if value <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += value;
            h.count += 1;
        }
    }

    pub fn observe_duration(&self, name: &'static str, labels: &[(&'static str, &str)], d: Duration) {
        self.observe(name, labels, d.as_secs_f64());
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        self.counters
            .lock()
            .ok()
            .and_then(|m| m.get(&(name, own(labels))).copied())
            .unwrap_or(0)
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            match *kind {
                "counter" => {
                    if let Ok(m) = self.counters.lock() {
                        for ((n, labels), v) in m.iter().filter(|((n, _), _)| n == name) {
                            let _ = writeln!(out, "{n}{} {v}", fmt_labels(labels, None));
                        }
                    }
                }
                "gauge" => {
                    if let Ok(m) = self.gauges.lock() {
                        for ((n, labels), v) in m.iter().filter(|((n, _), _)| n == name) {
                            let _ = writeln!(out, "{n}{} {v}", fmt_labels(labels, None));
                        }
                    }
                }
                _ => {
                    if let Ok(m) = self.histograms.lock() {
                        for ((n, labels), h) in m.iter().filter(|((n, _), _)| n == name) {
                            for (i, b) in BUCKETS.iter().enumerate() {
                                let le = b.to_string();
                                let _ = writeln!(out, "{n}_bucket{} {}", fmt_labels(labels, Some(&le)), h.counts[i]);
                            }
                            let _ = writeln!(out, "{n}_bucket{} {}", fmt_labels(labels, Some("+Inf")), h.count);
                            let _ = writeln!(out, "{n}_sum{} {}", fmt_labels(labels, None), h.sum);
                            let _ = writeln!(out, "{n}_count{} {}", fmt_labels(labels, None), h.count);
                        }
                    }
                }
            }
        }
        out
    }
}

fn own(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
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
    fn counters_and_histograms_render_as_prometheus_text() {
        let m = Metrics::default();
        m.inc("finpay_qris_notifications_total", &[("code", "2005200")]);
        m.inc("finpay_qris_notifications_total", &[("code", "2005200")]);
        m.observe("finpay_qris_http_request_duration_seconds", &[("route", "notify")], 0.003);
        let text = m.render();
        assert!(text.contains("finpay_qris_notifications_total{code=\"2005200\"} 2"));
        assert!(text.contains("finpay_qris_http_request_duration_seconds_bucket{route=\"notify\",le=\"0.005\"} 1"));
        assert!(text.contains("finpay_qris_http_request_duration_seconds_bucket{route=\"notify\",le=\"0.001\"} 0"));
    }
}
