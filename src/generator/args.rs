//! The `generate` command line: a clap argument struct the CLI mounts as a subcommand (it
//! also parses on its own, and `Default` gives the documented defaults), its validation
//! into a `GeneratorConfig`, and small value parsers for durations ("500ms", "5s", "10m",
//! "2h", "1d") and start times (RFC 3339 or epoch milliseconds).
//!
//! How event time relates to `--rate`: the stream is a function of the seed, `--start`,
//! `--event-rate` and the shop and fault settings only. Event time advances on a simulated
//! clock at `--event-rate` input records per simulated second, times the seasonal
//! intensity (diurnal, weekly, holidays; about 1 on average). `--rate` only paces the
//! sending in wall-clock time. With the defaults (`--rate 1000 --event-rate 1000`) event
//! time keeps up with the wall clock on average, so a live demo sees timestamps near now;
//! `--rate 0` sends the same records as fast as possible.

use std::path::PathBuf;

use clap::Parser;

use super::encode::Format;
use super::faults::FaultConfig;
use super::kafka::{Compression, KafkaOptions, MessageTimestamp};
use super::record::TopicNames;
use super::sim::ShopConfig;
use super::stream::GeneratorConfig;
use crate::model::time::{parse_rfc3339, Millis};

/// Where Kafka is when neither `--bootstrap-servers` nor `--out` is given.
pub const DEFAULT_BOOTSTRAP: &str = "localhost:9092";

/// Generate a synthetic shop's transactions, user events and catalog, with injected faults
/// and fraud, to Kafka and/or JSONL files, and its ground truth to a side file.
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(name = "generate")]
pub struct GenerateArgs {
    /// Kafka bootstrap servers [default: localhost:9092 unless --out is given]
    #[arg(long, value_name = "HOST:PORT,...")]
    pub bootstrap_servers: Option<String>,
    /// Input records per wall-clock second to send (0 = as fast as possible)
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Input records per simulated second of event time at average traffic
    #[arg(long, default_value_t = 1000.0)]
    pub event_rate: f64,
    /// Number of input records (transactions + events) to send [default: until interrupted]
    #[arg(long)]
    pub count: Option<u64>,
    /// Seed of the random streams; the same seed and --start give the same records
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Event time of the first record, RFC 3339 or epoch ms [default: now, to the second]
    #[arg(long, value_parser = parse_start)]
    pub start: Option<Millis>,
    /// Value format
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Write the ground truth (one JSON line per labelled record) to this file
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Also write the stream as DIR/<topic>.jsonl (only files unless --bootstrap-servers)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Number of customers
    #[arg(long, default_value_t = 10_000)]
    pub customers: usize,
    /// Number of products in the catalog (plus a few gift cards)
    #[arg(long, default_value_t = 1_000)]
    pub products: usize,
    /// Share of clean transactions re-sent later with the same transaction_id
    #[arg(long, default_value_t = 0.02)]
    pub duplicate_rate: f64,
    /// Share of input records moved back in event time within --max-out-of-order
    #[arg(long, default_value_t = 0.02)]
    pub out_of_order_rate: f64,
    /// Share of input records moved back 2-4 x --lateness behind the stream
    #[arg(long, default_value_t = 0.01)]
    pub late_rate: f64,
    /// Share of input records made invalid
    #[arg(long, default_value_t = 0.01)]
    pub invalid_rate: f64,
    /// Share of clean transactions with one line of a product missing from the catalog
    /// (labelled `unknown_product` in the truth file)
    #[arg(long, default_value_t = 0.0)]
    pub unknown_product_rate: f64,
    /// Share of transactions that belong to fraud patterns
    #[arg(long, default_value_t = 0.02)]
    pub fraud_rate: f64,
    /// A payment outage FROM..TO after the start (event time, e.g. 2m..3m): 80 % of
    /// payments fail, so revenue drops and failed payments spike
    #[arg(long, value_name = "FROM..TO", value_parser = parse_span)]
    pub payment_outage: Option<(i64, i64)>,
    /// Bound of the out-of-order shift
    #[arg(long, value_parser = parse_duration_ms, default_value = "5s")]
    pub max_out_of_order: i64,
    /// Allowed lateness that late records exceed (by 2-4 x)
    #[arg(long, value_parser = parse_duration_ms, default_value = "10m")]
    pub lateness: i64,
    /// Longest event-time delay before a duplicate is re-sent
    #[arg(long, value_parser = parse_duration_ms, default_value = "30s")]
    pub duplicate_max_delay: i64,
    #[arg(long, default_value = "shop.transactions")]
    pub topic_transactions: String,
    #[arg(long, default_value = "shop.events")]
    pub topic_events: String,
    #[arg(long, default_value = "shop.products")]
    pub topic_products: String,
    /// Producer compression
    #[arg(long, value_enum, default_value_t = Compression::Lz4)]
    pub compression: Compression,
    /// Kafka message timestamp: the record's event time, or the wall clock at sending
    #[arg(long, value_enum, default_value_t = MessageTimestamp::EventTime)]
    pub message_timestamp: MessageTimestamp,
    /// Extra librdkafka producer property (repeatable), e.g. linger.ms=20; security
    /// settings come from the [kafka] config section and the environment
    #[arg(long = "producer-property", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub producer_properties: Vec<(String, String)>,
    /// Kafka security settings and secrets (from the config, not from flags)
    #[arg(skip)]
    pub security: crate::runtime::client::KafkaSecurity,
}

impl Default for GenerateArgs {
    fn default() -> Self {
        GenerateArgs::parse_from(["generate"])
    }
}

/// A flag with a value it cannot take.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("--{flag}: {reason}")]
pub struct ArgError {
    pub flag: &'static str,
    pub reason: String,
}

fn check(ok: bool, flag: &'static str, reason: &str) -> Result<(), ArgError> {
    if ok {
        Ok(())
    } else {
        Err(ArgError {
            flag,
            reason: reason.to_string(),
        })
    }
}

impl GenerateArgs {
    /// The stream configuration these flags describe (`--start` absent = now, to the second).
    pub fn generator_config(&self) -> Result<GeneratorConfig, ArgError> {
        let rates = [
            ("duplicate-rate", self.duplicate_rate),
            ("out-of-order-rate", self.out_of_order_rate),
            ("late-rate", self.late_rate),
            ("invalid-rate", self.invalid_rate),
            ("unknown-product-rate", self.unknown_product_rate),
        ];
        for (flag, r) in rates {
            check((0.0..=1.0).contains(&r), flag, "must be between 0 and 1")?;
        }
        check(
            (0.0..=0.5).contains(&self.fraud_rate),
            "fraud-rate",
            "must be between 0 and 0.5",
        )?;
        let sum = self.out_of_order_rate + self.late_rate + self.invalid_rate;
        check(
            sum <= 1.0,
            "invalid-rate",
            "invalid + late + out-of-order rates exceed 1",
        )?;
        check(
            self.event_rate > 0.0 && self.event_rate.is_finite(),
            "event-rate",
            "must be positive",
        )?;
        check(
            self.rate >= 0.0 && self.rate.is_finite(),
            "rate",
            "must be 0 or positive",
        )?;
        check(self.customers > 0, "customers", "must be positive")?;
        check(self.products > 0, "products", "must be positive")?;
        check(
            self.max_out_of_order > 0,
            "max-out-of-order",
            "must be positive",
        )?;
        check(self.lateness > 0, "lateness", "must be positive")?;
        let start = self
            .start
            .unwrap_or_else(|| chrono::Utc::now().timestamp() * 1000);
        Ok(GeneratorConfig {
            shop: ShopConfig {
                seed: self.seed,
                start,
                event_rate: self.event_rate,
                customers: self.customers,
                products: self.products,
                fraud_rate: self.fraud_rate,
                payment_outage: self
                    .payment_outage
                    .map(|(from, to)| (start + from, start + to)),
            },
            faults: FaultConfig {
                duplicate_rate: self.duplicate_rate,
                out_of_order_rate: self.out_of_order_rate,
                late_rate: self.late_rate,
                invalid_rate: self.invalid_rate,
                unknown_product_rate: self.unknown_product_rate,
                max_out_of_order_ms: self.max_out_of_order,
                lateness_ms: self.lateness,
                duplicate_max_delay_ms: self.duplicate_max_delay,
            },
            topics: TopicNames {
                transactions: self.topic_transactions.clone(),
                events: self.topic_events.clone(),
                products: self.topic_products.clone(),
            },
            limit: self.count,
        })
    }

    /// Kafka settings, or None when only files are written.
    pub fn kafka_options(&self) -> Option<KafkaOptions> {
        let servers = match (&self.bootstrap_servers, &self.out) {
            (Some(s), _) => s.clone(),
            (None, None) => DEFAULT_BOOTSTRAP.to_string(),
            (None, Some(_)) => return None,
        };
        Some(KafkaOptions {
            bootstrap_servers: servers,
            compression: self.compression,
            message_timestamp: self.message_timestamp,
            properties: self.producer_properties.clone(),
            security: self.security.clone(),
        })
    }
}

/// Parses "250ms", "5s", "10m", "2h", "1d" (or bare milliseconds) into milliseconds.
/// Parses `FROM..TO` (two durations, FROM before TO).
fn parse_span(s: &str) -> Result<(i64, i64), String> {
    let (from, to) = s
        .split_once("..")
        .ok_or_else(|| format!("expected FROM..TO, e.g. 2m..3m, got {s:?}"))?;
    let (from, to) = (parse_duration_ms(from)?, parse_duration_ms(to)?);
    if from >= to {
        return Err(format!("{s:?}: FROM must come before TO"));
    }
    Ok((from, to))
}

pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let scale = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m, h or d)"
            ))
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

/// Parses an RFC 3339 time or epoch milliseconds.
pub fn parse_start(s: &str) -> Result<Millis, String> {
    s.parse::<i64>()
        .ok()
        .or_else(|| parse_rfc3339(s))
        .ok_or_else(|| format!("invalid start time {s:?} (use RFC 3339 or epoch milliseconds)"))
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("1d"), Ok(86_400_000));
        assert!(parse_duration_ms("5 parsecs").is_err());
        assert!(parse_duration_ms("s").is_err());
    }

    #[test]
    fn defaults_and_validation() {
        let a = GenerateArgs::default();
        assert_eq!(a.rate, 1000.0);
        assert_eq!(a.lateness, 600_000);
        assert_eq!(
            a.kafka_options().unwrap().bootstrap_servers,
            DEFAULT_BOOTSTRAP
        );
        let cfg = a.generator_config().unwrap();
        assert_eq!(cfg.shop.start % 1000, 0);
        let files_only = GenerateArgs::parse_from([
            "generate",
            "--out",
            "/tmp/x",
            "--start",
            "2024-11-29T12:00:00Z",
        ]);
        assert!(files_only.kafka_options().is_none());
        assert_eq!(files_only.start, Some(1_732_881_600_000));
        let bad = GenerateArgs::parse_from(["generate", "--late-rate", "1.5"]);
        assert_eq!(bad.generator_config().unwrap_err().flag, "late-rate");
    }
}
