//! Validating a group-commit batch with exactly sequential semantics.
//!
//! The writer drains many requests at once and makes them durable with a
//! single fsync. For the result to be indistinguishable from running them one
//! after another, each request is checked against the committed index *plus*
//! the effects of the requests staged before it in the same batch. Those
//! effects live in an overlay here; the committed index is untouched until the
//! whole batch is on disk, so readers never see a write that is not durable.

use std::collections::HashMap;

use crate::index::{Entry, Index, Mutation, Record};
use crate::{Error, EventKind, KeyValue, Result, Revision, TxnOp, WatchEvent};

/// A request that passed validation: the record to log, the events to
/// publish once durable, and the key-value a single delete returns.
pub(crate) struct Staged {
    pub(crate) record: Record,
    pub(crate) events: Vec<WatchEvent>,
    pub(crate) deleted: Option<KeyValue>,
}

pub(crate) struct Batch<'a> {
    index: &'a Index,
    /// Keys changed by earlier requests of this batch; `None` = deleted.
    overlay: HashMap<String, Option<Entry>>,
    next_revision: Revision,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(index: &'a Index) -> Self {
        Self { index, overlay: HashMap::new(), next_revision: index.revision() + 1 }
    }

    /// Validates `ops` as one atomic write. On success its effects become
    /// visible to later requests of the batch and it takes the next revision;
    /// on failure nothing of it is kept and no revision is used.
    pub(crate) fn stage(&mut self, ops: Vec<TxnOp>) -> Result<Staged> {
        let revision = self.next_revision;
        // Changes of this request only, so a failing op can discard them.
        let mut local: HashMap<String, Option<Entry>> = HashMap::new();
        let mut mutations = Vec::with_capacity(ops.len());
        let mut events = Vec::with_capacity(ops.len());
        let mut deleted = None;
        for op in ops {
            match op {
                TxnOp::Create { key, value } => {
                    if self.lookup(&local, &key).is_some() {
                        return Err(Error::AlreadyExists(key));
                    }
                    let entry = Entry { value: value.clone(), create_revision: revision, mod_revision: revision };
                    events.push(WatchEvent { kind: EventKind::Put, kv: entry.to_kv(&key), prev: None });
                    mutations.push(Mutation::Put { key: key.clone(), value, create_revision: revision });
                    local.insert(key, Some(entry));
                }
                TxnOp::Update { key, value, expected } => {
                    let Some(old) = self.lookup(&local, &key) else {
                        return Err(Error::NotFound(key));
                    };
                    if old.mod_revision != expected {
                        return Err(Error::Conflict { key, expected, current: old.mod_revision });
                    }
                    let entry =
                        Entry { value: value.clone(), create_revision: old.create_revision, mod_revision: revision };
                    events.push(WatchEvent {
                        kind: EventKind::Put,
                        kv: entry.to_kv(&key),
                        prev: Some(old.to_kv(&key)),
                    });
                    mutations.push(Mutation::Put { key: key.clone(), value, create_revision: old.create_revision });
                    local.insert(key, Some(entry));
                }
                TxnOp::Delete { key, expected } => {
                    let Some(old) = self.lookup(&local, &key) else {
                        return Err(Error::NotFound(key));
                    };
                    if let Some(expected) = expected
                        && old.mod_revision != expected
                    {
                        return Err(Error::Conflict { key, expected, current: old.mod_revision });
                    }
                    let prev = old.to_kv(&key);
                    let kv = KeyValue { mod_revision: revision, ..prev.clone() };
                    events.push(WatchEvent { kind: EventKind::Delete, kv: kv.clone(), prev: Some(prev) });
                    deleted = Some(kv);
                    mutations.push(Mutation::Delete { key: key.clone() });
                    local.insert(key, None);
                }
            }
        }
        self.overlay.extend(local);
        self.next_revision += 1;
        Ok(Staged { record: Record { revision, mutations }, events, deleted })
    }

    fn lookup(&self, local: &HashMap<String, Option<Entry>>, key: &str) -> Option<Entry> {
        match local.get(key).or_else(|| self.overlay.get(key)) {
            Some(staged) => staged.clone(),
            None => self.index.entry(key).cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn create(key: &str) -> TxnOp {
        TxnOp::Create { key: key.into(), value: Bytes::from_static(b"v") }
    }

    #[test]
    fn later_requests_see_earlier_ones_in_the_same_batch() {
        let index = Index::default();
        let mut batch = Batch::new(&index);
        let first = batch.stage(vec![create("k")]).ok().map(|s| s.record.revision);
        assert_eq!(first, Some(1));
        assert!(matches!(batch.stage(vec![create("k")]), Err(Error::AlreadyExists(_))));
        let update = TxnOp::Update { key: "k".into(), value: Bytes::new(), expected: 1 };
        assert_eq!(batch.stage(vec![update]).ok().map(|s| s.record.revision), Some(2));
        let stale = TxnOp::Delete { key: "k".into(), expected: Some(1) };
        assert!(matches!(batch.stage(vec![stale]), Err(Error::Conflict { current: 2, .. })));
    }

    #[test]
    fn a_failing_txn_leaves_no_trace_and_uses_no_revision() {
        let index = Index::default();
        let mut batch = Batch::new(&index);
        let ops = vec![create("a"), TxnOp::Delete { key: "missing".into(), expected: None }];
        assert!(matches!(batch.stage(ops), Err(Error::NotFound(k)) if k == "missing"));
        let staged = batch.stage(vec![create("a")]);
        assert_eq!(staged.ok().map(|s| s.record.revision), Some(1));
    }

    #[test]
    fn delete_reports_the_old_value_at_the_delete_revision() {
        let index = Index::default();
        let mut batch = Batch::new(&index);
        assert!(batch.stage(vec![create("k")]).is_ok());
        let Ok(staged) = batch.stage(vec![TxnOp::Delete { key: "k".into(), expected: None }]) else {
            panic!("delete failed");
        };
        let deleted = staged.deleted.as_ref().map(|kv| (kv.create_revision, kv.mod_revision));
        assert_eq!(deleted, Some((1, 2)));
        let prev = staged.events[0].prev.as_ref().map(|kv| kv.mod_revision);
        assert_eq!(prev, Some(1));
    }
}
