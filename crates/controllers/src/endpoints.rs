//! The Endpoints controller (kube-controller-manager's `endpoint`
//! controller) as pure functions: from a Service, the pods in its namespace
//! and the Endpoints object that exists now, the Endpoints object that
//! should exist.
//!
//! Start at [`reconcile_endpoints`] (what to write, if anything) or
//! [`desired_endpoints`] (the object itself). The runtime feeds them from
//! its watches, calls [`TriggerTimeTracker::compute`] once per sync for the
//! trigger-time annotation, writes what comes back, and deletes the
//! Endpoints itself when the Service is gone. The pod helpers here are
//! shared with [`crate::endpointslice`].
//!
//! Behaviour follows `pkg/controller/endpoint/endpoints_controller.go`
//! (`syncService`):
//!
//! - Services without a selector, and `ExternalName` services, are not
//!   managed: their Endpoints are left as they are (hand-written ones stay).
//! - A pod counts when the selector selects it, it is not terminal, it has
//!   an IP, and it is not terminating, unless `publishNotReadyAddresses`.
//! - Only the service's primary IP family (`spec.ipFamilies[0]`) appears.
//! - A ready pod (or any pod under `publishNotReadyAddresses`) goes to
//!   `addresses`, others to `notReadyAddresses`.
//! - For each service port the pod's port is resolved; a pod lacking a
//!   named port is left out of that service port only. Headless services
//!   without ports list addresses without ports.
//! - Subsets are repacked into the canonical layout ([`repack_subsets`]),
//!   capped at 1000 addresses with `endpoints.kubernetes.io/over-capacity:
//!   truncated`, labelled with the service's labels plus
//!   `service.kubernetes.io/headless` when headless.

mod pod;
mod repack;
mod trigger_time;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::jiff::Timestamp;

pub use self::pod::{
    HEADLESS_LABEL, IpFamily, pod_ips, pod_is_ready, pod_is_terminal, pod_is_terminating, resolve_target_port,
    service_has_cluster_ip, service_is_headless, service_is_managed, service_selects, should_pod_be_in_endpoints,
    should_set_hostname,
};
pub(crate) use self::pod::{parse_ip, service_port_protocol};
pub use self::repack::repack_subsets;
pub use self::trigger_time::TriggerTimeTracker;
pub(crate) use self::trigger_time::format_trigger_time;

/// The most addresses one Endpoints object carries (`maxCapacity`).
pub const MAX_ENDPOINTS_CAPACITY: usize = 1000;

/// Set to [`OVER_CAPACITY_TRUNCATED`] when addresses were cut to
/// [`MAX_ENDPOINTS_CAPACITY`] (`v1.EndpointsOverCapacity`).
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

/// The value of [`OVER_CAPACITY_ANNOTATION`].
pub const OVER_CAPACITY_TRUNCATED: &str = "truncated";

/// When the earliest change reflected in this object happened
/// (`v1.EndpointsLastChangeTriggerTime`); see [`TriggerTimeTracker`].
pub const LAST_CHANGE_TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The Endpoints object the controller wants for `service`, or `None` when
/// the controller does not manage the service (no selector, or
/// `ExternalName`) and must leave its Endpoints alone.
///
/// `pods` may hold any pods; those the service does not select are ignored.
/// `existing` is the current object, whose metadata (resourceVersion, UID,
/// foreign annotations) the result keeps so it can be written as an update.
/// `trigger_time` comes from [`TriggerTimeTracker::compute`]: `Some` sets
/// `endpoints.kubernetes.io/last-change-trigger-time`, `None` removes it.
/// The annotation is not part of [`endpoints_equal`], so a new trigger time
/// alone never causes a write; it rides along with real changes, as in
/// Kubernetes.
pub fn desired_endpoints(
    service: &Service,
    pods: &[&Pod],
    existing: Option<&Endpoints>,
    trigger_time: Option<Timestamp>,
) -> Option<Endpoints> {
    if !service_is_managed(service) {
        return None;
    }
    let spec = service.spec.as_ref()?;
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let service_ports = spec.ports.as_deref().unwrap_or_default();
    let headless = service_is_headless(service);
    let service_family = primary_family(service);

    let mut single_subsets = Vec::new();
    for pod in pods.iter().copied().filter(|pod| service_selects(service, pod)) {
        if !should_pod_be_in_endpoints(pod, publish_not_ready) {
            tracing::trace!(pod = ?pod.metadata.name, "pod is not included in endpoints");
            continue;
        }
        let Some(address) = endpoint_address(service, service_family, pod) else {
            // A pod without an IP of the service's family: dual-stack
            // clusters mid-upgrade, or single-stack pods behind a
            // service of the other family.
            tracing::debug!(pod = ?pod.metadata.name, "pod has no IP of the service's family");
            continue;
        };
        let ready = publish_not_ready || pod_is_ready(pod);
        let subset_for = |port: Option<EndpointPort>| {
            let addresses = Some(vec![address.clone()]);
            let (addresses, not_ready_addresses) = if ready { (addresses, None) } else { (None, addresses) };
            EndpointSubset { addresses, not_ready_addresses, ports: port.map(|p| vec![p]) }
        };
        if service_ports.is_empty() {
            // Only headless services may have no ports; their endpoints are
            // bare addresses.
            if headless {
                single_subsets.push(subset_for(None));
            }
            continue;
        }
        for service_port in service_ports {
            let Some(port) = resolve_target_port(service_port, pod) else {
                tracing::debug!(pod = ?pod.metadata.name, port = ?service_port.name, "pod lacks the named port");
                continue;
            };
            single_subsets.push(subset_for(Some(EndpointPort {
                name: service_port.name.clone().filter(|n| !n.is_empty()),
                port,
                protocol: Some(service_port_protocol(service_port).to_owned()),
                app_protocol: service_port.app_protocol.clone(),
            })));
        }
    }
    let mut subsets = repack_subsets(&single_subsets);
    let truncated = repack::truncate_subsets(&mut subsets, MAX_ENDPOINTS_CAPACITY);

    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if headless {
        labels.insert(HEADLESS_LABEL.to_owned(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }

    let mut metadata = existing.map(|e| e.metadata.clone()).unwrap_or_default();
    metadata.name = service.metadata.name.clone();
    metadata.namespace = service.metadata.namespace.clone();
    let mut annotations = metadata.annotations.take().unwrap_or_default();
    match trigger_time {
        Some(time) => annotations.insert(LAST_CHANGE_TRIGGER_TIME_ANNOTATION.to_owned(), format_trigger_time(time)),
        None => annotations.remove(LAST_CHANGE_TRIGGER_TIME_ANNOTATION),
    };
    if truncated {
        annotations.insert(OVER_CAPACITY_ANNOTATION.to_owned(), OVER_CAPACITY_TRUNCATED.to_owned());
    } else {
        annotations.remove(OVER_CAPACITY_ANNOTATION);
    }
    metadata.annotations = non_empty_map(annotations);
    metadata.labels = non_empty_map(labels);

    Some(Endpoints { metadata, subsets: repack::non_empty(subsets) })
}

/// A write the Endpoints controller asks the runtime to make.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointsWrite {
    /// No Endpoints object exists yet: create this one.
    Create(Endpoints),
    /// The existing object differs: replace it with this one (it carries
    /// the existing resourceVersion, for compare-and-swap).
    Update(Endpoints),
}

/// What to write for `service`: nothing when the service is not managed or
/// the existing Endpoints already match ([`endpoints_equal`]), otherwise a
/// create or an update of [`desired_endpoints`].
pub fn reconcile_endpoints(
    service: &Service,
    pods: &[&Pod],
    existing: Option<&Endpoints>,
    trigger_time: Option<Timestamp>,
) -> Option<EndpointsWrite> {
    let desired = desired_endpoints(service, pods, existing, trigger_time)?;
    match existing {
        // An object without a resourceVersion was never stored.
        Some(current) if current.metadata.resource_version.is_some() => {
            (!endpoints_equal(current, &desired)).then_some(EndpointsWrite::Update(desired))
        }
        _ => Some(EndpointsWrite::Create(desired)),
    }
}

/// Whether two Endpoints objects carry the same endpoints, ignoring what
/// does not affect traffic or the controller's output.
///
/// Compared: subsets (empty lists and absent ones alike; a target's
/// resourceVersion ignored, so pod updates that change nothing else cost no
/// write), labels, and the over-capacity annotation. Ignored: every other
/// piece of metadata, including the trigger-time annotation.
///
/// Kubernetes compares the labels without `service.kubernetes.io/headless`;
/// this compares them with it, so a service turning headless (or back)
/// updates the label.
pub fn endpoints_equal(a: &Endpoints, b: &Endpoints) -> bool {
    let labels = |e: &Endpoints| e.metadata.labels.clone().unwrap_or_default();
    let over_capacity =
        |e: &Endpoints| e.metadata.annotations.as_ref().and_then(|a| a.get(OVER_CAPACITY_ANNOTATION)).cloned();
    normalized_subsets(a) == normalized_subsets(b) && labels(a) == labels(b) && over_capacity(a) == over_capacity(b)
}

fn normalized_subsets(endpoints: &Endpoints) -> Vec<EndpointSubset> {
    let normalize_addresses = |list: &Option<Vec<EndpointAddress>>| {
        let addresses: Vec<EndpointAddress> = list
            .iter()
            .flatten()
            .map(|address| {
                let mut address = address.clone();
                if let Some(target) = address.target_ref.as_mut() {
                    target.resource_version = None;
                }
                address
            })
            .collect();
        repack::non_empty(addresses)
    };
    endpoints
        .subsets
        .iter()
        .flatten()
        .map(|subset| EndpointSubset {
            addresses: normalize_addresses(&subset.addresses),
            not_ready_addresses: normalize_addresses(&subset.not_ready_addresses),
            ports: subset.ports.clone().filter(|p| !p.is_empty()),
        })
        .collect()
}

/// The family whose pod IPs the Endpoints list: the service's primary
/// family, from `spec.ipFamilies`, else from the cluster IP; `None` for a
/// headless service without families (then each pod's primary IP decides).
fn primary_family(service: &Service) -> Option<IpFamily> {
    let spec = service.spec.as_ref()?;
    if let Some(first) = spec.ip_families.as_ref().and_then(|f| f.first()) {
        return IpFamily::parse(first);
    }
    if service_has_cluster_ip(service) {
        return Some(spec.cluster_ip.as_deref().and_then(IpFamily::of_ip).unwrap_or(IpFamily::V4));
    }
    None
}

/// The address of `pod` in the service's Endpoints, or `None` when the pod
/// has no IP of the wanted family.
fn endpoint_address(service: &Service, family: Option<IpFamily>, pod: &Pod) -> Option<EndpointAddress> {
    let ips = pod_ips(pod);
    let family = family.unwrap_or_else(|| ips.first().and_then(|ip| IpFamily::of_ip(ip)).unwrap_or(IpFamily::V4));
    let ip = ips.into_iter().find(|ip| IpFamily::of_ip(ip) == Some(family))?;
    Some(EndpointAddress {
        ip: ip.to_owned(),
        // Never empty in practice: a pod gets an IP only once scheduled.
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
        hostname: should_set_hostname(pod, service)
            .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
            .flatten(),
        target_ref: Some(pod_reference(pod)),
    })
}

/// The `targetRef` of an endpoint backed by `pod`.
pub(crate) fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".to_owned()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

pub(crate) fn non_empty_map(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    if map.is_empty() { None } else { Some(map) }
}
