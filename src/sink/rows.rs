//! One sink batch: the decoded output records of a poll, deduplicated per natural key and
//! written as one `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT` statement per table,
//! with every value a bound array parameter. KPI rows keep the highest revision (ties go to
//! the later write, so a re-emitted revision replaces an earlier identical-numbered one);
//! facts keyed by transaction_id or source coordinates are replaced by the later write.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use rust_decimal::Decimal;
use tokio_postgres::Transaction;

use crate::model::{
    BusinessAlert, CustomerRfm, DlqRecord, EnrichedOrder, FraudAlert, KpiRow, LateRecord, Product,
    SourceCoord,
};

/// Separator for string lists passed as one text value (split again in SQL).
const LIST_SEP: &str = "\u{1f}";

/// A decoded record from one of the sink's topics.
#[derive(Debug, Clone)]
pub enum SinkRecord {
    Order(Box<EnrichedOrder>),
    Alert(Box<FraudAlert>),
    Kpi(Box<KpiRow>),
    Dlq(Box<DlqRecord>),
    Late(Box<LateRecord>),
    Product(Box<Product>),
    Rfm(Box<CustomerRfm>),
    BusinessAlert(Box<BusinessAlert>),
}

/// Rows to write in one PostgreSQL transaction.
#[derive(Debug, Default)]
pub struct Batch {
    orders: BTreeMap<String, EnrichedOrder>,
    alerts: BTreeMap<String, FraudAlert>,
    kpis: BTreeMap<(String, i64, i64, String), KpiRow>,
    dlq: BTreeMap<SourceCoord, DlqRecord>,
    late: BTreeMap<SourceCoord, LateRecord>,
    products: BTreeMap<String, Product>,
    rfm: BTreeMap<String, CustomerRfm>,
    business_alerts: BTreeMap<String, BusinessAlert>,
    records: usize,
}

/// Rows written per table by one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    pub orders: u64,
    pub items: u64,
    pub alerts: u64,
    pub kpis: u64,
    pub dlq: u64,
    pub late: u64,
    pub products: u64,
    pub rfm: u64,
    pub business_alerts: u64,
}

impl WriteStats {
    pub fn total(&self) -> u64 {
        self.orders
            + self.items
            + self.alerts
            + self.kpis
            + self.dlq
            + self.late
            + self.products
            + self.rfm
            + self.business_alerts
    }
}

impl Batch {
    pub fn push(&mut self, r: SinkRecord) {
        self.records += 1;
        match r {
            SinkRecord::Order(o) => {
                self.orders.insert(o.order.transaction_id.clone(), *o);
            }
            SinkRecord::Alert(a) => {
                self.alerts.insert(a.transaction_id.clone(), *a);
            }
            SinkRecord::Kpi(k) => {
                let key = (
                    k.kpi.clone(),
                    k.window_start,
                    k.window_end,
                    k.dimension.clone(),
                );
                match self.kpis.get(&key) {
                    Some(old) if old.revision > k.revision => {}
                    _ => {
                        self.kpis.insert(key, *k);
                    }
                }
            }
            SinkRecord::Dlq(d) => {
                self.dlq.insert(d.source.clone(), *d);
            }
            SinkRecord::Late(l) => {
                self.late.insert(l.source.clone(), *l);
            }
            SinkRecord::Product(p) => match self.products.get(&p.product_id) {
                Some(old) if old.updated_at > p.updated_at => {}
                _ => {
                    self.products.insert(p.product_id.clone(), *p);
                }
            },
            SinkRecord::Rfm(r) => super::rfm::keep_latest(&mut self.rfm, *r),
            SinkRecord::BusinessAlert(a) => {
                self.business_alerts.insert(a.alert_id.clone(), *a);
            }
        }
    }

    /// Records pushed (before per-key deduplication).
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Writes every table's rows inside `tx`.
    pub async fn write(&self, tx: &Transaction<'_>) -> Result<WriteStats> {
        let mut s = WriteStats::default();
        if !self.orders.is_empty() {
            s.orders = self.write_orders(tx).await.context("fact_orders")?;
            s.items = self.write_items(tx).await.context("fact_order_items")?;
            self.refresh_customers(tx).await.context("dim_customers")?;
        }
        if !self.alerts.is_empty() {
            s.alerts = self.write_alerts(tx).await.context("fraud_alerts")?;
        }
        s.kpis = self.write_kpis(tx).await?;
        if !self.dlq.is_empty() {
            s.dlq = self.write_dlq(tx).await.context("dq_rejects")?;
        }
        if !self.late.is_empty() {
            s.late = self.write_late(tx).await.context("late_records")?;
        }
        if !self.products.is_empty() {
            s.products = self.write_products(tx).await.context("dim_products")?;
        }
        if !self.rfm.is_empty() {
            // After the order facts: the customers' rows exist by then.
            s.rfm = super::rfm::write(tx, &self.rfm)
                .await
                .context("dim_customers rfm")?;
        }
        if !self.business_alerts.is_empty() {
            s.business_alerts = super::business_alerts::write(tx, &self.business_alerts)
                .await
                .context("business_alerts")?;
        }
        Ok(s)
    }

    async fn write_orders(&self, tx: &Transaction<'_>) -> Result<u64> {
        let mut c = OrderCols::default();
        for o in self.orders.values() {
            c.push(o);
        }
        let sql = "INSERT INTO fact_orders (transaction_id, customer_id, session_id, event_time,
                status, currency, amount, payment_method, item_count, units, country, state, city,
                lat, lon, channel, device_type, ip_address, fraud_score, fraud_reasons,
                source_topic, source_partition, source_offset)
            SELECT t.id, t.customer, t.session, timestamptz 'epoch' + t.ts * interval '1 millisecond',
                t.status, t.currency, t.amount, t.payment, t.item_count, t.units, t.country,
                t.state, t.city, t.lat, t.lon, t.channel, t.device, t.ip, t.score,
                string_to_array(t.reasons, E'\\x1f'), t.stopic, t.spart, t.soff
            FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                $7::numeric[], $8::text[], $9::int[], $10::int[], $11::text[], $12::text[],
                $13::text[], $14::float8[], $15::float8[], $16::text[], $17::text[], $18::text[],
                $19::float8[], $20::text[], $21::text[], $22::int[], $23::bigint[])
              AS t(id, customer, session, ts, status, currency, amount, payment, item_count,
                units, country, state, city, lat, lon, channel, device, ip, score, reasons,
                stopic, spart, soff)
            ON CONFLICT (transaction_id) DO UPDATE SET
                customer_id = EXCLUDED.customer_id, session_id = EXCLUDED.session_id,
                event_time = EXCLUDED.event_time, status = EXCLUDED.status,
                currency = EXCLUDED.currency, amount = EXCLUDED.amount,
                payment_method = EXCLUDED.payment_method, item_count = EXCLUDED.item_count,
                units = EXCLUDED.units, country = EXCLUDED.country, state = EXCLUDED.state,
                city = EXCLUDED.city, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
                channel = EXCLUDED.channel, device_type = EXCLUDED.device_type,
                ip_address = EXCLUDED.ip_address, fraud_score = EXCLUDED.fraud_score,
                fraud_reasons = EXCLUDED.fraud_reasons, source_topic = EXCLUDED.source_topic,
                source_partition = EXCLUDED.source_partition, source_offset = EXCLUDED.source_offset";
        Ok(tx
            .execute(
                sql,
                &[
                    &c.id,
                    &c.customer,
                    &c.session,
                    &c.ts,
                    &c.status,
                    &c.currency,
                    &c.amount,
                    &c.payment,
                    &c.item_count,
                    &c.units,
                    &c.country,
                    &c.state,
                    &c.city,
                    &c.lat,
                    &c.lon,
                    &c.channel,
                    &c.device,
                    &c.ip,
                    &c.score,
                    &c.reasons,
                    &c.src.topic,
                    &c.src.partition,
                    &c.src.offset,
                ],
            )
            .await?)
    }

    async fn write_items(&self, tx: &Transaction<'_>) -> Result<u64> {
        let ids: Vec<&str> = self.orders.keys().map(String::as_str).collect();
        tx.execute(
            "DELETE FROM fact_order_items WHERE transaction_id = ANY($1)",
            &[&ids],
        )
        .await?;
        let mut c = ItemCols::default();
        for o in self.orders.values() {
            c.push(o);
        }
        let sql = "INSERT INTO fact_order_items (transaction_id, line_no, product_id, category,
                quantity, unit_price, discount, product_name, brand, unit_cost, known_product)
            SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::text[], $5::int[],
                $6::numeric[], $7::numeric[], $8::text[], $9::text[], $10::numeric[], $11::bool[])";
        Ok(tx
            .execute(
                sql,
                &[
                    &c.id,
                    &c.line,
                    &c.product,
                    &c.category,
                    &c.qty,
                    &c.price,
                    &c.discount,
                    &c.name,
                    &c.brand,
                    &c.cost,
                    &c.known,
                ],
            )
            .await?)
    }

    /// Recomputes the order facts of the customers in this batch from fact_orders, so the
    /// dimension is exact however often a batch is redelivered.
    async fn refresh_customers(&self, tx: &Transaction<'_>) -> Result<u64> {
        let customers: BTreeSet<&str> = self
            .orders
            .values()
            .map(|o| o.order.customer_id.as_str())
            .collect();
        let customers: Vec<&str> = customers.into_iter().collect();
        let sql = "INSERT INTO dim_customers (customer_id, first_order_at, last_order_at,
                order_count, lifetime_value)
            SELECT customer_id, min(event_time), max(event_time), count(*),
                coalesce(sum(amount) FILTER (WHERE status = 'completed'), 0)
            FROM fact_orders WHERE customer_id = ANY($1) GROUP BY customer_id
            ON CONFLICT (customer_id) DO UPDATE SET first_order_at = EXCLUDED.first_order_at,
                last_order_at = EXCLUDED.last_order_at, order_count = EXCLUDED.order_count,
                lifetime_value = EXCLUDED.lifetime_value";
        Ok(tx.execute(sql, &[&customers]).await?)
    }

    async fn write_alerts(&self, tx: &Transaction<'_>) -> Result<u64> {
        let mut id = Vec::new();
        let mut customer = Vec::new();
        let mut ts = Vec::new();
        let mut amount = Vec::new();
        let mut currency = Vec::new();
        let mut score = Vec::new();
        let mut reasons = Vec::new();
        let mut features = Vec::new();
        let mut src = SourceCols::default();
        for a in self.alerts.values() {
            id.push(a.transaction_id.as_str());
            customer.push(a.customer_id.as_str());
            ts.push(a.timestamp);
            amount.push(a.amount);
            currency.push(a.currency.as_str());
            score.push(a.score);
            reasons.push(a.reasons.join(LIST_SEP));
            features.push(serde_json::to_string(&a.features)?);
            src.push(&a.source);
        }
        let sql = "INSERT INTO fraud_alerts (transaction_id, customer_id, event_time, amount,
                currency, score, reasons, features, source_topic, source_partition, source_offset)
            SELECT t.id, t.customer, timestamptz 'epoch' + t.ts * interval '1 millisecond',
                t.amount, t.currency, t.score, string_to_array(t.reasons, E'\\x1f'),
                t.features::jsonb, t.stopic, t.spart, t.soff
            FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::numeric[], $5::text[],
                $6::float8[], $7::text[], $8::text[], $9::text[], $10::int[], $11::bigint[])
              AS t(id, customer, ts, amount, currency, score, reasons, features, stopic, spart, soff)
            ON CONFLICT (transaction_id) DO UPDATE SET score = EXCLUDED.score,
                reasons = EXCLUDED.reasons, features = EXCLUDED.features";
        Ok(tx
            .execute(
                sql,
                &[
                    &id,
                    &customer,
                    &ts,
                    &amount,
                    &currency,
                    &score,
                    &reasons,
                    &features,
                    &src.topic,
                    &src.partition,
                    &src.offset,
                ],
            )
            .await?)
    }

    async fn write_kpis(&self, tx: &Transaction<'_>) -> Result<u64> {
        let mut by_family: BTreeMap<&str, Vec<&KpiRow>> = BTreeMap::new();
        for k in self.kpis.values() {
            by_family.entry(k.kpi.as_str()).or_default().push(k);
        }
        let mut n = 0;
        for (family, rows) in by_family {
            let table = super::migrate::kpi_table(family)
                .ok_or_else(|| anyhow::anyhow!("KPI family {family:?} has no table"))?;
            let start: Vec<i64> = rows.iter().map(|r| r.window_start).collect();
            let end: Vec<i64> = rows.iter().map(|r| r.window_end).collect();
            let dim: Vec<&str> = rows.iter().map(|r| r.dimension.as_str()).collect();
            let status: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
            let revision: Vec<i64> = rows.iter().map(|r| i64::from(r.revision)).collect();
            let metrics: Vec<String> = rows
                .iter()
                .map(|r| serde_json::to_string(&r.values))
                .collect::<Result<_, _>>()?;
            // The table name comes from the fixed family list, never from input.
            let sql = format!(
                "INSERT INTO {table} (window_start, window_end, dimension, status, revision, metrics)
                 SELECT timestamptz 'epoch' + t.s * interval '1 millisecond',
                    timestamptz 'epoch' + t.e * interval '1 millisecond', t.d, t.st, t.r, t.m::jsonb
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[],
                    $6::text[]) AS t(s, e, d, st, r, m)
                 ON CONFLICT (window_start, window_end, dimension) DO UPDATE SET
                    status = EXCLUDED.status, revision = EXCLUDED.revision,
                    metrics = EXCLUDED.metrics
                 WHERE {table}.revision <= EXCLUDED.revision"
            );
            n += tx
                .execute(&sql, &[&start, &end, &dim, &status, &revision, &metrics])
                .await
                .with_context(|| table.clone())?;
        }
        Ok(n)
    }

    async fn write_dlq(&self, tx: &Transaction<'_>) -> Result<u64> {
        let mut src = SourceCols::default();
        let (mut reason, mut rule, mut detail, mut original, mut key) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for d in self.dlq.values() {
            src.push(&d.source);
            reason.push(d.reason.as_str());
            rule.push(d.rule.as_str());
            detail.push(d.detail.as_str());
            original.push(d.original.as_slice());
            key.push(d.original_key.as_deref());
        }
        let sql = "INSERT INTO dq_rejects (source_topic, source_partition, source_offset, reason,
                rule, detail, original, original_key)
            SELECT * FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[],
                $6::text[], $7::bytea[], $8::bytea[])
            ON CONFLICT (source_topic, source_partition, source_offset) DO UPDATE SET
                reason = EXCLUDED.reason, rule = EXCLUDED.rule, detail = EXCLUDED.detail";
        Ok(tx
            .execute(
                sql,
                &[
                    &src.topic,
                    &src.partition,
                    &src.offset,
                    &reason,
                    &rule,
                    &detail,
                    &original,
                    &key,
                ],
            )
            .await?)
    }

    async fn write_late(&self, tx: &Transaction<'_>) -> Result<u64> {
        let mut src = SourceCols::default();
        let (mut id, mut customer, mut ts, mut wm, mut lateness, mut reason, mut original) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for l in self.late.values() {
            src.push(&l.source);
            id.push(l.record_id.as_str());
            customer.push(l.customer_id.as_str());
            ts.push(l.event_time);
            wm.push(l.watermark);
            lateness.push(l.lateness_ms);
            reason.push(l.reason.as_str());
            original.push(l.original.as_slice());
        }
        let sql = "INSERT INTO late_records (source_topic, source_partition, source_offset,
                record_id, customer_id, event_time, watermark, lateness_ms, reason, original)
            SELECT t.stopic, t.spart, t.soff, t.id, t.customer,
                timestamptz 'epoch' + t.ts * interval '1 millisecond',
                timestamptz 'epoch' + t.wm * interval '1 millisecond', t.lateness, t.reason, t.orig
            FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
                $7::bigint[], $8::bigint[], $9::text[], $10::bytea[])
              AS t(stopic, spart, soff, id, customer, ts, wm, lateness, reason, orig)
            ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING";
        Ok(tx
            .execute(
                sql,
                &[
                    &src.topic,
                    &src.partition,
                    &src.offset,
                    &id,
                    &customer,
                    &ts,
                    &wm,
                    &lateness,
                    &reason,
                    &original,
                ],
            )
            .await?)
    }

    async fn write_products(&self, tx: &Transaction<'_>) -> Result<u64> {
        let ps: Vec<&Product> = self.products.values().collect();
        let id: Vec<&str> = ps.iter().map(|p| p.product_id.as_str()).collect();
        let name: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
        let category: Vec<&str> = ps.iter().map(|p| p.category.as_str()).collect();
        let brand: Vec<&str> = ps.iter().map(|p| p.brand.as_str()).collect();
        let price: Vec<Decimal> = ps.iter().map(|p| p.price).collect();
        let cost: Vec<Decimal> = ps.iter().map(|p| p.cost).collect();
        let inventory: Vec<i64> = ps.iter().map(|p| p.inventory_count).collect();
        let reorder: Vec<Option<i64>> = ps.iter().map(|p| p.reorder_point).collect();
        let updated: Vec<i64> = ps.iter().map(|p| p.updated_at).collect();
        let sql = "INSERT INTO dim_products (product_id, name, category, brand, price, cost,
                inventory_count, reorder_point, updated_at)
            SELECT t.id, t.name, t.category, t.brand, t.price, t.cost, t.inventory, t.reorder,
                timestamptz 'epoch' + t.updated * interval '1 millisecond'
            FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[],
                $6::numeric[], $7::bigint[], $8::bigint[], $9::bigint[])
              AS t(id, name, category, brand, price, cost, inventory, reorder, updated)
            ON CONFLICT (product_id) DO UPDATE SET name = EXCLUDED.name,
                category = EXCLUDED.category, brand = EXCLUDED.brand, price = EXCLUDED.price,
                cost = EXCLUDED.cost, inventory_count = EXCLUDED.inventory_count,
                reorder_point = EXCLUDED.reorder_point, updated_at = EXCLUDED.updated_at
            WHERE dim_products.updated_at <= EXCLUDED.updated_at";
        Ok(tx
            .execute(
                sql,
                &[
                    &id, &name, &category, &brand, &price, &cost, &inventory, &reorder, &updated,
                ],
            )
            .await?)
    }
}

#[derive(Default)]
struct SourceCols<'a> {
    topic: Vec<&'a str>,
    partition: Vec<i32>,
    offset: Vec<i64>,
}

impl<'a> SourceCols<'a> {
    fn push(&mut self, s: &'a SourceCoord) {
        self.topic.push(&s.topic);
        self.partition.push(s.partition);
        self.offset.push(s.offset);
    }
}

#[derive(Default)]
struct OrderCols<'a> {
    id: Vec<&'a str>,
    customer: Vec<&'a str>,
    session: Vec<&'a str>,
    ts: Vec<i64>,
    status: Vec<&'a str>,
    currency: Vec<&'a str>,
    amount: Vec<Decimal>,
    payment: Vec<&'a str>,
    item_count: Vec<i32>,
    units: Vec<i32>,
    country: Vec<&'a str>,
    state: Vec<Option<&'a str>>,
    city: Vec<Option<&'a str>>,
    lat: Vec<f64>,
    lon: Vec<f64>,
    channel: Vec<&'a str>,
    device: Vec<&'a str>,
    ip: Vec<&'a str>,
    score: Vec<f64>,
    reasons: Vec<String>,
    src: SourceCols<'a>,
}

impl<'a> OrderCols<'a> {
    fn push(&mut self, o: &'a EnrichedOrder) {
        let t = &o.order;
        self.id.push(&t.transaction_id);
        self.customer.push(&t.customer_id);
        self.session.push(&t.session_id);
        self.ts.push(t.timestamp);
        self.status.push(t.status.as_str());
        self.currency.push(&t.currency);
        self.amount.push(t.amount);
        self.payment.push(&t.payment_method);
        self.item_count
            .push(i32::try_from(t.items.len()).unwrap_or(i32::MAX));
        self.units.push(
            t.items
                .iter()
                .map(|i| i.quantity)
                .fold(0i32, i32::saturating_add),
        );
        self.country.push(&t.location.country);
        self.state.push(t.location.state.as_deref());
        self.city.push(t.location.city.as_deref());
        self.lat.push(t.location.lat);
        self.lon.push(t.location.lon);
        self.channel.push(&t.channel);
        self.device.push(&t.device.device_type);
        self.ip.push(&t.ip_address);
        self.score.push(o.fraud_score);
        self.reasons.push(o.fraud_reasons.join(LIST_SEP));
        self.src.push(&o.source);
    }
}

#[derive(Default)]
struct ItemCols<'a> {
    id: Vec<&'a str>,
    line: Vec<i32>,
    product: Vec<&'a str>,
    category: Vec<&'a str>,
    qty: Vec<i32>,
    price: Vec<Decimal>,
    discount: Vec<Decimal>,
    name: Vec<Option<&'a str>>,
    brand: Vec<Option<&'a str>>,
    cost: Vec<Option<Decimal>>,
    known: Vec<bool>,
}

impl<'a> ItemCols<'a> {
    fn push(&mut self, o: &'a EnrichedOrder) {
        for (n, item) in o.order.items.iter().enumerate() {
            let e = o.items.get(n);
            self.id.push(&o.order.transaction_id);
            self.line.push(i32::try_from(n).unwrap_or(i32::MAX));
            self.product.push(&item.product_id);
            self.category.push(&item.category);
            self.qty.push(item.quantity);
            self.price.push(item.unit_price);
            self.discount.push(item.discount);
            self.name.push(e.and_then(|e| e.product_name.as_deref()));
            self.brand.push(e.and_then(|e| e.brand.as_deref()));
            self.cost.push(e.and_then(|e| e.unit_cost));
            self.known.push(e.is_some_and(|e| e.known));
        }
    }
}
