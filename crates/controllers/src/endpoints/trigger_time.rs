//! The value of `endpoints.kubernetes.io/last-change-trigger-time`
//! (`TriggerTimeTracker` in `k8s.io/endpointslice/util`).
//!
//! The annotation tells consumers (kube-proxy's network programming latency
//! metric) when the earliest change that this write reflects happened: the
//! Service's creation, or a selected pod's `Ready` condition transition.
//! Computing it needs memory of the previous sync, so this is the one
//! stateful piece of the controllers' logic; it is still free of I/O, and
//! the runtime owns one tracker per controller.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;

use super::pod::service_selects;

/// Remembers, per Service, the trigger times seen at its previous sync.
#[derive(Debug, Default)]
pub struct TriggerTimeTracker {
    services: HashMap<(String, String), ServiceState>,
}

#[derive(Debug, Default)]
struct ServiceState {
    service_trigger: Option<Timestamp>,
    pod_triggers: HashMap<String, Timestamp>,
}

impl TriggerTimeTracker {
    /// An empty tracker: every service is new to it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records this sync's state for `service` and returns the trigger time
    /// to write, `None` meaning "remove the annotation".
    ///
    /// A service seen for the first time yields its creation timestamp.
    /// Afterwards the result is the earliest trigger time that moved forward
    /// since the previous call: a selected pod's `Ready` condition
    /// `lastTransitionTime`, or the service's creation (which only moves
    /// when the service is recreated). Changes without a trigger time (a
    /// pod deleted) yield `None`. Like Kubernetes' tracker, it can be wrong
    /// when one object changes several times between two syncs.
    pub fn compute(&mut self, service: &Service, pods: &[&Pod]) -> Option<Timestamp> {
        let key =
            (service.metadata.namespace.clone().unwrap_or_default(), service.metadata.name.clone().unwrap_or_default());
        let previous = self.services.remove(&key);
        let was_known = previous.is_some();
        let previous = previous.unwrap_or_default();

        let mut earliest_change: Option<Timestamp> = None;
        let mut pod_triggers = HashMap::new();
        for pod in pods.iter().copied().filter(|pod| service_selects(service, pod)) {
            let Some(trigger) = pod_trigger_time(pod) else { continue };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if previous.pod_triggers.get(&name).is_none_or(|before| trigger > *before) {
                earliest_change = Some(earliest_change.map_or(trigger, |e| e.min(trigger)));
            }
            pod_triggers.insert(name, trigger);
        }
        let service_trigger = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(trigger) = service_trigger {
            if previous.service_trigger.is_none_or(|before| trigger > before) {
                earliest_change = Some(earliest_change.map_or(trigger, |e| e.min(trigger)));
            }
        }

        self.services.insert(key, ServiceState { service_trigger, pod_triggers });
        if was_known { earliest_change } else { service_trigger }
    }

    /// Forgets a deleted service.
    pub fn delete_service(&mut self, namespace: &str, name: &str) {
        self.services.remove(&(namespace.to_owned(), name.to_owned()));
    }
}

/// A pod's trigger time: when its `Ready` condition last changed.
fn pod_trigger_time(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// Formats a trigger time as the annotation value: RFC 3339 in UTC with
/// only the fractional digits needed, like Go's `time.RFC3339Nano`.
pub(crate) fn format_trigger_time(time: Timestamp) -> String {
    time.to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{PodCondition, PodStatus, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamps are valid")
    }

    fn service(created: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(ts(created))),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(name: &str, ready_at: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(ts(ready_at))),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_service_reports_its_creation_time() {
        let mut tracker = TriggerTimeTracker::new();
        let svc = service("2024-01-01T00:00:00Z");
        let a = pod("a", "2024-01-01T00:00:05Z");
        assert_eq!(tracker.compute(&svc, &[&a]), Some(ts("2024-01-01T00:00:00Z")));
    }

    #[test]
    fn a_later_sync_reports_the_earliest_changed_pod_transition() {
        let mut tracker = TriggerTimeTracker::new();
        let svc = service("2024-01-01T00:00:00Z");
        let a = pod("a", "2024-01-01T00:00:05Z");
        let b = pod("b", "2024-01-01T00:00:06Z");
        tracker.compute(&svc, &[&a, &b]);
        assert_eq!(tracker.compute(&svc, &[&a, &b]), None, "nothing changed");
        let a2 = pod("a", "2024-01-01T00:01:00Z");
        let b2 = pod("b", "2024-01-01T00:00:50Z");
        assert_eq!(tracker.compute(&svc, &[&a2, &b2]), Some(ts("2024-01-01T00:00:50Z")));
    }

    #[test]
    fn a_deleted_service_starts_over() {
        let mut tracker = TriggerTimeTracker::new();
        let svc = service("2024-01-01T00:00:00Z");
        tracker.compute(&svc, &[]);
        tracker.delete_service("default", "web");
        assert_eq!(tracker.compute(&svc, &[]), Some(ts("2024-01-01T00:00:00Z")));
    }

    #[test]
    fn the_annotation_uses_rfc3339_in_utc() {
        assert_eq!(format_trigger_time(ts("2024-01-01T00:00:00Z")), "2024-01-01T00:00:00Z");
        assert_eq!(format_trigger_time(ts("2024-01-01T00:00:00.5Z")), "2024-01-01T00:00:00.5Z");
    }
}
