//! Keeping the zone fresh: one watcher per kind (Services,
//! EndpointSlices, Namespaces, and Pods with `pods verified`) lists and
//! watches the API server, decodes each object straight into the compact
//! form the zone keeps (`objects.rs`), and hands it over. Unlike the
//! client's reflector, a watcher keeps no store: the [`LiveZone`] holds
//! the one copy of every object, so the server holds each object once,
//! without its `ObjectMeta`.
//!
//! One loop applies the changes to the zone and publishes the result. A
//! change costs the records of the object that changed (`zone.rs`);
//! changes that arrive while one is applied are applied together next, so
//! a burst costs a few publishes, not one per object. A list (the first,
//! or again after the watch's resourceVersion expired) is applied as its
//! objects and then the deletion of every object of that kind the list
//! lacks. Until every kind has been listed once the server answers
//! SERVFAIL for the zone (never a wrong NXDOMAIN).

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use svcnet_client::{Api, Backoff, Client, Error, ListParams, Object, WatchEvent, WatchParams};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::DnsConfig;
use crate::objects::{DnsNamespace, DnsPod, DnsService, DnsSlice, Watched};
use crate::server::{DnsServer, ServeError, Shared};
use crate::view::{PodsMode, ZoneConfig, ZoneView};
use crate::zone::{Kind, LiveZone};

/// How long the server keeps a watch open before we resume it.
const WATCH_TIMEOUT_SECS: u32 = 290;
/// Items per list page.
const PAGE: u32 = 500;

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

/// One object's new state (`None`: deleted).
#[derive(Debug)]
enum State {
    Service(Option<DnsService>),
    Slice(Option<DnsSlice>),
    Pod(Option<DnsPod>),
    Namespace(bool),
}

/// What a watcher reports.
#[derive(Debug)]
enum Event {
    /// An object's current state.
    Set { ns: String, name: String, state: State },
    /// A complete list of `kind` was just reported object by object:
    /// anything else of that kind is gone.
    Listed { kind: Kind, keys: HashSet<(String, String)> },
}

#[derive(Default)]
struct Changes {
    notify: Notify,
    pending: Mutex<Vec<Event>>,
}

impl Changes {
    fn push(&self, events: impl IntoIterator<Item = Event>) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).extend(events);
        self.notify.notify_one();
    }

    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Applies one event; a slice carrying a trigger time is returned for the
/// programming-latency histogram, with the kind of its Service.
fn apply(zone: &mut LiveZone, event: Event, synced: &mut [bool; 4]) -> Option<(jiff::Timestamp, usize)> {
    match event {
        Event::Set { ns, name, state } => match state {
            State::Service(s) => zone.set_service(&ns, &name, s),
            State::Namespace(exists) => zone.set_namespace(&name, exists),
            State::Pod(p) => zone.set_pod(&ns, &name, p),
            State::Slice(s) => {
                let trigger = s.as_ref().and_then(|s| Some((s.trigger_time?, s.service.clone()?)));
                zone.set_slice(&ns, &name, s);
                let (at, svc) = trigger?;
                let svc = zone.service(&ns, &svc)?;
                let kind = match (svc.is_headless(), svc.selects_pods) {
                    (false, _) => 0,
                    (true, true) => 1,
                    (true, false) => 2,
                };
                return Some((at, kind));
            }
        },
        Event::Listed { kind, keys } => {
            for (ns, name) in zone.keys(kind) {
                if keys.contains(&(ns.clone(), name.clone())) {
                    continue;
                }
                match kind {
                    Kind::Service => zone.set_service(&ns, &name, None),
                    Kind::Slice => zone.set_slice(&ns, &name, None),
                    Kind::Pod => zone.set_pod(&ns, &name, None),
                    Kind::Namespace => zone.set_namespace(&name, false),
                }
            }
            synced[kind as usize] = true;
        }
    }
    None
}

/// Starts a watcher per kind the zone is built from.
fn spawn_watchers(client: &Client, zone: &ZoneConfig, changes: &Arc<Changes>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    set.spawn(watcher::<DnsService>(client.clone(), changes.clone(), Kind::Service, State::Service));
    set.spawn(watcher::<DnsSlice>(client.clone(), changes.clone(), Kind::Slice, State::Slice));
    set.spawn(watcher::<DnsNamespace>(client.clone(), changes.clone(), Kind::Namespace, |o| {
        State::Namespace(o.is_some())
    }));
    // Only `pods verified` needs pods: watching every pod is the costliest
    // watch in a large cluster.
    if zone.pods == PodsMode::Verified {
        set.spawn(watcher::<DnsPod>(client.clone(), changes.clone(), Kind::Pod, State::Pod));
    }
    set
}

async fn keep_fresh(client: Client, zone: ZoneConfig, shared: Arc<Shared>) {
    let changes = Arc::new(Changes::default());
    // Dropping the set (when this task is aborted) stops the watchers.
    let mut watchers = spawn_watchers(&client, &zone, &changes);
    let unsynced = || [false, false, zone.pods != PodsMode::Verified, false];
    let mut synced = unsynced();
    let mut serial = jiff::Timestamp::now().as_second() as u32;
    let mut live = Some(Box::new(LiveZone::new(zone.clone(), shared.recursion, serial)));
    let updater = Updater::start();
    loop {
        let events = changes.take();
        let Some(mut current) = live.take() else { break };
        let started = Instant::now();
        let mut flags = synced;
        let updated = updater
            .run(move || {
                let triggers: Vec<_> = events.into_iter().filter_map(|e| apply(&mut current, e, &mut flags)).collect();
                // Nothing is published until every kind has been listed.
                let published = if flags.iter().all(|s| *s) { current.publish() } else { None };
                (current, published, triggers, flags)
            })
            .await;
        match updated {
            Ok((zone, published, triggers, flags)) => {
                synced = flags;
                serial = zone.serial();
                if let Some(compiled) = published {
                    shared.metrics.view_build.observe(started.elapsed());
                    shared.install(compiled);
                    tracing::debug!(serial, took = ?started.elapsed(), "DNS view published");
                }
                live = Some(zone);
                let now = jiff::Timestamp::now();
                for (at, kind) in triggers {
                    if let Ok(d) = Duration::try_from(now.duration_since(at)) {
                        shared.metrics.programming[kind].observe(d);
                    }
                }
            }
            Err(e) => {
                // The zone went with the failed task: start again from new
                // lists, after a pause so that a bug cannot spin. The view
                // served meanwhile stays the last good one.
                tracing::error!(error = %e, "updating the DNS view failed; listing everything again");
                watchers.abort_all();
                tokio::time::sleep(Duration::from_secs(1)).await;
                serial = serial.wrapping_add(1);
                let _ = changes.take();
                synced = unsynced();
                live = Some(Box::new(LiveZone::new(zone.clone(), shared.recursion, serial)));
                watchers = spawn_watchers(&client, &zone, &changes);
                continue;
            }
        }
        changes.notify.notified().await;
    }
}

/// One long-lived thread that applies changes to the zone. Every update
/// runs on it, rather than on whichever of tokio's blocking-pool threads is
/// free: with glibc, each thread that allocates may take a malloc arena of
/// its own, and the zone's memory spread over several arenas keeps more
/// free space resident than the same memory in one.
struct Updater {
    jobs: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

impl Updater {
    fn start() -> Updater {
        let (jobs, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        // The thread ends when the `Updater` (and with it the sender) is
        // dropped.
        let spawned = std::thread::Builder::new().name("dns-zone".into()).spawn(move || {
            while let Ok(job) = rx.recv() {
                job();
            }
        });
        if let Err(e) = spawned {
            // `run` then reports every update as failed.
            tracing::error!(error = %e, "could not start the DNS zone thread");
        }
        Updater { jobs }
    }

    /// Runs `f` on the zone thread. A panic in `f` (or a thread that is
    /// gone) is an error, as a failed `spawn_blocking` task would be.
    async fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Result<R, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Box::new(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(result.map_err(|_| "the zone update panicked".to_string()));
        });
        self.jobs.send(job).map_err(|_| "the DNS zone thread is gone".to_string())?;
        rx.await.map_err(|_| "the DNS zone thread is gone".to_string())?
    }
}

/// The namespace and name of an object.
fn key_of<T>(o: &Watched<T>) -> Option<(String, String)> {
    let name = o.metadata.name.clone().filter(|n| !n.is_empty())?;
    Some((o.metadata.namespace.clone().unwrap_or_default(), name))
}

/// Lists and watches one kind forever, reporting every object's state to
/// `changes`. A watch that ends is resumed from the last resourceVersion
/// seen; one whose resourceVersion expired (410), or that the server
/// refuses, starts over from a list.
async fn watcher<T>(client: Client, changes: Arc<Changes>, kind: Kind, state: fn(Option<T>) -> State)
where
    Watched<T>: Object,
{
    let api = Api::<Watched<T>>::all(client);
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    'list: loop {
        let list = match api.list_all(&ListParams { limit: Some(PAGE), ..ListParams::default() }).await {
            Ok(list) => list,
            Err(e) => {
                let delay = backoff.delay();
                tracing::warn!(?kind, error = %e, ?delay, "listing failed; retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        backoff.reset();
        let mut rv = list.resource_version().to_string();
        let mut keys = HashSet::with_capacity(list.items.len());
        let mut events = Vec::with_capacity(list.items.len() + 1);
        for item in list.items {
            let Some((ns, name)) = key_of(&item) else { continue };
            keys.insert((ns.clone(), name.clone()));
            events.push(Event::Set { ns, name, state: state(Some(item.object)) });
        }
        events.push(Event::Listed { kind, keys });
        changes.push(events);
        tracing::debug!(?kind, resource_version = %rv, "listed");
        loop {
            let params =
                WatchParams { timeout_seconds: Some(WATCH_TIMEOUT_SECS), bookmarks: true, ..WatchParams::default() };
            let mut stream = match api.watch(&params, &rv).await {
                Ok(s) => s,
                Err(e) => match after_error(&e, kind, &mut backoff).await {
                    Next::List => continue 'list,
                    Next::Watch => continue,
                },
            };
            let mut received = false;
            while let Some(item) = stream.next().await {
                let event = match item {
                    Ok(event) => event,
                    Err(e) => match after_error(&e, kind, &mut backoff).await {
                        Next::List => continue 'list,
                        Next::Watch => break,
                    },
                };
                received = true;
                backoff.reset();
                if let Some(v) = event.resource_version().filter(|v| !v.is_empty()) {
                    rv = v.to_string();
                }
                let (object, present) = match event {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => (o, true),
                    WatchEvent::Deleted(o) => (o, false),
                    WatchEvent::Bookmark { .. } => continue,
                    WatchEvent::Error(e) => {
                        let delay = backoff.delay();
                        tracing::warn!(?kind, error = %e, ?delay, "watch ended with an error; listing again");
                        tokio::time::sleep(delay).await;
                        continue 'list;
                    }
                };
                let Some((ns, name)) = key_of(&object) else { continue };
                let state = state(present.then_some(object.object));
                changes.push([Event::Set { ns, name, state }]);
            }
            // A watch the server ended before saying anything is resumed
            // after a pause, so that a server closing watches at once
            // cannot make us spin.
            if !received {
                tokio::time::sleep(backoff.delay()).await;
            }
        }
    }
}

enum Next {
    List,
    Watch,
}

async fn after_error(e: &Error, kind: Kind, backoff: &mut Backoff) -> Next {
    if e.is_gone() {
        tracing::info!(?kind, "resourceVersion expired; listing again");
        return Next::List;
    }
    let delay = backoff.delay();
    // The server refused the watch itself (bad request, forbidden, ...):
    // start over from a list. Transport trouble or overload: resume.
    let refused = e.code().is_some_and(|c| (400..500).contains(&c) && c != 429);
    tracing::warn!(?kind, error = %e, ?delay, refused, "watch failed; retrying");
    tokio::time::sleep(delay).await;
    if refused { Next::List } else { Next::Watch }
}
