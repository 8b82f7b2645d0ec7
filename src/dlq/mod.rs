//! Operating on the dead-letter queue `shop.dlq`: [`redrive`] re-submits the original
//! bytes of rejected input records to their source topic and partition after a fix (a
//! corrected validation config, a registered schema), exactly once per DLQ record;
//! [`bound`] keeps DLQ and late records small enough for Kafka however large the input.

pub mod bound;
pub mod redrive;
