//! The kubelet's Events about pods, written in the background one at a
//! time, as client-go's event broadcaster writes them: a bounded queue
//! (1000 events; when full, new events are dropped rather than block the
//! pod) drained by a single writer. Pod starts and status reports thus
//! never wait behind Events: in a burst of pods, the status writes that
//! make pods Ready go first, and the Events follow at the API server's
//! pace. Repeats of the same event (object, reason and message) bump
//! `count` and `lastTimestamp` of the one already written, as svcnet's
//! other recorders do.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use svcnet_client::events::EventType;
use svcnet_client::{Api, Client, PostParams};
use tokio::sync::mpsc;

/// Events waiting to be written, at most.
const QUEUE: usize = 1000;
/// Repeats remembered for bumping `count`, at most (then forgotten).
const SEEN: usize = 4096;

struct Pending {
    object: ObjectReference,
    kind: EventType,
    reason: String,
    message: String,
}

/// Queues Events for the writer task.
#[derive(Clone)]
pub(crate) struct EventQueue {
    tx: mpsc::Sender<Pending>,
}

impl EventQueue {
    /// Starts the writer (on the current Tokio runtime); it ends when the
    /// last queue handle is dropped.
    pub fn start(client: Client, component: &str) -> EventQueue {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(client, component.to_string(), rx));
        EventQueue { tx }
    }

    /// Records an event about `object`; never waits.
    pub fn record(&self, object: ObjectReference, kind: EventType, reason: &str, message: String) {
        let pending = Pending { object, kind, reason: reason.to_string(), message };
        if let Err(e) = self.tx.try_send(pending) {
            tracing::debug!(reason, error = %e, "event dropped: the queue is full");
        }
    }
}

async fn writer(client: Client, component: String, mut rx: mpsc::Receiver<Pending>) {
    // (object uid, reason, message) → name of the event to bump.
    let mut seen: HashMap<(String, String, String), String> = HashMap::new();
    while let Some(p) = rx.recv().await {
        if let Err(e) = write(&client, &component, &mut seen, p).await {
            tracing::debug!(error = %e, "recording an event failed");
        }
    }
}

async fn write(
    client: &Client,
    component: &str,
    seen: &mut HashMap<(String, String, String), String>,
    p: Pending,
) -> svcnet_client::Result<()> {
    let namespace = p.object.namespace.clone().unwrap_or_else(|| "default".into());
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let now = Time(jiff::Timestamp::now());
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
