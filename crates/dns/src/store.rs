//! [`Store`]: the live zone's objects (`zone.rs`) by `namespace/name`, as
//! byte strings packed back to back.
//!
//! The zone keeps tens of thousands of small packed objects (`slot.rs`: a
//! Service with its slices in about 100 bytes, a Pod in about 20, a
//! slice's Service name). In a hash set each cost a 16-byte bucket at a
//! load factor between 44 and 87%, and an allocation with malloc's header
//! and rounding: 40 to 60 bytes beside the object. Here an object costs a
//! 12-byte place (hash, offset, length) in a vector sorted by hash and its
//! bytes in its shard's byte vector, both at exact capacity. A write moves
//! the bytes of its shard after the object (a few kilobytes at 100,000
//! objects); nothing reads a store on the query path.

use std::hash::{BuildHasher, Hasher};

use crate::table::{SeededState, shard_of, splice_packed};

/// Shards per store: a power of two, fixed; many, for the reason the
/// view's table has many (`table.rs`).
const SHARDS: usize = 1024;

#[derive(Clone, Copy)]
struct Place {
    hash: u32,
    at: u32,
    len: u32,
}

/// Keys sorted by hash; each entry is `key length u16, key, value`.
#[derive(Default)]
struct Shard {
    places: Vec<Place>,
    bytes: Vec<u8>,
}

impl Shard {
    #[inline]
    fn entry(&self, p: &Place) -> (&[u8], &[u8]) {
        let e = &self.bytes[p.at as usize..(p.at + p.len) as usize];
        let n = u16::from_be_bytes([e[0], e[1]]) as usize;
        (&e[2..2 + n], &e[2 + n..])
    }
}

/// A map from keys to byte strings, packed.
pub(crate) struct Store {
    route: SeededState,
    shards: Vec<Shard>,
    len: usize,
}

impl Default for Store {
    fn default() -> Self {
        Store { route: SeededState::new(), shards: (0..SHARDS).map(|_| Shard::default()).collect(), len: 0 }
    }
}

impl Store {
    #[inline]
    fn locate(&self, key: &[u8]) -> (usize, u32) {
        let mut h = self.route.build_hasher();
        h.write(key);
        shard_of(h.finish(), SHARDS)
    }

    fn find(&self, s: usize, hash: u32, key: &[u8]) -> Result<usize, usize> {
        let shard = &self.shards[s];
        let mut i = shard.places.partition_point(|p| p.hash < hash);
        let at = i;
        while i < shard.places.len() && shard.places[i].hash == hash {
            if shard.entry(&shard.places[i]).0 == key {
                return Ok(i);
            }
            i += 1;
        }
        Err(at)
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let (s, hash) = self.locate(key);
        let i = self.find(s, hash, key).ok()?;
        let shard = &self.shards[s];
        Some(shard.entry(&shard.places[i]).1)
    }

    /// Sets the value of `key` (at most 65,535 bytes: a `namespace/name`
    /// is under 320). Returns whether it replaced one.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> bool {
        let mut entry = Vec::with_capacity(2 + key.len() + value.len());
        entry.extend_from_slice(&(key.len() as u16).to_be_bytes());
        entry.extend_from_slice(key);
        entry.extend_from_slice(value);
        let (s, hash) = self.locate(key);
        let found = self.find(s, hash, key);
        let shard = &mut self.shards[s];
        match found {
            Ok(i) => {
                let Place { at, len, .. } = shard.places[i];
                splice_packed(&mut shard.bytes, at, len, &entry, shard.places.iter_mut().map(|p| &mut p.at));
                shard.places[i].len = entry.len() as u32;
                true
            }
            Err(i) => {
                // Exact capacity, as the view's table (`table.rs`).
                shard.places.reserve_exact(1);
                shard.bytes.reserve_exact(entry.len());
                let at = shard.bytes.len() as u32;
                shard.bytes.extend_from_slice(&entry);
                shard.places.insert(i, Place { hash, at, len: entry.len() as u32 });
                self.len += 1;
                false
            }
        }
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let (s, hash) = self.locate(key);
        let Ok(i) = self.find(s, hash, key) else { return false };
        let shard = &mut self.shards[s];
        let Place { at, len, .. } = shard.places.remove(i);
        splice_packed(&mut shard.bytes, at, len, &[], shard.places.iter_mut().map(|p| &mut p.at));
        shard.places.shrink_to_fit();
        self.len -= 1;
        true
    }

    /// Every key with its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.shards.iter().flat_map(|s| s.places.iter().map(|p| s.entry(p)))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_key_through_inserts_replacements_and_removals() {
        let mut s = Store::default();
        let mut model = std::collections::HashMap::new();
        for i in 0..3000u32 {
            let key = format!("ns/obj-{}", i % 700);
            let value = vec![i as u8; (i % 37) as usize];
            if i % 5 == 4 {
                assert_eq!(s.remove(key.as_bytes()), model.remove(&key).is_some(), "{key}");
            } else {
                assert_eq!(s.put(key.as_bytes(), &value), model.insert(key.clone(), value).is_some(), "{key}");
            }
        }
        assert_eq!(s.len(), model.len());
        for (k, v) in &model {
            assert_eq!(s.get(k.as_bytes()), Some(&v[..]), "{k}");
        }
        let mut seen: Vec<(Vec<u8>, Vec<u8>)> = s.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        let mut want: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().map(|(k, v)| (k.into_bytes(), v)).collect();
        seen.sort();
        want.sort();
        assert_eq!(seen, want);
        assert!(s.get(b"ns/absent").is_none() && !s.remove(b"ns/absent"));
    }
}
