//! Checks of the customer outputs in PostgreSQL against recomputations from the order
//! facts: dim_customers' RFM columns (shop.customers.rfm) per customer, and the orders
//! with a product missing from the catalog (the generator's `unknown_product` label).

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;
use shopstream::engine::EngineConfig;
use tokio_postgres::Client;

/// Requires every customer with a completed order to have RFM columns equal to the
/// recomputation from fact_orders (count, value in the reporting currency, first and last
/// order), scores and segment following from them at the row's `rfm_as_of`, and no other
/// customer to have RFM columns. Returns the number of customers checked.
pub async fn check_rfm(client: &Client, cfg: &EngineConfig) -> usize {
    let (cur, rate): (Vec<String>, Vec<Decimal>) =
        cfg.kpis.rates.iter().map(|(c, r)| (c.clone(), *r)).unzip();
    let expected = client
        .query(
            "SELECT o.customer_id, count(*), round(sum(o.amount * r.rate), 2)::text,
                (extract(epoch FROM min(o.event_time)) * 1000)::bigint,
                (extract(epoch FROM max(o.event_time)) * 1000)::bigint
             FROM fact_orders o JOIN UNNEST($1::text[], $2::numeric[]) AS r(cur, rate)
               ON upper(r.cur) = upper(o.currency)
             WHERE o.status = 'completed' GROUP BY o.customer_id",
            &[&cur, &rate],
        )
        .await
        .unwrap();
    let got: BTreeMap<String, tokio_postgres::Row> = client
        .query(
            "SELECT customer_id, rfm_order_count, rfm_lifetime_value::text,
                (extract(epoch FROM rfm_first_order_at) * 1000)::bigint,
                (extract(epoch FROM rfm_last_order_at) * 1000)::bigint,
                (extract(epoch FROM rfm_as_of) * 1000)::bigint, rfm_recency, rfm_frequency,
                rfm_monetary, rfm_segment, rfm_currency
             FROM dim_customers WHERE rfm_revision IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r))
        .collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "customers with RFM columns = customers with a completed order"
    );
    for e in &expected {
        let id: String = e.get(0);
        let g = got
            .get(&id)
            .unwrap_or_else(|| panic!("{id} has no RFM columns"));
        // Columns 1-4 of both queries: orders, value, first and last order (ms).
        let profile = |r: &tokio_postgres::Row| -> (i64, String, i64, i64) {
            (r.get(1), r.get(2), r.get(3), r.get(4))
        };
        let (want, have) = (profile(e), profile(g));
        assert_eq!(
            have, want,
            "RFM profile of {id} (orders, value, first, last)"
        );
        let value: Decimal = have.1.parse().unwrap();
        let s = cfg.rfm.score(have.0 as u64, value, have.3, g.get(5));
        let scores = (
            g.get::<_, i16>(6),
            g.get::<_, i16>(7),
            g.get::<_, i16>(8),
            g.get::<_, String>(9),
        );
        assert_eq!(
            scores,
            (
                i16::from(s.recency),
                i16::from(s.frequency),
                i16::from(s.monetary),
                s.segment.to_string()
            ),
            "scores and segment of {id}"
        );
        assert_eq!(g.get::<_, String>(10), cfg.kpis.reporting_currency);
    }
    expected.len()
}

/// Requires every transaction the generator gave an unknown product to be in fact_orders
/// with exactly one line not known to the catalog, and each products-family row of an
/// unknown product to count exactly those lines' units as unknown. Returns the number of
/// such orders.
pub async fn check_unknown_products(client: &Client, dir: &Path) -> usize {
    let truth = std::fs::read_to_string(dir.join("truth.jsonl")).unwrap();
    let ids: Vec<String> = truth
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| {
            v["labels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == "unknown_product")
        })
        .map(|v| v["transaction_id"].as_str().unwrap().to_string())
        .collect();
    let row = client
        .query_one(
            "SELECT count(DISTINCT o.transaction_id),
                count(i.*) FILTER (WHERE NOT i.known_product AND i.product_id LIKE 'unknown-sku-%'),
                count(i.*) FILTER (WHERE NOT i.known_product)
             FROM fact_orders o JOIN fact_order_items i USING (transaction_id)
             WHERE o.transaction_id = ANY($1)",
            &[&ids],
        )
        .await
        .unwrap();
    let n = ids.len() as i64;
    assert_eq!(
        row.get::<_, i64>(0),
        n,
        "every unknown-product order is kept"
    );
    assert_eq!(
        row.get::<_, i64>(1),
        n,
        "one unknown line per labelled order"
    );
    assert_eq!(row.get::<_, i64>(2), n, "no other line is unknown");
    let wrong = client
        .query_one(
            "SELECT count(*) FILTER (WHERE (k.metrics->>'unknown_units')::numeric IS DISTINCT FROM
                (SELECT sum(i.quantity) FROM fact_order_items i JOIN fact_orders o USING (transaction_id)
                 WHERE i.product_id = split_part(k.dimension, 'product=', 2)
                   AND i.category = substring(k.dimension FROM 'category=([^/]*)')
                   AND o.status = 'completed' AND o.event_time >= k.window_start
                   AND o.event_time < k.window_end)), count(*)
             FROM kpi_products k WHERE k.dimension LIKE '%product=unknown-sku-%'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        wrong.get::<_, i64>(1) > 0,
        "unknown products appear in kpi_products"
    );
    assert_eq!(
        wrong.get::<_, i64>(0),
        0,
        "unknown units per window and product"
    );
    ids.len()
}
