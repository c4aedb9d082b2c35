//! [`Table`]: the persistent map from names to [`Rec`]s behind the zone
//! view: one entry per name, holding the name, its records and its
//! prepared answers in consecutive bytes of its shard, with the zone's
//! reference count of the name beside it.
//!
//! The map is split into [`SHARDS`] shards, each behind its own `Arc`.
//! Cloning a table copies the shard pointers, not the entries; a write
//! copies only the shard it lands in, and only while an older version
//! still shares it (`Arc::make_mut`). So the updater keeps a private table,
//! changes a few names, and hands readers a clone: the old and new
//! versions share every shard but the touched ones, readers never see a
//! half-applied update, and a change costs the size of a shard (about
//! fifteen entries at 60,000 names), not of the zone.
//!
//! A shard is a vector of 16-byte places sorted by hash, and one byte
//! vector holding its records back to back, both kept at exact capacity:
//! a lookup is a binary search over a few dozen hashes, and the zone pays
//! for neither a hash map's empty buckets nor a key beside each value (the
//! name is inside the record), nor an allocation per name (its reference
//! counts, malloc's header and rounding: about 40 bytes a name, more than
//! most names' records). A write moves the bytes after the record it
//! changes: tens of kilobytes in a big zone, about the size of the copy a
//! shared shard needs anyway. The record holds its name less
//! the longest of a few suffixes most names share (`svc.<zone>`, `pod.<zone>`, `<zone>`,
//! the reverse zones): a lookup compares the two parts.
//!
//! The empty non-terminals `_tcp.<svc>`, `_udp.<svc>` and `_sctp.<svc>` (there to answer
//! NODATA above `_http._tcp.<svc>`) are not names of their own: while
//! the parent is stored and the child has no records, the child's state
//! and count are a few bytes of the parent's record ([`Rec`]'s children),
//! and a lookup that misses a `_tcp.`, `_udp.` or `_sctp.` name looks for
//! it there. A child that gets records, or whose parent goes first, moves
//! to a slot of its own; readers see the same names either way.
//!
//! [`SeededState`] is the hasher of the hot path, shared with the rest of
//! the crate.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::name::Name;
use crate::view::{CHILD_ENTRY, CHILD_LABELS, Child, Children, Rec};

/// Shards per table: a power of two. Fixed, so that a table never needs
/// re-sharding; an empty shard costs one small allocation (its `Arc`).
///
/// Many small shards rather than fewer big ones: a shard's vectors are
/// reallocated as it grows and copied when a published view still shares
/// them, and glibc's heap reuses the holes small vectors leave far better
/// than big ones'. At 10,000 Services (60,000 names) a shard holds about 15
/// names, about 1.2 KB; the zone's resident memory per Service was 729
/// bytes with 1,024 shards, 652 with 2,048 and 628 with 4,096, and 1,089
/// with 256 (`zone_memory_per_service`), for 4096 allocations of a few
/// dozen bytes each when the zone is empty.
pub(crate) const SHARDS: usize = 4096;

/// Splits a name's 64-bit hash into its shard (bits below 32) and its
/// hash inside the shard (the upper 32 bits), so the two do not overlap.
/// `shards` is a power of two between 2 and 2^31.
#[inline]
pub(crate) fn shard_of(h: u64, shards: usize) -> (usize, u32) {
    ((h as u32 >> (32 - shards.trailing_zeros())) as usize, (h >> 32) as u32)
}

/// One name of the table as read: its record and how many contributions
/// of the live zone hold the name (zero in views built whole; the
/// updater's bookkeeping, ignored by readers).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot<'a> {
    pub rec: Rec<'a>,
    pub count: u32,
    /// For a child held in its parent's record (`view.rs`): the parent's
    /// record and the child's [`CHILD_LABELS`] index.
    of: Option<(Rec<'a>, usize)>,
}

/// Where a name's record is in its shard: the name's hash (the shard's
/// sort key), its count, and its bytes.
#[derive(Clone, Copy)]
struct Place {
    hash: u32,
    count: u32,
    at: u32,
    len: u32,
}

/// Names sorted by hash, and their records back to back (in no order).
#[derive(Clone, Default)]
struct Shard {
    places: Vec<Place>,
    bytes: Vec<u8>,
}

impl Shard {
    #[inline]
    fn rec(&self, p: &Place) -> Rec<'_> {
        Rec::from_bytes(&self.bytes[p.at as usize..(p.at + p.len) as usize])
    }

    #[inline]
    fn slot(&self, p: &Place) -> Slot<'_> {
        Slot { rec: self.rec(p), count: p.count, of: None }
    }

    /// The slot and the slots of the children it holds.
    fn slots<'s>(&'s self, p: &Place) -> impl Iterator<Item = Slot<'s>> + 's {
        let rec = self.rec(p);
        let children = rec.children();
        std::iter::once(self.slot(p)).chain(
            (0..children.len())
                .filter_map(move |i| children[i].map(|c| Slot { rec: c.rec(), count: c.count, of: Some((rec, i)) })),
        )
    }

    /// Shifts the records stored after `at` by `delta` bytes.
    /// Replaces the record of place `i` by `new`.
    fn replace(&mut self, i: usize, new: &[u8]) {
        let Place { at, len, .. } = self.places[i];
        splice_packed(&mut self.bytes, at, len, new, self.places.iter_mut().map(|p| &mut p.at));
        self.places[i].len = new.len() as u32;
    }

    fn insert(&mut self, i: usize, hash: u32, count: u32, new: &[u8]) {
        // Exact capacity: most shards are written rarely, and a doubled
        // vector would leave half of itself empty.
        self.places.reserve_exact(1);
        self.bytes.reserve_exact(new.len());
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(new);
        self.places.insert(i, Place { hash, count, at, len: new.len() as u32 });
    }

    fn remove(&mut self, i: usize) {
        let Place { at, len, .. } = self.places.remove(i);
        splice_packed(&mut self.bytes, at, len, &[], self.places.iter_mut().map(|p| &mut p.at));
        self.places.shrink_to_fit();
    }
}

/// Puts `new` in place of the `len` bytes at `at` of a packed shard's
/// vector (kept at exact capacity), moving the `offsets` of the records
/// after them by the difference. The view's table and the live zone's
/// `Store` keep their shards so.
pub(crate) fn splice_packed<'a>(
    bytes: &mut Vec<u8>,
    at: u32,
    len: u32,
    new: &[u8],
    offsets: impl Iterator<Item = &'a mut u32>,
) {
    let range = at as usize..(at + len) as usize;
    if new.len() == len as usize {
        bytes[range].copy_from_slice(new);
        return;
    }
    if new.len() > len as usize {
        bytes.reserve_exact(new.len() - len as usize);
    }
    bytes.splice(range, new.iter().copied());
    let delta = new.len() as i64 - i64::from(len);
    for offset in offsets.filter(|o| **o > at) {
        // Shard bytes: far below 4 GiB.
        *offset = (i64::from(*offset) + delta) as u32;
    }
    bytes.shrink_to_fit();
}

/// A name-keyed map whose clones share unchanged shards.
pub(crate) struct Table {
    route: SeededState,
    /// The suffixes records leave out, longest first; a record's suffix
    /// number `n > 0` is `suffixes[n - 1]`.
    suffixes: Arc<[Box<[u8]>]>,
    shards: Vec<Arc<Shard>>,
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
            shards: (0..SHARDS).map(|_| Arc::new(Shard::default())).collect(),
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
    fn is_of(&self, rec: Rec<'_>, key: &[u8]) -> bool {
        let (prefix, suffix) = (rec.prefix(), self.suffix(rec.suffix()));
        key.len() == prefix.len() + suffix.len() && key[..prefix.len()] == *prefix && key[prefix.len()..] == *suffix
    }

    /// The name of a slot of this table.
    pub fn name_of(&self, slot: &Slot<'_>) -> Name {
        let mut wire = Vec::with_capacity(64);
        let rec = match slot.of {
            Some((parent, i)) => {
                wire.extend_from_slice(CHILD_LABELS[i]);
                parent
            }
            None => slot.rec,
        };
        wire.extend_from_slice(rec.prefix());
        wire.extend_from_slice(self.suffix(rec.suffix()));
        Name::from_wire_unchecked(&wire)
    }

    /// The child index and parent of a name that can be held as a child
    /// (`_tcp.<parent>` and the like).
    #[inline]
    fn child_of(key: &[u8]) -> Option<(usize, &[u8])> {
        CHILD_LABELS
            .iter()
            .position(|l| key.len() > l.len() && key.starts_with(l))
            .map(|i| (i, &key[CHILD_LABELS[i].len()..]))
    }

    /// Sets the children of the stored name `key` (which is there).
    fn set_children(&mut self, key: &[u8], children: &Children) {
        let (s, hash) = self.locate(key);
        let Ok(i) = self.find(&self.shards[s], hash, key) else { return };
        let shard = &self.shards[s];
        let rec = shard.rec(&shard.places[i]);
        let new = Rec::encode(rec.prefix(), rec.suffix(), rec.in_view(), rec.node_bytes(), rec.entry_bytes(), children);
        Arc::make_mut(&mut self.shards[s]).replace(i, &new);
    }

    /// Stores the records `node` (packed) and prepared answers `entry` of
    /// the name `key` (which need not be `in_view` yet), replacing what it
    /// had; the count is set if `count` is `Some`, else kept (0 for a new
    /// name). Returns the count.
    ///
    /// An empty non-terminal that can be a child (`_tcp.<parent>`, without
    /// records, its answers none yet or the zone's NODATA) is kept in its
    /// parent's record when the parent is stored, and a child that gets
    /// records moves out to a slot of its own.
    pub fn put(&mut self, key: &[u8], in_view: bool, node: &[u8], entry: Option<&[u8]>, count: Option<u32>) -> u32 {
        let mut count = count;
        if let (Err(_), Some((i, parent))) = (self.find_key(key), Table::child_of(key)) {
            if let Some(mut children) = self.get_stored(parent).map(|p| p.rec.children()) {
                if node.is_empty() && entry.is_none_or(|e| e == CHILD_ENTRY) {
                    let was = children[i];
                    let count = count.or(was.map(|c| c.count)).unwrap_or(0);
                    children[i] = Some(Child { in_view, has_entry: entry.is_some(), count });
                    self.set_children(parent, &children);
                    if was.is_none() {
                        self.len += 1;
                    }
                    return count;
                }
                if let Some(was) = children[i].take() {
                    self.set_children(parent, &children);
                    self.len -= 1;
                    count = count.or(Some(was.count));
                }
            }
        }
        let (prefix, suffix) = self.split(key);
        let (s, hash) = self.locate(key);
        let found = self.find(&self.shards[s], hash, key);
        let children = match found {
            Ok(i) => self.shards[s].rec(&self.shards[s].places[i]).children(),
            Err(_) => Children::default(),
        };
        let rec = Rec::encode(prefix, suffix, in_view, node, entry, &children);
        let shard = Arc::make_mut(&mut self.shards[s]);
        match found {
            Ok(i) => {
                shard.replace(i, &rec);
                let place = &mut shard.places[i];
                if let Some(c) = count {
                    place.count = c;
                }
                place.count
            }
            Err(at) => {
                let count = count.unwrap_or(0);
                shard.insert(at, hash, count, &rec);
                self.len += 1;
                count
            }
        }
    }

    /// Where `key` is stored in its shard.
    #[inline]
    fn find_key(&self, key: &[u8]) -> Result<usize, usize> {
        let (s, hash) = self.locate(key);
        self.find(&self.shards[s], hash, key)
    }

    /// The shard of `key` and its hash inside the shard.
    #[inline]
    fn locate(&self, key: &[u8]) -> (usize, u32) {
        let mut h = self.route.build_hasher();
        h.write(key);
        shard_of(h.finish(), SHARDS)
    }

    /// Where `key` is in `shard`: `Ok(index)`, or `Err(where it goes)`.
    #[inline]
    fn find(&self, shard: &Shard, hash: u32, key: &[u8]) -> Result<usize, usize> {
        let places = &shard.places;
        let mut i = places.partition_point(|p| p.hash < hash);
        let at = i;
        while i < places.len() && places[i].hash == hash {
            if self.is_of(shard.rec(&places[i]), key) {
                return Ok(i);
            }
            i += 1;
        }
        Err(at)
    }

    /// The slot of `key`, stored or held as a child of its parent.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<Slot<'_>> {
        if let Some(slot) = self.get_stored(key) {
            return Some(slot);
        }
        let (i, parent) = Table::child_of(key)?;
        let p = self.get_stored(parent)?;
        let c = p.rec.children()[i]?;
        Some(Slot { rec: c.rec(), count: c.count, of: Some((p.rec, i)) })
    }

    #[inline]
    fn get_stored(&self, key: &[u8]) -> Option<Slot<'_>> {
        let (s, hash) = self.locate(key);
        let shard = &*self.shards[s];
        self.find(shard, hash, key).ok().map(|i| shard.slot(&shard.places[i]))
    }

    /// Adds one to the count of `key` (`up`) or takes one off (not below
    /// zero), copying its shard first if another version still holds it.
    /// Returns the new count, or `None` if the name is not there.
    pub fn bump(&mut self, key: &[u8], up: bool) -> Option<u32> {
        let step = |c: u32| if up { c.saturating_add(1) } else { c.saturating_sub(1) };
        let (s, hash) = self.locate(key);
        if let Ok(i) = self.find(&self.shards[s], hash, key) {
            let count = &mut Arc::make_mut(&mut self.shards[s]).places[i].count;
            *count = step(*count);
            return Some(*count);
        }
        let (i, parent) = Table::child_of(key)?;
        let mut children = self.get_stored(parent)?.rec.children();
        let c = children[i].as_mut()?;
        c.count = step(c.count);
        let count = c.count;
        self.set_children(parent, &children);
        Some(count)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many names have slots of their own (the others are children
    /// held in their parents' records).
    #[cfg(test)]
    pub fn stored(&self) -> usize {
        self.shards.iter().map(|s| s.places.len()).sum()
    }

    /// How many shards two versions share.
    #[cfg(test)]
    pub fn shared_shards(&self, other: &Table) -> usize {
        self.shards.iter().zip(&other.shards).filter(|(a, b)| Arc::ptr_eq(a, b)).count()
    }

    /// Every slot, shard by shard: in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = Slot<'_>> {
        self.shards.iter().flat_map(|s| s.places.iter().flat_map(|p| s.slots(p)))
    }

    /// Removes, copying the shard only if the key is there. Returns
    /// whether the name was in the view.
    pub fn remove(&mut self, key: &[u8]) -> Option<bool> {
        let (s, hash) = self.locate(key);
        let Ok(i) = self.find(&self.shards[s], hash, key) else {
            let (i, parent) = Table::child_of(key)?;
            let mut children = self.get_stored(parent)?.rec.children();
            let was = children[i].take()?;
            self.set_children(parent, &children);
            self.len -= 1;
            return Some(was.in_view);
        };
        let rec = self.shards[s].rec(&self.shards[s].places[i]);
        let in_view = rec.in_view();
        let children = rec.children();
        Arc::make_mut(&mut self.shards[s]).remove(i);
        self.len -= 1;
        // Children outlive their parent only between two steps of an
        // update; they move to slots of their own meanwhile.
        for (i, c) in children.iter().enumerate() {
            let Some(c) = c else { continue };
            let mut wire = CHILD_LABELS[i].to_vec();
            wire.extend_from_slice(key);
            self.len -= 1;
            let entry = c.has_entry.then_some(&CHILD_ENTRY[..]);
            self.put(&wire, c.in_view, &[], entry, Some(c.count));
        }
        Some(in_view)
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
        for _ in 0..4 {
            t.bump(Name::parse("s3.example").unwrap().wire(), true);
        }
        assert_eq!(put(&mut t, "s3.example", 1), 4);
        assert_eq!(before.get(Name::parse("s3.example").unwrap().wire()).unwrap().count, 0);
    }

    fn wire(s: &str) -> Vec<u8> {
        Name::parse(s).unwrap().wire().to_vec()
    }

    #[test]
    fn empty_protocol_names_are_held_in_their_parents_record_while_they_can_be() {
        let mut t = Table::for_zone(&Name::parse("cluster.local").unwrap());
        let (svc, tcp) = (wire("web.a.svc.cluster.local"), wire("_tcp.web.a.svc.cluster.local"));
        // Before its parent: a slot of its own.
        t.put(&tcp, false, &[], None, Some(1));
        assert_eq!((t.len(), t.stored()), (1, 1));
        t.remove(&tcp);
        t.put(&svc, false, &[], None, Some(1));
        assert_eq!(t.put(&tcp, false, &[], None, Some(1)), 1);
        assert_eq!((t.len(), t.stored()), (2, 1));
        assert_eq!(t.bump(&tcp, true), Some(2));
        // The parent's records change: the child stays.
        t.put(&svc, true, &[0, 1, 0, 4, 10, 0, 0, 1], None, None);
        t.put(&tcp, true, &[], Some(&CHILD_ENTRY), None);
        let slot = t.get(&tcp).unwrap();
        assert_eq!((slot.count, slot.rec.in_view(), slot.rec.entry_bytes()), (2, true, Some(&CHILD_ENTRY[..])));
        assert_eq!(t.name_of(&slot), Name::parse("_tcp.web.a.svc.cluster.local").unwrap());
        assert_eq!(t.get(&svc).unwrap().rec.node_bytes(), &[0, 1, 0, 4, 10, 0, 0, 1]);
        assert!(t.get(&wire("_udp.web.a.svc.cluster.local")).is_none());
        assert!(t.get(&wire("_tcp.other.a.svc.cluster.local")).is_none());
        assert_eq!(t.iter().count(), 2);
        // Records at the child: a slot of its own, count kept.
        t.put(&tcp, true, &[0, 1, 0, 4, 10, 0, 0, 2], None, None);
        assert_eq!((t.len(), t.stored()), (2, 2));
        assert_eq!(t.get(&tcp).unwrap().count, 2);
        t.put(&tcp, true, &[], None, None);
        t.remove(&tcp);
        // A parent removed before its child: the child moves out.
        t.put(&tcp, true, &[], Some(&CHILD_ENTRY), Some(3));
        assert_eq!((t.len(), t.stored()), (2, 1));
        let before = t.clone();
        assert_eq!(t.remove(&svc), Some(true));
        assert_eq!((t.len(), t.stored()), (1, 1));
        let slot = t.get(&tcp).unwrap();
        assert_eq!((slot.count, slot.rec.in_view(), slot.rec.entry_bytes()), (3, true, Some(&CHILD_ENTRY[..])));
        assert_eq!(t.remove(&tcp), Some(true));
        assert!(t.is_empty());
        // The version before is untouched.
        assert_eq!(before.get(&tcp).unwrap().count, 3);
        assert_eq!(before.len(), 2);
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
            assert_eq!(t.name_of(&slot), name);
        }
        for absent in ["eb.ns.svc.cluster.local", "web.ns.cluster.local", "ns.svc.cluster.local", "local", "arpa"] {
            assert!(t.get(Name::parse(absent).unwrap().wire()).is_none(), "{absent}");
        }
    }
}
