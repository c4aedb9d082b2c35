//! EndpointSlices for a Service with a selector, from its pods: the
//! EndpointSlice controller's reconciler (`k8s.io/endpointslice`
//! `Reconciler.Reconcile`), made deterministic.
//!
//! Per address family of the service, pods are grouped by the ports they
//! resolve to (pods resolving a named port differently land in different
//! slices). Per group, the existing slices are reconciled with minimal
//! churn, in kube's three steps:
//!
//! 1. Each existing slice keeps the endpoints still desired (replaced by
//!    their desired version); a slice that lost or changed endpoints, or
//!    whose labels are stale, is updated, and one left empty is deleted.
//! 2. Slices updated anyway are topped up with new endpoints, fullest first,
//!    since they are written regardless.
//! 3. Remaining endpoints go, when fewer than a slice holds, into the one
//!    unchanged slice they fill closest to full; otherwise into new slices.
//!
//! Finally creates are turned into updates of slices that would be deleted,
//! and a service without endpoints keeps one empty placeholder slice per
//! family. Where kube picks from hash sets at random, this takes endpoints
//! in key order (addresses, hostname, pod) and slices in name order, so
//! equal input always gives equal output.

use crate::endpointslice::is_managed_slice;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, EndpointPort, EndpointSlice, ForZone};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{
    CONTROLLER_NAME, EndpointKey, MANAGED_BY_LABEL, PortsKey, SERVICE_NAME_LABEL, SliceChanges, conditions,
    endpoint_key, endpoints_equal_beyond_key, fill, labels_of, ports_key, recycle_deleted_slices, slice_name,
};
use crate::endpoints::{
    HEADLESS_LABEL, IpFamily, parse_ip, pod_ips, pod_is_ready, pod_is_terminating, pod_reference, resolve_target_port,
    service_has_cluster_ip, service_is_headless, service_is_managed, service_port_protocol, service_selects,
    should_pod_be_in_endpoints, should_set_hostname,
};

/// The slice changes that make `service`'s EndpointSlices reflect `pods`.
///
/// - `pods` may hold any pods; those the service does not select are
///   ignored. Every selected pod with an IP that is not terminal counts,
///   terminating ones included (their conditions say so).
/// - `nodes_zone` maps a node name to its `topology.kubernetes.io/zone`
///   label, `None` when unknown or unlabelled.
/// - `existing` may hold any slices; only those labelled for this service
///   and managed by [`CONTROLLER_NAME`], and not already being deleted, are
///   considered. Of those, slices not owned by this service (same name,
///   older UID) or of an address family the service no longer has are
///   deleted.
/// - `max_per_slice` is the most endpoints per slice
///   ([`DEFAULT_MAX_ENDPOINTS_PER_SLICE`](super::DEFAULT_MAX_ENDPOINTS_PER_SLICE)
///   is kube's default); 0 is taken as 1.
///
/// Services without a selector and `ExternalName` services get no changes:
/// slices left from when the service had a selector stay, as in Kubernetes
/// (kubernetes/kubernetes#91072). A service being deleted gets no creates.
pub fn reconcile_slices(
    service: &Service,
    pods: &[&Pod],
    nodes_zone: impl Fn(&str) -> Option<String>,
    existing: &[&EndpointSlice],
    max_per_slice: usize,
) -> SliceChanges {
    let mut changes = SliceChanges::default();
    if !service_is_managed(service) {
        return changes;
    }
    let max = max_per_slice.max(1);
    let service_name = service.metadata.name.as_deref().unwrap_or_default();

    let mut ours: Vec<&EndpointSlice> = existing
        .iter()
        .copied()
        .filter(|slice| {
            is_managed_slice(slice, CONTROLLER_NAME, service_name, service.metadata.namespace.as_deref())
                // A slice being deleted is as good as gone.
                && slice.metadata.deletion_timestamp.is_none()
        })
        .collect();
    ours.sort_by(|a, b| slice_name(a).cmp(slice_name(b)));

    let families = address_families(service);
    let pods: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|pod| service_selects(service, pod) && should_pod_be_in_endpoints(pod, true))
        .collect();

    for family in &families {
        let of_family: Vec<&EndpointSlice> =
            ours.iter().copied().filter(|s| IpFamily::parse(&s.address_type) == Some(*family)).collect();
        reconcile_family(service, &pods, &nodes_zone, &of_family, *family, max, &mut changes);
    }
    changes.delete.extend(
        ours.iter()
            .filter(|s| !IpFamily::parse(&s.address_type).is_some_and(|f| families.contains(&f)))
            .map(|s| (*s).clone()),
    );

    if service.metadata.deletion_timestamp.is_some() {
        // Creating slices the garbage collector is about to delete races it.
        changes.create.clear();
    }
    changes
}

/// One address family's share of [`reconcile_slices`].
fn reconcile_family(
    service: &Service,
    pods: &[&Pod],
    nodes_zone: &impl Fn(&str) -> Option<String>,
    existing: &[&EndpointSlice],
    family: IpFamily,
    max: usize,
    changes: &mut SliceChanges,
) {
    let labels = slice_labels(service);
    let mut delete = Vec::new();
    let mut existing_by_ports: BTreeMap<PortsKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if owned_by(slice, service) {
            existing_by_ports.entry(ports_key(slice.ports.as_deref())).or_default().push(slice);
        } else {
            delete.push((*slice).clone());
        }
    }

    // Every pod registers its port group, even one without an address of
    // this family, so slices of that group are kept in step.
    let mut desired: BTreeMap<PortsKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)> = BTreeMap::new();
    for pod in pods {
        let ports = endpoint_ports(service, pod);
        let (_, endpoints) = desired.entry(ports_key(Some(&ports))).or_insert_with(|| (ports, BTreeMap::new()));
        let endpoint = pod_to_endpoint(pod, service, family, nodes_zone);
        if !endpoint.addresses.is_empty() {
            endpoints.insert(endpoint_key(&endpoint), endpoint);
        }
    }

    let mut create = Vec::new();
    let mut update = Vec::new();
    for (key, (ports, endpoints)) in desired.iter() {
        let current = existing_by_ports.get(key).map(Vec::as_slice).unwrap_or_default();
        let group = Group { service, labels: &labels, ports, family, max };
        group.reconcile(current, endpoints.clone(), &mut create, &mut update, &mut delete);
    }
    for (key, slices) in &existing_by_ports {
        if !desired.contains_key(key) {
            delete.extend(slices.iter().map(|s| (*s).clone()));
        }
    }

    // A service without endpoints keeps one empty slice, so consumers can
    // tell "no endpoints" from "not reconciled yet".
    if existing.len() == delete.len() && create.is_empty() {
        let placeholder = new_slice(service, &labels, Vec::new(), family);
        if delete.len() == 1 && is_same_placeholder(&delete[0], &placeholder) {
            delete.clear();
        } else {
            create.push(placeholder);
        }
    }

    recycle_deleted_slices(&mut create, &mut update, &mut delete, |old, new| {
        old.address_type == new.address_type && owned_by(old, service)
    });
    changes.create.extend(create);
    changes.update.extend(update);
    changes.delete.extend(delete);
}

/// The slices of one port group of one family.
struct Group<'a> {
    service: &'a Service,
    labels: &'a BTreeMap<String, String>,
    ports: &'a [EndpointPort],
    family: IpFamily,
    max: usize,
}

impl Group<'_> {
    fn reconcile(
        &self,
        existing: &[&EndpointSlice],
        mut desired: BTreeMap<EndpointKey, Endpoint>,
        create: &mut Vec<EndpointSlice>,
        update: &mut Vec<EndpointSlice>,
        delete: &mut Vec<EndpointSlice>,
    ) {
        let mut changed: BTreeMap<String, EndpointSlice> = BTreeMap::new();
        let mut unchanged: BTreeMap<String, &EndpointSlice> = BTreeMap::new();

        // 1. Keep what is still desired; note what changed.
        for slice in existing {
            let mut kept = Vec::with_capacity(slice.endpoints.len());
            let mut endpoint_changed = false;
            for endpoint in &slice.endpoints {
                if let Some(want) = desired.remove(&endpoint_key(endpoint)) {
                    endpoint_changed |= !endpoints_equal_beyond_key(&want, endpoint);
                    kept.push(want);
                }
            }
            let name = slice_name(slice).to_owned();
            let labels_changed = labels_of(slice) != *self.labels;
            if endpoint_changed || kept.len() != slice.endpoints.len() {
                if kept.is_empty() {
                    delete.push((*slice).clone());
                } else {
                    let mut slice = (*slice).clone();
                    slice.endpoints = kept;
                    slice.metadata.labels = Some(self.labels.clone());
                    changed.insert(name, slice);
                }
            } else if labels_changed {
                let mut slice = (*slice).clone();
                slice.metadata.labels = Some(self.labels.clone());
                changed.insert(name, slice);
            } else {
                unchanged.insert(name, slice);
            }
        }

        // 2. Slices written anyway take new endpoints first, fullest first.
        if !desired.is_empty() {
            let mut fullest_first: Vec<&mut EndpointSlice> = changed.values_mut().collect();
            fullest_first.sort_by(|a, b| b.endpoints.len().cmp(&a.endpoints.len()));
            for slice in fullest_first {
                fill(&mut slice.endpoints, &mut desired, self.max);
            }
        }

        // 3. The rest: into the unchanged slice they fill best, else new ones.
        while !desired.is_empty() {
            let reuse = if desired.len() < self.max { self.slice_to_fill(&unchanged, desired.len()) } else { None };
            let mut slice = match reuse {
                Some(name) => match unchanged.remove(&name) {
                    Some(slice) => slice.clone(),
                    None => self.new_slice(),
                },
                None => self.new_slice(),
            };
            fill(&mut slice.endpoints, &mut desired, self.max);
            match slice.metadata.name.clone() {
                Some(name) => {
                    changed.insert(name, slice);
                }
                None => create.push(slice),
            }
        }
        update.extend(changed.into_values());
    }

    /// The unchanged slice that `count` more endpoints bring closest to full
    /// without overflowing it (`getSliceToFill`); the first by name wins a
    /// tie.
    fn slice_to_fill(&self, unchanged: &BTreeMap<String, &EndpointSlice>, count: usize) -> Option<String> {
        let mut best: Option<(usize, &String)> = None;
        for (name, slice) in unchanged {
            let Some(room) = self.max.checked_sub(count + slice.endpoints.len()) else { continue };
            if best.is_none_or(|(best_room, _)| room < best_room) {
                best = Some((room, name));
                if room == 0 {
                    break;
                }
            }
        }
        best.map(|(_, name)| name.clone())
    }

    fn new_slice(&self) -> EndpointSlice {
        new_slice(self.service, self.labels, self.ports.to_vec(), self.family)
    }
}

/// The address families whose slices the service gets: `spec.ipFamilies`;
/// for services written before families existed, the cluster IP's family,
/// or both for headless ones.
fn address_families(service: &Service) -> Vec<IpFamily> {
    let spec = service.spec.as_ref();
    let mut families: Vec<IpFamily> =
        spec.and_then(|s| s.ip_families.as_ref()).into_iter().flatten().filter_map(|f| IpFamily::parse(f)).collect();
    families.sort();
    families.dedup();
    if !families.is_empty() {
        return families;
    }
    if service_has_cluster_ip(service) {
        let cluster_ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or_default();
        return vec![IpFamily::of_ip(cluster_ip).unwrap_or(IpFamily::V4)];
    }
    vec![IpFamily::V4, IpFamily::V6]
}

/// The endpoint for `pod` in a slice of `family` (`podToEndpoint`); its
/// address list is empty when the pod has no IP of that family.
fn pod_to_endpoint(
    pod: &Pod,
    service: &Service,
    family: IpFamily,
    nodes_zone: &impl Fn(&str) -> Option<String>,
) -> Endpoint {
    let serving = pod_is_ready(pod);
    let terminating = pod_is_terminating(pod);
    // For compatibility with Endpoints, a terminating pod is never ready
    // unless the service publishes not-ready addresses.
    let publish_not_ready = service.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false);
    let ready = publish_not_ready || (serving && !terminating);
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty());
    let zone = node_name.as_deref().and_then(nodes_zone).filter(|z| !z.is_empty());
    // trafficDistribution PreferClose: each endpoint is hinted for its own
    // zone (kube's preferCloseHeuristic); without a zone, no hint.
    let prefer_close = service.spec.as_ref().and_then(|s| s.traffic_distribution.as_deref()) == Some("PreferClose");
    let hints = zone
        .clone()
        .filter(|_| prefer_close)
        .map(|name| EndpointHints { for_zones: Some(vec![ForZone { name }]), ..Default::default() });
    Endpoint {
        addresses: pod_ips(pod)
            .into_iter()
            .filter_map(parse_ip)
            .filter(|ip| ip.is_ipv6() == (family == IpFamily::V6))
            .map(|ip| ip.to_string())
            .collect(),
        conditions: conditions(Some(ready), Some(serving), Some(terminating)),
        zone,
        hints,
        node_name,
        hostname: should_set_hostname(pod, service)
            .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
            .flatten(),
        target_ref: Some(pod_reference(pod)),
        ..Default::default()
    }
}

/// The ports of `pod`'s endpoint (`getEndpointPorts`): one per service port
/// the pod resolves, in the service's order; none for a headless service
/// without ports.
fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let service_ports = service.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or_default();
    if service_ports.is_empty() && service_is_headless(service) {
        return Vec::new();
    }
    service_ports
        .iter()
        .filter_map(|service_port| {
            let port = resolve_target_port(service_port, pod)?;
            Some(EndpointPort {
                name: Some(service_port.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(service_port_protocol(service_port).to_owned()),
                app_protocol: service_port.app_protocol.clone(),
            })
        })
        .collect()
}

/// The labels of the service's slices (`setEndpointSliceLabels`): the
/// service's own, except the reserved keys, which the controller sets.
///
/// Kubernetes updates a slice only when its non-reserved labels differ;
/// this compares all of them, so a service turning headless also relabels
/// its slices.
fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let reserved = [SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL];
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(key, _)| !reserved.contains(&key.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if service_is_headless(service) {
        labels.insert(HEADLESS_LABEL.to_owned(), String::new());
    }
    labels.insert(SERVICE_NAME_LABEL.to_owned(), service.metadata.name.clone().unwrap_or_default());
    labels.insert(MANAGED_BY_LABEL.to_owned(), CONTROLLER_NAME.to_owned());
    labels
}

fn owner_reference(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Service".to_owned(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether the slice belongs to this incarnation of the service: a service
/// deleted and recreated under the same name has a new UID, and the old
/// one's slices are the garbage collector's.
fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    let uid = service.metadata.uid.as_deref().unwrap_or_default();
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.kind == "Service" && o.api_version == "v1")
}

fn new_slice(
    service: &Service,
    labels: &BTreeMap<String, String>,
    ports: Vec<EndpointPort>,
    family: IpFamily,
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", service.metadata.name.as_deref().unwrap_or_default())),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner_reference(service)]),
            ..Default::default()
        },
        address_type: family.as_str().to_owned(),
        endpoints: Vec::new(),
        ports: Some(ports),
    }
}

/// Whether an existing slice already is the placeholder that would be
/// created (`placeholderSliceCompare`): same namespace, labels, owners,
/// family, no ports, no endpoints.
fn is_same_placeholder(existing: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    let owners = |s: &EndpointSlice| s.metadata.owner_references.clone().unwrap_or_default();
    existing.metadata.namespace == placeholder.metadata.namespace
        && labels_of(existing) == labels_of(placeholder)
        && owners(existing) == owners(placeholder)
        && existing.address_type == placeholder.address_type
        && existing.ports.as_deref().unwrap_or_default().is_empty()
        && existing.endpoints.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice_with(len: usize, name: &str) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            endpoints: vec![Endpoint::default(); len],
            ..Default::default()
        }
    }

    #[test]
    fn the_slice_to_fill_is_the_one_left_closest_to_full() {
        let service = Service::default();
        let labels = BTreeMap::new();
        let group = Group { service: &service, labels: &labels, ports: &[], family: IpFamily::V4, max: 10 };
        let (a, b, c) = (slice_with(2, "a"), slice_with(6, "b"), slice_with(9, "c"));
        let unchanged = BTreeMap::from([("a".to_owned(), &a), ("b".to_owned(), &b), ("c".to_owned(), &c)]);
        assert_eq!(group.slice_to_fill(&unchanged, 3).as_deref(), Some("b"));
        assert_eq!(group.slice_to_fill(&unchanged, 8).as_deref(), Some("a"));
        assert_eq!(group.slice_to_fill(&unchanged, 9), None);
    }

    #[test]
    fn services_without_families_fall_back_to_the_cluster_ip_or_both_families() {
        use k8s_openapi::api::core::v1::ServiceSpec;
        let with_ip = |ip: &str| Service {
            spec: Some(ServiceSpec { cluster_ip: Some(ip.into()), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(address_families(&with_ip("10.96.0.10")), [IpFamily::V4]);
        assert_eq!(address_families(&with_ip("fd00::10")), [IpFamily::V6]);
        assert_eq!(address_families(&with_ip("None")), [IpFamily::V4, IpFamily::V6]);
    }
}
