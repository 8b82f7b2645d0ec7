//! Topic definitions (topics/topics.toml) and their idempotent application through the
//! Kafka admin API: missing topics are created with their partitions, cleanup policy and
//! retention; existing ones are checked and reported, never recreated.

use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use serde::Deserialize;

/// The definitions shipped with the binary (the file in topics/ is the source).
pub const BUILTIN: &str = include_str!("../../topics/topics.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    defaults: Defaults,
    topic: Vec<RawTopic>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    partitions: i32,
    replication_factor: i32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    name: String,
    partitions: Option<i32>,
    replication_factor: Option<i32>,
    cleanup_policy: String,
    retention_ms: Option<i64>,
}

/// One topic as it should exist on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDef {
    pub name: String,
    pub partitions: i32,
    /// -1 = the broker's default.
    pub replication_factor: i32,
    pub cleanup_policy: String,
    pub retention_ms: Option<i64>,
}

/// Parses a topics file; `default_partitions` overrides the file's default (e.g. for tests).
pub fn parse(text: &str, default_partitions: Option<i32>) -> Result<Vec<TopicDef>> {
    let f: File = toml::from_str(text).context("topics file")?;
    let parts = default_partitions.unwrap_or(f.defaults.partitions);
    let defs: Vec<TopicDef> = f
        .topic
        .into_iter()
        .map(|t| TopicDef {
            name: t.name,
            partitions: t.partitions.unwrap_or(parts),
            replication_factor: t
                .replication_factor
                .unwrap_or(f.defaults.replication_factor),
            cleanup_policy: t.cleanup_policy,
            retention_ms: t.retention_ms,
        })
        .collect();
    for d in &defs {
        anyhow::ensure!(d.partitions > 0, "topic {}: partitions must be > 0", d.name);
        for p in d.cleanup_policy.split(',') {
            anyhow::ensure!(
                p == "delete" || p == "compact",
                "topic {}: cleanup_policy {p:?} is not delete or compact",
                d.name
            );
        }
    }
    Ok(defs)
}

/// What `apply` did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Exists,
    /// Exists with a different partition count (co-partitioning would break).
    PartitionMismatch {
        actual: i32,
        defined: i32,
    },
    Failed(String),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Created | Outcome::Exists)
    }
}

/// Creates the missing topics and checks the existing ones.
pub async fn apply(
    admin: &AdminClient<DefaultClientContext>,
    defs: &[TopicDef],
    timeout: Duration,
) -> Result<Vec<(String, Outcome)>> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, timeout)
        .context("fetching cluster metadata (is the broker reachable?)")?;
    let mut outcomes = Vec::new();
    let mut missing = Vec::new();
    for d in defs {
        match metadata.topics().iter().find(|t| t.name() == d.name) {
            Some(t) if t.error().is_none() => {
                let actual = t.partitions().len() as i32;
                let o = if actual == d.partitions {
                    Outcome::Exists
                } else {
                    Outcome::PartitionMismatch {
                        actual,
                        defined: d.partitions,
                    }
                };
                outcomes.push((d.name.clone(), o));
            }
            _ => missing.push(d),
        }
    }
    if missing.is_empty() {
        return Ok(outcomes);
    }
    let retention: Vec<Option<String>> = missing
        .iter()
        .map(|d| d.retention_ms.map(|r| r.to_string()))
        .collect();
    let new_topics: Vec<NewTopic> = missing
        .iter()
        .zip(&retention)
        .map(|(d, r)| {
            let mut t = NewTopic::new(
                &d.name,
                d.partitions,
                TopicReplication::Fixed(d.replication_factor),
            )
            .set("cleanup.policy", &d.cleanup_policy);
            if let Some(r) = r {
                t = t.set("retention.ms", r);
            }
            t
        })
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let results = match admin.create_topics(&new_topics, &opts).await {
        Ok(r) => r,
        Err(e) => {
            let why = format!("CreateTopics failed: {e}");
            outcomes.extend(
                missing
                    .iter()
                    .map(|d| (d.name.clone(), Outcome::Failed(why.clone()))),
            );
            return Ok(outcomes);
        }
    };
    for r in results {
        outcomes.push(match r {
            Ok(name) => (name, Outcome::Created),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => (name, Outcome::Exists),
            Err((name, code)) => (name, Outcome::Failed(format!("{code:?}: {code}"))),
        });
    }
    Ok(outcomes)
}

/// The partition count of `topic` as the broker reports it; an error if the topic does
/// not exist.
pub fn partition_count<C: rdkafka::consumer::ConsumerContext>(
    consumer: &rdkafka::consumer::BaseConsumer<C>,
    topic: &str,
) -> Result<i32> {
    use rdkafka::consumer::Consumer;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(15))
        .with_context(|| format!("metadata of {topic} (is the broker reachable?)"))?;
    let n = md
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32);
    anyhow::ensure!(
        n > 0,
        "topic {topic} does not exist (run `shopstream topics create`)"
    );
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_definitions_parse() {
        let defs = parse(BUILTIN, None).unwrap();
        let t = defs.iter().find(|d| d.name == "shop.transactions").unwrap();
        let e = defs.iter().find(|d| d.name == "shop.events").unwrap();
        assert_eq!(t.partitions, e.partitions, "inputs must be co-partitioned");
        let p = defs.iter().find(|d| d.name == "shop.products").unwrap();
        assert_eq!(p.cleanup_policy, "compact");
        assert!(defs.iter().any(|d| d.name == "shop.dlq"));
    }

    #[test]
    fn every_topic_with_a_schema_is_defined() {
        let defs = parse(BUILTIN, None).unwrap();
        for (topic, _) in crate::codec::subjects::topic_schemas() {
            assert!(
                defs.iter().any(|d| d.name == topic),
                "{topic} missing from topics.toml"
            );
        }
    }

    #[test]
    fn bad_cleanup_policy_is_rejected() {
        let bad = "[defaults]\npartitions=1\nreplication_factor=1\n[[topic]]\nname=\"x\"\ncleanup_policy=\"forever\"\n";
        assert!(parse(bad, None)
            .unwrap_err()
            .to_string()
            .contains("forever"));
    }
}
