//! A synthetic shop: customers, catalog, sessions, seasonality and injected faults with
//! ground-truth labels.
