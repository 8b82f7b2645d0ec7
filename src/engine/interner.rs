//! Per-task interning of customer ids. Every distinct customer id a task puts into a
//! distinct-customer set is mapped once, with one hash lookup per record, to a small
//! integer ([`MemberId`]); the window sets then hold those integers (see `customers.rs`)
//! and never hash, compare or allocate strings. Ids are local to one task and one process:
//! they never reach the changelog (member segments carry the strings, so a restored task
//! interns them afresh, possibly under other numbers) and no output depends on their
//! values. Ids no live set holds any more are reclaimed by a mark-and-sweep collection
//! that the task runs after windows are purged, once the interner has doubled since the
//! last collection; freed ids are reused, so the interner stays proportional to the
//! customers of the live windows.

/// A task-local customer number.
pub type MemberId = u32;

/// The hash of a customer id under its interner's hasher (see [`Interner::prefetch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameHash(u32);

/// Bytes of a name kept inline in its table slot: names up to this long are compared
/// without leaving the table (customer ids usually are this short).
const HEAD: usize = 16;

/// A table slot: the name's length and first bytes (zero-padded), the low bits of its
/// hash and its id ([`EMPTY`] for a free slot).
#[derive(Clone, Copy)]
struct Slot {
    head: [u8; HEAD],
    len: u32,
    hash: u32,
    id: MemberId,
}

const EMPTY: MemberId = MemberId::MAX;
const FREE_SLOT: Slot = Slot {
    head: [0; HEAD],
    len: 0,
    hash: 0,
    id: EMPTY,
};

#[inline]
fn head(name: &str) -> [u8; HEAD] {
    let mut h = [0; HEAD];
    let n = name.len().min(HEAD);
    h[..n].copy_from_slice(&name.as_bytes()[..n]);
    h
}

/// Interned customer ids with their reverse mapping. The table is open addressing with
/// linear probing (power-of-two capacity, at most 3/4 full, backward-shift deletion), so
/// a lookup's slot can be prefetched ahead of time.
pub struct Interner {
    slots: Vec<Slot>,
    used: usize,
    /// By id; `None` for a free id.
    names: Vec<Option<Box<str>>>,
    free: Vec<MemberId>,
    hasher: ahash::RandomState,
    /// Live ids after the last collection (the growth trigger of the next one).
    live_after_gc: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            slots: vec![FREE_SLOT; 64],
            used: 0,
            names: Vec::new(),
            free: Vec::new(),
            hasher: ahash::RandomState::new(),
            live_after_gc: 0,
        }
    }
}

/// Ids below this many are never collected (the collection would cost more than it saves).
const GC_MIN: usize = 4_096;

impl Interner {
    #[inline]
    fn hash(&self, name: &str) -> u32 {
        self.hasher.hash_one(name) as u32
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Hashes `name` for [`Self::intern_hashed`] and hints the CPU to load the slot it
    /// will be looked up in; no effect on the state.
    #[inline]
    pub fn prefetch(&self, name: &str) -> NameHash {
        let hash = self.hash(name);
        #[cfg(target_arch = "x86_64")]
        {
            let i = hash as usize & self.mask();
            let p = self.slots[i..].as_ptr();
            // SAFETY: prefetching is only a hint; it cannot fault, and `p` points into
            // the slot array anyway.
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p.cast::<i8>(),
                );
            }
        }
        NameHash(hash)
    }

    /// The id of `name`, assigning one if it is new.
    #[inline]
    pub fn intern(&mut self, name: &str) -> MemberId {
        let hash = NameHash(self.hash(name));
        self.intern_hashed(name, hash)
    }

    /// [`Self::intern`] with `hash` = `self.prefetch(name)`, computed earlier (the
    /// interner may have changed since, not the name).
    #[inline]
    pub fn intern_hashed(&mut self, name: &str, hash: NameHash) -> MemberId {
        debug_assert_eq!(hash.0, self.hash(name));
        let hash = hash.0;
        let (h, len) = (head(name), u32::try_from(name.len()).unwrap_or(u32::MAX));
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            let s = &self.slots[i];
            if s.id == EMPTY {
                break;
            }
            // Exact: equal lengths and heads decide for short names; longer ones are
            // compared in full.
            if s.hash == hash
                && s.len == len
                && s.head == h
                && (name.len() <= HEAD || self.names[s.id as usize].as_deref() == Some(name))
            {
                return s.id;
            }
            i = (i + 1) & mask;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id as usize] = Some(name.into());
                id
            }
            None => {
                // u32::MAX - 1 distinct live customers in one task cannot fit in memory
                // anyway; saturate rather than wrap.
                let id = MemberId::try_from(self.names.len()).unwrap_or(EMPTY - 1);
                self.names.push(Some(name.into()));
                id
            }
        };
        self.slots[i] = Slot {
            head: h,
            len,
            hash,
            id,
        };
        self.used += 1;
        if self.used * 4 > self.slots.len() * 3 {
            self.grow();
        }
        id
    }

    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![FREE_SLOT; cap]);
        let mask = self.mask();
        for s in old.into_iter().filter(|s| s.id != EMPTY) {
            let mut i = s.hash as usize & mask;
            while self.slots[i].id != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }

    /// Removes the slot of `id` (whose name hashed to `hash`), shifting its cluster back.
    fn remove_slot(&mut self, hash: u32, id: MemberId) {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.slots[i].id != id {
            if self.slots[i].id == EMPTY {
                return;
            }
            i = (i + 1) & mask;
        }
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            if self.slots[j].id == EMPTY {
                break;
            }
            let home = self.slots[j].hash as usize & mask;
            // The entry at j may move to i iff its home is not in the cyclic range (i, j].
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.slots[i] = self.slots[j];
                i = j;
            }
        }
        self.slots[i] = FREE_SLOT;
        self.used -= 1;
    }

    /// The customer id of `id` ("" for an id that is not assigned, which no set holds).
    #[inline]
    pub fn name(&self, id: MemberId) -> &str {
        self.names
            .get(id as usize)
            .and_then(|n| n.as_deref())
            .unwrap_or_default()
    }

    /// Assigned ids.
    pub fn len(&self) -> usize {
        self.names.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One past the largest id ever assigned (the size of a mark bitmap).
    pub fn id_bound(&self) -> usize {
        self.names.len()
    }

    /// Whether enough ids may have died since the last collection to make one worthwhile.
    pub fn gc_due(&self) -> bool {
        let n = self.len();
        n >= GC_MIN && n >= 2 * self.live_after_gc
    }

    /// Frees every assigned id not marked in `live` (a bitmap over ids that every live set
    /// has marked its members in).
    pub fn sweep(&mut self, live: &[u64]) {
        let marked = |id: usize| live.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0);
        for id in 0..self.names.len() {
            if marked(id) {
                continue;
            }
            let Some(name) = self.names[id].take() else {
                continue;
            };
            let hash = self.hash(&name);
            self.remove_slot(hash, id as MemberId);
            self.free.push(id as MemberId);
        }
        // Reuse low ids first, so dense member bitmaps stay short.
        self.free.sort_unstable_by(|a, b| b.cmp(a));
        self.live_after_gc = self.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_reverses_collects_and_reuses_ids() {
        let mut i = Interner::default();
        let a = i.intern("customer-1");
        let b = i.intern("customer-2");
        assert_ne!(a, b);
        assert_eq!(i.intern("customer-1"), a);
        assert_eq!(i.name(b), "customer-2");
        assert_eq!(i.len(), 2);
        // Only `b` is live: `a` is freed, its name forgotten, and its id reused.
        let mut live = vec![0u64; 1];
        live[0] |= 1 << b;
        i.sweep(&live);
        assert_eq!(i.len(), 1);
        assert_eq!(i.name(a), "");
        assert_eq!(i.intern("customer-2"), b, "live ids keep their number");
        let c = i.intern("customer-3");
        assert_eq!(c, a, "freed ids are reused");
        assert_eq!(i.name(c), "customer-3");
        assert_eq!(i.intern("customer-1"), 2, "a collected name is new again");
        assert_eq!(i.len(), 3);
    }

    #[test]
    fn names_sharing_the_inline_head_stay_distinct() {
        let mut i = Interner::default();
        let long = "customer-0000000000000001";
        let names = [
            "customer-000000",
            "customer-0000000",
            "customer-00000000",
            long,
            "customer-0000000000000002",
            "customer-000000\0",
            "",
        ];
        let ids: Vec<MemberId> = names.iter().map(|n| i.intern(n)).collect();
        for (n, id) in names.iter().zip(&ids) {
            assert_eq!(i.intern(n), *id);
            assert_eq!(i.name(*id), *n);
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), names.len());
    }

    #[test]
    fn behaves_like_a_map_under_interning_and_collection() {
        // Many inserts, collections of random subsets (backward shifts, id reuse), and
        // growth: every live name keeps its id and resolves back to itself.
        let mut i = Interner::default();
        let mut live: std::collections::HashMap<String, MemberId> = Default::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..20 {
            for _ in 0..3_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let name = format!("c-{}", x % 20_000);
                let id = i.intern(&name);
                assert_eq!(*live.entry(name).or_insert(id), id);
            }
            // Keep about half, chosen by name.
            live.retain(|n, _| (n.len() + round) % 2 == 0);
            let mut marks = vec![0u64; i.id_bound().div_ceil(64)];
            for id in live.values() {
                marks[*id as usize / 64] |= 1 << (id % 64);
            }
            i.sweep(&marks);
            assert_eq!(i.len(), live.len());
            for (n, id) in &live {
                assert_eq!(i.name(*id), n);
                assert_eq!(i.intern(n), *id);
            }
        }
    }

    #[test]
    fn many_names_stay_distinct() {
        let mut i = Interner::default();
        let ids: Vec<MemberId> = (0..10_000).map(|n| i.intern(&format!("c-{n}"))).collect();
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(i.name(*id), format!("c-{n}"));
            assert_eq!(i.intern(&format!("c-{n}")), *id);
        }
        assert_eq!(i.len(), 10_000);
        assert!(i.gc_due());
        i.sweep(&[]);
        assert!(i.is_empty());
        assert!(!i.gc_due());
    }
}
