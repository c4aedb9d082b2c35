//! [`Reflector<K>`]: keeps a [`Store<K>`] equal to the server's objects of
//! one kind (optionally filtered by selectors) and tells subscribers what
//! changed. This is what controllers, the node agent, DNS and ingress build
//! on.
//!
//! The loop, as client-go's reflector and kube-rs's watcher run it:
//!
//! 1. **List** every page; the first page's resourceVersion is where the
//!    watch starts (later pages are served at that same version by
//!    kube-apiserver; svcnet's replays whatever changed meanwhile). The
//!    list *replaces* the store in one swap.
//! 2. **Watch** from that resourceVersion, with bookmarks; apply each event
//!    to the store, then announce it.
//! 3. When the watch ends (server timeout, broken connection, server
//!    restart), watch again from the last resourceVersion seen.
//! 4. When the server says that resourceVersion is gone (410, as an HTTP
//!    status or an ERROR event), or ends the watch with another error, go
//!    back to 1. The re-list's diff against the old store is announced:
//!    `Applied` for new or changed objects, `Deleted` for objects that
//!    vanished while we were not watching.
//!
//! Failures back off exponentially (with jitter) up to a bound; any event
//! received resets the backoff.
//!
//! Subscribers get a [`Subscription`]: first a [`Notification::Resync`] once
//! the store holds the first complete list (reconcile everything), then a
//! [`Notification::Changed`] per change. A subscriber that falls so far
//! behind that the channel drops changes gets another `Resync` instead of
//! silently missing them.

use std::collections::BTreeMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::api::{Api, Object};
use crate::error::Error;
use crate::params::{ListParams, WatchParams};
use crate::store::{ObjectKey, Store};
use crate::watch::WatchEvent;

/// How a reflector lists and watches. Defaults:
///
/// | field | default |
/// | --- | --- |
/// | `label_selector`, `field_selector` | none (every object) |
/// | `page_size` | 500 objects per list request |
/// | `watch_timeout` | 290 s, after which the server ends a watch and we resume it |
/// | `initial_backoff` .. `max_backoff` | 500 ms doubling up to 30 s |
/// | `channel_capacity` | 1024 changes buffered per subscriber |
#[derive(Clone, Debug)]
pub struct ReflectorConfig {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub page_size: u32,
    pub watch_timeout: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub channel_capacity: usize,
    /// Drop `metadata.managedFields` from stored objects (default on):
    /// consumers rarely need them, and they are often the largest part of
    /// an object, as kube-controller-manager's informers also find.
    pub strip_managed_fields: bool,
}

impl Default for ReflectorConfig {
    fn default() -> Self {
        ReflectorConfig {
            label_selector: None,
            field_selector: None,
            page_size: 500,
            watch_timeout: Duration::from_secs(290),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            channel_capacity: 1024,
            strip_managed_fields: true,
        }
    }
}

impl ReflectorConfig {
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }

    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    pub fn page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The object was created or changed (or newly matches the selectors).
    Applied,
    /// The object was deleted (or no longer matches the selectors).
    Deleted,
}

/// One change to the store, announced after the store holds it.
#[derive(Debug)]
pub struct Change<K> {
    pub kind: ChangeKind,
    pub key: ObjectKey,
    /// The new state, or for `Deleted` the last known one.
    pub object: Arc<K>,
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        Change { kind: self.kind, key: self.key.clone(), object: self.object.clone() }
    }
}

/// What a subscriber is told.
#[derive(Clone, Debug)]
pub enum Notification<K> {
    /// Reconcile everything in the store: sent once when the store first
    /// holds a complete list, and again if this subscriber missed changes.
    Resync,
    Changed(Change<K>),
}

/// A subscriber's view of a reflector's changes.
pub struct Subscription<K> {
    changes: broadcast::Receiver<Change<K>>,
    store: Store<K>,
    started: bool,
}

impl<K> Subscription<K> {
    /// The next notification; `None` once the reflector is gone.
    pub async fn recv(&mut self) -> Option<Notification<K>> {
        if !self.started {
            self.store.wait_synced().await;
            self.started = true;
            return Some(Notification::Resync);
        }
        match self.changes.recv().await {
            Ok(change) => Some(Notification::Changed(change)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "subscriber fell behind its reflector; resyncing from the store");
                Some(Notification::Resync)
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The store this subscription follows.
    pub fn store(&self) -> &Store<K> {
        &self.store
    }
}

/// Lists and watches objects of kind `K` into a [`Store`]. Take the store
/// and subscriptions before [`Reflector::run`] or [`Reflector::spawn`].
pub struct Reflector<K> {
    api: Api<K>,
    config: ReflectorConfig,
    store: Store<K>,
    changes: broadcast::Sender<Change<K>>,
}

/// A reflector running in its own task; dropping the handle stops it.
pub struct ReflectorHandle<K> {
    store: Store<K>,
    changes: broadcast::Sender<Change<K>>,
    task: tokio::task::JoinHandle<()>,
}

impl<K> ReflectorHandle<K> {
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    pub fn subscribe(&self) -> Subscription<K> {
        Subscription { changes: self.changes.subscribe(), store: self.store.clone(), started: false }
    }
}

impl<K> Drop for ReflectorHandle<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the loop goes after a watch ends.
enum Next {
    Watch(String),
    List,
}

impl<K: Object> Reflector<K> {
    pub fn new(api: Api<K>, config: ReflectorConfig) -> Self {
        let (changes, _) = broadcast::channel(config.channel_capacity.max(1));
        Reflector { api, config, store: Store::new(), changes }
    }

    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    pub fn subscribe(&self) -> Subscription<K> {
        Subscription { changes: self.changes.subscribe(), store: self.store.clone(), started: false }
    }

    /// Runs the reflector in a new task.
    pub fn spawn(self) -> ReflectorHandle<K> {
        let store = self.store.clone();
        let changes = self.changes.clone();
        let task = tokio::spawn(self.run());
        ReflectorHandle { store, changes, task }
    }

    /// Lists and watches forever; errors are logged and retried.
    pub async fn run(self) {
        let mut backoff = Backoff::new(self.config.initial_backoff, self.config.max_backoff);
        let mut next = Next::List;
        loop {
            next = match next {
                Next::List => match self.relist().await {
                    Ok(rv) => {
                        backoff.reset();
                        Next::Watch(rv)
                    }
                    Err(e) => {
                        let delay = backoff.delay();
                        tracing::warn!(kind = K::KIND, error = %chain(&e), ?delay, "listing failed; retrying");
                        tokio::time::sleep(delay).await;
                        Next::List
                    }
                },
                Next::Watch(rv) => self.watch(rv, &mut backoff).await,
            };
        }
    }

    /// Lists everything, swaps it into the store and announces the diff.
    /// Returns the resourceVersion to watch from.
    async fn relist(&self) -> Result<String, Error> {
        let params = ListParams {
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            limit: Some(self.config.page_size),
            continue_token: None,
        };
        let list = self.api.list_all(&params).await?;
        let rv = list.resource_version().to_string();
        let mut objects = BTreeMap::new();
        for mut object in list.items {
            self.trim(&mut object);
            match ObjectKey::of(&object) {
                Some(key) => {
                    objects.insert(key, Arc::new(object));
                }
                None => tracing::warn!(kind = K::KIND, "skipping a listed object without a name"),
            }
        }
        let first = !self.store.is_synced();
        let (old, new) = self.store.replace(objects);
        self.store.mark_synced();
        tracing::debug!(kind = K::KIND, objects = new.len(), resource_version = %rv, "listed");
        // The first list is announced by the synced signal (Resync), not
        // object by object.
        if !first {
            for (key, object) in new.iter() {
                let unchanged = old.get(key).is_some_and(|o| same_version(o.as_ref(), object.as_ref()));
                if !unchanged {
                    self.announce(ChangeKind::Applied, key.clone(), object.clone());
                }
            }
            for (key, object) in old.iter() {
                if !new.contains_key(key) {
                    self.announce(ChangeKind::Deleted, key.clone(), object.clone());
                }
            }
        }
        Ok(rv)
    }

    /// Watches from `rv` until the watch ends; says what to do next.
    async fn watch(&self, mut rv: String, backoff: &mut Backoff) -> Next {
        let params = WatchParams {
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            timeout_seconds: Some(u32::try_from(self.config.watch_timeout.as_secs()).unwrap_or(u32::MAX).max(1)),
            bookmarks: true,
        };
        let mut stream = match self.api.watch(&params, &rv).await {
            Ok(s) => s,
            Err(e) => return self.after_error(e, rv, backoff).await,
        };
        let mut received = false;
        while let Some(item) = stream.next().await {
            let event = match item {
                Ok(event) => event,
                Err(e) => return self.after_error(e, rv, backoff).await,
            };
            received = true;
            backoff.reset();
            if let Some(v) = event.resource_version().filter(|v| !v.is_empty()) {
                rv = v.to_string();
            }
            match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => self.apply(o),
                WatchEvent::Deleted(o) => self.delete(o),
                WatchEvent::Bookmark { .. } => {}
                WatchEvent::Error(e) => {
                    let delay = backoff.delay();
                    tracing::warn!(kind = K::KIND, error = %e, ?delay, "watch ended with an error; re-listing");
                    tokio::time::sleep(delay).await;
                    return Next::List;
                }
            }
        }
        tracing::debug!(kind = K::KIND, resource_version = %rv, received, "watch ended; resuming");
        // The server ended the watch. One that ended before saying anything
        // is retried after a pause, so a server that closes watches at once
        // cannot make us spin.
        if !received {
            tokio::time::sleep(backoff.delay()).await;
        }
        Next::Watch(rv)
    }

    async fn after_error(&self, e: Error, rv: String, backoff: &mut Backoff) -> Next {
        if e.is_gone() {
            tracing::info!(kind = K::KIND, resource_version = %rv, "resourceVersion expired; re-listing");
            return Next::List;
        }
        let delay = backoff.delay();
        // The server refused the watch itself (bad request, forbidden, ...):
        // start over from a list. Transport trouble (server restarting,
        // network) or overload: resume the watch.
        let refused = e.code().is_some_and(|c| (400..500).contains(&c) && c != 429);
        tracing::warn!(kind = K::KIND, error = %chain(&e), ?delay, refused, "watch failed; retrying");
        tokio::time::sleep(delay).await;
        if refused { Next::List } else { Next::Watch(rv) }
    }

    fn trim(&self, object: &mut K) {
        if self.config.strip_managed_fields {
            object.metadata_mut().managed_fields = None;
        }
    }

    fn apply(&self, mut object: K) {
        self.trim(&mut object);
        let Some(key) = ObjectKey::of(&object) else {
            tracing::warn!(kind = K::KIND, "skipping a watch event for an object without a name");
            return;
        };
        let object = Arc::new(object);
        // A replayed event for a version we already hold changes nothing.
        if self.store.get(&key).is_some_and(|o| same_version(o.as_ref(), object.as_ref())) {
            return;
        }
        self.store.apply(key.clone(), object.clone());
        self.announce(ChangeKind::Applied, key, object);
    }

    fn delete(&self, object: K) {
        let Some(key) = ObjectKey::of(&object) else { return };
        if self.store.remove(&key).is_some() {
            self.announce(ChangeKind::Deleted, key, Arc::new(object));
        }
    }

    fn announce(&self, kind: ChangeKind, key: ObjectKey, object: Arc<K>) {
        // No subscribers is fine: the store is the source of truth.
        let _ = self.changes.send(Change { kind, key, object });
    }
}

fn same_version<K: Object>(a: &K, b: &K) -> bool {
    let (a, b) = (&a.metadata().resource_version, &b.metadata().resource_version);
    a.is_some() && a == b
}

/// An error and its sources on one line, for logs.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Exponential backoff with ±25% jitter, so that many reflectors that lost
/// the same server do not all come back in the same instant. Also for
/// watchers written on top of [`Api::watch`](crate::Api::watch).
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max, current: initial }
    }

    /// The next delay: the current one, jittered, which then doubles.
    pub fn delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        // RandomState is randomly seeded per instance: enough randomness
        // for jitter without a dependency.
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let factor = 0.75 + (random % 1000) as f64 / 2000.0;
        base.mul_f64(factor)
    }

    /// Back to the initial delay, after a success.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let delays: Vec<Duration> = (0..5).map(|_| b.delay()).collect();
        let within = |d: Duration, base: u64| {
            d >= Duration::from_millis(base * 3 / 4) && d <= Duration::from_millis(base * 5 / 4)
        };
        assert!(
            within(delays[0], 100) && within(delays[1], 200) && within(delays[2], 400) && within(delays[4], 400),
            "{delays:?}"
        );
        b.reset();
        assert!(within(b.delay(), 100));
    }
}
