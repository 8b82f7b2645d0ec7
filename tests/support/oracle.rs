//! Expected PostgreSQL contents for a generated input, from the generator's own files (the
//! JSONL export and the ground truth), and the batch check of the revenue KPI rows against
//! PostgreSQL's recomputation from the orders.

use std::collections::BTreeSet;
use std::path::Path;

use tokio_postgres::Client;

/// (transaction ids that must be in fact_orders exactly once, number of invalid records
/// that must be in dq_rejects), for input generated with no late records.
pub fn expected(dir: &Path) -> (BTreeSet<String>, usize) {
    let truth = std::fs::read_to_string(dir.join("truth.jsonl")).unwrap();
    let mut invalid_ids = BTreeSet::new();
    let mut invalid = 0;
    for line in truth.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let labels = v["labels"].as_array().unwrap();
        if labels
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("invalid:"))
        {
            invalid += 1;
            if let Some(id) = v["transaction_id"].as_str() {
                invalid_ids.insert(id.to_string());
            }
        }
    }
    let txs = std::fs::read_to_string(dir.join("shop.transactions.jsonl")).unwrap();
    let valid = txs
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["value"]["transaction_id"].as_str().map(str::to_string)
        })
        .filter(|id| !invalid_ids.contains(id))
        .collect();
    (valid, invalid)
}

/// Checks every global revenue row (dimension `all`) of every closed minute window against
/// PostgreSQL's recomputation from fact_orders; returns how many windows were checked.
pub async fn check_revenue_windows(client: &Client) -> usize {
    let rows = client
        .query(
            "SELECT k.window_start::text, k.status,
                    k.metrics->>'revenue', k.metrics->>'orders', k.metrics->>'unique_customers',
                    coalesce(sum(o.amount) FILTER (WHERE o.status = 'completed'), 0)::text,
                    (count(*) FILTER (WHERE o.status = 'completed'))::text,
                    (count(DISTINCT o.customer_id) FILTER (WHERE o.status = 'completed'))::text
             FROM kpi_revenue k
             LEFT JOIN fact_orders o
               ON o.event_time >= k.window_start AND o.event_time < k.window_end
             WHERE k.dimension = 'all' AND k.window_end - k.window_start = interval '1 minute'
             GROUP BY k.window_start, k.status, k.metrics",
            &[],
        )
        .await
        .unwrap();
    let norm = |v: &str| v.parse::<rust_decimal::Decimal>().unwrap().normalize();
    for r in &rows {
        let got = (norm(r.get(2)), norm(r.get(3)), norm(r.get(4)));
        let want = (norm(r.get(5)), norm(r.get(6)), norm(r.get(7)));
        assert_eq!(
            got,
            want,
            "window {} ({})",
            r.get::<_, String>(0),
            r.get::<_, String>(1)
        );
    }
    rows.len()
}
