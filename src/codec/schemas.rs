//! The reader schemas compiled into the binary: every `schemas/avro/*.avsc` file, embedded
//! with `include_str!` and parsed once, both for apache-avro (schema resolution and
//! compatibility checks) and for serde_avro_fast (the decode/encode hot path). The
//! [`AvroRecord`] trait ties each model type to its schema; the files are self-contained
//! (nested named types are defined inline) so each can be registered on its own.

use std::sync::OnceLock;

use serde::{de::DeserializeOwned, Serialize};

use crate::model::{
    BusinessAlert, CustomerRfm, DlqRecord, EnrichedOrder, FraudAlert, KpiRow, LateRecord, Product,
    Transaction, UserEvent,
};

/// A compiled-in reader schema.
pub struct ReaderSchema {
    /// File name under `schemas/avro/`, e.g. `transaction.avsc`.
    pub file: &'static str,
    /// The schema text as registered.
    pub json: &'static str,
    /// Fully-qualified record name, e.g. `com.shopstream.Transaction`.
    pub full_name: String,
    pub avro: apache_avro::Schema,
    pub fast: serde_avro_fast::Schema,
}

impl ReaderSchema {
    /// Parses a reader schema. Meant for compiled-in schema text (a unit test parses every
    /// shipped file), so a parse failure is a build defect and panics; never call this on
    /// input data.
    pub fn parse(file: &'static str, json: &'static str) -> ReaderSchema {
        let avro = apache_avro::Schema::parse_str(json)
            .unwrap_or_else(|e| panic!("schemas/avro/{file} is not valid Avro: {e}"));
        let fast = json
            .parse()
            .unwrap_or_else(|e| panic!("schemas/avro/{file} rejected by serde_avro_fast: {e}"));
        let full_name = avro
            .name()
            .map(|n| n.fullname(None))
            .unwrap_or_else(|| panic!("schemas/avro/{file} is not a named record"));
        ReaderSchema {
            file,
            json,
            full_name,
            avro,
            fast,
        }
    }
}

/// A model type with a compiled-in Avro schema that it round-trips through exactly.
pub trait AvroRecord: Serialize + DeserializeOwned + Send + Sync + 'static {
    fn reader_schema() -> &'static ReaderSchema;
}

macro_rules! avro_records {
    ($($ty:ty => $file:literal),* $(,)?) => {
        $(
            impl AvroRecord for $ty {
                fn reader_schema() -> &'static ReaderSchema {
                    static SCHEMA: OnceLock<ReaderSchema> = OnceLock::new();
                    SCHEMA.get_or_init(|| {
                        ReaderSchema::parse(
                            $file,
                            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/avro/", $file)),
                        )
                    })
                }
            }
        )*

        /// Every compiled-in schema.
        pub fn all() -> Vec<&'static ReaderSchema> {
            vec![$(<$ty as AvroRecord>::reader_schema()),*]
        }
    };
}

avro_records! {
    Transaction => "transaction.avsc",
    UserEvent => "user_event.avsc",
    Product => "product.avsc",
    EnrichedOrder => "enriched_order.avsc",
    FraudAlert => "fraud_alert.avsc",
    KpiRow => "kpi_row.avsc",
    DlqRecord => "dlq_record.avsc",
    LateRecord => "late_record.avsc",
    CustomerRfm => "customer_rfm.avsc",
    BusinessAlert => "business_alert.avsc",
}

/// The compiled-in schema stored under `file` (e.g. `transaction.avsc`).
pub fn by_file(file: &str) -> Option<&'static ReaderSchema> {
    all().into_iter().find(|s| s.file == file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_parses_and_is_a_shopstream_record() {
        let all = all();
        assert_eq!(all.len(), 10);
        for s in all {
            assert!(
                s.full_name.starts_with("com.shopstream."),
                "{}",
                s.full_name
            );
        }
        assert_eq!(
            Transaction::reader_schema().full_name,
            "com.shopstream.Transaction"
        );
    }
}
