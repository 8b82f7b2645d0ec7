//! An exact set of distinct customers for "unique customers" / "active users" KPIs. Within
//! a task it holds the customers' task-local numbers ([`MemberId`], see `interner.rs`), so
//! the count is exact and a lookup is a bit test or one integer hash probe. Because inputs
//! are partitioned by customer_id, the customer sets of different tasks are disjoint: the
//! stage-2 merger, which only sees counts, can therefore add them. A set that has been
//! merged with a count becomes a count (`merge` is union for two id sets of one task and
//! addition otherwise, both commutative and associative on disjoint inputs).
//!
//! The changelog carries members incrementally: the serde form of a set holds no members
//! (only the count form holds its number); members travel as append-only segments of
//! customer-id strings (`take_new_members` hands over the members added since the last
//! flush; the operator resolves the numbers through the interner), so a commit writes only
//! the customers added since the previous one instead of the whole set. Membership is a
//! hash set while the set is sparse among the task's ids and a bitmap once it holds at
//! least 1/64 of them (then the bitmap costs at most 8 bytes per member, plus as much for
//! a second bitmap of the members not yet handed to the changelog).

use std::hash::{BuildHasherDefault, Hasher};

/// Implements the member methods of `Aggregate` (`take_new_members`, `all_members`,
/// `restore_members`) for an aggregate whose members are the [`CustomerSet`] in `$field`.
/// Invoked inside the `impl Aggregate` block.
macro_rules! customer_members {
    ($field:ident) => {
        fn take_new_members(&mut self, out: &mut Vec<$crate::engine::MemberId>) {
            self.$field.take_new_members(out);
        }

        fn all_members(&self, out: &mut Vec<$crate::engine::MemberId>) {
            self.$field.all_members(out);
        }

        fn restore_members(&mut self, members: &[$crate::engine::MemberId]) {
            self.$field.restore_members(members);
        }
    };
}
pub(crate) use customer_members;

use hashbrown::HashSet;
use serde::{Deserialize, Serialize};

use super::interner::MemberId;

/// Hashes member ids with one multiply: they are small task-local numbers handed out by
/// the interner, not input, so they need no keyed hash; multiplying by an odd constant
/// spreads consecutive ids over both the low bits (bucket) and the top bits (tag) that
/// the hash set uses.
#[derive(Default, Clone, Copy)]
struct MemberHasher(u64);

impl Hasher for MemberHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(u32::from(b));
        }
    }

    #[inline]
    fn write_u32(&mut self, id: u32) {
        self.0 = (self.0 ^ u64::from(id)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type MemberIds = HashSet<MemberId, BuildHasherDefault<MemberHasher>>;

/// Membership of an id set.
#[derive(Debug, Clone)]
enum Index {
    Sparse(MemberIds),
    /// `fresh` marks the members not handed to the changelog yet.
    Dense {
        bits: Vec<u64>,
        fresh: Vec<u64>,
        len: usize,
    },
}

/// Members below which a set always stays sparse.
const DENSE_MIN: usize = 64;

/// Distinct customers of one task, as interned ids.
#[derive(Debug, Clone)]
pub struct IdSet {
    index: Index,
    /// The largest member (sizes the bitmap when the set turns dense).
    max: MemberId,
    /// While sparse: members not handed to the changelog yet, in insertion order.
    new: Vec<MemberId>,
}

impl Default for IdSet {
    fn default() -> Self {
        IdSet {
            index: Index::Sparse(MemberIds::default()),
            max: 0,
            new: Vec::new(),
        }
    }
}

impl IdSet {
    /// Adds `id`, recording it for the changelog when `mark_fresh`; returns whether it
    /// was new.
    #[inline]
    fn add(&mut self, id: MemberId, mark_fresh: bool) -> bool {
        let new = match &mut self.index {
            Index::Dense { bits, fresh, len } => {
                let (w, b) = ((id / 64) as usize, 1u64 << (id % 64));
                if w >= bits.len() {
                    // Room for ids assigned later too, so growth stays rare.
                    bits.resize(w + w / 4 + 1, 0);
                    fresh.resize(bits.len(), 0);
                }
                let new = bits[w] & b == 0;
                if new {
                    bits[w] |= b;
                    *len += 1;
                    if mark_fresh {
                        fresh[w] |= b;
                    }
                }
                return new;
            }
            Index::Sparse(set) => set.insert(id),
        };
        if new {
            if mark_fresh {
                self.new.push(id);
            }
            self.max = self.max.max(id);
            let n = self.len();
            if n >= DENSE_MIN && n * 64 >= self.max as usize {
                self.densify();
            }
        }
        new
    }

    fn densify(&mut self) {
        let Index::Sparse(set) = &self.index else {
            return;
        };
        let words = self.max as usize / 64 + 1;
        let (mut bits, mut fresh) = (vec![0u64; words], vec![0u64; words]);
        for &id in set {
            bits[(id / 64) as usize] |= 1 << (id % 64);
        }
        for id in std::mem::take(&mut self.new) {
            fresh[(id / 64) as usize] |= 1 << (id % 64);
        }
        self.index = Index::Dense {
            bits,
            fresh,
            len: set.len(),
        };
    }

    fn len(&self) -> usize {
        match &self.index {
            Index::Sparse(set) => set.len(),
            Index::Dense { len, .. } => *len,
        }
    }

    #[inline]
    fn contains(&self, id: MemberId) -> bool {
        match &self.index {
            Index::Dense { bits, .. } => bits
                .get((id / 64) as usize)
                .is_some_and(|w| w & (1 << (id % 64)) != 0),
            Index::Sparse(set) => set.contains(&id),
        }
    }

    /// Appends every member, in increasing order.
    fn members(&self, out: &mut Vec<MemberId>) {
        match &self.index {
            Index::Sparse(set) => {
                let from = out.len();
                out.extend(set.iter().copied());
                out[from..].sort_unstable();
            }
            Index::Dense { bits, .. } => push_bits(bits, out),
        }
    }

    /// Appends the members not handed over yet and marks them handed over.
    fn take_new(&mut self, out: &mut Vec<MemberId>) {
        match &mut self.index {
            Index::Sparse(_) => out.append(&mut self.new),
            Index::Dense { fresh, .. } => {
                push_bits(fresh, out);
                fresh.fill(0);
            }
        }
    }
}

/// Appends the ids set in a bitmap, in increasing order.
fn push_bits(bits: &[u64], out: &mut Vec<MemberId>) {
    for (w, &word) in bits.iter().enumerate() {
        let mut x = word;
        while x != 0 {
            out.push(w as MemberId * 64 + x.trailing_zeros());
            x &= x - 1;
        }
    }
}

/// Distinct customers: exact ids, or a count of disjoint ids after a cross-task merge.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "Repr")]
pub enum CustomerSet {
    Ids(IdSet),
    Count(u64),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Repr {
    Ids,
    Count(u64),
}

impl From<Repr> for CustomerSet {
    fn from(r: Repr) -> Self {
        match r {
            Repr::Ids => CustomerSet::default(),
            Repr::Count(n) => CustomerSet::Count(n),
        }
    }
}

// Written by hand rather than `into = "Repr"`, which would clone the whole set.
impl Serialize for CustomerSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CustomerSet::Ids(_) => Repr::Ids.serialize(s),
            CustomerSet::Count(n) => Repr::Count(*n).serialize(s),
        }
    }
}

/// Set equality (ids of the same task).
impl PartialEq for CustomerSet {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (CustomerSet::Ids(a), CustomerSet::Ids(b)) => {
                let mut members = Vec::with_capacity(a.len());
                a.members(&mut members);
                a.len() == b.len() && members.iter().all(|&m| b.contains(m))
            }
            (CustomerSet::Count(a), CustomerSet::Count(b)) => a == b,
            _ => false,
        }
    }
}

impl Default for CustomerSet {
    fn default() -> Self {
        CustomerSet::Ids(IdSet::default())
    }
}

impl CustomerSet {
    /// Adds a customer (its task-local id); never allocates per lookup.
    #[inline]
    pub fn insert(&mut self, customer: MemberId) {
        match self {
            CustomerSet::Ids(set) => {
                set.add(customer, true);
            }
            // A count cannot tell whether this customer is new: only the stage-2 merger
            // holds counts, and it merges aggregates, never single records.
            CustomerSet::Count(n) => *n += 1,
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            CustomerSet::Ids(set) => set.len() as u64,
            CustomerSet::Count(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn merge(&mut self, other: &CustomerSet) {
        match (&mut *self, other) {
            (CustomerSet::Ids(a), CustomerSet::Ids(b)) => {
                let mut members = Vec::with_capacity(b.len());
                b.members(&mut members);
                for m in members {
                    a.add(m, true);
                }
            }
            _ => *self = CustomerSet::Count(self.len() + other.len()),
        }
    }

    /// Appends the members added since the last call and marks them handed over.
    pub fn take_new_members(&mut self, out: &mut Vec<MemberId>) {
        if let CustomerSet::Ids(set) = self {
            set.take_new(out);
        }
    }

    /// Appends every member, in increasing order of id.
    pub fn all_members(&self, out: &mut Vec<MemberId>) {
        if let CustomerSet::Ids(set) = self {
            set.members(out);
        }
    }

    /// Adds restored members (already in the changelog).
    pub fn restore_members(&mut self, members: &[MemberId]) {
        if let CustomerSet::Ids(set) = self {
            for &m in members {
                set.add(m, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_hands_over_new_members_and_round_trips() {
        let mut s = CustomerSet::default();
        for c in [7, 3, 7, 1_000_000, 1_000_000] {
            s.insert(c);
        }
        assert_eq!(s.len(), 3);
        let mut members = Vec::new();
        s.take_new_members(&mut members);
        assert_eq!(members, vec![7, 3, 1_000_000]);
        s.insert(9);
        s.insert(7);
        let mut more = Vec::new();
        s.take_new_members(&mut more);
        assert_eq!(more, vec![9], "only new members are handed over");
        members.extend(more);
        let json = serde_json::to_string(&s).unwrap();
        let mut back: CustomerSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 0, "members travel separately");
        back.restore_members(&members);
        assert_eq!(back, s);
        let mut t = CustomerSet::default();
        t.insert(3);
        t.insert(4);
        let mut u = s.clone();
        u.merge(&t);
        assert_eq!(u.len(), 5, "union within a task");
        let mut c = CustomerSet::Count(2);
        c.merge(&s);
        assert_eq!(c.len(), 6, "disjoint tasks add up");
    }

    #[test]
    fn sparse_and_dense_sets_agree_with_a_reference() {
        // Dense ids (turn the set into a bitmap) and scattered ones (keep it sparse).
        for (stride, turns_dense) in [(1u32, true), (997, false)] {
            let mut s = CustomerSet::default();
            let mut reference = std::collections::BTreeSet::new();
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let id = (x % 5_000) as u32 * stride;
                s.insert(id);
                reference.insert(id);
            }
            assert_eq!(s.len(), reference.len() as u64);
            let CustomerSet::Ids(set) = &s else {
                unreachable!()
            };
            assert_eq!(matches!(set.index, Index::Dense { .. }), turns_dense);
            for id in 0..5_000 * stride {
                assert_eq!(set.contains(id), reference.contains(&id), "{id}");
            }
            let mut all = Vec::new();
            s.all_members(&mut all);
            assert_eq!(all, reference.iter().copied().collect::<Vec<_>>());
            let mut new = Vec::new();
            s.take_new_members(&mut new);
            new.sort_unstable();
            assert_eq!(new, all, "every member is handed over once");
        }
    }
}
