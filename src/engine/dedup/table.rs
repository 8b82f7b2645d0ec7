//! A compact, exact open-addressing set of 128-bit ids with a u32 expiry each: 20 bytes per
//! slot (four u32 key words and the expiry, 4-byte aligned) plus a one-byte tag per slot
//! in a separate array (0 for an empty slot, else 0x80 | 7 bits of the id's hash), a
//! non-power-of-two capacity mapped with fastrange, linear probing and backward-shift
//! deletion (no tombstones). A lookup scans the tags eight at a time and reads a slot only
//! when its tag matches, so a miss — every new id — usually touches one cache line of tags
//! and no slot. The table grows by 1.35× at 90 % load and shrinks when far below it, so it
//! never holds more than 21 × 1.35 / 0.9 ≈ 31.5 bytes per live id (above a small minimum
//! size); an empty table allocates nothing. Keys are compared in full: a hash or tag
//! collision costs a probe, never a false match. Expired entries are removed by an
//! incremental sweep with a cursor.

/// One slot: the id's four 32-bit words and its expiry; expiry 0 marks an empty slot.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
struct Slot {
    key: [u32; 4],
    expiry: u32,
}

const MIN_CAPACITY: usize = 64;
const MAX_LOAD_NUM: usize = 9;
const MAX_LOAD_DEN: usize = 10;
const GROWTH_NUM: usize = 27;
const GROWTH_DEN: usize = 20;

/// Tags read at once; the tag array repeats its first `GROUP` tags at the end so that a
/// group starting at any slot can be read without wrapping.
const GROUP: usize = 8;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

fn split(k: u128) -> [u32; 4] {
    [
        (k >> 96) as u32,
        (k >> 64) as u32,
        (k >> 32) as u32,
        k as u32,
    ]
}

fn join(w: [u32; 4]) -> u128 {
    (u128::from(w[0]) << 96)
        | (u128::from(w[1]) << 64)
        | (u128::from(w[2]) << 32)
        | u128::from(w[3])
}

/// The tag of a full slot: the low 7 bits of the hash (the slot index comes from the high
/// bits) with bit 7 set.
#[inline]
fn tag_of(hash: u64) -> u8 {
    0x80 | (hash as u8 & 0x7f)
}

/// Bit 7 set in each byte of `group` equal to `tag` (exact: no borrow crosses bytes).
#[inline]
fn match_tag(group: u64, tag: u8) -> u64 {
    let y = group ^ (u64::from(tag) * ONES);
    !(((y & !HIGH) + !HIGH) | y) & HIGH
}

/// Bit 7 set in each empty byte of `group` (full tags have bit 7 set, empty ones are 0).
#[inline]
fn match_empty(group: u64) -> u64 {
    !group & HIGH
}

/// The id of a table lookup: its bits and its hash under the table's hasher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashed {
    key: u128,
    hash: u64,
}

impl Hashed {
    /// The id.
    pub fn key(&self) -> u128 {
        self.key
    }
}

/// A keyed hash of 128-bit ids: one 64 × 64 → 128-bit multiply of the two halves, each
/// mixed with a per-table random key, folded to 64 bits (as foldhash hashes u128).
#[derive(Clone, Copy)]
struct IdHasher {
    k0: u64,
    k1: u64,
}

impl IdHasher {
    fn random() -> Self {
        let s = ahash::RandomState::new();
        IdHasher {
            k0: s.hash_one(0u64),
            k1: s.hash_one(1u64),
        }
    }

    #[inline]
    fn hash(&self, key: u128) -> u64 {
        let p = u128::from(key as u64 ^ self.k0) * u128::from((key >> 64) as u64 ^ self.k1);
        p as u64 ^ (p >> 64) as u64
    }
}

/// Exact set of u128 ids, each with a nonzero u32 expiry.
pub struct IdTable {
    slots: Box<[Slot]>,
    /// One tag per slot, then the first `GROUP` tags again (empty when `slots` is).
    tags: Box<[u8]>,
    len: usize,
    hasher: IdHasher,
    cursor: usize,
}

impl Default for IdTable {
    fn default() -> Self {
        IdTable {
            slots: Box::new([]),
            tags: Box::new([]),
            len: 0,
            hasher: IdHasher::random(),
            cursor: 0,
        }
    }
}

impl IdTable {
    fn alloc(cap: usize) -> (Box<[Slot]>, Box<[u8]>) {
        (
            vec![Slot::default(); cap].into_boxed_slice(),
            vec![0u8; cap + GROUP].into_boxed_slice(),
        )
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the slot and tag arrays (the table's whole heap footprint).
    pub fn allocated_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>() + self.tags.len()
    }

    /// `key` with its hash, for the lookups below.
    #[inline]
    pub fn hashed(&self, key: u128) -> Hashed {
        Hashed {
            key,
            hash: self.hasher.hash(key),
        }
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.slots.len() as u128) >> 64) as usize
    }

    #[inline]
    fn wrap(&self, i: usize) -> usize {
        if i >= self.slots.len() {
            i - self.slots.len()
        } else {
            i
        }
    }

    #[inline]
    fn next(&self, i: usize) -> usize {
        self.wrap(i + 1)
    }

    /// The `GROUP` tags from slot `i` on (wrapping around).
    #[inline]
    fn group(&self, i: usize) -> u64 {
        let mut g = [0; GROUP];
        g.copy_from_slice(&self.tags[i..i + GROUP]);
        u64::from_le_bytes(g)
    }

    #[inline]
    fn set_tag(&mut self, i: usize, tag: u8) {
        self.tags[i] = tag;
        if i < GROUP {
            let n = self.slots.len();
            self.tags[n + i] = tag;
        }
    }

    /// `Ok(index)` of `h` if present, else `Err(index)` of the empty slot where it would
    /// go. The table must not be empty.
    #[inline]
    fn find(&self, h: Hashed) -> Result<usize, usize> {
        let words = split(h.key);
        let tag = tag_of(h.hash);
        let mut i = self.home(h.hash);
        loop {
            let g = self.group(i);
            let empty = match_empty(g);
            // Only tags before the first empty slot belong to the probe sequence.
            let mut m = match_tag(g, tag) & (empty & empty.wrapping_neg()).wrapping_sub(1);
            while m != 0 {
                let j = self.wrap(i + m.trailing_zeros() as usize / 8);
                if self.slots[j].key == words {
                    return Ok(j);
                }
                m &= m - 1;
            }
            if empty != 0 {
                return Err(self.wrap(i + empty.trailing_zeros() as usize / 8));
            }
            i = self.wrap(i + GROUP);
        }
    }

    /// The first empty slot from the home of `hash` on (where a key known to be absent
    /// goes).
    #[inline]
    fn first_empty(&self, hash: u64) -> usize {
        let mut i = self.home(hash);
        loop {
            let empty = match_empty(self.group(i));
            if empty != 0 {
                return self.wrap(i + empty.trailing_zeros() as usize / 8);
            }
            i = self.wrap(i + GROUP);
        }
    }

    /// Hints the CPU to load the tags and the home slot of `h`, so that a lookup issued a
    /// little later (after validating the record) does not wait for memory.
    #[inline]
    pub fn prefetch(&self, h: Hashed) {
        #[cfg(target_arch = "x86_64")]
        if !self.slots.is_empty() {
            let i = self.home(h.hash);
            let (t, s) = (self.tags[i..].as_ptr(), self.slots[i..].as_ptr());
            // SAFETY: prefetching is only a hint; it cannot fault, and both pointers point
            // into their arrays anyway.
            #[allow(unused_unsafe)]
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(t.cast::<i8>());
                _mm_prefetch::<_MM_HINT_T0>(s.cast::<i8>());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }

    /// The expiry of `key`, if present.
    #[inline]
    pub fn get(&self, key: u128) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        self.find(self.hashed(key))
            .ok()
            .map(|i| self.slots[i].expiry)
    }

    /// Whether `h` is present with an expiry after `now`; if not, inserts it (or replaces
    /// its expired entry) with `expiry`, exactly as [`Self::insert`] would. One probe
    /// sequence in the common cases.
    #[inline]
    pub fn check_insert(&mut self, h: Hashed, now: u32, expiry: u32) -> bool {
        let mut found = if self.slots.is_empty() {
            None
        } else {
            Some(self.find(h))
        };
        if let Some(Ok(i)) = found {
            if self.slots[i].expiry > now {
                return true;
            }
        }
        if self.needs_growth() {
            self.grow();
            found = Some(self.find(h));
        }
        match found {
            Some(Ok(i)) => self.slots[i].expiry = expiry.max(1),
            Some(Err(i)) => self.place(i, h, expiry),
            None => unreachable!("a table that needed no growth is not empty"),
        }
        false
    }

    #[inline]
    fn needs_growth(&self) -> bool {
        (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM
    }

    fn grow(&mut self) {
        self.resize(self.slots.len() * GROWTH_NUM / GROWTH_DEN + 1);
    }

    #[inline]
    fn place(&mut self, i: usize, h: Hashed, expiry: u32) {
        self.slots[i] = Slot {
            key: split(h.key),
            expiry: expiry.max(1),
        };
        self.set_tag(i, tag_of(h.hash));
        self.len += 1;
    }

    /// Inserts `key` or replaces its expiry. `expiry` must be nonzero (0 is clamped to 1).
    #[inline]
    pub fn insert(&mut self, key: u128, expiry: u32) {
        if self.needs_growth() {
            self.grow();
        }
        let h = self.hashed(key);
        match self.find(h) {
            Ok(i) => self.slots[i].expiry = expiry.max(1),
            Err(i) => self.place(i, h, expiry),
        }
    }

    fn resize(&mut self, cap: usize) {
        let (slots, tags) = Self::alloc(cap.max(MIN_CAPACITY));
        let old = std::mem::replace(&mut self.slots, slots);
        self.tags = tags;
        self.cursor = 0;
        for s in old.iter().filter(|s| s.expiry != 0) {
            let hash = self.hasher.hash(join(s.key));
            let i = self.first_empty(hash);
            self.slots[i] = *s;
            self.set_tag(i, tag_of(hash));
        }
    }

    /// Removes the entry at `i` and shifts the following cluster back so every entry stays
    /// reachable from its home slot.
    fn remove_at(&mut self, mut i: usize) {
        let mut j = self.next(i);
        while self.tags[j] != 0 {
            let home = self.home(self.hasher.hash(join(self.slots[j].key)));
            // The entry at j may move to i iff its home is not in the cyclic range (i, j].
            let in_range = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !in_range {
                self.slots[i] = self.slots[j];
                self.set_tag(i, self.tags[j]);
                i = j;
            }
            j = self.next(j);
        }
        self.slots[i] = Slot::default();
        self.set_tag(i, 0);
        self.len -= 1;
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: u128) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        match self.find(self.hashed(key)) {
            Ok(i) => {
                self.remove_at(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Examines up to `budget` slots from the sweep cursor and removes entries whose
    /// expiry is `<= now`, reporting each removed id to `removed`. Shrinks the table when
    /// a full pass leaves it far below its load limit.
    pub fn sweep(&mut self, now: u32, budget: usize, mut removed: impl FnMut(u128)) {
        if self.slots.is_empty() {
            return;
        }
        for _ in 0..budget {
            let i = self.cursor;
            let s = self.slots[i];
            if s.expiry != 0 && s.expiry <= now {
                removed(join(s.key));
                // Backward shift may move an unexamined entry into slot i: look at i again.
                self.remove_at(i);
                continue;
            }
            self.cursor = self.next(i);
            if self.cursor == 0 {
                self.maybe_shrink();
                return;
            }
        }
    }

    fn maybe_shrink(&mut self) {
        let cap = self.slots.len();
        // Shrink when even after one growth step back the load would stay below the
        // post-growth load (0.9 / 1.35 ≈ 0.67): then the bytes-per-id bound holds again.
        let target = (self.len * MAX_LOAD_DEN * GROWTH_NUM).div_ceil(MAX_LOAD_NUM * GROWTH_DEN);
        if cap > MIN_CAPACITY && target * GROWTH_NUM / GROWTH_DEN < cap {
            self.resize(target.max(MIN_CAPACITY));
        }
    }

    /// All entries, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u128, u32)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.expiry != 0)
            .map(|s| (join(s.key), s.expiry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn slot_is_twenty_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 20);
    }

    #[test]
    fn behaves_like_a_map_under_random_operations() {
        // Small key space forces collisions, clusters, wrap-around and backward shifts.
        let mut t = IdTable::default();
        let mut m: HashMap<u128, u32> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = u128::from(x % 5_000) << 64 | u128::from(x % 7);
            match x % 5 {
                0 => {
                    let e = (step % 1000) + 1;
                    t.insert(key, e);
                    m.insert(key, e);
                }
                1 => {
                    let (now, e) = (step % 1000, step % 1000 + 500);
                    let live = m.get(&key).is_some_and(|&old| old > now);
                    assert_eq!(t.check_insert(t.hashed(key), now, e), live);
                    if !live {
                        m.insert(key, e);
                    }
                }
                2 => assert_eq!(t.remove(key), m.remove(&key).is_some()),
                _ => assert_eq!(t.get(key), m.get(&key).copied()),
            }
            assert_eq!(t.len(), m.len());
        }
        for (k, e) in &m {
            assert_eq!(t.get(*k), Some(*e));
        }
    }

    #[test]
    fn sweep_removes_exactly_the_expired() {
        let mut t = IdTable::default();
        for k in 0..10_000u128 {
            t.insert(k * 0x1_0000_0001, (k % 100 + 1) as u32);
        }
        let mut gone = Vec::new();
        for _ in 0..100 {
            t.sweep(50, 1_000, |k| gone.push(k));
        }
        assert_eq!(gone.len(), 5_000);
        assert_eq!(t.len(), 5_000);
        for k in 0..10_000u128 {
            let present = t.get(k * 0x1_0000_0001).is_some();
            assert_eq!(present, k % 100 + 1 > 50, "key {k}");
        }
        // shrinking kept the bound
        assert!(t.allocated_bytes() <= 32 * t.len());
    }
}
