//! Unit tests of the business alert state: series walks with empty windows, restore, stock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::analytics::alerts::StockLevel;
use crate::model::BusinessAlertKind;

const MIN: i64 = 60_000;
const LATENESS: i64 = 2 * MIN;

fn cfg() -> AlertConfig {
    AlertConfig {
        min_history: 3,
        trailing_windows: 4,
        failed_min_attempts: 10,
        ..AlertConfig::default()
    }
}

fn alerts() -> BusinessAlerts {
    BusinessAlerts::new(
        cfg(),
        &[WindowSpec::tumbling(MIN), WindowSpec::tumbling(60 * MIN)],
        LATENESS,
    )
}

fn row(kpi: &str, minute: i64, dim: &str, values: &[(&str, i64)], status: EmitStatus) -> KpiRow {
    KpiRow {
        kpi: kpi.into(),
        window_start: minute * MIN,
        window_end: (minute + 1) * MIN,
        dimension: dim.into(),
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), Decimal::from(*v)))
            .collect(),
        status,
        revision: 1,
    }
}

fn revenue(minute: i64, amount: i64) -> KpiRow {
    row(
        kpi::REVENUE,
        minute,
        "all",
        &[("revenue", amount), ("attempts", 20), ("failed", 1)],
        EmitStatus::Final,
    )
}

/// The watermark at which minute `m`'s window has just settled.
fn settled(m: i64) -> Millis {
    (m + 1) * MIN + LATENESS
}

fn ids(out: &[BusinessAlert]) -> Vec<String> {
    out.iter().map(|a| a.alert_id.clone()).collect()
}

#[test]
fn empty_windows_count_as_zero_revenue_once_settled() {
    let mut a = alerts();
    let mut out = Vec::new();
    let rows: Vec<KpiRow> = (0..4).map(|m| revenue(m, 100)).collect();
    a.on_rows(&rows, settled(3), None, &mut out);
    assert!(out.is_empty(), "{out:?}");
    // Minutes 4 and 5 have no orders at all: not judged before they settle ...
    a.on_rows(&[], settled(4) - 1, None, &mut out);
    assert!(out.is_empty());
    // ... and then as zero revenue against the trailing average.
    a.on_rows(&[], settled(5), None, &mut out);
    assert_eq!(
        ids(&out),
        [
            "revenue_drop|60000|all|240000",
            "revenue_drop|60000|all|300000"
        ]
    );
    assert_eq!(out[0].baseline, Some(Decimal::from(100)));
    // Minute 5's trailing average takes in minute 4's zero (last four windows).
    assert_eq!(out[1].baseline, Some(Decimal::from(75)));
    assert_eq!(out[1].value, Decimal::ZERO);
}

#[test]
fn only_final_rows_count_and_each_window_is_judged_once() {
    let mut a = alerts();
    let mut out = Vec::new();
    let mut rows: Vec<KpiRow> = (0..3).map(|m| revenue(m, 100)).collect();
    let mut low = revenue(3, 10);
    low.status = EmitStatus::OnTime;
    rows.push(low.clone());
    a.on_rows(&rows, settled(2), None, &mut out);
    assert!(out.is_empty());
    low.status = EmitStatus::Final;
    a.on_rows(&[low.clone()], settled(3), None, &mut out);
    assert_eq!(ids(&out), ["revenue_drop|60000|all|180000"]);
    // A redelivered final row of a judged window changes nothing.
    a.on_rows(&[low], settled(3), None, &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn failed_payment_rate_is_judged_on_the_overall_row() {
    let mut a = alerts();
    let mut out = Vec::new();
    let bad = |dim| {
        row(
            kpi::REVENUE,
            0,
            dim,
            &[("revenue", 5), ("attempts", 10), ("failed", 3)],
            EmitStatus::Final,
        )
    };
    a.on_rows(
        &[bad("all"), bad("category=books")],
        settled(0),
        None,
        &mut out,
    );
    assert_eq!(ids(&out), ["failed_payment_rate|60000|all|0"]);
    assert_eq!(out[0].kind, BusinessAlertKind::FailedPaymentRate);
}

#[test]
fn a_long_outage_is_walked_without_a_step_per_window() {
    let mut a = alerts();
    let mut out = Vec::new();
    let rows: Vec<KpiRow> = (0..4).map(|m| revenue(m, 100)).collect();
    a.on_rows(&rows, settled(3), None, &mut out);
    // Ten years later: the first empty windows alert until the trailing average is all
    // zeros, then the walk jumps to the present.
    let far = settled(10 * 365 * 24 * 60);
    let started = std::time::Instant::now();
    a.on_rows(&[], far, None, &mut out);
    assert!(started.elapsed().as_secs() < 2);
    assert_eq!(out.len(), 4, "{:?}", ids(&out));
    // Revenue returns: judged against zeros, no alert, and the series goes on.
    a.on_rows(
        &[revenue(10 * 365 * 24 * 60 + 1, 100)],
        far + MIN,
        None,
        &mut out,
    );
    assert_eq!(out.len(), 4);
}

#[test]
fn a_restored_state_judges_like_the_original() {
    let input: Vec<Vec<KpiRow>> = vec![
        (0..3).map(|m| revenue(m, 100)).collect(),
        vec![revenue(3, 120)],
        vec![],
        vec![revenue(6, 10), revenue(7, 300)],
    ];
    let marks = [settled(2), settled(3), settled(4), settled(8)];
    let mut original = alerts();
    let mut want = Vec::new();
    for (rows, wm) in input.iter().zip(marks) {
        original.on_rows(rows, wm, None, &mut want);
    }
    // Restart after the second step from a snapshot, replay the rest.
    let mut first = alerts();
    let mut got = Vec::new();
    for (rows, wm) in input.iter().zip(marks).take(2) {
        first.on_rows(rows, wm, None, &mut got);
    }
    let mut entries = Vec::new();
    first.snapshot(&mut |k, v| entries.push((k, v))).unwrap();
    let mut restored = alerts();
    for (k, v) in &entries {
        assert!(k.starts_with(ALERT_PREFIX.as_bytes()));
        restored.restore(k, v.as_ref().unwrap()).unwrap();
    }
    for (rows, wm) in input.iter().zip(marks).skip(2) {
        restored.on_rows(rows, wm, None, &mut got);
    }
    assert_eq!(got, want);
    assert!(!want.is_empty());
    assert!(restored.restore(b"alert/series/x", b"{}").is_err());
    assert!(restored.restore(b"alert/stock/p", b"[1").is_err());
}

/// A catalog whose entries a test can replace.
struct Shelf(Mutex<BTreeMap<String, StockLevel>>);

impl Inventory for Shelf {
    fn stock_level(&self, product_id: &str) -> Option<StockLevel> {
        self.0.lock().unwrap().get(product_id).cloned()
    }
}

fn level(count: i64, updated_at: Millis) -> StockLevel {
    StockLevel {
        category: "books".into(),
        inventory_count: count,
        reorder_point: Some(5),
        updated_at,
    }
}

fn sold(minute: i64, product: &str, units: i64) -> KpiRow {
    row(
        kpi::PRODUCTS,
        minute,
        &format!("category=books/product={product}"),
        &[("units", units), ("revenue", units * 10)],
        EmitStatus::Final,
    )
}

#[test]
fn low_stock_fires_once_per_catalog_entry_counting_units_sold_since() {
    let shelf = Shelf(Mutex::new(BTreeMap::from([(
        "p1".to_string(),
        level(12, MIN),
    )])));
    let mut a = alerts();
    let mut out = Vec::new();
    // Minute 0 is before the catalog entry: not counted.
    a.on_rows(&[sold(0, "p1", 50)], 0, Some(&shelf), &mut out);
    a.on_rows(&[sold(1, "p1", 4)], 0, Some(&shelf), &mut out);
    assert!(out.is_empty(), "12 - 4 = 8 > 5");
    a.on_rows(&[sold(2, "p1", 3)], 0, Some(&shelf), &mut out);
    assert_eq!(ids(&out), [format!("low_stock|p1|{MIN}")]);
    assert_eq!(out[0].value, Decimal::from(5));
    assert_eq!(out[0].threshold, Decimal::from(5));
    assert_eq!(out[0].dimension, "category=books/product=p1");
    a.on_rows(&[sold(3, "p1", 1)], 0, Some(&shelf), &mut out);
    assert_eq!(out.len(), 1, "once per catalog entry");
    // Restocked: a new entry counts afresh.
    shelf
        .0
        .lock()
        .unwrap()
        .insert("p1".into(), level(7, 4 * MIN));
    a.on_rows(&[sold(4, "p1", 2)], 0, Some(&shelf), &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].alert_id, format!("low_stock|p1|{}", 4 * MIN));
    // Unknown products, other categories and hourly rows raise nothing.
    let mut hourly = sold(5, "p1", 100);
    hourly.window_end = hourly.window_start + 60 * MIN;
    let mut other = sold(5, "p1", 100);
    other.dimension = "category=toys/product=p1".into();
    a.on_rows(
        &[sold(5, "p9", 100), hourly, other],
        0,
        Some(&shelf),
        &mut out,
    );
    assert_eq!(out.len(), 2);
}

#[test]
fn disabled_rules_raise_nothing() {
    let mut a = BusinessAlerts::new(
        AlertConfig {
            enabled: false,
            ..cfg()
        },
        &[WindowSpec::tumbling(MIN)],
        LATENESS,
    );
    let mut out = Vec::new();
    let rows: Vec<KpiRow> = (0..4).map(|m| revenue(m, 100)).collect();
    a.on_rows(&rows, settled(3), None, &mut out);
    a.on_rows(&[], settled(9), None, &mut out);
    assert!(out.is_empty());
    assert!(a.is_empty());
}
