//! Schema migrations for the sink's PostgreSQL database: the numbered SQL files of
//! schemas/postgres/ compiled into the binary and applied in order, each once, under an
//! advisory lock so several sink instances starting together do not race.

use anyhow::{Context, Result};
use tokio_postgres::Client;

/// (version, SQL) in order; append new files here, never edit an applied one.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../schemas/postgres/001_init.sql")),
    (2, include_str!("../../schemas/postgres/002_rfm.sql")),
];

/// Arbitrary constant identifying shopstream's migration lock.
const LOCK_KEY: i64 = 0x5350_5354_524d; // "SPSTRM"

/// Applies every migration not yet recorded in `schema_migrations`; returns how many ran.
pub async fn migrate(client: &mut Client) -> Result<usize> {
    let tx = client.transaction().await?;
    // Everything, the bookkeeping table included, under the lock: concurrent
    // `CREATE TABLE IF NOT EXISTS` can otherwise collide in the catalog.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .context("creating schema_migrations")?;
    let mut applied = 0;
    for (version, sql) in MIGRATIONS {
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await?
            .is_some();
        if done {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("applying migration {version}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        applied += 1;
    }
    tx.commit().await?;
    Ok(applied)
}

/// The KPI families that have a `kpi_<family>` table.
pub fn kpi_table(family: &str) -> Option<String> {
    crate::codec::subjects::KPI_FAMILIES
        .iter()
        .any(|(f, _)| *f == family)
        .then(|| format!("kpi_{family}"))
}
