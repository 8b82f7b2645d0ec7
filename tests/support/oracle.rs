//! Expected PostgreSQL contents for a generated input, from the generator's own files (the
//! JSONL export and the ground truth), and the batch checks of the KPI rows: every revenue
//! row against PostgreSQL's recomputation from the orders, every activity row against a
//! recomputation from the generated events, and the quality rows against the input's
//! record counts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
/// and their items, converted to the reporting currency with the default rates (the batch oracle over the records the engine accepted); returns how
/// many rows were checked.
pub async fn check_all_revenue(client: &Client) -> usize {
    // Amounts in the reporting currency, with the default rate table.
    let cfg = shopstream::engine::KpiConfig::default();
    let currencies: Vec<&str> = cfg.rates.keys().map(String::as_str).collect();
    let rates: Vec<rust_decimal::Decimal> = cfg.rates.values().copied().collect();
    let rows = client
        .query(
            "WITH rates AS (SELECT * FROM UNNEST($1::text[], $2::numeric[]) AS r(currency, rate)),
             lines AS (
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
                        SELECT concat_ws(' ', coalesce(sum(o.amount * r.rate), 0), count(*),
                                         count(DISTINCT o.customer_id))
                        FROM fact_orders o JOIN rates r USING (currency)
                        WHERE o.status = 'completed'
                          AND o.event_time >= k.window_start AND o.event_time < k.window_end)
                    ELSE (
                        SELECT concat_ws(' ', coalesce(sum(l.revenue * r.rate), 0), count(*),
                                         count(DISTINCT o.customer_id))
                        FROM fact_orders o JOIN lines l USING (transaction_id)
                             JOIN rates r USING (currency)
                        WHERE o.status = 'completed'
                          AND l.category = substr(k.dimension, length('category=') + 1)
                          AND o.event_time >= k.window_start AND o.event_time < k.window_end)
                    END
             FROM kpi_revenue k",
            &[&currencies, &rates],
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

/// The generated input as the activity and quality checks need it.
pub struct InputStats {
    /// Every record written to the input topics.
    pub records: usize,
    /// Valid records of shop.transactions (duplicates and late ones included).
    pub valid_transactions: usize,
    pub max_event_time: i64,
    /// Valid events: (event_id, customer_id, event_type, event time).
    events: Vec<(String, String, String, i64)>,
}

/// The quality rows' records, summed: reaches `InputStats::records` once every window
/// holding input has been emitted.
pub const QUALITY_TOTAL: &str =
    "SELECT coalesce(sum((metrics->>'total')::bigint), 0)::bigint FROM kpi_quality";

pub fn input_stats(dir: &Path) -> InputStats {
    let truth = std::fs::read_to_string(dir.join("truth.jsonl")).unwrap();
    let mut invalid = BTreeSet::new();
    for line in truth.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let labels = v["labels"].as_array().unwrap();
        if labels
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("invalid:"))
        {
            invalid.insert(v["seq"].as_u64().unwrap());
        }
    }
    let (mut records, mut max_event_time) = (0, i64::MIN);
    let mut valid_lines = |topic: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(format!("{topic}.jsonl")))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .inspect(|v| {
                records += 1;
                max_event_time = max_event_time.max(v["timestamp"].as_i64().unwrap());
            })
            .filter(|v| !invalid.contains(&v["seq"].as_u64().unwrap()))
            .collect()
    };
    let valid_transactions = valid_lines("shop.transactions").len();
    let events = valid_lines("shop.events")
        .into_iter()
        .map(|v| {
            let e = &v["value"];
            let text = |k: &str| e[k].as_str().unwrap().to_string();
            (
                text("event_id"),
                text("customer_id"),
                text("event_type"),
                v["timestamp"].as_i64().unwrap(),
            )
        })
        .collect();
    InputStats {
        records,
        valid_transactions,
        max_event_time,
        events,
    }
}

impl InputStats {
    /// Counts in the records of `kafka::open_event_time`, written at event time `at`.
    pub fn add_opening(&mut self, opening: &super::kafka::Opening, at: i64) {
        for (id, customer) in &opening.events {
            self.events
                .push((id.clone(), customer.clone(), "page_view".into(), at));
        }
        self.valid_transactions += opening.transactions.len();
        self.records += opening.transactions.len() + opening.events.len();
    }

    /// Ends the input's event time 20 minutes after its last record (beyond every one-
    /// and five-minute window's end plus the allowed lateness) with the closing events of
    /// `kafka::close_event_time`, and counts them in. The windows that hold the closing
    /// events close too, once every partition has gone idle, as the watermark then
    /// advances with processing time.
    pub fn close_event_time(&mut self, bootstrap: &str, partitions: i32) {
        let at = self.max_event_time + 20 * 60_000;
        for (id, customer) in super::kafka::close_event_time(bootstrap, partitions, at) {
            self.events.push((id, customer, "page_view".into(), at));
            self.records += 1;
        }
    }
}

/// One row of a `kpi_<family>` table: window bounds in epoch milliseconds, and the
/// metric values as normalized decimals.
pub struct TableRow {
    pub start: i64,
    pub end: i64,
    pub dimension: String,
    pub status: String,
    pub revision: i64,
    pub metrics: BTreeMap<String, rust_decimal::Decimal>,
}

/// Every row of `kpi_<family>`, ordered by window and dimension.
pub async fn table_rows(client: &Client, family: &str) -> Vec<TableRow> {
    let sql = format!(
        "SELECT (extract(epoch FROM window_start) * 1000)::bigint,
                (extract(epoch FROM window_end) * 1000)::bigint, dimension, status, revision,
                metrics::text
         FROM kpi_{family} ORDER BY 1, 2, 3"
    );
    client
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let metrics: BTreeMap<String, serde_json::Value> =
                serde_json::from_str(r.get(5)).unwrap();
            TableRow {
                start: r.get(0),
                end: r.get(1),
                dimension: r.get(2),
                status: r.get(3),
                revision: r.get(4),
                metrics: metrics
                    .iter()
                    .map(|(k, v)| (k.clone(), norm(v.to_string().trim_matches('"'))))
                    .collect(),
            }
        })
        .collect()
}

fn norm(v: &str) -> rust_decimal::Decimal {
    v.parse::<rust_decimal::Decimal>().unwrap().normalize()
}

/// The valid generated events the engine counted (those late_records does not hold), as
/// (event_id, customer_id, event_type, event time).
pub async fn accepted_events<'a>(
    client: &Client,
    input: &'a InputStats,
) -> Vec<&'a (String, String, String, i64)> {
    let mut late: HashMap<String, usize> = HashMap::new();
    for r in client
        .query(
            "SELECT record_id FROM late_records WHERE source_topic = 'shop.events'",
            &[],
        )
        .await
        .unwrap()
    {
        *late.entry(r.get(0)).or_default() += 1;
    }
    let mut events = Vec::with_capacity(input.events.len());
    for e in &input.events {
        match late.get_mut(&e.0) {
            Some(n) if *n > 0 => *n -= 1,
            _ => events.push(e),
        }
    }
    events
}

/// Checks every activity row of PostgreSQL against a recomputation from the generated
/// events (less the invalid ones and those late_records holds), and that every
/// one-minute window holding events up to the input's last event time has a row;
/// returns how many rows were checked.
pub async fn check_all_activity(client: &Client, input: &InputStats) -> usize {
    let events = accepted_events(client, input).await;
    let rows = table_rows(client, "activity").await;
    for TableRow {
        start,
        end,
        status,
        metrics,
        ..
    } in &rows
    {
        let inside: Vec<_> = events
            .iter()
            .filter(|e| e.3 >= *start && e.3 < *end)
            .collect();
        let mut want = BTreeMap::new();
        for key in metrics.keys() {
            let n = match key.as_str() {
                "events" => inside.len(),
                "active_users" => inside.iter().map(|e| &e.1).collect::<BTreeSet<_>>().len(),
                t => inside.iter().filter(|e| e.2 == t).count(),
            };
            want.insert(key.clone(), rust_decimal::Decimal::from(n));
        }
        assert_eq!(metrics, &want, "activity window {start}..{end} ({status})");
    }
    let with_rows: BTreeSet<i64> = rows.iter().map(|r| r.start).collect();
    let missing: BTreeSet<i64> = events
        .iter()
        .map(|e| e.3 - e.3.rem_euclid(60_000))
        .filter(|s| s + 60_000 <= input.max_event_time && !with_rows.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "activity windows with events but no row: {missing:?}"
    );
    rows.len()
}

/// Checks the quality rows: each row's valid count and score follow from its counts, and
/// summed over the rows the counts are the input's: every record once in `total`, the
/// invalid ones (`invalid` of them), the records late_records holds, and the duplicates
/// (the valid transactions neither in fact_orders nor late). Every window must have been
/// emitted (see `kafka::close_event_time`). Returns how many rows were checked.
pub async fn check_quality(client: &Client, input: &InputStats, invalid: usize) -> usize {
    let rows = table_rows(client, "quality").await;
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for TableRow {
        start,
        status,
        metrics: m,
        ..
    } in &rows
    {
        let n = |k: &str| u64::try_from(m[k]).unwrap();
        for k in ["total", "invalid", "duplicates", "late"] {
            *sums.entry(k).or_default() += n(k);
        }
        assert_eq!(
            n("valid"),
            n("total") - n("invalid"),
            "quality {start} ({status})"
        );
        let score = (rust_decimal::Decimal::from(n("valid"))
            / rust_decimal::Decimal::from(n("total")))
        .round_dp(4);
        assert_eq!(m["score"], score.normalize(), "quality score {start}");
    }
    let one = |sql: &'static str| async move {
        client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) as u64
    };
    let orders = one("SELECT count(*) FROM fact_orders").await;
    let late = one("SELECT count(*) FROM late_records").await;
    let late_tx =
        one("SELECT count(*) FROM late_records WHERE source_topic = 'shop.transactions'").await;
    let want = BTreeMap::from([
        ("total", input.records as u64),
        ("invalid", invalid as u64),
        (
            "duplicates",
            input.valid_transactions as u64 - orders - late_tx,
        ),
        ("late", late),
    ]);
    let brief: Vec<_> = rows
        .iter()
        .map(|r| {
            let m = &r.metrics;
            format!(
                "{}..{} {}: total {} invalid {} duplicates {} late {}",
                r.start, r.end, r.status, m["total"], m["invalid"], m["duplicates"], m["late"]
            )
        })
        .collect();
    assert_eq!(sums, want, "quality counts summed over the rows {brief:#?}");
    rows.len()
}
