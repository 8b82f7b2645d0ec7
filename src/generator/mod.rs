//! A synthetic shop: customers, catalog, sessions, seasonality and injected faults with
//! ground-truth labels.

pub mod catalog;
pub mod customers;
pub mod faults;
pub mod fraud;
pub mod geo;
pub mod ids;
pub mod invalid;
pub mod orders;
pub mod record;
pub mod season;
pub mod session;
pub mod sim;
pub mod stream;
