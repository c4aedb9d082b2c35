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
use super::queue::{Queue, feed_own_keys};
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
        let matches =
            |k: &ObjectKey| st.labels.get(k).is_some_and(|l| selector.iter().all(|(sk, sv)| l.get(sk) == Some(sv)));
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
    fn services_for(&self, services: &ServiceIndex, key: &ObjectKey, pod: Option<&Pod>) -> HashSet<ObjectKey> {
        let new = pod.and_then(|p| p.metadata.labels.clone()).unwrap_or_default();
        let old = self.update(key, pod);
        let ns = key.namespace.as_deref().unwrap_or_default();
        let mut out = services.selecting(ns, &new);
        if let Some(old) = old {
            out.extend(services.selecting(ns, &old));
        }
        out
    }

    /// Waits until the index holds every pod of the first full list.
    async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await.is_ok();
    }
}

/// Services by the label pairs of their selectors: a pod event finds the
/// Services that may select it from its own labels, without scanning every
/// Service.
#[derive(Clone, Default)]
struct ServiceIndex {
    inner: Arc<Mutex<ServiceIndexState>>,
}

#[derive(Default)]
struct ServiceIndexState {
    selectors: HashMap<ObjectKey, BTreeMap<String, String>>,
    /// (namespace, key, value) of a selector entry → Services.
    by_label: HashMap<(String, String, String), HashSet<ObjectKey>>,
}

impl ServiceIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, ServiceIndexState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, key: &ObjectKey, service: Option<&Service>) {
        let ns = key.namespace.clone().unwrap_or_default();
        let mut st = self.lock();
        if let Some(old) = st.selectors.remove(key) {
            for (k, v) in old {
                let slot = (ns.clone(), k, v);
                if let Some(set) = st.by_label.get_mut(&slot) {
                    set.remove(key);
                    if set.is_empty() {
                        st.by_label.remove(&slot);
                    }
                }
            }
        }
        // Services without a selector (or an empty one) select no pods
        // through the controller, so they need no entry.
        let Some(selector) = service.and_then(|s| s.spec.as_ref()).and_then(|s| s.selector.clone()) else { return };
        if selector.is_empty() {
            return;
        }
        for (k, v) in &selector {
            st.by_label.entry((ns.clone(), k.clone(), v.clone())).or_default().insert(key.clone());
        }
        st.selectors.insert(key.clone(), selector);
    }

    /// Services in `ns` whose whole selector is within `labels`.
    fn selecting(&self, ns: &str, labels: &BTreeMap<String, String>) -> HashSet<ObjectKey> {
        let st = self.lock();
        let mut out = HashSet::new();
        for (k, v) in labels {
            let Some(set) = st.by_label.get(&(ns.to_string(), k.clone(), v.clone())) else { continue };
            for svc in set {
                let selects =
                    st.selectors.get(svc).is_some_and(|sel| sel.iter().all(|(sk, sv)| labels.get(sk) == Some(sv)));
                if selects {
                    out.insert(svc.clone());
                }
            }
        }
        out
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
fn feed_service_queue(
    inf: &Arc<Informers>,
    queue: &Queue,
    index: &PodIndex,
    watch_endpoints: bool,
    watch_slices: bool,
) {
    let all_services = |inf: &Informers, queue: &Queue| queue.add_all(&inf.services.store().state());
    let services = ServiceIndex::default();
    {
        let (inf, queue, services) = (inf.clone(), queue.clone(), services.clone());
        let mut sub = inf.services.subscribe();
        tokio::spawn(async move {
            while let Some(n) = sub.recv().await {
                match n {
                    Notification::Resync => {
                        for s in inf.services.store().state() {
                            if let Some(k) = key_of(s.as_ref()) {
                                services.update(&k, Some(&s));
                            }
                        }
                        all_services(&inf, &queue);
                    }
                    Notification::Changed(c) => {
                        let svc = (c.kind == svcnet_client::ChangeKind::Applied).then_some(c.object.as_ref());
                        services.update(&c.key, svc);
                        queue.add(c.key);
                    }
                }
            }
        });
    }
    {
        let (inf, queue, index, services) = (inf.clone(), queue.clone(), index.clone(), services.clone());
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
                        for svc in index.services_for(&services, &c.key, pod) {
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
                    if let (Some(ns), Some(svc)) =
                        (c.key.namespace.as_deref(), labels.and_then(|l| l.get(endpointslice::SERVICE_NAME_LABEL)))
                    {
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
        let (inf, client, queue, tracker, index) =
            (inf.clone(), client.clone(), queue.clone(), tracker.clone(), index.clone());
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
    let created = Created::default();
    feed_service_queue(&inf, &queue, &index, false, true);
    for _ in 0..workers {
        let (inf, client, queue, index, created) =
            (inf.clone(), client.clone(), queue.clone(), index.clone(), created.clone());
        tokio::spawn(async move {
            inf.wait_synced().await;
            index.wait_ready().await;
            loop {
                let key = queue.next().await;
                // Slices this controller created that its informer has not
                // seen yet: reconciling now would create them again.
                if !created.seen(&key, &inf) {
                    queue.add_after(key.clone(), Duration::from_millis(20));
                } else if let Err(e) = sync_slices(&inf, &index, &client, &created, &key, max_per_slice).await {
                    tracing::debug!(error = %e, service = ?key, "syncing endpoint slices failed; retrying");
                    queue.add_after(key.clone(), RETRY);
                }
                queue.done(&key);
            }
        });
    }
}

/// The slices of a Service managed by `managed_by`. Controllers name their
/// slices `<service>-<random>` (generateName), so a range of the store's
/// ordered keys finds them without scanning every slice; the labels decide.
fn slices_of(inf: &Informers, ns: &str, service: &str, managed_by: &str) -> Vec<Arc<EndpointSlice>> {
    let snapshot = inf.slices.store().snapshot();
    let prefix = format!("{service}-");
    let start = ObjectKey::namespaced(ns, &prefix);
    snapshot
        .range(start..)
        .take_while(|(k, _)| k.namespace.as_deref() == Some(ns) && k.name.starts_with(&prefix))
        .map(|(_, s)| s.clone())
        .filter(|s| endpointslice::is_managed_slice(s, managed_by, service, Some(ns)))
        .collect()
}

/// Writes slice changes; returns the keys of the slices it created.
async fn apply_slice_changes(
    client: &Client,
    ns: &str,
    changes: SliceChanges,
) -> svcnet_client::Result<Vec<ObjectKey>> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let mut created = Vec::new();
    for slice in &changes.create {
        let made = api.create(&PostParams::default(), slice).await?;
        created.extend(ObjectKey::of(&made));
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
    Ok(created)
}

/// Slices created per Service and not yet seen by the informer (the
/// EndpointSlice controller's "expectations").
#[derive(Clone, Default)]
struct Created(Arc<Mutex<HashMap<ObjectKey, (Vec<ObjectKey>, std::time::Instant)>>>);

impl Created {
    fn seen(&self, service: &ObjectKey, inf: &Informers) -> bool {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some((names, since)) = all.get_mut(service) else { return true };
        let store = inf.slices.store();
        names.retain(|k| store.get(k).is_none());
        // A lost watch event must not wedge the Service forever.
        if names.is_empty() || since.elapsed() > Duration::from_secs(30) {
            all.remove(service);
            return true;
        }
        false
    }

    fn record(&self, service: &ObjectKey, slice: ObjectKey) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(service.clone()).or_insert_with(|| (Vec::new(), std::time::Instant::now())).0.push(slice);
    }
}

async fn sync_slices(
    inf: &Informers,
    index: &PodIndex,
    client: &Client,
    created: &Created,
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
    for slice in apply_slice_changes(client, ns, changes).await? {
        created.record(key, slice);
    }
    Ok(())
}

/// Runs the EndpointSlice mirroring controller (hand-written Endpoints of
/// selector-less Services into slices).
pub fn spawn_mirroring(inf: Arc<Informers>, client: Client) {
    let queue = Queue::default();
    // Keys are Endpoints keys, which equal their Service's.
    feed_own_keys(&inf.endpoints, &queue);
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
    apply_slice_changes(client, ns, changes).await.map(|_| ())
}
