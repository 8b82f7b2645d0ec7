//! Checks of the upsert output topics against PostgreSQL: every record of each
//! `shop.kpi.<family>` topic, of the compacted `shop.customers.rfm` topic and of
//! `shop.alerts.business` (key alert_id, table business_alerts) is read from
//! the beginning; no key may carry two different values at one revision (a doubled
//! emission: the sinks could keep either), and the latest revision of every key (ties to
//! the later record, as the sinks do) must equal its row in `kpi_<family>` or
//! dim_customers' `rfm_*` columns, with no row on one side only. The tests run without a
//! schema registry, so the topics hold JSON; the checks poll while the sink catches up.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use rust_decimal::{Decimal, RoundingStrategy};
use shopstream::model::{BusinessAlert, BusinessAlertKind, CustomerRfm, KpiRow};
use tokio_postgres::Client;

use super::kafka::read_to_end;
use super::oracle::table_rows;

/// Every KPI family with a topic and a table.
pub const KPI_FAMILIES: [&str; 9] = [
    "revenue", "activity", "quality", "products", "geo", "payments", "hourly", "funnel", "sessions",
];

/// The customer RFM topic.
pub const RFM_TOPIC: &str = "shop.customers.rfm";
/// The business alerts topic.
pub const ALERTS_TOPIC: &str = "shop.alerts.business";

/// The records of one upsert topic, per key.
pub struct Upserts<V> {
    /// Per key: its highest revision and that revision's value.
    pub latest: BTreeMap<String, (i64, V)>,
    /// Keys emitted with two different values at one revision, described.
    pub doubled: Vec<String>,
    /// Records read.
    pub records: usize,
    seen: HashMap<(String, i64), V>,
}

impl<V: Clone + PartialEq + Debug> Upserts<V> {
    fn new() -> Self {
        Upserts {
            latest: BTreeMap::new(),
            doubled: Vec::new(),
            records: 0,
            seen: HashMap::new(),
        }
    }

    fn add(&mut self, key: String, revision: i64, value: V) {
        self.records += 1;
        match self.seen.get(&(key.clone(), revision)) {
            Some(old) if *old != value => self
                .doubled
                .push(format!("{key} revision {revision}: {old:?} and {value:?}")),
            Some(_) => {}
            None => {
                self.seen.insert((key.clone(), revision), value.clone());
            }
        }
        if self.latest.get(&key).map_or(true, |(r, _)| *r <= revision) {
            self.latest.insert(key, (revision, value));
        }
    }
}

/// A KPI row's value as compared: status and metrics (normalized decimals).
pub type KpiValue = (String, BTreeMap<String, Decimal>);

/// Every record of `shop.kpi.<family>`, keyed by the row key.
pub fn kpi_upserts(bootstrap: &str, family: &str) -> Upserts<KpiValue> {
    let mut u = Upserts::new();
    read_to_end(bootstrap, &format!("shop.kpi.{family}"), |payload| {
        let row: KpiRow = serde_json::from_slice(payload).expect("a KPI row in JSON");
        let values = row.values.iter().map(|(k, v)| (k.clone(), v.normalize()));
        let value = (row.status.as_str().to_string(), values.collect());
        u.add(row.key(), i64::from(row.revision), value);
    });
    u
}

/// Every record of shop.customers.rfm, keyed by customer id.
pub fn rfm_upserts(bootstrap: &str) -> Upserts<CustomerRfm> {
    let mut u = Upserts::new();
    read_to_end(bootstrap, RFM_TOPIC, |payload| {
        let r: CustomerRfm = serde_json::from_slice(payload).expect("a CustomerRfm in JSON");
        u.add(r.customer_id.clone(), r.revision, r);
    });
    u
}

/// A business alert as compared: kind, dimension, value, threshold, baseline (normalized).
pub type AlertValue = (String, String, Decimal, Decimal, Option<Decimal>);

/// Every record of shop.alerts.business, keyed by alert id. Window alerts rest on final
/// rows and must never differ between emissions (revision 0 for all); a `low_stock` alert
/// depends on the catalog stage 2 sees, so its records only need their latest to be the
/// table's (each its own revision, the later one wins).
pub fn alert_upserts(bootstrap: &str) -> Upserts<AlertValue> {
    let mut u = Upserts::new();
    let mut n = 0;
    read_to_end(bootstrap, ALERTS_TOPIC, |payload| {
        let a: BusinessAlert = serde_json::from_slice(payload).expect("a BusinessAlert in JSON");
        n += 1;
        let revision = if a.kind == BusinessAlertKind::LowStock {
            n
        } else {
            0
        };
        let value = (
            a.kind.as_str().to_string(),
            a.dimension,
            a.value.normalize(),
            a.threshold.normalize(),
            a.baseline.map(|b| b.normalize()),
        );
        u.add(a.alert_id, revision, value);
    });
    u
}

/// business_alerts as (alert id → (0, value)); revisions are the topic's business.
async fn alert_table(client: &Client) -> BTreeMap<String, AlertValue> {
    let rows = client
        .query(
            "SELECT alert_id, kind, dimension, value::text, threshold::text, baseline::text
             FROM business_alerts",
            &[],
        )
        .await
        .unwrap();
    let d = |t: &str| t.parse::<Decimal>().unwrap().normalize();
    rows.iter()
        .map(|r| {
            let baseline: Option<&str> = r.get(5);
            let v = (
                r.get(1),
                r.get(2),
                d(r.get(3)),
                d(r.get(4)),
                baseline.map(d),
            );
            (r.get(0), v)
        })
        .collect()
}

/// `kpi_<family>` as (row key → (revision, value)), the keys as `KpiRow::key` makes them.
async fn kpi_table(client: &Client, family: &str) -> BTreeMap<String, (i64, KpiValue)> {
    table_rows(client, family)
        .await
        .into_iter()
        .map(|r| {
            let key = format!("{family}|{}|{}|{}", r.start, r.end, r.dimension);
            (key, (r.revision, (r.status, r.metrics)))
        })
        .collect()
}

/// dim_customers' RFM columns as the record the sink wrote them from (customer id →
/// (revision, record)).
async fn rfm_table(client: &Client) -> BTreeMap<String, (i64, CustomerRfm)> {
    let ms = |c: &str| format!("(extract(epoch FROM {c}) * 1000)::bigint");
    let sql = format!(
        "SELECT customer_id, rfm_revision, rfm_order_count, rfm_lifetime_value::text,
            rfm_currency, {}, {}, {}, rfm_recency_days, rfm_recency, rfm_frequency,
            rfm_monetary, rfm_segment
         FROM dim_customers WHERE rfm_revision IS NOT NULL",
        ms("rfm_first_order_at"),
        ms("rfm_last_order_at"),
        ms("rfm_as_of")
    );
    let rows = client.query(&sql, &[]).await.unwrap();
    rows.iter()
        .map(|r| {
            let score = |i: usize| i32::from(r.get::<_, i16>(i));
            let c = CustomerRfm {
                customer_id: r.get(0),
                revision: r.get(1),
                order_count: r.get(2),
                lifetime_value: r.get::<_, &str>(3).parse().unwrap(),
                currency: r.get(4),
                first_order_at: r.get(5),
                last_order_at: r.get(6),
                as_of: r.get(7),
                recency_days: r.get(8),
                recency: score(9),
                frequency: score(10),
                monetary: score(11),
                segment: r.get(12),
            };
            (c.customer_id.clone(), (c.revision, c))
        })
        .collect()
}

/// A topic record as dim_customers stores it: the lifetime value (exact, in the reporting
/// currency) in a numeric(18,2) column, which rounds half away from zero. Scores are
/// compared unclamped: they are 1..=5, and the sink's clamp must never change one.
fn as_stored(r: &CustomerRfm) -> CustomerRfm {
    let mut r = r.clone();
    r.lifetime_value = r
        .lifetime_value
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        .normalize();
    r
}

/// How one topic compares with its table.
struct Diff {
    /// Keys on one side only, or whose values differ (a few, described).
    wrong: Vec<String>,
    doubled: Vec<String>,
    rows: usize,
    records: usize,
}

fn diff<V: PartialEq + Debug>(
    name: &str,
    topic: Upserts<V>,
    table: &BTreeMap<String, (i64, V)>,
) -> Diff {
    let mut wrong: Vec<String> = table
        .keys()
        .filter(|k| !topic.latest.contains_key(*k))
        .map(|k| format!("{name} {k}: only in PostgreSQL"))
        .collect();
    for (k, want) in &topic.latest {
        match table.get(k) {
            None => wrong.push(format!("{name} {k}: only on the topic")),
            Some(got) if got != want => wrong.push(format!(
                "{name} {k}: PostgreSQL {got:?}, latest on the topic {want:?}"
            )),
            Some(_) => {}
        }
    }
    Diff {
        wrong,
        doubled: topic.doubled,
        rows: table.len(),
        records: topic.records,
    }
}

async fn compare(client: &Client, bootstrap: &str, families: &[&str]) -> Vec<(String, Diff)> {
    let mut out = Vec::new();
    for family in families {
        let topic = kpi_upserts(bootstrap, family);
        let table = kpi_table(client, family).await;
        out.push((family.to_string(), diff(family, topic, &table)));
    }
    let mut topic = rfm_upserts(bootstrap);
    for (_, r) in topic.latest.values_mut() {
        *r = as_stored(r);
    }
    let mut table = rfm_table(client).await;
    for (_, r) in table.values_mut() {
        r.lifetime_value = r.lifetime_value.normalize();
    }
    out.push(("rfm".to_string(), diff("rfm", topic, &table)));
    let topic = alert_upserts(bootstrap);
    // The table holds no revisions: compare each row with the latest record's revision.
    let table: BTreeMap<String, (i64, AlertValue)> = alert_table(client)
        .await
        .into_iter()
        .map(|(k, v)| {
            let rev = topic.latest.get(&k).map_or(0, |(r, _)| *r);
            (k, (rev, v))
        })
        .collect();
    out.push(("business_alerts".to_string(), diff("alerts", topic, &table)));
    out
}

/// Requires every KPI family of `families`, customer RFM and the business alerts to be
/// undoubled on its topic
/// and its table to hold exactly the latest revision of every key on the topic, polling
/// until `timeout` passes while the sink catches up. Returns (records read, rows
/// compared) per family, RFM as `rfm`, alerts as `business_alerts`.
pub async fn check_topics_equal_tables(
    client: &Client,
    bootstrap: &str,
    families: &[&str],
    timeout: Duration,
) -> BTreeMap<String, (usize, usize)> {
    let deadline = Instant::now() + timeout;
    let mut diffs = compare(client, bootstrap, families).await;
    while diffs.iter().any(|(_, d)| !d.wrong.is_empty()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        diffs = compare(client, bootstrap, families).await;
    }
    // Doubled revisions first: they explain a difference, not the other way round.
    let doubled = "keys emitted with two different values at one revision";
    let problems = (diffs.iter().map(|(n, d)| (n, doubled, &d.doubled))).chain(
        diffs
            .iter()
            .map(|(n, d)| (n, "rows differ from PostgreSQL", &d.wrong)),
    );
    for (name, what, all) in problems {
        let few = &all[..all.len().min(3)];
        assert!(all.is_empty(), "{name}: {} {what}: {few:#?}", all.len());
    }
    diffs
        .into_iter()
        .map(|(name, d)| (name, (d.records, d.rows)))
        .collect()
}
