//! The controller: reflectors over Ingresses, IngressClasses, Services,
//! EndpointSlices and Secrets feed one loop that rebuilds the route table
//! from the stores ([`crate::build_table`]'s core, on a blocking thread),
//! publishes it, hands the set of Ingresses it serves to the status writer
//! (`status.rs`: our addresses on those, cleared from those no longer
//! ours, failed writes retried with backoff), and records Events: a
//! Warning when a problem appears (missing Service or Secret, conflicting
//! rule, bad annotation) and a Normal `Sync` once per Ingress generation.
//!
//! Changes are debounced: a rebuild starts once no change has come for
//! 30 ms (at most 250 ms after the first), and changes that arrive while a
//! table is being built are folded into the next build, so a burst of
//! endpoint changes costs one or two rebuilds. Parsed certificates are
//! kept across rebuilds while their Secret's `resourceVersion` holds.
//! Only `kubernetes.io/tls` Secrets are watched (field selector on `type`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use serde_json::json;
use svcnet_client::events::{EventType, Recorder, reference};
use svcnet_client::{Api, Client, ObjectKey, Patch, PatchParams, Reflector, ReflectorConfig, ReflectorHandle, Store};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::IngressConfig;
use crate::error::Error;
use crate::pool::Connector;
use crate::server::{IngressServer, Listeners, Shared};
use crate::status::{self, Key, LookupFn, WriteFn};
use crate::table::{CertCache, IngressRef, Problem, RouteTable, TLS_SECRET_TYPE, compile};

/// A running Ingress controller: the watches and the proxy.
#[derive(Debug)]
pub struct IngressController {
    server: IngressServer,
    task: JoinHandle<()>,
}

impl IngressController {
    /// Starts watching and serving. Returns once the watches are started
    /// (serving may answer 404/503 until the first sync; `/healthz` says
    /// ready only after it).
    pub async fn start(
        client: Client,
        config: IngressConfig,
        listeners: Listeners,
        connector: Arc<dyn Connector>,
    ) -> Result<IngressController, Error> {
        let client = client.with_user_agent("svcnet-ingress/0.1.0").unwrap_or(client);
        let server = IngressServer::start(RouteTable::empty(), listeners, connector, config.metrics).await?;
        let dirty = Arc::new(Notify::new());
        let all = ReflectorConfig::default;
        let (ingresses, h1) = watch::<Ingress>(&client, all(), &dirty);
        let (classes, h2) = watch::<IngressClass>(&client, all(), &dirty);
        let (services, h3) = watch::<Service>(&client, all(), &dirty);
        let (slices, h4) = watch::<EndpointSlice>(&client, all(), &dirty);
        // Only TLS Secrets: the others (service-account tokens, Helm
        // releases, ...) are the bulk of a cluster's Secrets and would sit
        // in memory for nothing. Both svcnet's API server and
        // kube-apiserver select Secrets by `type`.
        let tls_only = all().fields(&format!("type={TLS_SECRET_TYPE}"));
        let (secrets, h5) = watch::<Secret>(&client, tls_only, &dirty);
        let stores = Stores { ingresses, classes, services, slices, secrets };
        let shared = server.shared.clone();
        let task = tokio::spawn(async move {
            // Dropping the handles (when this task ends) stops the reflectors.
            let _handles = (h1, h2, h3, h4, h5);
            run(client, config, stores, shared, dirty).await;
        });
        Ok(IngressController { server, task })
    }

    /// Serves on more sockets too (e.g. one per node namespace).
    pub fn add_listeners(&self, listeners: Listeners) {
        self.server.add_listeners(listeners);
    }

    /// Where `/metrics` and `/healthz` are served, if anywhere.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.metrics_addr()
    }

    /// The proxy (addresses, current table, metrics).
    pub fn server(&self) -> &IngressServer {
        &self.server
    }

    /// Stops watching and accepting; in-flight requests get up to `grace`.
    pub async fn shutdown(self, grace: Duration) {
        self.task.abort();
        let _ = self.task.await;
        self.server.shutdown(grace).await;
    }
}

/// A reflector whose every notification marks the table dirty.
fn watch<K>(client: &Client, config: ReflectorConfig, dirty: &Arc<Notify>) -> (Store<K>, ReflectorHandle<K>)
where
    K: svcnet_client::Object + Send + Sync + 'static,
{
    let reflector = Reflector::new(Api::<K>::all(client.clone()), config);
    let store = reflector.store();
    let mut sub = reflector.subscribe();
    let handle = reflector.spawn();
    let dirty = dirty.clone();
    // Ends when the reflector (its handle) is dropped.
    tokio::spawn(async move {
        while sub.recv().await.is_some() {
            dirty.notify_one();
        }
    });
    (store, handle)
}

#[derive(Clone)]
struct Stores {
    ingresses: Store<Ingress>,
    classes: Store<IngressClass>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    secrets: Store<Secret>,
}

/// After a change, the rebuild waits until no further change has come for
/// this long (a rollout's burst of endpoint updates is one rebuild, not
/// dozens) ...
const QUIET: Duration = Duration::from_millis(30);
/// ... but never longer than this after the first change of the burst, so
/// a steady stream of changes still gets served.
const MAX_DELAY: Duration = Duration::from_millis(250);

/// Waits for a change, then for the burst it opens to settle.
async fn next_change(dirty: &Notify) {
    dirty.notified().await;
    let deadline = tokio::time::Instant::now() + MAX_DELAY;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() || tokio::time::timeout(QUIET.min(left), dirty.notified()).await.is_err() {
            return;
        }
    }
}

async fn run(client: Client, config: IngressConfig, stores: Stores, shared: Arc<Shared>, dirty: Arc<Notify>) {
    stores.ingresses.wait_synced().await;
    stores.classes.wait_synced().await;
    stores.services.wait_synced().await;
    stores.slices.wait_synced().await;
    stores.secrets.wait_synced().await;
    let recorder = Recorder::new(client.clone(), "svcnet-ingress");
    let mut reported: HashSet<Problem> = HashSet::new();
    let mut synced_generation: HashMap<String, i64> = HashMap::new();
    let mut certs = CertCache::default();
    // Status is written by a task of its own (status.rs), so a slow or
    // failing API server never holds up serving a new table. It ends when
    // this loop does (the sender is dropped).
    let (served_tx, served_rx) = tokio::sync::watch::channel(Arc::new(HashSet::new()));
    let _writer = (!config.status_addresses.is_empty()).then(|| {
        let want: Vec<String> = config.status_addresses.iter().map(|a| a.to_string()).collect();
        let store = stores.ingresses.clone();
        let lookup: LookupFn = Arc::new(move |(ns, name): &Key| store.get(&ObjectKey::namespaced(ns, name)));
        AbortOnDrop(tokio::spawn(status::run(want, served_rx, lookup, status_writer(client.clone()))))
    });
    loop {
        let (s, c, mut cache) = (stores.clone(), config.clone(), std::mem::take(&mut certs));
        let built = tokio::task::spawn_blocking(move || {
            let (ingresses, classes, services, slices, secrets) =
                (s.ingresses.state(), s.classes.state(), s.services.state(), s.slices.state(), s.secrets.state());
            let built = compile(&ingresses, &classes, &services, &slices, &secrets, &c, &mut cache);
            (built, cache)
        })
        .await;
        match built {
            Ok(((table, problems), cache)) => {
                certs = cache;
                let served: Vec<IngressRef> = table.ingresses().to_vec();
                shared.publish(table);
                if !shared.synced.swap(true, Relaxed) {
                    tracing::info!(ingresses = served.len(), "first Ingress configuration loaded");
                }
                report(&recorder, &stores.ingresses, &problems, &mut reported);
                for id in &served {
                    let Some(ing) = stores.ingresses.get(&ObjectKey::namespaced(&id.namespace, &id.name)) else {
                        continue;
                    };
                    announce_sync(&recorder, &ing, &mut synced_generation);
                }
                // Sent after every build, changed or not: the Ingresses'
                // own status may have changed.
                served_tx
                    .send_replace(Arc::new(served.iter().map(|id| (id.namespace.clone(), id.name.clone())).collect()));
            }
            Err(e) => tracing::error!(error = %e, "building the route table failed; keeping the previous one"),
        }
        next_change(&dirty).await;
    }
}

/// Warning Events for problems that were not there in the previous build.
fn report(recorder: &Recorder, ingresses: &Store<Ingress>, problems: &[Problem], reported: &mut HashSet<Problem>) {
    let now: HashSet<Problem> = problems.iter().cloned().collect();
    for p in problems {
        if reported.contains(p) {
            continue;
        }
        tracing::warn!(ingress = %p.ingress, reason = p.reason, "{}", p.message);
        if let Some(ing) = ingresses.get(&ObjectKey::namespaced(&p.ingress.namespace, &p.ingress.name)) {
            let object = reference("Ingress", "networking.k8s.io/v1", &ing.metadata);
            recorder.record(object, EventType::Warning, p.reason, p.message.clone());
        }
    }
    *reported = now;
}

/// ingress-nginx's `Sync` / "Scheduled for sync", once per generation.
fn announce_sync(recorder: &Recorder, ing: &Ingress, seen: &mut HashMap<String, i64>) {
    let uid = ing.metadata.uid.clone().unwrap_or_default();
    let generation = ing.metadata.generation.unwrap_or(0);
    if seen.get(&uid) == Some(&generation) {
        return;
    }
    seen.insert(uid, generation);
    if seen.len() > 100_000 {
        seen.clear();
    }
    let object = reference("Ingress", "networking.k8s.io/v1", &ing.metadata);
    recorder.record(object, EventType::Normal, "Sync", "Scheduled for sync".to_string());
}

/// Aborts the task when dropped (the rebuild loop is aborted on shutdown,
/// and the status writer with it).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes `status.loadBalancer.ingress` with a merge patch on the status
/// subresource; an empty list clears it.
fn status_writer(client: Client) -> WriteFn {
    Arc::new(move |(ns, name): Key, ips: Vec<String>| {
        let client = client.clone();
        Box::pin(async move {
            let list: Vec<serde_json::Value> = ips.iter().map(|ip| json!({ "ip": ip })).collect();
            let patch = json!({ "status": { "loadBalancer": { "ingress": list } } });
            let api: Api<Ingress> = Api::namespaced(client, &ns);
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(|e| e.to_string())?;
            tracing::debug!(ingress = %format!("{ns}/{name}"), ?ips, "status written");
            Ok(())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_changes_costs_one_rebuild_not_one_each() {
        let dirty = Arc::new(Notify::new());
        let d = dirty.clone();
        let burst = tokio::spawn(async move {
            for _ in 0..50 {
                d.notify_one();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let mut rebuilds = 0;
        while let Ok(()) = tokio::time::timeout(Duration::from_secs(1), next_change(&dirty)).await {
            rebuilds += 1;
        }
        assert!(burst.is_finished());
        // One; two if this machine is so loaded that the burst outlasted
        // MAX_DELAY.
        assert!((1..=2).contains(&rebuilds), "{rebuilds} rebuilds for 50 changes");
    }
}
