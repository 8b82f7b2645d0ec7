//! An exact set of distinct customers for "unique customers" / "active users" KPIs. Within
//! a task it holds the ids themselves (compact: 16 bytes for UUID ids), so the count is
//! exact. Because inputs are partitioned by customer_id, the customer sets of different
//! tasks are disjoint: the stage-2 merger, which only sees counts, can therefore add them.
//! A set that has been merged with a count becomes a count (`merge` is union for two id
//! sets and addition otherwise, both commutative and associative on disjoint inputs).
//!
//! Members are kept in insertion order so the changelog can carry them incrementally: the
//! serde form of a set holds no members (only the count form holds its number); members
//! travel as append-only segments (`take_new_members`), so a commit writes only the
//! customers added since the previous one instead of the whole set.

use indexmap::IndexSet;
use serde::{Deserialize, Serialize};

use super::dedup::id::{CompactId, CompactRef};

/// Distinct customers: exact ids, or a count of disjoint ids after a cross-task merge.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "Repr")]
pub enum CustomerSet {
    Ids {
        set: IndexSet<CompactId, ahash::RandomState>,
        /// Members before this index were already handed to the changelog.
        flushed: usize,
    },
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
            CustomerSet::Ids { .. } => Repr::Ids.serialize(s),
            CustomerSet::Count(n) => Repr::Count(*n).serialize(s),
        }
    }
}

impl PartialEq for CustomerSet {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (CustomerSet::Ids { set: a, .. }, CustomerSet::Ids { set: b, .. }) => a == b,
            (CustomerSet::Count(a), CustomerSet::Count(b)) => a == b,
            _ => false,
        }
    }
}

impl Default for CustomerSet {
    fn default() -> Self {
        CustomerSet::Ids {
            set: IndexSet::with_hasher(ahash::RandomState::new()),
            flushed: 0,
        }
    }
}

impl CustomerSet {
    /// Adds a customer; allocates only for a new non-UUID id.
    #[inline]
    pub fn insert(&mut self, customer: CompactRef<'_>) {
        match self {
            CustomerSet::Ids { set, .. } => {
                if !set.contains(&customer) {
                    set.insert(CompactId::from(&customer));
                }
            }
            // A count cannot tell whether this customer is new: only the stage-2 merger
            // holds counts, and it merges aggregates, never single records.
            CustomerSet::Count(n) => *n += 1,
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            CustomerSet::Ids { set, .. } => set.len() as u64,
            CustomerSet::Count(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn merge(&mut self, other: &CustomerSet) {
        match (&mut *self, other) {
            (CustomerSet::Ids { set: a, .. }, CustomerSet::Ids { set: b, .. }) => {
                a.extend(b.iter().cloned())
            }
            _ => *self = CustomerSet::Count(self.len() + other.len()),
        }
    }

    /// Appends the members added since the last call and marks them handed over.
    pub fn take_new_members(&mut self, out: &mut Vec<String>) {
        if let CustomerSet::Ids { set, flushed } = self {
            out.extend(set.iter().skip(*flushed).map(CompactId::to_string_lossless));
            *flushed = set.len();
        }
    }

    /// Appends every member.
    pub fn all_members(&self, out: &mut Vec<String>) {
        if let CustomerSet::Ids { set, .. } = self {
            out.extend(set.iter().map(CompactId::to_string_lossless));
        }
    }

    /// Adds restored members (already in the changelog).
    pub fn restore_members(&mut self, members: &[String]) {
        if let CustomerSet::Ids { set, flushed } = self {
            set.extend(members.iter().map(|m| CompactId::new(m)));
            *flushed = set.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_hands_over_new_members_and_round_trips() {
        let mut s = CustomerSet::default();
        let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        for c in ["a", "b", "a", uuid, uuid] {
            s.insert(CompactRef::new(c));
        }
        assert_eq!(s.len(), 3);
        let mut members = Vec::new();
        s.take_new_members(&mut members);
        assert_eq!(
            members,
            vec!["a".to_owned(), "b".to_owned(), uuid.to_owned()]
        );
        s.insert(CompactRef::new("z"));
        s.insert(CompactRef::new("a"));
        let mut more = Vec::new();
        s.take_new_members(&mut more);
        assert_eq!(
            more,
            vec!["z".to_owned()],
            "only new members are handed over"
        );
        members.extend(more);
        let json = serde_json::to_string(&s).unwrap();
        let mut back: CustomerSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 0, "members travel separately");
        back.restore_members(&members);
        assert_eq!(back, s);
        let mut t = CustomerSet::default();
        t.insert(CompactRef::new("b"));
        t.insert(CompactRef::new("c"));
        let mut u = s.clone();
        u.merge(&t);
        assert_eq!(u.len(), 5, "union within a task");
        let mut c = CustomerSet::Count(2);
        c.merge(&s);
        assert_eq!(c.len(), 6, "disjoint tasks add up");
    }
}
