//! The README's first command, shortened: `shopstream demo --export DIR` runs the whole
//! pipeline on embedded defaults (mock broker, throw-away PostgreSQL) and exports the input
//! and every output table. Each KPI family, the customers' RFM columns, fraud alerts and
//! the DLQ must come out with rows, so the demo shows what the pipeline computes.

use std::path::Path;

use shopstream::analytics::rfm::SEGMENTS;

mod support;

fn rows(dir: &Path, table: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(format!("{table}.csv")))
        .unwrap_or_else(|e| panic!("{table}.csv: {e}"));
    text.lines().skip(1).map(str::to_owned).collect()
}

#[test]
fn demo_exports_every_family_with_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::shopstream()
        .args(["demo", "--duration", "55s", "--export"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = support::output_text(&out);
    assert!(out.status.success(), "demo failed:\n{text}");
    for f in [
        "shop.transactions.jsonl",
        "shop.events.jsonl",
        "truth.jsonl",
    ] {
        assert!(dir.path().join("input").join(f).exists(), "input/{f}");
    }
    let output = dir.path().join("output");
    for table in [
        "fact_orders",
        "fact_order_items",
        "dq_rejects",
        "fraud_alerts",
        "kpi_revenue",
        "kpi_products",
        "kpi_geo",
        "kpi_payments",
        "kpi_activity",
        "kpi_quality",
        "kpi_funnel",
        "kpi_sessions",
        "dim_customers",
    ] {
        assert!(
            !rows(&output, table).is_empty(),
            "{table} has no rows:\n{text}"
        );
    }
    let segmented = rows(&output, "dim_customers")
        .iter()
        .filter(|r| SEGMENTS.iter().any(|s| r.contains(&format!(",{s},"))))
        .count();
    assert!(segmented > 0, "no customer has an RFM segment");
    business_alerts_of_every_kind(&rows(&output, "business_alerts"), &text);
}

/// The demo's payment outage and its stock levels raise every kind of business alert, each
/// on the right side of its threshold.
fn business_alerts_of_every_kind(alerts: &[String], log: &str) {
    use rust_decimal::Decimal;
    let mut kinds = std::collections::BTreeSet::new();
    for a in alerts {
        // alert_id, kind, dimension, window_start, window_end, value, threshold, ...
        let f: Vec<&str> = a.splitn(8, ',').collect();
        let num = |i: usize| {
            f[i].parse::<Decimal>()
                .unwrap_or_else(|e| panic!("{a}: {e}"))
        };
        let (value, threshold) = (num(5), num(6));
        let ok = match f[1] {
            "revenue_drop" => value < threshold,
            "failed_payment_rate" => value > threshold,
            "low_stock" => value <= threshold,
            other => panic!("unknown kind {other} in {a}"),
        };
        assert!(ok, "alert on the wrong side of its threshold: {a}");
        assert!(f[0].starts_with(f[1]), "{a}");
        kinds.insert(f[1].to_owned());
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["failed_payment_rate", "low_stock", "revenue_drop"],
        "business alerts:\n{}\n{log}",
        alerts.join("\n")
    );
}
