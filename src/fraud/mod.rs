//! Per-customer fraud features, weighted rules and explainable scoring. Not built yet.
