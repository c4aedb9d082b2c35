//! [`Table`]: the persistent map from names to shared values behind both
//! the zone view (names → nodes) and the compiled answers (names →
//! prepared responses).
//!
//! The map is split into [`SHARDS`] hash maps, each behind its own `Arc`.
//! Cloning a table copies the shard pointers, not the entries; a write
//! copies only the shard it lands in, and only while an older version
//! still shares it (`Arc::make_mut`). So the updater keeps a private table,
//! changes a few names, and hands readers a clone: the old and new
//! versions share every shard but the touched ones, readers never see a
//! half-applied update, and a change costs the size of a shard (a few
//! dozen entries at 25,000 names), not of the zone.
//!
//! [`SeededState`] is the hasher of the hot path, shared with the rest of
//! the crate.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::name::Name;

/// Shards per table: a power of two. Fixed, so that a table never needs
/// re-sharding; an empty shard costs one small allocation.
pub(crate) const SHARDS: usize = 1024;

type Shard<V> = HashMap<Name, V, SeededState>;

/// A name-keyed map whose clones share unchanged shards.
pub(crate) struct Table<V> {
    /// Picks the shard. Seeded apart from the shards' own hasher, so the
    /// names of one shard do not all share hash bits inside it.
    route: SeededState,
    shards: Vec<Arc<Shard<V>>>,
    len: usize,
}

impl<V> Clone for Table<V> {
    fn clone(&self) -> Self {
        Table { route: self.route.clone(), shards: self.shards.clone(), len: self.len }
    }
}

impl<V> std::fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("len", &self.len).finish()
    }
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        let inner = SeededState::new();
        Table {
            route: SeededState::new(),
            shards: (0..SHARDS).map(|_| Arc::new(HashMap::with_hasher(inner.clone()))).collect(),
            len: 0,
        }
    }
}

impl<V> Table<V> {
    #[inline]
    fn shard_of(&self, key: &[u8]) -> usize {
        let mut h = self.route.build_hasher();
        h.write(key);
        // Middle bits: hashbrown inside the shard uses the low bits for the
        // bucket and the top seven for its tags (with another seed anyway).
        ((h.finish() >> 24) as usize) & (SHARDS - 1)
    }

    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.shards[self.shard_of(key)].get(key)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many shards two versions share.
    #[cfg(test)]
    pub fn shared_shards(&self, other: &Table<V>) -> usize {
        self.shards.iter().zip(&other.shards).filter(|(a, b)| Arc::ptr_eq(a, b)).count()
    }

    /// Every entry, shard by shard: in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Name, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }
}

impl<V: Clone> Table<V> {
    /// Inserts or replaces, copying the shard first if another version of
    /// the table still holds it.
    pub fn insert(&mut self, key: Name, value: V) -> Option<V> {
        let i = self.shard_of(key.wire());
        let old = Arc::make_mut(&mut self.shards[i]).insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes, copying the shard only if the key is there.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let i = self.shard_of(key);
        if !self.shards[i].contains_key(key) {
            return None;
        }
        let old = Arc::make_mut(&mut self.shards[i]).remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }
}

impl<V: Clone> FromIterator<(Name, V)> for Table<V> {
    fn from_iter<I: IntoIterator<Item = (Name, V)>>(iter: I) -> Self {
        let mut t = Table::default();
        for (k, v) in iter {
            t.insert(k, v);
        }
        t
    }
}

/// FxHash-style hashing with a per-process random seed: the keys are
/// names from the cluster and lookups never insert, so speed matters more
/// than SipHash's guarantees, but the seed keeps collisions unpredictable.
#[derive(Clone)]
pub(crate) struct SeededState(u64);

impl SeededState {
    pub fn new() -> Self {
        SeededState(rand::random::<u64>() | 1)
    }
}

impl BuildHasher for SeededState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

pub(crate) struct FastHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(K).rotate_left(26);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high bits down: hashbrown takes its control bits from
        // the top and its bucket index from the bottom.
        let h = self.0;
        h ^ (h >> 29) ^ (h >> 47)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn a_clone_is_unaffected_by_later_writes_and_shares_untouched_shards() {
        let mut t: Table<Arc<u32>> = (0..5000).map(|i| (n(&format!("s{i}.example")), Arc::new(i))).collect();
        let before = t.clone();
        t.insert(n("s1.example"), Arc::new(99));
        t.insert(n("new.example"), Arc::new(7));
        assert_eq!(t.remove(n("s2.example").wire()).as_deref(), Some(&2));
        assert_eq!(t.remove(n("absent.example").wire()), None);
        assert_eq!((before.len(), t.len()), (5000, 5000));
        assert_eq!(before.get(n("s1.example").wire()).map(|v| **v), Some(1));
        assert_eq!(t.get(n("s1.example").wire()).map(|v| **v), Some(99));
        assert!(before.get(n("s2.example").wire()).is_some() && t.get(n("s2.example").wire()).is_none());
        let shared = before.shared_shards(&t);
        assert!(shared >= SHARDS - 3, "{shared} shards shared");
        assert_eq!(t.iter().count(), 5000);
    }
}
