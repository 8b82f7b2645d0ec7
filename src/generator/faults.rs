//! Fault decisions. Each input record that is not part of a fraud episode is, with the
//! configured probabilities, made invalid, made late (event time moved back to between two
//! and four times the configured lateness behind the largest event time so far) or made
//! out of order (moved back by 1 ms up to the out-of-order bound); the three are mutually
//! exclusive. A clean transaction is, with the duplicate rate, re-sent unchanged once event
//! time has moved on by a random delay up to the configured maximum. A clean transaction
//! may also, with the unknown-product rate, have one line's product replaced by an id the
//! catalog never publishes (`unknown-sku-NNN`): still a valid order, which the pipeline
//! must enrich as unknown and count, not drop. Faults draw from
//! their own random stream, so changing a fault rate leaves the shop's sessions unchanged.

use rand::seq::SliceRandom;
use rand::Rng;

use super::ids::{rng_for, GenRng, Stream};
use super::invalid::{self, Corrupted};
use super::record::{InvalidKind, Payload, TopicKind};

/// Fault rates and bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Share of clean transactions that are re-sent later.
    pub duplicate_rate: f64,
    /// Share of input records moved back within `max_out_of_order_ms`.
    pub out_of_order_rate: f64,
    /// Share of input records moved back beyond `lateness_ms`.
    pub late_rate: f64,
    /// Share of input records made invalid.
    pub invalid_rate: f64,
    /// Share of clean transactions with one line of a product missing from the catalog.
    pub unknown_product_rate: f64,
    pub max_out_of_order_ms: i64,
    pub lateness_ms: i64,
    pub duplicate_max_delay_ms: i64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            duplicate_rate: 0.02,
            out_of_order_rate: 0.02,
            late_rate: 0.01,
            invalid_rate: 0.01,
            unknown_product_rate: 0.0,
            max_out_of_order_ms: 5_000,
            lateness_ms: 10 * 60_000,
            duplicate_max_delay_ms: 30_000,
        }
    }
}

impl FaultConfig {
    /// No faults at all.
    pub fn none() -> Self {
        FaultConfig {
            duplicate_rate: 0.0,
            out_of_order_rate: 0.0,
            late_rate: 0.0,
            invalid_rate: 0.0,
            unknown_product_rate: 0.0,
            ..Self::default()
        }
    }
}

/// What happens to one input record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Invalid(InvalidKind),
    Late,
    OutOfOrder,
}

/// The fault decider.
pub struct Faults {
    cfg: FaultConfig,
    rng: GenRng,
}

impl Faults {
    pub fn new(seed: u64, cfg: FaultConfig) -> Faults {
        Faults {
            cfg,
            rng: rng_for(seed, Stream::Faults),
        }
    }

    /// The fault, if any, for the next input record of `topic`.
    pub fn choose(&mut self, topic: TopicKind) -> Option<Fault> {
        let u: f64 = self.rng.gen();
        let c = &self.cfg;
        if u < c.invalid_rate {
            let kind = invalid::kinds_for(topic).choose(&mut self.rng)?;
            Some(Fault::Invalid(*kind))
        } else if u < c.invalid_rate + c.late_rate {
            Some(Fault::Late)
        } else if u < c.invalid_rate + c.late_rate + c.out_of_order_rate {
            Some(Fault::OutOfOrder)
        } else {
            None
        }
    }

    /// How far behind the largest event time a late record goes.
    pub fn late_shift(&mut self) -> i64 {
        let l = self.cfg.lateness_ms.max(1);
        self.rng.gen_range(2 * l..=4 * l)
    }

    /// How far behind the largest event time an out-of-order record goes.
    pub fn out_of_order_shift(&mut self) -> i64 {
        self.rng.gen_range(1..=self.cfg.max_out_of_order_ms.max(1))
    }

    /// After how much event time a clean transaction is re-sent, if it is.
    pub fn duplicate_delay(&mut self) -> Option<i64> {
        if !self.rng.gen_bool(self.cfg.duplicate_rate) {
            return None;
        }
        let max = self.cfg.duplicate_max_delay_ms.max(100);
        Some(self.rng.gen_range(100..=max))
    }

    /// For a clean transaction of `lines` lines: which line, if any, gets an unknown
    /// product, and its id. Draws nothing while the rate is zero, so streams generated
    /// without unknown products are unchanged.
    pub fn unknown_product(&mut self, lines: usize) -> Option<(usize, String)> {
        let rate = self.cfg.unknown_product_rate;
        if rate <= 0.0 || lines == 0 || !self.rng.gen_bool(rate.min(1.0)) {
            return None;
        }
        let line = self.rng.gen_range(0..lines);
        Some((
            line,
            format!("unknown-sku-{:03}", self.rng.gen_range(0..100)),
        ))
    }

    pub fn corrupt(&mut self, payload: Payload, kind: InvalidKind) -> Corrupted {
        invalid::corrupt(&mut self.rng, payload, kind)
    }
}
