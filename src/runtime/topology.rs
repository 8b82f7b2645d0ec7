//! The names one pipeline lineage uses: its consumer groups, transactional ids and the
//! topics it writes. The live pipeline uses the canonical names (`shopstream`,
//! `shop.orders.enriched`, ...). A replay is a lineage of its own (KIP-447: exactly-once
//! holds within one lineage only), so it gets groups `shopstream-replay-<run>[-merge|-sink]`,
//! transactional ids `<prefix>-replay-<run>[-merge]`, and writes every output and internal
//! topic under `shop.replay.<run>.` (e.g. `shop.replay.<run>.kpi.revenue`): live consumers
//! of `shop.*` never see a replayed record, and the replay's own sink maps the names back
//! to their tables. Inputs (`shop.transactions`, `shop.events`, `shop.products`) are shared.

use anyhow::{ensure, Result};

use crate::codec::subjects::{self, EVENTS, PRODUCTS, TRANSACTIONS};

/// Canonical internal topics of the live pipeline.
pub const PARTIALS: &str = "shop.internal.partials";
pub const CHANGELOG: &str = "shopstream-state-changelog";
pub const MERGE_CHANGELOG: &str = "shopstream-merge-changelog";
/// Canonical consumer groups of the live pipeline.
pub const GROUP: &str = "shopstream";
pub const MERGE_GROUP: &str = "shopstream-merge";
pub const SINK_GROUP: &str = "shopstream-sink";

/// The names of one lineage: live (no run) or a replay run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    run: Option<String>,
}

impl Topology {
    /// The live pipeline.
    pub fn live() -> Topology {
        Topology::default()
    }

    /// Replay run `run`: 1 to 48 characters of `[a-z0-9_-]`, starting with a letter or digit
    /// (it becomes part of topic, group and transactional-id names).
    pub fn replay(run: &str) -> Result<Topology> {
        let ok = !run.is_empty()
            && run.len() <= 48
            && run.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'_' || b == b'-'))
            });
        ensure!(
            ok,
            "replay run id {run:?} must be 1-48 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
        );
        Ok(Topology {
            run: Some(run.to_string()),
        })
    }

    /// The replay run id, if this is a replay.
    pub fn run(&self) -> Option<&str> {
        self.run.as_deref()
    }

    fn prefix(run: &str) -> String {
        format!("shop.replay.{run}.")
    }

    /// The name this lineage uses for the canonical output or internal topic `canonical`.
    pub fn topic(&self, canonical: &str) -> String {
        match &self.run {
            None => canonical.to_string(),
            Some(run) => {
                let rest = canonical
                    .strip_prefix("shop.")
                    .or_else(|| canonical.strip_prefix("shopstream-"))
                    .unwrap_or(canonical);
                format!("{}{rest}", Self::prefix(run))
            }
        }
    }

    /// The canonical name of a topic this lineage's sink reads (the inverse of
    /// [`Topology::topic`] for outputs; inputs pass through unchanged).
    pub fn canonical<'a>(&self, actual: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.run {
            Some(run) => match actual.strip_prefix(&Self::prefix(run)) {
                Some(rest) => format!("shop.{rest}").into(),
                None => actual.into(),
            },
            None => actual.into(),
        }
    }

    /// The prefix of this lineage's KPI topics (`shop.kpi.` live).
    pub fn kpi_prefix(&self) -> String {
        self.topic(subjects::KPI_PREFIX)
    }

    /// The name of consumer group `canonical` (one of the `*_GROUP` constants) here.
    pub fn group(&self, canonical: &str) -> String {
        match &self.run {
            None => canonical.to_string(),
            Some(run) => {
                let role = canonical.strip_prefix(GROUP).unwrap_or(canonical);
                format!("{GROUP}-replay-{run}{role}")
            }
        }
    }

    /// The transactional id of a stage (`suffix` is "" for stage 1, "-merge" for stage 2).
    pub fn transactional_id(&self, prefix: &str, instance_id: &str, suffix: &str) -> String {
        match &self.run {
            None => format!("{prefix}-{instance_id}{suffix}"),
            Some(run) => format!("{prefix}-replay-{run}{suffix}"),
        }
    }

    /// True for the topics every lineage shares (the inputs).
    pub fn is_input(topic: &str) -> bool {
        [TRANSACTIONS, EVENTS, PRODUCTS].contains(&topic)
    }

    /// The topic definitions this lineage needs besides the inputs: every non-input topic
    /// of `defs` (topics/topics.toml) renamed into the lineage, partitions kept.
    pub fn own_topics(&self, defs: &[super::topics::TopicDef]) -> Vec<super::topics::TopicDef> {
        defs.iter()
            .filter(|d| !Self::is_input(&d.name))
            .map(|d| super::topics::TopicDef {
                name: self.topic(&d.name),
                ..d.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_names_are_canonical() {
        let t = Topology::live();
        assert_eq!(t.topic(PARTIALS), PARTIALS);
        assert_eq!(t.group(SINK_GROUP), SINK_GROUP);
        assert_eq!(t.kpi_prefix(), "shop.kpi.");
        assert_eq!(t.transactional_id("ss", "0", "-merge"), "ss-0-merge");
    }

    #[test]
    fn replay_names_live_in_their_own_namespace_and_map_back() {
        let t = Topology::replay("r1").unwrap();
        assert_eq!(
            t.topic("shop.orders.enriched"),
            "shop.replay.r1.orders.enriched"
        );
        assert_eq!(t.topic(CHANGELOG), "shop.replay.r1.state-changelog");
        assert_eq!(t.kpi_prefix(), "shop.replay.r1.kpi.");
        assert_eq!(
            t.canonical("shop.replay.r1.kpi.revenue"),
            "shop.kpi.revenue"
        );
        assert_eq!(t.canonical("shop.products"), "shop.products");
        assert_eq!(t.group(GROUP), "shopstream-replay-r1");
        assert_eq!(t.group(SINK_GROUP), "shopstream-replay-r1-sink");
        assert_eq!(t.transactional_id("ss", "0", ""), "ss-replay-r1");
    }

    #[test]
    fn run_ids_are_checked() {
        for bad in ["", "A", "-x", "a.b", "a b", &"x".repeat(49)] {
            assert!(Topology::replay(bad).is_err(), "{bad:?}");
        }
        assert!(Topology::replay("2026-01-01_a").is_ok());
    }
}
