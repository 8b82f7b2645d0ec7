//! A compact, exact open-addressing set of 128-bit ids with a u32 expiry each: 20 bytes per
//! slot (four u32 key words and the expiry, 4-byte aligned), a non-power-of-two capacity
//! mapped with fastrange, linear probing and backward-shift deletion (no tombstones). The
//! table grows by 1.4× at 90 % load and shrinks when far below it, so it never holds more
//! than 20 × 1.4 / 0.9 ≈ 31 bytes per live id (above a small minimum size). Keys are
//! compared in full: a hash collision costs a probe, never a false match. Expired entries
//! are removed by an incremental sweep with a cursor.

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
const GROWTH_NUM: usize = 7;
const GROWTH_DEN: usize = 5;

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

/// Exact set of u128 ids, each with a nonzero u32 expiry.
pub struct IdTable {
    slots: Box<[Slot]>,
    len: usize,
    hasher: ahash::RandomState,
    cursor: usize,
}

impl Default for IdTable {
    fn default() -> Self {
        Self::with_capacity(MIN_CAPACITY)
    }
}

impl IdTable {
    fn with_capacity(cap: usize) -> Self {
        IdTable {
            slots: vec![Slot::default(); cap.max(MIN_CAPACITY)].into_boxed_slice(),
            len: 0,
            hasher: ahash::RandomState::new(),
            cursor: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the slot array (the table's whole heap footprint).
    pub fn allocated_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
    }

    #[inline]
    fn home(&self, key: u128) -> usize {
        let h = self.hasher.hash_one(key);
        ((u128::from(h) * self.slots.len() as u128) >> 64) as usize
    }

    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// Index of `key` if present.
    #[inline]
    fn find(&self, key: u128) -> Result<usize, usize> {
        let words = split(key);
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            if s.expiry == 0 {
                return Err(i);
            }
            if s.key == words {
                return Ok(i);
            }
            i = self.next(i);
        }
    }

    /// Hints the CPU to load the home slot of `key`, so that a lookup issued a little later
    /// (after validating the record) does not wait for memory.
    #[inline]
    pub fn prefetch(&self, key: u128) {
        #[cfg(target_arch = "x86_64")]
        {
            let p = self.slots[self.home(key)..].as_ptr();
            // SAFETY: prefetching is only a hint; it cannot fault, and `p` points into
            // the slot array anyway.
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p.cast::<i8>(),
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    /// The expiry of `key`, if present.
    #[inline]
    pub fn get(&self, key: u128) -> Option<u32> {
        self.find(key).ok().map(|i| self.slots[i].expiry)
    }

    /// Inserts `key` or replaces its expiry. `expiry` must be nonzero (0 is clamped to 1).
    #[inline]
    pub fn insert(&mut self, key: u128, expiry: u32) {
        if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
            self.resize(self.slots.len() * GROWTH_NUM / GROWTH_DEN + 1);
        }
        let expiry = expiry.max(1);
        match self.find(key) {
            Ok(i) => self.slots[i].expiry = expiry,
            Err(i) => {
                self.slots[i] = Slot {
                    key: split(key),
                    expiry,
                };
                self.len += 1;
            }
        }
    }

    fn resize(&mut self, cap: usize) {
        let old = std::mem::replace(
            &mut self.slots,
            vec![Slot::default(); cap.max(MIN_CAPACITY)].into_boxed_slice(),
        );
        self.cursor = 0;
        for s in old.iter().filter(|s| s.expiry != 0) {
            if let Err(i) = self.find(join(s.key)) {
                self.slots[i] = *s;
            }
        }
    }

    /// Removes the entry at `i` and shifts the following cluster back so every entry stays
    /// reachable from its home slot.
    fn remove_at(&mut self, mut i: usize) {
        let mut j = self.next(i);
        while self.slots[j].expiry != 0 {
            let home = self.home(join(self.slots[j].key));
            // The entry at j may move to i iff its home is not in the cyclic range (i, j].
            let in_range = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !in_range {
                self.slots[i] = self.slots[j];
                i = j;
            }
            j = self.next(j);
        }
        self.slots[i] = Slot::default();
        self.len -= 1;
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: u128) -> bool {
        match self.find(key) {
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
        // post-growth load (0.9 / 1.4 ≈ 0.64): then the bytes-per-id bound holds again.
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
            match x % 4 {
                0 | 1 => {
                    let e = (step % 1000) + 1;
                    t.insert(key, e);
                    m.insert(key, e);
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
