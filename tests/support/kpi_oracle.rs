//! Batch checks of the money KPI families against a recomputation from PostgreSQL's facts:
//! every row of kpi_revenue (money, margin, failed/refunded values), kpi_hourly, kpi_geo,
//! kpi_payments and kpi_products (per-product totals and the per-category top-N ranking)
//! is recomputed in Rust from fact_orders and fact_order_items (the records the engine
//! accepted, with the catalog cost enrichment saw), converted with the default rate table,
//! and compared value by value.

use std::collections::BTreeMap;

use super::oracle::{table_rows, TableRow};
use rust_decimal::Decimal;
use shopstream::engine::KpiConfig;
use tokio_postgres::Client;

struct Order {
    ts: i64,
    status: String,
    customer: String,
    /// The amount in the reporting currency; `None` without a rate.
    amount: Option<Decimal>,
    method: String,
    country: String,
    state: Option<String>,
    lines: Vec<Line>,
}

struct Line {
    product: String,
    category: String,
    units: u64,
    /// Net line revenue in the reporting currency.
    revenue: Decimal,
    /// Catalog cost of the line; `None` for an unknown product.
    cost: Option<Decimal>,
}

/// The accepted orders, by event time.
pub struct Facts {
    orders: Vec<Order>,
    top_n: usize,
}

fn dec(s: &str) -> Decimal {
    s.parse::<Decimal>().unwrap()
}

impl Facts {
    /// Loads the facts, converting with `cfg`'s rates (the pipeline's config).
    pub async fn load(client: &Client, cfg: &KpiConfig) -> Facts {
        let rate = |c: &str| cfg.rates.get(c).copied();
        let mut lines: BTreeMap<String, Vec<Line>> = BTreeMap::new();
        let mut rates = BTreeMap::new();
        for r in client
            .query("SELECT transaction_id, currency FROM fact_orders", &[])
            .await
            .unwrap()
        {
            rates.insert(r.get::<_, String>(0), rate(r.get(1)));
        }
        for r in client
            .query(
                "SELECT transaction_id, product_id, category, quantity,
                        (quantity * unit_price - discount)::text,
                        CASE WHEN known_product THEN (unit_cost * quantity)::text END
                 FROM fact_order_items ORDER BY transaction_id, line_no",
                &[],
            )
            .await
            .unwrap()
        {
            let id: String = r.get(0);
            let conv = rates.get(&id).copied().flatten().unwrap_or(Decimal::ONE);
            lines.entry(id).or_default().push(Line {
                product: r.get(1),
                category: r.get(2),
                units: u64::from(r.get::<_, i32>(3).unsigned_abs()),
                revenue: dec(r.get(4)) * conv,
                cost: r.get::<_, Option<&str>>(5).map(dec),
            });
        }
        let mut orders = Vec::new();
        for r in client
            .query(
                "SELECT transaction_id, (extract(epoch FROM event_time) * 1000)::bigint, status,
                        customer_id, currency, amount::text, payment_method, country, state
                 FROM fact_orders ORDER BY 2",
                &[],
            )
            .await
            .unwrap()
        {
            let id: String = r.get(0);
            orders.push(Order {
                ts: r.get(1),
                status: r.get(2),
                customer: r.get(3),
                amount: rate(r.get(4)).map(|x| dec(r.get(5)) * x),
                method: r.get(6),
                country: r.get(7),
                state: r.get(8),
                lines: lines.remove(&id).unwrap_or_default(),
            });
        }
        Facts {
            orders,
            top_n: cfg.top_n,
        }
    }

    fn window(&self, start: i64, end: i64) -> &[Order] {
        let a = self.orders.partition_point(|o| o.ts < start);
        let b = self.orders.partition_point(|o| o.ts < end);
        &self.orders[a..b]
    }
}

fn completed(o: &Order) -> Option<Decimal> {
    o.amount.filter(|_| o.status == "completed")
}

/// attempts, orders and revenue of `orders` (the hourly, geo and payments values).
fn sales<'a>(orders: impl Iterator<Item = &'a Order>) -> BTreeMap<String, Decimal> {
    let (mut attempts, mut n, mut revenue) = (0u64, 0u64, Decimal::ZERO);
    for o in orders {
        attempts += 1;
        if let Some(a) = completed(o) {
            n += 1;
            revenue += a;
        }
    }
    BTreeMap::from([
        ("attempts".into(), attempts.into()),
        ("orders".into(), n.into()),
        ("revenue".into(), revenue),
    ])
}

/// The money values of a revenue row: margin and cost over the completed lines of
/// `category` (all lines for `all`), plus the overall failed/refunded values.
fn revenue_money<'a>(
    orders: impl Iterator<Item = &'a Order>,
    category: Option<&str>,
) -> BTreeMap<String, Decimal> {
    let mut v: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut add = |k: &str, x: Decimal| *v.entry(k.to_owned()).or_default() += x;
    for o in orders {
        if category.is_none() {
            add("attempts", Decimal::ONE);
            match (o.amount, o.status.as_str()) {
                (Some(a), "failed") => {
                    add("failed", Decimal::ONE);
                    add("failed_amount", a);
                }
                (Some(a), "refunded") => {
                    add("refunded", Decimal::ONE);
                    add("refunded_amount", a);
                }
                _ => {}
            }
        }
        if completed(o).is_none() {
            continue;
        }
        for l in o
            .lines
            .iter()
            .filter(|l| category.map_or(true, |c| c == l.category))
        {
            match l.cost {
                Some(c) => {
                    add("cost", c);
                    add("gross_margin", l.revenue - c);
                }
                None => add("unknown_products", Decimal::ONE),
            }
        }
    }
    v
}

/// Per product of `category`: its rows' values, ranked like the engine.
fn products(
    orders: &[Order],
    category: &str,
    top_n: usize,
) -> BTreeMap<String, BTreeMap<String, Decimal>> {
    let mut totals: BTreeMap<&str, (u64, Decimal, Decimal, u64)> = BTreeMap::new();
    for o in orders.iter().filter(|o| completed(o).is_some()) {
        for l in o.lines.iter().filter(|l| l.category == category) {
            let t = totals.entry(&l.product).or_default();
            t.0 += l.units;
            t.1 += l.revenue;
            match l.cost {
                Some(c) => t.2 += c,
                None => t.3 += l.units,
            }
        }
    }
    let mut ranked: Vec<_> = totals.into_iter().collect();
    ranked.sort_by(|a, b| (b.1 .1, b.1 .0).cmp(&(a.1 .1, a.1 .0)).then(a.0.cmp(b.0)));
    ranked
        .into_iter()
        .enumerate()
        .map(|(i, (p, (units, revenue, cost, unknown)))| {
            let mut v = BTreeMap::from([
                ("units".to_owned(), Decimal::from(units)),
                ("revenue".into(), revenue),
                ("cost".into(), cost),
                ("unknown_units".into(), Decimal::from(unknown)),
            ]);
            if unknown == 0 {
                v.insert("gross_margin".into(), revenue - cost);
            }
            if i < top_n {
                v.insert("rank".into(), Decimal::from(i + 1));
            }
            (format!("category={category}/product={p}"), v)
        })
        .collect()
}

/// The dimensions the orders of one window must have rows for in `family`.
fn expected_dims(family: &str, orders: &[Order]) -> std::collections::BTreeSet<String> {
    let mut dims = std::collections::BTreeSet::new();
    for o in orders {
        match family {
            "hourly" => {
                dims.insert("all".to_owned());
            }
            "payments" => {
                dims.insert(format!("method={}", o.method));
            }
            "geo" => {
                dims.insert(format!("country={}", o.country));
                if let Some(s) = &o.state {
                    dims.insert(format!("country={}/state={s}", o.country));
                }
            }
            "products" if completed(o).is_some() => {
                for l in &o.lines {
                    dims.insert(format!("category={}/product={}", l.category, l.product));
                }
            }
            "revenue" => {
                dims.insert("all".to_owned());
                if completed(o).is_some() {
                    for l in &o.lines {
                        dims.insert(format!("category={}", l.category));
                    }
                }
            }
            _ => {}
        }
    }
    dims
}

fn normalized(v: BTreeMap<String, Decimal>) -> BTreeMap<String, Decimal> {
    v.into_iter().map(|(k, d)| (k, d.normalize())).collect()
}

/// Checks every row of the `hourly`, `geo`, `payments` and `products` tables and the money
/// values of every `revenue` row; returns the rows checked per family.
pub async fn check_all_commerce(client: &Client, cfg: &KpiConfig) -> BTreeMap<&'static str, usize> {
    let facts = Facts::load(client, cfg).await;
    let mut checked = BTreeMap::new();
    for family in ["hourly", "geo", "payments", "products", "revenue"] {
        let rows = table_rows(client, family).await;
        let mut product_rows: BTreeMap<(i64, i64, String), BTreeMap<String, _>> = BTreeMap::new();
        for TableRow {
            start,
            end,
            dimension: dim,
            status,
            metrics: got,
            ..
        } in &rows
        {
            let orders = facts.window(*start, *end);
            let label = |prefix: &str| dim.strip_prefix(prefix).map(str::to_owned);
            let want =
                match family {
                    "hourly" => {
                        assert_eq!(dim, "all");
                        sales(orders.iter())
                    }
                    "payments" => {
                        let m = label("method=").expect("method= dimension");
                        sales(orders.iter().filter(|o| o.method == m))
                    }
                    "geo" => {
                        let rest = label("country=").expect("country= dimension");
                        let (country, state) = match rest.split_once("/state=") {
                            Some((c, s)) => (c.to_owned(), Some(s.to_owned())),
                            None => (rest, None),
                        };
                        sales(orders.iter().filter(|o| {
                            o.country == country && (state.is_none() || o.state == state)
                        }))
                    }
                    "products" => {
                        let rest = label("category=").expect("category= dimension");
                        let (category, _) = rest.split_once("/product=").expect("a product row");
                        let all = product_rows
                            .entry((*start, *end, category.to_owned()))
                            .or_insert_with(|| products(orders, category, facts.top_n));
                        all.get(dim)
                            .cloned()
                            .unwrap_or_else(|| panic!("{dim} in {start}..{end}: no such product"))
                    }
                    _ => {
                        // Revenue, orders and customers are check_all_revenue's; the money
                        // values added with the reporting currency are checked here.
                        let category = label("category=");
                        let keys: &[&str] = if category.is_some() {
                            &["cost", "gross_margin", "unknown_products"]
                        } else {
                            &[
                                "attempts",
                                "failed",
                                "failed_amount",
                                "refunded",
                                "refunded_amount",
                                "cost",
                                "gross_margin",
                                "unknown_products",
                            ]
                        };
                        let want = revenue_money(orders.iter(), category.as_deref());
                        let pick = |m: &BTreeMap<String, Decimal>| -> BTreeMap<String, Decimal> {
                            keys.iter()
                                .map(|k| {
                                    (
                                        k.to_string(),
                                        m.get(*k).copied().unwrap_or_default().normalize(),
                                    )
                                })
                                .collect()
                        };
                        assert!(
                            keys.iter().all(|k| got.contains_key(*k)),
                            "revenue {dim}: {got:?}"
                        );
                        assert_eq!(
                            pick(got),
                            pick(&want),
                            "revenue {start}..{end} {dim} ({status}): money values"
                        );
                        continue;
                    }
                };
            assert_eq!(
                got,
                &normalized(want),
                "{family} {start}..{end} {dim} ({status}): got vs recomputed"
            );
        }
        // Every row the recomputation has for a window of the table is in the table (no
        // missing country, state, method or product, so no missing rank either).
        let mut dims: BTreeMap<(i64, i64), Vec<&str>> = BTreeMap::new();
        for r in &rows {
            dims.entry((r.start, r.end)).or_default().push(&r.dimension);
        }
        for ((start, end), got) in &dims {
            let want = expected_dims(family, facts.window(*start, *end));
            let missing: Vec<_> = want.iter().filter(|d| !got.contains(&d.as_str())).collect();
            assert!(
                missing.is_empty(),
                "{family} {start}..{end}: rows missing: {missing:?}"
            );
        }
        checked.insert(family, rows.len());
    }
    checked
}
