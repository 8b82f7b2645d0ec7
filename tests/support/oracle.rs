//! Expected PostgreSQL contents for a generated input, from the generator's own files (the
//! JSONL export and the ground truth), and the batch check of every revenue KPI row against
//! PostgreSQL's recomputation from the orders.

use std::collections::BTreeSet;
use std::path::Path;

use tokio_postgres::Client;

/// What PostgreSQL must hold for a generated input, from the generator's own files.
///
/// A record the generator moved far behind the stream ("late" in the truth) is late for
/// the engine only if the watermark had passed it by more than the allowed lateness when
/// it arrived — not at the very start, while a partition without data still holds the
/// watermark back. So a late-labelled transaction must be in exactly one of fact_orders
/// and late_records, and late_records may hold late-labelled records only.
pub struct Expected {
    /// Valid transactions not labelled late: each exactly once in fact_orders.
    pub orders: BTreeSet<String>,
    /// Valid transactions labelled late: each in fact_orders or late_records, not both.
    pub late_orders: BTreeSet<String>,
    /// Number of invalid records, each once in dq_rejects.
    pub invalid: usize,
    /// Ids of every record labelled late (transactions and events).
    pub late: BTreeSet<String>,
}

/// The expected contents for input generated with the fault labels of the truth file.
pub fn expected_all(dir: &Path) -> Expected {
    let truth = std::fs::read_to_string(dir.join("truth.jsonl")).unwrap();
    let mut invalid_ids = BTreeSet::new();
    let mut invalid = 0;
    let mut late = BTreeSet::new();
    for line in truth.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let labels = v["labels"].as_array().unwrap();
        let has = |prefix: &str| {
            labels
                .iter()
                .any(|l| l.as_str().unwrap().starts_with(prefix))
        };
        if has("invalid:") {
            invalid += 1;
            if let Some(id) = v["transaction_id"].as_str() {
                invalid_ids.insert(id.to_string());
            }
        } else if has("late") {
            if let Some(id) = v["transaction_id"].as_str().or(v["event_id"].as_str()) {
                late.insert(id.to_string());
            }
        }
    }
    let txs = std::fs::read_to_string(dir.join("shop.transactions.jsonl")).unwrap();
    let (late_orders, orders) = txs
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["value"]["transaction_id"].as_str().map(str::to_string)
        })
        .filter(|id| !invalid_ids.contains(id))
        .partition(|id| late.contains(id));
    Expected {
        orders,
        late_orders,
        invalid,
        late,
    }
}

/// (transaction ids that must be in fact_orders exactly once, number of invalid records
/// that must be in dq_rejects), for input generated with no late records.
pub fn expected(dir: &Path) -> (BTreeSet<String>, usize) {
    let e = expected_all(dir);
    assert!(
        e.late.is_empty(),
        "input with late records: use expected_all"
    );
    (e.orders, e.invalid)
}

/// Checks every revenue row of PostgreSQL — minute and hour windows, overall and per
/// category, whatever its status — against PostgreSQL's recomputation from the orders
/// and their items (the batch oracle over the records the engine accepted); returns how
/// many rows were checked.
pub async fn check_all_revenue(client: &Client) -> usize {
    let rows = client
        .query(
            "WITH lines AS (
                SELECT i.transaction_id, i.category,
                       sum(i.quantity * i.unit_price - i.discount) AS revenue,
                       sum(i.quantity) AS units
                FROM fact_order_items i GROUP BY 1, 2
             )
             SELECT k.window_start::text || ' +' || (k.window_end - k.window_start)::text,
                    k.dimension, k.status,
                    k.metrics->>'revenue', k.metrics->>'orders',
                    k.metrics->>'unique_customers',
                    CASE WHEN k.dimension = 'all' THEN (
                        SELECT concat_ws(' ', coalesce(sum(o.amount), 0), count(*),
                                         count(DISTINCT o.customer_id))
                        FROM fact_orders o
                        WHERE o.status = 'completed'
                          AND o.event_time >= k.window_start AND o.event_time < k.window_end)
                    ELSE (
                        SELECT concat_ws(' ', coalesce(sum(l.revenue), 0), count(*),
                                         count(DISTINCT o.customer_id))
                        FROM fact_orders o JOIN lines l USING (transaction_id)
                        WHERE o.status = 'completed'
                          AND l.category = substr(k.dimension, length('category=') + 1)
                          AND o.event_time >= k.window_start AND o.event_time < k.window_end)
                    END
             FROM kpi_revenue k",
            &[],
        )
        .await
        .unwrap();
    let norm = |v: &str| v.parse::<rust_decimal::Decimal>().unwrap().normalize();
    for r in &rows {
        let got = [r.get::<_, &str>(3), r.get(4), r.get(5)].map(norm);
        let want_text: &str = r.get(6);
        let want: Vec<_> = want_text.split(' ').map(norm).collect();
        assert_eq!(
            got.to_vec(),
            want,
            "revenue window {} {} ({}): got [revenue, orders, customers] {:?}, recomputed {:?}",
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2),
            got,
            want
        );
    }
    rows.len()
}
