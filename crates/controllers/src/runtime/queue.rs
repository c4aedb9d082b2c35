//! A deduplicating work queue, as client-go's workqueue: a key queued
//! while already waiting is queued once; a key being worked on is queued
//! again only after its worker finishes, so one key is never reconciled
//! by two workers at once.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use svcnet_client::{Notification, Object, ObjectKey, ReflectorHandle};
use tokio::sync::Notify;

use super::Informers;

/// How long a key whose reconcile failed waits before its next try.
pub(super) const RETRY: Duration = Duration::from_millis(500);

/// A reconcile's outcome: look at the key again after a while, or not.
pub(super) type Pass = svcnet_client::Result<Option<Duration>>;

#[derive(Default)]
struct State {
    queue: VecDeque<ObjectKey>,
    queued: HashSet<ObjectKey>,
    active: HashSet<ObjectKey>,
    /// Keys added while active: re-queued when their worker is done.
    dirty: HashSet<ObjectKey>,
}

/// A shared work queue of object keys.
#[derive(Clone, Default)]
pub struct Queue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few collections updated in single statements; a
        // panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, key: ObjectKey) {
        let mut s = self.lock();
        if s.active.contains(&key) {
            s.dirty.insert(key);
            return;
        }
        if s.queued.insert(key.clone()) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Adds `key` after `delay` (retries, requeue-after).
    pub fn add_after(&self, key: ObjectKey, delay: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            this.add(key);
        });
    }

    /// The next key to work on; marks it active until [`Queue::done`].
    pub async fn next(&self) -> ObjectKey {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(key) = s.queue.pop_front() {
                    s.queued.remove(&key);
                    s.active.insert(key.clone());
                    if !s.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Starts `workers` tasks that, once every informer holds a full list,
    /// take keys and reconcile each with `sync(ctx, key)`: `Ok(Some(d))`
    /// looks at the key again after `d`, an error after [`RETRY`]. `what`
    /// names the kind in the log.
    pub(super) fn work<C, F, Fut>(&self, inf: &Arc<Informers>, workers: usize, what: &'static str, ctx: C, sync: F)
    where
        C: Clone + Send + 'static,
        F: Fn(C, ObjectKey) -> Fut + Copy + Send + 'static,
        Fut: Future<Output = Pass> + Send,
    {
        for _ in 0..workers {
            let (inf, queue, ctx) = (inf.clone(), self.clone(), ctx.clone());
            tokio::spawn(async move {
                inf.wait_synced().await;
                loop {
                    let key = queue.next().await;
                    match sync(ctx.clone(), key.clone()).await {
                        Ok(Some(after)) => queue.add_after(key.clone(), after),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::debug!(error = %e, kind = what, key = ?key, "syncing failed; retrying");
                            queue.add_after(key.clone(), RETRY);
                        }
                    }
                    queue.done(&key);
                }
            });
        }
    }

    pub fn done(&self, key: &ObjectKey) {
        let mut s = self.lock();
        s.active.remove(key);
        if s.dirty.remove(key) && s.queued.insert(key.clone()) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }
}

/// Queues every object of an informer when it (re)syncs, and each object
/// that changes: the feed of a controller keyed by the objects it owns.
pub fn feed_own_keys<K: Object>(informer: &ReflectorHandle<K>, queue: &Queue) {
    let mut sub = informer.subscribe();
    let store = informer.store();
    let queue = queue.clone();
    tokio::spawn(async move {
        while let Some(n) = sub.recv().await {
            match n {
                Notification::Resync => queue.add_all(&store.state()),
                Notification::Changed(c) => queue.add(c.key),
            }
        }
    });
}

/// Queues, for each change of a dependent, the owner of kind `owner_kind`
/// named by its controller reference, or, for an orphan, every owner in its
/// namespace (any of them may adopt it).
pub fn feed_owner_keys<D: Object, O: Object>(
    dependents: &ReflectorHandle<D>,
    owners: &ReflectorHandle<O>,
    owner_kind: &'static str,
    queue: &Queue,
) {
    let mut sub = dependents.subscribe();
    let owners = owners.store();
    let queue = queue.clone();
    tokio::spawn(async move {
        while let Some(n) = sub.recv().await {
            let Notification::Changed(c) = n else { continue };
            let ns = c.key.namespace.clone().unwrap_or_default();
            let controller = c
                .object
                .metadata()
                .owner_references
                .iter()
                .flatten()
                .find(|r| r.controller == Some(true) && r.kind == owner_kind)
                .map(|r| r.name.clone());
            match controller {
                Some(owner) => queue.add(ObjectKey::namespaced(&ns, &owner)),
                None => queue.add_in_namespace(&owners.state(), &ns),
            }
        }
    });
}

impl Queue {
    /// Queues the keys of `objects`.
    pub fn add_all<K: Object>(&self, objects: &[std::sync::Arc<K>]) {
        for o in objects {
            if let Some(k) = ObjectKey::of(o.as_ref()) {
                self.add(k);
            }
        }
    }

    /// Queues the keys of the objects in namespace `ns`.
    pub fn add_in_namespace<K: Object>(&self, objects: &[std::sync::Arc<K>], ns: &str) {
        for o in objects.iter().filter(|o| o.metadata().namespace.as_deref() == Some(ns)) {
            if let Some(k) = ObjectKey::of(o.as_ref()) {
                self.add(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_added_twice_is_worked_once() {
        let q = Queue::default();
        q.add(ObjectKey::namespaced("a", "x"));
        q.add(ObjectKey::namespaced("a", "x"));
        q.add(ObjectKey::namespaced("a", "y"));
        assert_eq!(q.len(), 2);
        let k = q.next().await;
        assert_eq!(k, ObjectKey::namespaced("a", "x"));
        q.done(&k);
        assert_eq!(q.len(), 1);
    }

    #[tokio::test]
    async fn a_key_added_while_active_comes_back_after_done() {
        let q = Queue::default();
        q.add(ObjectKey::namespaced("a", "x"));
        let k = q.next().await;
        q.add(k.clone());
        assert_eq!(q.len(), 0, "not queued while its worker runs");
        q.done(&k);
        assert_eq!(q.len(), 1);
    }
}
