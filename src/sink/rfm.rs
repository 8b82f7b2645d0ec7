//! Writes customer RFM profiles (`shop.customers.rfm`) into dim_customers' `rfm_*`
//! columns: one bound-array upsert per batch that keeps the highest revision per customer
//! (ties go to the later write, as for KPI rows), so redelivery and replays change nothing.
//! A customer not yet in dim_customers gets a row whose fact columns the order facts fill.

use std::collections::BTreeMap;

use anyhow::Result;
use tokio_postgres::Transaction;

use crate::model::CustomerRfm;

/// Keeps `r` in `latest` unless a higher revision of its customer is there.
pub fn keep_latest(latest: &mut BTreeMap<String, CustomerRfm>, r: CustomerRfm) {
    match latest.get(&r.customer_id) {
        Some(old) if old.revision > r.revision => {}
        _ => {
            latest.insert(r.customer_id.clone(), r);
        }
    }
}

/// Upserts the profiles; returns the rows changed.
pub async fn write(tx: &Transaction<'_>, rows: &BTreeMap<String, CustomerRfm>) -> Result<u64> {
    let all: Vec<&CustomerRfm> = rows.values().collect();
    let id: Vec<&str> = all.iter().map(|r| r.customer_id.as_str()).collect();
    let rev: Vec<i64> = all.iter().map(|r| r.revision).collect();
    let orders: Vec<i64> = all.iter().map(|r| r.order_count).collect();
    let value: Vec<rust_decimal::Decimal> = all.iter().map(|r| r.lifetime_value).collect();
    let currency: Vec<&str> = all.iter().map(|r| r.currency.as_str()).collect();
    let first: Vec<i64> = all.iter().map(|r| r.first_order_at).collect();
    let last: Vec<i64> = all.iter().map(|r| r.last_order_at).collect();
    let as_of: Vec<i64> = all.iter().map(|r| r.as_of).collect();
    let days: Vec<i64> = all.iter().map(|r| r.recency_days).collect();
    let score = |f: fn(&CustomerRfm) -> i32| -> Vec<i16> {
        all.iter().map(|r| f(r).clamp(0, 5) as i16).collect()
    };
    let (r, f, m) = (
        score(|r| r.recency),
        score(|r| r.frequency),
        score(|r| r.monetary),
    );
    let segment: Vec<&str> = all.iter().map(|r| r.segment.as_str()).collect();
    let sql = "INSERT INTO dim_customers AS d (customer_id, first_order_at, last_order_at,
            rfm_revision, rfm_order_count, rfm_lifetime_value, rfm_currency, rfm_first_order_at,
            rfm_last_order_at, rfm_as_of, rfm_recency_days, rfm_recency, rfm_frequency,
            rfm_monetary, rfm_segment)
        SELECT t.id, timestamptz 'epoch' + t.f * interval '1 millisecond',
            timestamptz 'epoch' + t.l * interval '1 millisecond', t.rev, t.n, t.v, t.c,
            timestamptz 'epoch' + t.f * interval '1 millisecond',
            timestamptz 'epoch' + t.l * interval '1 millisecond',
            timestamptz 'epoch' + t.a * interval '1 millisecond', t.days, t.r, t.fr, t.m, t.seg
        FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::numeric[], $5::text[],
            $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::int2[], $11::int2[],
            $12::int2[], $13::text[])
          AS t(id, rev, n, v, c, f, l, a, days, r, fr, m, seg)
        ON CONFLICT (customer_id) DO UPDATE SET rfm_revision = EXCLUDED.rfm_revision,
            rfm_order_count = EXCLUDED.rfm_order_count,
            rfm_lifetime_value = EXCLUDED.rfm_lifetime_value, rfm_currency = EXCLUDED.rfm_currency,
            rfm_first_order_at = EXCLUDED.rfm_first_order_at,
            rfm_last_order_at = EXCLUDED.rfm_last_order_at, rfm_as_of = EXCLUDED.rfm_as_of,
            rfm_recency_days = EXCLUDED.rfm_recency_days, rfm_recency = EXCLUDED.rfm_recency,
            rfm_frequency = EXCLUDED.rfm_frequency, rfm_monetary = EXCLUDED.rfm_monetary,
            rfm_segment = EXCLUDED.rfm_segment
        WHERE d.rfm_revision IS NULL OR d.rfm_revision <= EXCLUDED.rfm_revision";
    Ok(tx
        .execute(
            sql,
            &[
                &id, &rev, &orders, &value, &currency, &first, &last, &as_of, &days, &r, &f, &m,
                &segment,
            ],
        )
        .await?)
}
