//! CSV export of the sink's tables (`demo --export DIR` writes DIR/output/<table>.csv):
//! PostgreSQL's own `COPY (SELECT ...) TO STDOUT WITH CSV HEADER`, ordered by primary key
//! so two exports of equal tables are byte-identical.

use std::path::Path;

use anyhow::{Context, Result};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_postgres::Client;

/// The exported tables with their ordering, from the fixed schema (never from input).
pub fn tables() -> Vec<(String, &'static str)> {
    let mut t: Vec<(String, &'static str)> = [
        ("fact_orders", "transaction_id"),
        ("fact_order_items", "transaction_id, line_no"),
        ("dim_customers", "customer_id"),
        ("dim_products", "product_id"),
        ("fraud_alerts", "transaction_id"),
        ("business_alerts", "alert_id"),
        (
            "dq_rejects",
            "source_topic, source_partition, source_offset",
        ),
        (
            "late_records",
            "source_topic, source_partition, source_offset",
        ),
    ]
    .into_iter()
    .map(|(n, o)| (n.to_string(), o))
    .collect();
    for (family, _) in crate::codec::subjects::KPI_FAMILIES {
        t.push((
            format!("kpi_{family}"),
            "window_start, window_end, dimension",
        ));
    }
    t
}

/// Writes every table to `dir/<table>.csv`; returns (table, rows) pairs.
pub async fn export_all(client: &Client, dir: &Path) -> Result<Vec<(String, u64)>> {
    tokio::fs::create_dir_all(dir).await?;
    let mut out = Vec::new();
    for (table, order) in tables() {
        let path = dir.join(format!("{table}.csv"));
        let sql =
            format!("COPY (SELECT * FROM {table} ORDER BY {order}) TO STDOUT WITH CSV HEADER");
        let stream = client
            .copy_out(sql.as_str())
            .await
            .with_context(|| table.clone())?;
        let mut file = tokio::fs::File::create(&path)
            .await
            .with_context(|| path.display().to_string())?;
        futures::pin_mut!(stream);
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?).await?;
        }
        file.flush().await?;
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .get(0);
        out.push((table, rows as u64));
    }
    Ok(out)
}
