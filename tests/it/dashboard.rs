//! The Grafana dashboard (deploy/grafana) and the alert rules
//! (deploy/prometheus) use only metrics the service exports: a renamed or
//! dropped metric fails here instead of leaving an empty panel or an alert
//! that can never fire. promtool checks the rules themselves (.ci/prometheus).

use finpay_qris::metrics::Metrics;
use std::collections::BTreeSet;

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Every series name a query may use: counters and gauges by name,
/// histograms by their `_bucket`, `_sum` and `_count` series.
fn exported() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (name, kind) in Metrics::families() {
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        } else {
            names.insert(name.to_string());
        }
    }
    names
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"finpay_qris_[a-z0-9_]+").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

/// Every PromQL expression of the dashboard: panel targets and variable queries.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(target["expr"].as_str().expect("every target has an expr").to_string());
        }
    }
    for var in dashboard["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = var["definition"].as_str() {
            out.push(q.to_string());
        }
    }
    out
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_of_distinct_well_placed_panels() {
    let dashboard: serde_json::Value = serde_json::from_str(&repo_file("deploy/grafana/finpay-qris.json")).unwrap();
    assert_eq!(dashboard["uid"], "finpay-qris");
    assert!(dashboard["schemaVersion"].as_u64().is_some());
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().expect("every panel has a title");
        assert!(
            ids.insert(p["id"].as_u64().expect("numeric id")),
            "duplicate id at {title}"
        );
        let pos = &p["gridPos"];
        let (x, w) = (pos["x"].as_u64().unwrap(), pos["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && pos["h"].as_u64().unwrap() > 0,
            "{title} does not fit the grid"
        );
        if p["type"] != "row" {
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{title} shows nothing");
            for t in targets {
                assert!(
                    !t["expr"].as_str().unwrap().trim().is_empty(),
                    "{title} has an empty query"
                );
                assert_eq!(
                    t["datasource"]["uid"], "${datasource}",
                    "{title} names a fixed data source"
                );
            }
        }
    }
}

#[test]
fn every_metric_the_dashboard_queries_is_one_the_service_exports() {
    let dashboard: serde_json::Value = serde_json::from_str(&repo_file("deploy/grafana/finpay-qris.json")).unwrap();
    let exported = exported();
    let used: BTreeSet<String> = dashboard_queries(&dashboard)
        .iter()
        .flat_map(|q| metric_names(q))
        .collect();
    let unknown: Vec<&String> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics nobody exports: {unknown:?}"
    );
    assert!(
        used.len() > 20,
        "only {} metrics found: is the parsing broken?",
        used.len()
    );
}

#[test]
fn every_metric_the_alert_rules_use_is_one_the_service_exports() {
    let rules = repo_file("deploy/prometheus/alerts.yml");
    let exported = exported();
    let used = metric_names(&rules);
    let unknown: Vec<&String> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "alerts.yml uses metrics nobody exports: {unknown:?}"
    );
    assert!(used.contains("finpay_qris_database_up"), "{used:?}");
}

/// Every replica reports the database's whole count of these: summed over
/// replicas, a panel or an alert would count each payment once per replica.
#[test]
fn gauges_read_from_the_shared_database_are_never_summed_over_replicas() {
    let dashboard: serde_json::Value = serde_json::from_str(&repo_file("deploy/grafana/finpay-qris.json")).unwrap();
    let rules = repo_file("deploy/prometheus/alerts.yml");
    // The rules file whole: some expressions span lines.
    let exprs: Vec<String> = dashboard_queries(&dashboard).into_iter().chain([rules]).collect();
    let mut checked = 0;
    for name in finpay_qris::metrics::state::DATABASE_WIDE {
        let taken_once = regex::Regex::new(&format!(r"\b(max|min)(\s+by\s*\([^)]*\))?\s*\(\s*{name}\b")).unwrap();
        let used = regex::Regex::new(&format!(r"\b{name}\b")).unwrap();
        for e in exprs.iter().filter(|e| used.is_match(e)) {
            assert_eq!(
                used.find_iter(e).count(),
                taken_once.find_iter(e).count(),
                "{name} is not taken with max or min over replicas in: {e}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} uses found: is the parsing broken?");
    assert!(
        !regex::Regex::new(r"\b(max|min)(\s+by\s*\([^)]*\))?\s*\(\s*finpay_qris_open_payments\b")
            .unwrap()
            .is_match("sum by (age) (finpay_qris_open_payments)")
    );
}

#[test]
fn a_renamed_metric_would_be_caught() {
    let exported = exported();
    let used = metric_names(r#"sum(rate(finpay_qris_notification_total[5m]))"#);
    assert_eq!(used.difference(&exported).count(), 1);
}
