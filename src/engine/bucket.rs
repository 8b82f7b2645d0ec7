//! The keyed results of one window of a [`WindowOperator`](super::WindowOperator): a short
//! vector searched linearly while the window has few keys (the common case: `all` plus a
//! handful of categories, where comparing a few keys is cheaper than hashing one), and a
//! hash map once it has more than [`FEW`]. Which form holds the results is invisible to
//! the operator: iteration order is unspecified in both (every emission and changelog path
//! sorts by key), and lookups compare keys exactly.

use std::hash::Hash;

use hashbrown::{Equivalent, HashMap};

use super::aggregate::{Aggregate, ResultSlot};

/// Keys held in the vector before the results move to the hash map.
const FEW: usize = 16;

/// The results of one window, by key.
pub(super) struct Bucket<K, A> {
    /// All results while there are at most [`FEW`]; empty afterwards.
    few: Vec<(K, ResultSlot<A>)>,
    /// All results once there were more than [`FEW`].
    many: HashMap<K, ResultSlot<A>, ahash::RandomState>,
}

impl<K: Eq + Hash, A: Aggregate> Bucket<K, A> {
    pub(super) fn new() -> Self {
        Bucket {
            few: Vec::new(),
            many: HashMap::with_hasher(ahash::RandomState::new()),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.few.len() + self.many.len()
    }

    /// The result of `key`, created empty if absent.
    #[inline]
    pub(super) fn slot_mut<Q>(&mut self, key: &Q) -> &mut ResultSlot<A>
    where
        Q: ?Sized + Hash + Equivalent<K>,
        K: for<'q> From<&'q Q>,
    {
        if self.many.is_empty() {
            if let Some(i) = self.few.iter().position(|(k, _)| key.equivalent(k)) {
                return &mut self.few[i].1;
            }
            if self.few.len() < FEW {
                self.few.push((K::from(key), ResultSlot::default()));
                let last = self.few.len() - 1;
                return &mut self.few[last].1;
            }
            self.many.extend(self.few.drain(..));
        }
        self.many.entry_ref(key).or_default()
    }

    /// The result of `key` with the key as stored.
    pub(super) fn get_key_value_mut<Q>(&mut self, key: &Q) -> Option<(&K, &mut ResultSlot<A>)>
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        if self.many.is_empty() {
            self.few
                .iter_mut()
                .find(|(k, _)| key.equivalent(k))
                .map(|(k, s)| (&*k, s))
        } else {
            self.many.get_key_value_mut(key)
        }
    }

    pub(super) fn get<Q>(&self, key: &Q) -> Option<&ResultSlot<A>>
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        if self.many.is_empty() {
            self.few
                .iter()
                .find(|(k, _)| key.equivalent(k))
                .map(|(_, s)| s)
        } else {
            self.many.get(key)
        }
    }

    pub(super) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut ResultSlot<A>>
    where
        Q: ?Sized + Hash + Equivalent<K>,
    {
        self.get_key_value_mut(key).map(|(_, s)| s)
    }

    /// Sets the result of `key` (replacing any).
    pub(super) fn insert(&mut self, key: K, slot: ResultSlot<A>) {
        if let Some(old) = self.get_mut(&key) {
            *old = slot;
        } else if self.many.is_empty() && self.few.len() < FEW {
            self.few.push((key, slot));
        } else {
            self.many.extend(self.few.drain(..));
            self.many.insert(key, slot);
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, &ResultSlot<A>)> {
        self.few.iter().map(|(k, s)| (k, s)).chain(self.many.iter())
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut ResultSlot<A>)> {
        self.few
            .iter_mut()
            .map(|(k, s)| (&*k, s))
            .chain(self.many.iter_mut())
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &ResultSlot<A>> {
        self.iter().map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::families::RevenueAgg;

    #[test]
    fn behaves_like_a_map_across_the_switch_to_hashing() {
        let mut b: Bucket<String, RevenueAgg> = Bucket::new();
        let mut m: std::collections::BTreeMap<String, u64> = Default::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..2_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few keys at first, then up to 40: exercises both forms and the move.
            let key = format!("k{}", x % (4 + step / 50).min(40));
            match x % 3 {
                0 => {
                    b.slot_mut(key.as_str()).agg.orders += 1;
                    *m.entry(key.clone()).or_default() += 1;
                }
                1 => {
                    let slot = ResultSlot {
                        agg: RevenueAgg {
                            orders: step,
                            ..Default::default()
                        },
                        ..Default::default()
                    };
                    b.insert(key.clone(), slot);
                    m.insert(key.clone(), step);
                }
                _ => {
                    assert_eq!(
                        b.get(key.as_str()).map(|s| s.agg.orders),
                        m.get(&key).copied()
                    );
                    assert_eq!(
                        b.get_key_value_mut(key.as_str()).map(|(k, _)| k.clone()),
                        m.get_key_value(&key).map(|(k, _)| k.clone())
                    );
                }
            }
            assert_eq!(b.len(), m.len());
            let mut all: Vec<(String, u64)> =
                b.iter().map(|(k, s)| (k.clone(), s.agg.orders)).collect();
            all.sort();
            assert_eq!(
                all,
                m.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>()
            );
        }
        assert!(b.len() > FEW);
    }
}
