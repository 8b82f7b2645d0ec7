//! Keeps dead-letter and late records within the message size Kafka accepts. Both carry
//! the original record's bytes, and a DLQ or late record made from a large input (an
//! oversized record is larger than the input limit by definition; JSON output spells the
//! bytes in base64, a third larger) would be refused by the producer or the broker
//! (`message.max.bytes`, 1 MB by default). A refused record makes the transaction
//! abortable and the same input fails again after the rewind: one large poison record
//! would stop its partition for good. So the original is cut to [`MAX_ORIGINAL_BYTES`]
//! (the key to [`MAX_KEY_BYTES`]) and a DLQ record says so in its detail;
//! [`is_truncated`] lets `dlq redrive` refuse to re-submit a cut record. The strings
//! copied from a record (a DLQ record's detail quotes fields, a late record names its ids)
//! are cut too, so that either record encodes within [`MAX_DLQ_RECORD_BYTES`]
//! (`crate::limits` checks that the producer's message limit holds it).

use crate::model::{DlqRecord, LateRecord};
use crate::quality::size::truncate_json_len;

/// Most bytes of an original record value kept in a DLQ or late record.
pub const MAX_ORIGINAL_BYTES: usize = 512 * 1024;
/// Most bytes of an original record key kept in a DLQ record.
pub const MAX_KEY_BYTES: usize = 16 * 1024;
/// Most bytes a DLQ record's detail takes as a JSON string (before the note of a cut).
pub const MAX_DETAIL_BYTES: usize = 4 * 1024;
/// Most bytes a late record's ids take as JSON strings, each.
pub const MAX_ID_BYTES: usize = 4 * 1024;
/// An upper bound of a bounded DLQ or late record's key and value, in JSON or Avro
/// (the originals take 4/3 of their size in base64; see the tests).
pub const MAX_DLQ_RECORD_BYTES: usize = 768 * 1024;

const MARK: &str = " [original truncated for the DLQ: ";

/// Cuts `bytes` to `max`; the length it had when it was longer.
fn cut(bytes: &mut Vec<u8>, max: usize) -> Option<usize> {
    let len = bytes.len();
    (len > max).then(|| {
        bytes.truncate(max);
        len
    })
}

/// Bounds the original value and key of a DLQ record, noting a cut in its detail.
pub fn bound_dlq(d: &mut DlqRecord) {
    truncate_json_len(&mut d.detail, MAX_DETAIL_BYTES);
    let value = cut(&mut d.original, MAX_ORIGINAL_BYTES);
    let key = d.original_key.as_mut().and_then(|k| cut(k, MAX_KEY_BYTES));
    let mut notes = Vec::new();
    if let Some(len) = value {
        notes.push(format!(
            "value: first {MAX_ORIGINAL_BYTES} of {len} bytes kept"
        ));
    }
    if let Some(len) = key {
        notes.push(format!("key: first {MAX_KEY_BYTES} of {len} bytes kept"));
    }
    if !notes.is_empty() {
        d.detail = format!("{}{MARK}{}]", d.detail, notes.join("; "));
    }
}

/// Bounds the original value and the ids of a late record.
pub fn bound_late(l: &mut LateRecord) {
    cut(&mut l.original, MAX_ORIGINAL_BYTES);
    truncate_json_len(&mut l.record_id, MAX_ID_BYTES);
    truncate_json_len(&mut l.customer_id, MAX_ID_BYTES);
}

/// True when the DLQ record's original was cut, so it cannot be re-submitted.
pub fn is_truncated(d: &DlqRecord) -> bool {
    d.detail.contains(MARK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SourceCoord;

    fn dlq(original: usize, key: usize) -> DlqRecord {
        DlqRecord {
            original: vec![7; original],
            original_key: Some(vec![1; key]),
            reason: "oversized_record".into(),
            rule: "decode".into(),
            detail: "record of many bytes".into(),
            source: SourceCoord {
                topic: "shop.transactions".into(),
                partition: 0,
                offset: 9,
            },
        }
    }

    #[test]
    fn small_records_are_left_alone() {
        let mut d = dlq(MAX_ORIGINAL_BYTES, MAX_KEY_BYTES);
        bound_dlq(&mut d);
        assert_eq!(d, dlq(MAX_ORIGINAL_BYTES, MAX_KEY_BYTES));
        assert!(!is_truncated(&d));
    }

    #[test]
    fn large_originals_are_cut_and_marked() {
        let mut d = dlq(3_000_000, 100_000);
        bound_dlq(&mut d);
        assert_eq!(d.original.len(), MAX_ORIGINAL_BYTES);
        assert_eq!(d.original_key.as_ref().map(Vec::len), Some(MAX_KEY_BYTES));
        assert!(is_truncated(&d), "{}", d.detail);
        assert!(d.detail.contains("of 3000000 bytes kept"), "{}", d.detail);
        assert!(d.detail.contains("of 100000 bytes kept"), "{}", d.detail);
        let json = crate::codec::JsonCodec::default().encode(&d).unwrap();
        assert!(json.len() < 1_000_000, "fits Kafka's default message size");
    }

    /// Key (`topic/partition/offset`) and value, JSON or Avro, whichever is larger.
    fn encoded<T: crate::codec::schemas::AvroRecord>(v: &T, s: &SourceCoord) -> usize {
        let mut avro = Vec::new();
        crate::codec::avro::encode_framed(u32::MAX, v, &mut avro).unwrap();
        let json = crate::codec::JsonCodec::default().encode(v).unwrap();
        let key = format!("{}/{}/{}", s.topic, s.partition, s.offset).len();
        key + json.len().max(avro.len())
    }

    #[test]
    fn hostile_dlq_and_late_records_encode_within_the_bound() {
        let hostile = "\u{1}\"".repeat(400_000);
        let mut d = dlq(3_000_000, 100_000);
        d.detail = hostile.clone();
        d.source.topic = "t".repeat(249);
        d.source.offset = i64::MIN;
        bound_dlq(&mut d);
        let size = encoded(&d, &d.source);
        assert!(size <= MAX_DLQ_RECORD_BYTES, "DLQ record of {size} bytes");
        let mut l = LateRecord {
            record_id: hostile.clone(),
            customer_id: hostile,
            event_time: i64::MIN,
            watermark: i64::MIN,
            lateness_ms: i64::MIN,
            reason: "beyond_allowed_lateness".into(),
            original: vec![0xff; 3_000_000],
            source: d.source.clone(),
        };
        bound_late(&mut l);
        let size = encoded(&l, &l.source);
        assert!(size <= MAX_DLQ_RECORD_BYTES, "late record of {size} bytes");
        assert!(
            size > MAX_DLQ_RECORD_BYTES * 7 / 8,
            "the bound is tight: {size}"
        );
    }
}
