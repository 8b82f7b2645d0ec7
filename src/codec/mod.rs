//! Decoding and encoding of records: JSON and Confluent-framed Avro with a schema registry.
