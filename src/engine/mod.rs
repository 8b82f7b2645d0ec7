//! The deterministic core, no I/O: records and processing-time ticks in; KPI rows, DLQ and
//! late records, accepted records and changelog entries out. [`Task`] is the stage-1
//! state machine of one partition number; it is built from watermarks (`watermark`),
//! window assigners (`window`), the generic window and session operators over mergeable
//! aggregates (`operator` with its per-window results in `bucket`, `session`,
//! `aggregate`), exact dedup (`dedup`), per-task customer interning (`interner`), the KPI
//! families (`families`, with what a transaction adds to revenue in `revenue`) and the
//! changelog format (`state`, `checkpoint`). [`Merger`] (`merge`) is the stage-2 state machine that merges
//! the tasks' partial KPI rows. Given the same inputs and `now` values, a task or merger —
//! or one restored from its changelog — produces the same outputs; nothing here reads a
//! clock, spawns a thread or takes a lock.

mod aggregate;
mod bucket;
mod checkpoint;
pub mod codec;
mod commerce;
mod config;
mod currency;
mod customers;
pub mod dedup;
mod families;
#[cfg(test)]
mod gc_tests;
mod interner;
mod io;
pub mod merge;
mod operator;
mod products;
mod revenue;
mod sales;
pub mod session;
mod session_codec;
mod state;
mod task;
pub mod testkit;
mod watermark;
mod window;

pub use aggregate::{Aggregate, Dimension, Emission, EmitSink, ResultSlot};
pub use commerce::ProductCosts;
pub use config::{EngineConfig, WindowConfig};
pub use currency::{Converter, KpiConfig, Rate};
pub(crate) use customers::customer_members;
pub use customers::CustomerSet;
pub use dedup::{DedupConfig, Deduplicator};
pub use families::{ActivityAgg, All, RevenueAgg, RevenueDim, RevenueDimRef, EVENT_TYPES};
pub use interner::{Interner, MemberId};
pub use io::{Accepted, Counters, Disposition, Input, Outputs};
pub use merge::{Consumed, MergeConfig, MergeDisposition, Merger};
pub use operator::WindowOperator;
pub use products::{ProductTotals, ProductsAgg};
pub use sales::{GeoLabels, LabelDim, MethodLabels, SalesAgg};
pub use state::{
    compact_committed, AppliedOffsets, ChangelogEntry, Compacted, Incarnation, RestorePoint,
    StateError, TopicPartition,
};
pub use task::{kpi, RowSink, Task, TaskError, LATE_REASON};
pub use watermark::{PartitionClock, WatermarkConfig, Watermarks};
pub use window::{Window, WindowSpec};
