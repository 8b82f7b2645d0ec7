//! The PostgreSQL sink: migrations, idempotent upserts keyed on natural keys, and consumed
//! offsets stored in the same transaction as the rows; plus a throw-away embedded server
//! for `demo` and tests.

pub mod embedded_pg;
