//! Business analytics on top of the engine's windows: revenue and product KPIs, funnel and
//! sessions, RFM and lifetime value, business threshold alerts: RFM (`rfm`, `rfm_state`),
//! user sessions with the funnel and sessions KPI families (`journey`, `funnel`,
//! `sessions`, `session_kpis`), and the business alerts stage 2 raises on settled windows
//! (`alerts`, `alert_state`).

pub mod alert_state;
pub mod alerts;
pub mod funnel;
pub mod journey;
pub mod rfm;
mod rfm_codec;
pub mod rfm_state;
pub mod session_kpis;
pub mod sessions;
