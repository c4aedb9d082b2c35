//! How lists, maps and structs of the served kinds merge under server-side
//! apply: `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and
//! `x-kubernetes-map-type`.
//!
//! In Go these are the `+listType`, `+listMapKey`, `+mapType` and
//! `+structType` markers of k8s.io/api, published in kube-apiserver's
//! OpenAPI; k8s-openapi's schemas drop them, so they are written out here
//! for every type reachable from a served kind, checked against the
//! structured-merge-diff schema client-go generates from Kubernetes 1.33's
//! OpenAPI (`applyconfigurations/internal/internal.go`) and k8s-openapi
//! v1_33's merge strategies. Where a list has no entry here, Kubernetes'
//! own fallback applies: a `patchStrategy:"merge"` list merges by its patch
//! merge key (or as a set without one), any other list is atomic. Maps are
//! granular and structs field by field unless listed.
//!
//! The table also records which struct fields are Go values rather than
//! pointers (`default: {}` in that schema): kube-apiserver compares Go
//! structs, where such fields always exist, and that decides which nodes
//! get the `"."` mark when an update adds them.

use serde_json::Value;

use crate::schema::{SchemaKind, SchemaNode};

/// `x-kubernetes-list-type` (with its map keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Replaced whole; owned as one leaf.
    Atomic,
    /// Items are scalars, owned one by one (`v:<value>`).
    Set,
    /// Items are objects identified by these fields (`k:{...}`).
    Map(&'static [&'static str]),
}

impl ListType {
    /// The value of `x-kubernetes-list-type`.
    pub fn name(&self) -> &'static str {
        match self {
            ListType::Atomic => "atomic",
            ListType::Set => "set",
            ListType::Map(_) => "map",
        }
    }
}

const CONDITIONS: (&str, ListType) = ("conditions", ListType::Map(&["type"]));

const CONTAINER_LISTS: [(&str, ListType); 4] = [
    ("env", ListType::Map(&["name"])),
    ("ports", ListType::Map(&["containerPort", "protocol"])),
    ("volumeDevices", ListType::Map(&["devicePath"])),
    ("volumeMounts", ListType::Map(&["mountPath"])),
];

/// (definition, fields) for every non-atomic list. Lists not named here
/// (tolerations, `Endpoints.subsets`, `EndpointSlice.endpoints`,
/// `IngressSpec.rules`, `ServiceSpec.clusterIPs`/`ipFamilies`, container
/// statuses, ...) are atomic.
static LISTS: &[(&str, &[(&str, ListType)])] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        &[("finalizers", ListType::Set), ("ownerReferences", ListType::Map(&["uid"]))],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        &[
            ("containers", ListType::Map(&["name"])),
            ("ephemeralContainers", ListType::Map(&["name"])),
            ("hostAliases", ListType::Map(&["ip"])),
            ("imagePullSecrets", ListType::Map(&["name"])),
            ("initContainers", ListType::Map(&["name"])),
            ("resourceClaims", ListType::Map(&["name"])),
            ("schedulingGates", ListType::Map(&["name"])),
            ("topologySpreadConstraints", ListType::Map(&["topologyKey", "whenUnsatisfiable"])),
            ("volumes", ListType::Map(&["name"])),
        ],
    ),
    ("io.k8s.api.core.v1.Container", &CONTAINER_LISTS),
    ("io.k8s.api.core.v1.EphemeralContainer", &CONTAINER_LISTS),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        &[("allocatedResourcesStatus", ListType::Map(&["name"])), ("volumeMounts", ListType::Map(&["mountPath"]))],
    ),
    ("io.k8s.api.core.v1.ResourceRequirements", &[("claims", ListType::Map(&["name"]))]),
    ("io.k8s.api.core.v1.ResourceStatus", &[("resources", ListType::Map(&["resourceID"]))]),
    (
        "io.k8s.api.core.v1.PodStatus",
        &[
            CONDITIONS,
            ("hostIPs", ListType::Map(&["ip"])),
            ("podIPs", ListType::Map(&["ip"])),
            ("resourceClaimStatuses", ListType::Map(&["name"])),
        ],
    ),
    ("io.k8s.api.core.v1.NodeSpec", &[("podCIDRs", ListType::Set)]),
    ("io.k8s.api.core.v1.NodeStatus", &[("addresses", ListType::Map(&["type"])), CONDITIONS]),
    ("io.k8s.api.core.v1.NamespaceStatus", &[CONDITIONS]),
    ("io.k8s.api.core.v1.ServiceSpec", &[("ports", ListType::Map(&["port", "protocol"]))]),
    ("io.k8s.api.core.v1.ServiceStatus", &[CONDITIONS]),
    ("io.k8s.api.apps.v1.DeploymentStatus", &[CONDITIONS]),
    ("io.k8s.api.apps.v1.ReplicaSetStatus", &[CONDITIONS]),
    ("io.k8s.api.apps.v1.StatefulSetStatus", &[CONDITIONS]),
    ("io.k8s.api.apps.v1.DaemonSetStatus", &[CONDITIONS]),
    ("io.k8s.api.discovery.v1.Endpoint", &[("addresses", ListType::Set)]),
];

/// Map fields with `x-kubernetes-map-type: atomic`; other maps are
/// granular (owned key by key).
static ATOMIC_MAPS: &[(&str, &str)] =
    &[("io.k8s.api.core.v1.ServiceSpec", "selector"), ("io.k8s.api.core.v1.PodSpec", "nodeSelector")];

/// Structs with `x-kubernetes-map-type: atomic` (`+structType=atomic`):
/// wherever they appear they are owned and replaced as one leaf.
static ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.api.networking.v1.ServiceBackendPort",
];

/// Struct-typed fields that are Go values, not pointers (besides the
/// `metadata`, `spec` and `status` of every kind).
static VALUE_STRUCTS: &[(&str, &[&str])] = &[
    ("io.k8s.api.apps.v1.DeploymentSpec", &["strategy", "template"]),
    ("io.k8s.api.apps.v1.ReplicaSetSpec", &["template"]),
    ("io.k8s.api.apps.v1.StatefulSetSpec", &["template", "updateStrategy"]),
    ("io.k8s.api.apps.v1.DaemonSetSpec", &["template", "updateStrategy"]),
    ("io.k8s.api.core.v1.PodTemplateSpec", &["metadata", "spec"]),
    ("io.k8s.api.core.v1.Container", &["resources"]),
    ("io.k8s.api.core.v1.EphemeralContainer", &["resources"]),
    ("io.k8s.api.core.v1.ContainerStatus", &["lastState", "state"]),
    ("io.k8s.api.core.v1.NodeStatus", &["daemonEndpoints", "nodeInfo"]),
    ("io.k8s.api.core.v1.NodeDaemonEndpoints", &["kubeletEndpoint"]),
    ("io.k8s.api.core.v1.PreferredSchedulingTerm", &["preference"]),
    ("io.k8s.api.core.v1.WeightedPodAffinityTerm", &["podAffinityTerm"]),
    ("io.k8s.api.core.v1.PersistentVolumeClaimTemplate", &["metadata", "spec"]),
    ("io.k8s.api.core.v1.PersistentVolumeClaimSpec", &["resources"]),
    ("io.k8s.api.core.v1.ServiceStatus", &["loadBalancer"]),
    ("io.k8s.api.core.v1.Event", &["involvedObject", "source"]),
    ("io.k8s.api.discovery.v1.Endpoint", &["conditions"]),
    ("io.k8s.api.networking.v1.HTTPIngressPath", &["backend"]),
    ("io.k8s.api.networking.v1.IngressServiceBackend", &["port"]),
    ("io.k8s.api.networking.v1.IngressStatus", &["loadBalancer"]),
];

/// Granular list fields Go always serializes (no `omitempty`): an empty Go
/// object holds them as `null`, so creating them does not mark the list
/// itself with `"."`.
static NULL_WHEN_EMPTY: &[(&str, &str)] =
    &[("io.k8s.api.core.v1.PodSpec", "containers"), ("io.k8s.api.discovery.v1.Endpoint", "addresses")];

/// The list type of `field` in the struct `definition`, when the table
/// names it.
pub fn list_type(definition: &str, field: &str) -> Option<ListType> {
    LISTS
        .iter()
        .find(|(d, _)| *d == definition)
        .and_then(|(_, fields)| fields.iter().find(|(f, _)| *f == field))
        .map(|(_, t)| *t)
}

/// Whether the map `field` of `definition` is `x-kubernetes-map-type: atomic`.
pub fn map_is_atomic(definition: &str, field: &str) -> bool {
    ATOMIC_MAPS.contains(&(definition, field))
}

/// Whether the struct `definition` is `x-kubernetes-map-type: atomic`.
pub fn struct_is_atomic(definition: &str) -> bool {
    ATOMIC_STRUCTS.contains(&definition)
}

/// Every (definition, field, list type) the table names.
pub fn list_types() -> impl Iterator<Item = (&'static str, &'static str, ListType)> {
    LISTS.iter().flat_map(|(d, fields)| fields.iter().map(move |(f, t)| (*d, *f, *t)))
}

/// Every (definition, field) map with `x-kubernetes-map-type: atomic`.
pub fn atomic_maps() -> impl Iterator<Item = (&'static str, &'static str)> {
    ATOMIC_MAPS.iter().copied()
}

/// Every struct definition with `x-kubernetes-map-type: atomic`.
pub fn atomic_structs() -> impl Iterator<Item = &'static str> {
    ATOMIC_STRUCTS.iter().copied()
}

/// Whether `field` of the struct `definition` always exists in Go (a value
/// struct, not a pointer). `top_level` is true for the kind's own struct.
pub(crate) fn is_value_struct(definition: &str, field: &str, top_level: bool) -> bool {
    (top_level && matches!(field, "metadata" | "spec" | "status"))
        || VALUE_STRUCTS.iter().any(|(d, fields)| *d == definition && fields.contains(&field))
}

/// Whether `field` of the struct `definition` is `null` in an empty Go
/// object rather than absent.
pub(crate) fn is_null_when_empty(definition: &str, field: &str) -> bool {
    NULL_WHEN_EMPTY.contains(&(definition, field))
}

/// Every (definition, field) value struct the table names.
#[cfg(test)]
pub(crate) fn value_structs() -> impl Iterator<Item = (&'static str, &'static str)> {
    VALUE_STRUCTS.iter().flat_map(|(d, fields)| fields.iter().map(move |f| (*d, *f)))
}

/// The value a missing key field of an associative-list item takes: the
/// field's OpenAPI default ("TCP" for protocols), else the Go zero value.
pub(crate) fn key_default(item: &SchemaNode<'_>, key: &str) -> Value {
    if key == "protocol" {
        return Value::String("TCP".into());
    }
    match item.property(key).map(|p| p.kind()) {
        Some(SchemaKind::Integer | SchemaKind::Number) => Value::from(0),
        Some(SchemaKind::Boolean) => Value::Bool(false),
        _ => Value::String(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schemas;

    fn node(definition: &str) -> SchemaNode<'static> {
        Schemas::get().definition(definition).unwrap_or_else(|| panic!("{definition} registered"))
    }

    #[test]
    fn every_list_entry_names_a_list_field_whose_items_carry_the_keys() {
        for (definition, field, list) in list_types() {
            let property = node(definition).property(field).unwrap_or_else(|| panic!("{definition}.{field}"));
            assert_eq!(property.kind(), SchemaKind::Array, "{definition}.{field}");
            let item = property.items().expect("items");
            match list {
                ListType::Map(keys) => {
                    for key in keys {
                        assert!(item.has_property(key), "{definition}.{field} key {key}");
                    }
                }
                ListType::Set => assert_ne!(item.kind(), SchemaKind::Object, "{definition}.{field}"),
                ListType::Atomic => {}
            }
        }
    }

    #[test]
    fn every_map_and_struct_entry_names_an_existing_definition() {
        for (definition, field) in atomic_maps() {
            assert!(node(definition).property(field).is_some_and(|p| p.is_map()), "{definition}.{field}");
        }
        for definition in atomic_structs() {
            assert_eq!(node(definition).kind(), SchemaKind::Object, "{definition}");
        }
        for (definition, field) in NULL_WHEN_EMPTY {
            assert!(
                node(definition).property(field).is_some_and(|p| p.kind() == SchemaKind::Array),
                "{definition}.{field}"
            );
        }
        for (definition, field) in value_structs() {
            let property = node(definition).property(field).unwrap_or_else(|| panic!("{definition}.{field}"));
            assert!(property.definition_name().is_some(), "{definition}.{field} is a struct");
        }
    }

    #[test]
    fn service_ports_are_keyed_by_port_and_protocol_and_tolerations_are_atomic() {
        assert_eq!(list_type("io.k8s.api.core.v1.ServiceSpec", "ports"), Some(ListType::Map(&["port", "protocol"])));
        assert_eq!(list_type("io.k8s.api.core.v1.PodSpec", "tolerations"), None);
        assert!(map_is_atomic("io.k8s.api.core.v1.ServiceSpec", "selector"));
        assert!(struct_is_atomic("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"));
        let port = node("io.k8s.api.core.v1.ServicePort");
        assert_eq!(key_default(&port, "protocol"), Value::String("TCP".into()));
        assert_eq!(key_default(&port, "port"), Value::from(0));
    }
}
