//! The discrete-event simulation of the shop on a simulated clock. A priority queue holds
//! everything that will happen next — the next session arrival, each session's next step,
//! each fraud episode's next transaction, pending restocks — ordered by event time and a
//! sequence number, so the output is deterministic and in event-time order. Sessions
//! arrive as a non-homogeneous Poisson process (by thinning) whose rate is the configured
//! event rate, divided by the expected records per session, times the seasonal intensity.
//! At the start the queue is warmed up with the sessions that would already be under way,
//! so even a short stream has a steady-state mix of page views, carts and purchases.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use rand::Rng;

use super::catalog::Catalog;
use super::customers::Population;
use super::fraud::{self, Episode};
use super::ids::{rng_for, GenRng, Stream};
use super::record::{FraudPattern, Payload, TopicKind};
use super::season;
use super::session::{Conditions, Output, Session, MAX_SESSION_MS};
use crate::model::time::Millis;
use crate::model::TxStatus;

/// What shapes the simulated shop.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopConfig {
    pub seed: u64,
    /// Event time of the first record.
    pub start: Millis,
    /// Input records per simulated second at seasonal intensity 1.
    pub event_rate: f64,
    pub customers: usize,
    pub products: usize,
    /// Share of transactions that belong to fraud episodes.
    pub fraud_rate: f64,
    /// Event-time range `[from, to)` of a payment outage: most payments fail.
    pub payment_outage: Option<(Millis, Millis)>,
}

/// A record the simulation produced, before faults are injected.
#[derive(Debug, Clone)]
pub struct Draft {
    pub at: Millis,
    pub topic: TopicKind,
    pub key: String,
    pub payload: Payload,
    /// Fraud pattern and episode, for fraudulent transactions.
    pub fraud: Option<(FraudPattern, u64)>,
    /// Part of a fraud episode: faults leave it alone so the pattern stays intact.
    pub exempt: bool,
}

enum Actor {
    Arrival,
    Session(Box<Session>),
    Fraud(Box<Episode>),
    Restock(u32),
}

struct Entry {
    at: Millis,
    order: u64,
    actor: Actor,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed: the earliest entry is the greatest, for a min-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// The simulated shop.
pub struct Simulator {
    pub catalog: Catalog,
    pub people: Population,
    queue: BinaryHeap<Entry>,
    order: u64,
    rng: GenRng,
    fraud_rng: GenRng,
    /// Session arrivals per ms at intensity 1.
    session_rate: f64,
    arrival_clock: f64,
    fraud_spawn_p: f64,
    payment_outage: Option<(Millis, Millis)>,
    episodes: u64,
    ready: VecDeque<Draft>,
}

/// How many sessions to plan to estimate the records per session.
const ESTIMATE_SESSIONS: usize = 2_000;

impl Simulator {
    pub fn new(cfg: &ShopConfig) -> Simulator {
        let mut world = rng_for(cfg.seed, Stream::World);
        let catalog = Catalog::generate(&mut world, cfg.products, cfg.start);
        let people = Population::generate(&mut world, cfg.customers);
        let per_session = mean_records_per_session(cfg.seed, &catalog, &people, cfg.start);
        let session_rate = cfg.event_rate.max(1e-6) / per_session / 1000.0;
        let fraud_rate = cfg.fraud_rate.clamp(0.0, 0.5);
        let fraud_spawn_p = fraud_rate / (fraud::mean_fraud_per_episode() * (1.0 - fraud_rate));
        let mut sim = Simulator {
            catalog,
            people,
            queue: BinaryHeap::new(),
            order: 0,
            rng: rng_for(cfg.seed, Stream::Sim),
            fraud_rng: rng_for(cfg.seed, Stream::Fraud),
            session_rate,
            arrival_clock: cfg.start as f64,
            fraud_spawn_p: fraud_spawn_p.min(1.0),
            payment_outage: cfg.payment_outage,
            episodes: 0,
            ready: VecDeque::new(),
        };
        sim.warm_up(cfg.seed, cfg.start);
        let first = sim.next_arrival();
        sim.push(first, Actor::Arrival);
        sim
    }

    fn push(&mut self, at: Millis, actor: Actor) {
        self.order += 1;
        self.queue.push(Entry {
            at,
            order: self.order,
            actor,
        });
    }

    /// Adds the sessions that started in the `MAX_SESSION_MS` before `start` and are still
    /// going, each from its first step at or after `start`.
    fn warm_up(&mut self, seed: u64, start: Millis) {
        let mut rng = rng_for(seed, Stream::WarmUp);
        let window = f64::from(MAX_SESSION_MS);
        let n = (self.session_rate * season::intensity(start) * window).round() as usize;
        for _ in 0..n {
            let began = start - rng.gen_range(0.0..window) as Millis;
            let c = self.people.sample(&mut rng);
            let when = self.conditions(began);
            let mut s = Session::plan(&mut rng, &self.catalog, self.people.get(c), c, began, when);
            s.skip_before(start);
            if let Some(at) = s.next_at() {
                self.push(at, Actor::Session(Box::new(s)));
            }
        }
    }

    /// The shop's conditions for a session starting at `at`.
    fn conditions(&self, at: Millis) -> Conditions {
        Conditions {
            promo: season::is_promo(at),
            outage: self.payment_outage,
        }
    }

    /// The next session arrival after the arrival clock, by thinning.
    fn next_arrival(&mut self) -> Millis {
        let max = season::max_intensity();
        let lambda = self.session_rate * max;
        loop {
            let u: f64 = self.rng.gen_range(f64::MIN_POSITIVE..1.0);
            self.arrival_clock += -u.ln() / lambda;
            let t = self.arrival_clock as Millis;
            if self.rng.gen::<f64>() * max < season::intensity(t) {
                return t;
            }
        }
    }

    /// The next record of the shop, in event-time order. Never ends.
    pub fn next_draft(&mut self) -> Draft {
        loop {
            if let Some(d) = self.ready.pop_front() {
                return d;
            }
            let entry = self.queue.pop().expect("the arrival process never ends");
            self.step(entry);
        }
    }

    fn step(&mut self, entry: Entry) {
        let at = entry.at;
        match entry.actor {
            Actor::Arrival => {
                let c = self.people.sample(&mut self.rng);
                let when = self.conditions(at);
                let s = Session::plan(
                    &mut self.rng,
                    &self.catalog,
                    self.people.get(c),
                    c,
                    at,
                    when,
                );
                self.push(at, Actor::Session(Box::new(s)));
                let next = self.next_arrival();
                self.push(next, Actor::Arrival);
            }
            Actor::Session(mut s) => {
                let customer = self.people.get(s.customer);
                if let Some((at, out)) = s.advance(&mut self.rng, &self.catalog, customer) {
                    self.emit_session_output(at, out);
                }
                if let Some(next) = s.next_at() {
                    self.push(next, Actor::Session(s));
                }
            }
            Actor::Fraud(mut e) => {
                let customer = self.people.get(e.customer);
                if let Some(f) = e.advance(&mut self.fraud_rng, &self.catalog, customer) {
                    let (at, items, status) = (f.tx.timestamp, f.tx.items.clone(), f.tx.status);
                    self.ready.push_back(Draft {
                        at,
                        topic: TopicKind::Transactions,
                        key: f.tx.customer_id.clone(),
                        payload: Payload::Transaction(f.tx),
                        fraud: f.pattern.map(|p| (p, f.episode)),
                        exempt: true,
                    });
                    self.sell(&items, status, at);
                }
                if let Some(next) = e.next_at() {
                    self.push(next, Actor::Fraud(e));
                }
            }
            Actor::Restock(p) => {
                self.catalog.restock(p, at);
                self.ready.push_back(self.product_draft(p, at));
            }
        }
    }

    fn emit_session_output(&mut self, at: Millis, out: Output) {
        let draft = |topic, key, payload| Draft {
            at,
            topic,
            key,
            payload,
            fraud: None,
            exempt: false,
        };
        match out {
            Output::Event(e) => {
                self.ready.push_back(draft(
                    TopicKind::Events,
                    e.customer_id.clone(),
                    Payload::Event(e),
                ));
            }
            Output::Transaction(tx) => {
                let (items, status) = (tx.items.clone(), tx.status);
                self.ready.push_back(draft(
                    TopicKind::Transactions,
                    tx.customer_id.clone(),
                    Payload::Transaction(tx),
                ));
                self.sell(&items, status, at);
                if self.fraud_rng.gen_bool(self.fraud_spawn_p) {
                    self.spawn_episode(at);
                }
            }
        }
    }

    /// Takes sold items out of stock, publishing products that reach their reorder point.
    fn sell(&mut self, items: &[crate::model::LineItem], status: TxStatus, at: Millis) {
        if matches!(status, TxStatus::Failed) {
            return;
        }
        for item in items {
            let Some(idx) = self.product_index(&item.product_id) else {
                continue;
            };
            if self.catalog.take(idx, i64::from(item.quantity), at) {
                self.ready.push_back(self.product_draft(idx, at));
                let restock_at = at + self.rng.gen_range(3_600_000..12 * 3_600_000);
                self.push(restock_at, Actor::Restock(idx));
            }
        }
    }

    fn product_index(&self, product_id: &str) -> Option<u32> {
        let n: u32 = product_id.strip_prefix("sku-")?.parse().ok()?;
        (n >= 1 && (n as usize) <= self.catalog.items.len()).then(|| n - 1)
    }

    fn product_draft(&self, idx: u32, at: Millis) -> Draft {
        let p = self.catalog.items[idx as usize].product.clone();
        Draft {
            at,
            topic: TopicKind::Products,
            key: p.product_id.clone(),
            payload: Payload::Product(p),
            fraud: None,
            exempt: false,
        }
    }

    fn spawn_episode(&mut self, at: Millis) {
        self.episodes += 1;
        let c = self.people.sample(&mut self.fraud_rng);
        let start = at + self.fraud_rng.gen_range(0..10_000);
        let e = Episode::plan(
            &mut self.fraud_rng,
            self.episodes,
            c,
            self.people.get(c),
            start,
        );
        if let Some(first) = e.next_at() {
            self.push(first, Actor::Fraud(Box::new(e)));
        }
    }
}

/// Expected input records per session, from planning a sample of sessions.
fn mean_records_per_session(
    seed: u64,
    catalog: &Catalog,
    people: &Population,
    start: Millis,
) -> f64 {
    let mut rng = rng_for(seed, Stream::Estimate);
    let when = Conditions {
        promo: season::is_promo(start),
        outage: None,
    };
    let total: usize = (0..ESTIMATE_SESSIONS)
        .map(|_| {
            let c = people.sample(&mut rng);
            Session::plan(&mut rng, catalog, people.get(c), c, start, when)
                .steps
                .len()
        })
        .sum();
    total as f64 / ESTIMATE_SESSIONS as f64
}
