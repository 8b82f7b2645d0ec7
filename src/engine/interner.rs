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

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

/// A task-local customer number.
pub type MemberId = u32;

/// Bytes of a name kept inline in its table slot: names up to this long are compared
/// without leaving the table (customer ids usually are this short).
const HEAD: usize = 16;

/// A table slot: the name's length and first bytes (zero-padded) and its id.
#[derive(Clone, Copy)]
struct Slot {
    head: [u8; HEAD],
    len: u32,
    id: MemberId,
}

#[inline]
fn head(name: &str) -> [u8; HEAD] {
    let mut h = [0; HEAD];
    let n = name.len().min(HEAD);
    h[..n].copy_from_slice(&name.as_bytes()[..n]);
    h
}

/// Interned customer ids with their reverse mapping.
pub struct Interner {
    table: HashTable<Slot>,
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
            table: HashTable::new(),
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
    /// The id of `name`, assigning one if it is new.
    #[inline]
    pub fn intern(&mut self, name: &str) -> MemberId {
        let Interner {
            table,
            names,
            free,
            hasher,
            ..
        } = self;
        let hash = hasher.hash_one(name);
        let (h, len) = (head(name), u32::try_from(name.len()).unwrap_or(u32::MAX));
        // Exact: equal lengths and heads decide for short names; longer ones are compared
        // in full.
        let entry = table.entry(
            hash,
            |s| {
                s.len == len
                    && s.head == h
                    && (name.len() <= HEAD || names[s.id as usize].as_deref() == Some(name))
            },
            |s| hasher.hash_one(names[s.id as usize].as_deref().unwrap_or_default()),
        );
        match entry {
            Entry::Occupied(e) => e.get().id,
            Entry::Vacant(v) => {
                let id = match free.pop() {
                    Some(id) => {
                        names[id as usize] = Some(name.into());
                        id
                    }
                    None => {
                        // More than u32::MAX distinct live customers in one task cannot fit
                        // in memory anyway; saturate rather than wrap.
                        let id = MemberId::try_from(names.len()).unwrap_or(MemberId::MAX);
                        names.push(Some(name.into()));
                        id
                    }
                };
                v.insert(Slot { head: h, len, id });
                id
            }
        }
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
            let hash = self.hasher.hash_one(&*name);
            if let Ok(e) = self.table.find_entry(hash, |s| s.id as usize == id) {
                e.remove();
            }
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
