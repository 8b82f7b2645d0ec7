//! The demo's live view: every refresh reads the sink's tables and prints the latest
//! closed windows and the running counters; on a terminal it redraws in place.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio_postgres::Client;

pub struct LiveView {
    client: Client,
    quiet: bool,
    tty: bool,
}

const COUNTERS: &str = "SELECT
    (SELECT count(*) FROM fact_orders),
    (SELECT coalesce(sum(amount) FILTER (WHERE status = 'completed'), 0)::text FROM fact_orders),
    (SELECT count(*) FROM dq_rejects),
    (SELECT count(*) FROM late_records),
    (SELECT count(*) FROM fraud_alerts),
    (SELECT count(*) FROM dim_products)";

const WINDOWS: &str =
    "SELECT to_char(window_start, 'HH24:MI'), to_char(window_end, 'HH24:MI'), dimension,
    status, revision, coalesce(metrics->>'revenue', ''), coalesce(metrics->>'orders', '')
    FROM kpi_revenue WHERE dimension = 'all' OR dimension LIKE 'category=%'
    ORDER BY window_end DESC, dimension LIMIT 8";

impl LiveView {
    pub async fn connect(conn: &str, quiet: bool) -> Result<LiveView> {
        let client = crate::sink::consumer::connect(conn)
            .await
            .context("live view")?;
        Ok(LiveView {
            client,
            quiet,
            tty: std::io::stdout().is_terminal(),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn render(&self, elapsed: Option<Duration>) -> Result<String> {
        let c = self.client.query_one(COUNTERS, &[]).await?;
        let mut s = String::new();
        if let Some(e) = elapsed {
            s.push_str(&format!("shopstream demo — {:>4}s\n", e.as_secs()));
        }
        s.push_str(&format!(
            "orders {:>8}  revenue {:>14}  dlq {:>6}  late {:>6}  fraud alerts {:>6}  products {:>5}\n\n",
            c.get::<_, i64>(0),
            c.get::<_, String>(1),
            c.get::<_, i64>(2),
            c.get::<_, i64>(3),
            c.get::<_, i64>(4),
            c.get::<_, i64>(5)
        ));
        s.push_str(&format!(
            "{:<6} {:<6} {:<28} {:<12} {:>4} {:>14} {:>8}\n",
            "start", "end", "dimension", "status", "rev", "revenue", "orders"
        ));
        for r in self.client.query(WINDOWS, &[]).await? {
            s.push_str(&format!(
                "{:<6} {:<6} {:<28} {:<12} {:>4} {:>14} {:>8}\n",
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, i64>(4),
                r.get::<_, String>(5),
                r.get::<_, String>(6)
            ));
        }
        Ok(s)
    }

    pub async fn refresh(&mut self, elapsed: Duration) {
        if self.quiet {
            return;
        }
        match self.render(Some(elapsed)).await {
            Ok(s) if self.tty => print!("\x1b[2J\x1b[H{s}"),
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("demo: live view: {e}"),
        }
    }

    pub async fn print_final(&self) {
        match self.render(None).await {
            Ok(s) => println!("\nfinal state\n{s}"),
            Err(e) => eprintln!("demo: live view: {e}"),
        }
    }
}
