//! Start-up check of the message size limits, so that no output can be refused by the
//! producer mid-run (which would abort the transaction again after every rewind and stall
//! the partition). The producer's limit is `kafka.properties."message.max.bytes"`, or
//! librdkafka's default of 1 000 000. Accepted transactions' outputs are bounded by
//! `engine.quality.max_output_bytes` (the `oversized_output` rule), which must leave room
//! for a record's framing within that limit; dead-letter and late records are bounded by
//! `dlq::bound` to [`MAX_DLQ_RECORD_BYTES`], which the limit must hold too. A bad
//! combination fails [`check_limits`] and the process exits with code 2, naming the keys.

use crate::config::Config;
use crate::dlq::bound::MAX_DLQ_RECORD_BYTES;
use crate::quality::size::{least_bound, DEFAULT_MESSAGE_MAX_BYTES, MESSAGE_OVERHEAD_BYTES};

/// The smallest `engine.quality.max_output_bytes` accepted: below it plain orders of a few
/// dozen items would be rejected (a unit slip such as `1000` for 1 MB).
pub const MIN_OUTPUT_BYTES: usize = 64 * 1024;

/// The producer's message limit of this configuration.
pub fn message_max_bytes(config: &Config) -> Result<usize, String> {
    match config.kafka.properties.get("message.max.bytes") {
        None => Ok(DEFAULT_MESSAGE_MAX_BYTES),
        Some(v) => v.trim().parse().map_err(|_| {
            format!("key `kafka.properties.message.max.bytes`: {v:?} is not a number of bytes")
        }),
    }
}

/// Checks that every output fits the producer's message limit.
pub fn check_limits(config: &Config) -> Result<(), String> {
    let limit = message_max_bytes(config)?;
    let q = &config.engine.quality;
    let room = limit.saturating_sub(MESSAGE_OVERHEAD_BYTES);
    if q.max_output_bytes > room {
        return Err(format!(
            "key `engine.quality.max_output_bytes`: {} does not fit the producer's message limit \
             (kafka.properties.message.max.bytes = {limit}, minus {MESSAGE_OVERHEAD_BYTES} bytes \
             of framing: at most {room})",
            q.max_output_bytes
        ));
    }
    if q.max_output_bytes < MIN_OUTPUT_BYTES {
        return Err(format!(
            "key `engine.quality.max_output_bytes`: {} is below {MIN_OUTPUT_BYTES}",
            q.max_output_bytes
        ));
    }
    if room < MAX_DLQ_RECORD_BYTES {
        return Err(format!(
            "key `kafka.properties.message.max.bytes`: {limit} cannot hold a dead-letter record \
             ({MAX_DLQ_RECORD_BYTES} bytes at most, plus {MESSAGE_OVERHEAD_BYTES} of framing)"
        ));
    }
    if q.max_items == 0 {
        return Err("key `engine.quality.max_items`: must be at least 1".into());
    }
    let least = least_bound(q.max_items);
    if least > q.max_output_bytes {
        return Err(format!(
            "key `engine.quality.max_items`: {} items may take {least} bytes, more than \
             engine.quality.max_output_bytes ({}): lower it or raise the byte limit",
            q.max_items, q.max_output_bytes
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(message_max: Option<&str>, max_output: usize) -> Config {
        let mut c = Config::default();
        if let Some(v) = message_max {
            c.kafka
                .properties
                .insert("message.max.bytes".into(), v.into());
        }
        c.engine.quality.max_output_bytes = max_output;
        c
    }

    #[test]
    fn the_defaults_fit() {
        check_limits(&Config::default()).unwrap();
        assert_eq!(message_max_bytes(&Config::default()), Ok(1_000_000));
    }

    #[test]
    fn outputs_larger_than_the_message_limit_are_refused() {
        let e = check_limits(&with(None, 1_000_000)).unwrap_err();
        assert!(e.contains("engine.quality.max_output_bytes"), "{e}");
        check_limits(&with(Some("4000000"), 3_000_000)).unwrap();
        let e = check_limits(&with(Some("2000000"), 3_000_000)).unwrap_err();
        assert!(e.contains("at most 1998976"), "{e}");
    }

    #[test]
    fn a_limit_too_small_for_dlq_records_or_garbage_is_refused() {
        let e = check_limits(&with(Some("500000"), 100_000)).unwrap_err();
        assert!(e.contains("kafka.properties.message.max.bytes"), "{e}");
        let e = check_limits(&with(Some("1MB"), 100_000)).unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        let e = check_limits(&with(None, 1_000)).unwrap_err();
        assert!(e.contains("below"), "{e}");
        let mut c = Config::default();
        c.engine.quality.max_items = 0;
        assert!(check_limits(&c).unwrap_err().contains("max_items"));
        c.engine.quality.max_items = 1_000;
        let e = check_limits(&c).unwrap_err();
        assert!(e.contains("1000 items may take"), "{e}");
    }
}
