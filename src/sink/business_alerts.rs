//! Writes business alerts (`shop.alerts.business`) into `business_alerts`: one bound-array
//! upsert per batch keyed by alert_id, the latest record winning as on the topic (the
//! batch keeps the last record per id; one partition keeps them in order). A window alert
//! rests on a final window and comes out the same however often it is redelivered or
//! replayed; a `low_stock` alert of a recomputation can see a later catalog and carry
//! other figures under the same id, and then the newer one stands.

use std::collections::BTreeMap;

use anyhow::Result;
use rust_decimal::Decimal;
use tokio_postgres::Transaction;

use crate::model::BusinessAlert;

/// Upserts the alerts; returns the rows written.
pub async fn write(tx: &Transaction<'_>, rows: &BTreeMap<String, BusinessAlert>) -> Result<u64> {
    let all: Vec<&BusinessAlert> = rows.values().collect();
    let id: Vec<&str> = all.iter().map(|a| a.alert_id.as_str()).collect();
    let kind: Vec<&str> = all.iter().map(|a| a.kind.as_str()).collect();
    let dim: Vec<&str> = all.iter().map(|a| a.dimension.as_str()).collect();
    let start: Vec<i64> = all.iter().map(|a| a.window_start).collect();
    let end: Vec<i64> = all.iter().map(|a| a.window_end).collect();
    let value: Vec<Decimal> = all.iter().map(|a| a.value).collect();
    let threshold: Vec<Decimal> = all.iter().map(|a| a.threshold).collect();
    let baseline: Vec<Option<Decimal>> = all.iter().map(|a| a.baseline).collect();
    let detail: Vec<&str> = all.iter().map(|a| a.detail.as_str()).collect();
    let sql = "INSERT INTO business_alerts (alert_id, kind, dimension, window_start, window_end,
            value, threshold, baseline, detail)
        SELECT t.id, t.kind, t.dim, timestamptz 'epoch' + t.s * interval '1 millisecond',
            timestamptz 'epoch' + t.e * interval '1 millisecond', t.v, t.th, t.b, t.d
        FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
            $6::numeric[], $7::numeric[], $8::numeric[], $9::text[])
          AS t(id, kind, dim, s, e, v, th, b, d)
        ON CONFLICT (alert_id) DO UPDATE SET kind = EXCLUDED.kind,
            dimension = EXCLUDED.dimension, window_start = EXCLUDED.window_start,
            window_end = EXCLUDED.window_end, value = EXCLUDED.value,
            threshold = EXCLUDED.threshold, baseline = EXCLUDED.baseline,
            detail = EXCLUDED.detail";
    Ok(tx
        .execute(
            sql,
            &[
                &id, &kind, &dim, &start, &end, &value, &threshold, &baseline, &detail,
            ],
        )
        .await?)
}
