//! Explainable fraud scoring, the deterministic core of it (no I/O): per-customer
//! profiles (`profile`) from which each transaction's features are computed on arrival
//! (`features`, with the haversine distance in `geo`), weighted rules from the TOML rule
//! set (`rules`, defaults in the committed `fraud_rules.toml`) that turn features into a
//! score in [0, 1] with its top reasons (`score`), and the per-task state that holds the
//! profiles, scores transactions and changelogs itself like the rest of the engine state
//! (`state`, profiles in the compact binary form of `profile_codec`). The stage-1 task
//! scores every accepted transaction; the runtime puts the score on the enriched order
//! and sends alerts above the threshold.

mod alert;
mod features;
mod geo;
mod profile;
mod profile_codec;
pub mod quality;
mod rules;
mod score;
mod state;

pub use features::Features;
pub use geo::haversine_km;
pub use profile::Profile;
pub use rules::{
    AmountRule, CardTestingRule, CountryRule, FraudRules, NewDeviceRule, StateRules, TravelRule,
    VelocityRule, DEFAULT_RULES_TOML,
};
pub use score::{reason, score, Verdict};
pub use state::{FraudState, FRAUD_PREFIX};
