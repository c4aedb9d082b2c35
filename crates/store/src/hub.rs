//! Watch fan-out and the bounded in-memory event history.
//!
//! The writer publishes each durable batch here under one mutex, and
//! [`WatchHub::watch`] registers a watcher under the same mutex after copying
//! the history it needs into the watcher's channel. Because both happen under
//! the lock, a watcher gets exactly the history up to the last published
//! batch and every batch after it: no gap, no duplicate. Each watcher also
//! remembers its starting revision and skips anything at or below it, which
//! covers a watch that starts from a revision a batch has made visible to
//! readers but not yet published here.
//!
//! Writers never wait on watchers: delivery is `try_send`. Each channel has
//! one slot reserved up front (an owned permit) so that a watcher whose
//! buffer fills can always be handed [`Error::WatcherTooSlow`] as its final
//! item before it is dropped.

use std::collections::VecDeque;

use tokio::sync::mpsc::{self, OwnedPermit, error::TrySendError};

use crate::{Error, Result, Revision, Watch, WatchEvent};

type Item = Result<WatchEvent>;

pub(crate) struct WatchHub {
    /// Events in revision order; several events share a revision for txns.
    history: VecDeque<WatchEvent>,
    history_limit: usize,
    /// History at or below this revision is gone.
    compacted: Revision,
    /// The last revision published.
    head: Revision,
    watchers: Vec<Watcher>,
    buffer: usize,
    closed: bool,
}

struct Watcher {
    prefix: String,
    after: Revision,
    tx: mpsc::Sender<Item>,
    /// The reserved slot for the final `WatcherTooSlow`.
    overflow: Option<OwnedPermit<Item>>,
}

fn revision_of(event: &WatchEvent) -> Revision {
    event.kv.mod_revision
}

impl WatchHub {
    /// A hub whose history starts (empty) at `revision`.
    pub(crate) fn new(revision: Revision, history_limit: usize, buffer: usize) -> Self {
        Self {
            history: VecDeque::new(),
            history_limit,
            compacted: revision,
            head: revision,
            watchers: Vec::new(),
            buffer,
            closed: false,
        }
    }

    pub(crate) fn watch(&mut self, prefix: &str, after: Revision) -> Result<Watch> {
        if self.closed {
            return Err(Error::Closed);
        }
        if after < self.compacted {
            return Err(Error::Compacted { requested: after, compacted: self.compacted });
        }
        let start = self.history.partition_point(|e| revision_of(e) <= after);
        let backlog: Vec<&WatchEvent> = self.history.range(start..).filter(|e| e.kv.key.starts_with(prefix)).collect();
        // Sizing the channel for the whole backlog lets it be queued right
        // here under the lock, before any newer event. tokio allocates
        // channel storage as items arrive, so a large capacity costs nothing
        // up front, and the backlog is bounded by the history limit.
        let capacity = backlog.len().saturating_add(self.buffer).saturating_add(1);
        let (tx, rx) = mpsc::channel(capacity.min(tokio::sync::Semaphore::MAX_PERMITS));
        let overflow = tx.clone().try_reserve_owned().ok();
        for event in backlog {
            // Cannot fail: the channel is fresh and sized for the backlog.
            let _ = tx.try_send(Ok(event.clone()));
        }
        self.watchers.push(Watcher { prefix: prefix.to_owned(), after, tx, overflow });
        Ok(Watch::from_channel(rx))
    }

    /// Delivers a durable batch (in revision order) and records it.
    pub(crate) fn publish(&mut self, events: Vec<WatchEvent>) {
        let Some(last) = events.last().map(revision_of) else { return };
        self.watchers.retain_mut(|w| w.deliver(&events));
        self.history.extend(events);
        self.head = last;
        while self.history.len() > self.history_limit {
            self.drop_oldest_revision();
        }
    }

    /// Forgets history at or below `revision` (capped at the latest
    /// published one, so watching from the current revision stays valid).
    pub(crate) fn compact(&mut self, revision: Revision) {
        let revision = revision.min(self.head);
        if revision <= self.compacted {
            return;
        }
        let keep_from = self.history.partition_point(|e| revision_of(e) <= revision);
        self.history.drain(..keep_from);
        self.compacted = revision;
    }

    /// Ends every watch (their streams yield `None`) and refuses new ones.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.watchers.clear();
    }

    /// Drops whole revisions, never part of a txn: a watcher resuming from
    /// just before a half-dropped txn would silently miss some of its events.
    fn drop_oldest_revision(&mut self) {
        let Some(oldest) = self.history.front().map(revision_of) else { return };
        while self.history.front().is_some_and(|e| revision_of(e) == oldest) {
            self.history.pop_front();
        }
        self.compacted = self.compacted.max(oldest);
    }
}

impl Watcher {
    /// Returns false once the watcher should be dropped.
    fn deliver(&mut self, events: &[WatchEvent]) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        for event in events {
            if revision_of(event) <= self.after || !event.kv.key.starts_with(&self.prefix) {
                continue;
            }
            match self.tx.try_send(Ok(event.clone())) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    if let Some(permit) = self.overflow.take() {
                        permit.send(Err(Error::WatcherTooSlow));
                    }
                    return false;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{EventKind, KeyValue};

    fn event(key: &str, revision: Revision) -> WatchEvent {
        let kv = KeyValue { key: key.into(), value: Bytes::new(), create_revision: revision, mod_revision: revision };
        WatchEvent { kind: EventKind::Put, kv, prev: None }
    }

    fn drain(watch: &mut Watch) -> Vec<std::result::Result<Revision, String>> {
        let mut out = Vec::new();
        while let Ok(item) = watch.rx.try_recv() {
            out.push(item.map(|e| e.kv.mod_revision).map_err(|e| e.to_string()));
        }
        out
    }

    #[test]
    fn history_then_live_events_without_gaps_or_duplicates() {
        let mut hub = WatchHub::new(0, 100, 10);
        hub.publish(vec![event("/a", 1), event("/b", 2)]);
        let Ok(mut all) = hub.watch("", 0) else { panic!("watch failed") };
        let Ok(mut only_a) = hub.watch("/a", 0) else { panic!("watch failed") };
        hub.publish(vec![event("/a", 3)]);
        assert_eq!(drain(&mut all), [Ok(1), Ok(2), Ok(3)]);
        assert_eq!(drain(&mut only_a), [Ok(1), Ok(3)]);
    }

    #[test]
    fn a_watch_from_a_revision_not_yet_published_skips_older_events() {
        let mut hub = WatchHub::new(0, 100, 10);
        let Ok(mut watch) = hub.watch("", 2) else { panic!("watch failed") };
        hub.publish(vec![event("/a", 1), event("/a", 2), event("/a", 3)]);
        assert_eq!(drain(&mut watch), [Ok(3)]);
    }

    #[test]
    fn history_limit_drops_whole_revisions() {
        let mut hub = WatchHub::new(0, 2, 10);
        hub.publish(vec![event("/a", 1), event("/b", 1), event("/a", 2)]);
        assert!(matches!(hub.watch("", 0), Err(Error::Compacted { requested: 0, compacted: 1 })));
        let Ok(mut watch) = hub.watch("", 1) else { panic!("watch failed") };
        assert_eq!(drain(&mut watch), [Ok(2)]);
    }

    #[test]
    fn compact_is_capped_at_the_head() {
        let mut hub = WatchHub::new(0, 100, 10);
        hub.publish(vec![event("/a", 1), event("/a", 2)]);
        hub.compact(50);
        assert!(matches!(hub.watch("", 1), Err(Error::Compacted { requested: 1, compacted: 2 })));
        assert!(hub.watch("", 2).is_ok());
    }

    #[test]
    fn a_full_watcher_gets_too_slow_as_its_last_item() {
        let mut hub = WatchHub::new(0, 100, 2);
        let Ok(mut watch) = hub.watch("", 0) else { panic!("watch failed") };
        for revision in 1..=5 {
            hub.publish(vec![event("/a", revision)]);
        }
        assert_eq!(drain(&mut watch), [Ok(1), Ok(2), Err(Error::WatcherTooSlow.to_string())]);
        assert!(hub.watchers.is_empty());
    }
}
