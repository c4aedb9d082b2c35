//! Records core/v1 Events about objects, as client-go's event recorder
//! does, so `kubectl describe` shows what controllers did. Repeats of the
//! same event (object, reason and message) bump `count` and
//! `lastTimestamp` of the one already written instead of adding rows.
//!
//! As client-go's event broadcaster, a [`Recorder`] writes in the
//! background, one event at a time, from a bounded queue (1000 events;
//! when it is full, new events are dropped rather than block the caller),
//! and each event carries the time it was recorded however late it is
//! written.
//!
//! Events come after the work they are about: while any [`Hold`] of the
//! process is alive (a pod being started, a binding in flight), every
//! recorder of the process holds its queue, for at most [`HOLD`] after each
//! event was recorded. In a burst of pods the API server thus spends its
//! CPU on the writes that place and start them, and takes their Events
//! right after. The holds are process-wide: in `svcnet up` the scheduler's
//! and the agents' recorders wait for each other's work too.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::{Api, Client, PostParams};

/// Normal or Warning, as Kubernetes classifies events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Events waiting to be written, at most (client-go's `maxQueuedEvents`).
const QUEUE: usize = 1000;
/// Repeats remembered for bumping `count`, at most (then forgotten).
const SEEN: usize = 4096;
/// Longest an event waits for the process's [`Hold`]s.
pub const HOLD: Duration = Duration::from_secs(1);

/// The process's live [`Hold`]s.
fn holds() -> &'static watch::Sender<usize> {
    static HOLDS: OnceLock<watch::Sender<usize>> = OnceLock::new();
    HOLDS.get_or_init(|| watch::Sender::new(0))
}

/// Work that events should not compete with, until dropped (see the module
/// docs).
#[must_use = "events wait only while the hold is alive"]
pub struct Hold(());

impl Drop for Hold {
    fn drop(&mut self) {
        holds().send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Holds every recorder of the process until the guard is dropped, or for
/// [`HOLD`] after each event at most.
pub fn hold() -> Hold {
    holds().send_modify(|n| *n += 1);
    Hold(())
}

struct Pending {
    object: ObjectReference,
    kind: EventType,
    reason: String,
    message: String,
    /// When it was recorded: its timestamps.
    at: jiff::Timestamp,
    /// Written by then at the latest, holds or not.
    due: Instant,
}

/// Writes Events in the background; recording never blocks the caller.
/// Clones share one queue and writer.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    /// The writer's queue, started by the first event (on the runtime that
    /// records it).
    queue: std::sync::Arc<OnceLock<mpsc::Sender<Pending>>>,
    /// Events dropped because the queue was full.
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Recorder {
    pub fn new(client: Client, component: &str) -> Self {
        Recorder { client, component: component.to_string(), queue: Default::default(), dropped: Default::default() }
    }

    /// Records an event about `object` (its kind, namespace, name, uid);
    /// never waits. Dropped, with a warning, when the queue is full (as
    /// client-go drops them) or no Tokio runtime is there to write it.
    pub fn record(&self, object: ObjectReference, kind: EventType, reason: &str, message: String) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(reason, "event dropped: recorded outside a Tokio runtime");
            return;
        };
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            runtime.spawn(writer(self.client.clone(), self.component.clone(), rx));
            tx
        });
        let pending = Pending {
            object,
            kind,
            reason: reason.to_string(),
            message,
            at: jiff::Timestamp::now(),
            due: Instant::now() + HOLD,
        };
        match queue.try_send(pending) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                // One warning per QUEUE drops, not one per event.
                let dropped = self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if dropped.is_multiple_of(QUEUE as u64) {
                    tracing::warn!(component = %self.component, reason, dropped = dropped + 1, "events dropped: {QUEUE} are waiting to be written");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!(reason, "event dropped: its writer has stopped");
            }
        }
    }
}

/// Writes the queue's events in order; ends when every recorder is gone.
async fn writer(client: Client, component: String, mut rx: mpsc::Receiver<Pending>) {
    // (object uid, reason, message) → name of the event to bump.
    let mut seen: HashMap<(String, String, String), String> = HashMap::new();
    let mut held = holds().subscribe();
    while let Some(p) = rx.recv().await {
        wait_turn(&mut held, p.due).await;
        let reason = p.reason.clone();
        if let Err(e) = write(&client, &component, &mut seen, p).await {
            tracing::debug!(reason, error = %e, "recording an event failed");
        }
    }
}

/// Waits until no hold is alive, or until `due`.
async fn wait_turn(held: &mut watch::Receiver<usize>, due: Instant) {
    // The sender is a static: `wait_for` fails only if it were dropped.
    let _ = tokio::time::timeout_at(due, held.wait_for(|n| *n == 0)).await;
}

async fn write(
    client: &Client,
    component: &str,
    seen: &mut HashMap<(String, String, String), String>,
    p: Pending,
) -> crate::Result<()> {
    let namespace = p.object.namespace.clone().unwrap_or_else(|| "default".into());
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let now = Time(p.at);
    let key = (p.object.uid.clone().unwrap_or_default(), p.reason.clone(), p.message.clone());
    if let Some(name) = seen.get(&key) {
        if let Ok(mut event) = api.get(name).await {
            event.count = Some(event.count.unwrap_or(1) + 1);
            event.last_timestamp = Some(now.clone());
            if api.replace(name, &PostParams::default(), &event).await.is_ok() {
                return Ok(());
            }
        }
    }
    let name = format!("{}.{:x}", p.object.name.as_deref().unwrap_or(""), jiff::Timestamp::now().as_nanosecond());
    let event = Event {
        metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(namespace), ..ObjectMeta::default() },
        involved_object: p.object,
        reason: Some(p.reason),
        message: Some(p.message),
        type_: Some(match p.kind {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        source: Some(EventSource { component: Some(component.to_string()), host: None }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        reporting_component: Some(component.to_string()),
        ..Event::default()
    };
    api.create(&PostParams::default(), &event).await?;
    if seen.len() >= SEEN {
        seen.clear();
    }
    seen.insert(key, name);
    Ok(())
}

/// A reference to a namespaced object for an event.
pub fn reference(kind: &str, api_version: &str, meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        kind: Some(kind.to_string()),
        api_version: Some(api_version.to_string()),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_wait_for_holds_but_never_longer_than_due() {
        let mut rx = holds().subscribe();
        let t0 = Instant::now();
        wait_turn(&mut rx, t0 + Duration::from_secs(5)).await;
        assert!(t0.elapsed() < Duration::from_secs(4), "nothing held: no wait");

        let guard = hold();
        let t1 = Instant::now();
        wait_turn(&mut rx, t1 + Duration::from_millis(200)).await;
        assert!(t1.elapsed() >= Duration::from_millis(200), "a hold alive: held until due");

        let t2 = Instant::now();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(guard);
        });
        wait_turn(&mut rx, t2 + Duration::from_secs(5)).await;
        let waited = t2.elapsed();
        assert!(
            waited >= Duration::from_millis(30) && waited < Duration::from_secs(4),
            "released with the hold: {waited:?}"
        );
        release.await.expect("joins");
        assert_eq!(*rx.borrow(), 0);
    }
}
