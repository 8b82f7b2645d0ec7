//! An exact set of distinct customers for "unique customers" / "active users" KPIs. Within
//! a task it holds the ids themselves (compact: 16 bytes for UUID ids), so the count is
//! exact. Because inputs are partitioned by customer_id, the customer sets of different
//! tasks are disjoint: the stage-2 merger, which only sees counts, can therefore add them.
//! A set that has been merged with a count becomes a count (`merge` is union for two id
//! sets and addition otherwise, both commutative and associative on disjoint inputs).

use hashbrown::HashSet;
use serde::{Deserialize, Serialize};

use super::dedup::id::{CompactId, CompactRef};

/// Distinct customers: exact ids, or a count of disjoint ids after a cross-task merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Repr", into = "Repr")]
pub enum CustomerSet {
    Ids(HashSet<CompactId, ahash::RandomState>),
    Count(u64),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Repr {
    Ids(Vec<String>),
    Count(u64),
}

impl From<Repr> for CustomerSet {
    fn from(r: Repr) -> Self {
        match r {
            Repr::Ids(v) => CustomerSet::Ids(v.iter().map(|s| CompactId::new(s)).collect()),
            Repr::Count(n) => CustomerSet::Count(n),
        }
    }
}

impl From<CustomerSet> for Repr {
    fn from(c: CustomerSet) -> Self {
        match c {
            CustomerSet::Ids(set) => {
                let mut v: Vec<String> = set.iter().map(CompactId::to_string_lossless).collect();
                v.sort_unstable();
                Repr::Ids(v)
            }
            CustomerSet::Count(n) => Repr::Count(n),
        }
    }
}

impl Default for CustomerSet {
    fn default() -> Self {
        CustomerSet::Ids(HashSet::with_hasher(ahash::RandomState::new()))
    }
}

impl CustomerSet {
    /// Adds a customer; allocates only for a new non-UUID id.
    #[inline]
    pub fn insert(&mut self, customer_id: &str) {
        match self {
            CustomerSet::Ids(set) => {
                set.get_or_insert_with(&CompactRef::new(customer_id), |r| CompactId::from(r));
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
            (CustomerSet::Ids(a), CustomerSet::Ids(b)) => a.extend(b.iter().cloned()),
            _ => *self = CustomerSet::Count(self.len() + other.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_and_round_trips() {
        let mut s = CustomerSet::default();
        for c in [
            "a",
            "b",
            "a",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
        ] {
            s.insert(c);
        }
        assert_eq!(s.len(), 3);
        let json = serde_json::to_string(&s).unwrap();
        let back: CustomerSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        let mut t = CustomerSet::default();
        t.insert("b");
        t.insert("c");
        let mut u = s.clone();
        u.merge(&t);
        assert_eq!(u.len(), 4, "union within a task");
        let mut c = CustomerSet::Count(2);
        c.merge(&s);
        assert_eq!(c.len(), 5, "disjoint tasks add up");
    }
}
