//! `shopstream replay`: reprocesses the inputs from a time (offsetsForTimes) up to an
//! optional end time as a lineage of its own — consumer groups `shopstream-replay-<run>*`,
//! transactional ids `<prefix>-replay-<run>*`, outputs and internal topics under
//! `shop.replay.<run>.*` (see `runtime::topology`) — so the live group, its offsets and
//! the live output topics are never touched. Its sink writes either the live tables
//! (idempotent upserts on natural keys, highest revision wins) or the same tables in a
//! shadow schema, which `replay diff` compares with the live ones. The replay runs the
//! same stage 1, stage 2 and sink as `run`, bounded per input partition, and exits when
//! every partition has reached its end and the sink has drained.

pub mod diff;
pub mod time_index;

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::codec::subjects::{EVENTS, TRANSACTIONS};
use crate::config::{Config, Secrets};
use crate::runtime::app::{self, Lineage, PipelineOptions};
use crate::runtime::bounds::Bounds;
use crate::runtime::topology::{Topology, GROUP};
use crate::runtime::{client, topics};
use crate::sink::schema;
use time_index::TimeIndex;

/// Where a replay writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The live tables, idempotently (a replay of already processed input changes nothing).
    Live,
    /// The same tables in a shadow schema, to compare with `replay diff`.
    Shadow,
}

/// How offsets are found for a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeLookup {
    /// The broker's time index (ListOffsets by timestamp).
    Broker,
    /// Read the record timestamps (brokers without a time index; reads the inputs once).
    Scan,
}

/// One replay.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Run id: names the replay's groups, transactional ids and topics.
    pub run: String,
    /// Start time (epoch ms): each input partition starts at its first record at/after it.
    pub from: i64,
    /// End time (epoch ms): each partition stops before its first record at/after it;
    /// None = the end of the partitions when the replay starts.
    pub to: Option<i64>,
    pub target: Target,
    /// Schema of the shadow tables.
    pub schema: String,
    /// libpq connection string of the database (the live tables' schema is its default).
    pub pg_conn: String,
    /// Create the replay's own topics (off where the broker has no CreateTopics).
    pub create_topics: bool,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// (topic, partition, start, end) per input partition.
    pub ranges: Vec<(String, i32, i64, i64)>,
    pub consumed: u64,
    pub sink_rows: u64,
}

/// A run id from the wall clock, for replays started without `--run`.
pub fn default_run_id() -> String {
    format!("r{}", crate::runtime::stage1::now_ms())
}

/// The input ranges of `plan`: per partition of both inputs, offsets for `from` and `to`.
pub fn resolve(
    base: &rdkafka::ClientConfig,
    index: &dyn TimeIndex,
    from: i64,
    to: Option<i64>,
) -> Result<Vec<(String, i32, i64, i64)>> {
    let c: BaseConsumer = base.create()?;
    let mut ranges = Vec::new();
    for topic in [TRANSACTIONS, EVENTS] {
        let n = topics::partition_count(&c, topic)?;
        let starts = index.offsets_for_time(topic, n, from)?;
        let ends = match to {
            Some(to) => index.offsets_for_time(topic, n, to)?,
            None => (0..n)
                .map(|p| Ok(c.fetch_watermarks(topic, p, Duration::from_secs(15))?.1))
                .collect::<Result<Vec<_>>>()?,
        };
        for p in 0..n {
            let (s, e) = (starts[p as usize], ends[p as usize]);
            ranges.push((topic.to_string(), p, s, e.max(s)));
        }
    }
    Ok(ranges)
}

/// Sets the replay group's start offsets, unless it has committed offsets already (a
/// replay resumed under the same run id continues where it committed).
fn set_start_offsets(
    base: &rdkafka::ClientConfig,
    group: &str,
    ranges: &[(String, i32, i64, i64)],
) -> Result<bool> {
    let c: BaseConsumer = base
        .clone()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for (t, p, start, _) in ranges {
        tpl.add_partition_offset(t, *p, Offset::Offset(*start))?;
    }
    let committed = c
        .committed_offsets(tpl.clone(), Duration::from_secs(15))
        .with_context(|| format!("committed offsets of group {group}"))?;
    if committed
        .elements()
        .iter()
        .any(|e| matches!(e.offset(), Offset::Offset(_)))
    {
        return Ok(false);
    }
    c.commit(&tpl, CommitMode::Sync)
        .with_context(|| format!("setting the start offsets of group {group}"))?;
    Ok(true)
}

/// Runs `plan` to its end.
pub async fn run(
    config: &Config,
    secrets: &Secrets,
    plan: &Plan,
    index: Box<dyn TimeIndex>,
) -> Result<Summary> {
    let topology = Topology::replay(&plan.run)?;
    if let Some(to) = plan.to {
        ensure!(to > plan.from, "--to must be after --from");
    }
    let base = client::base_config(&config.kafka, secrets);
    let live_conn = plan.pg_conn.clone();
    let sink_conn = match plan.target {
        Target::Live => live_conn,
        Target::Shadow => {
            schema::validate(&plan.schema)?;
            ensure!(
                plan.schema != schema::LIVE,
                "the shadow schema cannot be the live one"
            );
            let client = crate::sink::consumer::connect_plain(&live_conn).await?;
            schema::ensure(&client, &plan.schema).await?;
            schema::with_search_path(&live_conn, &plan.schema)?
        }
    };
    let (b, from, to) = (base.clone(), plan.from, plan.to);
    let ranges =
        tokio::task::spawn_blocking(move || resolve(&b, index.as_ref(), from, to)).await??;
    let tasks = ranges.iter().filter(|r| r.0 == TRANSACTIONS).count() as i32;
    if plan.create_topics {
        let defs = topology.own_topics(&topics::parse(topics::BUILTIN, Some(tasks))?);
        let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
            base.create().context("admin client")?;
        for (name, o) in topics::apply(&admin, &defs, Duration::from_secs(30)).await? {
            if !o.is_ok() {
                bail!("replay topic {name}: {o:?}");
            }
        }
    }
    let (b, group, r) = (base.clone(), topology.group(GROUP), ranges.clone());
    let fresh = tokio::task::spawn_blocking(move || set_start_offsets(&b, &group, &r)).await??;
    tracing::info!(run = %plan.run, fresh, ranges = ?ranges, "replay starting");
    let pipeline = app::start_lineage(
        config,
        secrets,
        PipelineOptions {
            sink_pg: Some(sink_conn),
            engine: config.engine.clone(),
        },
        Lineage {
            topology,
            bounds: Some(Bounds::new(ranges.clone())),
        },
    )
    .await?;
    let mut interrupted = false;
    while !pipeline.processor_finished() {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { interrupted = true; break; }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    let (stage1, sink) = if interrupted {
        pipeline.stop().await?
    } else {
        pipeline.drain().await?
    };
    if interrupted {
        bail!(
            "replay {} interrupted; run it again with --run {} to resume",
            plan.run,
            plan.run
        );
    }
    Ok(Summary {
        ranges,
        consumed: stage1.consumed,
        sink_rows: sink.map_or(0, |s| s.rows),
    })
}
