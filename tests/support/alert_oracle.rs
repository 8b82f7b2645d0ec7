//! Batch recomputation of the business alerts: the window rules (`revenue_drop`,
//! `failed_payment_rate`) rerun from scratch over the `final` rows of kpi_revenue — which
//! the revenue oracle has checked against the orders — one series (window size ×
//! dimension) at a time, with every window between a series' first row and the settled
//! horizon judged, empty ones as zero revenue. Written from the rule text, not from the
//! engine's walk: a plain loop over all windows, no skipping, no state. `low_stock` depends
//! on when catalog updates reach the pipeline, so its rows are checked for consistency
//! (on the right side of the product's reorder point, one per catalog entry) only.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use shopstream::engine::EngineConfig;
use tokio_postgres::Client;

use super::oracle::table_rows;

/// (alert_id, kind, value, threshold) of the window alerts.
type Alert = (String, String, Decimal, Decimal);
/// Per window start: revenue, attempts, failed payments.
type Series = BTreeMap<i64, (Decimal, Decimal, Decimal)>;

/// The window alerts the rules give for every window with `end + lateness <= settled`.
pub fn expected_window_alerts(
    rows: &[super::oracle::TableRow],
    cfg: &EngineConfig,
    settled: i64,
) -> BTreeSet<Alert> {
    let a = &cfg.alerts;
    let lateness = cfg.windows.allowed_lateness_ms;
    let mut series: BTreeMap<(i64, &str), Series> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.status == "final") {
        let get = |k: &str| r.metrics.get(k).copied().unwrap_or_default();
        series
            .entry((r.end - r.start, r.dimension.as_str()))
            .or_default()
            .insert(r.start, (get("revenue"), get("attempts"), get("failed")));
    }
    let mut out = BTreeSet::new();
    for ((size, dim), windows) in series {
        let first = *windows.keys().next().unwrap();
        let mut history: VecDeque<Decimal> = VecDeque::new();
        let mut start = first;
        while start + size + lateness <= settled {
            let (revenue, attempts, failed) = windows.get(&start).copied().unwrap_or_default();
            let id = |kind: &str| format!("{kind}|{size}|{dim}|{start}");
            if history.len() >= a.min_history {
                let avg = history.iter().sum::<Decimal>() / Decimal::from(history.len());
                let threshold = a.revenue_drop_fraction * avg;
                if avg > Decimal::ZERO && avg >= a.min_baseline && revenue < threshold {
                    out.insert((
                        id("revenue_drop"),
                        "revenue_drop".into(),
                        revenue.round_dp(6).normalize(),
                        threshold.round_dp(6).normalize(),
                    ));
                }
            }
            if dim == "all"
                && attempts > Decimal::ZERO
                && attempts >= Decimal::from(a.failed_min_attempts)
                && failed / attempts > a.failed_rate_threshold
            {
                out.insert((
                    id("failed_payment_rate"),
                    "failed_payment_rate".into(),
                    (failed / attempts).round_dp(6).normalize(),
                    a.failed_rate_threshold.normalize(),
                ));
            }
            history.push_back(revenue);
            if history.len() > a.trailing_windows {
                history.pop_front();
            }
            start += size;
        }
    }
    out
}

async fn window_alerts_in_table(client: &Client, settled: i64, lateness: i64) -> BTreeSet<Alert> {
    client
        .query(
            "SELECT alert_id, kind, value::text, threshold::text FROM business_alerts
             WHERE kind <> 'low_stock'
               AND (extract(epoch FROM window_end) * 1000)::bigint + $2 <= $1",
            &[&settled, &lateness],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let d = |i: usize| {
                r.get::<_, String>(i)
                    .parse::<Decimal>()
                    .unwrap()
                    .normalize()
            };
            (r.get(0), r.get(1), d(2), d(3))
        })
        .collect()
}

/// Waits up to `timeout` for business_alerts to hold exactly the recomputed window alerts
/// of every window settled by event time `settled`, then checks the low-stock rows; returns
/// the number of alerts per kind.
pub async fn check_business_alerts(
    client: &Client,
    cfg: &EngineConfig,
    settled: i64,
    timeout: Duration,
) -> BTreeMap<String, usize> {
    let lateness = cfg.windows.allowed_lateness_ms;
    assert!(
        cfg.windows
            .revenue
            .iter()
            .all(|w| w.name().starts_with("tumbling")),
        "the recomputation walks tumbling windows"
    );
    // Compare only once every settled revenue window is final in the table: equal sets
    // of a half-written table would prove nothing.
    let deadline = Instant::now() + timeout;
    let (want, got) = loop {
        let rows = table_rows(client, "revenue").await;
        let unsettled = rows
            .iter()
            .filter(|r| r.end + lateness <= settled && r.status != "final")
            .count();
        let want = expected_window_alerts(&rows, cfg, settled);
        let got = window_alerts_in_table(client, settled, lateness).await;
        if (unsettled == 0 && want == got) || Instant::now() > deadline {
            assert_eq!(unsettled, 0, "settled revenue windows not final in time");
            break (want, got);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "business alerts: {} expected, {} in the table; missing {missing:?}, extra {extra:?}",
        want.len(),
        got.len()
    );
    let bad_stock = client
        .query_one(
            "SELECT count(*) FROM business_alerts a
             LEFT JOIN dim_products p ON a.dimension LIKE '%/product=' || p.product_id
             WHERE a.kind = 'low_stock'
               AND (p.product_id IS NULL OR a.value > a.threshold
                    OR a.alert_id NOT LIKE 'low_stock|' || p.product_id || '|%')",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(bad_stock, 0, "low_stock alerts above their reorder point");
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    for (_, kind, _, _) in &want {
        *per_kind.entry(kind.clone()).or_default() += 1;
    }
    let stock = client
        .query_one(
            "SELECT count(*) FROM business_alerts WHERE kind = 'low_stock'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    per_kind.insert("low_stock".into(), stock as usize);
    per_kind
}
