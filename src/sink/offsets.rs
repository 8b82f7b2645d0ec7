//! The sink's consumed offsets, kept in PostgreSQL beside the rows ("storing offsets
//! outside Kafka"): loaded on partition assignment to seek and to skip redelivered records,
//! and written in the same transaction as the rows they cover.

use std::collections::BTreeMap;

use anyhow::Result;
use tokio_postgres::{GenericClient, Transaction};

/// Next offset to consume per (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

/// Loads the stored offsets of `group`.
pub async fn load(client: &impl GenericClient, group: &str) -> Result<Offsets> {
    let rows = client
        .query(
            "SELECT topic, partition, next_offset FROM sink_offsets WHERE consumer_group = $1",
            &[&group],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                (r.get::<_, String>(0), r.get::<_, i32>(1)),
                r.get::<_, i64>(2),
            )
        })
        .collect())
}

/// Stores `next` inside the batch's transaction; an offset never moves backwards.
pub async fn store(tx: &Transaction<'_>, group: &str, next: &Offsets) -> Result<()> {
    if next.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = next.keys().map(|(t, _)| t.as_str()).collect();
    let partitions: Vec<i32> = next.keys().map(|(_, p)| *p).collect();
    let offsets: Vec<i64> = next.values().copied().collect();
    tx.execute(
        "INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset)
         SELECT $1, t.topic, t.partition, t.next_offset
         FROM UNNEST($2::text[], $3::int[], $4::bigint[]) AS t(topic, partition, next_offset)
         ON CONFLICT (consumer_group, topic, partition) DO UPDATE
           SET next_offset = EXCLUDED.next_offset, updated_at = now()
           WHERE sink_offsets.next_offset < EXCLUDED.next_offset",
        &[&group, &topics, &partitions, &offsets],
    )
    .await?;
    Ok(())
}
