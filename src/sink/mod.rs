//! The PostgreSQL sink: migrations, idempotent upserts keyed on natural keys, and consumed
//! offsets stored in the same transaction as the rows.
