//! Stage 2, the global merger, as a pure state machine: it consumes the partial KPI rows
//! and watermark marks that the N stage-1 tasks publish to `shop.internal.partials` and
//! emits the global KPI rows of the (kpi, window, dimension) keys routed to its partition.
//!
//! Per source task and key it keeps the partial with the highest revision (a lower or
//! equal revision arriving later is a redelivery and ignored); the global value of a key is
//! the family aggregate merged over those latest partials (`partials.rs`). The merger
//! watermark is the minimum over the N sources' marks (each monotone; a source that never
//! reported holds it at the minimum). Emission reuses the stage-1 window operator
//! (`family.rs`): `on_time` once the merger watermark passes a window's end, `late_update`
//! for partials changing it afterwards within the allowed lateness, `final` when the
//! lateness expires (then the key is purged), optional `early` results on processing-time
//! ticks; the global revision grows by one per emission of a key.
//!
//! Order insensitivity: as long as each partition of the partials topic carries a source's
//! marks after the partials they cover (the runtime produces them in that order), the
//! merger watermark passes a window's expiry only after every source's final partial for
//! it has arrived, so `final` rows do not depend on how different sources interleave.
//! Intermediate revisions may. Unique-customer counts are added across sources: inputs
//! are keyed by customer_id, so the sources' customer sets are disjoint.
//!
//! Exactly-once: every call names the input position it consumes; re-read positions are
//! recognised and skipped, and the changelog (`checkpoint.rs`) carries those positions so
//! a restored merger ignores entries past its restore point, exactly like a stage-1 task.

mod checkpoint;
mod family;
mod partials;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use super::aggregate::{early_due, Aggregate};
use super::config::EngineConfig;
use super::families::{ActivityAgg, RevenueAgg};
use super::io::Outputs;
use super::products::ProductsAgg;
use super::sales::SalesAgg;
use super::state::{Incarnation, TopicPartition};
use super::task::{kpi, TaskError};
use super::window::WindowSpec;
use crate::analytics::alert_state::BusinessAlerts;
use crate::analytics::alerts::{AlertConfig, Inventory};
use crate::analytics::funnel::FunnelAgg;
use crate::analytics::sessions::SessionsAgg;
use crate::model::time::Millis;
use crate::model::KpiRow;
use crate::quality::QualityAgg;
use family::{Family, MergeFamily, Offer};

pub use partials::{SourcePartial, SourcePartials};

/// Stage-2 knobs. Lateness must equal stage 1's: a partial the stage-1 task still emits
/// for a window must find the window live here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeConfig {
    pub allowed_lateness_ms: i64,
    /// Emit early results of open windows this often (processing time); `None`: never.
    pub early_interval_ms: Option<i64>,
    /// Products ranked per category in the `products` family.
    pub top_n: usize,
    /// The business alert rules (`analytics::alerts`).
    pub alerts: AlertConfig,
    /// The revenue windows, whose series the alert rules walk.
    pub revenue_windows: Vec<WindowSpec>,
}

impl From<&EngineConfig> for MergeConfig {
    fn from(cfg: &EngineConfig) -> Self {
        MergeConfig {
            allowed_lateness_ms: cfg.windows.allowed_lateness_ms,
            early_interval_ms: cfg.windows.early_interval_ms,
            top_n: cfg.kpis.top_n,
            alerts: cfg.alerts.clone(),
            revenue_windows: cfg.windows.revenue.clone(),
        }
    }
}

/// The position of one consumed record of `shop.internal.partials`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Why a consumed record could not be used. The runtime counts these; none stops the
/// merger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// The source task id is not below the number of sources.
    UnknownSource,
    /// No family of that KPI name is registered.
    UnknownKpi,
    /// The values do not parse as the family's aggregate.
    BadValues,
    /// `window_start >= window_end`.
    BadWindow,
}

/// What became of one consumed record. Every record gets exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MergeDisposition {
    /// A newer partial of its source, or a mark raising its source's watermark.
    Applied,
    /// A partial not newer than the one held for its source and key, or a mark not above
    /// its source's watermark (a redelivery): ignored.
    Stale,
    /// A partial for a window whose lateness had expired at the merger watermark: ignored
    /// (cannot happen while marks follow the partials they cover).
    Expired,
    /// Its position was consumed before (a re-read after a restart): ignored.
    AlreadyApplied,
    Invalid(Invalid),
}

/// Cumulative counts, for metrics. Not state: they restart with the process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounters {
    pub partials: u64,
    pub marks: u64,
    pub stale: u64,
    pub expired: u64,
    pub already_applied: u64,
    pub invalid: u64,
    pub kpi_rows: u64,
}

/// The stage-2 merger of one partition of `shop.internal.partials`.
pub struct Merger {
    cfg: MergeConfig,
    inputs: Vec<TopicPartition>,
    /// Per input, the next offset to apply.
    applied: Vec<i64>,
    /// Per source task, its latest watermark mark.
    marks: Vec<Millis>,
    current: Millis,
    next_early_at: Option<Millis>,
    families: Vec<Box<dyn MergeFamily>>,
    /// Business alert rules on the final rows and their state.
    alerts: BusinessAlerts,
    /// The product catalog, for `low_stock`; `None`: no stock alerts.
    inventory: Option<Arc<dyn Inventory>>,
    flush_seq: u64,
    /// This life of the merger (see [`Incarnation`]); set by `Merger::restored`.
    incarnation: Incarnation,
    counters: MergeCounters,
}

impl Merger {
    /// A merger of `sources` stage-1 tasks (the input topics' partition count) reading
    /// `inputs` (typically one partition of `shop.internal.partials`), with the engine's
    /// families `revenue`, `activity`, `quality`, `products`, `geo`, `payments` and
    /// `hourly` registered.
    pub fn new(
        cfg: MergeConfig,
        sources: u32,
        inputs: Vec<TopicPartition>,
    ) -> Result<Merger, TaskError> {
        if sources == 0 {
            return Err(TaskError::Config(
                "stage 2 needs at least one source".into(),
            ));
        }
        if cfg.allowed_lateness_ms < 0
            || cfg.early_interval_ms.is_some_and(|i| i <= 0)
            || cfg.top_n == 0
        {
            return Err(TaskError::Config(format!("invalid merge config {cfg:?}")));
        }
        let alerts = BusinessAlerts::new(
            cfg.alerts.clone(),
            &cfg.revenue_windows,
            cfg.allowed_lateness_ms,
        );
        let mut merger = Merger {
            cfg,
            applied: vec![0; inputs.len()],
            inputs,
            marks: vec![Millis::MIN; sources as usize],
            current: Millis::MIN,
            next_early_at: None,
            families: Vec::new(),
            alerts,
            inventory: None,
            flush_seq: 0,
            incarnation: Incarnation::default(),
            counters: MergeCounters::default(),
        };
        merger.register::<RevenueAgg>(kpi::REVENUE)?;
        merger.register::<ActivityAgg>(kpi::ACTIVITY)?;
        merger.register::<QualityAgg>(kpi::QUALITY)?;
        merger.register::<ProductsAgg>(kpi::PRODUCTS)?;
        merger.register::<SalesAgg>(kpi::GEO)?;
        merger.register::<SalesAgg>(kpi::PAYMENTS)?;
        merger.register::<SalesAgg>(kpi::HOURLY)?;
        merger.register::<FunnelAgg>(kpi::FUNNEL)?;
        merger.register::<SessionsAgg>(kpi::SESSIONS)?;
        Ok(merger)
    }

    /// Registers another KPI family (e.g. an analytics one) with its aggregate. Register
    /// before restoring, in the same way on every instance.
    pub fn register<A: Aggregate + Send + 'static>(
        &mut self,
        kpi: &'static str,
    ) -> Result<(), TaskError> {
        if kpi.is_empty() || kpi.contains('/') || self.family_index(kpi).is_some() {
            return Err(TaskError::Config(format!(
                "bad or duplicate family {kpi:?}"
            )));
        }
        let family = Family::<A>::new(kpi, self.cfg.allowed_lateness_ms, self.cfg.top_n);
        self.families.push(Box::new(family));
        Ok(())
    }

    /// Attaches the product catalog (for `low_stock` alerts).
    pub fn with_inventory(mut self, inventory: Arc<dyn Inventory>) -> Self {
        self.inventory = Some(inventory);
        self
    }

    /// Judges the rows emitted since `before` with the business alert rules.
    fn judge(&mut self, out: &mut Outputs, before: usize) {
        let inventory = self.inventory.as_deref();
        self.alerts.on_rows(
            &out.kpis[before..],
            self.current,
            inventory,
            &mut out.business_alerts,
        );
    }

    pub fn inputs(&self) -> &[TopicPartition] {
        &self.inputs
    }

    /// The number of source tasks.
    pub fn sources(&self) -> u32 {
        self.marks.len() as u32
    }

    /// The merger watermark: the minimum over all sources' marks.
    pub fn watermark(&self) -> Millis {
        self.current
    }

    /// Per source task, its latest mark (`Millis::MIN` if it never reported), for lag
    /// metrics.
    pub fn source_watermarks(&self) -> &[Millis] {
        &self.marks
    }

    pub fn counters(&self) -> MergeCounters {
        self.counters
    }

    /// Live results (window × dimension) across families.
    pub fn len(&self) -> usize {
        self.families.iter().map(|f| f.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Per input, the next offset to apply (where to resume consuming).
    pub fn next_offsets(&self) -> Vec<(TopicPartition, i64)> {
        self.inputs
            .iter()
            .cloned()
            .zip(self.applied.iter().copied())
            .collect()
    }

    /// Records the consumption of `at`; false if it was applied before.
    fn consume(&mut self, at: Consumed<'_>) -> Result<bool, TaskError> {
        let ix = self
            .inputs
            .iter()
            .position(|tp| tp.partition == at.partition && tp.topic == at.topic)
            .ok_or_else(|| TaskError::UnknownInput {
                topic: at.topic.to_owned(),
                partition: at.partition,
            })?;
        if at.offset < self.applied[ix] {
            self.counters.already_applied += 1;
            return Ok(false);
        }
        self.applied[ix] = at.offset.saturating_add(1);
        Ok(true)
    }

    fn family_index(&self, kpi: &str) -> Option<usize> {
        self.families.iter().position(|f| f.kpi() == kpi)
    }

    /// A partial row of source task `source`, consumed at `at`.
    pub fn on_partial(
        &mut self,
        at: Consumed<'_>,
        source: u32,
        row: &KpiRow,
        out: &mut Outputs,
    ) -> Result<MergeDisposition, TaskError> {
        if !self.consume(at)? {
            return Ok(MergeDisposition::AlreadyApplied);
        }
        let checked = if source >= self.sources() {
            Err(Invalid::UnknownSource)
        } else if row.window_start >= row.window_end {
            Err(Invalid::BadWindow)
        } else {
            self.family_index(&row.kpi).ok_or(Invalid::UnknownKpi)
        };
        let family = match checked {
            Ok(f) => f,
            Err(i) => {
                self.counters.invalid += 1;
                return Ok(MergeDisposition::Invalid(i));
            }
        };
        let before = out.kpis.len();
        let offer = self.families[family].offer(source, row, self.current, &mut out.kpis);
        // No alert to judge: a partial never makes a window final (an expired window
        // refuses it), so only `on_watermark` does.
        self.counters.kpi_rows += (out.kpis.len() - before) as u64;
        Ok(match offer {
            Offer::Applied => {
                self.counters.partials += 1;
                MergeDisposition::Applied
            }
            Offer::Stale => {
                self.counters.stale += 1;
                MergeDisposition::Stale
            }
            Offer::Expired => {
                self.counters.expired += 1;
                MergeDisposition::Expired
            }
            Offer::BadValues => {
                self.counters.invalid += 1;
                MergeDisposition::Invalid(Invalid::BadValues)
            }
        })
    }

    /// A watermark mark of source task `source`, consumed at `at`. May advance the merger
    /// watermark and emit.
    pub fn on_watermark(
        &mut self,
        at: Consumed<'_>,
        source: u32,
        watermark: Millis,
        out: &mut Outputs,
    ) -> Result<MergeDisposition, TaskError> {
        if !self.consume(at)? {
            return Ok(MergeDisposition::AlreadyApplied);
        }
        let Some(mark) = self.marks.get_mut(source as usize) else {
            self.counters.invalid += 1;
            return Ok(MergeDisposition::Invalid(Invalid::UnknownSource));
        };
        if watermark <= *mark {
            self.counters.stale += 1;
            return Ok(MergeDisposition::Stale);
        }
        *mark = watermark;
        self.counters.marks += 1;
        let min = self.marks.iter().copied().min().unwrap_or(Millis::MIN);
        if min > self.current {
            self.current = min;
            let before = out.kpis.len();
            for f in &mut self.families {
                f.advance(min, &mut out.kpis);
            }
            self.counters.kpi_rows += (out.kpis.len() - before) as u64;
            self.judge(out, before);
        }
        Ok(MergeDisposition::Applied)
    }

    /// Processing time passed: early results are emitted when their interval is due.
    pub fn on_tick(&mut self, now: Millis, out: &mut Outputs) {
        if early_due(&mut self.next_early_at, now, self.cfg.early_interval_ms) {
            let before = out.kpis.len();
            for f in &mut self.families {
                f.emit_early(&mut out.kpis);
            }
            self.counters.kpi_rows += (out.kpis.len() - before) as u64;
        }
    }
}
