//! Records core/v1 Events about objects, as client-go's event recorder
//! does, so `kubectl describe` shows what controllers did. Repeats of the
//! same event within a short window bump `count` instead of adding rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{Api, Client, PostParams};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

/// Normal or Warning, as Kubernetes classifies events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Writes Events in the background; recording never blocks a controller.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    /// (object uid, reason, message) → name of the event to bump.
    seen: Arc<Mutex<HashMap<(String, String, String), String>>>,
}

impl Recorder {
    pub fn new(client: Client, component: &str) -> Self {
        Recorder { client, component: component.to_string(), seen: Arc::default() }
    }

    /// Records an event about `object` (its kind, namespace, name, uid).
    pub fn record(&self, object: ObjectReference, kind: EventType, reason: &str, message: String) {
        let this = self.clone();
        let reason = reason.to_string();
        tokio::spawn(async move {
            if let Err(e) = this.write(object, kind, &reason, message).await {
                tracing::debug!(error = %e, reason, "recording an event failed");
            }
        });
    }

    async fn write(
        &self,
        object: ObjectReference,
        kind: EventType,
        reason: &str,
        message: String,
    ) -> crate::Result<()> {
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = Time(jiff::Timestamp::now());
        let key = (object.uid.clone().unwrap_or_default(), reason.to_string(), message.clone());
        let existing = self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        if let Some(name) = existing {
            if let Ok(mut event) = api.get(&name).await {
                event.count = Some(event.count.unwrap_or(1) + 1);
                event.last_timestamp = Some(now.clone());
                if api.replace(&name, &PostParams::default(), &event).await.is_ok() {
                    return Ok(());
                }
            }
        }
        let object_name = object.name.clone().unwrap_or_default();
        let name = format!("{object_name}.{:x}", jiff::Timestamp::now().as_nanosecond());
        let event = Event {
            metadata: ObjectMeta { name: Some(name.clone()), namespace: Some(namespace), ..ObjectMeta::default() },
            involved_object: object,
            reason: Some(reason.to_string()),
            message: Some(message),
            type_: Some(match kind {
                EventType::Normal => "Normal".into(),
                EventType::Warning => "Warning".into(),
            }),
            source: Some(EventSource { component: Some(self.component.clone()), host: None }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some(self.component.clone()),
            ..Event::default()
        };
        api.create(&PostParams::default(), &event).await?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 4096 {
            seen.clear();
        }
        seen.insert(key, name);
        Ok(())
    }
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
