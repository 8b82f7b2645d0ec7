//! Keeps dead-letter and late records within the message size Kafka accepts. Both carry
//! the original record's bytes, and a DLQ or late record made from a large input (an
//! oversized record is larger than the input limit by definition; JSON output spells the
//! bytes in base64, a third larger) would be refused by the producer or the broker
//! (`message.max.bytes`, 1 MB by default). A refused record makes the transaction
//! abortable and the same input fails again after the rewind: one large poison record
//! would stop its partition for good. So the original is cut to [`MAX_ORIGINAL_BYTES`]
//! (the key to [`MAX_KEY_BYTES`]) and a DLQ record says so in its detail;
//! [`is_truncated`] lets `dlq redrive` refuse to re-submit a cut record.

use crate::model::{DlqRecord, LateRecord};

/// Most bytes of an original record value kept in a DLQ or late record.
pub const MAX_ORIGINAL_BYTES: usize = 512 * 1024;
/// Most bytes of an original record key kept in a DLQ record.
pub const MAX_KEY_BYTES: usize = 16 * 1024;

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

/// Bounds the original value of a late record.
pub fn bound_late(l: &mut LateRecord) {
    cut(&mut l.original, MAX_ORIGINAL_BYTES);
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
}
