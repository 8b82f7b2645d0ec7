//! Schema migrations for the sink's PostgreSQL database: the numbered SQL files of
//! schemas/postgres/ compiled into the binary and applied in order, each once, under an
//! advisory lock so several sink instances starting together do not race.

use anyhow::{Context, Result};
use tokio_postgres::Client;

/// (version, SQL) in order; append new files here, never edit an applied one.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../schemas/postgres/001_init.sql")),
    (2, include_str!("../../schemas/postgres/002_rfm.sql")),
    (
        3,
        include_str!("../../schemas/postgres/003_business_alerts.sql"),
    ),
];

/// Arbitrary constant identifying shopstream's migration lock.
const LOCK_KEY: i64 = 0x5350_5354_524d; // "SPSTRM"

/// Applies every migration not yet recorded in `schema_migrations`; returns how many ran.
/// When every migration is recorded it runs no DDL at all, so a role with only the sink's
/// table privileges (schemas/postgres/roles.sql) can start once the owner has migrated.
pub async fn migrate(client: &mut Client) -> Result<usize> {
    if all_applied(client).await? {
        return Ok(0);
    }
    migrate_locked(client).await.context(
        "migrating the sink's tables (a least-privilege role cannot: run `shopstream migrate` \
         as the owner role first, see README \"Security\")",
    )
}

/// Whether `schema_migrations` exists and records every migration.
async fn all_applied(client: &Client) -> Result<bool> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(false);
    }
    let versions: Vec<i32> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
    let recorded: i64 = client
        .query_one(
            "SELECT count(*) FROM schema_migrations WHERE version = ANY($1)",
            &[&versions],
        )
        .await?
        .get(0);
    Ok(recorded == versions.len() as i64)
}

async fn migrate_locked(client: &mut Client) -> Result<usize> {
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
