//! The kubelet's Events about pods, written in the background one at a
//! time, as client-go's event broadcaster writes them: a bounded queue
//! (1000 events; when full, new events are dropped rather than block the
//! pod) drained by a single writer. Pod starts and status reports thus
//! never wait behind Events: in a burst of pods, the status writes that
//! make pods Ready go first, and the Events follow at the API server's
//! pace. Repeats of the same event (object, reason and message) bump
//! `count` and `lastTimestamp` of the one already written, as svcnet's
//! other recorders do.
//!
//! Pods being started come first: while any new pod's first status report
//! is still to be written ([`EventQueue::starting`]), the writer holds the
//! queue, for at most [`HOLD`] after each event was recorded, so that in a
//! burst the API server spends its CPU on the writes that make pods Ready
//! and takes the Events right after. Each event carries the time it was
//! recorded, as the kubelet's do, however late it is written.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use svcnet_client::events::EventType;
use svcnet_client::{Api, Client, PostParams};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Events waiting to be written, at most.
const QUEUE: usize = 1000;
/// Repeats remembered for bumping `count`, at most (then forgotten).
const SEEN: usize = 4096;
/// Longest an event waits for starting pods' status reports.
pub(crate) const HOLD: Duration = Duration::from_secs(1);

struct Pending {
    object: ObjectReference,
    kind: EventType,
    reason: String,
    message: String,
    /// When it was recorded: its timestamps.
    at: jiff::Timestamp,
    /// Written by then at the latest, starting pods or not.
    due: Instant,
}

/// Queues Events for the writer task.
#[derive(Clone)]
pub(crate) struct EventQueue {
    tx: mpsc::Sender<Pending>,
    /// New pods whose first status report is not written yet.
    starting: watch::Sender<usize>,
}

/// A new pod whose first status report is still to be written, until
/// dropped: Events wait for it (see the module docs).
pub(crate) struct Starting(watch::Sender<usize>);

impl Drop for Starting {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl EventQueue {
    /// Starts the writer (on the current Tokio runtime); it ends when the
    /// last queue handle is dropped.
    pub fn start(client: Client, component: &str) -> EventQueue {
        let (tx, rx) = mpsc::channel(QUEUE);
        let starting = watch::Sender::new(0);
        tokio::spawn(writer(client, component.to_string(), rx, starting.subscribe()));
        EventQueue { tx, starting }
    }

    /// Records an event about `object`; never waits.
    pub fn record(&self, object: ObjectReference, kind: EventType, reason: &str, message: String) {
        let pending = Pending {
            object,
            kind,
            reason: reason.to_string(),
            message,
            at: jiff::Timestamp::now(),
            due: Instant::now() + HOLD,
        };
        if let Err(e) = self.tx.try_send(pending) {
            tracing::debug!(reason, error = %e, "event dropped: the queue is full");
        }
    }

    /// Marks a new pod as starting until the returned guard is dropped
    /// (once its first status report is written, or it ends).
    pub fn starting(&self) -> Starting {
        self.starting.send_modify(|n| *n += 1);
        Starting(self.starting.clone())
    }
}

async fn writer(
    client: Client,
    component: String,
    mut rx: mpsc::Receiver<Pending>,
    mut starting: watch::Receiver<usize>,
) {
    // (object uid, reason, message) → name of the event to bump.
    let mut seen: HashMap<(String, String, String), String> = HashMap::new();
    while let Some(p) = rx.recv().await {
        wait_turn(&mut starting, p.due).await;
        if let Err(e) = write(&client, &component, &mut seen, p).await {
            tracing::debug!(error = %e, "recording an event failed");
        }
    }
}

/// Waits until no pod is starting, or until `due`.
async fn wait_turn(starting: &mut watch::Receiver<usize>, due: Instant) {
    // An error (every sender gone) means no pod can be starting either.
    let _ = tokio::time::timeout_at(due, starting.wait_for(|n| *n == 0)).await;
}

async fn write(
    client: &Client,
    component: &str,
    seen: &mut HashMap<(String, String, String), String>,
    p: Pending,
) -> svcnet_client::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> (EventQueue, watch::Receiver<usize>) {
        let (tx, _rx) = mpsc::channel(1);
        let starting = watch::Sender::new(0);
        let rx = starting.subscribe();
        (EventQueue { tx, starting }, rx)
    }

    #[tokio::test]
    async fn events_wait_for_starting_pods_but_never_longer_than_due() {
        let (queue, mut rx) = queue();
        let t0 = Instant::now();
        wait_turn(&mut rx, t0 + Duration::from_secs(5)).await;
        assert!(t0.elapsed() < Duration::from_secs(4), "nothing starting: no wait");

        let guard = queue.starting();
        let t1 = Instant::now();
        wait_turn(&mut rx, t1 + Duration::from_millis(200)).await;
        assert!(t1.elapsed() >= Duration::from_millis(200), "a pod still starting: held until due");

        let t2 = Instant::now();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(guard);
        });
        wait_turn(&mut rx, t2 + Duration::from_secs(5)).await;
        let waited = t2.elapsed();
        assert!(
            waited >= Duration::from_millis(30) && waited < Duration::from_secs(4),
            "released by the report: {waited:?}"
        );
        release.await.expect("joins");
        assert_eq!(*rx.borrow(), 0);
    }
}
