//! Business analytics on top of the engine's windows: revenue and product KPIs, funnel and
//! sessions, RFM and lifetime value, business threshold alerts. Built so far: RFM
//! (`rfm`, `rfm_state`) and user sessions with the funnel and sessions KPI families
//! (`journey`, `funnel`, `sessions`, `session_kpis`).

pub mod funnel;
pub mod journey;
pub mod rfm;
pub mod rfm_state;
pub mod session_kpis;
pub mod sessions;
