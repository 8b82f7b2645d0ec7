//! `shopstream replay diff`: compares every result table of the live schema with the same
//! table of a shadow schema, row by row on the table's primary key: rows only in live,
//! only in shadow, and rows present in both whose columns differ. Bookkeeping tables
//! (`sink_offsets`, `schema_migrations`) are not results and are left out. Table and
//! column names come from the catalog (bound queries) and are checked and quoted.

use std::fmt;

use anyhow::{ensure, Result};
use tokio_postgres::Client;

use crate::sink::schema::quote;

/// Tables that hold bookkeeping, not results.
pub const BOOKKEEPING: &[&str] = &["sink_offsets", "schema_migrations"];

/// The comparison of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDiff {
    pub table: String,
    pub live_rows: i64,
    pub shadow_rows: i64,
    pub only_live: i64,
    pub only_shadow: i64,
    pub differing: i64,
    /// A few primary keys of rows that differ or are missing on one side.
    pub examples: Vec<String>,
}

impl TableDiff {
    pub fn differences(&self) -> i64 {
        self.only_live + self.only_shadow + self.differing
    }
}

impl fmt::Display for TableDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<22} live={:<7} shadow={:<7} only_live={:<5} only_shadow={:<5} differing={}",
            self.table,
            self.live_rows,
            self.shadow_rows,
            self.only_live,
            self.only_shadow,
            self.differing
        )?;
        for e in &self.examples {
            write!(f, "\n    e.g. {e}")?;
        }
        Ok(())
    }
}

/// The result tables of `schema`, by name.
async fn tables(client: &Client, schema: &str) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1",
            &[&schema],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|t| !BOOKKEEPING.contains(&t.as_str()))
        .collect())
}

/// The primary-key columns of `schema.table`, in key order.
async fn primary_key(client: &Client, schema: &str, table: &str) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT k.column_name::text FROM information_schema.table_constraints c
             JOIN information_schema.key_column_usage k
               ON k.constraint_schema = c.constraint_schema
              AND k.constraint_name = c.constraint_name
             WHERE c.table_schema = $1 AND c.table_name = $2
               AND c.constraint_type = 'PRIMARY KEY'
             ORDER BY k.ordinal_position",
            &[&schema, &table],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

async fn count(client: &Client, sql: &str) -> Result<i64> {
    Ok(client.query_one(sql, &[]).await?.get::<_, i64>(0))
}

/// Compares every result table of `live` with `shadow` (both schemas of one database).
pub async fn diff(client: &Client, live: &str, shadow: &str) -> Result<Vec<TableDiff>> {
    let (ql, qs) = (quote(live)?, quote(shadow)?);
    let live_tables = tables(client, live).await?;
    let shadow_tables = tables(client, shadow).await?;
    ensure!(
        !shadow_tables.is_empty(),
        "schema {shadow} has no tables (run `shopstream replay --target shadow` first)"
    );
    let mut out = Vec::new();
    for t in live_tables.iter().chain(shadow_tables.iter()) {
        if out.iter().any(|d: &TableDiff| &d.table == t) {
            continue;
        }
        let (in_live, in_shadow) = (live_tables.contains(t), shadow_tables.contains(t));
        let qt = quote(t)?;
        let mut d = TableDiff {
            table: t.clone(),
            ..TableDiff::default()
        };
        if in_live {
            d.live_rows = count(client, &format!("SELECT count(*) FROM {ql}.{qt}")).await?;
        }
        if in_shadow {
            d.shadow_rows = count(client, &format!("SELECT count(*) FROM {qs}.{qt}")).await?;
        }
        if !(in_live && in_shadow) {
            d.only_live = d.live_rows;
            d.only_shadow = d.shadow_rows;
            d.examples.push(format!(
                "table missing in {}",
                if in_live { shadow } else { live }
            ));
            out.push(d);
            continue;
        }
        let key = primary_key(client, live, t).await?;
        ensure!(
            !key.is_empty(),
            "table {t} has no primary key to compare on"
        );
        let on = key
            .iter()
            .map(|c| Ok(format!("l.{0} = s.{0}", quote(c)?)))
            .collect::<Result<Vec<_>>>()?
            .join(" AND ");
        let key_json = key
            .iter()
            .map(|c| Ok(format!("'{c}', x.{}", quote(c)?)))
            .collect::<Result<Vec<_>>>()?
            .join(", ");
        let missing = |a: &str, b: &str| {
            format!("FROM {a}.{qt} l WHERE NOT EXISTS (SELECT 1 FROM {b}.{qt} s WHERE {on})")
        };
        let only_live = missing(&ql, &qs);
        // `missing` names the outer table l: swap the roles for rows only in shadow.
        let only_shadow = missing(&qs, &ql);
        let differing = format!(
            "FROM {ql}.{qt} l JOIN {qs}.{qt} s ON {on} WHERE ROW(l.*) IS DISTINCT FROM ROW(s.*)"
        );
        d.only_live = count(client, &format!("SELECT count(*) {only_live}")).await?;
        d.only_shadow = count(client, &format!("SELECT count(*) {only_shadow}")).await?;
        d.differing = count(client, &format!("SELECT count(*) {differing}")).await?;
        for (label, from, n) in [
            ("only in live", &only_live, d.only_live),
            ("only in shadow", &only_shadow, d.only_shadow),
            ("differs", &differing, d.differing),
        ] {
            if n == 0 {
                continue;
            }
            let sql = format!(
                "SELECT json_build_object({key_json})::text FROM (SELECT l.* {from} LIMIT 3) x"
            );
            for r in client.query(&sql, &[]).await? {
                d.examples
                    .push(format!("{label}: {}", r.get::<_, String>(0)));
            }
        }
        out.push(d);
    }
    Ok(out)
}
