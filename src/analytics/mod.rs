//! Business analytics on top of the engine's windows: revenue and product KPIs, funnel and
//! sessions, RFM and lifetime value, business threshold alerts. Not built yet.

pub mod rfm;
pub mod rfm_state;
