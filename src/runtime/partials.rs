//! The internal `shop.internal.partials` record format between stage 1 and stage 2: a
//! task's partial KPI row (keyed by the row's series key, so every partial of one family,
//! window size and dimension — every window of the series — lands on one partials
//! partition) or a task's watermark mark (written to every
//! partials partition, so every stage-2 merger learns every task's watermark). JSON: the
//! topic is internal, so no registry is involved.

use serde::{Deserialize, Serialize};

use crate::model::time::Millis;
use crate::model::KpiRow;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PartialMessage {
    /// A partial result of stage-1 task `task` (one of `tasks`).
    Row { task: i32, tasks: i32, row: KpiRow },
    /// Stage-1 task `task` (one of `tasks`) has reached `watermark`.
    Watermark {
        task: i32,
        tasks: i32,
        watermark: Millis,
    },
}

impl PartialMessage {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("partial messages serialise infallibly")
    }

    pub fn from_json(bytes: &[u8]) -> Result<PartialMessage, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::subjects::KPI_FAMILIES;
    use crate::engine::kpi;

    #[test]
    fn every_engine_family_has_a_topic_and_a_table() {
        for family in [
            kpi::REVENUE,
            kpi::ACTIVITY,
            kpi::QUALITY,
            kpi::PRODUCTS,
            kpi::GEO,
            kpi::PAYMENTS,
            kpi::HOURLY,
            kpi::FUNNEL,
            kpi::SESSIONS,
        ] {
            assert!(KPI_FAMILIES.iter().any(|(f, _)| *f == family), "{family}");
            assert!(
                crate::sink::migrate::kpi_table(family).is_some(),
                "{family}"
            );
        }
    }

    #[test]
    fn messages_round_trip() {
        let m = PartialMessage::Watermark {
            task: 2,
            tasks: 6,
            watermark: 1_700_000_000_000,
        };
        assert_eq!(PartialMessage::from_json(&m.to_json()).unwrap(), m);
    }
}
