//! Keeping the zone fresh: reflectors over Services, EndpointSlices and
//! Namespaces (and Pods with `pods verified`) feed one loop that rebuilds
//! the view whenever any of them changed. Changes that arrive during a
//! rebuild are folded into the next one, so a burst costs a few rebuilds,
//! not one per object. Until every reflector has its first list the server
//! answers SERVFAIL for the zone (never a wrong NXDOMAIN).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use svcnet_client::{Api, ChangeKind, Client, Notification, ObjectKey, Reflector, ReflectorConfig, Store};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::build::{Cluster, SERVICE_NAME_LABEL, build_view};
use crate::config::DnsConfig;
use crate::server::{DnsServer, ServeError, Shared};
use crate::view::{PodsMode, ZoneConfig, ZoneView};

/// The annotation the EndpointSlice controller sets to when the change
/// that led to a slice's current state happened.
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Runs cluster DNS against the API server `client` talks to until
/// `shutdown` resolves.
pub async fn run(client: Client, config: DnsConfig, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    let server = start(client, config).await?;
    shutdown.await;
    server.shutdown().await;
    Ok(())
}

/// Binds the server (answering SERVFAIL for the zone at first) and starts
/// keeping its view in sync with the cluster.
pub async fn start(client: Client, config: DnsConfig) -> Result<DnsServer, ServeError> {
    let zone = config.zone_config()?;
    let mut server = DnsServer::bind(&config, ZoneView::unsynced(zone.clone())).await?;
    let shared = server.shared.clone();
    server.tasks.push(tokio::spawn(keep_fresh(client, zone, shared)));
    Ok(server)
}

/// A slice change to time, for the programming-latency histogram.
struct Trigger {
    at: jiff::Timestamp,
    kind: usize,
}

#[derive(Default)]
struct Changes {
    notify: Notify,
    triggers: Mutex<Vec<Trigger>>,
}

impl Changes {
    fn take(&self) -> Vec<Trigger> {
        std::mem::take(&mut *self.triggers.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

async fn keep_fresh(client: Client, zone: ZoneConfig, shared: Arc<Shared>) {
    fn reflector<K: svcnet_client::Object + Send + Sync + 'static>(client: &Client) -> Reflector<K> {
        Reflector::new(Api::<K>::all(client.clone()), ReflectorConfig::default())
    }
    let changes = Arc::new(Changes::default());
    let mut pumps = JoinSet::new();
    let services = reflector::<Service>(&client);
    let slices = reflector::<EndpointSlice>(&client);
    let namespaces = reflector::<Namespace>(&client);
    let service_store = services.store();
    pump(&mut pumps, services.subscribe(), changes.clone(), |_| None);
    let svc_store = service_store.clone();
    pump(&mut pumps, slices.subscribe(), changes.clone(), move |slice: &EndpointSlice| trigger(slice, &svc_store));
    pump(&mut pumps, namespaces.subscribe(), changes.clone(), |_| None);
    let (slice_store, namespace_store) = (slices.store(), namespaces.store());
    // Only `pods verified` needs pods: watching every pod is the costliest
    // watch in a large cluster.
    let pods = (zone.pods == PodsMode::Verified).then(|| reflector::<Pod>(&client));
    let pod_store = pods.as_ref().map(|p| p.store());
    if let Some(p) = &pods {
        pump(&mut pumps, p.subscribe(), changes.clone(), |_| None);
    }
    // Dropping these handles (when this task is aborted) stops them.
    let _handles = (services.spawn(), slices.spawn(), namespaces.spawn(), pods.map(Reflector::spawn));
    service_store.wait_synced().await;
    slice_store.wait_synced().await;
    namespace_store.wait_synced().await;
    if let Some(p) = &pod_store {
        p.wait_synced().await;
    }
    let mut serial = jiff::Timestamp::now().as_second() as u32;
    loop {
        let triggers = changes.take();
        let cluster = Cluster {
            services: service_store.state(),
            slices: slice_store.state(),
            pods: pod_store.as_ref().map(Store::state).unwrap_or_default(),
            namespaces: namespace_store.state(),
        };
        let (zone2, shared2) = (zone.clone(), shared.clone());
        let started = Instant::now();
        let built = tokio::task::spawn_blocking(move || {
            shared2.publish(Arc::new(build_view(&zone2, &cluster, serial)));
        })
        .await;
        if let Err(e) = built {
            tracing::error!(error = %e, "building the DNS view failed");
        } else {
            tracing::debug!(serial, took = ?started.elapsed(), "DNS view published");
            let now = jiff::Timestamp::now();
            for t in triggers {
                if let Ok(d) = Duration::try_from(now.duration_since(t.at)) {
                    shared.metrics.programming[t.kind].observe(d);
                }
            }
        }
        serial = serial.wrapping_add(1);
        changes.notify.notified().await;
    }
}

/// Forwards a subscription's notifications as "something changed", noting
/// the trigger time of changed objects that carry one.
fn pump<K: Send + Sync + 'static>(
    set: &mut JoinSet<()>,
    mut sub: svcnet_client::Subscription<K>,
    changes: Arc<Changes>,
    trigger: impl Fn(&K) -> Option<Trigger> + Send + 'static,
) {
    set.spawn(async move {
        while let Some(n) = sub.recv().await {
            if let Notification::Changed(c) = &n {
                if c.kind == ChangeKind::Applied {
                    if let Some(t) = trigger(&c.object) {
                        changes.triggers.lock().unwrap_or_else(|p| p.into_inner()).push(t);
                    }
                }
            }
            changes.notify.notify_one();
        }
    });
}

fn trigger(slice: &EndpointSlice, services: &Store<Service>) -> Option<Trigger> {
    let at = slice.metadata.annotations.as_ref()?.get(TRIGGER_TIME)?.parse::<jiff::Timestamp>().ok()?;
    let ns = slice.metadata.namespace.as_deref()?;
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    let svc = services.get(&ObjectKey::namespaced(ns, name))?;
    let spec = svc.spec.as_ref()?;
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let selector = spec.selector.as_ref().is_some_and(|s: &std::collections::BTreeMap<String, String>| !s.is_empty());
    let kind = match (headless, selector) {
        (false, _) => 0,
        (true, true) => 1,
        (true, false) => 2,
    };
    Some(Trigger { at, kind })
}
