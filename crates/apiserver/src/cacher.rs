//! The watch cache: every served object, decoded once, in memory.
//!
//! As in kube-apiserver's cacher, one watch on the store feeds a cache per
//! resource; lists, gets and watches are served from it. A single
//! dispatcher watches the whole `/registry/` prefix so that it sees every
//! revision, which lets a read wait until the cache has caught up with the
//! store's current revision: reads from the cache are as consistent as
//! reads from the store (read-your-writes holds for every client).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use svcnet_api::resources::{RESOURCES, ResourceInfo};
use svcnet_store::{EventKind, KeyValue, Revision, Store};
use tokio::sync::{broadcast, watch};

use crate::error::{ApiError, Result};

/// Store key prefix of everything the API server stores.
pub const REGISTRY_PREFIX: &str = "/registry/";

/// How many past events each resource keeps for watches that resume from
/// an older resourceVersion.
const HISTORY: usize = 20_000;

/// An object as the cache holds it: serialized once (with
/// `metadata.resourceVersion` set) for every reader, plus what selectors
/// need, extracted up front. The decoded JSON is not kept: a decoded
/// object costs several times its serialized size, and lists and watches
/// only need the bytes.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub rv: Revision,
    pub json: Bytes,
    /// `metadata.labels`, sorted by key.
    labels: Vec<(Box<str>, Box<str>)>,
    /// The resource's selectable fields and their values.
    fields: Vec<(&'static str, Box<str>)>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl CachedObject {
    fn decode(resource: &ResourceInfo, kv: &KeyValue, rv: Revision) -> Option<CachedObject> {
        let mut value: Value = serde_json::from_slice(&kv.value).ok()?;
        let meta = value.get_mut("metadata")?.as_object_mut()?;
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        let name = meta.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or_default().to_string();
        let deleting = meta.get("deletionTimestamp").is_some_and(|t| !t.is_null());
        let mut labels: Vec<(Box<str>, Box<str>)> = meta
            .get("labels")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.as_str().into(), v.as_str().unwrap_or_default().into())).collect())
            .unwrap_or_default();
        labels.sort();
        let fields = svcnet_api::selector::supported_fields(resource.plural)
            .iter()
            .filter_map(|f| svcnet_api::selector::field_value(resource.plural, &value, f).map(|v| (*f, v.into())))
            .collect();
        let json = Bytes::from(serde_json::to_vec(&value).ok()?);
        Some(CachedObject { key: kv.key.clone(), namespace, name, rv, json, labels, fields, deleting })
    }

    /// The object, decoded afresh (callers that change it own the copy).
    pub fn value(&self) -> Value {
        // The bytes were produced by serde_json from a Value, so they parse.
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// The value of a selectable field, as field selectors compare it.
    pub fn field(&self, path: &str) -> Option<String> {
        match path {
            "metadata.name" => Some(self.name.clone()),
            "metadata.namespace" => Some(self.namespace.clone()),
            _ => self.fields.iter().find(|(f, _)| *f == path).map(|(_, v)| v.to_string()),
        }
    }
}

impl svcnet_api::selector::Labels for CachedObject {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.binary_search_by(|(k, _)| k.as_ref().cmp(key)).ok().map(|i| self.labels[i].1.as_ref())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change to one object, shared by every watcher.
#[derive(Debug)]
pub struct CacheEvent {
    pub rv: Revision,
    pub kind: EventType,
    pub object: Arc<CachedObject>,
    pub prev: Option<Arc<CachedObject>>,
}

struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// Last revision applied to this resource.
    rv: Revision,
    /// History covers every event with revision > `oldest`.
    oldest: Revision,
}

/// The cache of one resource.
pub struct Cacher {
    pub resource: &'static ResourceInfo,
    state: RwLock<State>,
    tx: broadcast::Sender<Arc<CacheEvent>>,
}

/// What a watch starts from: the events to replay, then a live receiver.
pub struct Subscription {
    pub replay: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
    pub rv: Revision,
}

/// A consistent snapshot of some of a resource's objects.
pub struct Snapshot {
    pub objects: Vec<Arc<CachedObject>>,
    pub rv: Revision,
}

impl Cacher {
    fn new(resource: &'static ResourceInfo) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Cacher {
            resource,
            state: RwLock::new(State { objects: BTreeMap::new(), history: VecDeque::new(), rv: 0, oldest: 0 }),
            tx,
        }
    }

    /// The store key prefix of this resource, or of one namespace of it.
    pub fn prefix(resource: &ResourceInfo, namespace: Option<&str>) -> String {
        let group = if resource.group.is_empty() { "core" } else { resource.group };
        match namespace {
            Some(ns) => format!("{REGISTRY_PREFIX}{group}/{}/{ns}/", resource.plural),
            None => format!("{REGISTRY_PREFIX}{group}/{}/", resource.plural),
        }
    }

    pub fn key(resource: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", Self::prefix(resource, namespace))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in
        // a way readers care about (each update is a few map operations), so
        // poisoning is ignored.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.read().objects.get(key).cloned()
    }

    /// Objects under `prefix` strictly after `start_after`, filtered, at most
    /// `limit` (0 = all). Returns the snapshot and whether more remain.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        synced: Revision,
        filter: impl Fn(&CachedObject) -> bool,
    ) -> (Snapshot, bool) {
        let state = self.read();
        let rv = state.rv.max(synced);
        let start = match start_after {
            Some(k) => std::ops::Bound::Excluded(k.to_string()),
            None => std::ops::Bound::Included(prefix.to_string()),
        };
        let mut objects = Vec::new();
        let mut more = false;
        for (key, obj) in state.objects.range((start, std::ops::Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if !filter(obj) {
                continue;
            }
            if limit > 0 && objects.len() == limit {
                more = true;
                break;
            }
            objects.push(obj.clone());
        }
        (Snapshot { objects, rv }, more)
    }

    /// Subscribes to changes after `after` (None: the current state as
    /// ADDED events first, as a watch without resourceVersion does).
    pub fn subscribe(&self, after: Option<Revision>, synced: Revision) -> Result<Subscription> {
        let state = self.read();
        let rv = state.rv.max(synced);
        let live = self.tx.subscribe();
        let replay = match after {
            None => state
                .objects
                .values()
                .map(|o| Arc::new(CacheEvent { rv: o.rv, kind: EventType::Added, object: o.clone(), prev: None }))
                .collect(),
            Some(after) => {
                if after < state.oldest {
                    return Err(ApiError::Expired(format!("too old resource version: {after} ({})", state.oldest)));
                }
                state.history.iter().filter(|e| e.rv > after).cloned().collect()
            }
        };
        Ok(Subscription { replay, live, rv })
    }

    fn apply(&self, kind: EventKind, kv: &KeyValue) {
        let rv = kv.mod_revision;
        let Some(object) = CachedObject::decode(self.resource, kv, rv) else {
            tracing::error!(key = %kv.key, "stored object is not valid JSON; skipping it");
            return;
        };
        let object = Arc::new(object);
        let mut state = self.write();
        let prev = match kind {
            EventKind::Put => state.objects.insert(kv.key.clone(), object.clone()),
            EventKind::Delete => state.objects.remove(&kv.key),
        };
        let kind = match (kind, &prev) {
            (EventKind::Delete, _) => EventType::Deleted,
            (EventKind::Put, None) => EventType::Added,
            (EventKind::Put, Some(_)) => EventType::Modified,
        };
        let event = Arc::new(CacheEvent { rv, kind, object, prev });
        state.rv = rv;
        if state.history.len() == HISTORY
            && let Some(old) = state.history.pop_front()
        {
            state.oldest = old.rv;
        }
        state.history.push_back(event.clone());
        // Sent under the lock so a subscriber's replay and live stream meet
        // without a gap or a duplicate.
        let _ = self.tx.send(event);
    }

    fn reset(&self, kvs: Vec<KeyValue>, rv: Revision) {
        let mut objects = BTreeMap::new();
        for kv in kvs {
            let mod_rv = kv.mod_revision;
            match CachedObject::decode(self.resource, &kv, mod_rv) {
                Some(o) => {
                    objects.insert(kv.key.clone(), Arc::new(o));
                }
                None => tracing::error!(key = %kv.key, "stored object is not valid JSON; skipping it"),
            }
        }
        let mut state = self.write();
        state.objects = objects;
        state.history.clear();
        state.rv = rv;
        state.oldest = rv;
    }
}

/// All resource caches and the dispatcher feeding them.
pub struct Caches {
    by_prefix: HashMap<String, Arc<Cacher>>,
    synced: watch::Sender<Revision>,
    store: Arc<dyn Store>,
}

impl Caches {
    /// Loads every resource from the store and starts following it.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<Caches>> {
        let by_prefix = RESOURCES.iter().map(|r| (Cacher::prefix(r, None), Arc::new(Cacher::new(r)))).collect();
        let (synced, _) = watch::channel(0);
        let caches = Arc::new(Caches { by_prefix, synced, store });
        let rv = caches.load().await?;
        let this = caches.clone();
        tokio::spawn(async move { this.follow(rv).await });
        Ok(caches)
    }

    /// Lists everything and resets every cache to it. Returns the revision.
    async fn load(&self) -> Result<Revision> {
        let mut all = Vec::new();
        let mut start: Option<String> = None;
        let rv = loop {
            let page = self.store.list(REGISTRY_PREFIX, start.as_deref(), 10_000).await?;
            start = page.kvs.last().map(|kv| kv.key.clone());
            let rev = page.revision;
            all.extend(page.kvs);
            if !page.more {
                break rev;
            }
        };
        let mut grouped: HashMap<&str, Vec<KeyValue>> = HashMap::new();
        for kv in all {
            if let Some(prefix) = self.prefix_of(&kv.key) {
                grouped.entry(prefix).or_default().push(kv);
            }
        }
        for (prefix, cacher) in &self.by_prefix {
            cacher.reset(grouped.remove(prefix.as_str()).unwrap_or_default(), rv);
        }
        self.synced.send_replace(rv);
        Ok(rv)
    }

    fn prefix_of(&self, key: &str) -> Option<&str> {
        let rest = key.strip_prefix(REGISTRY_PREFIX)?;
        let mut parts = rest.splitn(3, '/');
        let group = parts.next()?;
        let plural = parts.next()?;
        let len = REGISTRY_PREFIX.len() + group.len() + plural.len() + 2;
        let prefix = key.get(..len)?;
        self.by_prefix.get_key_value(prefix).map(|(k, _)| k.as_str())
    }

    async fn follow(self: Arc<Self>, mut rv: Revision) {
        loop {
            match self.store.watch(REGISTRY_PREFIX, rv).await {
                Ok(mut w) => {
                    while let Some(item) = w.next().await {
                        match item {
                            Ok(ev) => {
                                rv = ev.kv.mod_revision;
                                if let Some(c) = self.prefix_of(&ev.kv.key).and_then(|p| self.by_prefix.get(p)) {
                                    c.apply(ev.kind, &ev.kv);
                                }
                                self.synced.send_replace(rv);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "store watch ended; reloading the cache");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "store watch failed; reloading the cache"),
            }
            if Arc::strong_count(&self) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.load().await {
                Ok(r) => rv = r,
                Err(e) => tracing::error!(error = %e, "reloading the cache failed"),
            }
        }
    }

    pub fn cacher(&self, resource: &ResourceInfo) -> &Arc<Cacher> {
        // Every served resource got a cacher in `start`.
        &self.by_prefix[&Cacher::prefix(resource, None)]
    }

    /// The revision the caches reflect.
    pub fn synced(&self) -> Revision {
        *self.synced.borrow()
    }

    /// Waits until the caches reflect at least the store's current revision,
    /// so that a read after a write sees the write.
    pub async fn wait_fresh(&self) -> Result<Revision> {
        let want = self.store.current_revision();
        self.wait_for(want, Duration::from_secs(3)).await
    }

    /// Waits until the caches reflect revision `want`.
    pub async fn wait_for(&self, want: Revision, timeout: Duration) -> Result<Revision> {
        let mut rx = self.synced.subscribe();
        let wait = rx.wait_for(|rv| *rv >= want);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(rv)) => Ok(*rv),
            Ok(Err(_)) => Err(ApiError::Unavailable("the watch cache is shutting down".into())),
            Err(_) => {
                Err(ApiError::Unavailable(format!("Too large resource version: {want}, current: {}", self.synced())))
            }
        }
    }
}
