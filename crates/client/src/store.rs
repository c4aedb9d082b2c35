//! [`Store<K>`]: the in-memory copy of a set of objects that a
//! [`Reflector`](crate::Reflector) keeps up to date, read by controllers.
//!
//! Reads are cheap: the objects sit in an `Arc`'d sorted map that
//! [`Store::snapshot`] hands out without copying, and writers copy it only
//! when a snapshot is still held (copy-on-write). A re-list swaps the whole
//! map at once, so a reader never sees half of an old list and half of a
//! new one.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::api::Object;

/// Namespace (for namespaced kinds) and name: what identifies an object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn namespaced(namespace: &str, name: &str) -> Self {
        ObjectKey { namespace: Some(namespace.to_string()), name: name.to_string() }
    }

    pub fn cluster(name: &str) -> Self {
        ObjectKey { namespace: None, name: name.to_string() }
    }

    /// The key of an object; `None` if it has no name (which the API server
    /// never sends).
    pub fn of<K: Object>(object: &K) -> Option<ObjectKey> {
        let meta = object.metadata();
        let name = meta.name.as_deref().filter(|n| !n.is_empty())?;
        let namespace = meta.namespace.as_deref().filter(|n| !n.is_empty());
        Some(ObjectKey { namespace: namespace.map(str::to_string), name: name.to_string() })
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// An immutable view of a store at one moment, sorted by key.
pub type Snapshot<K> = Arc<BTreeMap<ObjectKey, Arc<K>>>;

/// The reflected objects. Clones share the same store.
pub struct Store<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    objects: RwLock<Snapshot<K>>,
    synced: watch::Sender<bool>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store { shared: self.shared.clone() }
    }
}

impl<K> std::fmt::Debug for Store<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("len", &self.len()).field("synced", &self.is_synced()).finish()
    }
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        let (synced, _) = watch::channel(false);
        Store { shared: Arc::new(Shared { objects: RwLock::new(Arc::new(BTreeMap::new())), synced }) }
    }
}

impl<K> Store<K> {
    /// An empty store, not synced; only a reflector fills it.
    pub(crate) fn new() -> Self {
        Store::default()
    }

    /// A synced store holding `objects`, for testing code that reads
    /// stores without running a reflector. Objects without a name are left
    /// out.
    pub fn from_objects(objects: impl IntoIterator<Item = K>) -> Self
    where
        K: Object,
    {
        let store = Store::new();
        let map = objects.into_iter().filter_map(|o| Some((ObjectKey::of(&o)?, Arc::new(o)))).collect();
        store.replace(map);
        store.mark_synced();
        store
    }

    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.read().get(key).cloned()
    }

    /// The whole store at this moment, without copying it.
    pub fn snapshot(&self) -> Snapshot<K> {
        self.read().clone()
    }

    /// Every object, sorted by namespace and name.
    pub fn state(&self) -> Vec<Arc<K>> {
        self.read().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Whether the first complete list has been loaded. It stays true
    /// through later disconnects and re-lists.
    pub fn is_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Waits for the first complete list.
    pub async fn wait_synced(&self) {
        let mut rx = self.shared.synced.subscribe();
        // The sender lives as long as this store, so this cannot fail; the
        // guard `wait_for` returns is not Send, so it is dropped at once.
        let _ = rx.wait_for(|synced| *synced).await.is_ok();
    }

    /// Inserts or replaces one object; returns the previous one.
    pub(crate) fn apply(&self, key: ObjectKey, object: Arc<K>) -> Option<Arc<K>> {
        let mut objects = self.write();
        Arc::make_mut(&mut objects).insert(key, object)
    }

    /// Removes one object; returns it if it was there.
    pub(crate) fn remove(&self, key: &ObjectKey) -> Option<Arc<K>> {
        let mut objects = self.write();
        if !objects.contains_key(key) {
            return None;
        }
        Arc::make_mut(&mut objects).remove(key)
    }

    /// Swaps in a complete new set of objects; returns the old set.
    pub(crate) fn replace(&self, objects: BTreeMap<ObjectKey, Arc<K>>) -> (Snapshot<K>, Snapshot<K>) {
        let new = Arc::new(objects);
        let old = std::mem::replace(&mut *self.write(), new.clone());
        (old, new)
    }

    pub(crate) fn mark_synced(&self) {
        self.shared.synced.send_replace(true);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot<K>> {
        // Every critical section is a single map operation that cannot
        // leave the map half-updated, so a poisoned lock is still sound.
        self.shared.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot<K>> {
        self.shared.objects.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_unaffected_by_later_writes() {
        let store: Store<String> = Store::new();
        store.apply(ObjectKey::namespaced("a", "x"), Arc::new("one".into()));
        let before = store.snapshot();
        store.apply(ObjectKey::namespaced("a", "x"), Arc::new("two".into()));
        store.apply(ObjectKey::cluster("y"), Arc::new("three".into()));
        assert_eq!(before.len(), 1);
        assert_eq!(before.get(&ObjectKey::namespaced("a", "x")).map(|s| s.as_str()), Some("one"));
        assert_eq!(store.get(&ObjectKey::namespaced("a", "x")).map(|s| s.to_string()).as_deref(), Some("two"));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn replace_swaps_everything_and_returns_the_old_set() {
        let store: Store<u32> = Store::new();
        store.apply(ObjectKey::cluster("gone"), Arc::new(1));
        let (old, new) = store.replace(BTreeMap::from([(ObjectKey::cluster("new"), Arc::new(2))]));
        assert!(old.contains_key(&ObjectKey::cluster("gone")));
        assert!(new.contains_key(&ObjectKey::cluster("new")));
        assert_eq!(store.state(), vec![Arc::new(2)]);
        assert!(store.remove(&ObjectKey::cluster("gone")).is_none());
    }

    #[test]
    fn a_store_built_from_objects_is_synced_and_keyed_by_namespace_and_name() {
        use k8s_openapi::api::core::v1::ConfigMap;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        let cm = |ns: &str, name: &str| ConfigMap {
            metadata: ObjectMeta { namespace: Some(ns.into()), name: Some(name.into()), ..ObjectMeta::default() },
            ..ConfigMap::default()
        };
        let store = Store::from_objects([cm("b", "x"), cm("a", "y"), ConfigMap::default()]);
        assert!(store.is_synced());
        let keys: Vec<String> = store.snapshot().keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["a/y", "b/x"]);
    }

    #[test]
    fn keys_display_as_namespace_slash_name() {
        assert_eq!(ObjectKey::namespaced("dev", "web").to_string(), "dev/web");
        assert_eq!(ObjectKey::cluster("node-1").to_string(), "node-1");
    }
}
