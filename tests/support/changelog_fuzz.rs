//! Shared by the changelog fuzz targets (tests/fuzz_changelog.rs for stage-1 tasks,
//! tests/fuzz_merge_changelog.rs for stage-2 mergers): a changelog as the records the
//! changelog topic holds ([`Wire`]: key, payload, `ss-applied` header), the ways a broken
//! or hostile topic could corrupt them ([`Corruption`]), and the runtime's own decoding of
//! the records back into engine entries (`runtime::changelog::EntryDecoder`), so that a
//! bad header is exercised exactly as a restore meets it. Included with `#[path]`.
#![allow(dead_code)]

use proptest::prelude::*;
use shopstream::engine::ChangelogEntry;
use shopstream::runtime::changelog::{applied_json, EntryDecoder, EntryError};

/// A small deterministic generator for the base runs (fixed seed, no proptest input).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
}

/// `n` engine test steps drawn from an [`Lcg`] seeded with `seed`: the deterministic
/// stream the fuzz targets' base changelogs come from.
pub fn seeded_choices(seed: u64, n: usize) -> Vec<crate::engine_common::Choice> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            let raw: Vec<u64> = (0..7).map(|_| rng.next()).collect();
            crate::engine_common::Choice::from_raw(
                raw[0],
                raw[1] % 1_500,
                raw[2] % (crate::engine_common::OOO as u64 + 1),
                raw[3] % 40,
                raw[4],
                raw[5] % 25_000,
                raw[6] as usize,
            )
        })
        .collect()
}

/// One changelog record as it sits on the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub header: Option<Vec<u8>>,
}

/// The records a runtime would produce for `log`.
pub fn to_wire(log: &[ChangelogEntry]) -> Vec<Wire> {
    log.iter()
        .map(|e| Wire {
            key: Some(e.key.clone()),
            payload: e.value.clone(),
            header: Some(applied_json(&e.applied)),
        })
        .collect()
}

/// Decodes the records as a restore does: the first undecodable one stops it.
pub fn decode(wire: &[Wire]) -> Result<Vec<ChangelogEntry>, EntryError> {
    let mut decoder = EntryDecoder::default();
    wire.iter()
        .map(|w| decoder.decode(w.key.as_deref(), w.payload.as_deref(), w.header.as_deref()))
        .collect()
}

/// Numbers that break arithmetic on decoded fields (overflow, negative offsets).
pub const EXTREMES: [&str; 7] = [
    "0",
    "-1",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967295",
    "1e300",
];

/// Which part of a record a mutation hits.
#[derive(Debug, Clone, Copy)]
pub enum Part {
    Key,
    Payload,
    Header,
}

fn part(w: &mut Wire, p: Part) -> &mut Option<Vec<u8>> {
    match p {
        Part::Key => &mut w.key,
        Part::Payload => &mut w.payload,
        Part::Header => &mut w.header,
    }
}

/// One corruption of a changelog.
#[derive(Debug, Clone)]
pub enum Corruption {
    /// XOR one byte (never with 0).
    Flip {
        part: Part,
        entry: usize,
        at: usize,
        byte: u8,
    },
    /// Keep only a prefix.
    Cut { part: Part, entry: usize, at: usize },
    /// Replace by arbitrary bytes.
    Replace {
        part: Part,
        entry: usize,
        bytes: Vec<u8>,
    },
    /// Insert arbitrary bytes.
    Splice {
        part: Part,
        entry: usize,
        at: usize,
        bytes: Vec<u8>,
    },
    /// Remove: a tombstone, a record without key, or without the header.
    Drop { part: Part, entry: usize },
    /// Replace the `nth` number (digit run) by one of [`EXTREMES`].
    Extreme {
        part: Part,
        entry: usize,
        nth: usize,
        pick: usize,
    },
    /// Another record's value under this key (type confusion).
    MoveValue { from: usize, to: usize },
    /// The record twice, the second copy at the end (a replayed, reordered write).
    Repeat { entry: usize },
}

fn a_part() -> impl Strategy<Value = Part> {
    prop_oneof![Just(Part::Key), Just(Part::Payload), Just(Part::Header)]
}

pub fn corruption() -> impl Strategy<Value = Corruption> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..48);
    prop_oneof![
        (a_part(), any::<usize>(), any::<usize>(), any::<u8>()).prop_map(
            |(part, entry, at, byte)| Corruption::Flip {
                part,
                entry,
                at,
                byte
            }
        ),
        (a_part(), any::<usize>(), any::<usize>()).prop_map(|(part, entry, at)| Corruption::Cut {
            part,
            entry,
            at
        }),
        (a_part(), any::<usize>(), bytes()).prop_map(|(part, entry, bytes)| Corruption::Replace {
            part,
            entry,
            bytes
        }),
        (a_part(), any::<usize>(), any::<usize>(), bytes()).prop_map(|(part, entry, at, bytes)| {
            Corruption::Splice {
                part,
                entry,
                at,
                bytes,
            }
        }),
        (a_part(), any::<usize>()).prop_map(|(part, entry)| Corruption::Drop { part, entry }),
        (a_part(), any::<usize>(), 0usize..12, any::<usize>()).prop_map(
            |(part, entry, nth, pick)| Corruption::Extreme {
                part,
                entry,
                nth,
                pick
            }
        ),
        (any::<usize>(), any::<usize>()).prop_map(|(from, to)| Corruption::MoveValue { from, to }),
        any::<usize>().prop_map(|entry| Corruption::Repeat { entry }),
    ]
}

/// Byte ranges of the digit runs of `b` (an optional leading '-' included).
fn numbers(b: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
            let mut end = i;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            runs.push((start, end));
            i = end;
        } else {
            i += 1;
        }
    }
    runs
}

pub fn corrupt(log: &mut Vec<Wire>, c: &Corruption) {
    let n = log.len();
    if n == 0 {
        return;
    }
    match c {
        Corruption::Flip {
            part: p,
            entry,
            at,
            byte,
        } => {
            if let Some(v) = part(&mut log[entry % n], *p)
                .as_mut()
                .filter(|v| !v.is_empty())
            {
                let i = at % v.len();
                v[i] ^= byte | 1;
            }
        }
        Corruption::Cut { part: p, entry, at } => {
            if let Some(v) = part(&mut log[entry % n], *p).as_mut() {
                let keep = at % (v.len() + 1);
                v.truncate(keep);
            }
        }
        Corruption::Replace {
            part: p,
            entry,
            bytes,
        } => *part(&mut log[entry % n], *p) = Some(bytes.clone()),
        Corruption::Splice {
            part: p,
            entry,
            at,
            bytes,
        } => {
            if let Some(v) = part(&mut log[entry % n], *p).as_mut() {
                let i = at % (v.len() + 1);
                v.splice(i..i, bytes.iter().copied());
            }
        }
        Corruption::Drop { part: p, entry } => *part(&mut log[entry % n], *p) = None,
        Corruption::Extreme {
            part: p,
            entry,
            nth,
            pick,
        } => {
            if let Some(v) = part(&mut log[entry % n], *p).as_mut() {
                let runs = numbers(v);
                if !runs.is_empty() {
                    let (start, end) = runs[nth % runs.len()];
                    let x = EXTREMES[pick % EXTREMES.len()].bytes();
                    v.splice(start..end, x);
                }
            }
        }
        Corruption::MoveValue { from, to } => log[to % n].payload = log[from % n].payload.clone(),
        Corruption::Repeat { entry } => {
            let again = log[entry % n].clone();
            log.push(again);
        }
    }
}

/// Every [`Corruption::Extreme`] of the last record of each `meta/` key (value and
/// header; the earlier ones are overwritten on restore), one at a time: the numbers that
/// drive arithmetic on restore (sequence numbers, offsets, epochs, watermarks) are too
/// few among all entries for random picks to hit them all.
pub fn meta_extremes(log: &[Wire]) -> Vec<Vec<Wire>> {
    let mut out = Vec::new();
    for (entry, w) in log.iter().enumerate() {
        let is_meta = w.key.as_deref().unwrap_or_default().starts_with(b"meta/");
        if !is_meta || log[entry + 1..].iter().any(|later| later.key == w.key) {
            continue;
        }
        for p in [Part::Payload, Part::Header] {
            let runs = part(&mut w.clone(), p)
                .as_deref()
                .map_or(0, |v| numbers(v).len());
            for nth in 0..runs {
                for pick in 0..EXTREMES.len() {
                    let mut copy = log.to_vec();
                    corrupt(
                        &mut copy,
                        &Corruption::Extreme {
                            part: p,
                            entry,
                            nth,
                            pick,
                        },
                    );
                    out.push(copy);
                }
            }
        }
    }
    out
}
