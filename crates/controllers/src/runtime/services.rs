//! The Endpoints, EndpointSlice and EndpointSlice-mirroring controllers'
//! runtime: turn informer changes into queued Service keys, reconcile each
//! with the pure functions in [`crate::endpoints`] and
//! [`crate::endpointslice`], and write the result.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use svcnet_client::{Api, Client, DeleteParams, Notification, ObjectKey, PostParams};

use super::Informers;
use super::queue::Queue;
use crate::endpoints::{self, EndpointsWrite, TriggerTimeTracker};
use crate::endpointslice::{self, SliceChanges};

/// How long to wait before retrying a key whose sync failed.
const RETRY: Duration = Duration::from_millis(500);

fn key_of<K: svcnet_client::Object>(o: &K) -> Option<ObjectKey> {
    ObjectKey::of(o)
}

fn namespace(key: &ObjectKey) -> &str {
    key.namespace.as_deref().unwrap_or("default")
}

/// Which pods carry which labels: lets a Service find its pods by its
/// selector without scanning every pod, and lets a pod change find the
/// Services its old and new labels match (so a relabelled pod leaves its
/// old Service's endpoints).
#[derive(Clone)]
struct PodIndex {
    inner: Arc<Mutex<IndexState>>,
    ready: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct IndexState {
    labels: HashMap<ObjectKey, BTreeMap<String, String>>,
    /// (namespace, label key, label value) → pods.
    by_label: HashMap<(String, String, String), HashSet<ObjectKey>>,
    /// namespace → pods, for empty selectors.
    by_namespace: HashMap<String, HashSet<ObjectKey>>,
}

impl PodIndex {
    fn new() -> Self {
        PodIndex { inner: Arc::default(), ready: tokio::sync::watch::channel(false).0 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IndexState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a pod's labels (`None`: the pod is gone); returns its
    /// previous labels.
    fn update(&self, key: &ObjectKey, pod: Option<&Pod>) -> Option<BTreeMap<String, String>> {
        let ns = key.namespace.clone().unwrap_or_default();
        let mut st = self.lock();
        let old = st.labels.remove(key);
        if let Some(old) = &old {
            for (k, v) in old {
                let slot = (ns.clone(), k.clone(), v.clone());
                if let Some(set) = st.by_label.get_mut(&slot) {
                    set.remove(key);
                    if set.is_empty() {
                        st.by_label.remove(&slot);
                    }
                }
            }
        }
        match pod {
            Some(p) => {
                let labels = p.metadata.labels.clone().unwrap_or_default();
                for (k, v) in &labels {
                    st.by_label.entry((ns.clone(), k.clone(), v.clone())).or_default().insert(key.clone());
                }
                st.by_namespace.entry(ns).or_default().insert(key.clone());
                st.labels.insert(key.clone(), labels);
            }
            None => {
                if let Some(set) = st.by_namespace.get_mut(&ns) {
                    set.remove(key);
                }
            }
        }
        old
    }

    /// Pods in `ns` whose labels include all of `selector`.
    fn select(&self, ns: &str, selector: &BTreeMap<String, String>) -> Vec<ObjectKey> {
        let st = self.lock();
        let matches = |k: &ObjectKey| {
            st.labels.get(k).is_some_and(|l| selector.iter().all(|(sk, sv)| l.get(sk) == Some(sv)))
        };
        if selector.is_empty() {
            return st.by_namespace.get(ns).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        }
        // Start from the rarest label of the selector.
        let smallest = selector
            .iter()
            .map(|(k, v)| st.by_label.get(&(ns.to_string(), k.clone(), v.clone())))
            .min_by_key(|set| set.map_or(0, HashSet::len));
        match smallest.flatten() {
            Some(set) => set.iter().filter(|k| matches(k)).cloned().collect(),
            None => Vec::new(),
        }
    }

    /// Services in the pod's namespace selecting its old or new labels.
    fn services_for(&self, inf: &Informers, key: &ObjectKey, pod: Option<&Pod>) -> Vec<ObjectKey> {
        let new = pod.and_then(|p| p.metadata.labels.clone()).unwrap_or_default();
        let old = self.update(key, pod);
        let ns = key.namespace.as_deref();
        let selects = |svc: &Service, labels: &BTreeMap<String, String>| {
            svc.spec.as_ref().and_then(|s| s.selector.as_ref()).is_some_and(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
        };
        inf.services
            .store()
            .state()
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == ns)
            .filter(|s| selects(s, &new) || old.as_ref().is_some_and(|o| selects(s, o)))
            .filter_map(|s| key_of(s.as_ref()))
            .collect()
    }

    /// Waits until the index holds every pod of the first full list.
    async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await.is_ok();
    }
}

/// The pods a Service selects, from the index and the informer's store.
fn selected_pods(inf: &Informers, index: &PodIndex, service: &Service) -> Vec<Arc<Pod>> {
    let ns = service.metadata.namespace.as_deref().unwrap_or_default();
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else { return Vec::new() };
    let store = inf.pods.store();
    let mut pods: Vec<Arc<Pod>> = index.select(ns, selector).iter().filter_map(|k| store.get(k)).collect();
    // A deterministic order keeps the reconcilers' output stable.
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods
}

/// Feeds a queue of Service keys from Service, Pod and (optionally)
/// Endpoints/EndpointSlice changes.
fn feed_service_queue(inf: &Arc<Informers>, queue: &Queue, index: &PodIndex, watch_endpoints: bool, watch_slices: bool) {
    let all_services = |inf: &Informers, queue: &Queue| {
        for s in inf.services.store().state() {
            if let Some(k) = key_of(s.as_ref()) {
                queue.add(k);
            }
        }
    };
    {
        let (inf, queue) = (inf.clone(), queue.clone());
        let mut sub = inf.services.subscribe();
        tokio::spawn(async move {
            while let Some(n) = sub.recv().await {
                match n {
                    Notification::Resync => all_services(&inf, &queue),
                    Notification::Changed(c) => queue.add(c.key),
                }
            }
        });
    }
    {
        let (inf, queue, index) = (inf.clone(), queue.clone(), index.clone());
        let mut sub = inf.pods.subscribe();
        tokio::spawn(async move {
            while let Some(n) = sub.recv().await {
                match n {
                    Notification::Resync => {
                        for p in inf.pods.store().state() {
                            if let Some(k) = key_of(p.as_ref()) {
                                index.update(&k, Some(&p));
                            }
                        }
                        index.ready.send_replace(true);
                        all_services(&inf, &queue);
                    }
                    Notification::Changed(c) => {
                        let pod = (c.kind == svcnet_client::ChangeKind::Applied).then_some(c.object.as_ref());
                        for svc in index.services_for(&inf, &c.key, pod) {
                            queue.add(svc);
                        }
                    }
                }
            }
        });
    }
    if watch_endpoints {
        // Only deletions, as kube's Endpoints controller: an Endpoints object
        // written before its (selector-less) Service must not be taken for
        // the leftover of a deleted Service.
        let queue = queue.clone();
        let mut sub = inf.endpoints.subscribe();
        tokio::spawn(async move {
            while let Some(n) = sub.recv().await {
                if let Notification::Changed(c) = n {
                    if c.kind == svcnet_client::ChangeKind::Deleted {
                        queue.add(c.key);
                    }
                }
            }
        });
    }
    if watch_slices {
        let queue = queue.clone();
        let mut sub = inf.slices.subscribe();
        tokio::spawn(async move {
            while let Some(n) = sub.recv().await {
                if let Notification::Changed(c) = n {
                    let labels = c.object.metadata.labels.as_ref();
                    if let (Some(ns), Some(svc)) = (c.key.namespace.as_deref(), labels.and_then(|l| l.get(endpointslice::SERVICE_NAME_LABEL))) {
                        queue.add(ObjectKey::namespaced(ns, svc));
                    }
                }
            }
        });
    }
}

/// Runs the Endpoints controller until its informers stop.
pub fn spawn_endpoints(inf: Arc<Informers>, client: Client, workers: usize) {
    let queue = Queue::default();
    let index = PodIndex::new();
    feed_service_queue(&inf, &queue, &index, true, false);
    let tracker = Arc::new(Mutex::new(TriggerTimeTracker::new()));
    for _ in 0..workers {
        let (inf, client, queue, tracker, index) = (inf.clone(), client.clone(), queue.clone(), tracker.clone(), index.clone());
        tokio::spawn(async move {
            // Nothing is written until every informer is synced and the
            // index is built: a partial view would empty live Endpoints.
            inf.wait_synced().await;
            index.wait_ready().await;
            loop {
                let key = queue.next().await;
                if let Err(e) = sync_endpoints(&inf, &index, &client, &tracker, &key).await {
                    tracing::debug!(error = %e, service = ?key, "syncing endpoints failed; retrying");
                    queue.add_after(key.clone(), RETRY);
                }
                queue.done(&key);
            }
        });
    }
}

async fn sync_endpoints(
    inf: &Informers,
    index: &PodIndex,
    client: &Client,
    tracker: &Mutex<TriggerTimeTracker>,
    key: &ObjectKey,
) -> svcnet_client::Result<()> {
    let ns = namespace(key);
    let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let Some(service) = inf.services.store().get(key) else {
        // The Service is gone: so is its Endpoints object.
        tracker.lock().unwrap_or_else(|p| p.into_inner()).delete_service(ns, &key.name);
        if inf.endpoints.store().get(key).is_some() {
            match api.delete(&key.name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(());
    };
    let selected = selected_pods(inf, index, &service);
    let pods: Vec<&Pod> = selected.iter().map(|p| p.as_ref()).collect();
    let trigger = tracker.lock().unwrap_or_else(|p| p.into_inner()).compute(&service, &pods);
    let existing = inf.endpoints.store().get(key);
    match endpoints::reconcile_endpoints(&service, &pods, existing.as_deref(), trigger) {
        None => Ok(()),
        Some(EndpointsWrite::Create(ep)) => match api.create(&PostParams::default(), &ep).await {
            Ok(_) => Ok(()),
            // Someone wrote it meanwhile (a restart, a user): update next time.
            Err(e) if e.is_already_exists() => Err(e),
            Err(e) => Err(e),
        },
        Some(EndpointsWrite::Update(ep)) => api.replace(&key.name, &PostParams::default(), &ep).await.map(|_| ()),
    }
}

/// Runs the EndpointSlice controller until its informers stop.
pub fn spawn_endpointslices(inf: Arc<Informers>, client: Client, workers: usize, max_per_slice: usize) {
    let queue = Queue::default();
    let index = PodIndex::new();
    feed_service_queue(&inf, &queue, &index, false, true);
    for _ in 0..workers {
        let (inf, client, queue, index) = (inf.clone(), client.clone(), queue.clone(), index.clone());
        tokio::spawn(async move {
            inf.wait_synced().await;
            index.wait_ready().await;
            loop {
                let key = queue.next().await;
                if let Err(e) = sync_slices(&inf, &index, &client, &key, max_per_slice).await {
                    tracing::debug!(error = %e, service = ?key, "syncing endpoint slices failed; retrying");
                    queue.add_after(key.clone(), RETRY);
                }
                queue.done(&key);
            }
        });
    }
}

fn slices_of(inf: &Informers, ns: &str, service: &str, managed_by: &str) -> Vec<Arc<EndpointSlice>> {
    inf.slices
        .store()
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
        .filter(|s| {
            let labels = s.metadata.labels.as_ref();
            labels.and_then(|l| l.get(endpointslice::SERVICE_NAME_LABEL)).map(String::as_str) == Some(service)
                && labels.and_then(|l| l.get(endpointslice::MANAGED_BY_LABEL)).map(String::as_str) == Some(managed_by)
        })
        .collect()
}

async fn apply_slice_changes(client: &Client, ns: &str, changes: SliceChanges) -> svcnet_client::Result<()> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    for slice in &changes.create {
        api.create(&PostParams::default(), slice).await?;
    }
    for slice in &changes.update {
        let name = slice.metadata.name.clone().unwrap_or_default();
        api.replace(&name, &PostParams::default(), slice).await?;
    }
    for slice in &changes.delete {
        let name = slice.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn sync_slices(
    inf: &Informers,
    index: &PodIndex,
    client: &Client,
    key: &ObjectKey,
    max_per_slice: usize,
) -> svcnet_client::Result<()> {
    let ns = namespace(key);
    // A deleted Service's slices are its dependents: the garbage collector
    // removes them.
    let Some(service) = inf.services.store().get(key) else { return Ok(()) };
    let selected = selected_pods(inf, index, &service);
    let pods: Vec<&Pod> = selected.iter().map(|p| p.as_ref()).collect();
    let existing = slices_of(inf, ns, &key.name, endpointslice::CONTROLLER_NAME);
    let existing: Vec<&EndpointSlice> = existing.iter().map(|s| s.as_ref()).collect();
    let nodes = inf.nodes.store();
    let zone = |node: &str| {
        nodes
            .get(&ObjectKey::cluster(node))
            .and_then(|n| n.metadata.labels.as_ref().and_then(|l| l.get(endpointslice::ZONE_LABEL).cloned()))
    };
    let changes = endpointslice::reconcile_slices(&service, &pods, zone, &existing, max_per_slice);
    if changes.is_empty() {
        return Ok(());
    }
    apply_slice_changes(client, ns, changes).await
}

/// Runs the EndpointSlice mirroring controller (hand-written Endpoints of
/// selector-less Services into slices).
pub fn spawn_mirroring(inf: Arc<Informers>, client: Client) {
    let queue = Queue::default();
    // Keys are Endpoints keys, which equal their Service's.
    {
        let queue = queue.clone();
        let mut sub = inf.endpoints.subscribe();
        let inf2 = inf.clone();
        tokio::spawn(async move {
            while let Some(n) = sub.recv().await {
                match n {
                    Notification::Resync => {
                        for e in inf2.endpoints.store().state() {
                            if let Some(k) = key_of(e.as_ref()) {
                                queue.add(k);
                            }
                        }
                    }
                    Notification::Changed(c) => queue.add(c.key),
                }
            }
        });
    }
    {
        let queue = queue.clone();
        let mut sub = inf.services.subscribe();
        tokio::spawn(async move {
            while let Some(n) = sub.recv().await {
                if let Notification::Changed(c) = n {
                    queue.add(c.key);
                }
            }
        });
    }
    let (inf2, client2, queue2) = (inf, client, queue);
    tokio::spawn(async move {
        inf2.wait_synced().await;
        loop {
            let key = queue2.next().await;
            if let Err(e) = sync_mirror(&inf2, &client2, &key).await {
                tracing::debug!(error = %e, endpoints = ?key, "mirroring endpoints failed; retrying");
                queue2.add_after(key.clone(), RETRY);
            }
            queue2.done(&key);
        }
    });
}

async fn sync_mirror(inf: &Informers, client: &Client, key: &ObjectKey) -> svcnet_client::Result<()> {
    let ns = namespace(key);
    let existing = slices_of(inf, ns, &key.name, endpointslice::MIRRORING_CONTROLLER_NAME);
    let existing: Vec<&EndpointSlice> = existing.iter().map(|s| s.as_ref()).collect();
    let service = inf.services.store().get(key);
    let changes = match inf.endpoints.store().get(key) {
        Some(ep) => endpointslice::mirror_endpoints(
            &ep,
            service.as_deref(),
            &existing,
            endpointslice::DEFAULT_MIRRORING_MAX_ENDPOINTS_PER_SUBSET,
        ),
        None => SliceChanges { delete: existing.iter().map(|s| (*s).clone()).collect(), ..SliceChanges::default() },
    };
    if changes.is_empty() {
        return Ok(());
    }
    apply_slice_changes(client, ns, changes).await
}

