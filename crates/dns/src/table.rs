//! [`Table`]: the persistent map from names to [`Rec`]s behind the zone
//! view: one entry per name, holding the name, its records and its
//! prepared answers in one allocation, with the zone's reference count of
//! the name beside it.
//!
//! The map is split into [`SHARDS`] shards, each behind its own `Arc`.
//! Cloning a table copies the shard pointers, not the entries; a write
//! copies only the shard it lands in, and only while an older version
//! still shares it (`Arc::make_mut`). So the updater keeps a private table,
//! changes a few names, and hands readers a clone: the old and new
//! versions share every shard but the touched ones, readers never see a
//! half-applied update, and a change costs the size of a shard (a few
//! dozen entries at 60,000 names), not of the zone.
//!
//! A shard is a vector of 24-byte [`Slot`]s sorted by hash, kept at exact
//! capacity: a lookup is a binary search over a few dozen hashes, and the
//! zone pays for neither a hash map's empty buckets nor a key beside each
//! value (the name is inside the record). The record holds its name less
//! the longest of a few suffixes most names share (`svc.<zone>`, `pod.<zone>`, `<zone>`,
//! the reverse zones): a lookup compares the two parts.
//!
//! [`SeededState`] is the hasher of the hot path, shared with the rest of
//! the crate.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::name::Name;
use crate::view::Rec;

/// Shards per table: a power of two. Fixed, so that a table never needs
/// re-sharding; an empty shard costs one small allocation.
pub(crate) const SHARDS: usize = 1024;

/// One name of the table: its record, the name's hash (the shard's sort
/// key) and how many contributions of the live zone hold the name (zero
/// in views built whole; the updater's bookkeeping, ignored by readers).
#[derive(Clone)]
pub(crate) struct Slot {
    pub rec: Rec,
    hash: u32,
    pub count: u32,
}

type Shard = Arc<Vec<Slot>>;

/// A name-keyed map whose clones share unchanged shards.
pub(crate) struct Table {
    route: SeededState,
    /// The suffixes records leave out, longest first; a record's suffix
    /// number `n > 0` is `suffixes[n - 1]`.
    suffixes: Arc<[Box<[u8]>]>,
    shards: Vec<Shard>,
    len: usize,
}

impl Clone for Table {
    fn clone(&self) -> Self {
        Table { route: self.route.clone(), suffixes: self.suffixes.clone(), shards: self.shards.clone(), len: self.len }
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("len", &self.len).finish()
    }
}

/// The reverse zones, in wire form.
const REVERSE: [&[u8]; 2] = [b"\x07in-addr\x04arpa\x00", b"\x03ip6\x04arpa\x00"];

impl Default for Table {
    /// A table whose records leave out the reverse zones.
    fn default() -> Self {
        Table::with_suffixes(REVERSE.iter().map(|s| s.to_vec().into()).collect())
    }
}

impl Table {
    fn with_suffixes(mut suffixes: Vec<Box<[u8]>>) -> Table {
        suffixes.sort_by_key(|s| std::cmp::Reverse(s.len()));
        suffixes.dedup();
        // Suffix numbers are a byte, 0 meaning none.
        suffixes.truncate(u8::MAX as usize);
        Table {
            route: SeededState::new(),
            suffixes: suffixes.into(),
            shards: (0..SHARDS).map(|_| Arc::new(Vec::new())).collect(),
            len: 0,
        }
    }

    /// A table for the names of `zone`: records leave out `svc.<zone>`,
    /// `pod.<zone>`, `<zone>` and the reverse zones.
    pub fn for_zone(zone: &Name) -> Table {
        let mut suffixes: Vec<Box<[u8]>> = REVERSE.iter().map(|s| s.to_vec().into()).collect();
        for sub in [&b"svc"[..], b"pod"] {
            if let Ok(n) = zone.prepend(sub) {
                suffixes.push(n.wire().into());
            }
        }
        // The root would match every name and save one byte.
        if zone.wire().len() > 1 {
            suffixes.push(zone.wire().into());
        }
        Table::with_suffixes(suffixes)
    }

    /// Suffix number `n` (0: none; an unknown number reads as none).
    #[inline]
    pub fn suffix(&self, n: u8) -> &[u8] {
        match n {
            0 => &[],
            n => self.suffixes.get(n as usize - 1).map_or(&[][..], |s| &s[..]),
        }
    }

    /// `key` less the longest suffix this table leaves out, and its number.
    pub fn split<'k>(&self, key: &'k [u8]) -> (&'k [u8], u8) {
        let suffix =
            self.suffixes.iter().position(|s| key.len() > s.len() && key.ends_with(s)).map_or(0, |i| i as u8 + 1);
        (&key[..key.len() - self.suffix(suffix).len()], suffix)
    }

    /// Whether `rec` is the record of the name `key`.
    #[inline]
    fn is_of(&self, rec: &Rec, key: &[u8]) -> bool {
        let (prefix, suffix) = (rec.prefix(), self.suffix(rec.suffix()));
        key.len() == prefix.len() + suffix.len() && key[..prefix.len()] == *prefix && key[prefix.len()..] == *suffix
    }

    /// The name of a record of this table.
    pub fn name_of(&self, rec: &Rec) -> Name {
        let mut wire = Vec::with_capacity(64);
        wire.extend_from_slice(rec.prefix());
        wire.extend_from_slice(self.suffix(rec.suffix()));
        Name::from_wire_unchecked(&wire)
    }

    /// Stores the records `node` (packed) and prepared answers `entry` of
    /// the name `key` (which need not be `in_view` yet), replacing what it
    /// had; the count is set if `count` is `Some`, else kept (0 for a new
    /// name). Returns the count.
    pub fn put(&mut self, key: &[u8], in_view: bool, node: &[u8], entry: Option<&[u8]>, count: Option<u32>) -> u32 {
        let (prefix, suffix) = self.split(key);
        self.insert_counted(key, Rec::new(prefix, suffix, in_view, node, entry), count)
    }

    /// The shard of `key` and its hash inside the shard.
    #[inline]
    fn locate(&self, key: &[u8]) -> (usize, u32) {
        let mut h = self.route.build_hasher();
        h.write(key);
        let h = h.finish();
        (((h >> 24) as usize) & (SHARDS - 1), (h >> 32) as u32)
    }

    /// Where `key` is in `shard`: `Ok(index)`, or `Err(where it goes)`.
    #[inline]
    fn find(&self, shard: &[Slot], hash: u32, key: &[u8]) -> Result<usize, usize> {
        let mut i = shard.partition_point(|s| s.hash < hash);
        let at = i;
        while i < shard.len() && shard[i].hash == hash {
            if self.is_of(&shard[i].rec, key) {
                return Ok(i);
            }
            i += 1;
        }
        Err(at)
    }

    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&Slot> {
        let (s, hash) = self.locate(key);
        let shard = &self.shards[s];
        self.find(shard, hash, key).ok().map(|i| &shard[i])
    }

    /// The slot of `key` to change in place, copying its shard first if
    /// another version still holds it (only when the key is there).
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Slot> {
        let (s, hash) = self.locate(key);
        let i = self.find(&self.shards[s], hash, key).ok()?;
        Some(&mut Arc::make_mut(&mut self.shards[s])[i])
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many shards two versions share.
    #[cfg(test)]
    pub fn shared_shards(&self, other: &Table) -> usize {
        self.shards.iter().zip(&other.shards).filter(|(a, b)| Arc::ptr_eq(a, b)).count()
    }

    /// Every slot, shard by shard: in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// Inserts `rec` (of the name `key`), or replaces the record there,
    /// setting the count if `count` is `Some`.
    fn insert_counted(&mut self, key: &[u8], rec: Rec, count: Option<u32>) -> u32 {
        let (s, hash) = self.locate(key);
        let found = self.find(&self.shards[s], hash, key);
        let shard = Arc::make_mut(&mut self.shards[s]);
        match found {
            Ok(i) => {
                let slot = &mut shard[i];
                slot.rec = rec;
                if let Some(c) = count {
                    slot.count = c;
                }
                slot.count
            }
            Err(at) => {
                // Exact capacity: most shards are written rarely, and a
                // doubled vector would leave half of itself empty.
                shard.reserve_exact(1);
                let count = count.unwrap_or(0);
                shard.insert(at, Slot { rec, hash, count });
                self.len += 1;
                count
            }
        }
    }

    /// Removes, copying the shard only if the key is there.
    pub fn remove(&mut self, key: &[u8]) -> Option<Slot> {
        let (s, hash) = self.locate(key);
        let i = self.find(&self.shards[s], hash, key).ok()?;
        let shard = Arc::make_mut(&mut self.shards[s]);
        let old = shard.remove(i);
        shard.shrink_to_fit();
        self.len -= 1;
        Some(old)
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

    fn put(t: &mut Table, s: &str, tag: u8) -> u32 {
        t.put(Name::parse(s).unwrap().wire(), true, &[tag], None, None)
    }

    fn tag(t: &Table, s: &str) -> Option<u8> {
        t.get(Name::parse(s).unwrap().wire()).map(|slot| slot.rec.node_bytes()[0])
    }

    #[test]
    fn a_clone_is_unaffected_by_later_writes_and_shares_untouched_shards() {
        let mut t = Table::for_zone(&Name::parse("example").unwrap());
        for i in 0..5000 {
            put(&mut t, &format!("s{i}.example"), (i % 200) as u8);
        }
        let before = t.clone();
        put(&mut t, "s1.example", 99);
        put(&mut t, "new.example", 7);
        assert!(t.remove(Name::parse("s2.example").unwrap().wire()).is_some());
        assert!(t.remove(Name::parse("absent.example").unwrap().wire()).is_none());
        assert_eq!((before.len(), t.len()), (5000, 5000));
        assert_eq!(tag(&before, "s1.example"), Some(1));
        assert_eq!(tag(&t, "s1.example"), Some(99));
        assert_eq!(tag(&t, "new.example"), Some(7));
        assert!(tag(&before, "s2.example").is_some() && tag(&t, "s2.example").is_none());
        let shared = before.shared_shards(&t);
        assert!(shared >= SHARDS - 3, "{shared} shards shared");
        assert_eq!(t.iter().count(), 5000);
        for i in (0..5000).filter(|i| *i != 2) {
            assert!(tag(&t, &format!("s{i}.example")).is_some(), "s{i}");
        }
        t.get_mut(Name::parse("s3.example").unwrap().wire()).unwrap().count = 4;
        assert_eq!(put(&mut t, "s3.example", 1), 4);
        assert_eq!(before.get(Name::parse("s3.example").unwrap().wire()).unwrap().count, 0);
    }

    #[test]
    fn names_are_stored_without_the_longest_common_suffix_and_found_whole() {
        let mut t = Table::for_zone(&Name::parse("cluster.local").unwrap());
        let names = [
            ("web.ns.svc.cluster.local", b"\x03web\x02ns".to_vec()),
            ("svc.cluster.local", b"\x03svc\x07cluster\x05local\x00"[..4].to_vec()),
            ("cluster.local", b"\x07cluster\x05local\x00".to_vec()),
            ("a.pod.cluster.local", b"\x01a".to_vec()),
            ("pod.cluster.local", b"\x03pod".to_vec()),
            ("1.0.0.10.in-addr.arpa", b"\x011\x010\x010\x0210".to_vec()),
            ("1.0.ip6.arpa", b"\x011\x010".to_vec()),
            ("example.com", b"\x07example\x03com\x00".to_vec()),
            ("in-addr.arpa", b"\x07in-addr\x04arpa\x00".to_vec()),
        ];
        for (i, (n, _)) in names.iter().enumerate() {
            put(&mut t, n, i as u8);
        }
        for (i, (n, prefix)) in names.iter().enumerate() {
            let name = Name::parse(n).unwrap();
            let slot = t.get(name.wire()).unwrap_or_else(|| panic!("{n}"));
            assert_eq!((slot.rec.prefix(), slot.rec.node_bytes()[0]), (&prefix[..], i as u8), "{n}");
            assert_eq!(t.name_of(&slot.rec), name);
        }
        for absent in ["eb.ns.svc.cluster.local", "web.ns.cluster.local", "ns.svc.cluster.local", "local", "arpa"] {
            assert!(t.get(Name::parse(absent).unwrap().wire()).is_none(), "{absent}");
        }
    }
}
