//! The output size rule: an accepted transaction becomes an enriched order on
//! `shop.orders.enriched` (and maybe a fraud alert), and Kafka refuses a message larger
//! than the producer's `message.max.bytes`. A refused output makes the transaction abort,
//! and the same input fails again after the rewind: the partition would stall for good.
//! So the decision is taken here, before the engine applies the record (state, KPIs and
//! outputs agree): a transaction with more line items than `max_items` is rejected as
//! `too_many_items`, one whose outputs could encode larger than `max_output_bytes` as
//! `oversized_output`. [`output_bound`] is an upper bound, computed from the record alone
//! in one pass over its strings, of the key plus value of its enriched order and of its
//! fraud alert, in JSON and in Confluent Avro; it holds because the catalog keeps product
//! names and brands within [`MAX_CATALOG_TEXT_BYTES`] ([`bound_catalog_text`]). The check
//! itself ([`exceeds`]) reads the text only when the bound from string lengths alone
//! ([`quick_bound`]) is over the limit, so ordinary records cost a few length reads.

use crate::model::Transaction;

/// librdkafka's default `message.max.bytes`: the producer's limit unless
/// `kafka.properties` sets another.
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// What a produced record adds to its key and value on the wire (record and batch
/// headers; outputs carry no record headers), with margin.
pub const MESSAGE_OVERHEAD_BYTES: usize = 1024;

/// Most bytes a product name or brand takes in JSON (quotes and escapes included); the
/// catalog cuts longer ones ([`bound_catalog_text`]).
pub const MAX_CATALOG_TEXT_BYTES: usize = 512;

/// Everything of an enriched order or fraud alert that does not grow with the record:
/// field names, punctuation, numbers at their widest (a `Decimal` is at most 33 bytes
/// quoted, an `f64` 24, an `i64` 20), the source coordinates (a topic name is at most 249
/// bytes), fraud reasons and features, the Avro framing. The measured figure is about
/// 1.3 KiB (see the tests); the rest is margin.
const ORDER_FIXED_BYTES: usize = 8 * 1024;

/// The same per line item: the item's and the enriched item's field names, punctuation,
/// numbers and `known`. Measured: 222 bytes.
const ITEM_FIXED_BYTES: usize = 384;

/// Bytes a string takes as a JSON string: quotes, `"` and `\` escaped with a backslash,
/// control characters as `\u00XX` at worst. Avro spells it as its length and its bytes,
/// which is never more.
pub fn json_str_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Most bytes [`json_str_len`] can give for `s`: every byte a `\u00XX` escape. O(1).
fn json_str_len_cap(s: &str) -> usize {
    2 + 6 * s.len()
}

/// The bound of `t`'s outputs with `len` as the JSON length of each string: the exact
/// [`json_str_len`] for [`output_bound`], or its O(1) cap for [`quick_bound`].
fn bound_with(t: &Transaction, len: impl Fn(&str) -> usize) -> usize {
    let opt_len = |s: &Option<String>| s.as_deref().map_or(4, &len);
    let strings = [
        &t.transaction_id,
        &t.customer_id,
        &t.session_id,
        &t.currency,
        &t.payment_method,
        &t.location.country,
        &t.device.device_type,
        &t.device.os,
        &t.device.fingerprint,
        &t.ip_address,
        &t.channel,
    ];
    let order = strings.iter().map(|s| len(s)).sum::<usize>()
        + opt_len(&t.location.state)
        + opt_len(&t.location.city)
        + opt_len(&t.email);
    // The enriched item repeats the product id and adds the catalog's name and brand.
    let items = t
        .items
        .iter()
        .map(|i| {
            2 * len(&i.product_id)
                + len(&i.category)
                + 2 * MAX_CATALOG_TEXT_BYTES
                + ITEM_FIXED_BYTES
        })
        .sum::<usize>();
    // The key is the transaction id.
    t.transaction_id.len() + ORDER_FIXED_BYTES + order + items
}

/// An upper bound of the bytes (key plus value) of the enriched order or the fraud alert
/// of `t`, whichever is larger, in either output format. The fraud alert repeats only the
/// order's ids and currency, so the order's bound covers it.
pub fn output_bound(t: &Transaction) -> usize {
    bound_with(t, json_str_len)
}

/// [`output_bound`] with every string at its worst escaping: never less than it, and
/// computed from the string lengths alone, without reading the text.
pub fn quick_bound(t: &Transaction) -> usize {
    bound_with(t, json_str_len_cap)
}

/// `Some(output_bound(t))` when that exceeds `limit`, `None` otherwise. The exact pass
/// over the text runs only when [`quick_bound`] does not already fit, so the decision is
/// [`output_bound`]'s at the cost of a few length reads for ordinary records.
pub fn exceeds(t: &Transaction, limit: usize) -> Option<usize> {
    if quick_bound(t) <= limit {
        return None;
    }
    let bound = output_bound(t);
    (bound > limit).then_some(bound)
}

/// [`output_bound`] of a transaction of `items` items whose strings are all empty and
/// options unset: the least bound of that many items (`crate::limits` checks that `max_items` of them fit).
pub fn least_bound(items: usize) -> usize {
    ORDER_FIXED_BYTES
        + 11 * 2
        + 3 * 4
        + items * (3 * 2 + 2 * MAX_CATALOG_TEXT_BYTES + ITEM_FIXED_BYTES)
}

/// Cuts `s` so that [`json_str_len`] of it is at most `max` (at a character boundary);
/// true if it was cut.
pub fn truncate_json_len(s: &mut String, max: usize) -> bool {
    if json_str_len(s) <= max {
        return false;
    }
    let mut len = 2;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        let mut buf = [0u8; 4];
        len += json_str_len(c.encode_utf8(&mut buf)) - 2;
        if len > max {
            break;
        }
        end = i + c.len_utf8();
    }
    s.truncate(end);
    true
}

/// Cuts a catalog name or brand to [`MAX_CATALOG_TEXT_BYTES`]; true if it was cut.
pub fn bound_catalog_text(s: &mut String) -> bool {
    truncate_json_len(s, MAX_CATALOG_TEXT_BYTES)
}

#[cfg(test)]
mod tests;
