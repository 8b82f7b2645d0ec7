//! The generated stream: the catalog snapshot first (one record per product on the
//! products topic), then the simulation's records with faults applied, each numbered and
//! paired with its ground truth. `Generator` is an iterator and a pure function of its
//! configuration — no wall clock, no pacing — which is what makes a seed reproducible.
//! With a record limit, duplicates still waiting for their delay are sent before the limit
//! is reached, so every scheduled duplicate appears and the count is exact.

use std::collections::{BTreeMap, VecDeque};

use super::faults::{Fault, FaultConfig, Faults};
use super::record::{GenRecord, Label, Payload, TopicKind, TopicNames, TruthEntry};
use super::sim::{Draft, ShopConfig, Simulator};
use crate::model::time::Millis;
use crate::model::Product;

/// Everything that determines the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    pub shop: ShopConfig,
    pub faults: FaultConfig,
    pub topics: TopicNames,
    /// Number of input records (transactions + events); None = endless.
    pub limit: Option<u64>,
}

/// A record and, if it carries labels, its truth line.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub record: GenRecord,
    pub truth: Option<TruthEntry>,
}

struct PendingDup {
    original_seq: u64,
    key: String,
    event_time: Millis,
    payload: Payload,
}

/// Labels and details of one record, for its truth line.
#[derive(Default)]
struct Meta {
    labels: Vec<Label>,
    original_seq: Option<u64>,
    lag_ms: Option<i64>,
    episode: Option<u64>,
    field: Option<&'static str>,
    ids: (Option<String>, Option<String>),
}

/// The generated stream.
pub struct Generator {
    sim: Simulator,
    faults: Faults,
    topics: TopicNames,
    limit: Option<u64>,
    snapshot: VecDeque<Product>,
    seq: u64,
    topic_seq: [u64; 3],
    inputs: u64,
    stream_max: Option<Millis>,
    dups: BTreeMap<(Millis, u64), PendingDup>,
}

impl Generator {
    pub fn new(cfg: &GeneratorConfig) -> Generator {
        let sim = Simulator::new(&cfg.shop);
        let snapshot = sim
            .catalog
            .items
            .iter()
            .map(|i| i.product.clone())
            .collect();
        Generator {
            sim,
            faults: Faults::new(cfg.shop.seed, cfg.faults.clone()),
            topics: cfg.topics.clone(),
            limit: cfg.limit,
            snapshot,
            seq: 0,
            topic_seq: [0; 3],
            inputs: 0,
            stream_max: None,
            dups: BTreeMap::new(),
        }
    }

    /// Input records emitted so far.
    pub fn inputs(&self) -> u64 {
        self.inputs
    }

    /// The largest event time on the input topics so far.
    pub fn stream_max(&self) -> Option<Millis> {
        self.stream_max
    }

    fn emit(
        &mut self,
        topic: TopicKind,
        key: String,
        at: Millis,
        payload: Payload,
        meta: Meta,
    ) -> Emitted {
        let record = GenRecord {
            seq: self.seq,
            topic_seq: self.topic_seq[topic.index()],
            topic,
            key,
            event_time: at,
            payload,
        };
        self.seq += 1;
        self.topic_seq[topic.index()] += 1;
        if topic.is_input() {
            self.inputs += 1;
            self.stream_max = Some(self.stream_max.map_or(at, |m| m.max(at)));
        }
        let truth = (!meta.labels.is_empty()).then(|| TruthEntry {
            seq: record.seq,
            topic: self.topics.name(topic).to_string(),
            topic_seq: record.topic_seq,
            key: record.key.clone(),
            transaction_id: meta.ids.0,
            event_id: meta.ids.1,
            event_time: at,
            labels: meta.labels.iter().map(|l| l.name()).collect(),
            original_seq: meta.original_seq,
            lag_ms: meta.lag_ms,
            episode: meta.episode,
            field: meta.field.map(str::to_string),
        });
        Emitted { record, truth }
    }

    fn emit_duplicate(&mut self, d: PendingDup) -> Emitted {
        let meta = Meta {
            labels: vec![Label::Duplicate],
            original_seq: Some(d.original_seq),
            lag_ms: self.stream_max.map(|m| m - d.event_time),
            ids: ids_of(&d.payload),
            ..Meta::default()
        };
        self.emit(
            TopicKind::Transactions,
            d.key,
            d.event_time,
            d.payload,
            meta,
        )
    }

    fn emit_input(&mut self, draft: Draft) -> Emitted {
        let mut meta = Meta {
            ids: ids_of(&draft.payload),
            ..Meta::default()
        };
        let (mut at, mut payload) = (draft.at, draft.payload);
        if let Some((pattern, episode)) = draft.fraud {
            meta.labels.push(Label::Fraud(pattern));
            meta.episode = Some(episode);
        } else if !draft.exempt {
            match (self.faults.choose(draft.topic), self.stream_max) {
                (Some(Fault::Invalid(kind)), _) => {
                    let c = self.faults.corrupt(payload, kind);
                    payload = c.payload;
                    meta.field = c.field;
                    meta.labels.push(Label::Invalid(kind));
                }
                (Some(Fault::Late), Some(max)) => {
                    at = max - self.faults.late_shift();
                    meta.labels.push(Label::Late);
                    meta.lag_ms = Some(max - at);
                }
                (Some(Fault::OutOfOrder), Some(max)) => {
                    at = max - self.faults.out_of_order_shift();
                    meta.labels.push(Label::OutOfOrder);
                    meta.lag_ms = Some(max - at);
                }
                _ => {}
            }
            set_time(&mut payload, at);
            if let (true, Payload::Transaction(tx)) = (meta.labels.is_empty(), &mut payload) {
                if let Some((line, id)) = self.faults.unknown_product(tx.items.len()) {
                    tx.items[line].product_id = id;
                    meta.labels.push(Label::UnknownProduct);
                }
            }
        }
        let clean_tx =
            meta.labels.is_empty() && !draft.exempt && draft.topic == TopicKind::Transactions;
        let delay = if clean_tx {
            self.faults.duplicate_delay()
        } else {
            None
        };
        let out = self.emit(draft.topic, draft.key, at, payload, meta);
        if let Some(delay) = delay {
            let r = &out.record;
            let pending = PendingDup {
                original_seq: r.seq,
                key: r.key.clone(),
                event_time: r.event_time,
                payload: r.payload.clone(),
            };
            self.dups.insert((r.event_time + delay, r.seq), pending);
        }
        out
    }
}

impl Iterator for Generator {
    type Item = Emitted;

    fn next(&mut self) -> Option<Emitted> {
        if let Some(p) = self.snapshot.pop_front() {
            let (key, at) = (p.product_id.clone(), p.updated_at);
            return Some(self.emit(
                TopicKind::Products,
                key,
                at,
                Payload::Product(p),
                Meta::default(),
            ));
        }
        if self.limit.is_some_and(|l| self.inputs >= l) {
            return None;
        }
        let must_flush = self
            .limit
            .is_some_and(|l| l - self.inputs <= self.dups.len() as u64);
        if let Some((&(due, _), _)) = self.dups.first_key_value() {
            if must_flush || self.stream_max.is_some_and(|m| m >= due) {
                let (_, d) = self.dups.pop_first().expect("non-empty");
                return Some(self.emit_duplicate(d));
            }
        }
        let draft = self.sim.next_draft();
        if !draft.topic.is_input() {
            return Some(self.emit(
                draft.topic,
                draft.key,
                draft.at,
                draft.payload,
                Meta::default(),
            ));
        }
        Some(self.emit_input(draft))
    }
}

fn ids_of(p: &Payload) -> (Option<String>, Option<String>) {
    match p {
        Payload::Transaction(tx) => (Some(tx.transaction_id.clone()), None),
        Payload::Event(e) => (None, Some(e.event_id.clone())),
        _ => (None, None),
    }
}

fn set_time(p: &mut Payload, at: Millis) {
    match p {
        Payload::Transaction(tx) => tx.timestamp = at,
        Payload::Event(e) => e.timestamp = at,
        _ => {}
    }
}
