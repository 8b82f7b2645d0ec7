//! The integration tests' view of PostgreSQL and of their generated input: a throw-away
//! database, a client with the few queries the tests ask (counts, id sets, waiting for
//! the sink to catch up), and the generator's arguments with the output files the oracle
//! reads.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use shopstream::generator::GenerateArgs;
use shopstream::sink::embedded_pg::EmbeddedPostgres;
use tokio_postgres::{Client, NoTls};

/// A throw-away PostgreSQL with an empty database `shop`.
pub fn start_pg() -> EmbeddedPostgres {
    let pg = EmbeddedPostgres::start().unwrap();
    pg.create_database("shop").unwrap();
    pg
}

/// A connection to database `shop`.
pub struct Db {
    pub client: Client,
}

impl Db {
    pub async fn connect(pg: &EmbeddedPostgres) -> Db {
        let (client, conn) = tokio_postgres::connect(&pg.connection_string("shop"), NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        Db { client }
    }

    /// The single count `sql` returns (0 while the sink has not created the table yet).
    pub async fn count(&self, sql: &str) -> usize {
        self.client
            .query_one(sql, &[])
            .await
            .map(|r| r.get::<_, i64>(0) as usize)
            .unwrap_or(0)
    }

    /// The text values of the first column of `sql`.
    pub async fn ids(&self, sql: &str) -> Vec<String> {
        self.texts(sql, &[]).await
    }

    /// The text values of the first column of `sql` with bound `params`.
    pub async fn texts(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<String> {
        self.client
            .query(sql, params)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The transaction ids in fact_orders.
    pub async fn order_ids(&self) -> BTreeSet<String> {
        self.ids("SELECT transaction_id FROM fact_orders")
            .await
            .into_iter()
            .collect()
    }

    /// Polls every 500 ms until fact_orders has `orders` rows and dq_rejects `invalid`,
    /// and `extra` (a count query) is above 0 when given; gives up after `limit`.
    pub async fn wait_for(
        &self,
        orders: usize,
        invalid: usize,
        extra: Option<&str>,
        limit: Duration,
    ) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.count("SELECT count(*) FROM fact_orders").await >= orders
                && self.count("SELECT count(*) FROM dq_rejects").await >= invalid
                && match extra {
                    Some(sql) => self.count(sql).await > 0,
                    None => true,
                }
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Polls every 500 ms until the single count `sql` returns reaches `want`; gives up
    /// after `limit`.
    pub async fn wait_count(&self, sql: &str, want: usize, limit: Duration) {
        let started = Instant::now();
        while self.count(sql).await < want && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Generator arguments: `flags` (pairs of flag and value) plus the bootstrap servers and
/// the JSONL and truth files in `dir` that the oracle reads.
pub fn generate_args(bootstrap: &str, dir: &Path, flags: &[(&str, &str)]) -> GenerateArgs {
    let mut argv = vec![
        "generate".to_string(),
        "--bootstrap-servers".into(),
        bootstrap.into(),
        "--out".into(),
        dir.to_str().unwrap().into(),
        "--truth".into(),
        dir.join("truth.jsonl").to_str().unwrap().into(),
    ];
    for (flag, value) in flags {
        argv.push(format!("--{flag}"));
        argv.push(value.to_string());
    }
    GenerateArgs::parse_from(argv)
}

/// Every result table of `schema` (bookkeeping left out) as its rows rendered to text,
/// sorted: a full dump to compare before and after.
pub async fn dump(
    client: &Client,
    schema: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .filter(|t: &String| !shopstream::replay::diff::BOOKKEEPING.contains(&t.as_str()))
        .collect();
    let mut out = std::collections::BTreeMap::new();
    for t in tables {
        // Identifiers from the catalog of our own migrations: plain lower-case names.
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()));
        let rows = client
            .query(
                &format!("SELECT x::text FROM \"{schema}\".\"{t}\" x ORDER BY 1"),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        out.insert(t, rows);
    }
    out
}
