//! Keeping the zone fresh: reflectors over Services, EndpointSlices and
//! Namespaces (and Pods with `pods verified`) feed one loop that applies
//! each changed object to the [`LiveZone`] and publishes the result. A
//! change costs the records of the object that changed (`zone.rs`);
//! changes that arrive while one is applied are applied together next,
//! so a burst costs a few publishes, not one per object. A subscriber that
//! missed changes (`Resync`) makes the loop rebuild the zone from the
//! reflectors' stores. Until every reflector has its first list the server
//! answers SERVFAIL for the zone (never a wrong NXDOMAIN).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use svcnet_client::{Api, ChangeKind, Client, Notification, ObjectKey, Reflector, ReflectorConfig, Store};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::DnsConfig;
use crate::objects::{DnsPod, DnsService, DnsSlice};
use crate::server::{DnsServer, ServeError, Shared};
use crate::view::{PodsMode, ZoneConfig, ZoneView};
use crate::zone::LiveZone;

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

/// What a subscription reported: which object changed (its current state
/// is read from the store when the change is applied), or that changes
/// were missed.
#[derive(Debug)]
enum Event {
    Service(ObjectKey),
    Slice(ObjectKey),
    Pod(ObjectKey),
    Namespace(ObjectKey),
    Resync,
}

#[derive(Default)]
struct Changes {
    notify: Notify,
    pending: Mutex<(Vec<Event>, Vec<Trigger>)>,
}

impl Changes {
    fn push(&self, event: Event, trigger: Option<Trigger>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.0.push(event);
        pending.1.extend(trigger);
    }

    fn take(&self) -> (Vec<Event>, Vec<Trigger>) {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The reflectors' stores: what a change is applied from.
#[derive(Clone)]
struct Stores {
    services: Store<DnsService>,
    slices: Store<DnsSlice>,
    namespaces: Store<Namespace>,
    pods: Option<Store<DnsPod>>,
}

impl Stores {
    /// Puts every object in `zone`.
    fn load(&self, zone: &mut LiveZone) {
        for (key, svc) in self.services.snapshot().iter() {
            zone.set_service(namespace_of(key), &key.name, Some(svc.clone()));
        }
        for (key, slice) in self.slices.snapshot().iter() {
            zone.set_slice(namespace_of(key), &key.name, Some(slice.clone()));
        }
        for key in self.namespaces.snapshot().keys() {
            zone.set_namespace(&key.name, true);
        }
        if let Some(pods) = &self.pods {
            for (key, pod) in pods.snapshot().iter() {
                zone.set_pod(namespace_of(key), &key.name, Some(pod.clone()));
            }
        }
    }

    /// Applies the object's current state (level-triggered: a change
    /// applied twice, or late, still leaves the zone as the store is).
    fn apply(&self, zone: &mut LiveZone, event: &Event) {
        match event {
            Event::Service(k) => zone.set_service(namespace_of(k), &k.name, self.services.get(k)),
            Event::Slice(k) => zone.set_slice(namespace_of(k), &k.name, self.slices.get(k)),
            Event::Namespace(k) => zone.set_namespace(&k.name, self.namespaces.get(k).is_some()),
            Event::Pod(k) => {
                if let Some(pods) = &self.pods {
                    zone.set_pod(namespace_of(k), &k.name, pods.get(k));
                }
            }
            Event::Resync => {}
        }
    }
}

fn namespace_of(key: &ObjectKey) -> &str {
    key.namespace.as_deref().unwrap_or_default()
}

async fn keep_fresh(client: Client, zone: ZoneConfig, shared: Arc<Shared>) {
    fn reflector<K: svcnet_client::Object + Send + Sync + 'static>(client: &Client) -> Reflector<K> {
        Reflector::new(Api::<K>::all(client.clone()), ReflectorConfig::default())
    }
    let changes = Arc::new(Changes::default());
    let mut pumps = JoinSet::new();
    // Decoded into the few fields the zone reads (objects.rs), not whole
    // objects: the reflectors' stores are most of the server's memory.
    let services = reflector::<DnsService>(&client);
    let slices = reflector::<DnsSlice>(&client);
    let namespaces = reflector::<Namespace>(&client);
    // Only `pods verified` needs pods: watching every pod is the costliest
    // watch in a large cluster.
    let pods = (zone.pods == PodsMode::Verified).then(|| reflector::<DnsPod>(&client));
    let stores = Stores {
        services: services.store(),
        slices: slices.store(),
        namespaces: namespaces.store(),
        pods: pods.as_ref().map(|p| p.store()),
    };
    pump(&mut pumps, services.subscribe(), changes.clone(), Event::Service, |_| None);
    let svc_store = stores.services.clone();
    pump(&mut pumps, slices.subscribe(), changes.clone(), Event::Slice, move |slice: &DnsSlice| {
        trigger(slice, &svc_store)
    });
    pump(&mut pumps, namespaces.subscribe(), changes.clone(), Event::Namespace, |_| None);
    if let Some(p) = &pods {
        pump(&mut pumps, p.subscribe(), changes.clone(), Event::Pod, |_| None);
    }
    // Dropping these handles (when this task is aborted) stops them.
    let _handles = (services.spawn(), slices.spawn(), namespaces.spawn(), pods.map(Reflector::spawn));
    stores.services.wait_synced().await;
    stores.slices.wait_synced().await;
    stores.namespaces.wait_synced().await;
    if let Some(p) = &stores.pods {
        p.wait_synced().await;
    }
    let mut serial = jiff::Timestamp::now().as_second() as u32;
    let mut live: Option<Box<LiveZone>> = None;
    loop {
        let (events, triggers) = changes.take();
        let rebuild = live.is_none() || events.iter().any(|e| matches!(e, Event::Resync));
        let current = if rebuild { None } else { live.take() };
        let (zone, stores, recursion) = (zone.clone(), stores.clone(), shared.recursion);
        let started = Instant::now();
        let updated = tokio::task::spawn_blocking(move || {
            let mut live = match current {
                Some(mut live) => {
                    for e in &events {
                        stores.apply(&mut live, e);
                    }
                    live
                }
                None => {
                    let mut live = Box::new(LiveZone::new(zone, recursion, serial));
                    stores.load(&mut live);
                    live
                }
            };
            let published = live.publish();
            (live, published)
        })
        .await;
        match updated {
            Ok((zone, published)) => {
                serial = zone.serial();
                if let Some(compiled) = published {
                    shared.metrics.view_build.observe(started.elapsed());
                    shared.install(compiled);
                    tracing::debug!(serial, rebuild, took = ?started.elapsed(), "DNS view published");
                }
                live = Some(zone);
                let now = jiff::Timestamp::now();
                for t in triggers {
                    if let Ok(d) = Duration::try_from(now.duration_since(t.at)) {
                        shared.metrics.programming[t.kind].observe(d);
                    }
                }
            }
            Err(e) => {
                // The zone went with the failed task: rebuild it from the
                // stores, after a pause so that a bug cannot spin.
                tracing::error!(error = %e, "updating the DNS view failed; rebuilding it");
                serial = serial.wrapping_add(1);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        changes.notify.notified().await;
    }
}

/// Forwards a subscription's notifications to the update loop, noting the
/// trigger time of changed objects that carry one. The first `Resync`
/// (the first list) is skipped: the loop starts from the synced stores.
fn pump<K: Send + Sync + 'static>(
    set: &mut JoinSet<()>,
    mut sub: svcnet_client::Subscription<K>,
    changes: Arc<Changes>,
    event: fn(ObjectKey) -> Event,
    trigger: impl Fn(&K) -> Option<Trigger> + Send + 'static,
) {
    set.spawn(async move {
        let mut first = true;
        while let Some(n) = sub.recv().await {
            match n {
                Notification::Resync if first => {
                    first = false;
                    continue;
                }
                Notification::Resync => changes.push(Event::Resync, None),
                Notification::Changed(c) => {
                    first = false;
                    let t = if c.kind == ChangeKind::Applied { trigger(&c.object) } else { None };
                    changes.push(event(c.key), t);
                }
            }
            changes.notify.notify_one();
        }
    });
}

fn trigger(slice: &DnsSlice, services: &Store<DnsService>) -> Option<Trigger> {
    let at = slice.trigger_time?;
    let ns = slice.metadata.namespace.as_deref()?;
    let svc = services.get(&ObjectKey::namespaced(ns, slice.service.as_deref()?))?;
    let kind = match (svc.is_headless(), svc.selects_pods) {
        (false, _) => 0,
        (true, true) => 1,
        (true, false) => 2,
    };
    Some(Trigger { at, kind })
}
