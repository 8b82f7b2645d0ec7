//! The PostgreSQL sink: migrations, idempotent upserts keyed on natural keys, and consumed
//! offsets stored in the same transaction as the rows; plus a throw-away embedded server
//! for `demo` and tests, and CSV export of every table.

pub mod business_alerts;
pub mod consumer;
pub mod embedded_pg;
pub mod export;
pub mod migrate;
pub mod offsets;
pub mod postgres;
pub mod rfm;
pub mod rows;
pub mod schema;
