//! EndpointSlices mirroring hand-written Endpoints: the EndpointSlice
//! mirroring controller (`pkg/controller/endpointslicemirroring`).
//!
//! Consumers that read only EndpointSlices (kube-proxy, DNS) still see
//! Services whose endpoints a user or another controller maintains as an
//! Endpoints object. Each distinct (address family, port set) of the
//! Endpoints becomes one slice, owned by the Endpoints object so it goes
//! when they go; at most `max_per_subset` addresses of each subset are
//! mirrored, ready ones first.

use crate::endpointslice::is_managed_slice;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{
    EndpointKey, MANAGED_BY_LABEL, MIRRORING_CONTROLLER_NAME, PortsKey, SERVICE_NAME_LABEL, SKIP_MIRROR_LABEL,
    SliceChanges, conditions, endpoint_key, endpoints_equal_beyond_key, fill, labels_of, ports_key,
    recycle_deleted_slices, slice_name,
};
use crate::endpoints::{IpFamily, LAST_CHANGE_TRIGGER_TIME_ANNOTATION, non_empty_map, parse_ip};

/// Set by leader election on the Endpoints objects it (formerly) used as
/// locks; those are not service endpoints.
const LEADER_ELECTION_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// kubectl's record of the applied manifest: not copied to slices.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The slice changes that make the mirrored EndpointSlices of `endpoints`
/// match it.
///
/// `service` is the Service of the same name, `None` if there is none.
/// Endpoints are mirrored only when that Service exists and has no
/// selector, and the Endpoints neither carry the label
/// `endpointslice.kubernetes.io/skip-mirror: "true"` nor a leader-election
/// annotation; otherwise every mirrored slice is deleted. (When the
/// Endpoints object itself is deleted, the runtime deletes the slices, or
/// leaves them to the garbage collector through their owner reference.)
///
/// `existing` may hold any slices; only those labelled for this name and
/// managed by [`MIRRORING_CONTROLLER_NAME`] are considered. Mirrored slices
/// carry the Endpoints' labels and annotations (less the trigger time and
/// kubectl's last-applied configuration), `kubernetes.io/service-name`,
/// `endpointslice.kubernetes.io/managed-by:
/// endpointslicemirroring-controller.k8s.io`, and an owner reference to the
/// Endpoints (controller, blocking deletion). Endpoints get `ready` from the
/// list they came from and no `serving`/`terminating`; addresses that are
/// not IPs are skipped. `max_per_subset` (kube's default is
/// [`DEFAULT_MIRRORING_MAX_ENDPOINTS_PER_SUBSET`](super::DEFAULT_MIRRORING_MAX_ENDPOINTS_PER_SUBSET))
/// caps both the addresses taken from one subset and one slice; 0 is
/// taken as 1.
pub fn mirror_endpoints(
    endpoints: &Endpoints,
    service: Option<&Service>,
    existing: &[&EndpointSlice],
    max_per_subset: usize,
) -> SliceChanges {
    let name = endpoints.metadata.name.as_deref().unwrap_or_default();
    let mut ours: Vec<&EndpointSlice> = existing
        .iter()
        .copied()
        .filter(|slice| {
            is_managed_slice(slice, MIRRORING_CONTROLLER_NAME, name, endpoints.metadata.namespace.as_deref())
        })
        .collect();
    ours.sort_by(|a, b| slice_name(a).cmp(slice_name(b)));

    let mut changes = SliceChanges::default();
    if !should_mirror(endpoints, service) {
        changes.delete = ours.into_iter().cloned().collect();
        return changes;
    }
    let max = max_per_subset.max(1);

    let mut desired: BTreeMap<(IpFamily, PortsKey), (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)> =
        BTreeMap::new();
    for subset in endpoints.subsets.iter().flatten() {
        let ports = mirrored_ports(subset.ports.as_deref().unwrap_or_default());
        let key = ports_key(Some(&ports));
        // Both families get a (possibly empty) entry, so a family whose
        // addresses all went away has its slices deleted.
        for family in [IpFamily::V4, IpFamily::V6] {
            desired.entry((family, key.clone())).or_insert_with(|| (ports.clone(), BTreeMap::new()));
        }
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset.not_ready_addresses.iter().flatten().map(|a| (a, false));
        let mut taken = 0;
        for (address, ready) in ready.chain(not_ready) {
            if taken >= max {
                tracing::warn!(endpoints = name, max, "addresses beyond the per-subset maximum are not mirrored");
                break;
            }
            let Some((family, endpoint)) = address_to_endpoint(address, ready) else {
                tracing::warn!(endpoints = name, ip = address.ip, "address is not an IP and is not mirrored");
                continue;
            };
            if let Some((_, set)) = desired.get_mut(&(family, key.clone())) {
                set.insert(endpoint_key(&endpoint), endpoint);
            }
            taken += 1;
        }
    }

    let mut existing_by_key: BTreeMap<(IpFamily, PortsKey), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in ours {
        match IpFamily::parse(&slice.address_type) {
            Some(family) => existing_by_key.entry((family, ports_key(slice.ports.as_deref()))).or_default().push(slice),
            None => changes.delete.push(slice.clone()),
        }
    }

    for (key, (ports, wanted)) in &desired {
        let mut wanted = wanted.clone();
        let current = existing_by_key.get(key).map(Vec::as_slice).unwrap_or_default();
        // More than one subset may share a port set; a slice holds at most
        // `max`, and only what it holds counts when comparing.
        while wanted.len() > max {
            wanted.pop_last();
        }
        reconcile_key(endpoints, current, wanted, ports, key.0, max, &mut changes);
    }
    for (key, slices) in &existing_by_key {
        if !desired.contains_key(key) {
            changes.delete.extend(slices.iter().map(|s| (*s).clone()));
        }
    }

    recycle_deleted_slices(&mut changes.create, &mut changes.update, &mut changes.delete, |old, new| {
        old.address_type == new.address_type
    });
    if endpoints.metadata.deletion_timestamp.is_some() {
        changes.create.clear();
    }
    changes
}

/// Whether the Endpoints should have mirrored slices (`shouldMirror` plus
/// the Service checks of `syncEndpoints`).
fn should_mirror(endpoints: &Endpoints, service: Option<&Service>) -> bool {
    let labels = endpoints.metadata.labels.as_ref();
    let skip = labels.and_then(|l| l.get(SKIP_MIRROR_LABEL)).is_some_and(|v| v == "true");
    let leader_lock =
        endpoints.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(LEADER_ELECTION_ANNOTATION));
    let selector_less = service.is_some_and(|s| s.spec.as_ref().is_none_or(|spec| spec.selector.is_none()));
    !skip && !leader_lock && selector_less
}

/// One (family, port set) of the Endpoints: a single slice, the first
/// existing one by name, the others deleted (`reconcileByPortMapping`).
fn reconcile_key(
    endpoints: &Endpoints,
    existing: &[&EndpointSlice],
    mut desired: BTreeMap<EndpointKey, Endpoint>,
    ports: &[EndpointPort],
    family: IpFamily,
    max: usize,
    changes: &mut SliceChanges,
) {
    if desired.is_empty() {
        changes.delete.extend(existing.iter().map(|s| (*s).clone()));
        return;
    }
    let mut slice = new_mirrored_slice(endpoints, ports.to_vec(), family);
    match existing.split_first() {
        None => {
            fill(&mut slice.endpoints, &mut desired, max);
            changes.create.push(slice);
        }
        Some((first, rest)) => {
            changes.delete.extend(rest.iter().map(|s| (*s).clone()));
            let same_endpoints = first.endpoints.len() == desired.len()
                && first
                    .endpoints
                    .iter()
                    .all(|e| desired.get(&endpoint_key(e)).is_some_and(|d| endpoints_equal_beyond_key(d, e)));
            let annotations = |s: &EndpointSlice| s.metadata.annotations.clone().unwrap_or_default();
            if same_endpoints && labels_of(first) == labels_of(&slice) && annotations(first) == annotations(&slice) {
                return;
            }
            slice.metadata.name = first.metadata.name.clone();
            slice.metadata.generate_name = None;
            slice.metadata.resource_version = first.metadata.resource_version.clone();
            slice.metadata.uid = first.metadata.uid.clone();
            slice.metadata.creation_timestamp = first.metadata.creation_timestamp.clone();
            fill(&mut slice.endpoints, &mut desired, max);
            changes.update.push(slice);
        }
    }
}

/// An Endpoints address as a slice endpoint and its family
/// (`addressToEndpoint`); `None` when the address is not an IP.
fn address_to_endpoint(address: &EndpointAddress, ready: bool) -> Option<(IpFamily, Endpoint)> {
    let ip = parse_ip(&address.ip)?;
    let family = if ip.is_ipv6() { IpFamily::V6 } else { IpFamily::V4 };
    let endpoint = Endpoint {
        addresses: vec![ip.to_string()],
        conditions: conditions(Some(ready), None, None),
        target_ref: address.target_ref.clone(),
        node_name: address.node_name.clone(),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        ..Default::default()
    };
    Some((family, endpoint))
}

fn mirrored_ports(ports: &[k8s_openapi::api::core::v1::EndpointPort]) -> Vec<EndpointPort> {
    ports
        .iter()
        .map(|p| EndpointPort {
            name: Some(p.name.clone().unwrap_or_default()),
            port: Some(p.port),
            protocol: Some(p.protocol.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "TCP".to_owned())),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

fn new_mirrored_slice(endpoints: &Endpoints, ports: Vec<EndpointPort>, family: IpFamily) -> EndpointSlice {
    let name = endpoints.metadata.name.clone().unwrap_or_default();
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.to_owned(), name.clone());
    labels.insert(MANAGED_BY_LABEL.to_owned(), MIRRORING_CONTROLLER_NAME.to_owned());
    let mut annotations = endpoints.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(LAST_CHANGE_TRIGGER_TIME_ANNOTATION);
    annotations.remove(LAST_APPLIED_ANNOTATION);
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: endpoints.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: non_empty_map(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_owned(),
                kind: "Endpoints".to_owned(),
                name,
                uid: endpoints.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: family.as_str().to_owned(),
        endpoints: Vec::new(),
        ports: Some(ports),
    }
}
