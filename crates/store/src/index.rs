//! The in-memory index: every live key with its value and revisions.
//!
//! The index is the only thing reads look at; disk is consulted only at
//! open. It changes exclusively by applying [`Record`]s — the same unit
//! that is written to the log — so replay at open and live commits share
//! one code path and cannot drift apart.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::{KeyValue, ListResult, Revision};

/// A stored value. The key lives in the map, not here, so it is held once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) value: Bytes,
    pub(crate) create_revision: Revision,
    pub(crate) mod_revision: Revision,
}

impl Entry {
    pub(crate) fn to_kv(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        }
    }
}

/// One change to one key. A `Put`'s `mod_revision` is its record's revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mutation {
    Put { key: String, value: Bytes, create_revision: Revision },
    Delete { key: String },
}

/// Everything one write call changed, at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) revision: Revision,
    pub(crate) mutations: Vec<Mutation>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    map: BTreeMap<String, Entry>,
    revision: Revision,
    /// Approximate bytes of live keys and values; compaction compares the
    /// log size against it to decide whether rewriting is worth it.
    live_bytes: u64,
}

impl Index {
    /// An index holding `map` as of `revision` (a loaded snapshot).
    pub(crate) fn from_snapshot(map: BTreeMap<String, Entry>, revision: Revision) -> Self {
        let live_bytes = map.iter().map(|(k, e)| entry_bytes(k, e)).sum();
        Self { map, revision, live_bytes }
    }

    pub(crate) fn revision(&self) -> Revision {
        self.revision
    }

    pub(crate) fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn entry(&self, key: &str) -> Option<&Entry> {
        self.map.get(key)
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &Entry)> {
        self.map.iter()
    }

    pub(crate) fn get(&self, key: &str) -> Option<KeyValue> {
        self.map.get(key).map(|e| e.to_kv(key))
    }

    pub(crate) fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> ListResult {
        // Starting at the later of `prefix` and `start_after` keeps the scan
        // proportional to the page, not to the keys skipped.
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut kvs = Vec::new();
        let mut more = false;
        for (key, entry) in self.map.range::<str, _>((lower, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if kvs.len() == limit {
                more = true;
                break;
            }
            kvs.push(entry.to_kv(key));
        }
        ListResult { kvs, revision: self.revision, more }
    }

    /// Applies a record. Records come either from the writer, which staged
    /// them against this very index, or from a checksummed log, so they are
    /// applied without re-validation.
    pub(crate) fn apply(&mut self, record: Record) {
        for mutation in record.mutations {
            match mutation {
                Mutation::Put { key, value, create_revision } => {
                    let entry = Entry { value, create_revision, mod_revision: record.revision };
                    self.live_bytes += entry_bytes(&key, &entry);
                    if let Some(old) = self.map.get_mut(&key) {
                        self.live_bytes = self.live_bytes.saturating_sub(entry_bytes(&key, old));
                        *old = entry;
                    } else {
                        self.map.insert(key, entry);
                    }
                }
                Mutation::Delete { key } => {
                    if let Some(old) = self.map.remove(&key) {
                        self.live_bytes = self.live_bytes.saturating_sub(entry_bytes(&key, &old));
                    }
                }
            }
        }
        self.revision = record.revision;
    }
}

fn entry_bytes(key: &str, entry: &Entry) -> u64 {
    (key.len() + entry.value.len()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str, create_revision: Revision) -> Mutation {
        Mutation::Put { key: key.into(), value: Bytes::from(value.to_owned()), create_revision }
    }

    fn index_with(keys: &[&str]) -> Index {
        let mut index = Index::default();
        for (i, key) in keys.iter().enumerate() {
            let revision = i as Revision + 1;
            index.apply(Record { revision, mutations: vec![put(key, "v", revision)] });
        }
        index
    }

    fn keys(result: &ListResult) -> Vec<&str> {
        result.kvs.iter().map(|kv| kv.key.as_str()).collect()
    }

    #[test]
    fn list_stops_at_the_end_of_the_prefix() {
        let index = index_with(&["/a", "/b/1", "/b/2", "/b0", "/c"]);
        let result = index.list("/b/", None, 0);
        assert_eq!(keys(&result), ["/b/1", "/b/2"]);
        assert!(!result.more);
        assert_eq!(result.revision, 5);
    }

    #[test]
    fn list_pages_with_start_after_and_limit() {
        let index = index_with(&["/p/1", "/p/2", "/p/3", "/q"]);
        let page = index.list("/p/", None, 2);
        assert_eq!(keys(&page), ["/p/1", "/p/2"]);
        assert!(page.more);
        let page = index.list("/p/", Some("/p/2"), 2);
        assert_eq!(keys(&page), ["/p/3"]);
        assert!(!page.more);
        // A start_after before the prefix must not leak keys from outside it.
        let page = index.list("/p/", Some("/a"), 0);
        assert_eq!(keys(&page), ["/p/1", "/p/2", "/p/3"]);
    }

    #[test]
    fn live_bytes_follow_puts_and_deletes() {
        let mut index = Index::default();
        index.apply(Record { revision: 1, mutations: vec![put("k", "1234", 1)] });
        assert_eq!(index.live_bytes(), 5);
        index.apply(Record { revision: 2, mutations: vec![put("k", "12", 1)] });
        assert_eq!(index.live_bytes(), 3);
        index.apply(Record { revision: 3, mutations: vec![Mutation::Delete { key: "k".into() }] });
        assert_eq!(index.live_bytes(), 0);
        assert_eq!(index.revision(), 3);
    }
}
