//! The EndpointSlice controller and the EndpointSlice mirroring controller
//! as pure functions: from the objects they read, the EndpointSlices to
//! create, update and delete.
//!
//! - [`reconcile_slices`]: slices for a Service with a selector, from its
//!   pods (`staging/src/k8s.io/endpointslice/reconciler.go`). Start here.
//! - [`mirror_endpoints`]: slices mirroring the hand-written Endpoints of a
//!   Service without a selector (`pkg/controller/endpointslicemirroring`).
//!
//! Both return a [`SliceChanges`]; the runtime lists the existing slices by
//! the `kubernetes.io/service-name` and `endpointslice.kubernetes.io/
//! managed-by` labels, applies the changes (creates use `generateName`,
//! updates carry the existing resourceVersion), and, for the EndpointSlice
//! controller, stamps the trigger time with [`SliceChanges::with_trigger_time`].
//! Equal inputs give equal outputs, and inputs that are already reflected
//! give no changes at all.

mod mirroring;
mod reconciler;

use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::jiff::Timestamp;

use crate::endpoints::{LAST_CHANGE_TRIGGER_TIME_ANNOTATION, format_trigger_time, non_empty_map};

pub use self::mirroring::mirror_endpoints;
pub use self::reconciler::reconcile_slices;

/// The label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

/// A label on Endpoints that opts them out of mirroring when `"true"`.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";

/// [`MANAGED_BY_LABEL`] of slices that [`reconcile_slices`] manages.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";

/// [`MANAGED_BY_LABEL`] of slices that [`mirror_endpoints`] manages.
pub const MIRRORING_CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";

/// The node label whose value becomes an endpoint's `zone`.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// kube-controller-manager's `--max-endpoints-per-slice` default.
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// kube-controller-manager's `--mirroring-max-endpoints-per-subset` default.
pub const DEFAULT_MIRRORING_MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// What a reconcile wants written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SliceChanges {
    /// New slices, named by `metadata.generateName`.
    pub create: Vec<EndpointSlice>,
    /// Existing slices with new content, carrying their name and
    /// resourceVersion.
    pub update: Vec<EndpointSlice>,
    /// Slices to delete, as they were read.
    pub delete: Vec<EndpointSlice>,
}

impl SliceChanges {
    /// True when nothing needs writing.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }

    /// Sets `endpoints.kubernetes.io/last-change-trigger-time` on every
    /// slice written (created or updated), or removes it when `None`, as
    /// the EndpointSlice controller does (the mirroring controller does
    /// not). The time comes from
    /// [`TriggerTimeTracker`](crate::endpoints::TriggerTimeTracker).
    pub fn with_trigger_time(mut self, trigger_time: Option<Timestamp>) -> Self {
        for slice in self.create.iter_mut().chain(self.update.iter_mut()) {
            let mut annotations = slice.metadata.annotations.take().unwrap_or_default();
            match trigger_time {
                Some(time) => {
                    annotations.insert(LAST_CHANGE_TRIGGER_TIME_ANNOTATION.to_owned(), format_trigger_time(time))
                }
                None => annotations.remove(LAST_CHANGE_TRIGGER_TIME_ANNOTATION),
            };
            slice.metadata.annotations = non_empty_map(annotations);
        }
        self
    }
}

/// An endpoint's identity within a slice (`hashEndpoint`): its sorted
/// addresses, hostname and target namespace/name. Other fields (conditions,
/// node, zone) may change in place without the endpoint becoming another.
type EndpointKey = (Vec<String>, String, String, String);

fn endpoint_key(endpoint: &Endpoint) -> EndpointKey {
    let mut addresses = endpoint.addresses.clone();
    addresses.sort();
    let target = endpoint.target_ref.as_ref();
    (
        addresses,
        endpoint.hostname.clone().unwrap_or_default(),
        target.and_then(|t| t.namespace.clone()).unwrap_or_default(),
        target.and_then(|t| t.name.clone()).unwrap_or_default(),
    )
}

/// Whether two endpoints with the same key also agree on everything the
/// controllers set (`EndpointsEqualBeyondHash`): node, zone, hints,
/// conditions and target, the target's resourceVersion aside.
fn endpoints_equal_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    let conditions = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    let target = |e: &Endpoint| {
        e.target_ref.clone().map(|mut t| {
            t.resource_version = None;
            t
        })
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && a.hints == b.hints
        && conditions(a) == conditions(b)
        && target(a) == target(b)
}

/// A slice's set of ports as a comparable value (`NewPortMapKey`): sorted
/// (name, port, protocol, appProtocol), with API defaults filled in so that
/// what the controller writes and what the API server returns compare
/// equal.
type PortsKey = Vec<(String, i32, String, String)>;

fn ports_key(ports: Option<&[EndpointPort]>) -> PortsKey {
    let mut key: PortsKey = ports
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    key.sort();
    key
}

fn labels_of(slice: &EndpointSlice) -> BTreeMap<String, String> {
    slice.metadata.labels.clone().unwrap_or_default()
}

/// Whether `slice` belongs to `service` in `namespace` and is managed by
/// `managed_by` (the controller or the mirroring controller): the one test
/// both reconcilers and their runtime use to find their slices.
pub fn is_managed_slice(slice: &EndpointSlice, managed_by: &str, service: &str, namespace: Option<&str>) -> bool {
    let labels = slice.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    label(MANAGED_BY_LABEL) == Some(managed_by)
        && label(SERVICE_NAME_LABEL) == Some(service)
        && (slice.metadata.namespace.is_none() || slice.metadata.namespace.as_deref() == namespace)
}

fn slice_name(slice: &EndpointSlice) -> &str {
    slice.metadata.name.as_deref().unwrap_or_default()
}

/// Turns creates into updates of slices that would otherwise be deleted,
/// saving a delete and a create per pair (`finalize` / `recycleSlices`).
/// Deleted slices are considered in order, creates taken from the end;
/// `recyclable` says which deleted slices may be taken over.
fn recycle_deleted_slices(
    create: &mut Vec<EndpointSlice>,
    update: &mut Vec<EndpointSlice>,
    delete: &mut Vec<EndpointSlice>,
    recyclable: impl Fn(&EndpointSlice, &EndpointSlice) -> bool,
) {
    let mut index = 0;
    while index < delete.len() {
        let Some(candidate) = create.last() else { break };
        if !recyclable(&delete[index], candidate) {
            index += 1;
            continue;
        }
        let old = delete.remove(index);
        let Some(mut slice) = create.pop() else { break };
        slice.metadata.name = old.metadata.name;
        slice.metadata.generate_name = None;
        slice.metadata.resource_version = old.metadata.resource_version;
        slice.metadata.uid = old.metadata.uid;
        slice.metadata.creation_timestamp = old.metadata.creation_timestamp;
        update.push(slice);
    }
}

/// A fresh endpoint list filled from `desired` (in key order) up to `max`.
fn fill(endpoints: &mut Vec<Endpoint>, desired: &mut BTreeMap<EndpointKey, Endpoint>, max: usize) {
    while endpoints.len() < max {
        let Some((_, endpoint)) = desired.pop_first() else { break };
        endpoints.push(endpoint);
    }
}

fn conditions(ready: Option<bool>, serving: Option<bool>, terminating: Option<bool>) -> Option<EndpointConditions> {
    Some(EndpointConditions { ready, serving, terminating })
}
