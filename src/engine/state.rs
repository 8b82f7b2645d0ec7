//! The changelog format: how engine state becomes (key, value-or-tombstone) entries on a
//! compacted changelog topic and back. Every entry carries the input position it reflects
//! ([`AppliedOffsets`]: per input partition, the next offset to apply), so a restoring
//! task can discard entries written by a transaction that never committed (on brokers that
//! do not hide aborted records) and knows exactly which input offsets it has applied.
//!
//! Keys are ASCII paths, values JSON (or binary where noted):
//! `meta/clock` (watermarks and processing-time timers), `meta/position` (applied offsets),
//! `win/<operator>/<start>/<end>/<dimension json>` (one windowed result, without its
//! distinct-member set), `wseg/<operator>/<start>/<end>/<flush seq>/<dimension json>` (the
//! members added to that result's set during one flush: binary, each customer id as its
//! LEB128 byte length followed by its UTF-8 bytes),
//! `ses/<operator>/<key json>` (the sessions of one key), `dedup/<transaction_id>` (u32 LE
//! expiry in epoch seconds), `fraud/<customer_id>` (the customer's fraud profile: binary
//! with a version byte, see `crate::fraud::profile_codec`). Replaying the entries of a
//! topic in order, last write per key winning and tombstones deleting, rebuilds the state
//! exactly.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One input partition of a task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// The input position a changelog entry reflects: for each input partition of the task,
/// the next offset to apply (last applied + 1; 0 when nothing was applied), in the task's
/// input order, the sequence number of the flush that wrote it, and the incarnation of
/// the task that flushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedOffsets {
    pub offsets: Vec<(TopicPartition, i64)>,
    pub flush_seq: u64,
    #[serde(default)]
    pub incarnation: Incarnation,
}

/// Which life of a task (or merger) wrote an entry. Every restore — a start, a
/// rebalance, an abort — begins a new incarnation: `epoch` is one more than any epoch in
/// the changelog, and `start` is the flush sequence number the state was restored at.
///
/// It tells apart two flushes with the same sequence number: an incarnation killed before
/// its flush N+1 committed leaves entries (visible on a broker that does not hide aborted
/// records) that the next incarnation's committed flush N+1 would otherwise make look
/// committed. An entry is stale when a later incarnation started before its flush.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incarnation {
    pub epoch: u64,
    pub start: u64,
}

impl AppliedOffsets {
    /// The next offset to apply for `tp`, if it is one of the inputs.
    pub fn next_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.offsets.iter().find(|(t, _)| t == tp).map(|(_, o)| *o)
    }
}

/// What the last committed transaction of a task covered: the consumer group's committed
/// (next-to-consume) offsets and, when the runtime stored it in the offsets' commit
/// metadata, the task's flush sequence number committed with them.
///
/// The sequence number matters for transactions that consumed no input (e.g. only
/// watermark-driven emissions after an idle period): their entries carry the same offsets
/// as the previous commit, so only the sequence number tells whether they committed.
/// Without it, restoring from a broker that does not hide aborted records can take such
/// an aborted processing-time-only flush as committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestorePoint {
    pub offsets: Vec<(TopicPartition, i64)>,
    pub flush_seq: Option<u64>,
}

impl RestorePoint {
    /// Whether an entry was written by a committed transaction.
    pub fn covers(&self, a: &AppliedOffsets) -> bool {
        let committed = |tp: &TopicPartition| {
            self.offsets
                .iter()
                .find(|(t, _)| t == tp)
                .map_or(0, |(_, o)| *o)
        };
        a.offsets.iter().all(|(tp, next)| *next <= committed(tp))
            && self.flush_seq.map_or(true, |seq| a.flush_seq <= seq)
    }
}

/// One changelog record. `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    /// The input position this entry reflects. Shared by all entries of one flush.
    pub applied: Arc<AppliedOffsets>,
}

/// A changelog entry that cannot be understood. Restoring stops rather than guess.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    #[error("malformed state key {0:?}")]
    BadKey(String),
    #[error("malformed state value for key {key:?}: {msg}")]
    BadValue { key: String, msg: String },
}

impl StateError {
    pub(crate) fn bad_value(key: &[u8], msg: impl ToString) -> Self {
        StateError::BadValue {
            key: String::from_utf8_lossy(key).into_owned(),
            msg: msg.to_string(),
        }
    }

    pub(crate) fn bad_key(key: &[u8]) -> Self {
        StateError::BadKey(String::from_utf8_lossy(key).into_owned())
    }

    /// The UTF-8 name after `prefix` in a changelog key (e.g. the customer of
    /// `fraud/<customer>`), or a bad-key error.
    pub(crate) fn name_after<'k>(key: &'k [u8], prefix: &str) -> Result<&'k str, Self> {
        key.strip_prefix(prefix.as_bytes())
            .and_then(|c| std::str::from_utf8(c).ok())
            .ok_or_else(|| Self::bad_key(key))
    }
}

pub(crate) const META_CLOCK: &[u8] = b"meta/clock";
pub(crate) const META_POSITION: &[u8] = b"meta/position";
pub(crate) const WINDOW_PREFIX: &str = "win/";
pub(crate) const SEGMENT_PREFIX: &str = "wseg/";
pub(crate) const SESSION_PREFIX: &str = "ses/";
pub(crate) const DEDUP_PREFIX: &str = "dedup/";

/// A flush sequence number read from `meta/position`: the next flush adds one, so the
/// last possible number (only from a damaged entry) is an error, not an overflow later.
pub(crate) fn restored_flush_seq(key: &[u8], seq: u64) -> Result<u64, StateError> {
    if seq == u64::MAX {
        return Err(StateError::bad_value(
            key,
            "flush sequence number has no successor",
        ));
    }
    Ok(seq)
}

/// Serialises a state value. Our state types serialise infallibly (string map keys only);
/// should that ever change, the error surfaces as a `StateError` rather than a panic.
pub(crate) fn to_json<T: Serialize>(key: &[u8], v: &T) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(v).map_err(|e| StateError::bad_value(key, e))
}

pub(crate) fn from_json<T: DeserializeOwned>(key: &[u8], v: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(v).map_err(|e| StateError::bad_value(key, e))
}

/// Encodes a member segment: each string as its LEB128 byte length and its UTF-8 bytes.
pub(crate) fn encode_names<'a>(names: impl IntoIterator<Item = &'a str>, out: &mut Vec<u8>) {
    for name in names {
        let mut n = name.len();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(name.as_bytes());
    }
}

/// Decodes a member segment written by [`encode_names`], calling `f` for each string.
pub(crate) fn decode_names(
    key: &[u8],
    mut v: &[u8],
    mut f: impl FnMut(&str),
) -> Result<(), StateError> {
    let bad = |msg| StateError::bad_value(key, msg);
    while !v.is_empty() {
        let (mut n, mut shift) = (0usize, 0u32);
        loop {
            let (&b, rest) = v.split_first().ok_or_else(|| bad("truncated length"))?;
            v = rest;
            if shift > 56 {
                return Err(bad("length too long"));
            }
            n |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        if n > v.len() {
            return Err(bad("truncated member"));
        }
        let (name, rest) = v.split_at(n);
        f(std::str::from_utf8(name).map_err(|_| bad("member is not UTF-8"))?);
        v = rest;
    }
    Ok(())
}

/// Where restored entries are routed: a state key with its prefix stripped.
pub(crate) fn strip<'a>(key: &'a [u8], prefix: &str) -> Option<&'a [u8]> {
    key.strip_prefix(prefix.as_bytes())
}

/// Splits `<a>/<b>/...` into its first `n` segments and the rest (which may contain '/').
pub(crate) fn split_segments(key: &[u8], n: usize) -> Option<(Vec<&str>, &[u8])> {
    let mut segs = Vec::with_capacity(n);
    let mut rest = key;
    for _ in 0..n {
        let pos = rest.iter().position(|&b| b == b'/')?;
        segs.push(std::str::from_utf8(&rest[..pos]).ok()?);
        rest = &rest[pos + 1..];
    }
    Some((segs, rest))
}

/// The committed state of a changelog, and the epoch of the incarnation that restores it.
pub struct Compacted {
    /// The latest value per key, in key order, ready to be applied.
    pub state: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    pub next_epoch: u64,
}

/// Replays changelog entries into the latest value per key, dropping entries written by
/// transactions that never committed: past the committed offsets or flush sequence, or
/// flushed by an incarnation after a later incarnation had started from an earlier flush.
/// An incarnation epoch that has no successor (`u64::MAX`, only from a damaged header) is
/// an error.
pub fn compact_committed<'a>(
    entries: impl IntoIterator<Item = &'a ChangelogEntry>,
    committed: &RestorePoint,
) -> Result<Compacted, StateError> {
    let entries: Vec<&ChangelogEntry> = entries.into_iter().collect();
    let mut starts = std::collections::BTreeMap::<u64, u64>::new();
    for e in &entries {
        let i = e.applied.incarnation;
        let start = starts.entry(i.epoch).or_insert(i.start);
        *start = (*start).min(i.start);
    }
    // For each epoch, the earliest flush a later incarnation started from.
    let mut superseded_after = std::collections::HashMap::new();
    let mut earliest_later = u64::MAX;
    for (epoch, start) in starts.iter().rev() {
        superseded_after.insert(*epoch, earliest_later);
        earliest_later = earliest_later.min(*start);
    }
    let mut state = std::collections::BTreeMap::new();
    for e in entries {
        let limit = superseded_after[&e.applied.incarnation.epoch];
        if !committed.covers(&e.applied) || e.applied.flush_seq > limit {
            continue;
        }
        match &e.value {
            Some(v) => {
                state.insert(e.key.clone(), v.clone());
            }
            None => {
                state.remove(&e.key);
            }
        }
    }
    let next_epoch = match starts.keys().next_back() {
        None => 1,
        Some(e) => e.checked_add(1).ok_or_else(|| {
            StateError::bad_value(
                b"ss-applied",
                format!("incarnation epoch {e} has no successor"),
            )
        })?,
    };
    Ok(Compacted { state, next_epoch })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_segments_round_trip_and_reject_garbage() {
        let long = "x".repeat(300);
        let names = ["customer-1", "", "é", long.as_str()];
        let mut v = Vec::new();
        encode_names(names, &mut v);
        let mut back = Vec::new();
        decode_names(b"k", &v, |s| back.push(s.to_owned())).unwrap();
        assert_eq!(back, names);
        assert!(decode_names(b"k", &v[..v.len() - 1], |_| {}).is_err());
        assert!(decode_names(b"k", &[0x80], |_| {}).is_err());
        assert!(decode_names(b"k", &[1, 0xff], |_| {}).is_err());
        assert!(decode_names(b"k", &[0xff; 12], |_| {}).is_err());
    }

    #[test]
    fn split_keeps_slashes_in_the_tail() {
        let (segs, rest) = split_segments(b"op/1/2/\"a/b\"", 3).unwrap();
        assert_eq!(segs, vec!["op", "1", "2"]);
        assert_eq!(rest, b"\"a/b\"");
        assert!(split_segments(b"op/1", 3).is_none());
    }

    #[test]
    fn compaction_skips_uncommitted_and_applies_tombstones() {
        let tp = TopicPartition::new("t", 0);
        let at = |o, seq| {
            Arc::new(AppliedOffsets {
                offsets: vec![(tp.clone(), o)],
                flush_seq: seq,
                incarnation: Incarnation::default(),
            })
        };
        let e = |k: &str, v: Option<&str>, o, seq| ChangelogEntry {
            key: k.as_bytes().to_vec(),
            value: v.map(|v| v.as_bytes().to_vec()),
            applied: at(o, seq),
        };
        let log = vec![
            e("a", Some("1"), 5, 1),
            e("b", Some("2"), 5, 1),
            e("a", None, 10, 2),
            e("b", Some("3"), 11, 3), // a transaction that did not commit
            e("c", Some("4"), 10, 3), // an input-free one that did not commit either
        ];
        let point = |seq| RestorePoint {
            offsets: vec![(tp.clone(), 10)],
            flush_seq: seq,
        };
        let state = compact_committed(&log, &point(Some(2))).unwrap().state;
        assert_eq!(state.len(), 1);
        assert_eq!(state.get(&b"b"[..]), Some(&b"2".to_vec()));
        // Without the sequence number only the offsets decide: "c" is taken.
        assert_eq!(
            compact_committed(&log, &point(None)).unwrap().state.len(),
            2
        );
    }

    #[test]
    fn a_dead_incarnations_flush_stays_stale_after_its_number_commits() {
        let tp = TopicPartition::new("t", 0);
        let e = |k: &str, o, seq, epoch, start| ChangelogEntry {
            key: k.as_bytes().to_vec(),
            value: Some(k.as_bytes().to_vec()),
            applied: Arc::new(AppliedOffsets {
                offsets: vec![(tp.clone(), o)],
                flush_seq: seq,
                incarnation: Incarnation { epoch, start },
            }),
        };
        let log = vec![
            e("first", 5, 1, 1, 0),    // incarnation 1 commits flush 1 …
            e("stale", 8, 2, 1, 0),    // … and is killed before flush 2 commits
            e("dead", 9, 2, 2, 1),     // incarnation 2 restores at 1, dies too
            e("second", 12, 2, 3, 1),  // incarnation 3 restores at 1, commits flush 2
            e("third", 14, 3, 3, 1),   // and flush 3
            e("aborted", 16, 4, 3, 1), // whose flush 4 aborts
            e("fourth", 16, 4, 4, 3),  // incarnation 4 restores at 3, commits flush 4
        ];
        let committed = RestorePoint {
            offsets: vec![(tp.clone(), 16)],
            flush_seq: Some(4),
        };
        let c = compact_committed(&log, &committed).unwrap();
        let keys: Vec<_> = c.state.keys().map(|k| String::from_utf8_lossy(k)).collect();
        assert_eq!(keys, ["first", "fourth", "second", "third"]);
        assert_eq!(c.next_epoch, 5);
        assert_eq!(compact_committed(&[], &committed).unwrap().next_epoch, 1);
        // A damaged header with the last possible epoch: an error, not an overflow.
        let damaged = [e("x", 1, 1, u64::MAX, 0)];
        let err = compact_committed(&damaged, &committed).err().unwrap();
        assert!(err.to_string().contains("no successor"), "{err}");
    }
}
